"""The shipped alert rules (deploy/alerts/*.yml): promtool accepts them, their unit tests pass, and each rule
is tested firing and not firing, keeps job/instance, names only metrics we serve and links its runbook."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from prometheus_client import CollectorRegistry

from breaker.metrics import BreakerMetrics
from breaker.ops.exporter import EXPORTED
from breaker.ops.notify.metrics import NOTIFY_METRICS

ROOT = Path(__file__).resolve().parents[2]
RULES_DIR = ROOT / "deploy" / "alerts"
RULE_FILES = sorted(RULES_DIR.glob("*.yml"))
TEST_FILES = sorted((RULES_DIR / "tests").glob("*.yml"))
PROMTOOL = shutil.which("promtool") or "/usr/bin/promtool"


def rules() -> list[dict]:
    return [rule for path in RULE_FILES for group in yaml.safe_load(path.read_text())["groups"]
            for rule in group["rules"]]


def alerts() -> list[dict]:
    return [rule for rule in rules() if "alert" in rule]


def promtool(*args: str | Path) -> subprocess.CompletedProcess:
    return subprocess.run([PROMTOOL, *map(str, args)], cwd=ROOT, capture_output=True, text=True, timeout=120)


def test_there_are_rules_and_tests_and_none_left_in_docs():
    assert RULE_FILES and TEST_FILES
    assert not (ROOT / "docs" / "alerts.yml").exists()


def test_promtool_check_rules_passes_on_every_rule_file():
    result = promtool("check", "rules", *RULE_FILES)
    assert result.returncode == 0, result.stdout + result.stderr


def test_promtool_test_rules_passes_on_every_test_file():
    result = promtool("test", "rules", *TEST_FILES)
    assert result.returncode == 0, result.stdout + result.stderr


def test_promtool_test_rules_fails_on_a_wrong_expectation(tmp_path):
    """The runner above would notice a failing unit test: a copy expecting the opposite fails."""
    source = TEST_FILES[0]
    doc = yaml.safe_load(source.read_text())
    doc["rule_files"] = [str((source.parent / name).resolve()) for name in doc["rule_files"]]
    case = next(test for test in doc["tests"] if any(c["exp_alerts"] for c in test.get("alert_rule_test", [])))
    for check in case["alert_rule_test"]:
        check["exp_alerts"] = [] if check["exp_alerts"] else [{"exp_labels": {}}]
    doc["tests"] = [case]
    broken = tmp_path / "broken_test.yml"
    broken.write_text(yaml.safe_dump(doc))
    assert promtool("test", "rules", broken).returncode != 0


def test_every_alert_is_unit_tested_firing_and_not_firing():
    firing, silent = set(), set()
    for path in TEST_FILES:
        doc = yaml.safe_load(path.read_text())
        assert doc.get("rule_files"), f"{path.name} names no rule_files"
        for test in doc["tests"]:
            for check in test.get("alert_rule_test", []):
                (firing if check.get("exp_alerts") else silent).add(check["alertname"])
    names = {rule["alert"] for rule in alerts()}
    assert names - firing == set(), "never tested firing"
    assert names - silent == set(), "never tested not firing"


def test_every_alert_has_annotations_and_a_runbook_entry():
    docs = (ROOT / "docs" / "alerts.md").read_text()
    headings = {line[3:].strip() for line in docs.splitlines() if line.startswith("## ")}
    for rule in alerts():
        notes = rule.get("annotations", {})
        assert {"summary", "description", "runbook_url"} <= set(notes), rule["alert"]
        assert notes["runbook_url"] == f"docs/alerts.md#{rule['alert'].lower()}", rule["alert"]
        assert rule["alert"] in headings, f"docs/alerts.md has no '## {rule['alert']}'"


def test_no_aggregation_drops_job_or_instance():
    """`max by (stakes)` and the like drop job and instance: every `by (...)` keeps both (absent() aside)."""
    for rule in rules():
        for kept in re.findall(r"\bby\s*\(([^)]*)\)", rule["expr"]):
            labels = {label.strip() for label in kept.split(",")}
            assert {"job", "instance"} <= labels, (rule.get("alert") or rule.get("record"), kept)
        assert not re.search(r"\b(sum|max|min|avg|count)\s*\(", rule["expr"]), rule["expr"]


def test_rules_use_only_metrics_that_exist():
    worker = {family.name for family in BreakerMetrics(CollectorRegistry()).registry.collect()}
    known = set(EXPORTED) | set(NOTIFY_METRICS) | {f"{name}_total" for name in worker} | {
        f"vix_breaker_redis_round_trip_seconds{suffix}" for suffix in ("", "_bucket", "_count", "_sum")}
    used = {name for rule in rules() for name in re.findall(r"\bvix_breaker_[a-z_]+", rule["expr"])}
    assert used and used <= known, used - known


@pytest.mark.parametrize("metric", ["_per_second", "vix_breaker_redis_time_seconds"])
def test_no_old_metric_names(metric):
    assert not [name for name in EXPORTED if metric in name]


def test_the_stale_alert_is_evaluated_often_enough_whatever_the_servers_default():
    """Review (ops): a stopped worker is stale for under a minute (3 intervals to 60 s after its last beat), and
    Prometheus's default evaluation_interval is 1 min: two evaluations 1 min apart never both see it, so
    VixBreakerWorkersStale (for: 15s) could not fire where the server kept its default. Its group sets its own
    interval. (promtool test rules steps every group at the test file's evaluation_interval and ignores a group's
    own, so this is checked here; the chain test runs a real Prometheus.)"""
    def seconds(text: str) -> float:
        number, unit = re.fullmatch(r"(\d+)(ms|s|m|h)", text).groups()
        return int(number) * {"ms": 0.001, "s": 1, "m": 60, "h": 3600}[unit]

    [group] = [group for path in RULE_FILES for group in yaml.safe_load(path.read_text())["groups"]
               if any(rule.get("alert") == "VixBreakerWorkersStale" for rule in group["rules"])]
    stale = next(rule for rule in group["rules"] if rule.get("alert") == "VixBreakerWorkersStale")
    assert "interval" in group and seconds(group["interval"]) <= seconds(stale["for"])


def test_every_alert_name_in_the_docs_is_a_shipped_rule():
    """An operator greps the rules for the alert name a doc gives: every `VixBreaker…`/`Breaker…` name in the
    README and docs/ is a rule's name (docs/metrics.md once said `BreakerWorkerClockSkew`)."""
    shipped = {rule["alert"] for rule in rules() if "alert" in rule}
    named = {name for path in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
             for name in re.findall(r"`((?:Vix)?Breaker[A-Z][A-Za-z0-9]+)`", path.read_text())}
    assert named and named <= shipped, sorted(named - shipped)

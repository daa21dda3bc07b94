"""The per-worker list in pages (issue 24): server-side cursor, host/id search, state filter, host view, CLI."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from breaker import PanicClock
from breaker.heartbeat import beat_json
from breaker.ops.cli import FLEET_ROWS, cli
from breaker.ops.fleet_pages import glob_escape, iter_workers, match_pattern, read_hosts, read_page

HOSTS = ("web-1", "web-2", "web-3", "api-1", "api-2")
PER_HOST = 500


def _beat(host: str, pid: int, seen: float, calls: dict) -> str:
    return beat_json(host=host, pid=pid, started=seen - 10, interval_s=60.0, calls=calls, fail_safe=0, tiers={},
                     override=None, error=None, version="0", seen=seen)


@pytest.fixture
def big_fleet(real_redis):
    """2 500 workers on 5 hosts: every third in panic, the rest calm; plus one garbage field."""
    now = float(real_redis.time()[0])
    beats = {f"{host}:{pid}:abcd": _beat(host, pid, now, {"PANIC_FULL": 1} if pid % 3 == 0 else {"NORMAL": 1})
             for host in HOSTS for pid in range(PER_HOST)}
    beats["junk"] = "not json"
    pipe = real_redis.pipeline(transaction=False)
    items = list(beats.items())
    for at in range(0, len(items), 1000):
        pipe.hset("brain:workers", mapping=dict(items[at : at + 1000]))
    pipe.execute()
    return real_redis




def test_a_page_is_bounded_and_the_cursor_walks_the_whole_hash(big_fleet):
    """Each page is one HSCAN of COUNT 300 (no HGETALL); following the cursor lists every worker exactly once."""
    clock = PanicClock(big_fleet)
    page = read_page(clock, count=300)
    assert page.cursor != 0 and page.scanned <= 330
    big_fleet.config_resetstat()
    ids = [beat.worker_id for beat in iter_workers(clock, count=300)]
    stats = big_fleet.info("commandstats")
    assert "cmdstat_hgetall" not in stats and stats["cmdstat_hscan"]["calls"] >= 2500 // 330
    assert len(ids) == len(set(ids)) == len(HOSTS) * PER_HOST


def test_filters_by_host_state_and_search(big_fleet):
    """--host is a server-side MATCH on the id; the state filter keeps only that state; limit stops early."""
    clock = PanicClock(big_fleet)
    web2_panic = list(iter_workers(clock, host="web-2", states=["panic"]))
    assert {b.host for b in web2_panic} == {"web-2"} and {b.state for b in web2_panic} == {"panic"}
    assert len(web2_panic) == len([p for p in range(PER_HOST) if p % 3 == 0])
    assert [b.worker_id for b in iter_workers(clock, search="api-1:42:")] == ["api-1:42:abcd"]
    assert len(list(iter_workers(clock, limit=7, states=["calm"]))) == 7
    with pytest.raises(ValueError, match="unknown state"):
        list(iter_workers(clock, states=["asleep"]))


def test_a_host_name_is_matched_literally(real_redis):
    """Glob characters in a host are escaped: `web-*` matches only a host literally called so."""
    assert glob_escape("a*b?[c]\\") == "a\\*b\\?\\[c\\]\\\\"
    assert match_pattern(host="web-*") == "web-\\*:*"
    now = float(real_redis.time()[0])
    real_redis.hset("brain:workers", mapping={"web-*:1:abcd": _beat("web-*", 1, now, {}),
                                              "web-1:1:abcd": _beat("web-1", 1, now, {})})
    assert [b.worker_id for b in iter_workers(PanicClock(real_redis), host="web-*")] == ["web-*:1:abcd"]


def test_the_host_view_counts_states_per_host(big_fleet):
    view = read_hosts(PanicClock(big_fleet), count=400)
    assert set(view.hosts) == set(HOSTS) and view.complete and view.invalid == 1
    panic = len([p for p in range(PER_HOST) if p % 3 == 0])
    assert all(per["panic"] == panic and per["calm"] == PER_HOST - panic for per in view.hosts.values())


@pytest.fixture
def run(big_fleet, redis_url):
    def invoke(*args):
        return CliRunner().invoke(cli, list(args), env={"REDIS_URL": redis_url})
    return invoke


def test_cli_fleet_default_output_is_a_summary_and_the_first_rows(run):
    result = run("fleet")
    assert result.exit_code == 0, result.stderr
    lines = result.stdout.strip().splitlines()
    assert lines[0].startswith("2500 workers") and len(lines) == 3 + FLEET_ROWS + 1
    assert "--limit" in lines[-1]


def test_cli_fleet_streams_json_with_filters(run):
    """--json is one document whose workers array is streamed; --limit/--state/--host apply."""
    result = run("fleet", "--json", "--limit", "10", "--state", "calm", "--host", "api-2")
    assert result.exit_code == 0, result.stderr
    doc = json.loads(result.stdout)
    assert doc["ok"] and doc["counts"]["calm"] + doc["counts"]["panic"] == 2500 and doc["complete"]
    assert len(doc["workers"]) == 10 and {(w["host"], w["state"]) for w in doc["workers"]} == {("api-2", "calm")}
    everything = json.loads(run("fleet", "--json").stdout)
    assert len(everything["workers"]) == 2500


def test_cli_fleet_hosts(run):
    result = run("fleet", "--hosts", "--json")
    assert result.exit_code == 0, result.stderr
    doc = json.loads(result.stdout)
    assert set(doc["hosts"]) == set(HOSTS) and doc["hosts"]["web-1"]["calm"] > 0
    assert "api-1" in run("fleet", "--hosts").stdout


def test_cli_fleet_json_stays_one_strict_document_when_a_page_read_fails(run, monkeypatch):
    """A page read failing half way through the streamed list (Redis gone, the deadline passed) still leaves one
    valid JSON document on stdout: the workers listed so far, then ok false and the error; exit status 1."""
    import redis

    import breaker.ops.fleet_pages as fleet_pages

    pages = {"read": 0}
    real_read_page = fleet_pages.read_page

    def failing_second_page(*args, **kwargs):
        pages["read"] += 1
        if pages["read"] == 2:
            raise redis.exceptions.TimeoutError("Timeout reading from socket")
        return real_read_page(*args, **kwargs)

    monkeypatch.setattr(fleet_pages, "read_page", failing_second_page)
    result = run("fleet", "--json")
    assert result.exit_code == 1
    doc = json.loads(result.stdout, parse_constant=lambda token: pytest.fail(f"not strict JSON: {token}"))
    assert doc["ok"] is False and "Timeout" in doc["error"] and doc["exit_status"] == 1
    assert 0 < len(doc["workers"]) < 2500 and doc["complete"] is True

"""`vix-breaker override schedule | list | cancel` against a real server: parsing WHEN and LEN, refusals exit 3,
--json shapes, server time, and one real subprocess."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest

from breaker import PanicClock
from breaker.ops.audit import AuditTrail
from breaker.ops.schedule import MAX_PLANNED, parse_amount, parse_when
from breaker.schedule import run_step
from tests.ops.cli_helpers import actions, doc, mint

ROOT = Path(__file__).resolve().parents[2]














@pytest.mark.parametrize("text, seconds", [("90s", 90), ("15m", 900), ("2h", 7200), ("1.5h", 5400), ("1d", 86400)])
def test_amounts(text, seconds):
    assert parse_amount(text) == seconds


@pytest.mark.parametrize("text", ["", "15", "m15", "-5m", "15 minutes", "1e3s", "nan s"])
def test_bad_amounts(text):
    with pytest.raises(ValueError):
        parse_amount(text)


def test_when_relative_iso_and_now():
    assert parse_when("+30s") == (None, 30.0) and parse_when("+2h") == (None, 7200.0)
    assert parse_when("now") == (None, 0.0)
    assert parse_when("2026-06-14T20:45:00Z") == (datetime(2026, 6, 14, 20, 45, tzinfo=UTC).timestamp(), None)
    assert parse_when("2026-06-14T20:45:00") == parse_when("2026-06-14T20:45:00+00:00")
    assert parse_when("2026-06-14T22:45:00+02:00") == parse_when("2026-06-14T20:45:00Z")
    with pytest.raises(ValueError):
        parse_when("tomorrow")


def test_schedule_list_cancel_round(run, real_redis):
    """Schedule from +30s for 15m (server time), list it (human and --json), cancel it: three audit entries."""
    now = PanicClock(real_redis).server_now()
    done = run("override", "schedule", "force_full", "--start", "+30s", "--length", "15m", "--why", "cup final",
               "--yes", "--json")
    assert done.exit_code == 0, done.output
    window = doc(done)["window"]
    assert window["mode"] == "force_full" and window["who"] == "alice"
    assert window["since"] == pytest.approx(now + 30, abs=3) and window["until"] - window["since"] == 900
    listed = run("override", "list", "--json")
    assert listed.exit_code == 0
    [shown] = doc(listed)["windows"]
    assert shown["id"] == window["id"] and shown["state"] == "planned" and 25 < shown["starts_in_s"] <= 31
    human = run("override", "list")
    assert window["id"] in human.stdout and "server time" in human.stdout and "UTC" in human.stdout
    cancelled = run("override", "cancel", window["id"], "--why", "postponed", "--yes", "--json")
    assert cancelled.exit_code == 0 and doc(cancelled)["cancelled"]["id"] == window["id"]
    assert doc(run("override", "list", "--json"))["windows"] == []
    assert actions(real_redis) == ["override_schedule", "override_schedule_cancel"]
    entries = [e for e in AuditTrail(real_redis).entries() if e.action != "token_create"]
    assert all(e.auth.startswith("token:") and e.role == "operator" for e in entries)


def test_an_iso_start_is_taken_as_server_time(run, real_redis):
    now = PanicClock(real_redis).server_now()
    start = datetime.fromtimestamp(now + 7200, UTC).replace(microsecond=0)
    done = run("override", "schedule", "force_full", "--start", start.isoformat().replace("+00:00", "Z"),
               "--length", "90s", "--why", "migration", "--yes", "--json")
    assert done.exit_code == 0, done.output
    assert doc(done)["window"]["since"] == start.timestamp()
    assert doc(done)["window"]["until"] == start.timestamp() + 90


@pytest.mark.parametrize("args, message", [
    (["--start", "+1m", "--length", "2h"], "at most 60"),  # too long (BREAKER_MAX_OVERRIDE_MIN)
    (["--start", "2020-01-01T00:00:00Z", "--length", "5m"], "past"),
    (["--start", "+40d", "--length", "5m"], "days ahead"),
])
def test_refusals_exit_3_and_write_nothing(run, real_redis, args, message):
    result = run("override", "schedule", "force_full", *args, "--why", "x", "--yes", "--json")
    assert result.exit_code == 3, result.output
    assert message in doc(result)["error"] and doc(result)["exit_status"] == 3
    assert actions(real_redis) == []


def test_overlap_and_unknown_cancel_exit_3(run, real_redis):
    assert run("override", "schedule", "force_full", "--start", "+1h", "--length", "30m", "--why", "a",
               "--yes").exit_code == 0
    overlap = run("override", "schedule", "force_calm", "--start", "+70m", "--length", "30m", "--why", "b", "--yes")
    assert overlap.exit_code == 3 and "overlap" in overlap.stderr
    assert run("override", "cancel", "nope", "--why", "x", "--yes").exit_code == 3
    assert actions(real_redis) == ["override_schedule"]


def test_the_max_override_setting_applies(run, real_redis):
    result = run("override", "schedule", "force_full", "--start", "+1m", "--length", "20m", "--why", "x", "--yes",
                 env={"BREAKER_MAX_OVERRIDE_MIN": "15"})
    assert result.exit_code == 3 and actions(real_redis) == []


@pytest.mark.parametrize("args", [
    ["--start", "soon", "--length", "5m"], ["--start", "+1m", "--length", "5"], ["--start", "+1m", "--length", "0s"],
    ["--start", "+1m"], ["--length", "5m"],
])
def test_bad_input_is_a_usage_error(run, real_redis, args):
    assert run("override", "schedule", "force_full", *args, "--why", "x", "--yes").exit_code == 2
    assert actions(real_redis) == []


def test_an_empty_reason_is_a_usage_error(run, real_redis):
    result = run("override", "schedule", "force_full", "--start", "+1m", "--length", "5m", "--why", "  ", "--yes")
    assert result.exit_code == 2 and actions(real_redis) == []


def test_force_calm_is_planned_waiting_for_approval(run, real_redis):
    """The CLI always talks to a real target: the two-person rule is on unless BREAKER_TWO_PERSON_RULE says off."""
    done = run("override", "schedule", "force_calm", "--start", "+1h", "--length", "15m", "--why", "feed migration",
               "--yes")
    assert done.exit_code == 0 and "waiting for a second verified approver" in done.stdout
    assert "WAITING" in run("override", "list").stdout
    lone = run("override", "schedule", "force_calm", "--start", "+3h", "--length", "15m", "--why", "y", "--yes",
               "--json", env={"BREAKER_TWO_PERSON_RULE": "false"})
    assert lone.exit_code == 3 and "break-glass" in doc(lone)["error"]  # an operator may not go it alone
    off = run("override", "schedule", "force_calm", "--start", "+3h", "--length", "15m", "--why", "y", "--yes",
              "--json", env={"BREAKER_TWO_PERSON_RULE": "false", "VIX_BREAKER_TOKEN": mint(real_redis, "ada", "admin")})
    assert off.exit_code == 0, off.output
    assert doc(off)["window"]["approved"] is True


def test_approve_window_binds_identity_and_digest(run, real_redis):
    """`override approve-window ID --digest D`: the requester, a stale digest, an operator, and the issuer of the
    requester's token are refused (exit 3, nothing written); another approver approves."""
    done = run("override", "schedule", "force_calm", "--start", "+1h", "--length", "15m", "--why", "feed", "--yes",
               "--json")
    window = doc(done)["window"]
    listed = doc(run("override", "list", "--json"))["windows"][0]
    assert listed["digest"] == window["digest"] and listed["requester_canonical"] == "alice"
    approve = ("override", "approve-window", window["id"], "--digest", window["digest"], "--yes", "--json")
    approver = mint(real_redis, "bob", "approver", by="ada")
    refused = [
        run(*approve),  # alice herself (an operator, too)
        run(*approve, env={"VIX_BREAKER_TOKEN": mint(real_redis, "ALICE", "approver")}),  # the same person
        run(*approve, env={"VIX_BREAKER_TOKEN": mint(real_redis, "root", "admin")}),  # issued alice's token
        run(*approve[:4], "0" * 16, "--yes", "--json", env={"VIX_BREAKER_TOKEN": approver}),
        run(*approve, env={"VIX_BREAKER_TOKEN": None}),  # no credentials
    ]
    assert [r.exit_code for r in refused] == [3] * 5, [r.output for r in refused]
    assert "issued" in doc(refused[2])["error"] and "changed" in doc(refused[3])["error"]
    assert actions(real_redis) == ["override_schedule"]
    ok = run(*approve, env={"VIX_BREAKER_TOKEN": approver})
    assert ok.exit_code == 0, ok.output
    assert doc(ok)["window"]["approved_by"] == "bob"
    assert actions(real_redis) == ["override_schedule", "force_calm_approved"]
    entry = AuditTrail(real_redis).entries()[-1]
    assert entry.role == "approver" and entry.auth.startswith("token:")


def test_who_writes_comes_from_the_credentials(run, real_redis):
    """No credentials, or a self-declared name scheduling force_calm: exit 3, nothing written; --who is gone."""
    none = run("override", "schedule", "force_full", "--start", "+1h", "--length", "5m", "--why", "x", "--yes",
               env={"VIX_BREAKER_TOKEN": None})
    shared = {"VIX_BREAKER_TOKEN": None, "VIX_BREAKER_USER": "sam", "VIX_BREAKER_PASSWORD": "pw",
              "BREAKER_OPERATOR_PASSWORD": "pw", "BREAKER_SECRETS_FILE": "/nonexistent"}
    calm = run("override", "schedule", "force_calm", "--start", "+1h", "--length", "5m", "--why", "x", "--yes",
               env=shared)
    assert (none.exit_code, calm.exit_code) == (3, 3), (none.output, calm.output)
    assert actions(real_redis) == []
    full = run("override", "schedule", "force_full", "--start", "+1h", "--length", "5m", "--why", "x", "--yes",
               "--json", env=shared)
    assert full.exit_code == 0 and doc(full)["window"]["who"] == "sam (self-declared)"
    assert AuditTrail(real_redis).entries()[-1].auth == "shared"
    assert run("override", "schedule", "force_full", "--start", "+3h", "--length", "5m", "--why", "x", "--who",
               "ci", "--yes").exit_code == 2


def test_not_confirmed_writes_nothing(run, real_redis):
    result = run("override", "schedule", "force_full", "--start", "+1m", "--length", "5m", "--why", "x", input="n\n")
    assert result.exit_code == 3 and actions(real_redis) == []


def test_cancel_mid_window_ends_its_override(run, real_redis):
    done = run("override", "schedule", "force_full", "--start", "now", "--length", "5m", "--why", "drill", "--yes",
               "--json")
    window_id, since = doc(done)["window"]["id"], doc(done)["window"]["since"]
    assert run_step(real_redis, key_prefix="brain:", max_s=3600, now=since)[0] == "applied"
    assert real_redis.get("brain:panic_override") is not None
    assert run("override", "cancel", window_id, "--why", "drill over", "--yes").exit_code == 0
    assert real_redis.get("brain:panic_override") is None


def test_as_a_real_process(redis_url, real_redis, alice_token):
    """`python -m breaker override schedule / list / cancel` as processes: exit statuses and JSON as documented."""
    env = {"REDIS_URL": redis_url, "PATH": "/usr/bin:/bin", "VIX_BREAKER_TOKEN": alice_token}

    def cli_process(*args):
        return subprocess.run([sys.executable, "-m", "breaker", *args], cwd=ROOT, env=env, capture_output=True,
                              text=True, timeout=60)

    done = cli_process("--json", "override", "schedule", "force_full", "--start", "+2h", "--length", "15m", "--why",
                       "cup final", "--yes")
    assert done.returncode == 0, done.stderr
    window_id = json.loads(done.stdout)["window"]["id"]
    assert cli_process("override", "schedule", "force_full", "--start", "+2h", "--length", "15m", "--why", "again",
                       "--yes").returncode == 3
    listed = json.loads(cli_process("override", "list", "--json").stdout)
    assert [w["id"] for w in listed["windows"]] == [window_id]
    assert cli_process("override", "cancel", window_id, "--why", "postponed", "--yes").returncode == 0
    assert actions(real_redis) == ["override_schedule", "override_schedule_cancel"]


def test_too_many_windows_as_a_real_process_exits_3_and_writes_nothing(run, redis_url, real_redis, alice_token):
    """Issue 23: with MAX_PLANNED windows planned, `python -m breaker override schedule` for one more (no overlap,
    in range) is refused: exit 3, one line saying how many are planned and the bound, nothing written."""
    for i in range(MAX_PLANNED):
        done = run("override", "schedule", "force_full", "--start", f"+{60 + 10 * i}m", "--length", "5m", "--why",
                   f"match {i}", "--yes")
        assert done.exit_code == 0, done.output
    stored = sorted(real_redis.zrange("brain:override_schedule", 0, -1))
    audited = real_redis.xlen("brain:audit")
    env = {"REDIS_URL": redis_url, "PATH": "/usr/bin:/bin", "VIX_BREAKER_TOKEN": alice_token}
    one_more = ["override", "schedule", "force_full", "--start", f"+{60 + 10 * MAX_PLANNED}m", "--length", "5m",
                "--why", "one too many", "--yes"]
    human = subprocess.run([sys.executable, "-m", "breaker", *one_more], cwd=ROOT, env=env, capture_output=True,
                           text=True, timeout=60)
    assert human.returncode == 3, (human.stdout, human.stderr)
    lines = human.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in human.stderr, human.stderr
    assert f"{MAX_PLANNED} windows are already planned" in lines[0] and f"at most {MAX_PLANNED}" in lines[0]
    as_json = subprocess.run([sys.executable, "-m", "breaker", "--json", *one_more], cwd=ROOT, env=env,
                             capture_output=True, text=True, timeout=60)
    assert as_json.returncode == 3 and json.loads(as_json.stdout)["exit_status"] == 3
    assert f"at most {MAX_PLANNED}" in json.loads(as_json.stdout)["error"]
    assert sorted(real_redis.zrange("brain:override_schedule", 0, -1)) == stored
    assert real_redis.xlen("brain:audit") == audited
    assert actions(real_redis) == ["override_schedule"] * MAX_PLANNED

"""The vix-breaker CLI against a real server: every command, --json shapes, exit statuses, confirmation, audit."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from breaker import PanicClock, __version__
from breaker.heartbeat import WORKERS_KEY_NAME, beat_json
from breaker.ops.approvals import pending_request
from breaker.ops.audit import AuditTrail
from breaker.ops.cli import cli
from breaker.ops.credentials import verify_password
from breaker.ops.roles import Principal
from breaker.override import OVERRIDE_KEY_NAME, parse_override
from tests.ops.cli_helpers import actions, doc, mint

ROOT = Path(__file__).resolve().parents[2]














def test_version_answers_without_redis():
    """--version prints the package version and needs no REDIS_URL."""
    result = CliRunner().invoke(cli, ["--version"], env={"REDIS_URL": None})
    assert result.exit_code == 0 and result.stdout.strip() == f"vix-breaker {__version__}"


def test_without_redis_url_the_cli_refuses_as_a_usage_error():
    """No REDIS_URL: exit 2 with a message saying so; no embedded server is started."""
    result = CliRunner().invoke(cli, ["status"], env={"REDIS_URL": None})
    assert result.exit_code == 2
    assert "REDIS_URL is not set" in result.stderr and result.stdout == ""


def test_unreachable_redis_fails_with_one_json_document():
    """Redis refusing connections: exit 1; with --json one error document on stdout, the message on stderr."""
    result = CliRunner().invoke(cli, ["status", "--json"], env={"REDIS_URL": "redis://127.0.0.1:1/0"})
    assert result.exit_code == 1
    error = doc(result)
    assert error["ok"] is False and error["exit_status"] == 1 and "Redis at redis://127.0.0.1:1/0" in error["error"]
    assert "vix-breaker:" in result.stderr


def test_status_without_panic(run):
    """status --json: no clock, every class at tier 0 NORMAL with the base TTL, no override, an empty fleet."""
    result = run("status", "--json", "--base-ttl", "30")
    assert result.exit_code == 0, result.stderr
    status = doc(result)
    assert set(status) == {"ok", "target", "now", "base_ttl", "clock", "classes", "override", "fleet"}
    assert status["clock"]["exists"] is False and status["override"] is None
    assert [(c["stakes"], c["tier"], c["mode"], c["ttl"]) for c in status["classes"]] == [
        ("high_stakes", 0, "NORMAL", 30), ("medium_stakes", 0, "NORMAL", 30), ("low_stakes", 0, "NORMAL", 30)]
    assert status["fleet"]["workers"] == 0 and status["fleet"]["counts"]["panic"] == 0


def test_status_human_output_is_a_table(run, real_redis):
    """Without --json, status shows the target, the clock line and one table row per stakes class."""
    PanicClock(real_redis).observe(real_redis.time()[0] - 50 * 60)
    result = run("status")
    assert result.exit_code == 0
    assert "panic since" in result.stdout and ("(50 min 00 s)" in result.stdout or "(50 min 01 s)" in result.stdout)
    assert [line.split()[:3] for line in result.stdout.splitlines() if line.startswith("low_stakes")] == [
        ["low_stakes", "3", "DEGRADED"]]


def test_panic_start_asks_and_a_no_writes_nothing(run, real_redis):
    """Without --yes the CLI names the target and asks; 'n' exits 3 with nothing written and nothing audited."""
    result = run("panic", "start", "--why", "drill", input="n\n")
    assert result.exit_code == 3
    assert "Start a panic on redis://127.0.0.1" in result.stderr and "(prefix brain:)" in result.stderr
    assert real_redis.exists("brain:panic_start_ts") == 0 and actions(real_redis) == []


def test_panic_start_confirmed_writes_and_audits(run, real_redis):
    """'y' starts a back-dated panic, audited once as the token's verified operator, with --why and the
    credential kind; --json says what was written."""
    result = run("panic", "start", "--why", "runbook drill", "--back-date-min", "70",
                 "--hold-min", "5", "--json", input="y\n")
    assert result.exit_code == 0, result.stderr
    started = doc(result)
    assert started["started"] is True and started["tier"] == 3 and started["hold_s"] == 300
    assert 299 <= real_redis.ttl("brain:panic_start_ts") <= 300
    entries = AuditTrail(real_redis).entries()[1:]
    assert [(e.action, e.who, e.why, e.tier, e.role) for e in entries] == [
        ("panic_start", "alice", "runbook drill", 3, "operator")]
    assert entries[0].auth.startswith("token:") and entries[0].auth[6:] in run("token", "list").stdout
    stored = float(real_redis.get("brain:panic_start_ts"))
    assert abs(stored - started["panic_start"]) < 1e-3


def test_running_panic_is_refused_unless_overwrite(run, real_redis):
    """A second start is refused (exit 3, JSON with the running clock); --overwrite replaces it."""
    assert run("panic", "start", "--why", "first", "--yes").exit_code == 0
    refused = run("panic", "start", "--why", "second", "--yes", "--json")
    assert refused.exit_code == 3
    body = doc(refused)
    assert body["ok"] is False and body["started"] is False and body["running"]["exists"] is True
    assert run("panic", "start", "--why", "third", "--yes", "--overwrite", "--back-date-min", "20").exit_code == 0
    assert actions(real_redis) == ["panic_start", "panic_start"]


def test_panic_end_deletes_and_audits_with_the_verified_name(run, real_redis):
    """panic end deletes the clock; the audit entry names the token's operator (no --who exists)."""
    PanicClock(real_redis).observe(real_redis.time()[0])
    result = run("panic", "end", "--why", "drill over", "--yes", "--json")
    assert result.exit_code == 0 and doc(result) == {"ok": True, "existed": True, "who": "alice"}
    assert real_redis.exists("brain:panic_start_ts") == 0
    assert [(e.action, e.who) for e in AuditTrail(real_redis).entries()][1:] == [("panic_end", "alice")]
    assert run("panic", "end", "--why", "x", "--who", "bob", "--yes").exit_code == 2  # --who is gone


def test_clear_needs_a_real_reason_and_records_the_zombie_verdict(run, real_redis):
    """clear refuses a short --why as a usage error; a clock without expiry is cleared with its verdict audited."""
    real_redis.set("brain:panic_start_ts", "1795000000.0")  # no expiry: a zombie
    short = run("clear", "--why", "stuck", "--yes")
    assert short.exit_code == 2 and real_redis.exists("brain:panic_start_ts") == 1
    result = run("clear", "--why", "zombie since the failover", "--yes", "--json")
    assert result.exit_code == 0
    cleared = doc(result)
    assert cleared["existed"] is True and cleared["zombie"]["suspect"] is True
    assert any("no expiry" in reason for reason in cleared["zombie"]["reasons"])
    entry = AuditTrail(real_redis).entries()[-1]
    assert entry.action == "zombie_clear" and entry.detail["zombie"] is True


def test_override_set_extend_clear(run, real_redis):
    """override set stores the SPEC 7 JSON, extend moves its end, clear removes it: three audit entries."""
    result = run("override", "set", "force_full", "--minutes", "10", "--why", "bad feed", "--yes", "--json")
    assert result.exit_code == 0, result.stderr
    stored = parse_override(real_redis.get(f"brain:{OVERRIDE_KEY_NAME}"))
    assert stored.mode == "force_full" and stored.who == "alice" and stored.why == "bad feed"
    assert doc(result)["override"] == json.loads(stored.to_json())
    extended = run("override", "extend", "--minutes", "5", "--why", "still bad", "--yes", "--json")
    assert extended.exit_code == 0
    assert doc(extended)["override"]["until"] == pytest.approx(stored.until + 300)
    status = doc(run("status", "--json"))
    assert status["override"]["mode"] == "force_full"
    assert {c["mode"] for c in status["classes"]} == {"PANIC_FULL"}
    cleared = run("override", "clear", "--why", "feed fixed", "--yes", "--json")
    assert cleared.exit_code == 0 and doc(cleared)["existed"] is True
    assert real_redis.exists(f"brain:{OVERRIDE_KEY_NAME}") == 0
    assert actions(real_redis) == ["override_set", "override_extend", "override_clear"]


def test_override_refusals_exit_3_and_write_nothing(run, real_redis):
    """Longer than BREAKER_MAX_OVERRIDE_MIN, or extending when none is in force: exit 3, nothing written."""
    too_long = run("override", "set", "force_calm", "--minutes", "90", "--why", "x", "--yes", "--json")
    assert too_long.exit_code == 3 and "at most 60 minutes" in doc(too_long)["error"]
    lower = run("override", "set", "force_calm", "--minutes", "20", "--why", "x", "--yes",
                env={"BREAKER_MAX_OVERRIDE_MIN": "15"})
    assert lower.exit_code == 3
    none = run("override", "extend", "--minutes", "5", "--why", "x", "--yes")
    assert none.exit_code == 3 and "no override in force" in none.stderr
    assert real_redis.exists(f"brain:{OVERRIDE_KEY_NAME}") == 0 and actions(real_redis) == []


def test_writes_without_why_are_usage_errors(run, real_redis):
    """A write without --why, or an unknown override mode, exits 2 before touching Redis."""
    assert run("panic", "end", "--yes").exit_code == 2
    assert run("override", "set", "force_maybe", "--minutes", "5", "--why", "x", "--yes").exit_code == 2
    assert actions(real_redis) == []


def test_fleet_lists_workers_from_their_heartbeats(run, real_redis):
    """fleet --json shows each worker's beat and the counts by state; the human table names the worker."""
    now = float(real_redis.time()[0])
    beat = beat_json(host="web-1", pid=42, started=now - 60, interval_s=1.0, calls={"PANIC_FULL": 7}, fail_safe=0,
                     tiers={"low_stakes": 1}, override=None, error=None, version="0.1.0", seen=now)
    real_redis.hset(f"brain:{WORKERS_KEY_NAME}", "web-1:42:abcd", beat)
    result = run("fleet", "--json")
    assert result.exit_code == 0, result.stderr
    fleet = doc(result)
    assert fleet["counts"]["panic"] == 1
    assert [(w["worker_id"], w["state"], w["calls"]) for w in fleet["workers"]] == [
        ("web-1:42:abcd", "panic", {"PANIC_FULL": 7})]
    assert "web-1:42:abcd" in run("fleet").stdout


def test_history_shows_the_audit_trail(run, real_redis):
    """history --json lists the entries oldest first; --limit keeps the newest."""
    for why in ("one", "two", "three"):
        run("override", "set", "force_full", "--minutes", "1", "--why", why, "--yes")
    entries = doc(run("history", "--json", "--limit", "2"))["entries"]
    assert [(e["action"], e["why"]) for e in entries] == [("override_set", "two"), ("override_set", "three")]
    assert "override_set" in run("history").stdout


def test_hash_password_prompts_twice_or_reads_stdin(run):
    """hash-password asks twice with hidden input, or reads one line with --stdin; the hash verifies."""
    prompted = run("hash-password", input="s3cret\ns3cret\n")
    assert prompted.exit_code == 0 and "s3cret" not in prompted.stdout
    assert verify_password(prompted.stdout.strip(), "s3cret")
    piped = run("hash-password", "--stdin", "--json", input="hunter2\n")
    assert piped.exit_code == 0 and verify_password(doc(piped)["hash"], "hunter2")
    assert run("hash-password", "--stdin", input="\n").exit_code == 2


def test_real_subprocess_commands_and_python_m(redis_url, real_redis, alice_token):
    """The installed entry point's module runs as a process: --version, a confirmed write, status --json."""
    env = {"REDIS_URL": redis_url, "PATH": "/usr/bin:/bin", "VIX_BREAKER_TOKEN": alice_token}

    def cli_process(*args, input=None):
        return subprocess.run([sys.executable, "-m", "breaker", *args], cwd=ROOT, env=env, input=input,
                              capture_output=True, text=True, timeout=60)

    assert cli_process("--version").stdout.strip() == f"vix-breaker {__version__}"
    started = cli_process("panic", "start", "--why", "subprocess drill", input="y\n")
    assert started.returncode == 0, started.stderr
    assert "Continue? [y/N]" in started.stderr
    status = json.loads(cli_process("--json", "status").stdout)
    assert status["clock"]["exists"] is True and status["classes"][2]["mode"] == "PANIC_FULL"
    assert cli_process("override", "set", "force_full", "--minutes", "999", "--why", "x", "--yes").returncode == 3
    assert cli_process("panic", "end").returncode == 2
    assert actions(real_redis) == ["panic_start"]


def test_every_command_as_a_real_process(redis_url, real_redis, alice_token):
    """Each command, run as `python -m breaker … --json`, exits as documented and prints one JSON document."""
    env = {"REDIS_URL": redis_url, "PATH": "/usr/bin:/bin", "VIX_BREAKER_TOKEN": alice_token}
    steps = [
        (["status"], None, 0), (["fleet"], None, 0),
        (["panic", "start", "--why", "drill", "--yes"], None, 0),
        (["panic", "start", "--why", "drill", "--yes"], None, 3),
        (["override", "set", "force_calm", "--minutes", "5", "--why", "stuck signal", "--yes"], None, 0),  # a request
        (["override", "set", "force_full", "--minutes", "5", "--why", "feed incident", "--yes"], None, 0),
        (["override", "extend", "--minutes", "5", "--why", "still stuck", "--yes"], None, 0),
        (["override", "pending"], None, 0),
        (["override", "clear", "--why", "signal fixed", "--yes"], None, 0),
        (["whoami"], None, 0), (["token", "list"], None, 0),
        (["token", "create", "ci", "--role", "viewer"], None, 3),  # alice is no admin
        (["token", "revoke", "abc"], None, 3),
        (["override", "approve", "abc", "--digest", "x", "--yes"], None, 3),
        (["panic", "end", "--why", "drill over", "--yes"], None, 0),
        (["clear", "--why", "zombie after failover", "--yes"], None, 0),
        (["history", "--limit", "50"], None, 0),
        (["hash-password", "--stdin"], "pw\n", 0),
    ]
    for args, stdin, expected in steps:
        done = subprocess.run([sys.executable, "-m", "breaker", "--json", *args], cwd=ROOT, env=env, input=stdin,
                              capture_output=True, text=True, timeout=60)
        assert done.returncode == expected, (args, done.stderr)
        assert json.loads(done.stdout)["ok"] is (expected == 0), args
    assert actions(real_redis) == ["panic_start", "force_calm_requested", "override_set", "override_extend",
                                   "override_clear", "force_calm_withdrawn", "panic_end", "zombie_clear"]


def test_force_calm_is_a_request_under_the_two_person_rule(run, real_redis):
    """The CLI always targets a real Redis: force_calm files a request (no override). Turning the rule off in
    one's own shell makes a direct force_calm break-glass: refused to an operator, an admin's is audited so."""
    requested = run("override", "set", "force_calm", "--minutes", "20", "--why", "stuck signal", "--yes", "--json")
    assert requested.exit_code == 0, requested.output
    assert doc(requested)["requested"]["minutes"] == 20
    assert real_redis.exists(f"brain:{OVERRIDE_KEY_NAME}") == 0
    assert pending_request(PanicClock(real_redis)) is not None
    alone = run("override", "set", "force_calm", "--minutes", "20", "--why", "stuck signal", "--yes", "--json",
                env={"BREAKER_TWO_PERSON_RULE": "false"})
    assert alone.exit_code == 3 and "admin" in doc(alone)["error"]
    direct = run("override", "set", "force_calm", "--minutes", "20", "--why", "stuck signal", "--yes", "--json",
                 env={"BREAKER_TWO_PERSON_RULE": "false", "VIX_BREAKER_TOKEN": mint(real_redis, "root", "admin")})
    assert direct.exit_code == 0 and doc(direct)["override"]["mode"] == "force_calm"
    assert actions(real_redis) == ["force_calm_requested", "override_set", "break_glass"]



@pytest.mark.parametrize("url", ["redis://localhost:99999", "redis+sentinel://h:26379/mymaster"])
def test_a_bad_redis_url_option_is_a_usage_error_like_a_bad_redis_url(url):
    """--redis-url is checked as REDIS_URL is: exit 2 naming the option, never a traceback (exit 1)."""
    result = CliRunner().invoke(cli, ["--redis-url", url, "status"], env={"REDIS_URL": None})
    assert result.exit_code == 2, result.output
    assert "--redis-url" in result.stderr and not isinstance(result.exception, ValueError)


def test_key_prefix_option_is_checked_as_the_setting_is():
    """--key-prefix with spaces is refused as BREAKER_KEY_PREFIX would be (exit 2), before touching Redis."""
    result = CliRunner().invoke(cli, ["--redis-url", "redis://127.0.0.1:1", "--key-prefix", "a b", "status"],
                                env={"REDIS_URL": None})
    assert result.exit_code == 2 and "--key-prefix" in result.stderr


def test_extending_force_calm_under_the_two_person_rule_is_refused(run, real_redis):
    """An approved force_calm is not lengthened by one operator alone: `override extend` exits 3, nothing written;
    force_full still extends (the rule is about force_calm)."""
    from breaker.ops.overrides import read_override, set_override

    clock, trail = PanicClock(real_redis), AuditTrail(real_redis)
    approved = set_override(clock, trail, Principal.of("alice, approved by bob"), mode="force_calm", minutes=5,
                            why="stuck signal")
    refused = run("override", "extend", "--minutes", "30", "--why", "longer", "--yes", "--json")
    assert refused.exit_code == 3, refused.output
    assert "two-person" in doc(refused)["error"]
    assert read_override(clock).override.until == approved.until and actions(real_redis) == ["override_set"]
    set_override(clock, trail, Principal.of("alice"), mode="force_full", minutes=5, why="data incident")
    assert run("override", "extend", "--minutes", "30", "--why", "longer", "--yes").exit_code == 0


def test_nan_lengths_are_usage_errors_not_tracebacks(run, real_redis):
    """`--minutes nan` / `--back-date-min nan` pass click's ranges; the shared checks' ValueError is exit 2."""
    for args in (("override", "set", "force_full", "--minutes", "nan"), ("panic", "start", "--back-date-min", "nan")):
        result = run(*args, "--why", "w", "--yes")
        assert result.exit_code == 2 and "finite" in result.stderr, (args, result.output, result.exception)
    assert actions(real_redis) == [] and not real_redis.exists("brain:panic_start_ts")


def test_an_audit_stream_that_cannot_take_the_entry_fails_cleanly(run, real_redis):
    """The audit key holding another type: every write exits 1 with the reason and writes nothing."""
    real_redis.set("brain:audit", "not a stream")
    for args in (("override", "set", "force_full", "--minutes", "5"), ("panic", "start")):
        result = run(*args, "--why", "w", "--yes")
        assert result.exit_code == 1 and "not a stream" in result.stderr, (args, result.output, result.exception)
    assert not real_redis.exists("brain:panic_override") and not real_redis.exists("brain:panic_start_ts")


@pytest.mark.parametrize("stored", ["1e20", "99999999999999", "1e300"])
def test_status_shows_a_start_beyond_the_calendar(run, real_redis, stored):
    """A zombie start far in the future (the case an on-call runs `status` for) is shown, not a crash."""
    real_redis.set("brain:panic_start_ts", stored)
    result = run("status")
    assert result.exit_code == 0, (result.output, result.exception)
    assert "(out of range)" in result.stdout and "in the future" in result.stdout


def test_human_output_shows_control_characters_as_escapes(run, real_redis):
    """Worker- and operator-supplied text (ids, errors, who, why) reaches the terminal as text: an escape
    sequence or a line break is printed escaped, never acted on (no cleared screen, no forged table row)."""
    now = float(real_redis.time()[0])
    hostile = "web-1\x1b[2J\x1b]52;c;ZXZpbA==\x07"
    beat = beat_json(host="h", pid=42, started=now - 60, interval_s=1.0, calls={"NORMAL": 1}, fail_safe=0, tiers={},
                     override=None, error="boom\nweb-9:1:ffff  calm  0.1 s", version="0.1.0", seen=now)
    real_redis.hset(f"brain:{WORKERS_KEY_NAME}", hostile, beat)
    shared = {"VIX_BREAKER_TOKEN": None, "BREAKER_OPERATOR_PASSWORD": "pw", "VIX_BREAKER_PASSWORD": "pw",
              "BREAKER_SECRETS_FILE": "/nonexistent"}
    run("override", "set", "force_full", "--minutes", "5", "--why", "a\rb", "--yes",
        env={**shared, "VIX_BREAKER_USER": "mallory\x1b[31m"})
    for command in ("fleet", "status", "history"):
        out = run(command).stdout
        assert "\x1b" not in out and "\x07" not in out and "\r" not in out, command
    fleet = run("fleet").stdout
    assert len(fleet.strip().splitlines()) == 4 and "\\x1b[2J" in fleet  # summary, blank, header, one row
    requested = run("override", "set", "force_calm", "--minutes", "5", "--why", "w", "--yes",
                    env={**shared, "VIX_BREAKER_USER": "eve\x1b]0;pwned\x07"})  # refused: a name with controls
    assert requested.exit_code == 3
    assert "\x1b" not in requested.stderr and "no control" in requested.stderr
    with pytest.raises(ValueError, match="letters, digits"):
        mint(real_redis, "eve\x1b]0;pwned\x07")


def test_hash_password_needs_no_redis_and_ignores_a_broken_redis_url(run):
    """hash-password touches no Redis: a malformed REDIS_URL does not stop an admin adding an operator."""
    done = run("hash-password", "--stdin", "--json", input="new operator pw\n",
               env={"REDIS_URL": "redis+sentinel://nowhere:99999"})
    assert done.exit_code == 0, done.output
    assert doc(done)["hash"].startswith("scrypt$")


def test_status_under_force_full_shows_the_answer_and_the_clock_without_it(run, real_redis):
    """status uses Live's answers function: a 100 min panic under force_full answers TTL 0 PANIC_FULL for every
    class, with the clock's tier kept as "without_override" (issue 20)."""
    PanicClock(real_redis).observe(real_redis.time()[0] - 100 * 60)
    assert run("override", "set", "force_full", "--minutes", "10", "--why", "bad feed", "--yes").exit_code == 0
    status = doc(run("status", "--json"))
    assert [(c["mode"], c["ttl"], c["overridden_by"]) for c in status["classes"]] == [
        ("PANIC_FULL", 0, "force_full")] * 3
    assert [c["without_override"]["tier"] for c in status["classes"]] == [2, 3, 4]
    human = run("status").stdout
    assert "tier 4 NEW_NORMAL" in human


def test_the_cli_on_the_consoles_sandbox_behaves_as_the_console_there(run, real_redis):
    """Pointed at the console's embedded server (marked as a sandbox, on loopback), force_calm is set at once as
    in the console's sandbox, not filed as a request nobody there can approve (issue 20)."""
    from breaker.ops.target import mark_sandbox

    mark_sandbox(real_redis, "brain:")
    result = run("override", "set", "force_calm", "--minutes", "10", "--why", "trying it out", "--yes", "--json")
    assert result.exit_code == 0, result.stderr
    assert doc(result)["override"]["mode"] == "force_calm"
    assert pending_request(PanicClock(real_redis)) is None
    asked = run("panic", "end", "--why", "x", input="n\n")
    assert "the console's sandbox: no worker reads it" in asked.stderr


def test_a_sandbox_marker_off_loopback_is_not_a_sandbox(real_redis):
    from breaker.ops.target import is_sandbox, mark_sandbox

    mark_sandbox(real_redis, "brain:")
    assert is_sandbox(real_redis, "redis://127.0.0.1:6379/0", "brain:")
    assert not is_sandbox(real_redis, "redis://redis.internal:6379/0", "brain:")
    assert not is_sandbox(real_redis, "rediss://127.0.0.1:6379/0", "brain:")


def test_a_sandbox_marker_copied_from_another_server_is_not_a_sandbox(run, real_redis):
    """Review (identity): the marker alone made a loopback server a sandbox, so a production Redis reached through
    an SSH tunnel or a unix socket, holding a marker copied or restored from a console's embedded server, took CLI
    writes with no credentials at all, as the admin-role sandbox principal (tokens included). The marker names
    the server it was written on (its INFO run_id); another server's marker, or one without it, counts for nothing."""
    import json as json_module

    from breaker.ops.target import is_sandbox, mark_sandbox, sandbox_key

    real_redis.set(sandbox_key("brain:"), json_module.dumps({"pid": 1, "since": 0, "run_id": "f" * 40}))
    assert not is_sandbox(real_redis, "redis://127.0.0.1:6379/0", "brain:")
    real_redis.set(sandbox_key("brain:"), json_module.dumps({"pid": 1, "since": 0}))  # the old form
    assert not is_sandbox(real_redis, "redis://127.0.0.1:6379/0", "brain:")
    result = run("token", "create", "mallory", "--role", "admin", "--why", "x", "--json",
                 env={"VIX_BREAKER_TOKEN": None})  # no credentials at all
    assert result.exit_code == 3 and b"mallory" not in b"".join(real_redis.hvals("brain:tokens"))
    mark_sandbox(real_redis, "brain:")
    assert is_sandbox(real_redis, "redis://127.0.0.1:6379/0", "brain:")


def test_status_ends_a_hand_written_override_where_the_workers_do(run, real_redis):
    """A ten-hour force_full written by hand: workers honour it BREAKER_MAX_OVERRIDE_MIN (here 30 min) from its
    since; status showed it in force to its stored end. It now shows the end the workers apply, the stored one
    beside it, and the clock's answers once the cap has passed."""
    now = float(real_redis.time()[0])
    key = f"brain:{OVERRIDE_KEY_NAME}"
    real_redis.set(key, json.dumps({"mode": "force_full", "who": "hand", "why": "x", "since": now - 600,
                                    "until": now + 36_000}))
    env = {"BREAKER_MAX_OVERRIDE_MIN": "30"}
    status = doc(run("status", "--json", env=env))
    assert status["override"]["until"] == pytest.approx(now - 600 + 1800)
    assert status["override"]["stored_until"] == pytest.approx(now + 36_000)
    assert "workers stop at their BREAKER_MAX_OVERRIDE_MIN" in run("status", env=env).stdout
    real_redis.set(key, json.dumps({"mode": "force_full", "who": "hand", "why": "x", "since": now - 3600,
                                    "until": now + 36_000}))
    status = doc(run("status", "--json", env=env))
    assert "BREAKER_MAX_OVERRIDE_MIN" in status["override"]["invalid_reason"]
    assert [c["overridden_by"] for c in status["classes"]] == [None] * 3

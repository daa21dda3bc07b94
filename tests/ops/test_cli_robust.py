"""Issue 25 item 6 as real processes: strict JSON, a --why that holds text, no traceback for any input, and
URLs whose options redis-py would accept but then fail on refused at configuration time."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from breaker.ops.audit import AuditTrail
from breaker.override import OVERRIDE_KEY_NAME

ROOT = Path(__file__).resolve().parents[2]


def _reject(token: str):
    raise ValueError(f"not strict JSON: {token}")


def strict(text: str):
    return json.loads(text, parse_constant=_reject)


def cli(*args, url: str, stdin: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "breaker", *args], cwd=ROOT,
                          env={"REDIS_URL": url, "PATH": "/usr/bin:/bin", "BREAKER_TWO_PERSON_RULE": "true"},
                          input=stdin, capture_output=True, text=True, timeout=60)


def test_json_history_is_strict_json_with_a_nan_in_the_stream(real_redis, redis_url):
    trail = AuditTrail(real_redis)
    trail.record(who="worker-1", action="state_change", kind="state_change", tier=2, ttl=float("nan"),
                 panic_start=float("inf"), ratio=float("-inf"))
    done = cli("--json", "history", url=redis_url)
    assert done.returncode == 0, done.stderr
    [entry] = strict(done.stdout)["entries"]
    assert entry["detail"]["ttl"] is None


@pytest.mark.parametrize("why", ["", "   ", "\t\n"])
@pytest.mark.parametrize("command", [
    ["panic", "start"], ["panic", "end"], ["clear"],
    ["override", "set", "force_full", "--minutes", "5"], ["override", "set", "force_calm", "--minutes", "5"],
    ["override", "extend", "--minutes", "5"], ["override", "clear"],
    ["override", "schedule", "force_full", "--start", "+1h", "--length", "5m"], ["override", "cancel", "w1"],
])
def test_a_blank_why_is_refused_for_every_write(real_redis, redis_url, command, why):
    done = cli("--json", *command, "--why", why, "--yes", url=redis_url)
    assert done.returncode == 2, (command, done.stdout, done.stderr)
    assert "Traceback" not in done.stderr and "--why" in done.stderr
    assert real_redis.xlen("brain:audit") == 0 and not real_redis.exists(f"brain:{OVERRIDE_KEY_NAME}")


def test_a_blank_why_force_calm_request_ends_in_a_usage_error_not_a_traceback(real_redis, redis_url):
    done = cli("override", "set", "force_calm", "--minutes", "5", "--why", " ", "--yes", "--json", url=redis_url)
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert done.stderr.strip().splitlines()[-1].startswith("Error: Invalid value for '--why'")
    assert real_redis.xlen("brain:audit") == 0 and not real_redis.keys("brain:*request*")


@pytest.mark.parametrize("query", ["ssl_password=x", "ssl_cert_reqs=required", "sssl=1", "timeout=1"])
def test_a_url_option_redis_py_would_fail_on_is_refused_in_one_line(redis_url, query):
    done = cli("--json", "status", url=f"{redis_url}?{query}")
    assert done.returncode == 2  # a configuration error is a usage error (docs/cli.md)
    assert "Traceback" not in done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "REDIS_URL" in lines[0] and query.split("=")[0] in lines[0], done.stderr
    assert "=x" not in lines[0] or "ssl_password" not in query  # a password is not echoed


def test_an_unexpected_error_is_one_line_and_exit_1(redis_url, real_redis):
    """The last-resort guard: whatever a command raises, one line on stderr, exit 1, JSON when asked."""
    real_redis.set("brain:panic_start_ts", "1")
    done = subprocess.run(
        [sys.executable, "-c",
         "import breaker.ops.cli as c\n"
         "def boom(*a, **k): raise KeyError('boom')\n"
         "c.read_summary = boom\n"
         "import sys; sys.argv = ['vix-breaker', '--json', 'fleet']; c.main()"],
        cwd=ROOT, env={"REDIS_URL": redis_url, "PATH": "/usr/bin:/bin"}, capture_output=True, text=True, timeout=60)
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert strict(done.stdout)["ok"] is False
    assert len(done.stderr.strip().splitlines()) == 1 and "KeyError" in done.stderr

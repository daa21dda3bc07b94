"""The breaker logs like a library: through logging.getLogger("breaker"), decided by the host's configuration."""

from __future__ import annotations

import io
import json
import logging
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import structlog

from breaker import PanicClock, VIXCircuitBreaker, configure_logging
from breaker.logs import JsonLinesFormatter, breaker_logger

ROOT = Path(__file__).resolve().parents[1]


class HostJsonFormatter(logging.Formatter):
    """What a host service would write: a stdlib formatter emitting every non-standard record attribute as JSON."""

    STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {"message", "asctime"}

    def format(self, record):
        doc = {"logger": record.name, "level": record.levelname, "message": record.getMessage()}
        doc.update({k: v for k, v in vars(record).items() if k not in self.STANDARD})
        return json.dumps(doc, default=str)


@pytest.fixture
def breaker_stdlib_logger():
    """The stdlib logger ``breaker``, restored to its untouched state after the test."""
    logger = logging.getLogger("breaker")
    saved = (list(logger.handlers), logger.level, logger.propagate)
    yield logger
    logger.handlers[:] = saved[0]
    logger.setLevel(saved[1])
    logger.propagate = saved[2]


def _run_worker(code: str, url: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code), url], cwd=ROOT, capture_output=True,
                          text=True, timeout=120)


def test_unconfigured_host_sees_nothing_during_a_steady_panic(real_redis, redis_url):
    """A worker that configured no logging makes 10 000 steady-panic calls on a real server and prints nothing."""
    PanicClock(real_redis).observe(__import__("time").time() - 20 * 60)  # someone else started it: tier 2 for low
    done = _run_worker("""
        import sys
        from breaker import VIXCircuitBreaker, redis_client
        breaker = VIXCircuitBreaker(redis_client(sys.argv[1], timeout_ms=100))
        contexts = [{"stakes": "high"}, {"stakes": "medium"}, {"stakes": "low"}]
        answers = {breaker.get_ttl(60, "panic", contexts[i % 3]) for i in range(10_000)}
        assert (5, "PANIC_PARTIAL") in answers, answers
    """, redis_url)
    assert done.returncode == 0, done.stderr
    assert done.stdout == "" and done.stderr == ""


def test_unconfigured_host_still_sees_warnings_on_stderr():
    """Python's last-resort handler prints WARNING and above: a worker without Redis says so once, on stderr."""
    done = _run_worker("""
        from breaker import VIXCircuitBreaker
        breaker = VIXCircuitBreaker(None)
        for _ in range(1000):
            breaker.get_ttl(60, "panic")
    """, "")
    assert done.returncode == 0 and done.stdout == ""
    assert done.stderr.splitlines() == [
        "PANIC_WITHOUT_RELIABLE_TIMESTAMP redis_status=not_configured answer=PANIC_FULL"]


def test_host_json_handler_receives_state_changes(real_redis, fake_clock, breaker_stdlib_logger):
    """A host routing logging.getLogger("breaker") to its JSON handler finds each state change with its fields."""
    sink = io.StringIO()
    handler = logging.StreamHandler(sink)
    handler.setFormatter(HostJsonFormatter())
    breaker_stdlib_logger.addHandler(handler)
    breaker_stdlib_logger.setLevel(logging.INFO)
    breaker = VIXCircuitBreaker(real_redis, clock=fake_clock, server_time=False)
    for _ in range(100):
        breaker.get_ttl(60, "panic", {"stakes": "low"})
        fake_clock.advance(60)
    lines = [json.loads(line) for line in sink.getvalue().splitlines()]
    changes = [line for line in lines if line["event"] == "VIX_TTL_STATE_CHANGE"]
    assert [(c["previous_tier"], c["tier"]) for c in changes] == [(None, 1), (1, 2), (2, 3), (3, 4)]
    assert all(c["logger"] == "breaker" and c["level"] == "INFO" for c in changes)
    assert changes[1]["message"].startswith("VIX_TTL_STATE_CHANGE match_importance=low_stakes mode=PANIC_PARTIAL")
    assert not [line for line in lines if line["level"] == "DEBUG"]


def test_disabled_level_formats_nothing(breaker_stdlib_logger):
    """Below the logger's level an event's fields are never rendered (one level check, no formatting)."""

    class Loud:
        def __repr__(self):
            raise AssertionError("formatted a disabled line")

    breaker_stdlib_logger.setLevel(logging.WARNING)
    log = breaker_logger()
    log.info("HIDDEN", value=Loud())
    log.debug("HIDDEN", value=Loud())
    assert not log.is_enabled_for(logging.INFO)


def test_fields_named_like_record_attributes_do_not_break_logging(breaker_stdlib_logger):
    """A field called ``name`` or ``msg`` is kept (renamed ``name_``), never a KeyError from the LogRecord."""
    sink = io.StringIO()
    handler = logging.StreamHandler(sink)
    handler.setFormatter(JsonLinesFormatter())
    breaker_stdlib_logger.addHandler(handler)
    breaker_stdlib_logger.setLevel(logging.INFO)
    breaker_logger().warning("ODD_FIELDS", name="x", msg="y", tier=3)
    line = json.loads(sink.getvalue())
    assert line["event"] == "ODD_FIELDS" and line["name_"] == "x" and line["msg_"] == "y" and line["tier"] == 3


def test_configure_logging_keeps_a_hosts_structlog_configuration(breaker_stdlib_logger):
    """A host that configured structlog keeps its processors; breaker lines still go to configure_logging's stream."""
    host_processors = [structlog.processors.KeyValueRenderer()]
    structlog.configure(processors=host_processors)
    sink = io.StringIO()
    configure_logging("INFO", "json", stream=sink)
    assert structlog.get_config()["processors"] is host_processors
    breaker_logger().info("VIX_TTL_STATE_CHANGE", tier=2)
    line = json.loads(sink.getvalue())
    assert line["event"] == "VIX_TTL_STATE_CHANGE" and line["level"] == "info" and line["tier"] == 2


def test_configure_logging_twice_installs_one_handler(breaker_stdlib_logger):
    """Calling configure_logging again replaces its handler and level: one line per event, new level honoured."""
    first, second = io.StringIO(), io.StringIO()
    configure_logging("INFO", "console", stream=first)
    configure_logging("WARNING", "console", stream=second)
    log = breaker_logger()
    log.info("HIDDEN")
    log.warning("SHOWN", tier=3)
    assert first.getvalue() == ""
    assert second.getvalue().count("\n") == 1 and "[warning ] breaker: SHOWN tier=3" in second.getvalue()


def test_capture_logs_sees_every_level_of_the_breaker(fake_clock):
    """structlog.testing.capture_logs() captures the breaker's events, DEBUG included, whatever logging says."""
    from structlog.testing import capture_logs

    breaker = VIXCircuitBreaker(None, clock=fake_clock)
    with capture_logs() as logs:
        breaker.get_ttl(60, "panic")
        breaker_logger().debug("DEBUG_SEEN")
    assert [(e["event"], e["log_level"]) for e in logs] == [
        ("PANIC_WITHOUT_RELIABLE_TIMESTAMP", "warning"), ("VIX_TTL_STATE_CHANGE", "info"), ("DEBUG_SEEN", "debug")]

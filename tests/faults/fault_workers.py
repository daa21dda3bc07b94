"""Worker processes for the fault tests (importable by spawned children)."""

from __future__ import annotations

import time
from collections import Counter

CONTEXTS = ({"league": "Ligue 2"}, {"league": "Premier League"}, {"league": "Champions League"}, None)
MAX_CALLS = 50_000
MAX_SECONDS = 60.0
OUTAGE_EVENTS = ("REDIS_UNAVAILABLE", "REDIS_RECOVERED")


def mixed_load(url, worker, barrier, phase, progress, stop, results) -> None:
    """Panic and calm calls in a loop until told to stop; report answers per phase, exceptions and log events."""
    from structlog.testing import capture_logs

    from breaker import VIXCircuitBreaker, redis_client

    client = redis_client(url)
    breaker = VIXCircuitBreaker(client, refresh_interval_s=0, retry_after_s=0.2)
    answers = {0: Counter(), 1: Counter(), 2: Counter()}
    exceptions: list[str] = []
    outage_events: list[tuple[str, int]] = []  # (REDIS_UNAVAILABLE | REDIS_RECOVERED, phase), in order
    deadline = time.monotonic() + MAX_SECONDS
    seen = 0
    with capture_logs() as logs:
        barrier.wait(timeout=60)
        for i in range(MAX_CALLS):
            if stop.is_set() or time.monotonic() > deadline:
                break
            status = "panic" if i % 3 else "normal"
            context = CONTEXTS[i % len(CONTEXTS)]
            before = phase.value
            try:
                answer = breaker.get_ttl(60, status, context)
            except Exception as exc:  # the promise under test: this never happens
                exceptions.append(repr(exc))
                continue
            if phase.value == before:
                answers[before][(status, answer[0], str(answer[1]))] += 1
                progress[worker * 3 + before] += 1
            outage_events += [(e["event"], before) for e in logs[seen:] if e["event"] in OUTAGE_EVENTS]
            seen = len(logs)
            time.sleep(0.002)
        initialized_at = [e["start"] for e in logs if e["event"] == "PANIC_TIMESTAMP_INITIALIZED"]
    agreed = _agreed_start(breaker) if phase.value == 2 else None
    results.put(
        {
            "worker": worker,
            "answers": {p: dict(c) for p, c in answers.items()},
            "exceptions": exceptions,
            "outage_events": outage_events,
            "initialized_at": initialized_at,
            "agreed_start": agreed,
        }
    )
    client.close()


def _agreed_start(breaker) -> float | None:
    """The start one more observation returns; a loaded machine may miss a 50 ms timeout, so up to 5 tries."""
    for _ in range(5):
        try:
            return breaker.panic_clock.observe(time.time()).start
        except Exception:
            time.sleep(0.05)
    return None

"""Figure S (issue 23): what the schedule step adds to the worker's one round trip, in the server's own count.

``INFO commandstats`` ``usec_per_call`` of the round-trip script (a calm worker's trip with its beat and
aggregates), measured in one run for: the script without the fragment (the pre-issue-23 text, loaded under its
own sha), the script with the step off (ARGV 22 ''), with an empty schedule, with 32 planned windows ahead and
one ended behind (the common case between windows), and inside a started window (the step decodes the member on
every trip). Kinds alternate over three runs; the median is kept.
"""

from __future__ import annotations

import hashlib
import statistics
import time
from typing import Any

from breaker import PanicClock, refresh
from breaker.client import redis_client
from breaker.heartbeat import beat_json
from breaker.override import OverrideMode
from breaker.schedule import FRAGMENT, SCHEDULE_KEY_NAME, Window, ms

from .table import Row

PREFIX = "sbench:"
TRIPS = 2000
PLANNED = 32
KINDS = ("without", "off", "empty", "planned", "in_force")


def script_without_fragment() -> str:
    """The round-trip script as it was before issue 23: no fragment, no step (the reply keeps its 12 places)."""
    assert refresh.SCRIPT.startswith(FRAGMENT)
    main = refresh.SCRIPT[len(FRAGMENT):]
    start = main.index("local sched = {false, false}\n")
    end = main.index("local override, override_len = false, 0\n")
    return main[:start] + "local sched = {false, false}\n" + main[end:]


def _windows(client: Any, now: float, kind: str) -> None:
    key = f"{PREFIX}{SCHEDULE_KEY_NAME}"
    client.delete(key, f"{PREFIX}panic_override")
    if kind not in ("planned", "in_force"):
        return
    members = {}
    ended = Window("ended", OverrideMode.FORCE_FULL, "bench", "bench", ms(now - 7200), ms(now - 3600), state="ended")
    members[ended.to_json()] = ended.since
    for i in range(PLANNED):
        w = Window(f"w{i}", OverrideMode.FORCE_FULL, "bench", "bench", ms(now + 3600 * (i + 1)),
                   ms(now + 3600 * (i + 1) + 600))
        members[w.to_json()] = w.since
    if kind == "in_force":
        current = Window("now", OverrideMode.FORCE_FULL, "bench", "bench", ms(now - 60), ms(now + 3000),
                         state="started")
        members[current.to_json()] = current.since
    client.zadd(key, members)


def usec_per_call(url: str) -> dict[str, float]:
    client = redis_client(url, timeout_ms=2000)
    clock = PanicClock(client, key_prefix=PREFIX)
    old = script_without_fragment()
    old_sha = hashlib.sha1(old.encode()).hexdigest()
    client.script_load(old)
    client.script_load(refresh.SCRIPT)
    beat = beat_json(host="bench", pid=1, started=1.0, interval_s=1.0, calls={"NORMAL": 40}, fail_safe=0, tiers={},
                     override=None, error=None, version="bench")
    runs: dict[str, list[float]] = {}
    for run in range(3):
        for kind in KINDS:
            seconds, micros = client.time()
            _windows(client, seconds + micros / 1e6, kind)
            args = refresh.arguments(
                clock._keys, observe=False, now="", ttl_s=900, worker_id=f"bench:{run}:{kind}", beat=beat,
                beat_ttl_s=60, hexpire=True, ascii_only=False, max_age_s=48 * 3600, local_now=repr(time.time()),
                state="calm", calls={"NORMAL": 40}, max_override_s=None if kind == "off" else 3600.0)
            sha = old_sha if kind == "without" else refresh.SCRIPT_SHA.decode()
            client.config_resetstat()
            pipe = client.pipeline(transaction=False)
            for _ in range(TRIPS):
                pipe.evalsha(sha, *args)
            pipe.execute()
            stats = client.info("commandstats")
            runs.setdefault(kind, []).append(float(stats["cmdstat_evalsha"]["usec_per_call"]))
    client.delete(f"{PREFIX}{SCHEDULE_KEY_NAME}", f"{PREFIX}panic_override")
    client.close()
    return {kind: statistics.median(values) for kind, values in runs.items()}


LABELS = {
    "off": "the step off (ARGV 22 ''): the fragment's functions defined, not run",
    "empty": "an empty schedule",
    "planned": f"{PLANNED} planned windows ahead, one ended behind (between windows)",
    "in_force": f"inside a started window ({PLANNED} planned ahead)",
}


def schedule_step(bench: Any) -> list[Row]:
    cost = usec_per_call(bench.url)
    base = cost["without"]
    rows = [Row("S", f"round-trip script without the schedule fragment (calm trip, beat + aggregates; commandstats "
                     f"usec_per_call, {TRIPS:,} pipelined EVALSHA, median of 3)", f"{base:.1f} µs")]
    for kind in KINDS[1:]:
        rows.append(Row("S", f"the same with the schedule step: {LABELS[kind]}", f"{cost[kind]:.1f} µs",
                        baseline=f"{base:.1f} µs", ratio=f"{cost[kind] - base:+.1f} µs"))
    return rows


def main() -> None:
    """``python -m bench.schedule``: figure S alone, on its own embedded server."""
    from .harness import BenchServer
    from .table import render

    bench = BenchServer.start()
    try:
        print(render(schedule_step(bench)))
    finally:
        bench.stop()


if __name__ == "__main__":
    main()

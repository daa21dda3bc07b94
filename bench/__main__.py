"""``make bench``: one run, one real server, one table; exit status 1 when a goal is missed."""

from __future__ import annotations

import os
import platform
import sys
import time
from functools import partial

import redis

from . import (
    capacity,
    cluster,
    console,
    demo_fleet,
    fleet,
    log_volume,
    memory,
    micro,
    notify,
    operator_reads,
    protocol,
    schedule,
    single_thread,
)
from .harness import SUBPROCESS_ERRORS, BenchServer, configure_bench_logging
from .table import Row, render


def _machine() -> str:
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            model = next(line.split(":", 1)[1].strip() for line in cpuinfo if line.startswith("model name"))
    except (OSError, StopIteration):
        model = platform.processor() or "unknown CPU"
    return f"{os.cpu_count()} cores ({model}), Python {platform.python_version()}, redis-py {redis.__version__}"


def main() -> int:
    load_at_start = os.getloadavg()[:1]
    counter = configure_bench_logging("INFO")
    bench = BenchServer.start()
    version = bench.client.info("server").get("valkey_version") or bench.client.info("server").get("redis_version")
    figures = [
        partial(single_thread.panic_path, bench),
        cluster.panic_path,
        partial(single_thread.calm_path, bench),
        partial(fleet.fleet, bench),
        micro.micro,
        partial(log_volume.log_volume, bench, counter),
        lambda: [console.live_refresh(bench)],
        partial(console.render_times, bench),
        lambda: [console.fleet_read(bench)],
        lambda: [console.fleet_render(bench)],
        partial(memory.memory, bench),
        partial(protocol.protocol, bench),
        partial(schedule.schedule_step, bench),
        partial(demo_fleet.demo_fleet, bench),
        partial(operator_reads.operator_reads, bench),
        partial(capacity.capacity, bench),
        partial(notify.notify_figures, bench),
    ]
    rows = []
    began = time.perf_counter()
    try:
        for figure in figures:
            rows.extend(figure())
            print(f"[{time.perf_counter() - began:5.0f} s] {rows[-1].figure}: {rows[-1].measure}", file=sys.stderr,
                  flush=True)
    finally:
        bench.stop()
    errors = counter.total("error") + sum(SUBPROCESS_ERRORS)
    rows.append(Row("✓", "error lines logged during the run (a fail-safe answer skips Redis: it would flatter ours)",
                    str(errors), goal="0", met=errors == 0))
    load = ", ".join(f"{value:.1f}" for value in load_at_start + os.getloadavg()[:1])
    print(f"Machine: {_machine()}, Valkey {version} (embedded, loopback TCP); load average at start, end: {load}.")
    print(f"Command: make bench (.venv/bin/python -m bench), {time.perf_counter() - began:.0f} s.\n")
    print(render(rows))
    missed = [row for row in rows if row.met is False]
    if missed:
        print(f"\n{len(missed)} goal(s) missed: " + "; ".join(row.measure for row in missed))
        return 1
    print("\nEvery goal met.")
    return 0


if __name__ == "__main__":
    sys.exit(main())

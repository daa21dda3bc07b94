"""Figure 8: what the demo fleet costs: CPU of its processes, workers and get_ttl answers per second.

The default fleet (8 processes × 8 worker identities, 12 markets of each class per process) plays the long
panic at 120× against the bench server, started from the fleet's CLI as ``make demo``'s console starts it.
CPU is read from /proc (user + system ticks of the conductor and its workers) between two instants after
every worker is up, so interpreter start-up is not counted; answers per second come from the fleet's own
load stream.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from breaker.ops.demo.load import read_points
from breaker.ops.demo.marker import read_marker

from .harness import BenchServer
from .table import Row

PROCESSES, IDENTITIES, PER_CLASS = 8, 8, 12
SECONDS = 20.0
PREFIX = "bench:demo:"
ROOT = Path(__file__).resolve().parents[1]
CPU_GOAL = 0.5  # of one core, for the default fleet


def _cpu_s(pid: int) -> float:
    """User + system CPU seconds of ``pid`` and its children (by /proc's parent pids)."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as stat:
                fields = stat.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(entry) == pid or int(fields[1]) == pid:  # fields[1] is the parent pid
            total += (int(fields[11]) + int(fields[12])) / ticks
    return total


def demo_fleet(bench: BenchServer) -> list[Row]:
    client = bench.client
    env = {**os.environ, "REDIS_URL": bench.url, "BREAKER_KEY_PREFIX": PREFIX}
    fleet = subprocess.Popen(
        [sys.executable, "-m", "breaker.ops.demo", "--scenario", "long_panic", "--processes", str(PROCESSES),
         "--identities", str(IDENTITIES), "--per-class", str(PER_CLASS)],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            marker = read_marker(client, PREFIX)
            if marker is not None and marker.state == "playing":
                break
            time.sleep(0.2)
        else:
            raise RuntimeError("the demo fleet did not start playing within 120 s")
        time.sleep(3.0)  # past the first second of counts
        cpu_before, began = _cpu_s(fleet.pid), time.monotonic()
        time.sleep(SECONDS)
        cpu = _cpu_s(fleet.pid) - cpu_before
        wall = time.monotonic() - began
        points = [p for p in read_points(client, PREFIX, run=marker.run) if p.at >= time.time() - wall]
    finally:
        fleet.terminate()
        try:
            fleet.wait(timeout=20)
        except subprocess.TimeoutExpired:
            fleet.kill()
            fleet.wait()
    workers = PROCESSES * IDENTITIES
    share = cpu / wall
    answers = sum(p.answers for p in points) / max(1, len(points))
    reads = workers * PER_CLASS * 3 / 0.5  # every identity reads every market once per 0.5 s tick
    label = f"demo fleet, {PROCESSES} processes × {IDENTITIES} workers, long panic at 120×, {SECONDS:.0f} s"
    return [
        Row("8", f"{label}: CPU of all its processes", f"{100 * share:.0f} % of one core",
            goal=f"≤ {100 * CPU_GOAL:.0f} %", met=share <= CPU_GOAL),
        Row("8", f"{label}: get_ttl answers/s (cache misses) and cache reads/s", f"{answers:,.0f}/s, {reads:,.0f}/s"),
        Row("8", "demo fleet: simulated workers per core at that cost (extrapolated)",
            f"{workers / share:,.0f}" if share > 0 else "—"),
    ]

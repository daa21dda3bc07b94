"""Figure 6: what the console costs: round trips for one Live refresh, render time per page (AppTest)."""

from __future__ import annotations

import contextlib
import os
import re
import statistics
import time
from collections.abc import Iterator
from pathlib import Path

from redis.connection import AbstractConnection

from breaker import AdaptivePanicQuota, PanicClock
from breaker.ops.status import class_statuses

from .harness import BenchServer, server_commands
from .table import Row

ROOT = Path(__file__).resolve().parents[1]
APP = ROOT / "app.py"
RENDER_RUNS = 5


class RoundTrips:
    """Requests sent by every redis-py connection of this process (a pipeline is one request)."""

    def __init__(self) -> None:
        self.count = 0


@contextlib.contextmanager
def counting_round_trips() -> Iterator[RoundTrips]:
    counter = RoundTrips()
    original = AbstractConnection.send_packed_command

    def send_packed_command(self, command, check_health=True):
        counter.count += 1
        return original(self, command, check_health)

    AbstractConnection.send_packed_command = send_packed_command
    try:
        yield counter
    finally:
        AbstractConnection.send_packed_command = original


def live_refresh(bench: BenchServer) -> Row:
    """The Live panel's data, computed through breaker functions as the page does."""
    bench.client.flushall()
    clock = PanicClock(bench.client)
    clock.observe(time.time() - 3600)
    quota = AdaptivePanicQuota()
    try:
        from breaker.ops import zombie_verdict
    except ImportError:  # built by the console change; without it the refresh is the read and the tiers
        zombie_verdict = None
    before = server_commands(bench.client)
    with counting_round_trips() as trips:
        reading = clock.read(time.time())
        class_statuses(reading, 60, quota)
        if zombie_verdict is not None:
            zombie_verdict(reading, 900.0)
    commands = server_commands(bench.client) - before
    return Row("6", "console: Redis round trips for one Live refresh (`PanicClock.read` + tiers + zombie verdict)",
               f"{trips.count} ({commands} commands: MULTI … EXEC)", goal="1 pipeline", met=trips.count == 1)


def page_paths() -> list[str]:
    """The page scripts the console registers with ``st.Page`` (in app.py or its helpers), in order."""
    sources = [APP, *sorted((ROOT / "pages").glob("*.py"))]
    found = [path for source in sources for path in re.findall(r'st\.Page\(\s*"([^"]+\.py)"', source.read_text())]
    return list(dict.fromkeys(found))


def render_times(bench: BenchServer) -> list[Row]:
    from streamlit.testing.v1 import AppTest

    os.environ["REDIS_URL"] = bench.url
    os.environ["BREAKER_LOG_LEVEL"] = "WARNING"
    rows = []
    at = AppTest.from_file(str(APP), default_timeout=60)
    at.run()
    if not page_paths():
        return [Row("6", "console: AppTest render per page", "no st.Page found in app.py or pages/: no number")]
    for path in page_paths():
        label = f"console: AppTest render, `{path}` in `app.py` (median of {RENDER_RUNS} warm runs)"
        if not (ROOT / path).exists():
            rows.append(Row("6", label, "page not built yet: no number"))
            continue
        timings, trips = [], []
        try:
            at.switch_page(path)
            at.run()
            for _ in range(RENDER_RUNS):
                with counting_round_trips() as counter:
                    began = time.perf_counter()
                    at.run()
                    timings.append((time.perf_counter() - began) * 1000)
                trips.append(counter.count)
        except Exception as exc:  # a page under construction: say so, keep the rest of the table
            rows.append(Row("6", label, f"did not run: {type(exc).__name__}: {str(exc)[:60]}"))
            continue
        if at.exception:
            rows.append(Row("6", label, f"error: {at.exception[0].message[:60]}"))
            continue
        titles = [title.value for title in at.title]
        if Path(path).stem.capitalize() not in titles:  # a number for another page would be no number
            rows.append(Row("6", label, f"rendered {titles or 'no title'} instead: no number"))
            continue
        trip_count = round(statistics.median(trips))
        rendered = f"{statistics.median(timings):,.0f} ms, {trip_count} round trip{'s' if trip_count != 1 else ''}"
        rows.append(Row("6", label, rendered))
    return rows

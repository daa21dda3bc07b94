"""The conductor: plays a scenario to the fleet, accelerates the clock, and writes the marker and the load.

It runs in the fleet's main process and starts the worker processes (:mod:`.worker`) as its children.
Each tick it applies the console's commands, advances the scenario clock by ``speed × dt`` (or not at all
while paused), moves the stored panic start so that every reader sees that same accelerated duration
(:mod:`.accelerate`), ends the clock after an accelerated calm period, and rewrites the marker. Once a
second it turns the workers' cache-miss counts into one point of the backend-load stream.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ...clock import DEFAULT_PANIC_KEY_TTL_S, PanicClock
from ...importance import MatchImportance
from ...policy import AdaptivePanicQuota
from .accelerate import end_if_unobserved, move_start
from .lifetime import parent_alive
from .load import CLASSES, READY_FIELD, SIDES, LoadPoint, append_point, miss_field, take_pending
from .marker import MARKER_TTL_S, DemoMarker, demo_key, pop_commands
from .scenario import InvalidScenario, Scenario, check_speed, load_scenario

log = logging.getLogger("breaker.demo")
LOAD_EVERY_S = 1.0
# The markets' panics come and go in real seconds (the signal is not accelerated, the clock is): a calm
# period shorter than this would end a panic in the gap between two markets' shocks.
MIN_CALM_PERIOD_S = 8.0
READY_TIMEOUT_S = 60.0


@dataclass
class FleetShape:
    """How many processes, identities per process and markets per class; the worker's timings."""

    processes: int = 8
    identities: int = 8
    per_class: int = 12
    tick_s: float = 0.5
    window_s: float = 30.0

    @property
    def workers(self) -> int:
        return self.processes * self.identities


def worker_command(shape: FleetShape, prefix: str, index: int, parent_pid: int, log_level: str) -> list[str]:
    return [sys.executable, "-m", "breaker.ops.demo.worker", "--prefix", prefix, "--index", str(index),
            "--identities", str(shape.identities), "--per-class", str(shape.per_class), "--tick", str(shape.tick_s),
            "--window", str(shape.window_s), "--parent-pid", str(parent_pid), "--log-level", log_level]


@dataclass
class Playback:
    """Where the scenario is: pure state, advanced by :meth:`advance`."""

    scenario: Scenario | None = None
    speed: float = 1.0
    state: str = "stopped"
    run: str = ""
    started: float = 0.0
    scenario_s: float = 0.0
    finished: bool = False
    played: bool = field(default=False)  # a panic clock of ours may exist

    def play(self, scenario: Scenario, speed: float | None, now: float) -> None:
        self.scenario, self.speed = scenario, scenario.speed if speed is None else check_speed(speed)
        self.state, self.run, self.started, self.scenario_s = "playing", uuid.uuid4().hex[:8], now, 0.0
        self.finished, self.played = False, True

    def advance(self, dt: float, now: float) -> None:
        if self.state != "playing" or self.scenario is None:
            return
        self.scenario_s += self.speed * dt
        if self.scenario_s >= self.scenario.minutes * 60.0:
            if self.scenario.loop:
                self.play(self.scenario, self.speed, now)
            else:
                self.state, self.finished = "stopped", True

    def shares(self) -> tuple[str, dict[MatchImportance, float]]:
        if self.scenario is None or self.state in ("starting", "stopped"):
            return ("finished" if self.finished else "stopped"), {stakes: 0.0 for stakes in MatchImportance}
        phase, shares = self.scenario.at(self.scenario_s / 60.0)
        return (phase.name if phase else "finished"), shares


class Conductor:
    """The fleet's main loop; ``spawn(index)`` starts worker process ``index`` (tests pass their own)."""

    def __init__(self, client: Any, prefix: str, shape: FleetShape, *, spawn: Callable[[int], Any] | None = None,
                 parent_pid: int | None = None, panic_key_ttl_s: int = DEFAULT_PANIC_KEY_TTL_S,
                 clock: Callable[[], float] = time.time, server_clock: Callable[[], float] | None = None) -> None:
        self.client = client
        self.prefix = prefix
        self.shape = shape
        self.spawn = spawn
        self.parent_pid = parent_pid
        self.panic_clock = PanicClock(client, key_prefix=prefix, panic_key_ttl_s=panic_key_ttl_s)
        self.calm_period_s = float(panic_key_ttl_s)
        self.clock = clock
        # Workers write the clock in the server's time (SPEC 3): judge its age and duration in the same clock.
        self.server_clock = server_clock or self.panic_clock.server_now
        self.quota = AdaptivePanicQuota()
        self.playback = Playback()
        self.workers: list[Any] = []
        self._last_load = clock()

    def handle(self, command: dict[str, Any], now: float) -> None:
        action = command.get("action")
        playback = self.playback
        if action == "play":
            try:
                scenario = load_scenario(str(command.get("scenario") or "tour"))
                speed = command.get("speed")
                playback.play(scenario, None if speed is None else float(speed), now)
            except (InvalidScenario, ValueError, TypeError) as exc:
                log.error("DEMO_COMMAND_REFUSED: %s", exc)
                return
            self.panic_clock.end()  # a new run starts from calm, not from the last run's panic
        elif action == "pause" and playback.state == "playing":
            playback.state = "paused"
        elif action == "resume" and playback.state == "paused":
            playback.state = "playing"
        elif action == "stop":
            playback.state, playback.finished = "stopped", False
            self.panic_clock.end()

    def tick(self, dt: float) -> None:
        now = self.clock()
        for command in pop_commands(self.client, self.prefix):
            self.handle(command, now)
        playback = self.playback
        playback.advance(dt, now)
        if playback.state == "playing":
            move_start(self.panic_clock, (playback.speed - 1.0) * dt)
        elif playback.state == "paused":
            move_start(self.panic_clock, -dt)  # hold the duration still
        server_now = self.server_clock()
        if playback.played and playback.state != "paused":
            calm_period_s = max(MIN_CALM_PERIOD_S, self.calm_period_s / playback.speed)
            if end_if_unobserved(self.panic_clock, server_now, calm_period_s):
                log.warning("DEMO_CLOCK_ENDED: no panic observed for %.1f s (the calm period at %g×)",
                            calm_period_s, playback.speed)
        self.write_marker(now)
        if now - self._last_load >= LOAD_EVERY_S:
            self.write_load(now, now - self._last_load, server_now)
            self._last_load = now

    def marker(self) -> DemoMarker:
        playback = self.playback
        phase, shares = playback.shares()
        scenario = playback.scenario
        return DemoMarker(
            scenario=scenario.name if scenario else "", title=scenario.title if scenario else "",
            speed=playback.speed, state=playback.state, started=playback.started, pid=os.getpid(), run=playback.run,
            minute=playback.scenario_s / 60.0, total_minutes=scenario.minutes if scenario else 0.0, phase=phase,
            workers=self.shape.workers, shares={stakes.value: share for stakes, share in shares.items()},
        )

    def write_marker(self, now: float) -> None:
        pipe = self.client.pipeline(transaction=True)
        pipe.delete(demo_key(self.prefix))
        pipe.hset(demo_key(self.prefix), mapping=self.marker().fields())
        pipe.expire(demo_key(self.prefix), MARKER_TTL_S)
        pipe.execute()

    def clock_tiers(self, server_now: float) -> dict[str, int]:
        """The tier each class is in by the clock (0 without one): what Live shows at that moment."""
        reading = self.panic_clock.read(server_now)
        if reading.start is None:
            return {stakes: 0 for stakes in CLASSES}
        minutes = (reading.duration_s or 0.0) / 60.0
        return {s.value: self.quota.decide(0, minutes, s, True).tier for s in MatchImportance}

    def write_load(self, now: float, elapsed: float, server_now: float) -> None:
        counts = take_pending(self.client, self.prefix)
        playback = self.playback
        phase, _ = playback.shares()
        rates = {side: {c: counts.get(miss_field(side, c), 0.0) / elapsed for c in CLASSES} for side in SIDES}
        append_point(self.client, self.prefix, LoadPoint(
            at=now, run=playback.run, minute=playback.scenario_s / 60.0, phase=phase, ours=rates["ours"],
            seed=rates["seed"], tiers=self.clock_tiers(server_now), answers=counts.get("answers", 0.0) / elapsed,
        ))

    def start_workers(self) -> None:
        if self.spawn is not None:
            self.workers = [self.spawn(i) for i in range(self.shape.processes)]

    def check_workers(self) -> None:
        """A worker process that died is started again (its identities come back with new worker ids)."""
        for i, proc in enumerate(self.workers):
            if getattr(proc, "poll", lambda: None)() is not None and self.spawn is not None:
                log.warning("DEMO_WORKER_RESTARTED: process %d exited with %s", i, proc.returncode)
                self.workers[i] = self.spawn(i)

    def stop_workers(self) -> None:
        for proc in self.workers:
            if getattr(proc, "poll", lambda: 0)() is None:
                proc.terminate()
        deadline = time.monotonic() + 5
        for proc in self.workers:
            try:
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()

    def cleanup(self) -> None:
        """Leave no demo behind: the marker, the pending counts and, if we played one, the panic clock."""
        try:
            self.client.delete(demo_key(self.prefix))
            if self.playback.played:
                self.panic_clock.end()
        except Exception as exc:  # the server may be gone first (the console stopped it)
            log.warning("DEMO_CLEANUP_FAILED: %s", exc)

    def wait_for_workers(self, tick_s: float) -> None:
        """Hold the scenario until every worker process has sent its first counts (at most READY_TIMEOUT_S):
        starting 8 interpreters on a busy machine takes seconds, and at 120× a second is two scenario minutes."""
        self.playback.state = "starting"
        ready, deadline = 0.0, time.monotonic() + READY_TIMEOUT_S
        while ready < self.shape.processes and time.monotonic() < deadline and self._parent_alive():
            self.write_marker(self.clock())
            time.sleep(tick_s)
            ready += take_pending(self.client, self.prefix).get(READY_FIELD, 0.0)
        self.playback.state = "stopped"

    def _parent_alive(self) -> bool:
        return self.parent_pid is None or parent_alive(self.parent_pid)

    def run(self, *, play: tuple[str, float | None] | None = None, tick_s: float = 0.25,
            until_finished: bool = False) -> None:
        """Start the workers, play ``play`` once they are up, and tick until the parent is gone (or the
        scenario finished, with ``until_finished``)."""
        self.start_workers()
        try:
            self.wait_for_workers(tick_s)
            if play is not None:
                self.handle({"action": "play", "scenario": play[0], "speed": play[1]}, self.clock())
            last = time.monotonic()
            while self._parent_alive():
                time.sleep(tick_s)
                now = time.monotonic()
                try:
                    self.tick(now - last)
                except Exception as exc:  # Redis hiccup: the next tick tries again
                    log.warning("DEMO_TICK_FAILED: %s: %s", type(exc).__name__, exc)
                last = now
                self.check_workers()
                if until_finished and self.playback.finished:
                    break
        finally:
            self.stop_workers()
            self.cleanup()

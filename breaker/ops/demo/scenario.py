"""Scenarios as data: one TOML file each in ``scenarios/``, a list of phases in scenario minutes.

A phase says for how long (``minutes``) what share of each stakes class's markets reads panic
(``panic_share``: one number for every class, or a table by class). ``flicker_min`` makes the phase's
panic come and go: on for the first half of each period, calm for the second. ``speed`` is how many
scenario seconds pass per real second unless the operator picks another; ``loop`` plays it again.
"""

from __future__ import annotations

import math
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ...importance import MatchImportance

SCENARIO_DIR = Path(__file__).with_name("scenarios")
MAX_SPEED = 3600.0


class InvalidScenario(ValueError):
    """A scenario file that cannot be played; the message names the file and the field."""


@dataclass(frozen=True)
class Phase:
    name: str
    minutes: float
    panic_share: dict[MatchImportance, float] = field(default_factory=dict)
    flicker_min: float | None = None

    def share_at(self, minute_in_phase: float) -> dict[MatchImportance, float]:
        """The share of each class in panic ``minute_in_phase`` minutes into the phase."""
        if self.flicker_min and (minute_in_phase % self.flicker_min) >= self.flicker_min / 2:
            return {stakes: 0.0 for stakes in MatchImportance}
        return {stakes: self.panic_share.get(stakes, 0.0) for stakes in MatchImportance}


@dataclass(frozen=True)
class Scenario:
    name: str
    title: str
    description: str
    speed: float
    phases: tuple[Phase, ...]
    loop: bool = False

    @property
    def minutes(self) -> float:
        return sum(phase.minutes for phase in self.phases)

    def at(self, minute: float) -> tuple[Phase | None, dict[MatchImportance, float]]:
        """The phase playing at scenario ``minute`` and its panic shares; (None, all zero) after the end."""
        begins = 0.0
        for phase in self.phases:
            if minute < begins + phase.minutes:
                return phase, phase.share_at(minute - begins)
            begins += phase.minutes
        return None, {stakes: 0.0 for stakes in MatchImportance}


def scenario_names() -> list[str]:
    """The scenarios shipped with the simulator, by file name."""
    return sorted(path.stem for path in SCENARIO_DIR.glob("*.toml"))


def load_scenario(ref: str | Path) -> Scenario:
    """A shipped scenario by name (``long_panic``), or any scenario file by path."""
    path = Path(ref)
    if path.suffix != ".toml":
        if str(ref) not in scenario_names():
            raise InvalidScenario(f"no scenario named {str(ref)!r}; shipped: {', '.join(scenario_names())}")
        path = SCENARIO_DIR / f"{ref}.toml"
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise InvalidScenario(f"{path}: {exc}") from None
    return parse_scenario(data, name=path.stem, source=str(path))


def parse_scenario(data: dict[str, Any], *, name: str, source: str = "scenario") -> Scenario:
    phases = data.get("phase")
    if not isinstance(phases, list) or not phases:
        raise InvalidScenario(f"{source}: needs at least one [[phase]]")
    speed = check_speed(data.get("speed", 60), source)
    return Scenario(
        name=name,
        title=str(data.get("title", name)),
        description=str(data.get("description", "")),
        speed=speed,
        phases=tuple(_phase(raw, f"{source} phase {i + 1}") for i, raw in enumerate(phases)),
        loop=bool(data.get("loop", False)),
    )


def check_speed(speed: Any, source: str = "speed") -> float:
    if isinstance(speed, bool) or not isinstance(speed, (int, float)) or not 1 <= speed <= MAX_SPEED:
        raise InvalidScenario(f"{source}: speed must be a number from 1 to {MAX_SPEED:g}, got {speed!r}")
    return float(speed)


def _phase(raw: Any, where: str) -> Phase:
    if not isinstance(raw, dict):
        raise InvalidScenario(f"{where}: not a table")
    minutes = raw.get("minutes")
    if isinstance(minutes, bool) or not isinstance(minutes, (int, float)) or not 0 < minutes < math.inf:
        raise InvalidScenario(f"{where}: minutes must be a number > 0, got {minutes!r}")
    share = raw.get("panic_share", 0.0)
    if isinstance(share, dict):
        shares = {MatchImportance(k): _share(v, f"{where} panic_share.{k}") for k, v in share.items()
                  if k in {m.value for m in MatchImportance} or _unknown_class(k, where)}
    else:
        shares = {stakes: _share(share, f"{where} panic_share") for stakes in MatchImportance}
    flicker = raw.get("flicker_min")
    if flicker is not None and (isinstance(flicker, bool) or not isinstance(flicker, (int, float)) or flicker <= 0):
        raise InvalidScenario(f"{where}: flicker_min must be a number > 0, got {flicker!r}")
    return Phase(str(raw.get("name", where)), float(minutes), shares, None if flicker is None else float(flicker))


def _unknown_class(key: str, where: str) -> bool:
    raise InvalidScenario(f"{where}: panic_share has no stakes class {key!r}")


def _share(value: Any, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 1:
        raise InvalidScenario(f"{where}: must be a number from 0 to 1, got {value!r}")
    return float(value)

"""The demo fleet: simulated backend workers playing a scenario, for demos and drills (SPEC section 11).

``python -m breaker.ops.demo`` (or ``make demo``, which starts it from the console). The parts, top-down:
:mod:`.conductor` (the fleet's main process: plays the scenario, accelerates the clock, writes the marker
and the load) → :mod:`.worker` (a worker process: several identities) → :mod:`.backend` (one identity's
cache and ``get_ttl`` calls, beside :mod:`.seed_model`) → :mod:`.market` (synthetic odds and their signal);
:mod:`.scenario` reads ``scenarios/*.toml``; :mod:`.marker`, :mod:`.load` and :mod:`.control` are what the
console reads and writes.
"""

from .control import autoplay_scenario, control_demo
from .load import LoadPoint, TierChange, read_points, tier_changes
from .marker import DemoMarker, read_marker
from .scenario import InvalidScenario, Scenario, load_scenario, scenario_names

__all__ = [
    "DemoMarker",
    "InvalidScenario",
    "LoadPoint",
    "Scenario",
    "TierChange",
    "autoplay_scenario",
    "control_demo",
    "load_scenario",
    "read_marker",
    "read_points",
    "scenario_names",
    "tier_changes",
]

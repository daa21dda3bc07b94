"""The console's side of the demo: who may play it, the audited command, and ``make demo``'s autoplay."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from ..audit import AuditTrail
from ..roles import WriteAccess
from .marker import send_command
from .scenario import InvalidScenario, check_speed, load_scenario

AUTOPLAY_ENV = "BREAKER_DEMO"


class NotASandbox(PermissionError):
    """The demo plays only on the console's embedded server: a real Redis has real workers."""


def autoplay_scenario(environ: Mapping[str, str] | None = None) -> str | None:
    """``BREAKER_DEMO=<scenario>`` (set by ``make demo``): the scenario the console starts its fleet with."""
    name = (os.environ if environ is None else environ).get(AUTOPLAY_ENV, "").strip()
    if not name:
        return None
    load_scenario(name)  # an unknown name is a configuration error, said at once
    return name


def control_demo(client: Any, trail: AuditTrail, access: WriteAccess, *, embedded: bool, prefix: str,
                 action: str, scenario: str | None = None, speed: float | None = None) -> None:
    """Queue a play / pause / resume / stop for the conductor, audited; refused outside the sandbox."""
    if not embedded:
        raise NotASandbox("the demo control works on the console's embedded server only")
    access.require(f"demo {action}", "drill")
    options: dict[str, Any] = {}
    if action == "play":
        try:
            load_scenario(scenario or "")
        except InvalidScenario as exc:
            raise ValueError(str(exc)) from None
        options = {"scenario": scenario, "speed": None if speed is None else check_speed(speed)}
    send_command(client, prefix, action, **options)
    trail.record(**access.audit(), who=access.who, action=f"demo_{action}", why="demo control", **options)

"""The demo's keys under the prefix: the marker every page reads, the control queue, the backend load.

- ``{prefix}demo``: a hash the conductor rewrites every tick (scenario, speed, state, started, pid, the
  scenario minute, the phase and its panic shares) with a short expiry, so that a fleet that died takes
  its "a demo is playing" banner with it;
- ``{prefix}demo:commands``: a list of JSON commands from the console (play, pause, resume, stop);
- ``{prefix}demo:load:pending`` and ``{prefix}demo:load``: see :mod:`.load`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from ...importance import MatchImportance

DEMO_KEY_NAME = "demo"
COMMANDS_KEY_NAME = "demo:commands"
MARKER_TTL_S = 10
STATES = ("starting", "playing", "paused", "stopped")
ACTIONS = ("play", "pause", "resume", "stop")
MAX_QUEUED_COMMANDS = 20


def demo_key(prefix: str) -> str:
    return f"{prefix}{DEMO_KEY_NAME}"


def commands_key(prefix: str) -> str:
    return f"{prefix}{COMMANDS_KEY_NAME}"


def _text(value: Any) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


def _number(fields: dict[str, str], name: str, default: float = 0.0) -> float:
    try:
        return float(fields.get(name, default))
    except ValueError:
        return default


@dataclass(frozen=True)
class DemoMarker:
    """What the conductor says it is playing (every field is the conductor's, shown as text)."""

    scenario: str
    title: str
    speed: float
    state: str
    started: float
    pid: int
    run: str
    minute: float
    total_minutes: float
    phase: str
    workers: int
    shares: dict[str, float] = field(default_factory=dict)

    @property
    def playing(self) -> bool:
        return self.state == "playing"

    def fields(self) -> dict[str, str]:
        data = {
            "scenario": self.scenario, "title": self.title, "speed": repr(self.speed), "state": self.state,
            "started": repr(self.started), "pid": str(self.pid), "run": self.run, "minute": repr(self.minute),
            "total_minutes": repr(self.total_minutes), "phase": self.phase, "workers": str(self.workers),
        }
        data.update({f"share:{stakes}": repr(share) for stakes, share in self.shares.items()})
        return data


def parse_marker(raw: dict[Any, Any]) -> DemoMarker | None:
    """The marker from HGETALL, or None when there is none (no demo, or its conductor is gone)."""
    if not raw:
        return None
    fields = {_text(k): _text(v) for k, v in raw.items()}
    return DemoMarker(
        scenario=fields.get("scenario", "?"), title=fields.get("title", ""), speed=_number(fields, "speed", 1.0),
        state=fields.get("state", "?"), started=_number(fields, "started"), pid=int(_number(fields, "pid")),
        run=fields.get("run", ""), minute=_number(fields, "minute"), total_minutes=_number(fields, "total_minutes"),
        phase=fields.get("phase", ""), workers=int(_number(fields, "workers")),
        shares={stakes.value: _number(fields, f"share:{stakes.value}") for stakes in MatchImportance},
    )


def read_marker(client: Any, prefix: str) -> DemoMarker | None:
    """One HGETALL."""
    return parse_marker(client.hgetall(demo_key(prefix)))


def send_command(client: Any, prefix: str, action: str, **options: Any) -> None:
    """Queue a command for the conductor (it reads the queue every tick)."""
    if action not in ACTIONS:
        raise ValueError(f"action must be one of {', '.join(ACTIONS)}, got {action!r}")
    pipe = client.pipeline(transaction=True)
    pipe.rpush(commands_key(prefix), json.dumps({"action": action, **options}))
    pipe.ltrim(commands_key(prefix), -MAX_QUEUED_COMMANDS, -1)
    pipe.expire(commands_key(prefix), 60)
    pipe.execute()


def pop_commands(client: Any, prefix: str) -> list[dict[str, Any]]:
    """Every queued command, oldest first, in one round trip; ones that do not parse are dropped."""
    pipe = client.pipeline(transaction=True)
    pipe.lrange(commands_key(prefix), 0, -1)
    pipe.delete(commands_key(prefix))
    raw, _ = pipe.execute()
    commands = []
    for item in raw:
        try:
            command = json.loads(_text(item))
        except ValueError:
            continue
        if isinstance(command, dict) and command.get("action") in ACTIONS:
            commands.append(command)
    return commands

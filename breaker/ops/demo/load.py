"""Backend load: the cache misses the simulated workers send to the backend, per second and stakes class.

Workers add their counts to the hash ``{prefix}demo:load:pending`` (HINCRBY, about once a second);
the conductor empties it once a second (HGETALL and DEL in one MULTI) and appends one point to the
stream ``{prefix}demo:load`` (trimmed to ``MAX_POINTS``), with the tiers the clock implies at that moment.
Each point also carries what the seed's protocol would have sent to the backend (:mod:`.seed_model`).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Any

from ...importance import MatchImportance

PENDING_KEY_NAME = "demo:load:pending"
STREAM_KEY_NAME = "demo:load"
MAX_POINTS = 3600
READY_FIELD = "ready"  # each worker process adds 1 with its first counts
SIDES = ("ours", "seed")
CLASSES = tuple(stakes.value for stakes in MatchImportance)


def pending_key(prefix: str) -> str:
    return f"{prefix}{PENDING_KEY_NAME}"


def stream_key(prefix: str) -> str:
    return f"{prefix}{STREAM_KEY_NAME}"


def miss_field(side: str, stakes: str) -> str:
    return f"{side}:{stakes}"


def _text(value: Any) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


def _float(fields: dict[str, str], name: str) -> float:
    try:
        return float(fields.get(name, 0.0))
    except ValueError:
        return 0.0


@dataclass(frozen=True)
class LoadPoint:
    """One second of the fleet: backend requests per second by side and class, and the tiers then."""

    at: float  # real time
    run: str
    minute: float  # scenario minute
    phase: str
    ours: dict[str, float] = field(default_factory=dict)
    seed: dict[str, float] = field(default_factory=dict)
    tiers: dict[str, int] = field(default_factory=dict)
    answers: float = 0.0  # get_ttl answers per second (ours)

    @property
    def ours_total(self) -> float:
        return sum(self.ours.values())

    @property
    def seed_total(self) -> float:
        return sum(self.seed.values())

    def fields(self) -> dict[str, str]:
        data = {"at": repr(self.at), "run": self.run, "minute": repr(self.minute), "phase": self.phase,
                "answers": repr(self.answers)}
        for side, values in (("ours", self.ours), ("seed", self.seed)):
            data.update({miss_field(side, k): repr(v) for k, v in values.items()})
        data.update({f"tier:{k}": str(v) for k, v in self.tiers.items()})
        return data


def parse_point(raw: dict[Any, Any]) -> LoadPoint:
    fields = {_text(k): _text(v) for k, v in raw.items()}
    return LoadPoint(
        at=_float(fields, "at"), run=fields.get("run", ""), minute=_float(fields, "minute"),
        phase=fields.get("phase", ""),
        ours={c: _float(fields, miss_field("ours", c)) for c in CLASSES},
        seed={c: _float(fields, miss_field("seed", c)) for c in CLASSES},
        tiers={c: int(_float(fields, f"tier:{c}")) for c in CLASSES},
        answers=_float(fields, "answers"),
    )


def take_pending(client: Any, prefix: str) -> dict[str, float]:
    """The counts the workers added since the last call, emptied atomically (one MULTI)."""
    pipe = client.pipeline(transaction=True)
    pipe.hgetall(pending_key(prefix))
    pipe.delete(pending_key(prefix))
    raw, _ = pipe.execute()
    counts = {}
    for key, value in raw.items():
        try:
            counts[_text(key)] = float(_text(value))
        except ValueError:
            continue
    return counts


def append_point(client: Any, prefix: str, point: LoadPoint) -> None:
    client.xadd(stream_key(prefix), point.fields(), maxlen=MAX_POINTS, approximate=True)


def read_points(client: Any, prefix: str, *, run: str | None = None, count: int = 900) -> list[LoadPoint]:
    """The newest ``count`` points, oldest first; only those of ``run`` when given."""
    points = [parse_point(fields) for _, fields in reversed(client.xrevrange(stream_key(prefix), count=count))]
    return [p for p in points if run is None or p.run == run]


@dataclass(frozen=True)
class TierChange:
    minute: float
    stakes: str
    tier_from: int
    tier_to: int


def tier_changes(points: list[LoadPoint]) -> list[TierChange]:
    """Where each class's tier changed between consecutive points."""
    changes = []
    for before, after in itertools.pairwise(points):
        for stakes in CLASSES:
            a, b = before.tiers.get(stakes, 0), after.tiers.get(stakes, 0)
            if a != b:
                changes.append(TierChange(after.minute, stakes, a, b))
    return changes

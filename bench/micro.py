"""Figure 4: the pure parts alone, median nanoseconds per call (``timeit``)."""

from __future__ import annotations

import statistics
import timeit
from typing import Any

from breaker import AdaptivePanicQuota, MatchImportance

from .table import Row

NUMBER = 20_000
REPEAT = 7


def _ns(stmt: str, namespace: dict[str, Any], number: int = NUMBER) -> float:
    runs = timeit.repeat(stmt, globals=namespace, number=number, repeat=REPEAT)
    return statistics.median(runs) / number * 1e9


def micro() -> list[Row]:
    quota = AdaptivePanicQuota()
    context = {"league": "Ligue 1", "competition": "Ligue 1"}
    namespace = {
        "quota": quota, "medium": MatchImportance.MEDIUM_STAKES, "context": context,
        "classify": MatchImportance.classify, "unseen": iter(()),
    }
    decide = _ns("quota.decide(60, 42.0, medium, True)", namespace)
    strategy = _ns("quota.calculate_ttl_strategy(60, 42.0, context)", namespace)
    cached = _ns("classify(context)", namespace)
    cold_runs = []
    for run in range(3):  # new strings every run: more than the classification cache holds, so every call misses
        namespace["unseen"] = iter([{"league": f"League {run}-{i}", "competition": "Cup"} for i in range(NUMBER)])
        cold_runs.append(timeit.timeit("classify(next(unseen))", globals=namespace, number=NUMBER) / NUMBER * 1e9)
    cold = statistics.median(cold_runs)
    return [
        Row("4", "policy hot path `AdaptivePanicQuota.decide`", f"{decide:,.0f} ns", goal="≤ 2 µs", met=decide <= 2000),
        Row("4", "policy with metadata `calculate_ttl_strategy`", f"{strategy:,.0f} ns"),
        Row("4", "classifier `MatchImportance.classify`, repeated context", f"{cached:,.0f} ns"),
        Row("4", "classifier, never-seen context (cache miss)", f"{cold:,.0f} ns"),
    ]


"""A worker's classification caches are bounded in bytes, not only in entries (issue 24): 300 distinct 1 MB league
names, classified through every entry point, leave no more than a few MB behind (measured with tracemalloc)."""

from __future__ import annotations

import gc
import tracemalloc

from breaker.importance import (
    MAX_KEY_CHARS,
    MatchImportance,
    cacheable,
    explain_importance,
    importance_of,
)

NAMES = 300
MB = 1 << 20


def _classify_many() -> list[MatchImportance]:
    answers = []
    for i in range(NAMES):
        league = f"league {i} " + "x" * MB + (" final" if i % 2 else "")
        context = {"league": league}
        answers.append(importance_of(context))
        answers.append(explain_importance(context).importance)
        answers.append(MatchImportance.classify({"league": league, "round": ["unhashable"]}))  # the careful path
        del context, league
    return answers


def test_long_contexts_are_classified_but_not_kept():
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        answers = _classify_many()
        gc.collect()
        kept = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert kept < 8 * MB, f"{kept / MB:.0f} MB kept after classifying {NAMES} distinct 1 MB league names"
    assert answers[3 * 1 : 3 * 2] == [MatchImportance.HIGH_STAKES] * 3  # "final" at the very end is still found
    assert answers[:3] == [MatchImportance.LOW_STAKES] * 3


def test_a_long_context_seen_again_is_a_cache_hit():
    """Cached by digest: the second call with an equal (not identical) 1 MB context gives the same answer."""
    league = "y" * MB + " derby"
    assert explain_importance({"league": league}) == explain_importance({"league": "".join([league])})


def test_what_is_cached():
    assert cacheable(("high", "Ligue 1", None, 3, 1.5))
    assert not cacheable((None, "x" * (MAX_KEY_CHARS + 1), None, None, None))
    assert not cacheable((None, b"bytes", None, None, None))

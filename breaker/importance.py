"""How important a match is, read from whatever context the caller has.

Classification never raises: an odd context is a fact of life in a feed, and
the answer for "don't know" is the configured default (low stakes).
"""

from __future__ import annotations

import enum
import hashlib
import re
import unicodedata
from functools import lru_cache
from typing import Any, NamedTuple

_HIGH_KEYWORDS = (
    "champions league",
    "ucl",
    "europa league",
    "uel",
    "final",
    "semi final",
    "semifinal",
    "derby",
    "clasico",
    "world cup",
    "euro",
)
_MEDIUM_KEYWORDS = ("ligue 1", "premier league", "la liga", "serie a", "bundesliga")
_SEARCHED_FIELDS = ("league", "competition", "stage", "round")
_READ_FIELDS = ("stakes", *_SEARCHED_FIELDS)
_NON_WORD = re.compile(r"[^0-9a-z]+")


class MatchImportance(enum.StrEnum):
    """Stakes class of a match; it picks the tier thresholds."""

    HIGH_STAKES = "high_stakes"
    MEDIUM_STAKES = "medium_stakes"
    LOW_STAKES = "low_stakes"

    @classmethod
    def classify(cls, match_context: Any, default: MatchImportance | None = None) -> MatchImportance:
        """Stakes class for ``match_context``; ``default`` when nothing matches."""
        return explain_importance(match_context, default).importance


class Classification(NamedTuple):
    """A stakes class and the rule that chose it, for operators asking "why"."""

    importance: MatchImportance
    rule: str


_STAKES_WORDS = {
    "high": MatchImportance.HIGH_STAKES,
    "medium": MatchImportance.MEDIUM_STAKES,
    "low": MatchImportance.LOW_STAKES,
}
for _member in MatchImportance:
    _STAKES_WORDS[_member.value] = _member
    _STAKES_WORDS[_member.name.lower()] = _member


def normalise_words(text: str) -> str:
    """Lower-case, accent-free words separated by single spaces, padded with spaces.

    Padding lets a keyword match only on whole words: " euro " is not found in
    " eurosport ", " ligue 1 " is not found in " ligue 10 ".
    """
    if text.isascii():  # NFKD leaves ASCII as it is and it has no combining marks: skip the per-character pass
        bare = text
    else:
        decomposed = unicodedata.normalize("NFKD", text)
        bare = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    return " " + _NON_WORD.sub(" ", bare.casefold()).strip() + " "


def _fallback(default: Any) -> MatchImportance:
    """The class for "don't know": ``default`` read as a stakes word, low stakes when it is none."""
    fallback = _STAKES_WORDS.get(default.strip().casefold()) if isinstance(default, str) else None
    return fallback or MatchImportance.LOW_STAKES


def explain_importance(match_context: Any, default: MatchImportance | None = None) -> Classification:
    """Classify and say which rule matched. Never raises."""
    fallback = _fallback(default)
    try:
        if not isinstance(match_context, dict):
            return Classification(fallback, "default: no context dict")
        raw = tuple(map(match_context.get, _READ_FIELDS))
    except Exception:  # a context object whose .get misbehaves is still "don't know"
        return Classification(fallback, "default: context could not be read")
    try:  # the hot path: a context seen before is one cache hit, without filtering its fields first
        if not cacheable(raw):  # a long or odd value: cached by digest, never kept whole
            return _classify_fields(_strings_only(raw), fallback)
        return _classify_raw(raw, fallback)
    except Exception:  # a value that cannot be a cache key (a list, a dict): filter, then classify
        return _classify_fields(_strings_only(raw), fallback)


#: raw fields of a plain dict context -> the class a rule chose (None: no rule did, the default applies).
#: Bounded like the caches below: emptied when full, so 10 000 distinct contexts do not grow it.
_CHOSEN_BY_RAW: dict[tuple[Any, ...], MatchImportance | None] = {}
_CHOSEN_MAX = 4096
_UNSEEN = object()


def importance_of(match_context: Any, default: MatchImportance | None = None) -> MatchImportance:
    """``explain_importance(match_context, default).importance`` without the explanation: for a plain dict
    seen before, five ``get``s and one dict lookup (``get_ttl``'s classifier). Never raises."""
    if type(match_context) is dict:
        try:
            get = match_context.get  # the _READ_FIELDS, spelt out: a tuple display is cheaper than map()
            raw = (get("stakes"), get("league"), get("competition"), get("stage"), get("round"))
            chosen = _CHOSEN_BY_RAW.get(raw, _UNSEEN)
            if chosen is _UNSEEN:
                chosen = _choose(raw)
        except Exception:  # a key or value that cannot be compared or hashed: the careful way
            return explain_importance(match_context, default).importance
        if chosen is not None:
            return chosen
        return default if type(default) is MatchImportance else _fallback(default)
    return explain_importance(match_context, default).importance


def _choose(raw: tuple[Any, ...]) -> MatchImportance | None:
    """Classify fields not seen before and remember the class a rule chose (None when none did)."""
    rule = _classify_fields(_strings_only(raw), MatchImportance.LOW_STAKES)
    chosen = None if rule.rule.startswith("default") else rule.importance
    if not cacheable(raw):
        return chosen
    if len(_CHOSEN_BY_RAW) >= _CHOSEN_MAX:
        _CHOSEN_BY_RAW.clear()
    _CHOSEN_BY_RAW[raw] = chosen
    return chosen


#: A context is a cache key itself only when its fields are None, numbers, or strings of at most
#: ``MAX_KEY_CHARS`` characters: a cache entry keeps its key alive, and 300 distinct 1 MB league names used to
#: keep about 300 MB in a worker. Longer contexts are cached under a 16-byte BLAKE2 digest of their fields
#: (``_BY_DIGEST``, 4096 entries): each cache then holds at most 4096 x 5 x 256 characters of keys (about 5 MB),
#: and a long context seen again costs one digest (about 1 ms per MB), not a new classification.
MAX_KEY_CHARS = 256
_SMALL_TYPES = (int, float, bool, MatchImportance)
_BY_DIGEST: dict[tuple[bytes, MatchImportance], Classification] = {}


def cacheable(raw: tuple[Any, ...]) -> bool:
    """Whether a context's fields may be kept as a cache key: None, numbers, strings of at most
    ``MAX_KEY_CHARS`` characters (bytes, tuples and objects have no known size; no rule reads them)."""
    for value in raw:
        if value is None or type(value) in _SMALL_TYPES:
            continue
        if not isinstance(value, str) or str.__len__(value) > MAX_KEY_CHARS:
            return False
    return True


def _digest(fields: tuple[str | None, ...]) -> bytes:
    digest = hashlib.blake2b(digest_size=16)
    for value in fields:
        if value is None:
            digest.update(b"\x00N")
        else:
            data = value.encode("utf-8", "surrogatepass")
            digest.update(b"\x00S%d:" % len(data))
            digest.update(data)
    return digest.digest()


def _strings_only(raw: tuple[Any, ...]) -> tuple[str | None, ...]:
    """Plain ``str`` copies of the string values (a subclass may not hash), None for anything else."""
    return tuple(str.__str__(value) if isinstance(value, str) else None for value in raw)


@lru_cache(maxsize=4096)
def _classify_raw(raw: tuple[Any, ...], fallback: MatchImportance) -> Classification:
    return _classify_short(_strings_only(raw), fallback)  # only cacheable contexts come here


def _classify_fields(fields: tuple[str | None, ...], fallback: MatchImportance) -> Classification:
    """Cached by the fields themselves when they are short (``cacheable``), by their digest otherwise."""
    if cacheable(fields):
        return _classify_short(fields, fallback)
    key = (_digest(fields), fallback)
    found = _BY_DIGEST.get(key)
    if found is None:
        found = _classify_uncached(fields, fallback)
        if len(_BY_DIGEST) >= _CHOSEN_MAX:
            _BY_DIGEST.clear()
        _BY_DIGEST[key] = found
    return found


@lru_cache(maxsize=4096)
def _classify_short(fields: tuple[str | None, ...], fallback: MatchImportance) -> Classification:
    return _classify_uncached(fields, fallback)


def _classify_uncached(fields: tuple[str | None, ...], fallback: MatchImportance) -> Classification:
    stakes, *searched = fields
    if stakes is not None:
        explicit = _STAKES_WORDS.get(stakes.strip().casefold())
        if explicit is not None:
            return Classification(explicit, f"explicit stakes={stakes.strip()!r}")
    texts = {name: normalise_words(value) for name, value in zip(_SEARCHED_FIELDS, searched) if value}
    for importance, keywords in (
        (MatchImportance.HIGH_STAKES, _HIGH_KEYWORDS),
        (MatchImportance.MEDIUM_STAKES, _MEDIUM_KEYWORDS),
    ):
        for name, text in texts.items():
            for keyword in keywords:
                if f" {keyword} " in text:
                    return Classification(importance, f"keyword {keyword!r} in {name}")
    return Classification(fallback, "default: no keyword matched")

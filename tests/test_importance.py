"""Stakes classification: real-world league strings, explicit stakes, odd values."""

import pytest

from breaker import MatchImportance, explain_importance

H, M, L = MatchImportance.HIGH_STAKES, MatchImportance.MEDIUM_STAKES, MatchImportance.LOW_STAKES

CASES = [
    ({"league": "UEFA Champions League"}, H),
    ({"competition": "UCL", "stage": "Round of 16"}, H),
    ({"league": "UEFA Europa League"}, H),
    ({"competition": "UEL group stage"}, H),
    ({"competition": "Coupe de France", "stage": "Final"}, H),
    ({"competition": "FA Cup", "round": "Semi-final"}, H),
    ({"competition": "Copa del Rey semifinal"}, H),
    ({"league": "Premier League", "competition": "North London Derby"}, H),
    ({"league": "La Liga", "competition": "El Clásico"}, H),
    ({"competition": "FIFA World Cup 2026"}, H),
    ({"competition": "UEFA EURO 2028"}, H),
    ({"league": "Euro 2024 qualifiers"}, H),
    ({"league": "France Ligue 1 Uber Eats"}, M),
    ({"league": "LIGUE 1"}, M),
    ({"league": "English Premier League"}, M),
    ({"league": "LaLiga EA Sports", "competition": "La Liga"}, M),
    ({"league": "Serie A TIM"}, M),
    ({"league": "1. Bundesliga"}, M),
    ({"league": "Ligue 2 BKT"}, L),
    ({"league": "Ligue 10"}, L),
    ({"league": "Eurosport Cup"}, L),
    ({"competition": "Club friendlies"}, L),
    ({"league": "Premier League 2 Division 1"}, M),
    ({"league": "Ligue 1", "stakes": "HIGH"}, H),
    ({"league": "UEFA Champions League", "stakes": "low"}, L),
    ({"stakes": "medium_stakes"}, M),
    ({"stakes": "HIGH_STAKES"}, H),
    ({"stakes": " Low "}, L),
    ({"stakes": "critical", "league": "Bundesliga"}, M),
    ({"stakes": MatchImportance.HIGH_STAKES}, H),
    ({"league": "Süper Lig"}, L),
    ({"league": "Superfinal", "competition": "Russian Cup"}, L),
    ({"league": "Bundesliga", "competition": "Revierderby"}, M),
    ({"league": "Bundesliga", "competition": "Revier Derby"}, H),
    ({"league": "Coupe de la Ligue", "round": "FINALE"}, L),
    ({"league": "Ligue 1", "competition": "Derby du Nord"}, H),
    ({}, L),
    (None, L),
    ({"league": None}, L),
    ({"league": 5, "competition": ["Champions League"]}, L),
    ({"league": {"name": "Ligue 1"}}, L),
    ("Champions League", L),
    (["UCL"], L),
    ({"league": ""}, L),
]


@pytest.mark.parametrize(("context", "expected"), CASES)
def test_classification_table(context, expected):
    """Real-world inputs classify as an operator would expect."""
    assert MatchImportance.classify(context) is expected


def test_unmatched_uses_the_given_default():
    """Unmatched or unreadable contexts take the caller's default."""
    assert MatchImportance.classify({"league": "Sunday league"}, default=M) is M
    assert MatchImportance.classify(None, default=H) is H
    assert MatchImportance.classify({}, default="medium_stakes") is M
    assert MatchImportance.classify({}, default="nonsense") is L


def test_explain_names_the_rule():
    """The explanation says which keyword in which field decided."""
    result = explain_importance({"league": "Ligue 1", "competition": "Le Classique"})
    assert result.importance is M and result.rule == "keyword 'ligue 1' in league"
    assert explain_importance({"league": "x", "stakes": "high"}).rule == "explicit stakes='high'"


def test_context_whose_get_raises_is_default():
    """A dict subclass whose .get raises is 'don't know', not an exception."""

    class Hostile(dict):
        def get(self, *args, **kwargs):
            raise RuntimeError("boom")

    assert MatchImportance.classify(Hostile(league="UCL")) is L


def test_huge_string_does_not_raise():
    """A 1 MB league string is classified, not crashed on."""
    assert MatchImportance.classify({"league": "x" * 1_000_000 + " final"}) is H

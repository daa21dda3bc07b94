"""Override episodes derived from the audit trail: set, extended, cleared, replaced, expired."""

from breaker.ops.audit import AuditEntry, override_episodes
from console.figures import figure_tier_timeline


def entry(at, action, *, mode="force_full", until=None, who="alice", why="incident 42", **detail):
    detail = {"mode": mode, "until": until, **detail}
    return AuditEntry(f"{int(at)}-0", at, "operator", who, action, why, None, detail)


def test_set_extend_clear_is_one_episode_with_three_events():
    """Set, extended and cleared: one episode from the set to the clear, its events in order."""
    [episode] = override_episodes([
        entry(100, "override_set", until=700),
        entry(300, "override_extend", until=1300, who="bob", why="still bad"),
        entry(400, "override_clear", why="fixed"),
    ], now=2000)
    assert (episode.mode, episode.who, episode.start, episode.end, episode.ended_by) == (
        "force_full", "alice", 100, 400, "cleared")
    assert [(e.at, e.what) for e in episode.events] == [(100, "set"), (300, "extended"), (400, "cleared")]


def test_an_override_nobody_cleared_expires_at_its_until():
    """No entry marks an expiry: it is derived from until, before the next entry and before now."""
    first, second = override_episodes([
        entry(100, "override_set", until=200),
        entry(500, "override_set", mode="force_calm", until=900),
    ], now=1000)
    assert (first.end, first.ended_by, first.events[-1].what) == (200, "expired", "expired")
    assert (second.mode, second.end, second.ended_by) == ("force_calm", 900, "expired")


def test_a_running_override_is_on_and_a_new_set_replaces_it():
    """A set while one is on ends the first as replaced; the last one is still on at now."""
    first, second = override_episodes([
        entry(100, "override_set", until=1000),
        entry(200, "override_set", mode="force_calm", until=1100),
    ], now=300)
    assert (first.end, first.ended_by) == (200, "replaced")
    assert (second.end, second.ended_by) == (None, "on")


def test_extension_keeps_it_from_expiring():
    """An extension moves until: the episode outlives its first end."""
    [episode] = override_episodes([entry(100, "override_set", until=200), entry(150, "override_extend", until=900)],
                                  now=500)
    assert episode.ended_by == "on" and episode.until == 900


def test_unknown_modes_and_other_entries_are_tolerated():
    """A mode this version does not know is 'unknown'; unrelated entries and a clear of nothing are ignored."""
    episodes = override_episodes([
        AuditEntry("1-0", 50, "operator", "a", "panic_start", "drill", 1, {}),
        entry(60, "override_clear", mode=None),
        entry(100, "override_set", mode="force_weird", until="not a number"),
    ], now=200)
    assert [(e.mode, e.ended_by, e.until) for e in episodes] == [("unknown", "on", None)]


def test_timeline_draws_episodes_as_bands_and_events_as_markers():
    """History's timeline: one band per episode and one marker trace per kind of event, escaped hover text."""
    figure = figure_tier_timeline([
        entry(100, "override_set", until=200, why="<b>bold</b>"),
        entry(300, "override_set", mode="force_calm", until=900),
        entry(400, "override_clear"),
    ], now=1000)
    names = [t.name for t in figure.data]
    assert {"override set", "override expired", "override cleared"} <= set(names)
    assert len(figure.layout.shapes) == 2
    set_trace = figure.data[names.index("override set")]
    assert "&lt;b&gt;bold&lt;/b&gt;" in set_trace.text[0] and "<b>" not in set_trace.text[0]

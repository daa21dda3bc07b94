"""Plotly figures for the console: pure functions of breaker data, testable without a browser."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from breaker import AdaptivePanicQuota, MatchImportance
from breaker.ops import AuditEntry
from breaker.ops.audit import CLOCK_UNKNOWN, fleet_tier_steps, override_episodes
from breaker.ops.drills import Replay
from console.text import plotly_text

TIER_COLOURS = {0: "#2ca02c", 1: "#d62728", 2: "#ff7f0e", 3: "#9467bd", 4: "#1f77b4"}
OVERRIDE_COLOURS = {"force_full": "#d62728", "force_calm": "#2ca02c", "unknown": "#7f7f7f"}
OVERRIDE_SYMBOLS = {"set": "diamond", "extended": "diamond-open", "cleared": "x", "expired": "circle-open"}
CLASS_COLOURS = {
    MatchImportance.HIGH_STAKES: "#d62728",
    MatchImportance.MEDIUM_STAKES: "#ff7f0e",
    MatchImportance.LOW_STAKES: "#1f77b4",
}


def figure_ttl_steps(
    quota: AdaptivePanicQuota, base_ttl: int, now_min: float | None = None, horizon_min: float | None = None
) -> go.Figure:
    """TTL against panic duration for each stakes class (capped at ``base_ttl``), with "now" marked."""
    last_start = max(max(table.starts) for table in quota.tables.values())
    horizon = max(horizon_min or last_start * 1.25, (now_min or 0) * 1.1, 1.0)
    figure = go.Figure()
    for importance, table in quota.tables.items():
        xs = [0.0, *table.starts, horizon]
        ys = [min(ttl, base_ttl) for ttl in table.ttls] + [min(table.ttls[-1], base_ttl)]
        figure.add_trace(go.Scatter(
            x=xs, y=ys, mode="lines", line_shape="hv", name=importance.value,
            line={"color": CLASS_COLOURS[importance], "width": 3},
        ))
    if now_min is not None:
        figure.add_vline(x=now_min, line_dash="dash", line_color="black", annotation_text="now",
                         annotation_position="top right")
    figure.update_layout(
        title=f"TTL by panic duration (base TTL {base_ttl} s)", xaxis_title="panic duration (min)",
        yaxis_title="TTL (s)", legend_title="stakes", height=380, margin={"t": 50, "b": 40},
    )
    return figure


def figure_replay(replays: Sequence[Replay]) -> go.Figure:
    """TTL, tier and the shared clock's duration over replay time, one line per mode."""
    figure = make_subplots(rows=3, cols=1, shared_xaxes=True, vertical_spacing=0.06,
                           subplot_titles=("TTL answered (s)", "tier", "shared clock says (min)"))
    for replay, dash in zip(replays, ("solid", "dot", "dash")):
        minutes = [p.minute for p in replay.points]
        common = {"mode": "lines", "line_shape": "hv", "legendgroup": replay.label, "line": {"dash": dash}}
        figure.add_trace(go.Scatter(x=minutes, y=[p.ttl for p in replay.points], name=replay.label, **common),
                         row=1, col=1)
        figure.add_trace(go.Scatter(x=minutes, y=[p.tier for p in replay.points], showlegend=False,
                                    name=replay.label, **common), row=2, col=1)
        figure.add_trace(go.Scatter(x=minutes, y=[p.clock_min for p in replay.points], showlegend=False,
                                    name=replay.label, **common), row=3, col=1)
    title = replays[0].scenario if replays else ""
    figure.update_layout(title=f"Scenario replay: {title}", height=560, margin={"t": 60, "b": 40})
    figure.update_xaxes(title_text="replay time (min)", row=3, col=1)
    figure.update_yaxes(range=[-0.2, 4.2], dtick=1, row=2, col=1)
    return figure


EMPTY_TIMELINE_S = 3600


def figure_tier_timeline(entries: Sequence[AuditEntry], now: float, clock_start: Any = CLOCK_UNKNOWN) -> go.Figure:
    """The fleet tier over time as steps, operator actions as markers, override episodes as bands.

    Each override episode is a shaded band from its set to its end (cleared, replaced, expired, or now while
    it is on), with markers for set, extended, cleared and expired. Hover texts carry operators' words, so
    they are escaped: Plotly reads its text as HTML-like markup.
    """
    steps = fleet_tier_steps(entries, now, clock_start)
    figure = go.Figure()
    if steps:
        xs = [_when(s.at) for s in steps] + [_when(now)]
        ys = [s.tier for s in steps] + [steps[-1].tier]
        figure.add_trace(go.Scatter(x=xs, y=ys, mode="lines", line_shape="hv", name="fleet tier",
                                    line={"width": 3, "color": "#d62728"}))
    actions = [e for e in entries if e.kind != "state_change"]
    if actions:
        figure.add_trace(go.Scatter(
            x=[_when(e.at) for e in actions], y=[-0.3] * len(actions), mode="markers", name="operator actions",
            text=[plotly_text(f"{e.who}: {e.action} ({e.why})") for e in actions], hoverinfo="text+x",
            marker={"symbol": "triangle-up", "size": 10, "color": "#555"},
        ))
    _add_override_episodes(figure, entries, now)
    figure.update_layout(title="Fleet tier over time", yaxis={"range": [-0.6, 4.3], "dtick": 1, "title": "tier"},
                         height=320, margin={"t": 50, "b": 40})
    if not figure.data:  # nothing to draw: a time axis ending now, not Plotly's empty -1..6 number axis
        figure.update_xaxes(type="date", range=[_when(now - EMPTY_TIMELINE_S), _when(now)])
        figure.add_annotation(text="No tier change or operator action yet", showarrow=False,
                              x=_when(now - EMPTY_TIMELINE_S / 2), y=2)
    return figure


def _add_override_episodes(figure: go.Figure, entries: Sequence[AuditEntry], now: float) -> None:
    episodes = override_episodes(entries, now)
    for episode in episodes:
        figure.add_vrect(x0=_when(episode.start), x1=_when(episode.end if episode.end is not None else now),
                         fillcolor=OVERRIDE_COLOURS[episode.mode], opacity=0.12, line_width=0, layer="below")
    events = [event for episode in episodes for event in episode.events]
    for what, symbol in OVERRIDE_SYMBOLS.items():
        chosen = [event for event in events if event.what == what]
        if not chosen:
            continue
        figure.add_trace(go.Scatter(
            x=[_when(event.at) for event in chosen], y=[4.0] * len(chosen), mode="markers",
            name=f"override {what}", text=[_event_text(event) for event in chosen], hoverinfo="text+x",
            marker={"symbol": symbol, "size": 11, "color": [OVERRIDE_COLOURS[event.mode] for event in chosen]},
        ))


def _event_text(event: Any) -> str:
    if event.entry is None:
        return plotly_text(f"{event.mode} expired")
    return plotly_text(f"{event.mode} {event.what} by {event.entry.who} ({event.entry.why})")


def figure_tier_distribution(matrix: dict[str, dict[int, int]]) -> go.Figure:
    """Workers per tier for each stakes class (``console.fleet_view.tier_matrix``) as stacked bars."""
    classes = list(matrix)
    figure = go.Figure()
    for tier in range(5):
        counts = [matrix[stakes].get(tier, 0) for stakes in classes]
        figure.add_trace(go.Bar(x=[stakes.replace("_", " ") for stakes in classes], y=counts, name=f"tier {tier}",
                                marker_color=TIER_COLOURS[tier]))
    figure.update_layout(barmode="stack", title="Last answered tier, per stakes class",
                         yaxis_title="workers", legend_title="tier", height=320, margin={"t": 50, "b": 40})
    return figure


def _when(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, UTC)

"""The planned override windows as a Plotly timeline: a pure function of the schedule, testable without a browser."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

import plotly.graph_objects as go

from breaker.override import Override
from breaker.schedule import Window
from console.text import plotly_text

MODE_COLOURS = {"force_full": "#d62728", "force_calm": "#2ca02c"}
WAITING_COLOUR = "#bcbd22"  # a force_calm still waiting for its second operator: it will not apply as it stands
DONE_COLOUR = "#7f7f7f"  # skipped, missed or ended
SCHEDULE_ROW, OVERRIDE_ROW = "planned windows", "override in force"
MIN_SPAN_S = 3600.0


def _when(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, UTC)


def window_colour(window: Window) -> str:
    if window.state in ("skipped", "missed", "ended"):
        return DONE_COLOUR
    if not window.approved:
        return WAITING_COLOUR
    return MODE_COLOURS[window.mode.value]


def window_label(window: Window) -> str:
    waiting = " (waiting for approval)" if not window.approved and window.state == "planned" else ""
    return f"{window.mode.value} {window.id} [{window.state}]{waiting}"


def figure_schedule_timeline(windows: Sequence[Window], now: float, override: Override | None = None) -> go.Figure:
    """Each window a bar on the "planned windows" row from ``since`` to ``until``, the override in force (if any)
    on its own row, and "now" marked: all in the Redis server's time, shown as UTC. Hover texts carry operators'
    words, escaped (Plotly reads its text as HTML-like markup)."""
    figure = go.Figure()
    for window in windows:
        text = plotly_text(f"{window_label(window)}: {window.who} ({window.why})")
        figure.add_trace(go.Scatter(
            x=[_when(window.since), _when(window.until)], y=[SCHEDULE_ROW, SCHEDULE_ROW], mode="lines+markers",
            line={"width": 22, "color": window_colour(window)}, name=plotly_text(window_label(window)),
            marker={"symbol": "line-ns-open", "size": 24, "color": "white", "line": {"width": 3}},  # edges apart
            text=[text, text], hoverinfo="text", showlegend=True,
        ))
    if override is not None:
        text = plotly_text(f"{override.mode.value}: {override.who} ({override.why})")
        figure.add_trace(go.Scatter(
            x=[_when(override.since), _when(override.until)], y=[OVERRIDE_ROW, OVERRIDE_ROW], mode="lines",
            line={"width": 22, "color": MODE_COLOURS[override.mode.value]}, name=f"{override.mode.value} (in force)",
            text=[text, text], hoverinfo="text",
        ))
    starts = [w.since for w in windows] + ([override.since] if override else [])
    ends = [w.until for w in windows] + ([override.until] if override else [])
    left = min([now, *starts]) if starts else now
    right = max([now + MIN_SPAN_S, *ends])
    margin = (right - left) * 0.03
    figure.add_shape(type="line", x0=_when(now), x1=_when(now), y0=0, y1=1, xref="x", yref="paper",
                     line={"color": "black", "dash": "dash", "width": 2}, name="now")
    figure.add_annotation(x=_when(now), y=1, xref="x", yref="paper", text="now", showarrow=False,
                          yanchor="bottom")
    figure.update_layout(
        title="Planned override windows (server time, UTC)", height=280, margin={"t": 60, "b": 40, "l": 130},
        xaxis={"type": "date", "range": [_when(left - margin), _when(right + margin)]},
        yaxis={"type": "category", "categoryorder": "array", "categoryarray": [SCHEDULE_ROW, OVERRIDE_ROW]},
        legend={"orientation": "h", "y": -0.3},
    )
    return figure

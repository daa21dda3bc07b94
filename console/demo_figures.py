"""The backend-load chart of the Demo page: ours against the seed's protocol, tier changes marked."""

from __future__ import annotations

import plotly.graph_objects as go

from breaker.ops.demo import LoadPoint, TierChange, tier_changes

CLASS_COLOURS = {"high_stakes": "#d62728", "medium_stakes": "#ff7f0e", "low_stakes": "#1f77b4"}
#: Tier changes closer than this share of the chart's width share one label (they would overlap).
LABEL_GAP_SHARE = 0.04


def label_groups(changes: list[TierChange], span_min: float) -> list[list[TierChange]]:
    """Tier changes grouped so that no two labels are closer than ``LABEL_GAP_SHARE`` of the x span."""
    gap = max(span_min, 1.0) * LABEL_GAP_SHARE
    groups: list[list[TierChange]] = []
    for change in sorted(changes, key=lambda c: c.minute):
        if groups and change.minute - groups[-1][0].minute < gap:
            groups[-1].append(change)
        else:
            groups.append([change])
    return groups


def split_runs(points: list[LoadPoint], run: str | None) -> tuple[list[LoadPoint], list[LoadPoint]]:
    """The points of ``run`` and those of the run before it: a scenario that loops starts a new run, and the
    chart keeps the previous loop (faint) instead of wiping to an empty one."""
    current = [p for p in points if run is None or p.run == run]
    earlier_runs = [p.run for p in points if p.run != run]
    previous_run = earlier_runs[-1] if run is not None and earlier_runs else None
    return current, [p for p in points if previous_run is not None and p.run == previous_run]


def figure_backend_load(points: list[LoadPoint], previous: list[LoadPoint] | None = None) -> go.Figure:
    """Backend requests per second against the scenario minute; a dotted line per tier change, labels that do
    not overlap; the previous loop of the scenario faint behind this one."""
    fig = go.Figure()
    if previous:
        fig.add_trace(go.Scatter(x=[p.minute for p in previous], y=[p.ours_total for p in previous],
                                 name="ours, previous loop", mode="lines",
                                 line={"color": "#2ca02c", "width": 1}, opacity=0.35))
    minutes = [p.minute for p in points]
    fig.add_trace(go.Scatter(x=minutes, y=[p.seed_total for p in points], name="seed's protocol (all classes)",
                             mode="lines", line={"color": "#7f7f7f", "dash": "dash"}))
    fig.add_trace(go.Scatter(x=minutes, y=[p.ours_total for p in points], name="ours (all classes)",
                             mode="lines", line={"color": "#2ca02c", "width": 3}))
    for stakes, colour in CLASS_COLOURS.items():
        fig.add_trace(go.Scatter(x=minutes, y=[p.ours.get(stakes, 0.0) for p in points],
                                 name=f"ours: {stakes.replace('_', ' ')}", mode="lines",
                                 line={"color": colour, "width": 1}, visible="legendonly"))
    changes = tier_changes(points)
    for change in changes:
        fig.add_vline(x=change.minute, line={"color": CLASS_COLOURS.get(change.stakes, "#999"), "dash": "dot",
                                             "width": 1})
    span = max(minutes + [p.minute for p in previous or []], default=0.0) - min(minutes, default=0.0)
    for group in label_groups(changes, span):
        colour = CLASS_COLOURS.get(group[0].stakes, "#999") if len(group) == 1 else "#555"
        fig.add_annotation(x=group[0].minute, y=1, yref="paper", showarrow=False, textangle=-90, xanchor="right",
                           yanchor="top", font={"size": 10, "color": colour},
                           text=", ".join(f"{c.stakes.split('_')[0]} → {c.tier_to}" for c in group))
    fig.update_layout(
        title="Backend load: cache misses per second", xaxis_title="scenario minute",
        yaxis_title="backend requests / s", height=420, margin={"t": 50, "b": 40},
        legend={"orientation": "h", "y": -0.2},
    )
    return fig

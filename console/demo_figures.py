"""The backend-load chart of the Demo page: ours against the seed's protocol, tier changes marked."""

from __future__ import annotations

import plotly.graph_objects as go

from breaker.ops.demo import LoadPoint, tier_changes

CLASS_COLOURS = {"high_stakes": "#d62728", "medium_stakes": "#ff7f0e", "low_stakes": "#1f77b4"}


def figure_backend_load(points: list[LoadPoint]) -> go.Figure:
    """Backend requests per second against the scenario minute; a dotted line per tier change."""
    fig = go.Figure()
    minutes = [p.minute for p in points]
    fig.add_trace(go.Scatter(x=minutes, y=[p.seed_total for p in points], name="seed's protocol (all classes)",
                             mode="lines", line={"color": "#7f7f7f", "dash": "dash"}))
    fig.add_trace(go.Scatter(x=minutes, y=[p.ours_total for p in points], name="ours (all classes)",
                             mode="lines", line={"color": "#2ca02c", "width": 3}))
    for stakes, colour in CLASS_COLOURS.items():
        fig.add_trace(go.Scatter(x=minutes, y=[p.ours.get(stakes, 0.0) for p in points],
                                 name=f"ours: {stakes.replace('_', ' ')}", mode="lines",
                                 line={"color": colour, "width": 1}, visible="legendonly"))
    for change in tier_changes(points):
        fig.add_vline(x=change.minute, line={"color": CLASS_COLOURS.get(change.stakes, "#999"), "dash": "dot",
                                             "width": 1})
        fig.add_annotation(x=change.minute, y=1, yref="paper", showarrow=False, textangle=-90, xanchor="right",
                           yanchor="top", font={"size": 10, "color": CLASS_COLOURS.get(change.stakes, "#999")},
                           text=f"{change.stakes.split('_')[0]} → tier {change.tier_to}")
    fig.update_layout(
        title="Backend load: cache misses per second", xaxis_title="scenario minute",
        yaxis_title="backend requests / s", height=420, margin={"t": 50, "b": 40},
        legend={"orientation": "h", "y": -0.2},
    )
    return fig

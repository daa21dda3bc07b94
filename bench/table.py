"""One table for the whole run, in Markdown so that the README shows exactly what was printed."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Row:
    figure: str
    measure: str
    ours: str
    baseline: str = "—"
    ratio: str = "—"
    goal: str = "—"
    met: bool | None = None  # None: reported, no goal

    @property
    def verdict(self) -> str:
        return {True: "yes", False: "**MISSED**", None: "—"}[self.met]


HEADER = ("#", "measure", "ours", "seed protocol", "ratio", "goal", "met")


def render(rows: list[Row]) -> str:
    cells = [HEADER] + [(r.figure, r.measure, r.ours, r.baseline, r.ratio, r.goal, r.verdict) for r in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(HEADER))]
    lines = ["| " + " | ".join(c.ljust(w) for c, w in zip(row, widths)) + " |" for row in cells]
    lines.insert(1, "|" + "|".join("-" * (w + 2) for w in widths) + "|")
    return "\n".join(lines)


def rate(value: float) -> str:
    """Calls per second, three significant digits."""
    if value >= 1e6:
        return f"{value / 1e6:.2f} M/s"
    if value >= 1e3:
        return f"{value / 1e3:.1f} k/s"
    return f"{value:.0f}/s"


def times(value: float) -> str:
    """A ratio as "N×", or "1/N" when ours is the smaller number (commands, log lines)."""
    if value <= 0:
        return "0×"
    if value < 0.1:
        return f"1/{1 / value:,.0f}"
    return f"{value:,.0f}×" if value >= 100 else f"{value:.2f}×"

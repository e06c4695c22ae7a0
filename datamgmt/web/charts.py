"""Charts drawn on the server as inline SVG: no script, no image request, nothing for the CSP to allow.

A chart is a few rectangles or a polyline whose look comes from ``ui.css`` classes (presentation
by class, never a ``style`` attribute, which the CSP would refuse).  Every text in it goes
through :func:`markupsafe.escape`; numbers are formatted here, never taken from input.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from markupsafe import Markup, escape

WIDTH, HEIGHT = 640, 180
LEFT, BOTTOM, TOP = 56, 22, 8


@dataclass(frozen=True, slots=True)
class Series:
    """One line (or one stack of bars) of a chart; ``css`` names its class in ui.css.  A line's
    ``positions`` place its points along the x axis (0 to 1, e.g. by time); evenly when None."""

    name: str
    values: Sequence[float]
    css: str
    positions: Sequence[float] | None = None


def _scale(values: Sequence[Series]) -> float:
    return max((v for series in values for v in series.values), default=0) or 1


def _axes(top: float, unit: str, first: str, last: str) -> str:
    plot_h = HEIGHT - BOTTOM - TOP
    return (
        f'<line class="axis" x1="{LEFT}" y1="{TOP}" x2="{LEFT}" y2="{TOP + plot_h}"/>'
        f'<line class="axis" x1="{LEFT}" y1="{TOP + plot_h}" x2="{WIDTH}" y2="{TOP + plot_h}"/>'
        f'<text class="tick" x="{LEFT - 4}" y="{TOP + 10}" text-anchor="end">{escape(_short(top))}{escape(unit)}</text>'
        f'<text class="tick" x="{LEFT - 4}" y="{TOP + plot_h}" text-anchor="end">0</text>'
        f'<text class="tick" x="{LEFT}" y="{HEIGHT - 4}">{escape(first)}</text>'
        f'<text class="tick" x="{WIDTH}" y="{HEIGHT - 4}" text-anchor="end">{escape(last)}</text>'
    )


def _short(number: float) -> str:
    """1234567 as 1.2M: axis labels stay narrow."""
    for size, suffix in ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(number) >= size:
            return f"{number / size:.1f}{suffix}"
    return f"{number:g}"


def _frame(label: str, body: str, series: Sequence[Series]) -> Markup:
    legend = "".join(
        f'<rect class="{escape(s.css)}" x="{LEFT + 120 * i}" y="0" width="10" height="6"/>'
        f'<text class="tick" x="{LEFT + 14 + 120 * i}" y="7">{escape(s.name)}</text>'
        for i, s in enumerate(series)
    )
    return Markup(
        f'<svg class="chart" viewBox="0 -4 {WIDTH} {HEIGHT + 4}" role="img" aria-label="{escape(label)}">'
        f"<title>{escape(label)}</title>{legend}{body}</svg>"
    )


def bar_chart(label: str, series: Sequence[Series], first: str, last: str, unit: str = "") -> Markup:
    """Stacked bars, one stack per slot (all series have one value per slot)."""
    slots = max((len(s.values) for s in series), default=0)
    if not slots:
        return Markup("")
    totals = [sum(s.values[i] for s in series) for i in range(slots)]
    top = max(totals) or 1
    plot_h, slot_w = HEIGHT - BOTTOM - TOP, (WIDTH - LEFT) / slots
    bars = []
    for i in range(slots):
        base = TOP + plot_h
        for s in series:
            height = s.values[i] / top * plot_h
            if height > 0:
                base -= height
                bars.append(
                    f'<rect class="{escape(s.css)}" x="{LEFT + i * slot_w + 1:.1f}" y="{base:.1f}" '
                    f'width="{max(slot_w - 2, 1):.1f}" height="{height:.1f}"/>'
                )
    return _frame(label, _axes(top, unit, first, last) + "".join(bars), series)


def line_chart(label: str, series: Sequence[Series], first: str, last: str, unit: str = "") -> Markup:
    """One polyline per series (a series of one point draws a short flat line from it)."""
    top = _scale(series)
    plot_h, plot_w = HEIGHT - BOTTOM - TOP, WIDTH - LEFT
    lines = []
    for s in series:
        if not s.values:
            continue
        xs = (
            list(s.positions)
            if s.positions is not None
            else [i / max(len(s.values) - 1, 1) for i in range(len(s.values))]
        )
        ys = [TOP + plot_h - v / top * plot_h for v in s.values]
        if len(ys) == 1:
            xs, ys = [xs[0], 1.0], [ys[0], ys[0]]
        points = " ".join(f"{LEFT + x * plot_w:.1f},{y:.1f}" for x, y in zip(xs, ys, strict=True))
        lines.append(f'<polyline class="{escape(s.css)}" fill="none" points="{points}"/>')
    return _frame(label, _axes(top, unit, first, last) + "".join(lines), series)

"""Bar charts in small panels, written as plain SVG (no plotting library needed).

Each panel is one quantity on its own axis, labelled with the quantity and its unit and with which direction
is better; every bar belongs to a series (a runtime) whose colour is the same in every panel and every figure,
and one legend names the series.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal
from xml.sax.saxutils import escape

from portcullis.report.colours import RUNTIME_COLOURS, SPARE_COLOURS

PANEL_WIDTH, PANEL_HEIGHT = 470, 300
LEFT, RIGHT, TOP, BOTTOM = 70, 15, 45, 95


@dataclass(frozen=True)
class Bar:
    label: str
    value: float
    low: float  # the error bar spans low..high
    high: float
    series: str  # what the colour stands for, e.g. the runtime
    annotation: str = ""  # printed above the bar, e.g. the change against native


@dataclass(frozen=True)
class Panel:
    quantity: str  # e.g. "write + fsync throughput"
    unit: str
    better: Literal["lower", "higher"]
    bars: Sequence[Bar]


def series_colours(series: Sequence[str]) -> dict[str, str]:
    """The fixed colour of each known series; unknown ones take the fallback colours in order of appearance."""
    colours, spare = {}, iter(SPARE_COLOURS * (1 + len(series) // len(SPARE_COLOURS)))
    for name in series:
        if name not in colours:
            colours[name] = RUNTIME_COLOURS.get(name) or next(spare)
    return colours


def _nice_ceiling(value: float) -> float:
    """The smallest 1/2/2.5/5 x 10^k at or above `value`, so the axis ends on a round number."""
    if value <= 0:
        return 1.0
    magnitude = 10.0 ** math.floor(math.log10(value))
    return next(step * magnitude for step in (1.0, 2.0, 2.5, 5.0, 10.0) if step * magnitude >= value)


def _panel(panel: Panel, x0: float, y0: float, colours: Mapping[str, str]) -> list[str]:
    plot_w, plot_h = PANEL_WIDTH - LEFT - RIGHT, PANEL_HEIGHT - TOP - BOTTOM
    left, top = x0 + LEFT, y0 + TOP
    y_max = _nice_ceiling(max(max(bar.high, bar.value) for bar in panel.bars) * 1.15)

    def y(value: float) -> float:
        return top + plot_h - max(0.0, value) / y_max * plot_h

    arrow = "↓ lower is better" if panel.better == "lower" else "↑ higher is better"
    axis_label = f"{panel.quantity} ({panel.unit})"
    parts = [
        f'<g class="panel"><text class="panel-title" x="{left + plot_w / 2:.1f}" y="{y0 + 18:.1f}" '
        f'text-anchor="middle" font-weight="bold">{escape(panel.quantity)}</text>',
        f'<text class="better" x="{left + plot_w / 2:.1f}" y="{y0 + 33:.1f}" text-anchor="middle" '
        f'font-size="11" fill="#555">{escape(arrow)}</text>',
        f'<text class="y-label" transform="translate({x0 + 16:.1f} {top + plot_h / 2:.1f}) rotate(-90)" '
        f'text-anchor="middle" font-size="11">{escape(axis_label)}</text>',
    ]
    for tick in range(6):
        value = y_max * tick / 5
        parts.append(
            f'<line class="grid" x1="{left}" x2="{left + plot_w}" y1="{y(value):.1f}" y2="{y(value):.1f}" '
            f'stroke="#ddd"/><text class="tick" x="{left - 6}" y="{y(value) + 4:.1f}" text-anchor="end" '
            f'font-size="10">{value:g}</text>'
        )
    parts.append(f'<line x1="{left}" x2="{left}" y1="{top}" y2="{top + plot_h}" stroke="black"/>')
    parts.append(f'<line x1="{left}" x2="{left + plot_w}" y1="{top + plot_h}" y2="{top + plot_h}" stroke="black"/>')
    slot = plot_w / len(panel.bars)
    for index, bar in enumerate(panel.bars):
        x = left + index * slot
        centre, width = x + slot / 2, min(slot * 0.7, 60.0)
        parts.append(
            f'<rect class="bar" data-series="{escape(bar.series)}" x="{centre - width / 2:.1f}" '
            f'y="{y(bar.value):.1f}" width="{width:.1f}" height="{y(0) - y(bar.value):.1f}" '
            f'fill="{colours[bar.series]}"><title>{escape(bar.label)}: {bar.value:.3g} {escape(panel.unit)} '
            f"({bar.low:.3g}–{bar.high:.3g})</title></rect>"
        )
        cap = min(6.0, width / 4)
        parts.append(
            f'<path class="error" d="M{centre:.1f} {y(bar.low):.1f}V{y(bar.high):.1f}'
            f"M{centre - cap:.1f} {y(bar.low):.1f}h{2 * cap:.1f}M{centre - cap:.1f} {y(bar.high):.1f}"
            f'h{2 * cap:.1f}" stroke="black" fill="none"/>'
        )
        if bar.annotation:
            parts.append(
                f'<text class="annotation" x="{centre:.1f}" y="{y(max(bar.high, bar.value)) - 4:.1f}" '
                f'text-anchor="middle" font-size="9">{escape(bar.annotation)}</text>'
            )
        parts.append(
            f'<text class="bar-label" x="{centre:.1f}" y="{top + plot_h + 12:.1f}" text-anchor="end" font-size="10" '
            f'transform="rotate(-35 {centre:.1f} {top + plot_h + 12:.1f})">{escape(bar.label)}</text>'
        )
    parts.append("</g>")
    return parts


def panel_chart(panels: Sequence[Panel], title: str, note: str = "", columns: int = 2) -> str:
    """An SVG document: the panels in a grid under a title and one legend of every series drawn."""
    panels = [panel for panel in panels if panel.bars]
    if not panels:
        raise ValueError("nothing to plot")
    series = [bar.series for panel in panels for bar in panel.bars]
    colours = series_colours(series)
    columns = min(columns, len(panels))
    rows = math.ceil(len(panels) / columns)
    header = 70
    width, height = columns * PANEL_WIDTH, header + rows * PANEL_HEIGHT + (20 if note else 0)
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="12">',
        f'<rect x="0" y="0" width="{width}" height="{height}" fill="white"/>',
        f'<text class="title" x="{width / 2:.1f}" y="22" text-anchor="middle" font-size="15">{escape(title)}</text>',
        '<g class="legend">',
    ]
    x = 20.0
    for name, colour in colours.items():
        parts.append(
            f'<rect class="swatch" data-series="{escape(name)}" x="{x:.1f}" y="38" width="14" height="14" '
            f'fill="{colour}"/><text x="{x + 19:.1f}" y="50">{escape(name)}</text>'
        )
        x += 40 + 7.5 * len(name)
    parts.append("</g>")
    for index, panel in enumerate(panels):
        row, column = divmod(index, columns)
        parts += _panel(panel, column * PANEL_WIDTH, header + row * PANEL_HEIGHT, colours)
    if note:
        parts.append(f'<text class="note" x="10" y="{height - 6}" font-size="10" fill="#555">{escape(note)}</text>')
    parts.append("</svg>")
    return "\n".join(parts) + "\n"

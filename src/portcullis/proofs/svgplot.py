"""A small grouped bar chart with error bars, written as plain SVG (no plotting library needed)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from xml.sax.saxutils import escape

PALETTE = ("#4c78a8", "#f58518", "#54a24b", "#e45756", "#72b7b2", "#b279a2")


@dataclass(frozen=True)
class Bar:
    label: str
    value: float
    low: float  # the error bar spans low..high
    high: float
    annotation: str = ""  # printed above the bar, e.g. the absolute median


@dataclass(frozen=True)
class BarGroup:
    label: str
    bars: Sequence[Bar]


def _nice_ceiling(value: float) -> float:
    """The smallest 1/2/2.5/5 x 10^k at or above `value`, so the axis ends on a round number."""
    if value <= 0:
        return 1.0
    magnitude = 10.0 ** math.floor(math.log10(value))
    return next(step * magnitude for step in (1.0, 2.0, 2.5, 5.0, 10.0) if step * magnitude >= value)


def bar_chart(
    groups: Sequence[BarGroup],
    title: str,
    y_label: str,
    reference: float | None = None,
    reference_label: str = "",
    width: int = 960,
    height: int = 480,
) -> str:
    """An SVG document: one cluster of bars per group, error bars from low to high, an optional dashed
    horizontal reference line (e.g. 1.0 = native)."""
    if not groups or not any(group.bars for group in groups):
        raise ValueError("nothing to plot")
    left, right, top, bottom = 70, 20, 50, 110
    plot_w, plot_h = width - left - right, height - top - bottom
    top_value = max(max(bar.high, bar.value) for group in groups for bar in group.bars)
    if reference is not None:
        top_value = max(top_value, reference)
    y_max = _nice_ceiling(top_value * 1.1)

    def y(value: float) -> float:
        return top + plot_h - max(0.0, value) / y_max * plot_h

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="12">',
        f'<rect x="0" y="0" width="{width}" height="{height}" fill="white"/>',
        f'<text x="{width / 2:.1f}" y="24" text-anchor="middle" font-size="16">{escape(title)}</text>',
        f'<text transform="translate(18 {top + plot_h / 2:.1f}) rotate(-90)" text-anchor="middle">'
        f"{escape(y_label)}</text>",
    ]
    for tick in range(6):
        value = y_max * tick / 5
        parts.append(
            f'<line class="grid" x1="{left}" x2="{left + plot_w}" y1="{y(value):.1f}" y2="{y(value):.1f}" '
            f'stroke="#ddd"/><text x="{left - 6}" y="{y(value) + 4:.1f}" text-anchor="end">{value:g}</text>'
        )
    parts.append(f'<line x1="{left}" x2="{left}" y1="{top}" y2="{top + plot_h}" stroke="black"/>')
    parts.append(f'<line x1="{left}" x2="{left + plot_w}" y1="{top + plot_h}" y2="{top + plot_h}" stroke="black"/>')

    group_w = plot_w / len(groups)
    for g_index, group in enumerate(groups):
        x0 = left + g_index * group_w
        slot = group_w * 0.8 / max(1, len(group.bars))
        for b_index, bar in enumerate(group.bars):
            x = x0 + group_w * 0.1 + b_index * slot
            colour = PALETTE[b_index % len(PALETTE)]
            centre = x + slot / 2
            parts.append(
                f'<rect class="bar" x="{x + 2:.1f}" y="{y(bar.value):.1f}" width="{slot - 4:.1f}" '
                f'height="{y(0) - y(bar.value):.1f}" fill="{colour}"><title>{escape(bar.label)}: '
                f"{bar.value:.3g} ({bar.low:.3g}–{bar.high:.3g})</title></rect>"
            )
            cap = min(8.0, slot / 4)
            parts.append(
                f'<path class="error" d="M{centre:.1f} {y(bar.low):.1f}V{y(bar.high):.1f}'
                f"M{centre - cap:.1f} {y(bar.low):.1f}h{2 * cap:.1f}M{centre - cap:.1f} {y(bar.high):.1f}"
                f'h{2 * cap:.1f}" stroke="black" fill="none"/>'
            )
            text = bar.annotation or f"{bar.value:.3g}"
            parts.append(
                f'<text x="{centre:.1f}" y="{y(max(bar.high, bar.value)) - 5:.1f}" text-anchor="middle" '
                f'font-size="10">{escape(text)}</text>'
            )
            parts.append(
                f'<text x="{centre:.1f}" y="{top + plot_h + 14:.1f}" text-anchor="end" font-size="10" '
                f'transform="rotate(-35 {centre:.1f} {top + plot_h + 14:.1f})">{escape(bar.label)}</text>'
            )
        parts.append(
            f'<text x="{x0 + group_w / 2:.1f}" y="{height - 8}" text-anchor="middle" font-weight="bold">'
            f"{escape(group.label)}</text>"
        )
    if reference is not None:
        parts.append(
            f'<line class="reference" x1="{left}" x2="{left + plot_w}" y1="{y(reference):.1f}" '
            f'y2="{y(reference):.1f}" stroke="#333" stroke-dasharray="6 4"/>'
        )
        if reference_label:
            parts.append(
                f'<text x="{left + 4}" y="{y(reference) - 4:.1f}" text-anchor="start" '
                f'font-size="10">{escape(reference_label)}</text>'
            )
    parts.append("</svg>")
    return "\n".join(parts) + "\n"

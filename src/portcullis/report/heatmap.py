"""The noisy-neighbour matrix as an SVG heat map: plain SVG, no script, so the HTML report can inline it under
its Content-Security-Policy.

One panel per limits mode; a row per (runtime, aggressor), a column per victim metric. A cell's fill encodes its
degradation (white at 0 %, red towards 100 % lost, blue when the victim got faster); a colour scale explains it.
The runtime of each row is marked by a stripe in the runtime's own colour, the same in every figure.
"""

from __future__ import annotations

from xml.sax.saxutils import escape

from portcullis.model.neighbours import VICTIM_METRICS, Cell, NeighboursReport
from portcullis.report.colours import RUNTIME_COLOURS, SPARE_COLOURS

OTHER_RUNTIME_COLOUR = SPARE_COLOURS[-1]  # the heat map has no legend slot per unknown runtime: they share one
SCALE_MIN, SCALE_MAX = -50.0, 100.0  # values beyond are drawn at the end colour
MISSING_FILL = "#d9d9d9"
TITLE = "Victim degradation beside a noisy neighbour"
QUANTITY = "share of the victim's alone performance lost, in % (lower is better)"

CELL_W, CELL_H = 118, 30
LABEL_W = 150  # the row labels left of each panel
PANEL_GAP = 40
TOP = 96  # title, quantity line and column headers


def runtime_colour(runtime: str) -> str:
    return RUNTIME_COLOURS.get(runtime, OTHER_RUNTIME_COLOUR)


def _mix(start: tuple[int, int, int], end: tuple[int, int, int], share: float) -> str:
    r, g, b = (round(a + (b - a) * share) for a, b in zip(start, end, strict=True))
    return f"#{r:02x}{g:02x}{b:02x}"


def value_colour(percent: float | None) -> str:
    """White at 0 %, deep red at SCALE_MAX and above, blue at SCALE_MIN and below."""
    if percent is None:
        return MISSING_FILL
    white = (255, 255, 255)
    if percent >= 0:
        return _mix(white, (165, 15, 21), min(percent, SCALE_MAX) / SCALE_MAX)
    return _mix(white, (33, 102, 172), min(-percent, -SCALE_MIN) / -SCALE_MIN)


def _text_colour(item: Cell | None) -> str:
    """White on the deep ends of the scale, unless the cell is drawn pale (within noise)."""
    percent = item.degradation_percent if item else None
    deep = percent is not None and (percent > 60 or percent < -30)
    return "white" if deep and not (item and item.within_noise) else "black"


def _label(item: Cell | None) -> str:
    if item is None or item.degradation_percent is None:
        return "n/a"
    return f"{item.degradation_percent:+.0f} %" + (" ~" if item.within_noise else "")


def render_heatmap(report: NeighboursReport) -> str:
    settings = report.settings
    if not settings.runtimes or not settings.aggressors or not settings.victims or not settings.limits:
        raise ValueError("nothing to plot")
    rows = [(runtime, aggressor) for runtime in settings.runtimes for aggressor in settings.aggressors]
    columns = settings.victims
    panel_w = LABEL_W + CELL_W * len(columns)
    width = max(640, PANEL_GAP + len(settings.limits) * (panel_w + PANEL_GAP))
    grid_h = CELL_H * len(rows)
    height = TOP + grid_h + 130
    by_key = {(c.runtime, c.limits, c.aggressor, c.victim): c for c in report.cells}
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" viewBox="0 0 {width} {height}" '
        'font-family="sans-serif" font-size="12" role="img">',
        f'<rect x="0" y="0" width="{width}" height="{height}" fill="white"/>',
        f'<text class="title" x="{width / 2:.0f}" y="22" text-anchor="middle" font-size="16">{escape(TITLE)}</text>',
        f'<text class="quantity" x="{width / 2:.0f}" y="40" text-anchor="middle">{escape(QUANTITY)}</text>',
    ]
    for p_index, limits in enumerate(settings.limits):
        x0 = PANEL_GAP + p_index * (panel_w + PANEL_GAP)
        grid_x = x0 + LABEL_W
        parts.append(
            f'<text class="panel" x="{grid_x + CELL_W * len(columns) / 2:.0f}" y="62" text-anchor="middle" '
            f'font-weight="bold">{escape(f"limits: {limits}")}</text>'
        )
        for c_index, victim in enumerate(columns):
            cx = grid_x + c_index * CELL_W + CELL_W / 2
            parts.append(
                f'<text class="column" x="{cx:.0f}" y="{TOP - 18}" text-anchor="middle">{escape(victim)}</text>'
            )
            unit = f"victim ({VICTIM_METRICS[victim][1]})"
            parts.append(f'<text x="{cx:.0f}" y="{TOP - 5}" text-anchor="middle" font-size="10">{escape(unit)}</text>')
        for r_index, (runtime, aggressor) in enumerate(rows):
            y = TOP + r_index * CELL_H
            parts.append(
                f'<rect class="runtime" x="{x0}" y="{y + 2}" width="6" height="{CELL_H - 4}" '
                f'fill="{runtime_colour(runtime)}"><title>{escape(runtime)}</title></rect>'
            )
            row_label = f"{runtime} · {aggressor} hog" if aggressor != "fork" else f"{runtime} · fork storm"
            parts.append(
                f'<text class="row" x="{grid_x - 6}" y="{y + CELL_H / 2 + 4:.0f}" text-anchor="end">'
                f"{escape(row_label)}</text>"
            )
            for c_index, victim in enumerate(columns):
                item = by_key.get((runtime, limits, aggressor, victim))
                percent = item.degradation_percent if item else None
                x = grid_x + c_index * CELL_W
                tip = f"{runtime}, limits {limits}, {aggressor} aggressor, {victim} victim: {_label(item)}"
                if item and item.note:
                    tip += f" ({item.note})"
                # Within noise: drawn pale, so only effects that stand out of the spread catch the eye.
                pale = ' fill-opacity="0.3"' if item and item.within_noise else ""
                parts.append(
                    f'<rect class="cell" x="{x}" y="{y}" width="{CELL_W}" height="{CELL_H}" '
                    f'fill="{value_colour(percent)}"{pale} stroke="white"><title>{escape(tip)}</title></rect>'
                )
                parts.append(
                    f'<text x="{x + CELL_W / 2:.0f}" y="{y + CELL_H / 2 + 4:.0f}" text-anchor="middle" '
                    f'fill="{_text_colour(item)}">{escape(_label(item))}</text>'
                )
    parts += _legends(TOP + grid_h + 30, settings.runtimes)
    parts.append("</svg>")
    return "\n".join(parts) + "\n"


def _legends(y: int, runtimes: list[str]) -> list[str]:
    """The colour scale of the values, then the colours of the runtimes in the figure."""
    steps, bar_w = 30, 300
    x0 = PANEL_GAP
    parts = [
        f'<g class="legend scale"><text x="{x0}" y="{y - 6}">degradation (% of alone performance lost; '
        "lower is better; blue: the victim was faster)</text>"
    ]
    for step in range(steps):
        value = SCALE_MIN + (SCALE_MAX - SCALE_MIN) * (step + 0.5) / steps
        parts.append(
            f'<rect x="{x0 + step * bar_w / steps:.1f}" y="{y}" width="{bar_w / steps + 0.5:.1f}" height="14" '
            f'fill="{value_colour(value)}"/>'
        )
    parts.append(f'<rect x="{x0}" y="{y}" width="{bar_w}" height="14" fill="none" stroke="#333"/>')
    for tick in (-50, 0, 50, 100):
        tx = x0 + (tick - SCALE_MIN) / (SCALE_MAX - SCALE_MIN) * bar_w
        parts.append(f'<line x1="{tx:.1f}" x2="{tx:.1f}" y1="{y + 14}" y2="{y + 19}" stroke="#333"/>')
        label = f"≥{tick} %" if tick == SCALE_MAX else (f"≤{tick} %" if tick == SCALE_MIN else f"{tick} %")
        parts.append(f'<text x="{tx:.1f}" y="{y + 31}" text-anchor="middle" font-size="10">{escape(label)}</text>')
    missing_x = x0 + bar_w + 20
    parts.append(f'<rect x="{missing_x}" y="{y}" width="14" height="14" fill="{MISSING_FILL}" stroke="#333"/>')
    parts.append(f'<text x="{missing_x + 20}" y="{y + 11}">n/a: not measured</text>')
    parts.append(f'<text x="{missing_x + 150}" y="{y + 11}">~ and pale: within the alone runs\' spread</text>')
    parts.append("</g>")
    legend_y = y + 50
    parts.append(f'<g class="legend runtimes"><text x="{x0}" y="{legend_y + 11}">runtime:</text>')
    for index, runtime in enumerate(runtimes):
        lx = x0 + 70 + index * 90
        parts.append(f'<rect x="{lx}" y="{legend_y}" width="14" height="14" fill="{runtime_colour(runtime)}"/>')
        parts.append(f'<text x="{lx + 20}" y="{legend_y + 11}">{escape(runtime)}</text>')
    parts.append("</g>")
    return parts

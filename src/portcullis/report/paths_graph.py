"""Attack paths as a graph: one row per path, entry → steps → outcome, in plain SVG (no script, no fonts to fetch).

Every name in it comes from the audited engine (container names, mount paths), so all text is escaped.
"""

from __future__ import annotations

import textwrap
from html import escape

from portcullis.model.paths import AttackPath, Certainty, PathsReport

BOX_WIDTH = 210
GAP = 34
LINE_HEIGHT = 14
PAD = 8
ROW_GAP = 26
HEADER = 46
WRAP = 30
COLOURS = {"entry": "#fde2e1", "step": "#eef2f7", "outcome": "#e45756", "undecided": "#fff4d6"}


def _lines(text: str) -> list[str]:
    return textwrap.wrap(text, WRAP) or [""]


def _box(
    x: int, y: int, height: int, lines: list[str], fill: str, bold_first: bool = False, dashed: bool = False
) -> str:
    dash = ' stroke-dasharray="5,3"' if dashed else ""
    parts = [f'<rect x="{x}" y="{y}" width="{BOX_WIDTH}" height="{height}" rx="6" fill="{fill}" stroke="#555"{dash}/>']
    for index, line in enumerate(lines):
        weight = ' font-weight="bold"' if bold_first and index == 0 else ""
        baseline = y + PAD + LINE_HEIGHT * (index + 1) - 3
        parts.append(f'<text x="{x + PAD}" y="{baseline}"{weight}>{escape(line)}</text>')
    return "\n".join(parts)


def _row(path: AttackPath, y: int) -> tuple[str, int]:
    """One path's boxes and arrows from `y` down; returns the SVG and the row's height."""
    boxes: list[tuple[list[str], str, bool]] = [
        ([f"ENTRY ({path.entry.kind.value})", *_lines(path.entry.description)], COLOURS["entry"], False)
    ]
    for step in path.steps:
        lines = _lines(step.description)
        if step.finding:
            lines.append(f"[{step.finding}]")
        if step.evidence:
            lines += _lines(step.evidence)[:3]
        if step.undecided:
            lines += _lines("undecided: " + step.undecided)[:3]
        boxes.append((lines, COLOURS["undecided"] if step.undecided else COLOURS["step"], bool(step.undecided)))
    boxes.append(([path.outcome.upper(), *_lines("fix: " + path.fix)], COLOURS["outcome"], False))
    height = max(len(lines) for lines, _, _ in boxes) * LINE_HEIGHT + 2 * PAD
    title = f"{path.title}: {path.target} ({path.certainty.value})"
    parts = [f'<text x="10" y="{y + 12}" font-weight="bold">{escape(title)}</text>']
    top = y + 20
    for index, (lines, fill, dashed) in enumerate(boxes):
        x = 10 + index * (BOX_WIDTH + GAP)
        parts.append(_box(x, top, height, lines, fill, bold_first=index in (0, len(boxes) - 1), dashed=dashed))
        if index:
            mid = top + height // 2
            parts.append(
                f'<line x1="{x - GAP}" y1="{mid}" x2="{x - 4}" y2="{mid}" stroke="#333" marker-end="url(#arrow)"/>'
            )
    return "\n".join(parts), height + 20


def render_svg(report: PathsReport) -> str:
    rows = []
    y = HEADER
    widest = 1
    for path in report.paths:
        svg, height = _row(path, y)
        rows.append(svg)
        y += height + ROW_GAP
        widest = max(widest, len(path.steps) + 2)
    confirmed = sum(1 for p in report.paths if p.certainty is Certainty.CONFIRMED)
    heading = f"Attack paths of {report.subject}: {len(report.paths)} ({confirmed} confirmed), most exposed first"
    if not report.paths:
        rows.append(f'<text x="10" y="{HEADER + 12}">No attack path found.</text>')
        y += 30
    width = 20 + widest * (BOX_WIDTH + GAP)
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{y}" viewBox="0 0 {width} {y}" '
        'font-family="sans-serif" font-size="11">\n'
        '<defs><marker id="arrow" markerWidth="8" markerHeight="8" refX="7" refY="4" orient="auto">'
        '<path d="M0,0 L8,4 L0,8 z" fill="#333"/></marker></defs>\n'
        f'<rect width="{width}" height="{y}" fill="white"/>\n'
        f'<text x="10" y="24" font-size="15" font-weight="bold">{escape(heading)}</text>\n'
        + "\n".join(rows)
        + "\n</svg>\n"
    )


def render_html(report: PathsReport) -> str:
    """A self-contained page: the graph, then the notes that limited the analysis."""
    notes = "".join(f"<li>{escape(note)}</li>" for note in report.notes)
    return (
        '<!DOCTYPE html>\n<html><head><meta charset="utf-8">'
        f"<title>Portcullis attack paths: {escape(report.subject)}</title></head>\n<body>\n"
        + render_svg(report)
        + (f"<h2>Notes</h2><ul>{notes}</ul>\n" if notes else "")
        + "</body></html>\n"
    )

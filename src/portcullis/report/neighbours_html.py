"""The noisy-neighbour matrix as a self-contained HTML page: the heat map inline as SVG, no script at all, so the
Content-Security-Policy allows none; every value goes through jinja2's autoescape."""

from __future__ import annotations

from functools import cache

import jinja2
from markupsafe import Markup

from portcullis.model.neighbours import NeighboursReport
from portcullis.report.heatmap import render_heatmap


@cache
def _environment() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.PackageLoader("portcullis.report", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )


def render_neighbours_html(report: NeighboursReport) -> str:
    # The heat map escapes every label it writes, so it is the one piece passed through unescaped.
    heatmap = Markup(render_heatmap(report))
    return _environment().get_template("neighbours.html.j2").render(report=report, heatmap=heatmap)

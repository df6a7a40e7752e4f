"""The heat map names its quantity and unit and which way is better, colours cells by value with a scale legend,
marks runtimes in fixed colours with a legend, escapes labels; the HTML page inlines it with no script."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

from portcullis.model.neighbours import Aggressor, LimitsMode, Victim
from portcullis.proofs.neighbours_results import cell
from portcullis.report.heatmap import MISSING_FILL, RUNTIME_COLOURS, render_heatmap, value_colour
from portcullis.report.neighbours_html import render_neighbours_html

from .test_neighbours_results import report_of

SVG = "{http://www.w3.org/2000/svg}"


def sample() -> list:
    return [
        cell("runc", LimitsMode.none, Aggressor.cpu, Victim.cpu, [100.0], [50.0]),  # 50 %
        cell("runc", LimitsMode.none, Aggressor.cpu, Victim.tcp_latency, [10.0], [10.0]),  # 0 %
        cell("runc", LimitsMode.docker, Aggressor.cpu, Victim.cpu, [100.0], [90.0]),  # 10 %
        cell("runsc", LimitsMode.none, Aggressor.cpu, Victim.cpu, [100.0], [120.0]),  # -20 %
    ]


def texts(root: ET.Element) -> list[str]:
    return ["".join(node.itertext()) for node in root.iter(f"{SVG}text")]


def cell_fills(root: ET.Element) -> dict[str, str]:
    """Tooltip text -> fill of every matrix cell."""
    return {rect.findtext(f"{SVG}title") or "": rect.get("fill", "") for rect in root.iter(f"{SVG}rect")
            if rect.get("class") == "cell"}  # fmt: skip


def test_the_figure_names_its_quantity_unit_and_direction() -> None:
    root = ET.fromstring(render_heatmap(report_of(sample(), ["runc", "runsc"])))
    words = texts(root)
    quantity = next(t for t in words if "alone performance lost" in t)
    assert "in %" in quantity and "lower is better" in quantity
    assert "victim (iterations/s)" in words and "victim (µs)" in words
    assert "limits: none" in words and "limits: docker" in words


def test_cells_are_coloured_by_value() -> None:
    fills = cell_fills(ET.fromstring(render_heatmap(report_of(sample(), ["runc", "runsc"]))))
    half = fills["runc, limits none, cpu aggressor, cpu victim: +50 %"]
    tenth = fills["runc, limits docker, cpu aggressor, cpu victim: +10 %"]
    unaffected = fills["runc, limits none, cpu aggressor, tcp-latency victim: +0 % ~"]
    faster = fills["runsc, limits none, cpu aggressor, cpu victim: -20 %"]
    missing = fills["runsc, limits docker, cpu aggressor, tcp-latency victim: n/a"]
    assert unaffected == "#ffffff"
    assert half == value_colour(50.0) and tenth == value_colour(10.0)
    red = lambda colour: int(colour[1:3], 16) - int(colour[5:7], 16)  # noqa: E731
    assert red(half) > red(tenth) > 0  # more loss, redder
    assert int(faster[5:7], 16) > int(faster[1:3], 16)  # the victim got faster: blue
    assert missing == MISSING_FILL


def test_the_value_scale_and_the_runtimes_have_legends() -> None:
    root = ET.fromstring(render_heatmap(report_of(sample(), ["runc", "runsc"])))
    groups = {g.get("class"): g for g in root.iter(f"{SVG}g")}
    scale = groups["legend scale"]
    scale_words = texts(scale)
    assert any("% of alone performance lost" in t for t in scale_words)
    assert {"≤-50 %", "0 %", "50 %", "≥100 %"} <= set(scale_words)
    steps = [r.get("fill") for r in scale.iter(f"{SVG}rect") if r.get("fill", "").startswith("#")]
    assert len(set(steps)) > 10  # a graded scale, not two colours
    runtimes = groups["legend runtimes"]
    legend = dict(zip(texts(runtimes)[1:], [r.get("fill") for r in runtimes.iter(f"{SVG}rect")], strict=True))
    assert legend == {"runc": RUNTIME_COLOURS["runc"], "runsc": RUNTIME_COLOURS["runsc"]}  # the figure's runtimes
    stripes = {r.findtext(f"{SVG}title"): r.get("fill") for r in root.iter(f"{SVG}rect") if r.get("class") == "runtime"}
    assert stripes == {"runc": RUNTIME_COLOURS["runc"], "runsc": RUNTIME_COLOURS["runsc"]}


def test_labels_are_escaped() -> None:
    hostile = "<script>alert(1)</script>&"
    cells = [cell(hostile, LimitsMode.none, Aggressor.cpu, Victim.cpu, [100.0], [50.0], note='"quoted" <b>')]
    svg = render_heatmap(report_of(cells, [hostile]))
    root = ET.fromstring(svg)  # still well-formed XML
    assert "<script>" not in svg
    assert any(hostile in t for t in texts(root))


def test_the_html_page_inlines_the_heat_map_without_script() -> None:
    hostile = "<img src=x onerror=alert(1)>"
    cells = [cell("runc", LimitsMode.none, Aggressor.cpu, Victim.cpu, [100.0], [50.0], note=hostile)]
    page = render_neighbours_html(report_of(cells))
    assert "default-src 'none'" in page and "script-src" not in page and "<script" not in page
    assert re.search(r'<section id="neighbours-heatmap">.*<svg xmlns="http://www.w3.org/2000/svg"', page, re.S)
    assert hostile not in page and "&lt;img src=x onerror=alert(1)&gt;" in page
    assert '<td class="verdict-did-not-hold">did not hold</td>' in page


def test_cells_within_noise_are_drawn_pale() -> None:
    root = ET.fromstring(render_heatmap(report_of(sample(), ["runc", "runsc"])))
    opacity = {
        r.findtext(f"{SVG}title"): r.get("fill-opacity") for r in root.iter(f"{SVG}rect") if r.get("class") == "cell"
    }
    assert opacity["runc, limits none, cpu aggressor, tcp-latency victim: +0 % ~"] == "0.3"
    assert opacity["runc, limits none, cpu aggressor, cpu victim: +50 %"] is None

"""The self-written SVG panels: well-formed XML, every axis names its quantity, unit and better direction,
colours follow the runtime (the same in every panel and figure), one legend, geometry right."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest

from portcullis.proofs.overhead_results import Workload, measurement, plot_measurements
from portcullis.proofs.svgplot import Bar, Panel, panel_chart, series_colours
from portcullis.report.colours import RUNTIME_COLOURS

SVG = "{http://www.w3.org/2000/svg}"
PANELS = [
    Panel("time for the fixed CPU work", "s", "lower", [
        Bar("native", 1.0, 0.9, 1.2, "native"), Bar("runc", 1.05, 0.95, 1.3, "runc", "+5 % time"),
    ]),
    Panel("TCP stream throughput", "Gbit/s", "higher", [
        Bar("native-loopback", 10.0, 9.4, 11.0, "native"),
        Bar("runsc published <port> & proxy", 3.0, 2.8, 3.6, "runsc"),
        Bar("runc bridge-ip", 5.0, 4.0, 6.0, "runc"),
    ]),
]  # fmt: skip


def parse(text: str) -> ET.Element:
    return ET.fromstring(text)  # raises on malformed XML


def texts(root: ET.Element, css_class: str) -> list[str]:
    return [t.text or "" for t in root.iter(f"{SVG}text") if t.get("class") == css_class]


def test_every_axis_names_its_quantity_unit_and_better_direction() -> None:
    root = parse(panel_chart(PANELS, title="Runtimes"))
    assert root.tag == f"{SVG}svg"
    assert texts(root, "y-label") == ["time for the fixed CPU work (s)", "TCP stream throughput (Gbit/s)"]
    assert texts(root, "better") == ["↓ lower is better", "↑ higher is better"]
    bars = root.findall(f".//{SVG}rect[@class='bar']")
    assert [bar.find(f"{SVG}title").text.split(":")[0] for bar in bars] == [  # type: ignore[union-attr]
        "native",
        "runc",
        "native-loopback",
        "runsc published <port> & proxy",  # escaped in the file, intact once parsed
        "runc bridge-ip",
    ]
    assert len(root.findall(f".//{SVG}path[@class='error']")) == 5
    assert "+5 % time" in texts(root, "annotation")


def test_colours_follow_the_runtime_not_the_position_and_the_legend_names_each() -> None:
    root = parse(panel_chart(PANELS, title="Runtimes"))
    fills = {(bar.get("data-series"), bar.get("fill")) for bar in root.findall(f".//{SVG}rect[@class='bar']")}
    # runc is second in one panel and third in the other: the same blue both times.
    assert fills == {("native", "#7f7f7f"), ("runc", "#4c78a8"), ("runsc", "#f58518")}
    swatches = [(s.get("data-series"), s.get("fill")) for s in root.findall(f".//{SVG}rect[@class='swatch']")]
    assert swatches == [("native", "#7f7f7f"), ("runc", "#4c78a8"), ("runsc", "#f58518")]
    legend = [t.text for t in root.find(f"{SVG}g[@class='legend']").iter(f"{SVG}text")]  # type: ignore[union-attr]
    assert legend == ["native", "runc", "runsc"]


def test_unknown_series_get_distinct_spare_colours() -> None:
    colours = series_colours(["runc", "kata", "firecracker", "kata"])
    assert colours["runc"] == RUNTIME_COLOURS["runc"]
    assert len({colours["kata"], colours["firecracker"], *RUNTIME_COLOURS.values()}) == len(RUNTIME_COLOURS) + 2


def test_bar_heights_are_proportional_and_each_axis_ends_on_a_round_number() -> None:
    root = parse(panel_chart(PANELS, title="t"))
    heights = [float(bar.get("height", "0")) for bar in root.findall(f".//{SVG}rect[@class='bar']")]
    assert heights[2] / heights[3] == pytest.approx(10.0 / 3.0, rel=1e-3)
    ticks = texts(root, "tick")
    # CPU: tallest 1.3 x 1.15 = 1.495 -> 2; throughput: 11 x 1.15 = 12.65 -> 20
    assert ticks == ["0", "0.4", "0.8", "1.2", "1.6", "2", "0", "4", "8", "12", "16", "20"]


def test_nothing_to_plot_is_an_error() -> None:
    with pytest.raises(ValueError):
        panel_chart([], title="t")
    with pytest.raises(ValueError):
        panel_chart([Panel("q", "u", "lower", [])], title="t")


def test_overhead_figure_plots_each_workload_in_its_own_unit() -> None:
    cpu_metric = "CPU seconds for 1000000 LCG iterations in python"
    items = [
        measurement(Workload.cpu, "native", cpu_metric, "s", "lower", [0.20, 0.25, 0.21], True, "native"),
        measurement(Workload.cpu, "container", cpu_metric, "s", "lower", [0.22, 0.21, 0.26]),
        measurement(Workload.disk, "native", "MiB/s", "MiB/s", "higher", [700, 800, 750], True, "native"),
        measurement(Workload.disk, "container-layer", "MiB/s", "MiB/s", "higher", [350, 400, 375]),
    ]  # fmt: skip
    root = parse(plot_measurements(items, title="t"))
    # the axis says which clock timed the CPU work (overhead: CPU time; --runtime: wall time)
    assert texts(root, "y-label") == ["time for the fixed CPU work, CPU clock (s)", "write + fsync throughput (MiB/s)"]
    assert texts(root, "better") == ["↓ lower is better", "↑ higher is better"]
    # the container needs twice the time for the same bytes: +100 %, printed above its bar
    assert texts(root, "annotation") == ["+5 % time", "+100 % time"]
    series = [bar.get("data-series") for bar in root.findall(f".//{SVG}rect[@class='bar']")]
    assert series == ["native", "runc", "native", "runc"]

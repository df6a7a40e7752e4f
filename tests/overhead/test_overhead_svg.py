"""The self-written SVG bar chart: well-formed XML, one bar and one error bar per value, geometry right."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest

from portcullis.proofs.svgplot import Bar, BarGroup, bar_chart

SVG = "{http://www.w3.org/2000/svg}"
GROUPS = [
    BarGroup("cpu", [Bar("native", 1.0, 0.9, 1.2), Bar("container", 1.05, 0.95, 1.3, annotation="0.22 s")]),
    BarGroup("tcp_rtt", [Bar("native-loopback", 1.0, 0.94, 1.1), Bar("published <port> & proxy", 3.0, 2.8, 3.6)]),
]


def parse(text: str) -> ET.Element:
    return ET.fromstring(text)  # raises on malformed XML


def test_chart_is_valid_svg_with_every_bar_and_error_bar() -> None:
    root = parse(bar_chart(GROUPS, title="Overhead", y_label="time relative to native", reference=1.0))
    assert root.tag == f"{SVG}svg"
    bars = root.findall(f"{SVG}rect[@class='bar']")
    assert len(bars) == 4
    assert [bar.find(f"{SVG}title").text.split(":")[0] for bar in bars] == [  # type: ignore[union-attr]
        "native",
        "container",
        "native-loopback",
        "published <port> & proxy",  # escaped in the file, intact once parsed
    ]
    assert len(root.findall(f"{SVG}path[@class='error']")) == 4
    assert len(root.findall(f"{SVG}line[@class='reference']")) == 1
    texts = [t.text for t in root.iter(f"{SVG}text")]
    assert "0.22 s" in texts and "cpu" in texts and "tcp_rtt" in texts


def test_bar_heights_are_proportional_and_the_axis_ends_on_a_round_number() -> None:
    root = parse(bar_chart(GROUPS, title="t", y_label="y"))
    heights = [float(bar.get("height", "0")) for bar in root.findall(f"{SVG}rect[@class='bar']")]
    assert heights[3] / heights[0] == pytest.approx(3.0, rel=1e-3)
    ticks = [t.text for t in root.iter(f"{SVG}text") if t.get("text-anchor") == "end" and t.get("font-size") is None]
    # the tallest point is 3.6 (an error bar); with 10 % headroom, 3.96, the next of 1/2/2.5/5 x 10^k is 5
    assert ticks == ["0", "1", "2", "3", "4", "5"]


def test_nothing_to_plot_is_an_error() -> None:
    with pytest.raises(ValueError):
        bar_chart([], title="t", y_label="y")
    with pytest.raises(ValueError):
        bar_chart([BarGroup("empty", [])], title="t", y_label="y")

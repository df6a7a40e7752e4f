"""`audit --neighbours FILE`: the noisy-neighbour matrix measured on this host rides in the audit report. The HTML
report shows its heat map, claims and cells (in a real browser, under the report's CSP, hostile values as text),
JSON carries it, and a file that is not a neighbours report is one line and exit 1."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from headless_chromium import CHROMIUM, Browser, Page
from report_samples import make_report

from portcullis.model.neighbours import NeighboursReport
from portcullis.report import html

REPO = Path(__file__).resolve().parents[2]
MEASURED = REPO / "benchmarks" / "results" / "neighbours.json"  # this host's run, kept by `make bench-neighbours`
FACTS = REPO / "tests" / "paths" / "data" / "facts.json"
HOSTILE = "<img src=x onerror=alert(1)>"


def measured() -> NeighboursReport:
    report = NeighboursReport.model_validate_json(MEASURED.read_text(encoding="utf-8"))
    first = report.cells[0]
    report.cells[0] = first.model_copy(update={"note": HOSTILE})
    report.notes.append(HOSTILE)
    return report


def portcullis_audit(*args: str, tmp: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "portcullis", "audit", "--no-vulns", "--no-store", *args],
        capture_output=True, text=True, timeout=300, cwd=tmp,
    )  # fmt: skip


def audit(*args: str, tmp: Path) -> subprocess.CompletedProcess[str]:
    """A replayed audit: no engine needed."""
    return portcullis_audit("--facts-in", str(FACTS), *args, tmp=tmp)


def test_the_html_report_carries_the_heat_map_claims_and_every_cell() -> None:
    isolation = measured()
    report = make_report([])
    report.isolation = isolation
    page = html.render(report)
    section = page[page.index('<section id="isolation">') :]
    assert section.count("<svg") == 1 and "Victim degradation beside a noisy neighbour" in section
    assert section.count("<tr><td>") == len(isolation.cells) + len(isolation.claims)
    for claim in isolation.claims:
        assert f">{claim.verdict}</td><td>" in section
    assert HOSTILE not in page and "&lt;img src=x onerror=alert(1)&gt;" in section


def test_without_a_matrix_there_is_no_isolation_section() -> None:
    assert 'id="isolation"' not in html.render(make_report([]))


def test_audit_attaches_the_file_to_html_and_json(tmp_path: Path) -> None:
    done = audit("-f", "json", "--neighbours", str(MEASURED), tmp=tmp_path)
    assert done.returncode == 0, done.stderr
    carried = json.loads(done.stdout)["isolation"]
    assert carried == json.loads(MEASURED.read_text(encoding="utf-8"))
    page = tmp_path / "audit.html"
    done = audit("-f", "html", "-o", str(page), "--neighbours", str(MEASURED), tmp=tmp_path)
    assert done.returncode == 0, done.stderr
    assert '<section id="isolation">' in page.read_text(encoding="utf-8")


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ('{"version": "1"}', "is not what `portcullis neighbours --format json` writes: started_at: Field required"),
        ("{not json", "is not JSON: Expecting property name enclosed in double quotes (line 1)"),
        ("[" * 200_000, "is nested too deeply to be a neighbours report"),
        (None, "cannot read neighbours report"),
    ],
)
def test_a_file_that_is_not_a_neighbours_report_is_one_line(tmp_path: Path, content: str | None, message: str) -> None:
    given = tmp_path / "given.json"
    if content is not None:
        given.write_text(content, encoding="utf-8")
    done = audit("--neighbours", str(given), tmp=tmp_path)
    assert done.returncode == 1 and done.stdout == ""
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("portcullis: error: ") and message in lines[0], done.stderr


def test_many_engines_refuse_one_hosts_matrix(tmp_path: Path) -> None:
    hosts = "tcp://192.0.2.1:2375,tcp://192.0.2.2:2375"
    done = portcullis_audit("-H", hosts, "--neighbours", str(MEASURED), tmp=tmp_path)
    assert done.returncode == 1
    assert done.stderr == (
        "portcullis: error: --neighbours is measured on one host: "
        "it takes one engine, not --engines or several --host\n"
    ), done.stderr


@pytest.fixture
def page(tmp_path: Path) -> Iterator[Page]:
    if CHROMIUM is None:
        pytest.skip("chromium is not installed; `make programs` installs it (scripts/programs.tsv)")
    report = make_report([])
    report.isolation = measured()
    path = tmp_path / "report.html"
    path.write_text(html.render(report), encoding="utf-8")
    browser = Browser()
    opened = browser.new_page()
    opened.open(path)
    yield opened
    browser.close()


def test_in_a_browser_the_heat_map_shows_under_the_csp(page: Page) -> None:
    assert page.errors == [] and page.dialogs == []
    box = page.evaluate(
        "(r => [r.width, r.height])(document.querySelector('#isolation figure svg').getBoundingClientRect())"
    )
    assert box[0] > 400 and box[1] > 200, box
    assert page.evaluate("document.querySelectorAll('#isolation img').length") == 0
    assert page.evaluate(f"document.querySelector('#isolation').textContent.includes({json.dumps(HOSTILE)})")

"""The flows answer with a Report or a typed one-line error, never by exiting: what a service or harden relies on."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from portcullis.model.facts import Facts
from portcullis.pipelines.audit import choose_benchmark, gather_facts, write_facts
from portcullis.pipelines.database import database_status, import_into_database, update_database
from portcullis.pipelines.errors import OutputError, SubjectError, UsageError, VulnerabilityInputError
from portcullis.pipelines.image import ImageSource, image_report, read_image
from portcullis.pipelines.lint import lint_report
from portcullis.pipelines.vulnerabilities import VulnOptions, vulnerability_findings

BASELINE_FACTS = Path(__file__).parents[1] / "rules" / "baseline.json"  # an engine with nothing configured


@pytest.fixture
def root(tmp_path: Path) -> Path:
    (tmp_path / "etc").mkdir()
    (tmp_path / "etc" / "os-release").write_text("ID=alpine\nVERSION_ID=3.20.0\n")
    return tmp_path


def test_an_image_read_alone_becomes_a_report_with_a_progress_line(root: Path) -> None:
    lines: list[str] = []
    report = image_report(ImageSource(f"dir:{root}"), log=lines.append)
    assert report.command == "image" and report.subject == f"dir:{root}"
    assert report.findings and all(f.target.kind.value == "image" for f in report.findings)
    assert lines == [f"read dir:{root}: 1 layers, 2 paths, 0 packages, 28 bytes"]


def test_a_missing_image_is_a_subject_error(tmp_path: Path) -> None:
    with pytest.raises(SubjectError, match="is not a directory"):
        image_report(ImageSource(f"dir:{tmp_path / 'absent'}"))


def test_an_explicit_database_that_is_missing_is_a_vulnerability_input_error(root: Path, tmp_path: Path) -> None:
    image = read_image(ImageSource(f"dir:{root}"))
    with pytest.raises(VulnerabilityInputError, match="no vulnerability database at"):
        vulnerability_findings(image, VulnOptions(db_path=tmp_path / "absent.db"))


def test_a_missing_file_to_lint_is_a_subject_error(tmp_path: Path) -> None:
    with pytest.raises(SubjectError, match=r"Dockerfile: no such file$"):
        lint_report([tmp_path / "Dockerfile"], [])


def test_database_arguments_and_inputs_fail_with_their_own_types(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match=r"^unknown feed 'nope'; known: debian, "):
        update_database(tmp_path / "vuln.db", ["nope"], [], lambda *_: None)
    with pytest.raises(VulnerabilityInputError, match="no vulnerability database at"):
        database_status(tmp_path / "vuln.db")
    with pytest.raises(VulnerabilityInputError, match=r"^import failed, the existing database is unchanged: "):
        import_into_database(tmp_path / "absent", tmp_path / "vuln.db")


def test_audit_inputs_and_outputs_fail_with_their_own_types(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match=r"^unknown benchmark 'nope'; available: "):
        choose_benchmark("nope")
    with pytest.raises(SubjectError, match=r"^cannot open .*absent\.json: No such file or directory$"):
        gather_facts(None, tmp_path / "absent.json")
    with pytest.raises(SubjectError, match=r"^no Docker engine answers at unix:///nonexistent\.sock: "):
        gather_facts("unix:///nonexistent.sock", None)


def test_saved_facts_replay_as_they_were_and_an_unwritable_path_is_an_output_error(tmp_path: Path) -> None:
    raw = json.loads(BASELINE_FACTS.read_text())
    facts = Facts.model_validate({k: v for k, v in raw.items() if not k.startswith("_")})
    write_facts(facts, tmp_path / "facts.json")
    assert gather_facts(None, tmp_path / "facts.json") == facts
    with pytest.raises(OutputError, match=r"^cannot write .*facts\.json: No such file or directory$"):
        write_facts(facts, tmp_path / "missing-dir" / "facts.json")

"""The flows answer with a Report or a typed one-line error, never by exiting: what a service or harden relies on."""

from __future__ import annotations

from pathlib import Path

import pytest

from portcullis.pipelines.database import database_status, import_into_database, update_database
from portcullis.pipelines.errors import SubjectError, UsageError, VulnerabilityInputError
from portcullis.pipelines.image import ImageSource, image_report, read_image
from portcullis.pipelines.lint import lint_report
from portcullis.pipelines.vulnerabilities import VulnOptions, vulnerability_findings


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

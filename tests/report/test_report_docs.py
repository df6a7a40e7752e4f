"""The checked-in rule pages are exactly what the generator writes from the declarations (`make docs`)."""

from __future__ import annotations

import inspect
from pathlib import Path

from portcullis.checks.registry import all_rules, get_rule
from portcullis.cli import docs as docs_command
from portcullis.model.findings import RuleInfo
from portcullis.report import docs

REPO = Path(__file__).resolve().parents[2]
CHECKED_IN = REPO / "docs" / "rules"
FIXTURES = REPO / "tests" / "rules"


def described() -> list[RuleInfo]:
    return [item.info() for item in all_rules()]


def test_checked_in_rule_pages_are_up_to_date(tmp_path: Path) -> None:
    docs.generate(tmp_path, described(), FIXTURES)
    generated = {p.name: p.read_text(encoding="utf-8") for p in tmp_path.glob("*.md")}
    checked_in = {p.name: p.read_text(encoding="utf-8") for p in CHECKED_IN.glob("*.md")}
    stale = sorted(name for name in generated.keys() | checked_in.keys() if generated.get(name) != checked_in.get(name))
    assert not stale, f"docs/rules is out of date for {stale[:10]}: run `make docs`"


def test_a_page_carries_the_declaration_and_its_fixtures(tmp_path: Path) -> None:
    docs.generate(tmp_path, described(), FIXTURES)
    rule = get_rule("CIS-5.5")
    assert rule is not None
    page = (tmp_path / "CIS-5.5.md").read_text()
    assert page.startswith(docs.GENERATED_MARKER)
    assert f"# CIS-5.5: {rule.title}" in page
    assert "| CIS Docker Benchmark | 1.8.0, control 5.5 |" in page
    assert "| Section | CIS 5 Container runtime |" in page
    assert f"| Severity | {rule.severity.value} |" in page
    assert rule.rationale in page and rule.remediation in page
    for fixture in sorted((FIXTURES / "CIS-5.5").glob("*.json")):
        assert f"[`{fixture.name}`](../../tests/rules/CIS-5.5/{fixture.name})" in page
    index = (tmp_path / "README.md").read_text()
    assert f"{len(all_rules())} rules." in index
    assert "| [CIS-5.5](CIS-5.5.md) |" in index


def test_a_page_links_to_where_the_rule_is_declared(tmp_path: Path) -> None:
    docs.generate(tmp_path, described(), None)
    rule = get_rule("CIS-5.5")
    assert rule is not None
    page = (tmp_path / "CIS-5.5.md").read_text()
    where = "portcullis/checks/cis/s5_runtime/privileges.py"
    assert Path(inspect.getsourcefile(rule.check) or "").as_posix().endswith(where)
    assert f"| Defined in | [`{where}`](../../src/{where}) |" in page
    assert (REPO / "src" / where).is_file()


def test_regeneration_removes_only_its_own_stale_pages(tmp_path: Path) -> None:
    (tmp_path / "CIS-9.9.md").write_text(docs.GENERATED_MARKER + "\n# a rule that was removed\n")
    (tmp_path / "notes.md").write_text("# written by a person\n")
    docs.generate(tmp_path, described(), None)
    assert not (tmp_path / "CIS-9.9.md").exists()
    assert (tmp_path / "notes.md").read_text() == "# written by a person\n"
    assert "## Examples" not in (tmp_path / "CIS-5.5.md").read_text()


def test_the_module_runs_as_documented(tmp_path: Path) -> None:
    assert docs_command.main([str(tmp_path / "out"), "--fixtures", str(FIXTURES)]) == 0
    assert (tmp_path / "out" / "README.md").is_file()

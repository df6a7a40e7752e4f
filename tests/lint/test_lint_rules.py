"""Every lint rule over real Dockerfiles and compose files (checkov style).

Layout: tests/lint/<RULE-ID>/<status folder>/<case>.Dockerfile or <case>.yaml, where the folder is
`success` (one pass finding), `failure` (fail findings exactly at the lines listed in the file's first
line, `# expect: 3, 7`, or `bases/x.yaml:4` for a line in a file the case includes or extends) or `manual`.
Files in sub-folders are such bases, not cases. Each case runs that one rule only.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from portcullis.checks.registry import all_rules, get_rule
from portcullis.checks.runner import evaluate_on
from portcullis.collect.compose import load_compose
from portcullis.collect.dockerfile import load_dockerfile
from portcullis.model.findings import Finding, Status, Target, TargetKind

HERE = Path(__file__).parent
FOLDER_STATUS = {"success": Status.PASS, "failure": Status.FAIL, "manual": Status.MANUAL}
CASES = sorted(p for p in HERE.glob("DKR-*/*/*") if p.is_file())


def run_case(path: Path) -> list[Finding]:
    rule = get_rule(path.parts[-3])
    assert rule is not None, f"no rule {path.parts[-3]}"
    if path.suffix in (".yaml", ".yml"):
        subject = load_compose([path], environ={})
        kind = TargetKind.COMPOSE
    else:
        subject = load_dockerfile(path)
        kind = TargetKind.DOCKERFILE
    assert rule.scope is kind
    return evaluate_on(rule, subject, Target(kind=kind, name=str(path)))


def expected_places(path: Path) -> list[tuple[str, int]]:
    match = re.match(r"# expect: ([\w./:, -]+)\n", path.read_text())
    assert match, f"{path}: a failure case starts with `# expect: <lines>`"
    places = []
    for item in match.group(1).split(","):
        file, _, line = item.strip().rpartition(":")
        places.append((str(path.parent / file) if file else str(path), int(line)))
    return sorted(places)


@pytest.mark.parametrize("path", CASES, ids=[str(p.relative_to(HERE)) for p in CASES])
def test_case(path: Path) -> None:
    status = FOLDER_STATUS[path.parent.name]
    findings = run_case(path)
    assert findings, "the rule produced no finding"
    assert {f.status for f in findings} == {status}, [(f.status, f.message) for f in findings]
    if status is Status.PASS:
        assert len(findings) == 1
    if status is Status.FAIL:
        assert sorted((f.location.path, f.location.line or 0) for f in findings if f.location) == expected_places(path)
        assert all(f.location for f in findings)
        assert all(f.remediation for f in findings)


def test_every_lint_rule_has_cases_for_each_declared_status() -> None:
    lint_rules = [r for r in all_rules() if r.scope in (TargetKind.DOCKERFILE, TargetKind.COMPOSE)]
    assert len(lint_rules) == 29
    missing = []
    for rule in lint_rules:
        for status in rule.statuses:
            folder = next(name for name, s in FOLDER_STATUS.items() if s is status)
            if not list((HERE / rule.id / folder).glob("*")):
                missing.append(f"{rule.id}/{folder}")
    assert not missing


def test_lint_rules_do_not_run_in_the_audit() -> None:
    from portcullis.checks.registry import select_rules

    audited = {r.id for r in select_rules(all_rules(), command="audit")}
    assert not any(rule_id.startswith(("DKR-DF-", "DKR-CMP-")) for rule_id in audited)

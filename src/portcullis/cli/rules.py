"""`portcullis rules [ID]`: list the rules, or explain one (generated from its declaration)."""

from __future__ import annotations

from typing import Annotated

import typer

from portcullis.checks.registry import Rule, UnknownSelector, all_rules, get_rule, select_rules
from portcullis.cli.common import die


def explain(rule: Rule) -> str:
    lines = [f"{rule.id}: {rule.title}", ""]
    if rule.cis:
        lines.append(f"CIS Docker Benchmark {rule.cis.version}, control {rule.cis.control}, level {rule.cis.level}")
    lines += [
        f"Severity: {rule.severity.value}    Scope: {rule.scope.value}",
        f"Statuses it can return: {', '.join(s.value for s in rule.statuses)}",
        "",
        "Why it matters:",
        rule.rationale,
        "",
        "How to fix it:",
        rule.remediation,
    ]
    if rule.impact:
        lines += ["", "Impact of the fix:", rule.impact]
    if rule.references:
        lines += ["", "References:", *(f"  {ref}" for ref in rule.references)]
    lines += ["", f"Defined in: {rule.defined_at.path}:{rule.defined_at.line}"]
    return "\n".join(lines) + "\n"


def rules(
    rule_id: Annotated[str | None, typer.Argument(help="a rule id (CIS-5.5) or prefix (CIS-5) to explain")] = None,
) -> None:
    """List every rule, or explain one: `portcullis rules`, `portcullis rules CIS-5.5`."""
    catalogue = all_rules()
    if rule_id is None:
        for item in catalogue:
            level = f"L{item.cis.level}" if item.cis else "  "
            typer.echo(f"{item.id:<14} {level} {item.severity.value:<8} {item.scope.value:<9} {item.title}")
        return
    exact = get_rule(rule_id)
    if exact is not None:
        typer.echo(explain(exact), nl=False)
        return
    try:
        matching = select_rules(catalogue, [rule_id])
    except UnknownSelector:
        die(f"no rule has the id or prefix {rule_id!r}; `portcullis rules` lists them")
    typer.echo("\n".join(explain(item) for item in matching), nl=False)

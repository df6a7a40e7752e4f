"""`portcullis rules [ID]`: list the rules, or explain one (generated from its declaration)."""

from __future__ import annotations

from typing import Annotated

import typer

from portcullis.checks.registry import Rule, UnknownSelector, all_rules, get_rule, select_rules
from portcullis.cli.common import die
from portcullis.model.vuln import VULN_RULE_ID, VULN_UNDECIDED_RULE_ID
from portcullis.pipelines.audit import UNREACHABLE_RULE
from portcullis.pipelines.image import UNREADABLE_RULE

# Not a declared rule (its findings come from the advisory database, one per advisory and package, not from a
# check over facts), so its page is written here; docs/environment.md and the README point to it.
VULNERABILITIES = f"""{VULN_RULE_ID}: No known vulnerability in an installed package

Findings of `portcullis image` (and the vulnerabilities of `portcullis sbom -f cyclonedx`): every installed
package (Debian, Ubuntu and Alpine packages, rpm, PyPI, npm, Go, Maven, RubyGems, crates) matched against
the advisory database that `portcullis db update` downloads (Debian security tracker, Alpine secdb, OSV).
One finding per advisory and package; the advisory id (CVE-…, GHSA-…) is in the title, in
`evidence.advisory_id` and in the `vulnerability` object of the JSON report.

Statuses it can return:
  fail    the installed version is affected (fixed in a later version, no fix yet, or the vendor won't fix)
  manual  the vendor has not determined whether this release is affected
  error   rule {VULN_UNDECIDED_RULE_ID}: the package could not be matched (a version that does not parse,
          an unknown release); it is listed, not guessed

Severity, in this order:
  1. the vendor's word for this release (Debian urgency, Ubuntu/GHSA/Red Hat severity);
  2. else the highest CVSS base score published with the advisory (v2, v3.x or v4.0):
     9.0+ critical, 7.0+ high, 4.0+ medium, above 0 low;
  3. else medium, marked `severity_source: assumed`, so an unrated advisory is not below a --fail-on gate.
  `vulnerability.severity_source` says which (vendor, cvss, assumed); every CVSS vector and score is kept.

Narrowing the question (the findings are dropped):
  --only-fixed / --ignore-unfixed   only vulnerabilities with a fixed version
  --severity HIGH,CRITICAL          only these severities (reported and gated)

Accepting a finding (kept, marked suppressed, not gated):
  --vuln-ignore FILE   YAML: ignore: [{{id: CVE-2023-38545, reason: "not reachable", expires: 2026-12-31,
                       package: curl}}]; the id matches an advisory id or alias; a reason is required
  --vex FILE           OpenVEX (not_affected, fixed) or CycloneDX VEX (not_affected, false_positive,
                       resolved) statements suppress the advisory for the products they name
  .portcullisignore.yaml   an entry with id {VULN_RULE_ID} accepts every vulnerability of its target (a
                       rule id, not an advisory id: use --vuln-ignore for one CVE); see docs/ignore-file.md

How to fix it:
Upgrade the package (or the base image) to the fixed version; rebuild on a maintained base image when the
release has no fix. `portcullis db status` shows how old the database is.

References:
  docs/environment.md (PORTCULLIS_DB, PORTCULLIS_DOWNLOAD_TIMEOUT), docs/json-report.md
"""

# Findings a pipeline writes when it could not look at all (status error: a --fail-on gate fails on them)
ENGINE_UNREACHABLE = f"""{UNREACHABLE_RULE}: The engine answers the audit

Written by `portcullis audit` (and the agent) for an engine that could not be audited: the daemon did not
answer, refused the connection or its TLS handshake, or timed out. One finding per engine (its address is the
target); the other engines of a multi-engine audit are still audited.

Status: error, severity high. Nothing about that engine was judged, so a --fail-on gate cannot be trusted and
the exit code is 1 (a tool error), whatever the other engines found. Auditing a single engine that does not
answer is one error line and exit code 1, with no report.

How to fix it:
Start the engine, or correct its address (-H, DOCKER_HOST, the engines file) and its TLS material
(--tlsverify, --tlscacert, --tlscert, --tlskey). `docker -H ADDRESS version` shows what the daemon says.
"""
IMAGE_UNREADABLE = f"""{UNREADABLE_RULE}: The image can be read

Written by `portcullis image` for an image it could not read when scanning several (`image REF REF…`,
`image --all`): a reference that names no image, a registry or engine that refused it, a malformed archive,
or an image over the limits. One finding per image (its reference is the target, the reason the message);
the other images are still scanned. A single unreadable image is a tool error instead (exit 1).

Status: error, severity high. An image that was not read was not judged, so a --fail-on gate cannot be trusted
and the exit code is 1 (a tool error).

How to fix it:
Check the reference, the engine or registry it names and its credentials, and the limits (--max-bytes,
--max-files) when the message says the image is over them.
"""
# Not declared rules: their findings come from a pipeline (or the advisory database), not a check over facts
OUTSIDE_CATALOGUE = {
    VULN_RULE_ID: VULNERABILITIES,
    VULN_UNDECIDED_RULE_ID: VULNERABILITIES,
    UNREACHABLE_RULE: ENGINE_UNREACHABLE,
    UNREADABLE_RULE: IMAGE_UNREADABLE,
}


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
    """List every rule, or explain one: `portcullis rules`, `portcullis rules CIS-5.5`, `portcullis rules DKR-VULN`."""
    catalogue = all_rules()
    if rule_id is None:
        for item in catalogue:
            level = f"L{item.cis.level}" if item.cis else "  "
            typer.echo(f"{item.id:<14} {level} {item.severity.value:<8} {item.scope.value:<9} {item.title}")
        return
    page = OUTSIDE_CATALOGUE.get(rule_id.upper())
    if page is not None:
        typer.echo(page, nl=False)
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

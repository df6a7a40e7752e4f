"""Entry point of `portcullis-inside.pyz`: the standard-library-only self-assessment, run in a container.

Prints the same report shape as `portcullis inside -f json` (or a plain text table) and exits
0 when nothing failed at or above --fail-on, 2 when something did, 1 on a tool error.
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import datetime, timezone
from typing import Any, Dict, List, Optional

from portcullis import __version__
from portcullis.inside.analyse import analyse, reach_lines
from portcullis.inside.signals import collect_from_host, collect_self

SEVERITY_RANK = {"info": 0, "low": 1, "medium": 2, "high": 3, "critical": 4}


def build_report(findings: List[Dict[str, Any]], subject: str) -> Dict[str, Any]:
    by_status: Dict[str, int] = {}
    failed: Dict[str, int] = {}
    for finding in findings:
        by_status[finding["status"]] = by_status.get(finding["status"], 0) + 1
        if finding["status"] == "fail":
            failed[finding["severity"]] = failed.get(finding["severity"], 0) + 1
    target = {"kind": "container", "name": subject, "id": None}
    return {
        "schema_version": "1",
        "command": "inside",
        "tool": {"name": "portcullis", "version": __version__, "benchmark": None},
        "started_at": datetime.now(timezone.utc).isoformat(),
        "subject": subject,
        "findings": [
            dict(f, cis=None, target=target, location=None, suppressed_by=None, engine=None, vulnerability=None)
            for f in findings
        ],
        "summary": {"total": len(findings), "by_status": by_status, "failed_by_severity": failed, "suppressed": 0},
        "problems": [],
        # rule descriptors come from `portcullis rules DKR-IN-…` on the host; the zipapp carries none
        "rules": [],
        "database": None,  # no vulnerability database is involved in an inside assessment
        "isolation": None,  # a noisy-neighbour matrix is attached to host audits only
    }


def render_text(report: Dict[str, Any]) -> str:
    lines = ["Portcullis inside: " + report["subject"], ""]
    for finding in report["findings"]:
        lines.append(
            "%-14s %-10s %-8s %s"
            % (finding["status"].upper(), finding["rule_id"], finding["severity"], finding["message"])
        )
        technique = finding["evidence"].get("technique")
        if finding["status"] == "fail" and technique:
            lines.append("%36s enables: %s" % ("", technique))
    lines += _capability_lines(report)
    counts = ", ".join("%d %s" % (n, s) for s, n in sorted(report["summary"]["by_status"].items()))
    lines += ["", "Summary: %d findings: %s" % (report["summary"]["total"], counts)]
    return "\n".join(lines) + "\n"


def _capability_lines(report: Dict[str, Any]) -> List[str]:
    caps = next((f for f in report["findings"] if f["rule_id"] == "DKR-IN-001"), None)
    return reach_lines(caps["evidence"].get("reach") if caps else None)


def exit_code(report: Dict[str, Any], fail_on: Optional[str]) -> int:
    if not fail_on or fail_on == "none":
        return 0
    threshold = SEVERITY_RANK[fail_on]
    hits = [f for f in report["findings"] if f["status"] == "fail" and SEVERITY_RANK[f["severity"]] >= threshold]
    return 2 if hits else 0


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="portcullis-inside", description="What can this container reach?")
    parser.add_argument("--format", "-f", choices=("text", "json"), default="text")
    parser.add_argument("--pid", type=int, help="judge this host process (run on the host) instead of ourselves")
    parser.add_argument("--no-probes", action="store_true", help="skip the live syscall probes")
    parser.add_argument("--fail-on", choices=(*SEVERITY_RANK, "none"))
    args = parser.parse_args(argv)
    try:
        signals = collect_from_host(args.pid) if args.pid else collect_self(probes=not args.no_probes)
    except OSError as exc:
        sys.stderr.write("portcullis-inside: error: %s\n" % exc)
        return 1
    subject = "pid %d" % args.pid if args.pid else "this container"
    report = build_report(analyse(signals), subject)
    sys.stdout.write(json.dumps(report, indent=2) + "\n" if args.format == "json" else render_text(report))
    return exit_code(report, args.fail_on)


if __name__ == "__main__":
    sys.exit(main())

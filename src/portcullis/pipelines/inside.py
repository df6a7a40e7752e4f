"""The host side of `inside`: collect the signals of this process or of a container, judge them, one Report."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from portcullis import __version__
from portcullis.checks.registry import all_rules, select_rules
from portcullis.checks.runner import evaluate_on
from portcullis.model.findings import Report, Summary, Target, TargetKind, ToolInfo
from portcullis.pipelines.errors import SubjectError, UsageError


@dataclass(frozen=True)
class InsideAssessment:
    """What `inside` found: the signals it collected and the Report judged from them."""

    signals: dict[str, Any]  # the raw signals, as `--signals-out` saves them
    report: Report


def inside_report(signals: dict[str, Any], target: Target) -> Report:
    """Judge signals already collected (here, or saved with --signals-out) about `target`."""
    findings = []
    for item in select_rules(all_rules(), command="inside"):
        findings.extend(evaluate_on(item, signals, target))
    return Report(
        command="inside",
        tool=ToolInfo(version=__version__),
        subject=target.name,
        findings=findings,
        summary=Summary.of(findings),
    )


def assess_inside(container: str | None, host: str | None, probes: bool) -> InsideAssessment:
    """Judge container `container` from the host (through its /proc), or this process when it is None.

    The live syscall probes run only for this process. A container that cannot be found or read raises
    SubjectError; a container behind a remote engine raises UsageError.
    """
    from portcullis.collect import CollectionError
    from portcullis.collect.engine import connect, resolve_container
    from portcullis.inside.signals import collect_from_host, collect_self

    try:
        if container:
            conn = connect(host)
            try:
                container_id, name, pid = resolve_container(conn, container)
            finally:
                conn.close()
            if not conn.local:
                raise UsageError("--container reads the container's /proc: run it on the engine's host")
            signals = collect_from_host(pid)
            target = Target(kind=TargetKind.CONTAINER, name=name, id=container_id)
        else:
            signals = collect_self(probes=probes)
            target = Target(kind=TargetKind.CONTAINER, name="this container")
    except CollectionError as exc:
        raise SubjectError(str(exc)) from exc
    except OSError as exc:
        raise SubjectError(f"cannot read the process's /proc: {exc}") from exc
    return InsideAssessment(signals=signals, report=inside_report(signals, target))

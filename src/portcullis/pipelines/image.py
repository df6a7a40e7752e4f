"""The image flow: read an image from any source once, judge it with the image rules, match its packages."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

from portcullis import CIS_BENCHMARK_VERSION, __version__
from portcullis.checks.registry import IMAGE_RULE_MODULES, Rule, UnknownSelector, all_rules, select_rules
from portcullis.checks.runner import run_image_rules
from portcullis.model.facts import ImageFacts
from portcullis.model.findings import CollectionProblem, DatabaseInfo, Report, Summary, ToolInfo
from portcullis.pipelines.errors import SubjectError, UsageError
from portcullis.pipelines.vulnerabilities import DatabaseCheck, VulnOptions, check_database, vulnerability_findings


@dataclass(frozen=True)
class ImageSource:
    """Where an image is and how to read it: `reference` as `portcullis image` takes it, plus its options."""

    reference: str
    platform: str | None = None
    insecure_registries: Sequence[str] = ()
    credentials: tuple[str, str] | None = field(default=None, repr=False)  # registry user and password
    engine_host: str | None = None
    max_bytes: int | None = None
    max_files: int | None = None


def _silent(message: str) -> None:
    """The default progress sink: callers that show no progress (tests, a service) pass nothing."""


def read_image(source: ImageSource, log: Callable[[str], None] = _silent) -> ImageFacts:
    """Read the image once, layer by layer; a source that cannot be read raises SubjectError."""
    from dataclasses import replace

    from portcullis.collect import CollectionError
    from portcullis.collect.image import Credentials, ImageOptions, Limits, Platform, analyse_image

    try:
        limits = Limits()
        if source.max_bytes is not None:
            limits = replace(limits, max_total_bytes=source.max_bytes)
        if source.max_files is not None:
            limits = replace(limits, max_entries=source.max_files)
        options = ImageOptions(
            platform=Platform.parse(source.platform) if source.platform else None,
            insecure_registries=list(source.insecure_registries),
            credentials=Credentials(*source.credentials) if source.credentials else None,
            engine_host=source.engine_host,
            limits=limits,
        )
        facts = analyse_image(source.reference, options)
    except CollectionError as exc:  # ImageError included
        raise SubjectError(str(exc)) from exc
    content = facts.content
    if content is not None:
        log(
            f"read {source.reference}: {len(content.layers)} layers, {content.file_count} paths, "
            f"{len(content.packages)} packages, {facts.size} bytes"
        )
    return facts


def image_rules(select: Sequence[str], skip: Sequence[str]) -> list[Rule]:
    """The image rules (CIS section 4, DKR-IMG) narrowed by `select` and `skip`; a selector matching none of them
    raises UsageError."""
    try:
        return select_rules(all_rules(IMAGE_RULE_MODULES), select, skip, command="image")
    except UnknownSelector as exc:
        raise UsageError(str(exc)) from exc


def judge_image(
    reference: str,
    image: ImageFacts,
    select: Sequence[str],
    skip: Sequence[str],
    vulns: VulnOptions | None,
    checked: DatabaseCheck | None = None,
) -> Report:
    """The image rules and, unless `vulns` is None or disabled, its vulnerabilities (against the database
    `checked` already, when given)."""
    collected_at = datetime.now(UTC).isoformat(timespec="seconds")
    findings = run_image_rules(image_rules(select, skip), image, collected_at)
    problems: list[CollectionProblem] = []
    database: DatabaseInfo | None = None
    if vulns is not None and vulns.enabled:
        result = vulnerability_findings(image, vulns, checked)
        findings += result.findings
        problems, database = result.problems, result.database
    return Report(
        command="image",
        tool=ToolInfo(version=__version__, benchmark=f"CIS Docker Benchmark {CIS_BENCHMARK_VERSION}"),
        subject=reference,
        findings=findings,
        summary=Summary.of(findings),
        problems=problems,
        database=database,
    )


def image_report(
    source: ImageSource,
    select: Sequence[str] = (),
    skip: Sequence[str] = (),
    vulns: VulnOptions | None = None,
    log: Callable[[str], None] = _silent,
) -> Report:
    """The whole `portcullis image` flow; `log` hears one progress line once the image is read.

    Selectors and the vulnerability database are checked first: a run that cannot judge fails before the read."""
    image_rules(select, skip)
    checked = check_database(vulns) if vulns is not None and vulns.enabled else None
    image = read_image(source, log)
    return judge_image(source.reference, image, select, skip, vulns, checked)

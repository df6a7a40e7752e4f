"""One round of the agent: audit the engine and read every image on it, into the push bodies the service takes.

The audit report's subject is the engine's name (the daemon's own, the node's host name, unless given), and every
finding names that engine, so the fleet keeps engines apart even when several agents push under one name. The images
are read in one pass (one engine export, each shared layer once, the layer cache) and pushed as one report per
image, whose subject is the image: the service keeps a history per image.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from portcullis.model.facts import ImageFacts
from portcullis.model.findings import Report, Summary
from portcullis.model.fleet import ImageInventory
from portcullis.pipelines.audit import audit_report, gather_facts
from portcullis.pipelines.cache import DEFAULT_CACHE_MAX_BYTES
from portcullis.pipelines.errors import PipelineError
from portcullis.pipelines.exposure import ExposureOptions
from portcullis.pipelines.image import ImageSource, engine_image_names, images_report
from portcullis.pipelines.rematch import deployed_containers, image_inventory
from portcullis.pipelines.trust import TrustPolicy, attach_running_signatures
from portcullis.pipelines.vulnerabilities import VulnOptions


@dataclass(frozen=True)
class RoundOptions:
    agent: str  # the name the agent's token was issued to
    host: str | None = None  # the engine; None: found as the docker CLI finds it
    engine_name: str | None = None  # None: the daemon's own name
    images: bool = True
    vulns: bool = True
    db: Path | None = None
    cache_dir: Path | None = None
    trust: TrustPolicy | None = None  # cosign keys per repository: CIS-4.12 judges the running containers' images
    cache_max_bytes: int = DEFAULT_CACHE_MAX_BYTES  # the layer cache is trimmed to this after each round; 0: no cap


@dataclass(frozen=True)
class Round:
    engine: str
    bodies: list[dict[str, Any]]  # {report_id, agent, report, containers | inventories}, the audit first
    problems: list[str]  # what went wrong without stopping the round (the images could not be listed)


def _silent(message: str) -> None:
    """No progress lines: the agent logs its own."""


def _on_engine(report: Report, engine: str, subject: str) -> Report:
    findings = [finding.model_copy(update={"engine": engine}) for finding in report.findings]
    return report.model_copy(update={"findings": findings, "subject": subject})


def split_by_image(combined: Report, references: list[str]) -> list[Report]:
    """One report per image out of `images_report`'s one (whose findings name their image, problems prefixed)."""
    parts = []
    for reference in references:
        findings = [finding for finding in combined.findings if finding.target.name == reference]
        prefix = f"{reference}: "
        problems = [
            problem.model_copy(update={"fact": problem.fact.removeprefix(prefix)})
            for problem in combined.problems
            if problem.fact.startswith(prefix)
        ]
        parts.append(
            combined.model_copy(
                update={
                    "subject": reference,
                    "findings": findings,
                    "summary": Summary.of(findings),
                    "problems": problems,
                }
            )
        )
    return parts


def run_round(options: RoundOptions, log: Callable[[str], None] = _silent) -> Round:
    """Audit the engine, then its images. An engine that cannot be reached raises PipelineError (no report: the
    round is tried again); images that cannot be listed leave the audit alone, with the reason in `problems`."""
    facts = gather_facts(options.host, None, log)
    if options.trust is not None:
        attach_running_signatures(facts, options.trust)
    engine = options.engine_name or facts.engine.info.name or facts.engine.endpoint
    exposure = ExposureOptions(enabled=options.vulns, db_path=options.db)  # the engine's binaries and kernel too
    reports = [_on_engine(audit_report(facts, [], [], None, exposure=exposure), engine, subject=engine)]
    # Beside the reports, what the service re-matches when its advisories change: which images the engine runs
    # (with the audit) and each image's packages (with its own report).
    extras: list[dict[str, Any]] = [{"containers": [c.model_dump(mode="json") for c in deployed_containers(facts)]}]
    problems: list[str] = []
    if options.images:
        inventories: dict[str, ImageInventory] = {}

        def keep(reference: str, image: ImageFacts) -> None:
            found = image_inventory(reference, image)
            if found is not None:
                inventories[reference] = found

        try:
            names = engine_image_names(options.host)
            if names:
                source = ImageSource(
                    "", engine_host=options.host, cache_dir=options.cache_dir, cache_max_bytes=options.cache_max_bytes
                )
                vulns = VulnOptions(enabled=options.vulns, db_path=options.db)
                combined = images_report(source, names, f"images on {engine}", vulns=vulns, log=log, each=keep)
                for part in split_by_image(combined, names):
                    reports.append(_on_engine(part, engine, part.subject))
                    kept = inventories.get(part.subject)
                    extras.append({"inventories": [kept.model_dump(mode="json")] if kept is not None else []})
        except PipelineError as exc:
            problems.append(f"the images of {engine} were not read: {exc}")
    round_id = f"{datetime.now(UTC):%Y%m%dT%H%M%SZ}-{secrets.token_hex(5)}"
    bodies = [
        {
            "report_id": f"{round_id}-{index:04d}",
            "agent": options.agent,
            "report": report.model_dump(mode="json"),
            **extra,
        }
        for index, (report, extra) in enumerate(zip(reports, extras, strict=True))
    ]
    return Round(engine, bodies, problems)

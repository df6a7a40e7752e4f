"""Our own image hardening rules (DKR-IMG-0NN). Each failure names the offending paths and their layers.

They judge `ImageFacts.content`, filled by the layer reader (`portcullis image`); when an image's content
was not read (an audit lists engine images without reading their layers) the content rules skip.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

from portcullis.checks.registry import CheckResult, failed, not_applicable, passed, rule, skipped
from portcullis.data.eol import eol_status, table_for
from portcullis.model.facts import Facts, ImageContentFacts, ImageFacts, PathEvidence, WastedPath
from portcullis.model.findings import Severity, Status, TargetKind
from portcullis.model.layers import LayerRef
from portcullis.model.licences import UNKNOWN, denied
from portcullis.model.redaction import redact_line

CONTENT_STATUSES = (Status.PASS, Status.FAIL, Status.SKIP)
NOT_READ = "the image's layers were not read (run `portcullis image` on it)"
BASE_NAME_LABEL = "org.opencontainers.image.base.name"
BASE_DIGEST_LABEL = "org.opencontainers.image.base.digest"
# A download piped into a shell: curl/wget … | [sudo] sh|bash|…, or sh -c "$(curl …)".
PIPE_TO_SHELL = re.compile(
    r"\b(?:curl|wget)\b[^|;&]*\|\s*(?:sudo\s+(?:-\S+\s+)*)?(?:/usr)?(?:/bin/)?(?:ba|da|z|k|a)?sh\b"
    r"|\b(?:ba|da|z|k)?sh\s+-c\s+[\"']?\$\((?:curl|wget)\b"
)


def path_evidence(items: list[PathEvidence]) -> list[dict[str, Any]]:
    return [item.model_dump(exclude_none=True, exclude_defaults=False) for item in items]


def _describe(items: list[PathEvidence], limit: int = 3) -> str:
    shown = ", ".join(f"{e.path} (layer {e.layer.index})" for e in items[:limit])
    return shown + (f" and {len(items) - limit} more" if len(items) > limit else "")


def unread_paths(content: ImageContentFacts) -> CheckResult:
    """Why a content rule with nothing found cannot pass: what it would have looked at could not be read."""
    unread = content.unread
    return skipped(f"{len(unread)} path(s) could not be read: {_describe(unread)}", unread=path_evidence(unread))


def _content_rule(content: ImageContentFacts | None, items: list[PathEvidence], what: str, absent: str) -> CheckResult:
    if content is None:
        return skipped(NOT_READ)
    if items:
        return failed(f"{len(items)} {what}: {_describe(items)}", paths=path_evidence(items))
    if content.unread:
        return unread_paths(content)
    return passed(absent, paths=[])


@rule(
    id="DKR-IMG-001",
    title="No secret is hidden in a lower layer",
    severity=Severity.HIGH,
    scope=TargetKind.IMAGE,
    statuses=CONTENT_STATUSES,
    commands=("image",),  # needs the layers read, which the engine audit does not do
    rationale="""
Deleting a file in a later layer only hides it: the layer that added it is still part of the image and
anyone who can pull the image can extract the key or credential from it.
""",
    remediation="""
Rotate the exposed secret. Rebuild so the secret never enters a layer: use build secrets or a
multi-stage build that copies only the artefacts, not the credentials, into the final stage.
""",
    references=("https://docs.docker.com/build/building/secrets/",),
)
def no_deleted_secrets(image: ImageFacts, facts: Facts) -> CheckResult:
    content = image.content
    hidden = [s for s in content.secrets if s.removed_in is not None] if content else []
    return _content_rule(
        content, hidden, "secret(s) deleted in a later layer but still extractable", "no secret was added then deleted"
    )


@rule(
    id="DKR-IMG-002",
    title="No SSH server or sudo in the image",
    severity=Severity.MEDIUM,
    scope=TargetKind.IMAGE,
    statuses=CONTENT_STATUSES,
    commands=("image",),  # needs the layers read, which the engine audit does not do
    rationale="""
A container should run one process. An SSH server adds a remotely reachable login and keys to manage;
sudo gives any process running as a normal user a path back to root.
""",
    remediation="Remove the openssh-server and sudo packages; use `docker exec` for access and USER for privileges.",
)
def no_sshd_or_sudo(image: ImageFacts, facts: Facts) -> CheckResult:
    content = image.content
    return _content_rule(
        content,
        content.notable_binaries if content else [],
        "remote-login or privilege tool(s) installed",
        "neither an SSH server nor sudo is installed",
    )


@rule(
    id="DKR-IMG-003",
    title="No world-writable directory without the sticky bit",
    severity=Severity.MEDIUM,
    scope=TargetKind.IMAGE,
    statuses=CONTENT_STATUSES,
    commands=("image",),  # needs the layers read, which the engine audit does not do
    rationale="""
Any user in the container can create, replace or delete files in a world-writable directory without the
sticky bit, including files other users' processes trust.
""",
    remediation="chmod o-w the directory, or make it 1777 (sticky) when it really is a shared scratch area.",
)
def no_world_writable_dirs(image: ImageFacts, facts: Facts) -> CheckResult:
    content = image.content
    return _content_rule(
        content,
        content.world_writable_dirs if content else [],
        "world-writable director(ies) without the sticky bit",
        "every world-writable directory has the sticky bit",
    )


def _unpinned(reference: str, digest_label: str = "") -> str:
    """Why a reference does not pin its content, or '' when it does."""
    if "@sha256:" in reference or digest_label:
        return ""
    tail = reference.rsplit("/", 1)[-1]
    tag = tail.split(":", 1)[1] if ":" in tail else "latest"
    return "the 'latest' tag, no digest" if tag == "latest" else f"tag {tag!r}, no digest"


@rule(
    id="DKR-IMG-004",
    title="The image and its base are pinned by digest, not by 'latest'",
    severity=Severity.LOW,
    scope=TargetKind.IMAGE,
    statuses=(Status.PASS, Status.FAIL, Status.NOT_APPLICABLE),
    rationale="""
A tag is a moving pointer: 'latest' or any tag without a digest can resolve to different content on the
next pull, so a build or a deployment is not reproducible and may silently take in a changed base.
""",
    remediation="""
Reference the base as NAME:TAG@sha256:… in FROM and record it in the org.opencontainers.image.base.name and
.base.digest labels; deploy images by digest.
""",
)
def pinned_by_digest(image: ImageFacts, facts: Facts) -> CheckResult:
    if image.content is not None and image.content.source == "dir":
        return not_applicable("a root directory has no reference or base to pin")
    labels = image.config.labels or {}
    base = labels.get(BASE_NAME_LABEL)
    if base:
        why = _unpinned(base, labels.get(BASE_DIGEST_LABEL, ""))
        if why:
            return failed(f"the base image {base} is referenced by {why}", base=base, source="label")
        return passed(f"the base image {base} is pinned by digest", base=base, source="label")
    if image.repo_digests:
        return passed("the image is known by digest", repo_digests=image.repo_digests, source="repo_digests")
    names = image.repo_tags or ([image.content.reference] if image.content and image.content.reference else [])
    reasons = sorted({_unpinned(name) for name in names} - {""}) or ["no name or digest at all"]
    return failed(
        f"the image has no digest and no recorded base ({'; '.join(reasons)})",
        repo_tags=image.repo_tags,
        repo_digests=[],
        source="repo_tags",
    )


def _layer_of(line: str, content: ImageContentFacts | None) -> LayerRef | None:
    if content is None:
        return None
    masked = redact_line(line)  # the reader masks secrets in the lines layers carry
    return next((layer for layer in content.layers if layer.created_by in (line, masked)), None)


@rule(
    id="DKR-IMG-005",
    title="No download piped into a shell in the build history",
    severity=Severity.MEDIUM,
    scope=TargetKind.IMAGE,
    statuses=CONTENT_STATUSES,
    commands=("image",),  # needs the layers read, which the engine audit does not do
    rationale="""
`curl … | sh` runs whatever the server sends at build time, unverified: a compromised or spoofed download
becomes code in the image, and the build cannot be reproduced.
""",
    remediation="Download to a file, verify its checksum or signature, then run it; or install from a package.",
)
def no_pipe_to_shell(image: ImageFacts, facts: Facts) -> CheckResult:
    if image.history is None:
        return skipped("the image history was not collected")
    hits: list[dict[str, Any]] = []
    places: list[str] = []
    for entry in reversed(image.history):  # oldest first, like the layers
        if PIPE_TO_SHELL.search(entry.created_by):
            layer = _layer_of(entry.created_by, image.content)
            hits.append({"created_by": redact_line(entry.created_by), "layer": layer.model_dump() if layer else None})
            places.append(f"layer {layer.index}" if layer else "layer unknown")
    if hits:
        where = ", ".join(places)
        return failed(f"{len(hits)} build step(s) pipe a download into a shell ({where})", history=hits)
    return passed("no build step pipes a download into a shell", history=[])


@rule(
    id="DKR-IMG-006",
    title="No package-manager cache left in the image",
    severity=Severity.LOW,
    scope=TargetKind.IMAGE,
    statuses=CONTENT_STATUSES,
    commands=("image",),  # needs the layers read, which the engine audit does not do
    rationale="""
Downloaded packages and package indexes left behind enlarge the image and its attack surface, and stale
indexes make a later install pull outdated packages.
""",
    remediation="""
Clean in the same RUN step that installs: `rm -rf /var/lib/apt/lists/*`, `apk add --no-cache`,
`pip install --no-cache-dir`, `npm cache clean --force`.
""",
)
def no_package_caches(image: ImageFacts, facts: Facts) -> CheckResult:
    content = image.content
    return _content_rule(
        content, content.package_caches if content else [], "package-manager cache(s)", "no package-manager cache"
    )


def _port_number(spec: str) -> int | None:
    head = spec.split("/", 1)[0]
    return int(head) if head.isdigit() else None


@rule(
    id="DKR-IMG-007",
    title="No privileged port (below 1024) exposed",
    severity=Severity.LOW,
    scope=TargetKind.IMAGE,
    rationale="""
Listening below 1024 needs root or CAP_NET_BIND_SERVICE inside the container; an image that exposes such a
port pushes operators towards running it with privileges. Port 22 usually means an SSH server.
""",
    remediation="Listen on an unprivileged port (e.g. 8080) and map it with -p 80:8080 when needed.",
)
def no_privileged_ports(image: ImageFacts, facts: Facts) -> CheckResult:
    exposed = sorted((image.config.exposed_ports or {}).keys())
    low = [p for p in exposed if (number := _port_number(p)) is not None and number < 1024]
    if low:
        return failed(f"privileged port(s) exposed: {', '.join(low)}", ports=low, exposed=exposed)
    return passed("no privileged port is exposed", ports=[], exposed=exposed)


@rule(
    id="DKR-IMG-008",
    title="No unsafe archive entries in the image layers",
    severity=Severity.MEDIUM,
    scope=TargetKind.IMAGE,
    statuses=CONTENT_STATUSES,
    commands=("image",),  # needs the layers read, which the engine audit does not do
    rationale="""
Layer members with absolute or '..' names, links that leave the image, device nodes or absurd sizes do not
belong in an image: they are how crafted archives attack the tools and hosts that unpack them.
The reader skipped them; the image should be rebuilt from trusted sources.
""",
    remediation="Rebuild the image with a standard builder from trusted sources; do not run one that carries these.",
)
def no_unsafe_entries(image: ImageFacts, facts: Facts) -> CheckResult:
    content = image.content
    return _content_rule(
        content,
        content.unsafe_entries if content else [],
        "unsafe archive entr(ies) skipped",
        "every layer member was safe to apply",
    )


@rule(
    id="DKR-IMG-009",
    title="The image's OS release still gets security updates",
    severity=Severity.HIGH,
    scope=TargetKind.IMAGE,
    statuses=CONTENT_STATUSES,
    commands=("image",),  # needs the layers read, which the engine audit does not do
    rationale="""
Once a distribution release reaches its end of life, new vulnerabilities in its packages are no longer fixed:
scanners then report fewer problems, not because there are fewer but because nobody publishes them.
""",
    remediation="Rebuild the image on a supported release of its distribution (e.g. a current Debian stable base).",
)
def supported_os_release(image: ImageFacts, facts: Facts) -> CheckResult:
    content = image.content
    if content is None:
        return skipped(NOT_READ)
    if content.os_release is None:
        return skipped("the image has no /etc/os-release, so its distribution release is unknown")
    if not facts.collected_at:
        return skipped("the facts carry no collection date to judge support against")
    today = datetime.fromisoformat(facts.collected_at).date()
    table, which = table_for(content.os_release.id, facts.eol_tables)
    is_eol, end, note = eol_status(content.os_release, today, table)
    note = f"{note} [{which}]"  # the reader sees which table judged: the built-in one or a refreshed one, and its date
    evidence: dict[str, Any] = {
        "os_release": content.os_release.model_dump(),
        "support_ends": end.isoformat() if end else None,
        "eol_table": which,
    }
    if is_eol is None:
        return skipped(note, **evidence)
    if is_eol:
        return failed(note, **evidence)
    return passed(note, **evidence)


def _size(count: int) -> str:
    """Bytes as people read them: 1.4 MB, 812 kB, 96 B (decimal units, as dive prints them)."""
    for unit, scale in (("GB", 10**9), ("MB", 10**6), ("kB", 10**3)):
        if count >= scale:
            return f"{count / scale:.1f} {unit}"
    return f"{count} B"


def _offender(path: WastedPath) -> str:
    layers = ", ".join(f"{c.layer.index}{' deleted' if c.deleted else ''}" for c in path.copies)
    return f"{path.path} {_size(path.bytes)} (layers {layers})"


@rule(
    id="DKR-IMG-010",
    title="The layers waste little space on files later layers overwrite or delete",
    severity=Severity.LOW,
    scope=TargetKind.IMAGE,
    statuses=CONTENT_STATUSES,
    commands=("image",),  # needs the layers read, which the engine audit does not do
    rationale="""
A file overwritten or deleted by a later layer still ships in the layer that wrote it: every pull and every node
stores it, and a deleted file can still be extracted. Measured as dive measures it: every copy of a path that more
than one layer writes or deletes is wasted, and the efficiency is the bytes of each path's smallest copy over the
bytes of all copies. By default a failure is an efficiency under 90 % (dive's CI default); --min-efficiency and
--max-wasted (bytes) change the thresholds.
""",
    remediation="""
Create, use and delete temporary files in the same RUN step; clean package caches in the step that installs;
copy only build results into the final stage of a multi-stage build; set permissions with COPY --chmod or in
the step that writes the file instead of a later chmod/chown, which copies the whole file again.
""",
    references=("https://github.com/wagoodman/dive#ci-integration",),
)
def little_wasted_space(image: ImageFacts, facts: Facts) -> CheckResult:
    content = image.content
    if content is None:
        return skipped(NOT_READ)
    measure = content.efficiency
    if measure is None:
        return skipped("the layers' wasted space was not measured")
    limits = measure.limits
    evidence = measure.model_dump(mode="json")
    summary = (
        f"efficiency {measure.efficiency:.1%}, {_size(measure.wasted_bytes)} wasted in {measure.wasted_paths} path(s)"
    )
    over: list[str] = []
    if measure.efficiency < limits.min_efficiency:
        over.append(f"under {limits.min_efficiency:.0%}")
    if limits.max_wasted_bytes is not None and measure.wasted_bytes > limits.max_wasted_bytes:
        over.append(f"over {_size(limits.max_wasted_bytes)}")
    caches = f"; package caches hold {_size(measure.cache_bytes)} more (DKR-IMG-006)" if measure.cache_bytes else ""
    if over:
        worst = "; ".join(_offender(p) for p in measure.top[:3])
        return failed(f"{summary} ({', '.join(over)}); largest: {worst}{caches}", **evidence)
    return passed(summary + caches, **evidence)


@rule(
    id="DKR-IMG-011",
    title="No package is under a denied licence",
    severity=Severity.MEDIUM,
    scope=TargetKind.IMAGE,
    statuses=(*CONTENT_STATUSES, Status.NOT_APPLICABLE),
    commands=("image",),  # needs the layers read, which the engine audit does not do
    rationale="""
Shipping an image distributes every package in it under that package's licence; an organisation that may not
distribute software under some licences (strong copyleft such as AGPL in a product, or non-free terms) needs to
know which packages carry them. The declared licence comes from the package's own metadata: dpkg copyright files,
Python metadata, npm package.json, apk L:, rpm License, a jar's pom.xml or Bundle-License, a gemspec's licenses; Go
and Rust binaries record none (unknown). A package offering a choice (`MIT OR GPL-3.0-only`) fails only when every
choice includes a denied licence. Packages whose licence is unknown never fail; the evidence counts
them. Not applicable until --license-deny (or `license-deny` in the config file) names the denied licences.
""",
    remediation="""
Remove the package, replace it with one under an acceptable licence, or, when a choice of licences is offered,
record which one you take; a legal review may decide the use is acceptable, in which case suppress the finding.
""",
    references=("https://spdx.github.io/spdx-spec/v2.3/SPDX-license-expressions/",),
)
def no_denied_licences(image: ImageFacts, facts: Facts) -> CheckResult:
    content = image.content
    if content is None:
        return skipped(NOT_READ)
    deny = content.license_deny
    if not deny:
        return not_applicable("no licences are denied (--license-deny)")
    unknown = sum(1 for p in content.packages if p.license == UNKNOWN)
    hits = [
        {
            "package": p.name,
            "version": p.version,
            "license": p.license,
            "file": p.location,
            "layer": p.layer.model_dump(mode="json") if p.layer else None,
        }
        for p in content.packages
        if denied(p.license, deny)
    ]
    counted = f"{len(content.packages)} package(s), {unknown} with an unknown licence"
    if hits:
        shown = ", ".join(f"{h['package']} {h['version']} ({h['license']})" for h in hits[:3])
        more = f" and {len(hits) - 3} more" if len(hits) > 3 else ""
        return failed(
            f"{len(hits)} package(s) under a denied licence: {shown}{more}",
            packages=hits,
            denied=deny,
            unknown_licences=unknown,
        )
    return passed(f"no package under {', '.join(deny)} ({counted})", packages=[], denied=deny, unknown_licences=unknown)

"""CIS section 4: container images, judged from what the engine knows (inspect + history).

The same rules serve `portcullis image`, where the layer reader also fills `ImageFacts.content`;
only 4.8 needs that content and skips without it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from portcullis.checks.image_rules import unread_paths
from portcullis.checks.registry import CheckResult, Outcome, failed, manual, passed, rule, skipped
from portcullis.checks.signatures import Verdict, judge_image, judge_lookup
from portcullis.model.facts import Facts, HistoryEntry, ImageFacts
from portcullis.model.findings import Severity, Status, TargetKind
from portcullis.model.redaction import MASK, is_secret_assignment, redact_line, secret_spans

COMMAND_PREVIEW = 240  # history lines can be huge; evidence keeps the start


def names_uid_zero(user: str) -> bool:
    """True when a `user[:group]` value names uid 0: `root`, `0`, `00`, `0:0`, `root:root` (never an empty one)."""
    name = user.split(":", 1)[0].strip()
    return name == "root" or (name.isdigit() and int(name) == 0)


def is_root_user(user: str) -> bool:
    """True when a Docker `User` value runs as uid 0: empty (inherits root) or naming uid 0."""
    return not user.strip() or names_uid_zero(user)


# --- history helpers ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Step:
    """One history entry, numbered from the oldest (0) so the numbers read like Dockerfile order."""

    index: int
    created_by: str
    comment: str

    @property
    def is_metadata(self) -> bool:
        """Classic-builder instructions that only touch the config are marked `#(nop)`."""
        return "#(nop)" in self.created_by

    @property
    def shell_command(self) -> str:
        """The shell text of a RUN step with the builder's prefixes removed; '' for other steps."""
        text = self.created_by.strip()
        if self.is_metadata or not text:
            return ""
        text = text.removesuffix("# buildkit").strip()
        text = text.removeprefix("RUN ").strip()
        # classic builder: `|2 A=1 B=2 /bin/sh -c cmd` when build args were in scope
        marker = re.search(r"/bin/(?:ba)?sh -c ", text)
        return text[marker.end() :] if marker else text

    def preview(self) -> str:
        text = redact_line(self.created_by.strip())
        return text if len(text) <= COMMAND_PREVIEW else text[:COMMAND_PREVIEW] + "…"


def _steps(history: list[HistoryEntry]) -> list[Step]:
    oldest_first = list(reversed(history))
    return [Step(i, h.created_by, h.comment) for i, h in enumerate(oldest_first)]


def _history_missing(image: ImageFacts) -> CheckResult:
    return skipped("the image history was not collected", image=image.display_name)


def _image_summary(image: ImageFacts) -> dict[str, Any]:
    return {
        "image": image.display_name,
        "id": image.id,
        "repo_tags": image.repo_tags,
        "repo_digests": image.repo_digests,
        "created": image.created,
        "size_bytes": image.size,
    }


# --- 4.1 -----------------------------------------------------------------------------------------


@rule(
    id="CIS-4.1",
    cis="CIS-4.1",
    title="Images set a non-root user",
    severity=Severity.MEDIUM,
    scope=TargetKind.IMAGE,
    rationale="""
A container started from an image without a USER runs its main process as uid 0. Any flaw in that
process then hands the attacker root inside the container, one step away from the host kernel.
""",
    remediation="Create an unprivileged account in the Dockerfile and switch to it with `USER name` (or a uid).",
)
def image_user(image: ImageFacts, facts: Facts) -> CheckResult:
    user = image.config.user
    if is_root_user(user):
        shown = user or "(empty: inherits root)"
        return failed(f"the image runs as root (User={shown})", user=user)
    return passed(f"the image runs as {user}", user=user)


# --- 4.2, 4.3, 4.4, 4.12: evidence for a person -------------------------------------------------


@rule(
    id="CIS-4.2",
    cis="CIS-4.2",
    title="Base images come from trusted sources",
    severity=Severity.INFO,
    scope=TargetKind.IMAGE,
    rationale="""
An image is only as trustworthy as where it came from. Whether a registry, publisher or imported
tarball is acceptable is an organisational decision, so the provenance is listed for review.
""",
    remediation="Pull base images only from registries and publishers your organisation approved; pin them by digest.",
    statuses=(Status.MANUAL,),
)
def trusted_base(image: ImageFacts, facts: Facts) -> CheckResult:
    evidence = _image_summary(image)
    if image.history:
        base = _steps(image.history)[0]
        evidence["base_step"] = base.preview()
        evidence["base_comment"] = base.comment
    note = "no registry digest: built or imported locally" if not image.repo_digests else "pulled from a registry"
    return manual(f"confirm the source of {image.display_name} ({note})", **evidence)


INSTALL_COMMAND = re.compile(
    r"\b(?:apt-get|apt|aptitude)\s+(?:\S+\s+)*?install\b|\bapk\s+(?:\S+\s+)*?add\b|"
    r"\b(?:yum|dnf|microdnf)\s+(?:\S+\s+)*?install\b|\bzypper\s+(?:\S+\s+)*?(?:install|in)\b|"
    r"\b(?:pip3?|npm|gem)\s+install\b"
)


@rule(
    id="CIS-4.3",
    cis="CIS-4.3",
    title="Images carry no unneeded packages",
    severity=Severity.INFO,
    scope=TargetKind.IMAGE,
    rationale="""
Every package in an image is code an attacker may use and a vulnerability to patch. Which packages
are needed depends on the application, so the install steps and the size are listed for review.
""",
    remediation="Install only what the application needs; prefer minimal or distroless bases and multi-stage builds.",
    statuses=(Status.MANUAL,),
)
def minimal_packages(image: ImageFacts, facts: Facts) -> CheckResult:
    evidence = _image_summary(image)
    if image.history is not None:
        installs = [
            {"step": s.index, "command": s.preview()}
            for s in _steps(image.history)
            if INSTALL_COMMAND.search(s.shell_command)
        ]
        evidence["history_steps"] = len(image.history)
        evidence["install_steps"] = installs
    size_mb = round(image.size / 1_000_000, 1)
    return manual(f"review the packages of {image.display_name} ({size_mb} MB)", **evidence)


def _age_days(created: str, now: str) -> int | None:
    try:
        made = datetime.fromisoformat(created.replace("Z", "+00:00"))
        at = datetime.fromisoformat(now.replace("Z", "+00:00"))
    except ValueError:
        return None
    if made.tzinfo is None or at.tzinfo is None:
        return None
    return (at - made).days


@rule(
    id="CIS-4.4",
    cis="CIS-4.4",
    title="Images are scanned and rebuilt with security patches",
    severity=Severity.INFO,
    scope=TargetKind.IMAGE,
    rationale="""
Images freeze their packages at build time; fixes published afterwards reach a container only when
the image is rebuilt. The build date is shown so stale images stand out.
""",
    remediation="Scan images regularly (`portcullis image`) and rebuild them from patched bases on a schedule.",
    statuses=(Status.MANUAL,),
)
def scanned_and_rebuilt(image: ImageFacts, facts: Facts) -> CheckResult:
    evidence = _image_summary(image)
    age = _age_days(image.created, facts.collected_at) if image.created and facts.collected_at else None
    evidence["age_days"] = age
    when = (
        f"built {age} days before the audit" if age is not None else f"created {image.created or 'at an unknown date'}"
    )
    return manual(f"confirm {image.display_name} is scanned and rebuilt with patches ({when})", **evidence)


@rule(
    id="CIS-4.12",
    cis="CIS-4.12",
    title="Signatures of artifacts are verified",
    severity=Severity.INFO,
    scope=TargetKind.IMAGE,
    rationale="""
A signature proves who produced an artifact only if someone checks it before use. Under a trust policy
(--trust-policy, --verify-key) the image's cosign signatures are verified against the keys trusted for its
repository: the audit judges the images of running containers, `portcullis image` the image it reads. Without
a policy, whether images and build inputs were verified cannot be seen, so a person confirms it.
""",
    remediation="Sign images with cosign and verify them before deployment (give the audit a trust policy); "
    "check checksums or signatures of everything downloaded during builds.",
    statuses=(Status.PASS, Status.FAIL, Status.MANUAL),
)
def signed_artifacts(image: ImageFacts, facts: Facts) -> CheckResult:
    evidence = _image_summary(image)
    evidence["content_trust_env"] = facts.host.content_trust_env
    if image.signatures is None:
        return manual(f"confirm the signatures of {image.display_name} and its build inputs were verified", **evidence)
    judgement = judge_image(image.signatures)
    evidence |= {"trust_policy": image.signatures.policy, "signature": judgement.evidence()}
    evidence["lookups"] = [judge_lookup(lookup).evidence() for lookup in image.signatures.lookups]
    if image.signatures.containers:
        evidence["containers"] = image.signatures.containers
    if judgement.verdict is Verdict.SIGNED:
        return passed(f"{image.display_name} is signed by a trusted key ({judgement.key})", **evidence)
    # An unverified image under a policy is no longer a matter of record-keeping: it may run anything.
    return Outcome(
        Status.FAIL, f"{image.display_name}: {judgement.verdict}: {judgement.reason}", evidence, severity=Severity.HIGH
    )


# --- 4.5 -----------------------------------------------------------------------------------------


@rule(
    id="CIS-4.5",
    cis="CIS-4.5",
    title="Docker Content Trust is enabled",
    severity=Severity.LOW,
    scope=TargetKind.HOST,
    rationale="""
With DOCKER_CONTENT_TRUST=1 the client refuses to pull, run or build from image tags that carry no
valid signature, so a tampered or substituted image is rejected instead of run. The verdict is the auditing
environment's; dockerd's environment and system-wide shell profiles are shown beside it. Docker Content Trust
(Notary v1) is being retired: under a trust policy the evidence also says which running images carry cosign
signatures by trusted keys (CIS-4.12 judges each).
""",
    remediation="Export DOCKER_CONTENT_TRUST=1 in the environment of everyone and everything that runs docker; "
    "for images signed with cosign, verify them against a trust policy (`portcullis audit --trust-policy`).",
    statuses=(Status.PASS, Status.FAIL, Status.SKIP),
)
def content_trust(facts: Facts) -> CheckResult:
    value = facts.host.content_trust_env
    beside = _other_environments(facts) | _running_signatures(facts)  # reported, not judged here
    if value is None and not facts.engine.local:
        return skipped("the auditing environment was not collected (remote engine)", **beside)
    if value == "1":
        return passed("DOCKER_CONTENT_TRUST=1 in the auditing environment", content_trust_env=value, **beside)
    shown = "is not set" if value is None else f"is {value!r}"
    return failed(f"DOCKER_CONTENT_TRUST {shown} in the auditing environment", content_trust_env=value, **beside)


def _other_environments(facts: Facts) -> dict[str, Any]:
    """Where else DOCKER_CONTENT_TRUST is set: dockerd's environment and the profiles users' shells read."""
    shown: dict[str, Any] = {}
    if facts.host.daemon_content_trust_env is not None:
        shown["daemon_content_trust_env"] = facts.host.daemon_content_trust_env
    if facts.host.profile_content_trust:
        shown["profile_content_trust"] = facts.host.profile_content_trust
    return shown


def _running_signatures(facts: Facts) -> dict[str, Any]:
    """Under a trust policy, what cosign verification found for the images of running containers: Notary v1 is
    retired, so this is the evidence that what runs is signed (CIS-4.12 judges each image)."""
    judged = {image.display_name: judge_image(image.signatures) for image in facts.images if image.signatures}
    if not judged:
        return {}
    return {
        "cosign_signed_images": sorted(name for name, j in judged.items() if j.verdict is Verdict.SIGNED),
        "cosign_unverified_images": sorted(name for name, j in judged.items() if j.verdict is not Verdict.SIGNED),
    }


# --- 4.6 -----------------------------------------------------------------------------------------


@rule(
    id="CIS-4.6",
    cis="CIS-4.6",
    title="Images declare a HEALTHCHECK",
    severity=Severity.LOW,
    scope=TargetKind.IMAGE,
    rationale="""
Without a health check the engine only knows whether the main process exists, not whether it still
works; a hung service keeps receiving traffic and is never restarted or replaced.
""",
    remediation="Add a HEALTHCHECK instruction that probes the service, e.g. `HEALTHCHECK CMD curl -f http://localhost/`.",
)
def image_healthcheck(image: ImageFacts, facts: Facts) -> CheckResult:
    check = image.config.healthcheck
    test = (check or {}).get("Test") or []
    if not test:
        return failed("the image declares no HEALTHCHECK", healthcheck=None)
    if test == ["NONE"]:
        return failed("the image disables the health check (HEALTHCHECK NONE)", healthcheck=test)
    return passed("the image declares a HEALTHCHECK", healthcheck=test)


# --- 4.7 -----------------------------------------------------------------------------------------

INDEX_UPDATE = re.compile(
    r"\b(?:apt-get|apt|aptitude)\s+(?:-\S+\s+)*update\b|\bapk\s+(?:-\S+\s+)*update\b|"
    r"\b(?:yum|dnf|microdnf)\s+(?:-\S+\s+)*(?:makecache|check-update)\b|\bzypper\s+(?:-\S+\s+)*(?:refresh|ref)\b"
)
INDEX_CONSUMER = re.compile(
    INSTALL_COMMAND.pattern + r"|\b(?:apt-get|apt|aptitude)\s+(?:\S+\s+)*?(?:upgrade|dist-upgrade|full-upgrade)\b|"
    r"\bapk\s+(?:\S+\s+)*?upgrade\b|\b(?:yum|dnf|microdnf|zypper)\s+(?:\S+\s+)*?(?:upgrade|update|up|dup)\b"
)


@rule(
    id="CIS-4.7",
    cis="CIS-4.7",
    title="Package-index updates are not alone in a layer",
    severity=Severity.LOW,
    scope=TargetKind.IMAGE,
    rationale="""
A build step that only refreshes the package index is cached. Later rebuilds reuse that old index,
so the install step that follows silently pulls outdated, possibly vulnerable, package versions.
""",
    remediation="Refresh the index and install in the same RUN, e.g. `RUN apt-get update && apt-get install -y pkg`.",
    statuses=(Status.PASS, Status.FAIL, Status.SKIP),
)
def lone_index_update(image: ImageFacts, facts: Facts) -> CheckResult:
    if image.history is None:
        return _history_missing(image)
    lone = [
        {"step": s.index, "command": s.preview()}
        for s in _steps(image.history)
        if INDEX_UPDATE.search(s.shell_command) and not INDEX_CONSUMER.search(s.shell_command)
    ]
    if lone:
        return failed(f"{len(lone)} build step(s) refresh the package index without installing", steps=lone)
    return passed("no build step refreshes the package index on its own", steps=[])


# --- 4.8 -----------------------------------------------------------------------------------------


@rule(
    id="CIS-4.8",
    cis="CIS-4.8",
    title="Unneeded setuid and setgid files are removed",
    severity=Severity.MEDIUM,
    scope=TargetKind.IMAGE,
    rationale="""
A setuid or setgid program runs with its owner's or group's rights whoever starts it; each one is a
ready-made privilege escalation path if it has a flaw. Images rarely need any; each one found is
listed with the layer that added it, so the few that are needed can be kept by an ignore entry.
""",
    remediation="Strip the bits in the Dockerfile, e.g. `RUN find / -xdev -perm /6000 -type f -exec chmod a-s {} +`.",
    statuses=(Status.PASS, Status.FAIL, Status.SKIP),
)
def setuid_files(image: ImageFacts, facts: Facts) -> CheckResult:
    content = image.content
    if content is None:
        return skipped("image content not read; run `portcullis image` to list setuid/setgid files")
    present = [p for p in content.setuid_files if p.removed_in is None]
    files = [
        {
            "path": p.path,
            "mode": None if p.mode is None else format(p.mode, "o"),
            "setuid": p.mode is not None and bool(p.mode & 0o4000),
            "setgid": p.mode is not None and bool(p.mode & 0o2000),
            "layer": p.layer.index,
            "layer_diff_id": p.layer.diff_id,
            "added_by": p.layer.created_by,
        }
        for p in present
    ]
    removed = len(content.setuid_files) - len(present)
    if not files and content.unread:
        return unread_paths(content)
    if not files:
        return passed("the image holds no setuid or setgid files", files=[], removed_later=removed)
    return failed(f"{len(files)} setuid/setgid file(s): remove those not needed", files=files, removed_later=removed)


# --- 4.9 -----------------------------------------------------------------------------------------

ADD_STEP = re.compile(r"(?:#\(nop\)\s+|^)ADD\s+(?P<args>.*)$", re.DOTALL)
ROOTFS_ADD = re.compile(r"^(?:file:\S+ in /|\S+\.tar(?:\.\w+)? /)\s*(?:# buildkit)?$")


@rule(
    id="CIS-4.9",
    cis="CIS-4.9",
    title="COPY is used instead of ADD",
    severity=Severity.LOW,
    scope=TargetKind.IMAGE,
    rationale="""
ADD fetches URLs and unpacks archives on its own, so a build can pull unverified remote content or
extract a hostile archive into the image. COPY only copies local files and does what it says.
""",
    remediation="Replace ADD with COPY; download remote files in a RUN step that verifies a checksum.",
    statuses=(Status.PASS, Status.FAIL, Status.SKIP),
)
def copy_not_add(image: ImageFacts, facts: Facts) -> CheckResult:
    if image.history is None:
        return _history_missing(image)
    offending = []
    base_rootfs = None
    for step in _steps(image.history):
        match = ADD_STEP.search(step.created_by.strip())
        if not match:
            continue
        args = match.group("args").strip()
        # The very first step of a base image unpacks its root filesystem tarball: ADD's intended use.
        if step.index == 0 and ROOTFS_ADD.match(args):
            base_rootfs = step.preview()
            continue
        offending.append({"step": step.index, "instruction": step.preview(), "url": "://" in args})
    if offending:
        return failed(f"{len(offending)} build step(s) use ADD", steps=offending, base_rootfs=base_rootfs)
    return passed("no build step uses ADD", steps=[], base_rootfs=base_rootfs)


# --- 4.10 ----------------------------------------------------------------------------------------


def _redacted(value: str) -> str:
    return f"<redacted, {len(value.strip(chr(34) + chr(39)))} characters>"


@rule(
    id="CIS-4.10",
    cis="CIS-4.10",
    title="No secrets are baked into images",
    severity=Severity.HIGH,
    scope=TargetKind.IMAGE,
    rationale="""
ENV values, build arguments and the command lines of build steps are stored in the image config and
history; anyone who can pull the image can read them with `docker history` or `docker inspect`. Files in
the layers (private keys, cloud credentials, tokens, .env files) are just as readable, even when a later
layer deletes them: the earlier layer still carries them.
""",
    remediation="Pass secrets at run time (Docker secrets, mounted files) or use BuildKit `RUN --mount=type=secret`; "
    "never put them in ENV, ARG or RUN lines, and rotate any secret already published.",
    statuses=(Status.PASS, Status.FAIL, Status.SKIP),
)
def no_baked_secrets(image: ImageFacts, facts: Facts) -> CheckResult:
    hits: list[dict[str, Any]] = []
    for entry in image.config.env or []:
        name, _, value = entry.partition("=")
        if is_secret_assignment(name, value):
            hits.append({"where": "Config.Env", "name": name, "value": _redacted(value)})
    for step in _steps(image.history or []):
        seen: set[str] = set()
        for name, start, end in secret_spans(step.created_by):
            if name not in seen:
                seen.add(name)
                # a variable's length is kept as a hint; a password in a URL or option is not even measured
                value = _redacted(step.created_by[start:end]) if name.isidentifier() else MASK
                hits.append({"where": f"history step {step.index}", "name": name, "value": value})
    for found in image.content.secrets if image.content else []:
        hits.append(
            {
                "where": found.path,
                "name": found.detail,
                "layer": found.layer.model_dump(),
                "removed_in": found.removed_in.model_dump() if found.removed_in else None,
            }
        )
    if hits:
        names = sorted({str(h["name"]) for h in hits})
        return failed(f"secrets are stored in the image: {', '.join(names)}", secrets=hits)
    if image.content is not None and image.content.unread:
        return unread_paths(image.content)
    checked = "config and history" if image.history is not None else "config (history not collected)"
    if image.content is not None:
        checked += " and layer files"
    return passed(f"no secret-looking values in the image {checked}", secrets=[])


# --- 4.11 ----------------------------------------------------------------------------------------

UNVERIFIED_INSTALL = {
    "apt --allow-unauthenticated": re.compile(r"--allow-unauthenticated|--allow-insecure-repositories"),
    "apt AllowUnauthenticated": re.compile(r"AllowUnauthenticated\W+(?:true|1|yes)", re.IGNORECASE),
    "apt source [trusted=yes]": re.compile(r"\[[^\]]*trusted=yes[^\]]*\]"),
    "yum/dnf --nogpgcheck": re.compile(r"--nogpgcheck|\bgpgcheck\s*=\s*0"),
    "zypper --no-gpg-checks": re.compile(r"--no-gpg-checks"),
    "apk --allow-untrusted": re.compile(r"--allow-untrusted"),
    "pip --trusted-host": re.compile(r"--trusted-host"),
    "download piped to a shell": re.compile(r"\b(?:curl|wget)\b[^|;&]*\|\s*(?:sudo\s+)?(?:ba|da|z|k)?sh\b"),
}


@rule(
    id="CIS-4.11",
    cis="CIS-4.11",
    title="Packages are installed only after verification",
    severity=Severity.MEDIUM,
    scope=TargetKind.IMAGE,
    rationale="""
Package managers check signatures so that a mirror or network attacker cannot slip in altered
packages. Build steps that switch that check off, or pipe a download straight into a shell, install
whatever arrives.
""",
    remediation="Keep signature checks on; add the vendor's key to the keyring instead of trusting a repository "
    "blindly, and verify checksums of downloaded scripts before running them.",
    statuses=(Status.PASS, Status.FAIL, Status.SKIP),
)
def verified_packages(image: ImageFacts, facts: Facts) -> CheckResult:
    if image.history is None:
        return _history_missing(image)
    offending = []
    for step in _steps(image.history):
        command = step.shell_command
        for label, pattern in UNVERIFIED_INSTALL.items():
            if command and pattern.search(command):
                offending.append({"step": step.index, "problem": label, "command": step.preview()})
    if offending:
        problems = sorted({str(o["problem"]) for o in offending})
        return failed(f"build steps install without verification: {', '.join(problems)}", steps=offending)
    return passed("no build step disables package verification", steps=[])

"""Dockerfile lint rules (DKR-DF-*): security problems visible before the image is built.

Each check is called as ``check(dockerfile_facts)`` and reports the exact line of the offending
command: for a RUN spread over continued lines or a heredoc, the physical line where it appears.
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Iterator
from dataclasses import dataclass

from portcullis.checks.cis.s4_images import names_uid_zero
from portcullis.checks.registry import CheckResult, Outcome, failed, manual, passed, rule
from portcullis.model.findings import Location, Severity, Status, TargetKind
from portcullis.model.lint import DockerfileFacts, Instruction, Stage, substitute_args

# --- shell text with a line map -----------------------------------------------------------------


@dataclass(frozen=True)
class Shell:
    """The shell one RUN executes as one string, with a map back to physical lines."""

    instruction: Instruction
    stage: Stage
    text: str
    starts: tuple[int, ...]  # offset where each piece begins
    lines: tuple[int, ...]  # the physical line of each piece

    def line_at(self, offset: int) -> int:
        return self.lines[max(0, bisect.bisect_right(self.starts, offset) - 1)]


def shells(df: DockerfileFacts) -> Iterator[Shell]:
    for stage in df.stages:
        for instruction in stage.instructions:
            if not instruction.script:
                continue
            text, starts, lines = "", [], []
            for piece in instruction.script:
                starts.append(len(text))
                lines.append(piece.line)
                text += piece.text + ("" if piece.continues else "\n")
            yield Shell(instruction, stage, text, tuple(starts), tuple(lines))


_SEPARATOR = re.compile(r"&&|\|\||[;|&\n()`]|\$\(")
_ASSIGNMENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*=")
_WRAPPERS = frozenset({"sudo", "env", "nice", "nohup", "time", "command", "exec", "xargs", "doas"})


@dataclass(frozen=True)
class Command:
    """One simple command of a shell script: its words, the wrappers before it, where it begins."""

    words: tuple[str, ...]
    wrappers: tuple[str, ...]
    line: int

    @property
    def program(self) -> str:
        return self.words[0].rsplit("/", 1)[-1] if self.words else ""

    @property
    def args(self) -> tuple[str, ...]:
        return self.words[1:]


def commands(shell: Shell) -> Iterator[Command]:
    """Simple commands split at shell operators; `sudo -E`/`env` wrappers and VAR=x assignments set aside."""
    position = 0
    for match in [*_SEPARATOR.finditer(shell.text), None]:
        end = match.start() if match else len(shell.text)
        segment = shell.text[position:end]
        words = [w.strip("\"'") for w in segment.split()]
        wrappers: list[str] = []
        while words and (_ASSIGNMENT.match(words[0]) or words[0].rsplit("/", 1)[-1] in _WRAPPERS):
            word = words.pop(0)
            if not _ASSIGNMENT.match(word):
                wrappers.append(word.rsplit("/", 1)[-1])
                while words and words[0].startswith("-"):
                    words.pop(0)
        if words or wrappers:
            lead = len(segment) - len(segment.lstrip())
            yield Command(tuple(words), tuple(wrappers), shell.line_at(position + lead))
        if match:
            position = match.end()


def _at(df: DockerfileFacts, line: int) -> Location:
    return Location(path=df.path, line=line)


def final_image_stages(df: DockerfileFacts) -> list[Stage]:
    """The final stage and the earlier stages it builds FROM: their settings reach the image."""
    chain = [df.final_stage]
    while True:
        parent = df.stage_named(chain[-1].base)
        if parent is None or parent in chain or parent.index >= chain[-1].index:
            return chain
        chain.append(parent)


def _variables(df: DockerfileFacts, stage: Stage, before_line: int) -> dict[str, str | None]:
    """ARG defaults and ENV values visible at a line of a stage (global ARGs need re-declaring in a stage)."""
    known: dict[str, str | None] = {}
    for instruction in stage.instructions:
        if instruction.start_line >= before_line:
            break
        if instruction.keyword == "ARG":
            for item in instruction.arguments:
                name, sep, value = item.partition("=")
                known[name] = value if sep else df.global_args.get(name)
        elif instruction.keyword == "ENV":
            pairs = instruction.arguments
            for name, value in zip(pairs[::2], pairs[1::2], strict=False):
                known[name] = value
    return known


# --- DKR-DF-001 USER ----------------------------------------------------------------------------


@rule(
    id="DKR-DF-001",
    title="The final stage sets a non-root USER",
    severity=Severity.HIGH,
    scope=TargetKind.DOCKERFILE,
    statuses=(Status.PASS, Status.FAIL, Status.MANUAL),
    rationale="""
Without a USER instruction (or with USER root / 0) the container's main process runs as uid 0.
Any escape from the process, a writable host mount or a kernel bug then starts with root privileges.
""",
    remediation="Create an unprivileged account and end the final stage with `USER name` or `USER uid:gid`.",
    references=("https://docs.docker.com/build/building/best-practices/#user",),
)
def final_user_not_root(df: DockerfileFacts) -> CheckResult:
    for stage in final_image_stages(df):
        users = [i for i in stage.instructions if i.keyword == "USER" and i.arguments]
        if not users:
            continue
        last = users[-1]
        raw = last.arguments[0]
        value = substitute_args(raw, _variables(df, stage, last.start_line))
        if "$" in value:
            return manual(f"USER {raw} depends on a build argument without a default", user=raw, line=last.start_line)
        if names_uid_zero(value):
            return failed(f"the final stage runs as root (USER {raw})", location=_at(df, last.start_line), user=value)
        return passed(f"the final stage runs as {value}", user=value, line=last.start_line)
    final = df.final_stage
    return failed(
        "no USER in the final stage: the container runs as root unless the base image sets a user",
        location=_at(df, final.from_line),
        user=None,
        base=final.base,
    )


def _verdict(failures: list[Outcome], all_clear: str) -> CheckResult:
    return failures or passed(all_clear)


def _instructions(df: DockerfileFacts, *keywords: str) -> Iterator[tuple[Stage, Instruction]]:
    """Instructions of every stage (ONBUILD-wrapped ones count as what they wrap)."""
    for stage in df.stages:
        for instruction in stage.instructions:
            if instruction.keyword in keywords or instruction.onbuild in keywords:
                yield stage, instruction


def _sources(instruction: Instruction) -> list[str]:
    """ADD/COPY sources: every argument but the destination (heredoc sources excluded)."""
    words = list(instruction.arguments[:-1])
    return [w for w in words if not w.startswith("<<")]


def _is_url(source: str) -> bool:
    return bool(re.match(r"^(https?|ftp)://|^git@|^[a-z0-9.\-]+\.[a-z]+(:\d+)?/.+\.git(#.*)?$", source, re.I))


# --- DKR-DF-002/003 ADD -------------------------------------------------------------------------


@rule(
    id="DKR-DF-002",
    title="ADD does not fetch remote URLs without a checksum",
    severity=Severity.MEDIUM,
    scope=TargetKind.DOCKERFILE,
    rationale="""
ADD with a URL downloads whatever the server returns at build time, unverified, into the image.
A compromised or changed server silently changes the image.
""",
    remediation="Download with curl/wget and verify a pinned checksum, or use `ADD --checksum=sha256:… URL`.",
    references=("https://docs.docker.com/reference/dockerfile/#add---checksum",),
)
def add_remote_url(df: DockerfileFacts) -> CheckResult:
    failures = [
        failed(f"ADD fetches {source} without --checksum", location=_at(df, instruction.start_line), source=source)
        for _, instruction in _instructions(df, "ADD")
        if instruction.flag("checksum") is None
        for source in _sources(instruction)
        if _is_url(source)
    ]
    return _verdict(failures, "no ADD fetches an unverified URL")


ARCHIVE_SUFFIXES = (".tar", ".tar.gz", ".tgz", ".tar.bz2", ".tbz", ".tbz2", ".tar.xz", ".txz", ".tar.zst", ".tar.lz")


@rule(
    id="DKR-DF-003",
    title="COPY is used where ADD's extra behaviour is not needed",
    severity=Severity.LOW,
    scope=TargetKind.DOCKERFILE,
    rationale="""
ADD also unpacks archives and fetches URLs. For plain local files that hidden behaviour is a surprise
waiting to happen (a file renamed to .tar gets unpacked); COPY does only what it says.
""",
    remediation="Replace `ADD src dst` by `COPY src dst` unless src is a local tar archive to unpack.",
    references=("https://docs.docker.com/build/building/best-practices/#add-or-copy",),
)
def add_instead_of_copy(df: DockerfileFacts) -> CheckResult:
    failures = []
    for _, instruction in _instructions(df, "ADD"):
        local = [s for s in _sources(instruction) if not _is_url(s)]
        plain = [s for s in local if not s.lower().endswith(ARCHIVE_SUFFIXES)]
        if plain or (instruction.heredocs and not local):
            failures.append(
                failed(
                    "ADD copies plain local files; COPY would do",
                    location=_at(df, instruction.start_line),
                    sources=plain or ["<<heredoc"],
                )
            )
    return _verdict(failures, "ADD is only used for archives or verified URLs")


# --- DKR-DF-004 curl | sh -----------------------------------------------------------------------

_SHELLS = r"(?:ba|z|da|k|a)?sh|python[23]?|perl|ruby|node"
_PIPE_TO_SHELL = re.compile(
    r"\b(?:curl|wget)\b[^\n;&|]*\|\s*(?:sudo\s+(?:-\S+\s+)*)?(?:env\s+(?:\S+=\S+\s+)*)?(?:/usr)?(?:/local)?(?:/bin/)?"
    rf"(?:{_SHELLS})\b"
)
_SHELL_OF_DOWNLOAD = re.compile(rf"\b(?:{_SHELLS})\s+(?:-\S+\s+)*(?:<\(|\"?\$\()\s*(?:curl|wget)\b")


@rule(
    id="DKR-DF-004",
    title="No script is downloaded and piped straight into a shell",
    severity=Severity.HIGH,
    scope=TargetKind.DOCKERFILE,
    rationale="""
`curl … | sh` runs whatever the server sends, with no integrity check and no record of what ran.
A hijacked domain, a compromised CDN or a changed script alters the image without a trace.
""",
    remediation="Download the script to a file, verify its checksum or signature, then run it.",
)
def pipe_to_shell(df: DockerfileFacts) -> CheckResult:
    failures = []
    for shell in shells(df):
        for pattern in (_PIPE_TO_SHELL, _SHELL_OF_DOWNLOAD):
            for match in pattern.finditer(shell.text):
                line = shell.line_at(match.start())
                failures.append(
                    failed(
                        "a downloaded script is run without verification",
                        location=_at(df, line),
                        command=" ".join(match.group(0).split()),
                    )
                )
    return _verdict(failures, "no download is piped into an interpreter")


# --- DKR-DF-005 secrets -------------------------------------------------------------------------

_SECRET_NAME = re.compile(
    r"(PASSWORD|PASSWD|PASSPHRASE|(^|_)PASS$|(^|_)PWD$|SECRET|TOKEN|API_?KEY|ACCESS_?KEY|PRIVATE_?KEY|CREDENTIAL|AUTH_?KEY)",
    re.I,
)
_NOT_A_SECRET_VALUE = re.compile(r"^(\$\{?[A-Za-z_][A-Za-z0-9_]*(:?[-?][^}]*)?\}?|/run/secrets/\S*)?$")
_REFERENCE_SUFFIXES = ("_FILE", "_PATH", "_DIR", "_URL", "_ENDPOINT", "_HEADER", "_LENGTH", "_TTL", "_EXPIRY")


def _literal_secrets(instruction: Instruction) -> Iterator[tuple[str, str]]:
    if instruction.keyword == "ENV":
        pairs = instruction.arguments
        items = list(zip(pairs[::2], pairs[1::2], strict=False))
    else:
        items = [(n, v) for n, sep, v in (a.partition("=") for a in instruction.arguments) if sep]
    for name, value in items:
        value = value.strip().strip("\"'")
        if not _SECRET_NAME.search(name) or name.upper().endswith(_REFERENCE_SUFFIXES):
            continue
        if not _NOT_A_SECRET_VALUE.match(value):
            yield name, value


@rule(
    id="DKR-DF-005",
    title="ENV and ARG carry no literal secrets",
    severity=Severity.HIGH,
    scope=TargetKind.DOCKERFILE,
    rationale="""
ENV values are stored in the image configuration and ARG values in its history: anyone who can pull
the image can read them. A password, token or key written into the Dockerfile is also in version control.
""",
    remediation="Pass secrets at build time with `RUN --mount=type=secret` and at run time from a secret store.",
    references=("https://docs.docker.com/build/building/secrets/",),
)
def secrets_in_env_or_arg(df: DockerfileFacts) -> CheckResult:
    failures = [
        failed(
            f"{instruction.keyword} {name} holds a literal value",
            location=_at(df, instruction.start_line),
            name=name,
            value_length=len(value),
        )
        for _, instruction in _instructions(df, "ENV", "ARG")
        for name, value in _literal_secrets(instruction)
    ]
    return _verdict(failures, "no ENV or ARG sets a secret-looking name to a literal value")


# --- DKR-DF-006/007 base image reference --------------------------------------------------------


@dataclass(frozen=True)
class ImageRef:
    name: str
    tag: str | None
    digest: str | None


def parse_image_ref(reference: str) -> ImageRef:
    name, _, digest = reference.partition("@")
    last_slash = name.rfind("/")
    colon = name.rfind(":")
    tag = None
    if colon > last_slash:
        name, tag = name[:colon], name[colon + 1 :]
    return ImageRef(name=name, tag=tag, digest=digest or None)


def _external_bases(df: DockerfileFacts) -> Iterator[Stage]:
    """Stages built FROM an image, not FROM scratch or an earlier stage."""
    for stage in df.stages:
        if stage.base.lower() == "scratch":
            continue
        earlier = df.stage_named(stage.base)
        if earlier is not None and earlier.index < stage.index:
            continue
        yield stage


@rule(
    id="DKR-DF-006",
    title="Base images name an explicit tag other than latest",
    severity=Severity.MEDIUM,
    scope=TargetKind.DOCKERFILE,
    statuses=(Status.PASS, Status.FAIL, Status.MANUAL),
    rationale="""
An untagged or `latest` base changes whenever the publisher pushes: builds stop being reproducible and a
broken or malicious release flows in unnoticed.
""",
    remediation="Name a specific version tag, ideally with its digest: `FROM debian:12.7@sha256:…`.",
)
def base_tag(df: DockerfileFacts) -> CheckResult:
    outcomes: list[Outcome] = []
    for stage in _external_bases(df):
        if "$" in stage.base:
            outcomes.append(manual(f"FROM {stage.base_raw} depends on a build argument", line=stage.from_line))
            continue
        ref = parse_image_ref(stage.base)
        if ref.digest:
            continue
        if ref.tag is None or ref.tag == "latest":
            outcomes.append(
                failed(
                    f"base {stage.base} is {'untagged (latest)' if ref.tag is None else 'tagged latest'}",
                    location=_at(df, stage.from_line),
                    base=stage.base,
                )
            )
    failures = [o for o in outcomes if o.status is Status.FAIL]
    return failures or outcomes or passed("every base image names a version tag or digest")


@rule(
    id="DKR-DF-007",
    title="Base images are pinned by digest",
    severity=Severity.LOW,
    scope=TargetKind.DOCKERFILE,
    statuses=(Status.PASS, Status.FAIL, Status.MANUAL),
    rationale="""
A tag is mutable: the registry can serve different content under the same name tomorrow. Only a digest
names exactly the bytes that were reviewed.
""",
    remediation="Append the digest: `FROM debian:12.7@sha256:…` (and let a bot such as Renovate update it).",
)
def base_digest(df: DockerfileFacts) -> CheckResult:
    outcomes: list[Outcome] = []
    for stage in _external_bases(df):
        if "$" in stage.base:
            outcomes.append(manual(f"FROM {stage.base_raw} depends on a build argument", line=stage.from_line))
        elif parse_image_ref(stage.base).digest is None:
            outcomes.append(
                failed(f"base {stage.base} has no digest", location=_at(df, stage.from_line), base=stage.base)
            )
    failures = [o for o in outcomes if o.status is Status.FAIL]
    return failures or outcomes or passed("every base image is pinned by digest")


# --- DKR-DF-008 sudo ----------------------------------------------------------------------------


@rule(
    id="DKR-DF-008",
    title="RUN does not use sudo",
    severity=Severity.MEDIUM,
    scope=TargetKind.DOCKERFILE,
    rationale="""
sudo in a build means an account with sudo rights exists in the image, which a compromised process can
use to become root; its TTY and signal handling also misbehave in containers.
""",
    remediation="Run privileged build steps before switching USER, or use gosu/setpriv at run time.",
)
def no_sudo(df: DockerfileFacts) -> CheckResult:
    failures = [
        failed("RUN uses sudo", location=_at(df, command.line), command=" ".join(command.words[:6]))
        for shell in shells(df)
        for command in commands(shell)
        if "sudo" in command.wrappers or command.program == "sudo"
    ]
    return _verdict(failures, "no RUN uses sudo")


# --- DKR-DF-009 world-writable modes ------------------------------------------------------------


def world_writable_mode(mode: str) -> bool:
    """True for modes granting others write without the sticky bit: 777, 0666, o+w, a+rwx, =rwx."""
    if re.fullmatch(r"[0-7]{3,4}", mode):
        digits = mode.zfill(4)
        return bool(int(digits[3]) & 2) and not int(digits[0]) & 1
    granted = False
    sticky = False
    for clause in mode.split(","):
        match = re.fullmatch(r"([ugoa]*)([-+=])([rwxXst]*)", clause)
        if not match:
            continue
        who, op, perms = match.groups()
        if "t" in perms and op != "-":
            sticky = True
        if op != "-" and "w" in perms and (not who or "o" in who or "a" in who):
            # a bare `+w` honours the umask and is not world-writable in practice
            granted = granted or bool(who)
    return granted and not sticky


@rule(
    id="DKR-DF-009",
    title="No file is made world-writable",
    severity=Severity.MEDIUM,
    scope=TargetKind.DOCKERFILE,
    rationale="""
A world-writable file or directory (chmod 777, o+w) lets any process in the container, whatever its user,
replace binaries, scripts or configuration the main process trusts.
""",
    remediation="Grant write access to the owning user or group only (e.g. 755/644, chown to the app user).",
)
def no_world_writable(df: DockerfileFacts) -> CheckResult:
    failures: list[Outcome] = []
    for shell in shells(df):
        for command in commands(shell):
            if command.program != "chmod":
                continue
            modes = [w for w in command.args if not w.startswith("-") or re.fullmatch(r"-[rwxXst]+", w)]
            if modes and world_writable_mode(modes[0]):
                failures.append(
                    failed(
                        f"chmod {modes[0]} makes files world-writable",
                        location=_at(df, command.line),
                        mode=modes[0],
                        paths=list(modes[1:]),
                    )
                )
    for _, instruction in _instructions(df, "COPY", "ADD"):
        mode = instruction.flag("chmod")
        if mode and world_writable_mode(mode):
            failures.append(
                failed(
                    f"{instruction.keyword} --chmod={mode} makes files world-writable",
                    location=_at(df, instruction.start_line),
                    mode=mode,
                )
            )
    return _verdict(failures, "no chmod or --chmod grants write access to others")


# --- DKR-DF-010 HEALTHCHECK ---------------------------------------------------------------------


@rule(
    id="DKR-DF-010",
    title="The final stage defines a HEALTHCHECK",
    severity=Severity.LOW,
    scope=TargetKind.DOCKERFILE,
    rationale="""
Without a health check the engine and orchestrators only know whether the process exists, not whether it
serves: a hung service keeps receiving traffic and is never restarted.
""",
    remediation="Add `HEALTHCHECK CMD <a cheap probe>` to the final stage.",
)
def final_healthcheck(df: DockerfileFacts) -> CheckResult:
    for stage in final_image_stages(df):
        checks = [i for i in stage.instructions if i.keyword == "HEALTHCHECK"]
        if not checks:
            continue
        last = checks[-1]
        if [a.upper() for a in last.arguments] == ["NONE"]:
            return failed("HEALTHCHECK NONE disables the health check", location=_at(df, last.start_line))
        return passed("the final stage has a HEALTHCHECK", line=last.start_line)
    return failed("no HEALTHCHECK in the final stage", location=_at(df, df.final_stage.from_line))


# --- DKR-DF-011 EXPOSE 22 -----------------------------------------------------------------------


def _exposed_ports(value: str) -> range:
    ports = value.split("/", 1)[0]
    low, _, high = ports.partition("-")
    if not low.isdigit() or (high and not high.isdigit()):
        return range(0)
    return range(int(low), int(high or low) + 1)


@rule(
    id="DKR-DF-011",
    title="The image does not expose SSH (port 22)",
    severity=Severity.MEDIUM,
    scope=TargetKind.DOCKERFILE,
    rationale="""
An SSH daemon in a container is a second, long-lived entry point with its own credentials to manage;
`docker exec` already gives operators a shell without one.
""",
    remediation="Remove sshd and `EXPOSE 22`; use `docker exec` for debugging.",
)
def no_ssh_port(df: DockerfileFacts) -> CheckResult:
    failures = [
        failed(f"EXPOSE {value} publishes SSH", location=_at(df, instruction.start_line), port=value)
        for stage in final_image_stages(df)
        for instruction in stage.instructions
        if instruction.keyword == "EXPOSE"
        for value in instruction.arguments
        if 22 in _exposed_ports(value)
    ]
    return _verdict(failures, "port 22 is not exposed")


# --- package managers ---------------------------------------------------------------------------

APT = frozenset({"apt-get", "apt", "aptitude"})
INSTALLERS = {
    "apt-get": "install",
    "apt": "install",
    "aptitude": "install",
    "apk": "add",
    "yum": "install",
    "dnf": "install",
    "microdnf": "install",
    "zypper": "install",
}


def _subcommand(command: Command) -> str:
    return next((w for w in command.args if not w.startswith("-")), "")


def _installs(command: Command) -> bool:
    wanted = INSTALLERS.get(command.program)
    return wanted is not None and _subcommand(command) in (wanted, "in" if command.program == "zypper" else wanted)


@rule(
    id="DKR-DF-012",
    title="Package index updates are not alone in a RUN",
    severity=Severity.MEDIUM,
    scope=TargetKind.DOCKERFILE,
    rationale="""
A RUN that only runs `apt-get update` is cached as its own layer: later builds reuse the stale index and
install outdated packages, missing security fixes.
""",
    remediation="Update and install in one RUN: `apt-get update && apt-get install -y … && rm -rf /var/lib/apt/lists`.",
)
def update_alone(df: DockerfileFacts) -> CheckResult:
    failures = []
    for shell in shells(df):
        found = list(commands(shell))
        updates = [c for c in found if c.program in (*APT, "apk") and _subcommand(c) == "update"]
        if updates and not any(_installs(c) or _subcommand(c) in ("upgrade", "dist-upgrade") for c in found):
            failures.append(
                failed(
                    f"`{updates[0].program} update` without an install in the same RUN",
                    location=_at(df, updates[0].line),
                )
            )
    return _verdict(failures, "every index update shares its RUN with an install")


@rule(
    id="DKR-DF-013",
    title="apt installs skip recommended packages",
    severity=Severity.INFO,
    scope=TargetKind.DOCKERFILE,
    rationale="""
Recommended packages are not needed to run the software; they enlarge the image and its attack surface
(hygiene rather than a vulnerability, hence info).
""",
    remediation="Add `--no-install-recommends` to `apt-get install`.",
)
def apt_recommends(df: DockerfileFacts) -> CheckResult:
    failures = [
        failed(f"{command.program} install without --no-install-recommends", location=_at(df, command.line))
        for shell in shells(df)
        for command in commands(shell)
        if command.program in APT
        and _installs(command)
        and not any(
            a in ("--no-install-recommends", "-o=APT::Install-Recommends=false")
            or "Install-Recommends=false" in a
            or "Install-Recommends=0" in a
            for a in command.args
        )
    ]
    return _verdict(failures, "every apt install skips recommended packages")


def _cache_mounted(instruction: Instruction, *targets: str) -> bool:
    mounts = [v for f in instruction.flags if f.startswith("--mount=") for v in [f.removeprefix("--mount=")]]
    return any("type=cache" in m and any(t in m for t in targets) for m in mounts)


def _cache_problem(command: Command, shell: Shell, later: list[Command]) -> str | None:
    """Why an install leaves a package cache in its layer, or None."""
    text = " ".join(c.words[0] + " " + " ".join(c.args) for c in later)
    if command.program in APT:
        if _cache_mounted(shell.instruction, "/var/lib/apt", "/var/cache/apt"):
            return None
        if "/var/lib/apt/lists" not in text:
            return "the apt lists (/var/lib/apt/lists) are not removed in the same RUN"
    elif command.program == "apk":
        if (
            "--no-cache" not in command.args
            and "/var/cache/apk" not in text
            and not _cache_mounted(shell.instruction, "/var/cache/apk", "/etc/apk/cache")
        ):
            return "apk add without --no-cache"
    elif command.program in ("yum", "dnf", "microdnf", "zypper") and not (
        re.search(rf"\b{command.program}\b.*\bclean\b", text) or "/var/cache/" in text
    ):
        return f"no `{command.program} clean all` in the same RUN"
    return None


def _pip_cache_problem(command: Command, df: DockerfileFacts, shell: Shell) -> str | None:
    is_pip = command.program in ("pip", "pip3") or (
        command.program.startswith("python") and command.args[:2] == ("-m", "pip")
    )
    if not is_pip or "install" not in command.args:
        return None
    if "--no-cache-dir" in command.args or _cache_mounted(shell.instruction, "/root/.cache", ".cache/pip"):
        return None
    env = _variables(df, shell.stage, shell.instruction.start_line)
    if (env.get("PIP_NO_CACHE_DIR") or "").lower() in ("1", "true", "yes", "on", "off", "0", "false"):
        return None  # pip treats any value of PIP_NO_CACHE_DIR as "no cache"
    return "pip install without --no-cache-dir"


@rule(
    id="DKR-DF-014",
    title="Package manager caches are not left in the image",
    severity=Severity.LOW,
    scope=TargetKind.DOCKERFILE,
    rationale="""
Package indexes and downloaded archives left in a layer add megabytes that ship with every pull and keep
stale metadata that scanners and attackers can read; a later RUN that deletes them does not shrink the image.
""",
    remediation="Clean in the same RUN (`rm -rf /var/lib/apt/lists/*`, `apk add --no-cache`, `dnf clean all`, "
    "`pip install --no-cache-dir`) or use a `RUN --mount=type=cache` mount.",
)
def package_caches(df: DockerfileFacts) -> CheckResult:
    failures = []
    for shell in shells(df):
        found = list(commands(shell))
        for position, command in enumerate(found):
            if _installs(command):
                problem = _cache_problem(command, shell, found[position + 1 :])
            else:
                problem = _pip_cache_problem(command, df, shell)
            if problem:
                failures.append(failed(problem, location=_at(df, command.line), manager=command.program))
    return _verdict(failures, "every install cleans its package cache")


_UNVERIFIED = re.compile(
    r"--allow-unauthenticated|--allow-insecure-repositories|--force-yes|AllowUnauthenticated\s*=?\s*\"?(true|1)"
    r"|\[[^\]]*trusted=yes[^\]]*\]|--nogpgcheck|--no-gpg-checks|gpgcheck\s*=\s*0|--allow-untrusted",
    re.I,
)


@rule(
    id="DKR-DF-015",
    title="Package signatures are verified",
    severity=Severity.HIGH,
    scope=TargetKind.DOCKERFILE,
    rationale="""
Flags such as `--allow-unauthenticated`, `[trusted=yes]`, `--nogpgcheck` or `apk --allow-untrusted` install
packages whose signatures are not checked: anyone on the network path or behind a mirror can substitute them.
""",
    remediation="Remove the flag and import the repository's signing key (`signed-by=` keyring, rpm --import).",
)
def package_signatures(df: DockerfileFacts) -> CheckResult:
    failures = [
        failed(
            f"package verification is disabled ({match.group(0)})",
            location=_at(df, shell.line_at(match.start())),
            option=match.group(0),
        )
        for shell in shells(df)
        for match in _UNVERIFIED.finditer(shell.text)
    ]
    return _verdict(failures, "no install disables package signature checks")


@rule(
    id="DKR-DF-016",
    title="pip verifies the TLS certificate of its index",
    severity=Severity.MEDIUM,
    scope=TargetKind.DOCKERFILE,
    rationale="""
`pip --trusted-host` (or PIP_TRUSTED_HOST) turns off certificate checks for that host, and an http://
index has none at all: packages can be swapped in transit and run code at install time.
""",
    remediation="Use an https index with a valid certificate; add a private CA with `--cert` instead.",
)
def pip_trusted_host(df: DockerfileFacts) -> CheckResult:
    failures: list[Outcome] = []
    for shell in shells(df):
        for match in re.finditer(r"--trusted-host(?:[=\s]+(\S+))?|--(?:extra-)?index-url[=\s]+http://\S+", shell.text):
            if "pip" not in shell.text:
                continue
            failures.append(
                failed(
                    f"pip without TLS verification ({' '.join(match.group(0).split())})",
                    location=_at(df, shell.line_at(match.start())),
                    option=" ".join(match.group(0).split()),
                )
            )
    for _, instruction in _instructions(df, "ENV", "ARG"):
        if re.search(r"\bPIP_TRUSTED_HOST\b", " ".join(instruction.arguments)):
            failures.append(
                failed("PIP_TRUSTED_HOST disables TLS verification", location=_at(df, instruction.start_line))
            )
    return _verdict(failures, "pip keeps TLS verification on")

"""`portcullis harden seccomp` and `portcullis harden apparmor` (cli/harden.py adds them to the `harden` group)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from portcullis.cli.common import (
    EXIT_TOOL_ERROR,
    TLSCACertOption,
    TLSCertOption,
    TLSKeyOption,
    TLSVerifyOption,
    die,
    say,
    use_engine_tls,
)
from portcullis.cli.harden_options import HostOption, LabelOption, parse_labels, write_stdout
from portcullis.harden import HardenError

ContainerOption = Annotated[
    str | None, typer.Option("--container", help="record a labelled copy of this container (never the container)")
]
ImageOption = Annotated[str | None, typer.Option("--image", help="record this image (command after `--`)")]
CommandArgument = Annotated[list[str] | None, typer.Argument(help="command for --image, after `--`")]
DurationOption = Annotated[
    float, typer.Option("--duration", min=1, max=60, help="seconds each run may last (a service is stopped then)")
]
SmokeOption = Annotated[
    str | None, typer.Option("--smoke", help="command run inside the copy (docker exec) that must exit 0")
]
OutputOption = Annotated[Path | None, typer.Option("--output", "-o", help="write the profile here (default stdout)")]
ProbeOption = Annotated[
    str | None,
    typer.Option("--host-probe", help="command run on the host, {ip} = the copy's address, that must exit 0"),
]


def seccomp(
    command: CommandArgument = None,
    container: ContainerOption = None,
    image: ImageOption = None,
    duration: DurationOption = 10.0,
    smoke: SmokeOption = None,
    host_probe: ProbeOption = None,
    output: OutputOption = None,
    routes: Annotated[
        str,
        typer.Option("--routes", help="comma list of strace, audit, runc-baseline: sources of the first list"),
    ] = "strace,audit,runc-baseline",
    max_attempts: Annotated[int, typer.Option("--max-attempts", min=1, max=8, help="verify/repair rounds")] = 3,
    allow_host_tuning: Annotated[
        bool,
        typer.Option(
            "--allow-host-tuning",
            help="if only /dev/kmsg is readable, set kernel.printk_ratelimit=0 during LOG runs (restored after)",
        ),
    ] = False,
    host: HostOption = None,
    tlsverify: TLSVerifyOption = False,
    tlscacert: TLSCACertOption = None,
    tlscert: TLSCertOption = None,
    tlskey: TLSKeyOption = None,
    label: LabelOption = None,
) -> None:
    """Record a workload's syscalls and emit an allow-list seccomp profile, shipped only if the workload runs under it.

    Examples: `portcullis harden seccomp --image busybox -- httpd -f -p 8080 --host-probe "wget -qO- http://{ip}:8080/"`,
    `portcullis harden seccomp --container web --smoke "wget -qO- http://127.0.0.1/" -o web-seccomp.json`.
    """
    use_engine_tls(tlsverify, tlscacert, tlscert, tlskey)
    from portcullis.harden.profiles import WorkloadSpec, record_seccomp_profile

    spec = WorkloadSpec(
        container=container,
        image=image,
        command=command,
        duration=duration,
        smoke=smoke,
        host_probe=host_probe,
        labels=parse_labels(label),
        host=host,
    )
    chosen = frozenset(r.strip() for r in routes.split(",") if r.strip())
    try:
        recording = record_seccomp_profile(spec, chosen, max_attempts, allow_host_tuning, say)
    except HardenError as exc:
        die(str(exc))
    result = recording.result
    say(_size_text(recording.sizes))
    for note in result.notes:
        say(f"note: {note}")
    if not result.verified:
        denied = sorted({name for attempt in result.attempts for name in attempt.denied})
        say(
            f"portcullis: error: no profile shipped: {result.workload} still fails under it after "
            f"{len(result.attempts)} attempt(s) ({result.attempts[-1].result})"
            + (f"; syscalls it needed: {', '.join(denied)}" if denied else "")
        )
        raise typer.Exit(EXIT_TOOL_ERROR)
    text = json.dumps(result.profile, indent=2) + "\n"
    if output is None:
        write_stdout(text)
        return
    try:
        output.write_text(text, encoding="utf-8")
    except OSError as exc:
        die(f"cannot write {output}: {exc.strerror}")
    say(f"verified profile written to {output}; use it with --security-opt seccomp={output}")


def _size_text(sizes: dict[str, Any]) -> str:
    ours = sizes["profile"]
    text = f"profile: {ours['names']} syscalls allowed, {ours['compact_bytes']} bytes (compact JSON)"
    default = sizes.get("docker_default")
    if default is None:
        return text + "; Docker's default profile is not installed (golang-github-docker-docker-dev), no comparison"
    text += (
        f"; Docker's default: {default['names']} names ({default['unconditional']} unconditional), "
        f"{default['compact_bytes']} bytes; {sizes['denied_that_docker_allows']} syscalls Docker allows are denied"
    )
    if sizes["allowed_that_docker_denies"]:
        text += f"; allowed although Docker denies them: {', '.join(sizes['allowed_that_docker_denies'])}"
    return text


def apparmor(
    command: CommandArgument = None,
    policy: Annotated[
        Path | None, typer.Option("--policy", help="declarative policy (.toml or .yaml): paths, exec, caps, network")
    ] = None,
    container: ContainerOption = None,
    image: ImageOption = None,
    duration: DurationOption = 10.0,
    smoke: SmokeOption = None,
    host_probe: ProbeOption = None,
    name: Annotated[str | None, typer.Option("--name", help="profile name (default: the policy's)")] = None,
    output: OutputOption = None,
    host: HostOption = None,
    tlsverify: TLSVerifyOption = False,
    tlscacert: TLSCACertOption = None,
    tlscert: TLSCertOption = None,
    tlskey: TLSKeyOption = None,
    label: LabelOption = None,
) -> None:
    """Generate an AppArmor profile from a policy and/or observed use, checked with apparmor_parser (no kernel load).

    Examples: `portcullis harden apparmor --policy web.toml -o web.apparmor`,
    `portcullis harden apparmor --policy web.toml --image busybox -- httpd -f -p 8080`.
    """
    use_engine_tls(tlsverify, tlscacert, tlscert, tlskey)
    from portcullis.harden.profiles import WorkloadSpec, apparmor_profile

    spec = WorkloadSpec(
        container=container,
        image=image,
        command=command,
        duration=duration,
        smoke=smoke,
        host_probe=host_probe,
        labels=parse_labels(label),
        host=host,
    )
    try:
        profile = apparmor_profile(policy, name, spec, say)
    except HardenError as exc:
        die(str(exc))
    if output is None:
        write_stdout(profile.text)
    else:
        try:
            output.write_text(profile.text, encoding="utf-8")
        except OSError as exc:
            die(f"cannot write {output}: {exc.strerror}")
        say(f"profile {profile.name} written to {output}")
    say("apparmor_parser --skip-kernel-load: the profile compiles")
    if not profile.enforced_here:
        say(
            "AppArmor is not enabled in this kernel: the profile could not be loaded or enforced here, so it is "
            "checked but not verified against the workload; load it on an AppArmor host and run the workload there"
        )

"""`harden apparmor`: policy parsing, profile text, and apparmor_parser's verdict (no kernel load: no LSM here)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from portcullis.harden import HardenError
from portcullis.harden.apparmor import load_policy, policy_from_dict, render_profile, validate_profile
from portcullis.harden.syscall_record import parse_strace

DATA = Path(__file__).parent / "data"
POLICY = """\
name = "pc-web"
[filesystem]
read_only = ["/etc/**"]
writable = ["/var/cache/web/**"]
allow_exec = ["/bin/busybox"]
deny_exec = ["/usr/bin/wget"]
[capabilities]
allow = ["NET_BIND_SERVICE"]
[network]
protocols = ["tcp"]
"""

needs_parser = pytest.mark.skipif(shutil.which("apparmor_parser") is None, reason="apparmor package not installed")


def portcullis(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "portcullis", "harden", "apparmor", *args], capture_output=True, text=True, timeout=120
    )


def test_policy_and_observation_become_rules(tmp_path: Path) -> None:
    path = tmp_path / "web.toml"
    path.write_text(POLICY)
    policy = load_policy(path)
    assert policy.capabilities == ["net_bind_service"]
    observed = parse_strace((DATA / "strace-busybox-httpd.txt").read_text(), gated_pid=22439)
    observed.writes.add("/var/log/web/access.log")
    text = render_profile(policy, observed)
    assert text.count("profile pc-web ") == 1
    assert "  capability net_bind_service,\n" in text
    assert "  network inet stream,\n" in text and "  network inet6 stream,\n" in text
    assert "  deny network raw,\n" in text and "  deny network packet,\n" in text
    assert "  /var/cache/web/** rwk,\n" in text
    assert "  /var/log/web/* rwk,\n" in text  # observed write -> that directory's files
    assert "  /bin/busybox mrix,\n" in text
    assert "/proc/self/exe mrix" not in text  # the gate's exec path is not a program
    assert "  deny /etc/** wl,\n" in text and "  deny /usr/bin/wget x,\n" in text


def test_yaml_policy_is_read_like_toml(tmp_path: Path) -> None:
    path = tmp_path / "p.yaml"
    path.write_text("name: pc-y\nnetwork:\n  raw: true\n  protocols: [udp]\n")
    policy = load_policy(path)
    assert (policy.name, policy.raw, policy.protocols) == ("pc-y", True, ["udp"])
    assert "  network raw,\n" in render_profile(policy)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"filesystem": {"writable": ["tmp/**"]}}, "must be absolute"),
        ({"filesystem": {"writable": ['/a", /b']}}, "cannot hold"),
        ({"capabilities": {"allow": ["cap_fly"]}}, "unknown capability fly"),
        ({"network": {"protocols": ["sctp"]}}, "unknown protocol"),
        ({"filesystem": {"readonly": ["/etc"]}}, "unknown setting 'readonly'"),
        ({"network": {"raw": "yes"}}, "expected bool"),
        ({"name": "bad name"}, "profile name"),
    ],
)
def test_bad_policy_is_refused_with_one_reason(data: dict[str, object], message: str) -> None:
    with pytest.raises(HardenError, match=message):
        policy_from_dict(data)


@needs_parser
def test_generated_profile_compiles_and_a_broken_one_is_rejected(tmp_path: Path) -> None:
    path = tmp_path / "web.toml"
    path.write_text(POLICY)
    observed = parse_strace((DATA / "strace-busybox-httpd.txt").read_text(), gated_pid=22439)
    good = render_profile(load_policy(path), observed)
    assert validate_profile(good).ok
    broken = good.replace("  capability net_bind_service,", "  capability fly_to_the_moon,")
    verdict = validate_profile(broken)
    assert not verdict.ok and "fly_to_the_moon" in verdict.message
    unbalanced = good.rstrip().removesuffix("}")
    assert not validate_profile(unbalanced).ok


@needs_parser
def test_cli_writes_a_checked_profile_and_says_enforcement_was_not_tested(tmp_path: Path) -> None:
    policy, output = tmp_path / "web.toml", tmp_path / "web.apparmor"
    policy.write_text(POLICY)
    done = portcullis("--policy", str(policy), "-o", str(output))
    assert done.returncode == 0, done.stderr
    assert "profile pc-web flags=" in output.read_text()
    assert "the profile compiles" in done.stderr
    if not Path("/sys/kernel/security/apparmor").is_dir():
        assert "AppArmor is not enabled in this kernel" in done.stderr


def test_cli_bad_input_is_one_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text("name = \n")
    for args, message in [((), "give a --policy"), (("--policy", str(bad)), "not valid TOML")]:
        done = portcullis(*args)
        assert done.returncode == 1 and message in done.stderr
        assert len(done.stderr.strip().splitlines()) == 1, done.stderr


@pytest.mark.engine
@needs_parser
@pytest.mark.skipif(os.geteuid() != 0, reason="strace attach needs root")
def test_observed_batch_job_writes_become_write_rules() -> None:
    if subprocess.run(["docker", "image", "inspect", "portcullis-test/busybox:1"], capture_output=True).returncode:
        pytest.skip("portcullis-test/busybox:1 is missing (make test-images)")
    done = portcullis(
        "--image", "portcullis-test/busybox:1", "--name", "pc-batch", "--duration", "10",
        "--label", "portcullis.test=1", "--", "sh", "-c", "mkdir -p /srv/out && echo hi > /srv/out/a && cat /srv/out/a",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "profile pc-batch flags=" in done.stdout
    assert "  /srv/out/* rwk,\n" in done.stdout and "  /srv/* rwk,\n" in done.stdout
    assert "exited 0" in done.stderr
    leftovers = subprocess.run(
        ["docker", "ps", "-aq", "--filter", "label=portcullis.purpose=harden-apparmor"], capture_output=True, text=True
    ).stdout.split()
    assert leftovers == []

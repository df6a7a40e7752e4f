"""portcullis authz as a managed plugin (`docker plugin create`) on a private dockerd, and the audit's CIS-2.13 when
`docker plugin disable` silently takes it out of the chain."""

from __future__ import annotations

import json
import shutil
import subprocess
import sysconfig
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path

import docker
import pytest

from portcullis.checks.registry import get_rule
from portcullis.checks.runner import evaluate
from portcullis.collect.audit import collect_facts
from portcullis.collect.engine import connect
from portcullis.harden.trial_daemon import TrialDaemon, copy_image, missing_requirement
from portcullis.model.findings import Finding, Status

pytestmark = pytest.mark.engine

REPO = Path(__file__).resolve().parents[2]
BUSYBOX = "portcullis-test/busybox:1"
PYTHON_ROOT = "portcullis-test/python:bookworm"  # Debian's python3, the same 3.11 as the venv
# What `from portcullis.authz.server import serve` imports outside the standard library.
PACKAGES = ("annotated_types", "boolean", "cffi", "_cffi_backend", "cryptography", "license_expression", "pydantic",
            "pydantic_core", "typing_extensions",
            "typing_inspection", "yaml", "_yaml")  # fmt: skip
PLUGIN = "pc-authz-managed"
SERVE = (
    "from pathlib import Path; from portcullis.authz.server import serve; "
    "serve(Path('/run/docker/plugins/pc.sock'), Path('/policy.yaml'), print)"
)


def _plugin_directory(work: Path) -> Path:
    """config.json and a rootfs: Debian's python with the plugin's code and the packages it imports."""
    rootfs = work / "plugin" / "rootfs"
    rootfs.mkdir(parents=True)
    with closing(docker.from_env()) as engine:
        container = engine.containers.create(PYTHON_ROOT, "true", labels={"portcullis.test": "1"})
        try:
            with open(work / "rootfs.tar", "wb") as tar:
                for chunk in container.export():
                    tar.write(chunk)
        finally:
            container.remove(force=True)
    subprocess.run(["tar", "-C", str(rootfs), "-xf", str(work / "rootfs.tar")], check=True)
    (work / "rootfs.tar").unlink()
    site = Path(sysconfig.get_paths()["purelib"])  # the running interpreter's packages
    target = rootfs / "opt" / "py"
    target.mkdir(parents=True)
    for entry in site.iterdir():
        if entry.name.split("-")[0].split(".")[0] in PACKAGES:
            (shutil.copytree if entry.is_dir() else shutil.copy2)(entry, target / entry.name)
    shutil.copytree(REPO / "src" / "portcullis", target / "portcullis")
    (rootfs / "policy.yaml").write_text("deny: [CIS-5.5]\n")
    config = {
        "description": "portcullis authz (test)",
        "documentation": "https://example.invalid/portcullis",
        "entrypoint": ["python3", "-c", SERVE],
        "env": [{"name": "PYTHONPATH", "description": "", "settable": None, "value": "/opt/py"}],
        "interface": {"socket": "pc.sock", "types": ["docker.authz/1.0"]},
        "network": {"type": "host"},
    }
    (work / "plugin" / "config.json").write_text(json.dumps(config))
    return work / "plugin"


def trial_bridges() -> set[str]:
    return {path.name for path in Path("/sys/class/net").glob("pch*")}


@pytest.fixture(scope="module")
def daemon(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TrialDaemon]:
    """A private dockerd restarted with the managed plugin installed, enabled and configured."""
    missing = missing_requirement()
    if missing:
        pytest.skip(missing)
    plugin_dir = _plugin_directory(tmp_path_factory.mktemp("managed"))
    bridges = trial_bridges()
    daemon = TrialDaemon({})
    try:
        daemon.start()
        docker_cli = ["docker", "-H", daemon.host, "plugin"]
        subprocess.run([*docker_cli, "create", PLUGIN, str(plugin_dir)], check=True, capture_output=True)
        enabled = subprocess.run([*docker_cli, "enable", PLUGIN], capture_output=True, text=True, timeout=120)
        assert enabled.returncode == 0, f"docker plugin enable: {enabled.stderr.strip()}"
        assert daemon.process is not None
        daemon.process.terminate()  # a plugin named in daemon.json is taken into the chain at start
        daemon.process.wait(timeout=60)
        daemon.config = {"authorization-plugins": [PLUGIN]}
        daemon.start()
        with closing(docker.from_env()) as engine, closing(daemon.client()) as target:
            copy_image(BUSYBOX, engine.api, target)
        yield daemon
    finally:
        if daemon.process is not None and daemon.process.poll() is None:
            subprocess.run(["docker", "-H", daemon.host, "plugin", "rm", "-f", PLUGIN], capture_output=True)
        daemon.stop()
        shutil.rmtree(plugin_dir.parent, ignore_errors=True)
    # Started twice (to take the plugin into the chain), yet one bridge, and it is gone.
    assert trial_bridges() == bridges


def cis_2_13(daemon: TrialDaemon) -> Finding:
    rule = get_rule("CIS-2.13")
    assert rule is not None
    conn = connect(daemon.host)
    try:
        return evaluate(rule, collect_facts(conn))[0]
    finally:
        conn.close()


def create(daemon: TrialDaemon, *flags: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["docker", "-H", daemon.host, "create", "--label", "portcullis.test=1", *flags, BUSYBOX, "true"],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip


def test_disable_silently_drops_the_managed_plugin_and_the_audit_fails_it(daemon: TrialDaemon) -> None:
    refused = create(daemon, "--privileged")
    assert refused.returncode != 0 and f"plugin {PLUGIN}:latest" in refused.stderr and "CIS-5.5" in refused.stderr
    finding = cis_2_13(daemon)
    assert finding.status is Status.PASS, finding.message
    assert finding.evidence["probes"][0]["kind"] == "managed" and finding.evidence["probes"][0]["enabled"] is True

    subprocess.run(["docker", "-H", daemon.host, "plugin", "disable", "-f", PLUGIN], check=True, capture_output=True)
    with closing(daemon.client()) as client:
        assert client.info()["Plugins"]["Authorization"] == [PLUGIN]  # docker info still lists it (measured)
    passed = create(daemon, "--privileged")
    assert passed.returncode == 0, "with the plugin disabled, nothing judges the request any more"
    finding = cis_2_13(daemon)
    assert finding.status is Status.FAIL and f"the managed plugin {PLUGIN} is disabled" in finding.message

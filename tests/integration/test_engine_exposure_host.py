"""This host's engine and kernel, collected for real and judged against the real advisory records."""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys
from pathlib import Path

import docker

from portcullis.collect.audit import collect_facts
from portcullis.collect.engine import connect
from portcullis.model.vuln import OsRelease
from portcullis.vuln.db import SourceInfo, VulnDB, now_iso, rebuild
from portcullis.vuln.engine import judge_host
from portcullis.vuln.sources import load_path

VULN_DATA = Path(__file__).parents[1] / "vuln" / "data"


def _dpkg_version(package: str) -> str:
    done = subprocess.run(["dpkg-query", "-W", "-f=${Version}", package], capture_output=True, text=True, check=True)
    return done.stdout


def _engine_db(tmp_path: Path) -> Path:
    """The runc records alone: a second Debian tracker file would replace them (one source per feed name)."""
    path = tmp_path / "vuln.db"
    with rebuild(path) as db:
        for feed in load_path(VULN_DATA / "engine"):
            db.replace_source(SourceInfo(feed.name, str(VULN_DATA / "engine"), now_iso()), feed.advisories)
    return path


def test_real_engine_components_and_kernel(engine: docker.DockerClient, tmp_path: Path) -> None:
    facts = collect_facts(connect())
    components = {c.name: c for c in facts.host.engine_components or []}
    runc = components["runc"]
    # the package and version are dpkg's own
    assert runc.package == "runc" and runc.package_version == _dpkg_version("runc")
    assert components["dockerd"].package == "docker.io"
    assert components["containerd-shim-runc-v2"].package == "containerd"
    assert runc.upstream_version, "the engine's /version names runc's version"

    path = _engine_db(tmp_path)
    os_release = facts.host.os_release
    release = OsRelease(
        id=os_release["ID"], version_id=os_release["VERSION_ID"], codename=os_release["VERSION_CODENAME"]
    )
    kernel = facts.host.kernel_build
    assert kernel is not None and kernel.release == facts.host.kernel
    with VulnDB.open(path) as db:
        judged = judge_host(list(components.values()), kernel, release, db)

    # runc's changelog says whether Debian's revision carries the CVE-2024-21626 fix; the verdict must agree
    changelog = gzip.decompress(Path("/usr/share/doc/runc/changelog.Debian.gz").read_bytes()).decode()
    carries_fix = "CVE-2024-21626" in changelog
    runc_hits = [e for e in judged.exposures if e.component == "runc" and e.advisory == "CVE-2024-21626"]
    assert bool(runc_hits) is not carries_fix, runc_hits
    if kernel.package is None:  # this VM boots a kernel no package installed: a person judges it
        (unjudged,) = [u for u in judged.unjudged if u.component == "kernel"]
        assert unjudged.evidence["build"] == Path("/proc/version").read_text().strip()
        assert "CVE-2022-0847" in unjudged.evidence


def test_audit_reports_this_hosts_engine_against_the_database(engine: docker.DockerClient, tmp_path: Path) -> None:
    """`portcullis audit --db` on the real engine: this host's runc is judged by its Debian package version."""
    path = _engine_db(tmp_path)
    command = [sys.executable, "-m", "portcullis", "audit", "--no-store", "--select", "DKR-ENGINE", "-f", "json"]
    done = subprocess.run([*command, "--db", str(path)], capture_output=True, text=True, timeout=300, check=False)
    findings = {f["rule_id"]: f for f in json.loads(done.stdout)["findings"]}
    changelog = gzip.decompress(Path("/usr/share/doc/runc/changelog.Debian.gz").read_bytes()).decode()
    components = findings["DKR-ENGINE-001"]
    if "CVE-2024-21626" in changelog:  # Debian's revision carries the fix: nothing applies
        assert (components["status"], done.returncode) == ("pass", 0), components["message"]
        assert components["evidence"]["components"]["runc"] == _dpkg_version("runc")
    else:
        assert components["status"] == "fail" and components["evidence"]["installed"] == _dpkg_version("runc")
    assert components["evidence"]["database"] == str(path)
    kernel = findings["DKR-ENGINE-002"]
    owner = subprocess.run(
        ["dpkg-query", "-S", f"/boot/vmlinuz-{os.uname().release}"], capture_output=True, check=False
    )
    if owner.returncode != 0:  # a kernel no package installed (this VM's): a person judges it, with the build
        assert kernel["status"] == "manual" and kernel["evidence"]["build"] == Path("/proc/version").read_text().strip()
    else:
        assert kernel["status"] in ("pass", "fail"), kernel["message"]

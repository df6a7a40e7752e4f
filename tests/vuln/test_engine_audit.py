"""The audit pipeline matches the host's engine components and kernel against a real-data database and the
DKR-ENGINE rules report the verdicts: this host's recorded packages, one older runc, no database, a stale one."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from vulndata import DATA, build_db

from portcullis.model.facts import EngineComponent, Facts, HostFacts, KernelBuild
from portcullis.model.findings import Finding, Severity, Status
from portcullis.pipelines.audit import audit_report
from portcullis.pipelines.errors import VulnerabilityInputError
from portcullis.pipelines.exposure import ExposureOptions

ENGINE = ("DKR-ENGINE-001", "DKR-ENGINE-002")
BASELINE = Path(__file__).parents[1] / "rules" / "baseline.json"
BOOKWORM = {"ID": "debian", "VERSION_ID": "12", "VERSION_CODENAME": "bookworm"}
# this machine's engine packages as collected (dpkg), and its kernel, which no package installed
CONTAINERD = "1.6.20~ds1-1+deb12u3"
HOST_COMPONENTS = [
    EngineComponent(
        name="containerd",
        path="/usr/bin/containerd",
        package="containerd",
        package_version=CONTAINERD,
        source="containerd",
        source_version=CONTAINERD,
        upstream_version="1.6.20~ds1",
    ),
    EngineComponent(
        name="dockerd",
        path="/usr/sbin/dockerd",
        package="docker.io",
        package_version="20.10.24+dfsg1-1+deb12u1+b6",
        source="docker.io",
        source_version="20.10.24+dfsg1-1+deb12u1",
        upstream_version="20.10.24+dfsg1",
    ),
    EngineComponent(
        name="runc",
        path="/usr/sbin/runc",
        package="runc",
        package_version="1.1.5+ds1-1+deb12u1",
        source="runc",
        source_version="1.1.5+ds1-1+deb12u1",
        upstream_version="1.1.5+ds1",
    ),
]
CUSTOM_KERNEL = KernelBuild(release="6.18.44-fc-v1147", build="Linux version 6.18.44-fc-v1147 (builder@sandboxing)")


@pytest.fixture(scope="module")
def db_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    # the runc records alone: a second tracker file would replace the first (one source per feed name)
    return build_db(tmp_path_factory.mktemp("enginedb") / "vuln.db", DATA / "engine")


def _facts(components: list[EngineComponent], kernel: KernelBuild | None = CUSTOM_KERNEL) -> Facts:
    """The rule fixtures' baseline (a local engine) with these engine binaries and kernel."""
    baseline = json.loads(BASELINE.read_text())
    facts = Facts.model_validate({k: v for k, v in baseline.items() if not k.startswith("_")})
    host = HostFacts(hostname="vm", os_release=BOOKWORM, engine_components=components, kernel_build=kernel)
    return facts.model_copy(update={"host": host})


def _engine_findings(facts: Facts, options: ExposureOptions) -> dict[str, list[Finding]]:
    report = audit_report(facts, list(ENGINE), [], None, exposure=options)
    return {rule: [f for f in report.findings if f.rule_id == rule] for rule in ENGINE}


def test_this_hosts_packages_pass_because_debian_backported_the_runc_fix(db_path: Path) -> None:
    found = _engine_findings(_facts(HOST_COMPONENTS), ExposureOptions(db_path=db_path))
    (components,) = found["DKR-ENGINE-001"]
    assert components.status is Status.PASS, components.message
    assert components.evidence["components"]["runc"] == "1.1.5+ds1-1+deb12u1"
    assert components.evidence["database"] == str(db_path)
    (kernel,) = found["DKR-ENGINE-002"]  # this VM's kernel: no package vouches for it
    assert kernel.status is Status.MANUAL
    assert kernel.evidence["build"] == CUSTOM_KERNEL.build and "CVE-2022-0847" in kernel.evidence


def test_runc_before_debians_fix_is_one_failure_naming_versions_advisory_and_restart(db_path: Path) -> None:
    old = HOST_COMPONENTS[2].model_copy(update={"package_version": "1.1.5+ds1-1", "source_version": "1.1.5+ds1-1"})
    found = _engine_findings(_facts([*HOST_COMPONENTS[:2], old]), ExposureOptions(db_path=db_path))
    (failure,) = found["DKR-ENGINE-001"]
    assert failure.status is Status.FAIL
    evidence = failure.evidence
    assert (evidence["component"], evidence["installed"], evidence["advisory"]) == (
        "runc",
        "1.1.5+ds1-1",
        "CVE-2024-21626",
    )
    assert evidence["fixed_version"] == "1.1.5+ds1-1+deb12u1" and evidence["fix_state"] == "fixed"
    assert "runc runs anew for each container start" in evidence["restart"]
    assert failure.severity is Severity.MEDIUM  # the tracker gives no urgency yet: assumed medium, never info
    assert failure.message.startswith("runc 1.1.5+ds1-1: CVE-2024-21626 fixed in 1.1.5+ds1-1+deb12u1")


def test_an_upstream_runc_build_is_matched_by_its_go_module(db_path: Path) -> None:
    upstream = EngineComponent(name="runc", path="/usr/local/sbin/runc", upstream_version="1.1.5")
    (failure,) = _engine_findings(_facts([upstream], None), ExposureOptions(db_path=db_path))["DKR-ENGINE-001"]
    assert failure.status is Status.FAIL
    assert failure.evidence["advisory"] == "GHSA-xr7r-f8xq-vfvv" and "CVE-2024-21626" in failure.evidence["aliases"]
    assert failure.evidence["matched_by"] == "upstream github.com/opencontainers/runc"


def test_packages_no_feed_in_the_database_covers_are_left_to_a_person(db_path: Path, tmp_path: Path) -> None:
    """No match proves nothing when the database lacks the host's distribution: manual, never pass."""
    jammy = _facts(HOST_COMPONENTS).model_copy(deep=True)
    jammy.host.os_release = {"ID": "ubuntu", "VERSION_ID": "22.04", "VERSION_CODENAME": "jammy"}
    found = _engine_findings(jammy, ExposureOptions(db_path=db_path))["DKR-ENGINE-001"]
    assert [f.status for f in found] == [Status.MANUAL] * 3
    assert "no advisory feed for ubuntu packages" in found[0].message
    npm_only = build_db(tmp_path / "npm.db", DATA / "osv-npm")
    found = _engine_findings(_facts(HOST_COMPONENTS), ExposureOptions(db_path=npm_only))["DKR-ENGINE-001"]
    assert {f.status for f in found} == {Status.MANUAL}
    assert "no Debian security tracker feed" in found[0].message


def test_without_a_database_the_rules_skip_and_a_gate_fails_closed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PORTCULLIS_DB", str(tmp_path / "absent.db"))
    facts = _facts(HOST_COMPONENTS)
    ungated = _engine_findings(facts, ExposureOptions())
    assert [f.status for rule in ENGINE for f in ungated[rule]] == [Status.SKIP, Status.SKIP]
    assert "no vulnerability database" in ungated["DKR-ENGINE-001"][0].message
    gated = _engine_findings(facts, ExposureOptions(gated=True))
    assert [f.status for rule in ENGINE for f in gated[rule]] == [Status.ERROR, Status.ERROR]


def test_a_stale_database_is_judged_with_a_warning_but_fails_closed_under_a_gate(db_path: Path) -> None:
    barely = 1e-9  # days: the freshly built database is older than that
    found = _engine_findings(_facts(HOST_COMPONENTS), ExposureOptions(db_path=db_path, max_age_days=barely))
    assert found["DKR-ENGINE-001"][0].status is Status.PASS
    assert "older than --db-max-age" in found["DKR-ENGINE-001"][0].evidence["database_warning"]
    gated = _engine_findings(_facts(HOST_COMPONENTS), ExposureOptions(db_path=db_path, max_age_days=barely, gated=True))
    assert gated["DKR-ENGINE-001"][0].status is Status.ERROR


def test_no_vulns_and_unselected_rules_never_open_the_database(tmp_path: Path) -> None:
    facts = _facts(HOST_COMPONENTS)
    missing = ExposureOptions(db_path=tmp_path / "absent.db")
    (skipped,) = _engine_findings(facts, ExposureOptions(enabled=False, db_path=missing.db_path))["DKR-ENGINE-001"]
    assert skipped.status is Status.SKIP and "--no-vulns" in skipped.message
    report = audit_report(facts, ["DKR-HOST-012"], [], None, exposure=missing)  # no DKR-ENGINE rule selected
    assert {f.rule_id for f in report.findings} == {"DKR-HOST-012"}
    with pytest.raises(VulnerabilityInputError, match=r"absent\.db"):  # selected, the named database must open
        audit_report(facts, ["DKR-ENGINE-001"], [], None, exposure=missing)


def _audit(*args: str, db: Path) -> subprocess.CompletedProcess[str]:
    """The CLI with the default database moved to `db` (PORTCULLIS_DB), so a test never reads the user's."""
    command = [sys.executable, "-m", "portcullis", "audit", "--no-store", "--select", "DKR-ENGINE", *args]
    environment = {**os.environ, "PORTCULLIS_DB": str(db)}
    return subprocess.run(command, capture_output=True, text=True, timeout=120, check=False, env=environment)


def test_cli_exit_codes_follow_the_gate(db_path: Path, tmp_path: Path) -> None:
    old = HOST_COMPONENTS[2].model_copy(update={"package_version": "1.1.5+ds1-1", "source_version": "1.1.5+ds1-1"})
    exposed, clean, absent = tmp_path / "exposed.json", tmp_path / "clean.json", tmp_path / "absent.db"
    exposed.write_text(_facts([old]).to_json())
    clean.write_text(_facts(HOST_COMPONENTS).to_json())
    assert _audit("--facts-in", str(exposed), "--fail-on", "medium", db=db_path).returncode == 2
    assert _audit("--facts-in", str(clean), "--fail-on", "medium", db=db_path).returncode == 0
    named_missing = _audit("--facts-in", str(clean), "--db", str(absent), db=db_path)
    assert named_missing.returncode == 1 and named_missing.stderr.startswith("portcullis: error: no vulnerability")
    # no database at all: offline and ungated the audit works and says why it skipped; gated it fails closed
    ungated = _audit("--facts-in", str(clean), "-f", "json", db=absent)
    assert ungated.returncode == 0, ungated.stderr
    assert {f["status"] for f in json.loads(ungated.stdout)["findings"]} == {"skip"}
    assert _audit("--facts-in", str(clean), "--fail-on", "critical", db=absent).returncode == 1
    assert _audit("--facts-in", str(clean), "--fail-on", "critical", "--no-vulns", db=absent).returncode == 0

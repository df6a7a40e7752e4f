"""Engine components and the kernel against real advisory records: by distribution package where one owns the
binary (Debian backports fixes under the same upstream number), by upstream version otherwise."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from vulndata import BOOKWORM, DATA, build_db

from portcullis.model.facts import EngineComponent, KernelBuild
from portcullis.model.vuln import FixState
from portcullis.vuln.db import VulnDB
from portcullis.vuln.engine import judge_host

ENGINE_DATA = DATA / "engine"


@pytest.fixture(scope="module")
def engine_db(tmp_path_factory: pytest.TempPathFactory) -> Iterator[VulnDB]:
    path = build_db(tmp_path_factory.mktemp("enginedb") / "vuln.db", ENGINE_DATA)
    with VulnDB.open(path) as db:
        yield db


def _runc(version: str | None, upstream: str | None = "1.1.5") -> EngineComponent:
    packaged = version is not None
    return EngineComponent(
        name="runc",
        path="/usr/sbin/runc",
        package="runc" if packaged else None,
        package_version=version,
        source="runc" if packaged else None,
        source_version=version,
        upstream_version=upstream,
    )


def test_debian_revision_with_the_backported_fix_is_not_reported(engine_db: VulnDB) -> None:
    # 1.1.5 < 1.1.12 upstream, but Debian's +deb12u1 carries the fix
    judged = judge_host([_runc("1.1.5+ds1-1+deb12u1")], None, BOOKWORM, engine_db)
    assert judged.exposures == []
    assert judged.unjudged == []


def test_the_same_upstream_number_without_a_package_is_reported(engine_db: VulnDB) -> None:
    judged = judge_host([_runc(None, "1.1.5")], None, BOOKWORM, engine_db)
    (exposure,) = judged.exposures
    assert exposure.advisory == "GHSA-xr7r-f8xq-vfvv" and "CVE-2024-21626" in exposure.aliases
    assert (exposure.installed, exposure.fixed_version) == ("v1.1.5", "1.1.12")
    assert exposure.matched_by == "upstream github.com/opencontainers/runc"


def test_debian_revision_before_the_fix_is_reported(engine_db: VulnDB) -> None:
    judged = judge_host([_runc("1.1.5+ds1-1")], None, BOOKWORM, engine_db)
    (exposure,) = judged.exposures
    assert (exposure.component, exposure.installed, exposure.advisory) == ("runc", "1.1.5+ds1-1", "CVE-2024-21626")
    assert exposure.fix_state is FixState.FIXED and exposure.fixed_version == "1.1.5+ds1-1+deb12u1"
    assert exposure.matched_by == "debian package runc (source runc)"
    assert "runc runs anew" in exposure.restart


def test_upstream_build_at_the_fixed_version_is_not_reported(engine_db: VulnDB) -> None:
    assert judge_host([_runc(None, "1.1.12")], None, BOOKWORM, engine_db).exposures == []


def test_a_binary_without_package_or_version_is_unjudged(engine_db: VulnDB) -> None:
    judged = judge_host([_runc(None, None)], None, BOOKWORM, engine_db)
    (unjudged,) = judged.unjudged
    assert unjudged.component == "runc" and unjudged.evidence == {"path": "/usr/sbin/runc"}


def test_custom_kernel_is_left_to_a_person_with_the_evidence(engine_db: VulnDB) -> None:
    kernel = KernelBuild(release="6.18.44-fc-v1147", build="Linux version 6.18.44-fc-v1147 (builder@sandboxing)")
    judged = judge_host([], kernel, BOOKWORM, engine_db)
    assert judged.exposures == []
    (unjudged,) = judged.unjudged
    assert unjudged.component == "kernel" and "provenance cannot be known" in unjudged.reason
    assert unjudged.evidence["release"] == "6.18.44-fc-v1147"
    assert {"CVE-2022-0492", "CVE-2022-0847", "CVE-2022-0185"} <= unjudged.evidence.keys()


def test_packaged_component_on_an_unknown_release_is_unjudged(engine_db: VulnDB) -> None:
    judged = judge_host([_runc("1.1.5+ds1-1")], None, None, engine_db)
    assert judged.exposures == [] and [u.component for u in judged.unjudged] == ["runc"]

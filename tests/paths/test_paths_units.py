"""Attack path templates over facts and inside signals recorded from real containers (record_paths_facts.py)."""

from __future__ import annotations

import json
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest

from paths.expected import FROM_FACTS, SAFE_ROLES, WITH_INSIDE
from portcullis.checks.attack_paths import configured_bounding_set, derive_paths
from portcullis.inside.analyse import capability_reach
from portcullis.model.facts import ApiProbe, BindScope, Facts, ProbeOutcome
from portcullis.model.paths import Certainty, EntryKind, PathsReport
from portcullis.report.paths_graph import render_html, render_svg

DATA = Path(__file__).parent / "data"
PREFIX = "pcpaths-"


@pytest.fixture(scope="module")
def facts() -> Facts:
    return Facts.from_json((DATA / "facts.json").read_text())


@pytest.fixture(scope="module")
def signals() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((DATA / "inside.json").read_text())
    return loaded


def summary(report: PathsReport) -> set[tuple[str, str, str, str]]:
    return {(p.template, p.target.removeprefix(PREFIX), p.entry.kind.value, p.certainty.value) for p in report.paths}


def changed(facts: Facts, **update: Any) -> Facts:
    return facts.model_copy(deep=True, update=update)


def test_every_template_from_the_recorded_facts(facts: Facts) -> None:
    assert summary(derive_paths(facts)) == FROM_FACTS


def test_inside_signals_confirm_the_setuid_route(facts: Facts, signals: dict[str, Any]) -> None:
    report = derive_paths(facts, signals)
    assert summary(report) == WITH_INSIDE
    setuid = next(p for p in report.paths if p.target == PREFIX + "nonroot-setuid")
    assert "setuid-root" in setuid.steps[0].evidence and "no_new_privs is off" in setuid.steps[0].evidence


def test_look_alikes_have_no_path(facts: Facts, signals: dict[str, Any]) -> None:
    targets = {p.target.removeprefix(PREFIX) for p in derive_paths(facts, signals).paths}
    assert not targets & set(SAFE_ROLES)


def test_the_fake_socket_is_a_regular_file_on_the_host(facts: Facts) -> None:
    assert facts.host.mount_sources is not None
    kinds = {path.rsplit("/", 1)[-1]: stat.kind for path, stat in facts.host.mount_sources.items()}
    assert kinds["docker.sock"] in ("socket", "file")
    fake = [stat for path, stat in facts.host.mount_sources.items() if path.startswith("/tmp/pcpaths-fake")]
    assert [stat.kind for stat in fake] == ["file"]


def test_unexamined_mount_sources_leave_socket_paths_possible(facts: Facts) -> None:
    blind = changed(facts, host=facts.host.model_copy(update={"mount_sources": None}))
    report = derive_paths(blind)
    sockets = {p.target.removeprefix(PREFIX): p.certainty for p in report.paths if p.template == "docker-socket"}
    # the fake socket cannot be told from a real one any more: it fails closed as 'possible'
    assert sockets == {
        "sock-published": Certainty.POSSIBLE,
        "sock-ro": Certainty.POSSIBLE,
        "sock-fake": Certainty.POSSIBLE,
        "host-root-rw": Certainty.CONFIRMED,  # the host's own /run/docker.sock stat decides the directory mount
    }
    assert any("not examined" in note for note in report.notes)


def test_published_port_is_the_most_exposed_entry(facts: Facts) -> None:
    report = derive_paths(facts)
    first = report.paths[0]
    assert (first.template, first.target, first.entry.kind) == ("docker-socket", PREFIX + "sock-published", "network")
    assert first.steps[0].finding == "CIS-5.14"
    assert [p.exposure for p in report.paths] == sorted((p.exposure for p in report.paths), reverse=True)


def test_socket_mounted_read_only_still_counts(facts: Facts) -> None:
    path = next(p for p in derive_paths(facts).paths if p.target == PREFIX + "sock-ro")
    assert path.entry.kind is EntryKind.CONTAINER_PROCESS
    assert "read-only, which does not stop connect()" in path.steps[0].evidence
    assert path.fix == "remove the mount of /var/run/docker.sock"


def test_cgroup_v2_breaks_the_release_agent_path(facts: Facts) -> None:
    info = facts.engine.info.model_copy(update={"cgroup_version": "2"})
    v2 = changed(facts, engine=facts.engine.model_copy(update={"info": info}))
    assert "cgroup-release-agent" not in {p.template for p in derive_paths(v2).paths}


def test_userns_remap_leaves_only_the_engine_api_routes(facts: Facts) -> None:
    info = facts.engine.info.model_copy(update={"security_options": ["name=seccomp,profile=default", "name=userns"]})
    remapped = changed(facts, engine=facts.engine.model_copy(update={"info": info}))
    assert {p.template for p in derive_paths(remapped).paths} == {"docker-socket", "privileged"}


def probe(bind: BindScope, outcome: ProbeOutcome, address: str = "0.0.0.0:2375") -> ApiProbe:
    return ApiProbe(address=address, bind=bind, connect_to="127.0.0.1:2375", sources=["dockerd -H"], outcome=outcome)


@pytest.mark.parametrize(
    ("bind", "outcome", "entry"),
    [
        (BindScope.ALL, ProbeOutcome.PLAIN_HTTP, EntryKind.NETWORK),
        (BindScope.ADDRESS, ProbeOutcome.TLS_WITHOUT_CLIENT_CERT, EntryKind.NETWORK),
        (BindScope.LOOPBACK, ProbeOutcome.PLAIN_HTTP, EntryKind.HOST_LOCAL),
        (BindScope.ADDRESS, ProbeOutcome.PLAIN_HTTP, EntryKind.CONTAINER_NETWORK),
        (BindScope.ALL, ProbeOutcome.CLIENT_CERT_REQUIRED, None),
        (BindScope.ALL, ProbeOutcome.REFUSED, None),
    ],
)
def test_tcp_api_without_tls(facts: Facts, bind: BindScope, outcome: ProbeOutcome, entry: EntryKind | None) -> None:
    # an address bind on the default bridge's gateway (recorded: 172.17.0.1) is what containers reach the host at
    address = "172.17.0.1:2375" if entry is EntryKind.CONTAINER_NETWORK else "0.0.0.0:2375"
    report = derive_paths(changed(facts, api_probes=[probe(bind, outcome, address)]))
    api = [p for p in report.paths if p.template == "tcp-api-no-tls"]
    assert [p.entry.kind for p in api] == ([entry] if entry else [])
    if entry is EntryKind.CONTAINER_NETWORK:
        assert api[0].entry.description == "172.17.0.1:2375: every container on bridge network bridge"
    if entry is EntryKind.NETWORK:
        assert report.paths[0].template == "tcp-api-no-tls"  # same exposure as the published socket, shorter chain
        assert api[0].steps[0].finding == "CIS-2.8"


def test_bounding_set_from_the_configuration(facts: Facts) -> None:
    by_role = {c.short_name.removeprefix(PREFIX): c for c in facts.containers}
    assert configured_bounding_set(by_role["safe"]) == set()
    assert {"NET_ADMIN", "SYS_PTRACE", "SYS_MODULE", "CHOWN"} <= configured_bounding_set(by_role["nonroot-nnp"])
    assert len(configured_bounding_set(by_role["privileged"])) == 41


def test_bounding_set_matches_what_the_kernel_reports(facts: Facts, signals: dict[str, Any]) -> None:
    """The configured set (facts) and the CapBnd read from each container's /proc agree."""
    for container in facts.containers:
        seen = signals.get(container.short_name)
        if seen is None:
            continue  # not started
        kernel = {entry["capability"] for entry in capability_reach(seen) or []}
        assert configured_bounding_set(container) == kernel, container.short_name


def test_reachability_reasons_for_a_non_root_no_new_privs_container(signals: dict[str, Any]) -> None:
    reach = {r["capability"]: r for r in capability_reach(signals[PREFIX + "nonroot-nnp"]) or []}
    for cap in ("NET_ADMIN", "SYS_PTRACE", "SYS_MODULE"):
        assert reach[cap]["reachable"] is False
        assert reach[cap]["via"] == "engine_api_privileged"
        assert "no_new_privs is set" in reach[cap]["why"] and "docker exec --privileged" in reach[cap]["why"]
    root = {r["capability"]: r for r in capability_reach(signals[PREFIX + "sys-admin"]) or []}
    assert root["SYS_ADMIN"] == {
        "capability": "SYS_ADMIN",
        "reachable": True,
        "why": "in the effective set",
        "via": "process",
    }


def test_the_graph_escapes_names_and_is_well_formed(facts: Facts) -> None:
    report = derive_paths(facts)
    report.paths[0].target = "<script>alert(1)</script>&"
    svg = render_svg(report)
    root = ET.fromstring(svg)
    assert root.tag.endswith("svg")
    assert "<script" not in svg and "&lt;script&gt;" in svg
    texts = [el.text or "" for el in root.iter("{http://www.w3.org/2000/svg}text")]
    assert any("<script>alert(1)</script>&" in text for text in texts)
    assert sum(1 for text in texts if text.startswith("ENTRY (")) == len(report.paths)
    html = render_html(report)
    assert html.startswith("<!DOCTYPE html>") and "<script" not in html


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "portcullis", "paths", "--facts-in", str(DATA / "facts.json"), *args],
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_cli_gate_formats_and_bad_input(tmp_path: Path) -> None:
    assert run_cli("--fail-on", "network").returncode == 2
    assert run_cli("--fail-on", "none").returncode == 0
    shown = run_cli()
    assert shown.returncode == 0 and "1. Engine socket mounted in pcpaths-sock-published" in shown.stdout
    as_json = json.loads(run_cli("-f", "json").stdout)
    assert len(as_json["paths"]) == len(FROM_FACTS)
    svg = tmp_path / "paths.svg"
    assert run_cli("-o", str(svg)).returncode == 0
    assert ET.fromstring(svg.read_text()).tag.endswith("svg")
    mixed = run_cli("--inside")
    assert mixed.returncode == 1
    assert mixed.stderr.strip().splitlines() == [
        "portcullis: error: --inside reads running containers; it cannot be combined with --facts-in"
    ]


def test_root_without_capabilities_gains_them_only_without_no_new_privs(signals: dict[str, Any]) -> None:
    """uid 0 whose effective and permitted sets are empty: an execve regains the bounding set unless nnp is set."""
    base = signals[PREFIX + "sys-admin"]
    emptied = dict(base, caps=dict(base["caps"], CapEff="0000000000000000", CapPrm="0000000000000000"))
    gains = {r["capability"]: r for r in capability_reach(dict(emptied, no_new_privs=False)) or []}
    assert gains["SYS_ADMIN"]["reachable"] is True and gains["SYS_ADMIN"]["why"].startswith("uid 0 without")
    blocked = {r["capability"]: r for r in capability_reach(dict(emptied, no_new_privs=True)) or []}
    assert (blocked["SYS_ADMIN"]["reachable"], blocked["SYS_ADMIN"]["via"]) == (False, "engine_api_privileged")


def test_setuid_programs_are_found_in_the_debian_image(signals: dict[str, Any]) -> None:
    found = {f["path"] for f in signals[PREFIX + "nonroot-setuid"]["privilege_files"] if f["setuid_root"]}
    assert {"/usr/bin/su", "/usr/bin/passwd"} <= found
    assert signals[PREFIX + "safe"]["privilege_files"] == []  # busybox: not one setuid program


@pytest.mark.parametrize("inside", [False, True])
def test_no_new_privs_leaves_only_a_privileged_exec(facts: Facts, signals: dict[str, Any], inside: bool) -> None:
    report = derive_paths(facts, signals if inside else None)
    (path,) = [p for p in report.paths if p.target == PREFIX + "nonroot-nnp"]
    assert path.entry.description == f"`docker exec --privileged {PREFIX}nonroot-nnp` through the engine API"
    reach = {r.capability: r for r in report.capabilities[PREFIX + "nonroot-nnp"]}
    assert (reach["SYS_MODULE"].reachable, reach["SYS_MODULE"].api_route) == (False, "docker exec --privileged")

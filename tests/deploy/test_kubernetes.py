"""deploy/kubernetes/ against the Kubernetes JSON schemas (kubernetes-validate bundles them; strict: an unknown field
is an error), offline: there is no cluster here. Then what a schema cannot see: selectors that match their pods,
references between the files, the agent's flags as `portcullis agent` takes them, and its host access."""

from __future__ import annotations

import copy
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import kubernetes_validate  # type: ignore[import-untyped]
import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
KUBERNETES = REPO / "deploy" / "kubernetes"
VERSION = "1.37"


def _documents() -> list[dict[str, Any]]:
    return [doc for path in sorted(KUBERNETES.glob("*.yaml")) for doc in yaml.safe_load_all(path.read_text()) if doc]


def _one(kind: str, name: str) -> dict[str, Any]:
    (found,) = [d for d in _documents() if d["kind"] == kind and d["metadata"]["name"] == name]
    return found


@pytest.mark.parametrize("doc", _documents(), ids=lambda d: f"{d['kind']}/{d['metadata']['name']}")
def test_every_manifest_is_valid_against_the_strict_schema(doc: dict[str, Any]) -> None:
    kubernetes_validate.validate(doc, VERSION, strict=True)


def test_the_strict_schema_catches_a_misspelt_field() -> None:
    broken = copy.deepcopy(_one("DaemonSet", "portcullis-agent"))
    broken["spec"]["template"]["spec"]["hostPid"] = True  # hostPID
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, VERSION, strict=True)


def test_the_fleet_is_all_there_and_its_selectors_match() -> None:
    kinds = {(d["kind"], d["metadata"]["name"]) for d in _documents()}
    wanted = {
        ("DaemonSet", "portcullis-agent"),
        ("Deployment", "portcullis-server"),
        ("Service", "portcullis-server"),
        ("StatefulSet", "portcullis-db"),
        ("Service", "portcullis-db"),
        ("Namespace", "portcullis"),
    }
    assert wanted <= kinds
    for doc in _documents():
        if doc["kind"] in ("DaemonSet", "Deployment", "StatefulSet"):
            labels = doc["spec"]["template"]["metadata"]["labels"]
            assert doc["spec"]["selector"]["matchLabels"].items() <= labels.items()
    pods = [d["spec"]["template"]["metadata"]["labels"] for d in _documents() if "template" in d.get("spec", {})]
    for service in (d for d in _documents() if d["kind"] == "Service"):
        assert any(service["spec"]["selector"].items() <= labels.items() for labels in pods), service
    database = _one("StatefulSet", "portcullis-db")
    assert database["spec"]["serviceName"] == "portcullis-db"
    server = _one("Deployment", "portcullis-server")["spec"]["template"]["spec"]["containers"][0]
    store = next(e["value"] for e in server["env"] if e["name"] == "PORTCULLIS_STORE")
    assert "@portcullis-db:5432/" in store and ":" not in store.split("@")[0].removeprefix("postgresql://")


def test_the_agent_reads_the_host_read_only_and_is_never_privileged() -> None:
    pod = _one("DaemonSet", "portcullis-agent")["spec"]["template"]["spec"]
    (agent,) = pod["containers"]
    assert pod["hostPID"] is True and pod["hostNetwork"] is True
    context = agent["securityContext"]
    assert "privileged" not in context and context["allowPrivilegeEscalation"] is False
    assert "SYS_PTRACE" in context["capabilities"]["add"] and context["capabilities"]["drop"] == ["ALL"]
    host_volumes = {v["name"] for v in pod["volumes"] if "hostPath" in v}
    for mount in agent["volumeMounts"]:
        if mount["name"] in host_volumes and mount["name"] != "state":
            assert mount.get("readOnly") is True, mount
    assert {"name": "docker-socket", "mountPath": "/var/run/docker.sock", "readOnly": True} in agent["volumeMounts"]


def test_the_agents_flags_are_those_portcullis_agent_takes() -> None:
    (agent,) = _one("DaemonSet", "portcullis-agent")["spec"]["template"]["spec"]["containers"]
    assert agent["args"][0] == "agent"
    shown = subprocess.run(
        [sys.executable, "-m", "portcullis", "agent", "--help"], capture_output=True, text=True, timeout=60
    )
    assert shown.returncode == 0, shown.stderr
    known = set(re.findall(r"--[a-z][a-z-]+", shown.stdout))
    used = {arg.split("=")[0] for arg in agent["args"][1:]}
    assert used <= known, used - known
    assert {"--server", "--token-file", "--ca-bundle", "--spool-dir"} <= used

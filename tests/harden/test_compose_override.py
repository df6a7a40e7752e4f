"""Compose overrides: comments survive, base cap_add is replaced rather than extended, bad input is one line."""

from __future__ import annotations

from pathlib import Path

import pytest
from ruamel.yaml import YAML

from portcullis.harden import HardenError
from portcullis.harden.compose_override import load_service, merge_override, override_fields, service_container
from portcullis.harden.run_flags import MIB, RunProposal

PROPOSAL = RunProposal(tmpfs=("/data",), memory=64 * MIB, pids_limit=32, cpus=0.25, user="nobody").with_caps({"CHOWN"})

EXISTING = """\
# kept by the team: do not remove
services:
  web:
    # the image is pinned on purpose
    environment:
      MODE: prod  # production mode
  db:
    image: postgres
"""


def test_an_existing_override_keeps_its_comments_and_other_services() -> None:
    text = merge_override(EXISTING, "web", override_fields(PROPOSAL, {}))
    assert "# kept by the team: do not remove" in text
    assert "# the image is pinned on purpose" in text
    assert "MODE: prod  # production mode" in text
    document = YAML(typ="safe").load(text)
    web = document["services"]["web"]
    assert web["environment"] == {"MODE": "prod"}
    assert web["cap_drop"] == ["ALL"] and web["cap_add"] == ["CHOWN"]
    assert web["read_only"] is True and web["tmpfs"] == ["/data:rw,noexec,nosuid,nodev,size=64m"]
    assert web["security_opt"] == ["no-new-privileges:true"]
    assert (web["mem_limit"], web["pids_limit"], web["cpus"], web["user"]) == ("64m", 32, 0.25, "nobody")
    assert web["restart"] == "on-failure:5"
    assert document["services"]["db"] == {"image": "postgres"}


def test_base_capabilities_are_overridden_not_merged() -> None:
    text = merge_override(None, "web", override_fields(PROPOSAL, {"cap_add": ["NET_ADMIN"], "privileged": True}))
    assert "cap_add: !override" in text
    assert "privileged: false" in text


def test_a_new_override_starts_from_nothing() -> None:
    text = merge_override(None, "api", override_fields(PROPOSAL, {}))
    assert text.startswith("services:\n  api:\n")


def test_the_service_must_exist(tmp_path: Path) -> None:
    compose = tmp_path / "compose.yaml"
    compose.write_text("services:\n  web:\n    image: x\n")
    assert load_service(compose, "web") == {"image": "x"}
    with pytest.raises(HardenError, match="has no service 'api' \\(it has: web\\)"):
        load_service(compose, "api")
    compose.write_text("services: [\n")
    with pytest.raises(HardenError, match="is not valid YAML"):
        load_service(compose, "web")


def test_the_service_container_is_found_by_the_compose_labels(tmp_path: Path) -> None:
    compose = tmp_path / "compose.yaml"
    labels = {"com.docker.compose.service": "web", "com.docker.compose.project.config_files": str(compose)}
    listed = [
        {"Id": "other", "State": "running", "Labels": {**labels, "com.docker.compose.project.config_files": "/x.yml"}},
        {"Id": "stopped", "State": "exited", "Labels": labels},
        {"Id": "mine", "State": "running", "Labels": labels},
    ]
    assert service_container(listed, compose, "web") == "mine"
    with pytest.raises(HardenError, match="no running container of service 'db'"):
        service_container(listed, compose, "db")

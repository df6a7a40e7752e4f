"""A run proposal as a compose override for one service, merged into an existing override with its comments kept.

Compose merges override files into the base: lists such as cap_add are unioned, so an override alone cannot
take back a capability the base file adds. Where the base service already sets cap_add, the override uses the
`!override` tag (Compose 2.24.4 and later) to replace the list instead of extending it.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import YAMLError
from ruamel.yaml.tag import Tag

from portcullis.harden import HardenError
from portcullis.harden.run_flags import MIB, TMPFS_OPTIONS, RunProposal

SERVICE_LABEL = "com.docker.compose.service"
CONFIG_FILES_LABEL = "com.docker.compose.project.config_files"
WORKING_DIR_LABEL = "com.docker.compose.project.working_dir"


def _yaml() -> YAML:
    yaml = YAML()  # round-trip: comments, key order and quoting survive
    yaml.preserve_quotes = True
    yaml.indent(mapping=2, sequence=4, offset=2)
    return yaml


def load_service(compose_file: Path, service: str) -> dict[str, Any]:
    """The service's own mapping in the compose file (to see what an override must replace rather than extend)."""
    try:
        document = _yaml().load(compose_file.read_text(encoding="utf-8"))
    except OSError as exc:
        raise HardenError(f"cannot read {compose_file}: {exc.strerror}") from None
    except YAMLError as exc:
        raise HardenError(f"{compose_file} is not valid YAML: {str(exc).splitlines()[0]}") from None
    services = document.get("services") if isinstance(document, dict) else None
    if not isinstance(services, dict):
        raise HardenError(f"{compose_file} has no services")
    if service not in services:
        raise HardenError(f"{compose_file} has no service {service!r} (it has: {', '.join(map(str, services))})")
    found = services[service]
    return dict(found) if isinstance(found, dict) else {}


def service_container(containers: list[dict[str, Any]], compose_file: Path, service: str) -> str:
    """The id of the running container of `service` started from `compose_file` (from `GET /containers/json`)."""
    path = str(compose_file.resolve())
    directory = str(compose_file.resolve().parent)
    matches = []
    for container in containers:
        labels = container.get("Labels") or {}
        if labels.get(SERVICE_LABEL) != service:
            continue
        files = [f.strip() for f in labels.get(CONFIG_FILES_LABEL, "").split(",") if f.strip()]
        if path in files or (not files and labels.get(WORKING_DIR_LABEL) == directory):
            matches.append(container)
    if not matches:
        raise HardenError(f"no running container of service {service!r} from {compose_file}: start it first")
    running = [c for c in matches if c.get("State") == "running"] or matches
    return str(running[0]["Id"])


def override_fields(proposal: RunProposal, base_service: dict[str, Any]) -> CommentedMap:
    fields = CommentedMap()
    fields["cap_drop"] = CommentedSeq(["ALL"])
    cap_add = CommentedSeq(list(proposal.cap_add))
    if base_service.get("cap_add"):
        cap_add.yaml_set_ctag(Tag(suffix="!override"))
    fields["cap_add"] = cap_add
    if base_service.get("privileged"):
        fields["privileged"] = False
    if proposal.no_new_privileges:
        fields["security_opt"] = CommentedSeq(["no-new-privileges:true"])
    fields["read_only"] = proposal.read_only
    if proposal.read_only and proposal.tmpfs:
        fields["tmpfs"] = CommentedSeq([f"{path}:{TMPFS_OPTIONS}" for path in proposal.tmpfs])
    if proposal.user is not None:
        fields["user"] = proposal.user
    if proposal.memory:
        fields["mem_limit"] = f"{proposal.memory // MIB}m"
        fields["memswap_limit"] = f"{proposal.memory // MIB}m"
    if proposal.pids_limit:
        fields["pids_limit"] = proposal.pids_limit
    if proposal.cpus:
        fields["cpus"] = proposal.cpus
    fields["cpu_shares"] = proposal.cpu_shares
    fields["restart"] = proposal.restart
    fields.yaml_set_start_comment("hardened by portcullis: verified on a labelled copy of the running service")
    return fields


def merge_override(existing: str | None, service: str, fields: CommentedMap) -> str:
    """The override document: `existing` (comments kept) with the service's hardened keys set over it."""
    yaml = _yaml()
    document: Any = None
    if existing:
        try:
            document = yaml.load(existing)
        except YAMLError as exc:
            raise HardenError(f"the existing override is not valid YAML: {str(exc).splitlines()[0]}") from None
    if document is None:
        document = CommentedMap()
    if not isinstance(document, dict):
        raise HardenError("the existing override is not a YAML mapping")
    services = document.setdefault("services", CommentedMap())
    if services is None:
        services = document["services"] = CommentedMap()
    entry = services.get(service)
    if not isinstance(entry, dict):
        services[service] = fields
    else:
        for key, value in fields.items():
            entry[key] = value
    out = io.StringIO()
    yaml.dump(document, out)
    return out.getvalue()

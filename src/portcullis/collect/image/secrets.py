"""Secret detection over a path and the first bytes of a file. Cheap substring anchors gate the regexes."""

from __future__ import annotations

import json
import re

from portcullis.model.redaction import AWS_KEY_ID, GITHUB_TOKEN, PEM_PRIVATE, SLACK_TOKEN

# The same patterns that mask secrets in build lines and reports, compiled for bytes.
_PEM_PRIVATE = re.compile(PEM_PRIVATE.encode())
_AWS_KEY_ID = re.compile(AWS_KEY_ID.encode())
_GITHUB_TOKEN = re.compile(GITHUB_TOKEN.encode())
_SLACK_TOKEN = re.compile(SLACK_TOKEN.encode())

# Content checks: (gate, pattern, kind). A gate starts with literal text, which the regex engine finds by a fast
# scan; one alternation of all of them would be tried at every byte and costs about three times as much.
_CONTENT_RULES = (
    (re.compile(rb"PRIVATE KEY"), _PEM_PRIVATE, "private-key"),
    (re.compile(rb"A[KS]IA"), _AWS_KEY_ID, "aws-access-key-id"),
    (re.compile(rb"gh[pousr]_"), _GITHUB_TOKEN, "github-token"),
    (re.compile(rb"xox"), _SLACK_TOKEN, "slack-token"),
)
_ENV_EXAMPLES = (".example", ".sample", ".template", ".dist")


def path_kind(path: str) -> str | None:
    """A secret recognised by its path alone (any content), or None."""
    name = path.rpartition("/")[2]
    if name == ".env" or (name.startswith(".env.") and not name.endswith(_ENV_EXAMPLES)):
        return "dotenv-file"
    if name in (".netrc", "_netrc"):
        return "netrc"
    if name == ".git-credentials":
        return "git-credentials"
    if path.endswith("/.aws/credentials") or path == ".aws/credentials":
        return "aws-credentials-file"
    return None


def content_kind(path: str, head: bytes) -> str | None:
    """The kind of secret found in the first bytes of a file, or None."""
    if not head or b"\0" in head:  # binary files (ELF, archives, images): keys and tokens left behind are text
        return None
    for gate, pattern, kind in _CONTENT_RULES:
        if gate.search(head) and pattern.search(head):
            return kind
    if path.endswith(".json") and b"service_account" in head and b"private_key" in head:
        return "gcp-service-account-key"
    if path.endswith(".docker/config.json") and b"auths" in head and _docker_config_has_auth(head):
        return "docker-registry-credentials"
    return None


def _docker_config_has_auth(head: bytes) -> bool:
    try:
        config = json.loads(head)
    except ValueError:
        return False
    auths = config.get("auths") if isinstance(config, dict) else None
    if not isinstance(auths, dict):
        return False
    return any(isinstance(v, dict) and (v.get("auth") or v.get("identitytoken")) for v in auths.values())


def classify(path: str, head: bytes | None) -> str | None:
    return path_kind(path) or (content_kind(path, head) if head is not None else None)

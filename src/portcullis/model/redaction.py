"""Secret values written into build lines (ENV, ARG and RUN assignments, user:password in URLs): how they are
recognised, and how a line is masked before it appears in any report, snapshot or SBOM.

Pure functions, shared by the image reader (which masks the `created_by` line each layer carries) and the rules
(which detect these values in the history and quote build steps as evidence).
"""

from __future__ import annotations

import re

SECRET_NAME = re.compile(
    r"PASSWORD|PASSWD|PASSPHRASE|SECRET|TOKEN|CREDENTIAL|API_?KEY|ACCESS_?KEY|PRIVATE_?KEY|AUTH_?KEY|"
    r"SIGNING_?KEY|ENCRYPTION_?KEY|(?:^|_)PASS$|(?:^|_)PWD$",
    re.IGNORECASE,
)
# Names that hold a pointer to a secret (Docker secrets' *_FILE convention) or public material.
NOT_SECRET_NAME = re.compile(r"(?:_FILE|_PATH|_DIR)$|^PWD$|^OLDPWD$|GPG|PGP|PUBLIC", re.IGNORECASE)
ASSIGNMENT = re.compile(r"(?<![\w$])([A-Za-z_][A-Za-z0-9_]*)=(\"[^\"]*\"|'[^']*'|\S+)")
URL_CREDENTIALS = re.compile(r"\b[a-z][a-z0-9+.-]*://[^/\s:@]+:[^/\s@]+@", re.IGNORECASE)
_URL_PASSWORD = re.compile(r"(\b[a-z][a-z0-9+.-]*://[^/\s:@]+:)[^/\s@]+(@)", re.IGNORECASE)
MASK = "<redacted>"


def is_secret_assignment(name: str, value: str) -> bool:
    """Whether NAME=value puts a literal secret in the line (not an empty value or a $reference)."""
    value = value.strip("\"'")
    if not value or value.startswith("$"):
        return False
    return bool(SECRET_NAME.search(name)) and not NOT_SECRET_NAME.search(name)


def redact_line(text: str) -> str:
    """The line with every secret assignment's value and every URL password replaced by <redacted>."""

    def assignment(match: re.Match[str]) -> str:
        name, value = match.group(1), match.group(2)
        return f"{name}={MASK}" if is_secret_assignment(name, value) else match.group(0)

    return _URL_PASSWORD.sub(rf"\g<1>{MASK}\g<2>", ASSIGNMENT.sub(assignment, text))

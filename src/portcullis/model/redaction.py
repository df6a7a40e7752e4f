"""Secret values written into command lines and text (ENV, ARG and RUN assignments, user:password in URLs and
options, key: value pairs, private keys and cloud tokens): how they are recognised, and how text is masked before
it appears in any report, snapshot or SBOM.

Pure functions, shared by the image reader (which masks the `created_by` line each layer carries), the file sniffer
(collect/image/secrets.py compiles the same token patterns for bytes), the rules (which detect these values and
quote build steps as evidence) and the last pass over every report before it is rendered (`redact_report`).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from portcullis.model.findings import Finding, Report

SECRET_NAME = re.compile(
    r"PASSWORD|PASSWD|PASSPHRASE|SECRET|TOKEN|CREDENTIAL|API_?KEY|ACCESS_?KEY|PRIVATE_?KEY|AUTH_?KEY|"
    r"SIGNING_?KEY|ENCRYPTION_?KEY|(?:^|_)PASS$|(?:^|_)PWD$",
    re.IGNORECASE,
)
# Names that hold a pointer to a secret (Docker secrets' *_FILE convention) or public material.
NOT_SECRET_NAME = re.compile(r"(?:_FILE|_PATH|_DIR)$|^PWD$|^OLDPWD$|GPG|PGP|PUBLIC", re.IGNORECASE)
ASSIGNMENT = re.compile(r"(?<![\w$])([A-Za-z_][A-Za-z0-9_]*)=(\"[^\"]*\"|'[^']*'|\S+)")
MASK = "<redacted>"

# Token patterns; collect/image/secrets.py compiles the same text for file contents.
PEM_PRIVATE = r"-----BEGIN ((?:RSA |DSA |EC |OPENSSH |ENCRYPTED |PGP )?PRIVATE KEY(?: BLOCK)?)-----"
AWS_KEY_ID = r"(?<![A-Z0-9])(?:AKIA|ASIA)[A-Z0-9]{16}(?![A-Z0-9])"
GITHUB_TOKEN = r"(?<![A-Za-z0-9_])gh[pousr]_[A-Za-z0-9]{36,}"
SLACK_TOKEN = r"(?<![A-Za-z0-9])xox[abprs]-[A-Za-z0-9-]{10,}"

# Further token formats with a fixed, documented shape: (kind, pattern), the secret being the whole match. The file
# sniffer (collect/image/secrets.py) groups them into families behind one literal anchor each; here they mask.
TOKEN_PATTERNS: tuple[tuple[str, str], ...] = (
    # AWS secret access key: 40 base64 characters, recognisable only beside its name (AWS IAM user guide)
    (
        "AWS secret access key",
        r"(?i:aws_?secret_?access_?key|secretaccesskey)[\"']?\s*[:=]\s*[\"']?([A-Za-z0-9/+]{40})(?![A-Za-z0-9/+])",
    ),
    # Google Cloud API key: "AIza" and 35 URL-safe characters (cloud.google.com/docs/authentication/api-keys)
    ("Google API key", r"(?<![A-Za-z0-9_-])AIza[0-9A-Za-z_-]{35}(?![A-Za-z0-9_-])"),
    # Azure Storage / Service Bus connection strings carry a base64 key (learn.microsoft.com, "connection strings")
    ("Azure account key", r"(?:AccountKey|SharedAccessKey)=([A-Za-z0-9+/]{40,}={0,2})"),
    # DigitalOcean personal, OAuth and refresh tokens: do[por]_v1_ and 64 hex digits (docs.digitalocean.com)
    ("DigitalOcean token", r"(?<![A-Za-z0-9])do[por]_v1_[a-f0-9]{64}"),
    # GitHub fine-grained personal access tokens (github.blog, "Introducing fine-grained personal access tokens")
    ("GitHub token", r"(?<![A-Za-z0-9_])github_pat_[A-Za-z0-9_]{60,}"),
    # GitLab token prefixes (docs.gitlab.com/ee/security/token_overview.html#token-prefixes)
    ("GitLab token", r"(?<![A-Za-z0-9_-])gl(?:pat|ptt|rt|dt|cbt|soat|ft|imt|oas)-[A-Za-z0-9_-]{20,}"),
    # npm granular/automation tokens, PyPI API tokens (a macaroon for pypi.org), Docker Hub access tokens
    ("npm token", r"(?<![A-Za-z0-9_])npm_[A-Za-z0-9]{36}(?![A-Za-z0-9])"),
    ("PyPI token", r"pypi-AgEIcHlwaS5vcmc[A-Za-z0-9_-]{50,}"),
    ("Docker Hub token", r"(?<![A-Za-z0-9_])dckr_pat_[A-Za-z0-9_-]{27,}"),
    # Slack incoming webhooks (api.slack.com/messaging/webhooks), Discord webhooks, Telegram bot tokens
    ("Slack webhook", r"hooks\.slack\.com/(?:services|workflows|triggers)/T[A-Z0-9]+/[A-Za-z0-9]+/[A-Za-z0-9]{16,}"),
    ("Discord webhook", r"discord(?:app)?\.com/api/webhooks/[0-9]+/[A-Za-z0-9_-]{40,}"),
    ("Telegram bot token", r"(?<![0-9])[0-9]{8,10}:AA[A-Za-z0-9_-]{33}(?![A-Za-z0-9_-])"),
    # Stripe secret and restricted keys (docs.stripe.com/keys); publishable pk_ keys are public by design
    ("Stripe key", r"(?<![A-Za-z0-9])[sr]k_(?:live|test)_[A-Za-z0-9]{24,}"),
    # Square access tokens and application secrets, Shopify app tokens, SendGrid and Twilio API keys
    ("Square token", r"(?<![A-Za-z0-9])sq0(?:atp|csp)-[A-Za-z0-9_-]{22,}"),
    ("Shopify token", r"(?<![A-Za-z0-9])shp(?:at|ca|pa|ss)_[a-fA-F0-9]{32}"),
    ("SendGrid API key", r"(?<![A-Za-z0-9])SG\.[A-Za-z0-9_-]{22}\.[A-Za-z0-9_-]{43}"),
    ("Twilio API key", r"(?<![A-Za-z0-9])SK[0-9a-f]{32}(?![A-Za-z0-9])"),
    # OpenAI keys carry "T3BlbkFJ" (base64 of "OpenAI"); Anthropic and Hugging Face keys have fixed prefixes
    ("OpenAI API key", r"(?<![A-Za-z0-9_-])sk-[A-Za-z0-9_-]{16,}T3BlbkFJ[A-Za-z0-9_-]{16,}"),
    ("Anthropic API key", r"(?<![A-Za-z0-9_-])sk-ant-(?:api|admin)[0-9]{2}-[A-Za-z0-9_-]{80,}"),
    ("Hugging Face token", r"(?<![A-Za-z0-9_])hf_[A-Za-z]{34}(?![A-Za-z0-9])"),
    # age secret keys (age-encryption.org/v1): upper-case Bech32 (BIP 173's 32-character alphabet) after the HRP
    ("age secret key", r"AGE-SECRET-KEY-1[QPZRY9X8GF2TVDW0S3JN54KHCE6MUA7L]{58}"),
    # JSON Web Tokens (RFC 7519): base64url header and payload, both JSON objects, so both start "eyJ"
    ("JSON web token", r"(?<![A-Za-z0-9_-])eyJ[A-Za-z0-9_-]{10,}\.eyJ[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{16,}"),
)

_VALUE = r"(\"[^\"]*\"|'[^']*'|[^\s;&|'\"]+)"
# (kind, pattern, group holding the secret). Command forms stop at a shell separator so that the next command's
# options are never taken for this one's.
_DETECTORS: tuple[tuple[str, re.Pattern[str], int], ...] = (
    # a PEM block's body (its BEGIN line names the kind and stays), to its END line or the end of the quoted text
    ("private key", re.compile(PEM_PRIVATE + r"((?:(?!-----END )[^'\"])+)"), 2),
    ("AWS access key id", re.compile(r"(" + AWS_KEY_ID + ")"), 1),
    ("GitHub token", re.compile(r"(" + GITHUB_TOKEN + ")"), 1),
    ("Slack token", re.compile(r"(" + SLACK_TOKEN + ")"), 1),
    # a pattern with a group holds the secret in it (after its name); one without is the secret whole
    *((kind, compiled, min(compiled.groups, 1)) for kind, compiled in ((k, re.compile(p)) for k, p in TOKEN_PATTERNS)),
    ("URL with user:password", re.compile(r"\b[a-z][a-z0-9+.-]*://[^/\s:@]+:([^/\s@]+)@", re.I), 1),
    # curl -u user:pass, --user user:pass, wget --password=…, docker login -p PASS, --password-stdin excluded
    ("-u user:password", re.compile(r"(?:^|\s)(?:-u|--user|--proxy-user)(?:\s+|=)?[\"']?[^\s:;&|\"']*:" + _VALUE), 1),
    ("--password option", re.compile(r"(?:^|\s)--(?:http-|ftp-|proxy-)?pass(?:word)?(?:\s+|=)" + _VALUE), 1),
    ("login -p password", re.compile(r"\blogin\b[^;&|\n]*?\s-p\s*" + _VALUE), 1),
    ("mysql -ppassword", re.compile(r"\bmysql(?:dump|admin|import|check)?\b[^;&|\n]*?\s-p" + _VALUE), 1),
    (
        "htpasswd -b password",
        re.compile(
            r"\bhtpasswd((?:\s+-[A-Za-z]+)*?\s+-[A-Za-z]*b[A-Za-z]*(?:\s+-[A-Za-z]+)*)"
            r"(?:\s+[^\s;&|-]\S*){2}\s+" + _VALUE
        ),
        2,
    ),
    ("aws configure set", re.compile(r"\baws\s+configure\s+set\s+(?:\S*(?:secret|token|key)\S*)\s+" + _VALUE, re.I), 1),
)
# Source-code assignments with spaces and a quoted value: `SECRET_KEY = "value"`, `api_token := 'value'`.
_SPACED_ASSIGNMENT = re.compile(r"(?<![\w$])([A-Za-z_][A-Za-z0-9_]*)\s*(?::=|=)\s*(\"[^\"]*\"|'[^']*')")
# YAML `password: value` and JSON `"password": "value"`: only under a secret-sounding name.
_KEY_VALUE = re.compile(r"[\"']?([A-Za-z_][\w.-]*)[\"']?\s*:\s+(?!//)" + _VALUE + r"|\"([A-Za-z_][\w.-]*)\":" + _VALUE)


# Text none of whose detectors could match lacks every one of these anchors: one scan spares the dozen patterns on
# the bulk of a report (advisory text, paths, versions).
_GATE = re.compile(
    r"=|@|BEGIN|A[KS]IA|gh[pousr]_|xox|-u|--user|pass|pwd|secret|token|key|credential|login|mysql|configure|"
    r"AIza|_v1_|github_pat_|gl[a-z]{1,4}-|npm_|pypi-|dckr_|hooks|webhooks|:AA|[sr]k_|sq0|shp|SG\.|SK|sk-|hf_|eyJ",
    re.I,
)


def is_secret_assignment(name: str, value: str) -> bool:
    """Whether NAME=value puts a literal secret in the line (not an empty value or a $reference)."""
    value = value.strip("\"'")
    if not value or value.startswith("$"):
        return False  # a value already masked still counts: it proves a literal was there (a replayed snapshot)
    return bool(SECRET_NAME.search(name)) and not NOT_SECRET_NAME.search(name)


def secret_spans(text: str) -> Iterator[tuple[str, int, int]]:
    """(kind, start, end) of every literal secret value in the text; a quoted value's span excludes the quotes."""

    if not _GATE.search(text):
        return

    def value_span(match: re.Match[str], group: int) -> tuple[int, int]:
        start, end = match.span(group)
        if end - start >= 2 and text[start] in "\"'" and text[end - 1] == text[start]:
            return start + 1, end - 1
        return start, end

    for match in ASSIGNMENT.finditer(text):
        if is_secret_assignment(match.group(1), match.group(2)):
            yield (match.group(1), *match.span(2))  # NAME=<redacted>, quotes and all
    for kind, pattern, group in _DETECTORS:
        for match in pattern.finditer(text):
            start, end = value_span(match, group)
            if end > start and not text.startswith("$", start):
                yield (kind, start, end)
    for match in _SPACED_ASSIGNMENT.finditer(text):
        if is_secret_assignment(match.group(1), match.group(2)):
            yield (match.group(1), *value_span(match, 2))
    for match in _KEY_VALUE.finditer(text):
        name, group = (match.group(1), 2) if match.group(1) else (match.group(3), 4)
        if is_secret_assignment(name, match.group(group)):
            yield (name, *value_span(match, group))


def secret_kinds(text: str) -> list[str]:
    """What secrets the text holds (a variable's name or the detector's kind), each once, in order."""
    return list(dict.fromkeys(kind for kind, _, _ in sorted(secret_spans(text), key=lambda s: s[1])))


def redact_line(text: str) -> str:
    """The text with every secret value replaced by <redacted>."""
    spans = sorted((start, end) for _, start, end in secret_spans(text))
    if not spans:
        return text
    out: list[str] = []
    done = 0
    for start, end in spans:
        if end <= done:
            continue  # inside a span already masked
        out.append(text[done : max(start, done)])
        out.append(MASK)
        done = end
    out.append(text[done:])
    return "".join(out)


def redact_value(value: Any) -> Any:
    """Every string in a JSON-like value masked; keys kept."""
    if isinstance(value, str):
        return redact_line(value)
    if isinstance(value, dict):
        return {key: redact_value(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [redact_value(item) for item in value]
    return value


def redact_report(report: Report) -> Report:
    """The report with secrets masked in every finding's message and evidence: whatever a rule quoted (a build
    line, a Dockerfile line, a container's command) reaches no renderer verbatim."""
    return report.model_copy(update={"findings": [_redact_finding(f) for f in report.findings]})


def _redact_finding(finding: Finding) -> Finding:
    message, evidence = redact_line(finding.message), redact_value(finding.evidence)
    if message is finding.message and evidence == finding.evidence:
        return finding  # the common case: nothing quoted holds a secret
    return finding.model_copy(update={"message": message, "evidence": evidence})


# Snapshot fields (Engine API spelling) that carry command lines, and those that carry NAME=value or name: value.
_ARGV_FIELDS = frozenset({"Cmd", "Entrypoint", "cmdline", "command"})
_TEXT_FIELDS = frozenset({"CreatedBy", "created_by"})


def redact_argv(argv: list[str]) -> list[str]:
    """The words with secrets masked, judged on the whole line: `docker login -p PASS` spans three words."""
    line = " ".join(argv)
    spans = [(start, end) for _, start, end in secret_spans(line)]
    out: list[str] = []
    offset = 0
    for word in argv:
        masked = word
        for start, end in spans:
            if start < offset + len(word) and end > offset:
                masked = word[: max(start - offset, 0)] + MASK + word[min(end - offset, len(word)) :]
                break
        out.append(masked)
        offset += len(word) + 1
    return out


def redact_snapshot(data: Any) -> Any:
    """A facts snapshot (as JSON data) with secret values masked in env, labels, command lines and build lines;
    keys and names are kept, so a rule reading the replay still sees that a secret-named variable holds a literal."""
    if isinstance(data, list):
        return [redact_snapshot(item) for item in data]
    if not isinstance(data, dict):
        return data
    out: dict[str, Any] = {}
    for key, value in data.items():
        if key == "Env" and isinstance(value, list):
            out[key] = [redact_line(item) if isinstance(item, str) else item for item in value]
        elif key == "Labels" and isinstance(value, dict):
            out[key] = {name: _redact_label(name, text) for name, text in value.items()}
        elif key in _ARGV_FIELDS and isinstance(value, list) and all(isinstance(w, str) for w in value):
            out[key] = redact_argv(value)
        elif key in _TEXT_FIELDS and isinstance(value, str):
            out[key] = redact_line(value)
        else:
            out[key] = redact_snapshot(value)
    return out


def _redact_label(name: str, value: Any) -> Any:
    if not isinstance(value, str):
        return value
    return MASK if is_secret_assignment(name, value) else redact_line(value)

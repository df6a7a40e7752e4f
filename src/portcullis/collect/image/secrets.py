"""Secret detection over a path and the first bytes of a file. Cheap literal anchors gate the regexes.

Each family of secrets has one literal gate; only a file that passes it is searched with the family's pattern. The
four oldest families are searched in every text file, the others outside package trees only (third-party code is
most of an image's text, and every anchor scans all of it). A match is then judged: a documented example or a
placeholder value is not reported, nor is anything in a file under a test-fixture or documentation directory.
"""

from __future__ import annotations

import json
import math
import re
from collections import Counter
from collections.abc import Iterable

from portcullis.model.redaction import AWS_KEY_ID, GITHUB_TOKEN, PEM_PRIVATE, SLACK_TOKEN, TOKEN_PATTERNS

_TOKENS = dict(TOKEN_PATTERNS)


def _bytes(pattern: str) -> re.Pattern[bytes]:
    return re.compile(pattern.encode())


# A PEM private key is its BEGIN line followed by a body (or encryption headers), not a mention of the header in
# code or prose (libraries that parse keys carry the text in string literals).
_PEM_WITH_BODY = PEM_PRIVATE + r"\r?\n(?:[A-Za-z-]+:[^\n]*\n)*\s*[A-Za-z0-9+/]{3}"
# user:password@ in a URL, for every scheme (database, broker and HTTP connection strings alike)
_URL_PASSWORD = re.compile(rb"://[^\s:/@'\"<>]{1,64}:([^\s/@'\"<>]{3,128})@[A-Za-z0-9\[]")
# NAME = value / "name": "value" / name: value under a secret-sounding name, judged then by the value's entropy
# (matched where a secret-sounding name ends; see _ASSIGNMENT_NAMES)
_ASSIGNMENT = re.compile(
    rb"[A-Za-z0-9_.-]{0,40}[\"']?[ \t]*(?::=|=>|=|:)[ \t]*[\"']?([A-Za-z0-9+/_.~!#%^*@$-]{16,200})"
)

# Searched in every text file, as before these families grew: keys and the most common tokens. Each gate is a
# regex that starts with literal text, which the regex engine finds by a fast scan.
_CORE: tuple[tuple[str, re.Pattern[bytes], re.Pattern[bytes], int], ...] = (
    ("private-key", re.compile(rb"PRIVATE KEY-----"), _bytes(_PEM_WITH_BODY), 0),
    ("aws-access-key-id", re.compile(rb"A[KS]IA"), _bytes(AWS_KEY_ID), 0),
    ("github-token", re.compile(rb"gh[pousr]_"), _bytes(GITHUB_TOKEN), 0),
    ("slack-token", re.compile(rb"xox[abprs]-"), _bytes(SLACK_TOKEN), 0),
)
# The other families are searched outside package trees only: the distribution's and the language package
# managers' files are third-party code, where a token-shaped string is a test fixture or documentation, and they
# hold 95 % of an image's text (28.8 of 30 MB in the Debian test image), which every further anchor would scan.
_PACKAGE_TREE = re.compile(
    r"^/?(?:usr/(?:share|include|lib|lib64|libexec)/|usr/local/(?:lib|include|share)/|var/lib/(?:dpkg|apt|rpm)/)"
    r"|/(?:node_modules|site-packages|dist-packages|vendor|gems|pkg/mod)/"
)
# (family, anchors, pattern, secret group); the family is the kind reported. A file is searched with a pattern
# only when one of its literal anchors is in it (`in` on bytes is a memchr-speed scan; a regex that begins with a
# lookbehind or an alternation is tried at every byte and costs ten to fifty times as much). The order puts the most
# specific families first, since a file reports one kind.
_FAMILIES: tuple[tuple[str, tuple[bytes, ...], re.Pattern[bytes], int], ...] = (
    ("private-key", (b"AGE-SECRET-KEY-1",), _bytes(_TOKENS["age secret key"]), 0),
    (
        "aws-secret-access-key",
        (b"ecret_access_key", b"ECRET_ACCESS_KEY", b"ecretAccessKey"),
        _bytes(_TOKENS["AWS secret access key"]),
        1,
    ),
    ("gcp-api-key", (b"AIza",), _bytes(_TOKENS["Google API key"]), 0),
    ("azure-account-key", (b"AccountKey=", b"SharedAccessKey="), _bytes(_TOKENS["Azure account key"]), 1),
    ("digitalocean-token", (b"_v1_",), _bytes(_TOKENS["DigitalOcean token"]), 0),
    ("github-token", (b"github_pat_",), _bytes(_TOKENS["GitHub token"]), 0),
    (
        "gitlab-token",
        (b"gl",),
        _bytes(_TOKENS["GitLab token"]),
        0,
    ),
    ("package-registry-token", (b"npm_",), _bytes(_TOKENS["npm token"]), 0),
    ("package-registry-token", (b"pypi-AgEI",), _bytes(_TOKENS["PyPI token"]), 0),
    ("package-registry-token", (b"dckr_pat_",), _bytes(_TOKENS["Docker Hub token"]), 0),
    ("slack-webhook", (b"hooks.slack.com/",), _bytes(_TOKENS["Slack webhook"]), 0),
    ("chat-webhook-or-bot-token", (b"/api/webhooks/",), _bytes(_TOKENS["Discord webhook"]), 0),
    ("chat-webhook-or-bot-token", (b":AA",), _bytes(_TOKENS["Telegram bot token"]), 0),
    ("payment-api-key", (b"k_live_", b"k_test_"), _bytes(_TOKENS["Stripe key"]), 0),
    ("payment-api-key", (b"sq0atp-", b"sq0csp-"), _bytes(_TOKENS["Square token"]), 0),
    ("payment-api-key", (b"shpat_", b"shpca_", b"shppa_", b"shpss_"), _bytes(_TOKENS["Shopify token"]), 0),
    ("service-api-key", (b"SG.",), _bytes(_TOKENS["SendGrid API key"]), 0),
    ("service-api-key", (b"SK",), _bytes(_TOKENS["Twilio API key"]), 0),
    ("service-api-key", (b"T3BlbkFJ",), _bytes(_TOKENS["OpenAI API key"]), 0),
    ("service-api-key", (b"sk-ant-",), _bytes(_TOKENS["Anthropic API key"]), 0),
    ("service-api-key", (b"hf_",), _bytes(_TOKENS["Hugging Face token"]), 0),
    ("jwt", (b"eyJ",), _bytes(_TOKENS["JSON web token"]), 0),
    ("url-with-password", (b"://",), _URL_PASSWORD, 1),
)
# The generic family: a secret-named assignment whose value looks random (see _random_enough). Its names are found
# with `find` in the lowered text; the assignment is then matched where each name ends.
_ASSIGNMENT_NAMES = (
    b"secret",
    b"password",
    b"passwd",
    b"token",
    b"api_key",
    b"apikey",
    b"api-key",
    b"access_key",
    b"accesskey",
    b"auth_key",
    b"private_key",
)

# Documented example values (AWS's AKIAIOSFODNN7EXAMPLE key pair, the Stripe API reference's test key, jwt.io's
# sample token) and placeholders: these appear in documentation and examples, and are not anyone's secret.
_KNOWN_EXAMPLES = frozenset(
    {
        b"sk_test_4eC39HqLyjWDarjtT1zdp7dc",
        b"sk_test_BQokikJOvBiI2HlWgH4olfQ2",
        b"eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkpvaG4gRG9lIiwiaWF0IjoxNTE2MjM5MDIy"
        b"fQ.SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c",
    }
)
_PLACEHOLDER = re.compile(
    rb"(?i)example|sample|dummy|placeholder|changeme|your[_-]|redacted|x{6}|\*{3}|\.\.\.|<[^>]*>|\$\{|\{\{|%s|"
    rb"(.)\1{7}"
)
_PLACEHOLDER_PASSWORDS = frozenset({b"password", b"pass", b"passwd", b"pwd", b"secret", b"pw", b"token"})
# Files under these directories are test fixtures and documentation shipped with packages and sources: keys and
# tokens there are made up for tests (a TLS library's test keys, a client's recorded responses).
_FIXTURE_DIR = re.compile(
    r"(?:^|/)(?:tests?|testdata|testing|test[_-]?data|fixtures?|__tests__|spec|examples?|samples?)/"
    r"|(?:^|/)usr/share/(?:doc|man|locale)/"
)


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


_ENV_EXAMPLES = (".example", ".sample", ".template", ".dist")


def content_kind(path: str, head: bytes) -> str | None:
    """The kind of secret found in the first bytes of a file, or None."""
    if not head or b"\0" in head:  # binary files (ELF, archives, images): keys and tokens left behind are text
        return None
    if _FIXTURE_DIR.search(path):
        return None
    for kind, gate, pattern, group in _CORE:
        if gate.search(head) and _first_real(pattern.finditer(head), group, kind):
            return kind
    if _PACKAGE_TREE.search(path) is None:
        for kind, anchors, pattern, group in _FAMILIES:
            if any(anchor in head for anchor in anchors) and _first_real(pattern.finditer(head), group, kind):
                return kind
        if _generic_assignment(head):
            return "generic-secret-assignment"
    if path.endswith(".json") and b"service_account" in head and b"private_key" in head:
        return "gcp-service-account-key"
    if path.endswith(".docker/config.json") and b"auths" in head and _docker_config_has_auth(head):
        return "docker-registry-credentials"
    return None


def _first_real(matches: Iterable[re.Match[bytes]], group: int, kind: str) -> bool:
    for match in matches:
        value = match.group(group) or match.group(0)
        if value in _KNOWN_EXAMPLES or _PLACEHOLDER.search(value):
            continue
        if kind == "url-with-password" and (value.lower() in _PLACEHOLDER_PASSWORDS or value.startswith(b"$")):
            continue
        return True
    return False


def _generic_assignment(head: bytes) -> bool:
    lowered = head.lower()
    for name in _ASSIGNMENT_NAMES:
        at = lowered.find(name)
        while at >= 0:
            match = _ASSIGNMENT.match(head, at + len(name))
            if match and _random_enough(match.group(1)):
                return True
            at = lowered.find(name, at + len(name))
    return False


def _random_enough(value: bytes) -> bool:
    """Whether an assigned value looks like a generated secret: long, mixed letters and digits, high Shannon entropy
    (at least 3.5 bits a character), not a reference, path, placeholder or identifier written in words."""
    if value.startswith((b"$", b"/", b"~")) or _PLACEHOLDER.search(value) or value in _KNOWN_EXAMPLES:
        return False
    if not (re.search(rb"[0-9]", value) and re.search(rb"[A-Za-z]", value)):
        return False
    if re.fullmatch(rb"[a-z]+(?:[._-][a-z0-9]+)+", value):  # dotted or dashed words: a module, a host, a setting
        return False
    counts = Counter(value)
    entropy = -sum(n / len(value) * math.log2(n / len(value)) for n in counts.values())
    return entropy >= 3.5


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

"""Issue 17 §6, one family at a time: a realistic token of each documented shape is found in a file and masked
in report text; near misses, documented example values, placeholders and test-fixture files are not found."""

from __future__ import annotations

import re

import pytest

from portcullis.collect.image.secrets import classify
from portcullis.model.redaction import redact_line

# (kind, a token of the documented shape, made up here, as it would sit in a config line)
TOKENS = [
    ("private-key", "-----BEGIN EC PRIVATE KEY-----\nMHcCAQEEIBm2v8Qx7Lr0Pz3kT9wYqJ4s\n-----END EC PRIVATE KEY-----"),
    ("private-key", "AGE-SECRET-KEY-1" + "QZ7R3KX9V2MWT5PLJ8D4NHC6YFG0SAUE2RKQ7M3X9V2LWT5PHJ8D4NCY6F"),
    ("aws-access-key-id", "aws_access_key_id = AKIAZ7QRSTUVWXYZ2345"),
    ("aws-secret-access-key", "aws_secret_access_key = 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"),
    ("gcp-api-key", 'key: "AIzaSyD7f3K9qLm2X8vR1tY5wZ0nB4cD6eF3gH2"'),
    (
        "azure-account-key",
        "AccountKey=" + "q7L2mX9vR3tY8wZ1nB5cD6eF0gH4jK2lM8nP3qS5tU7vW9xY1zA3bC5dE7fG9hJ1kL3mN5pQ7rS9tU1vW3xY5zA7b==;",
    ),
    ("digitalocean-token", "DO_TOKEN=dop_v1_" + "3f9a1c7e5b2d8f4a6c0e9b1d3f5a7c9e2b4d6f8a0c1e3b5d7f9a2c4e6b8d0f1a"),
    ("github-token", "GH_TOKEN=ghp_" + "Zq8Lm2Xv9Rt3Yw8Zn1Bc5De6Fg0Hj4Kl2Mn8P"),
    (
        "github-token",
        "github_pat_11ABCDEFG0" + "q7L2mX9vR3tY8wZ1nB5cD6_eF0gH4jK2lM8nP3qS5tU7vW9xY1zA3bC5dE7fG9hJ1kL3mN5pQ7rS9",
    ),
    ("gitlab-token", "CI_TOKEN=glpat-" + "q7L2mX9vR3tY8wZ1nB5c"),
    ("package-registry-token", "//registry.npmjs.org/:_authToken=npm_" + "q7L2mX9vR3tY8wZ1nB5cD6eF0gH4jK2lM8nP"),
    (
        "package-registry-token",
        "password = pypi-AgEIcHlwaS5vcmc" + "q7L2mX9vR3tY8wZ1nB5cD6eF0gH4jK2lM8nP3qS5tU7vW9xY1zA3bC5",
    ),
    ("package-registry-token", "echo dckr_pat_" + "q7L2mX9vR3tY8wZ1nB5cD6eF0gH"),
    ("slack-token", "SLACK=xoxb-123456789012-1234567890123-q7L2mX9vR3tY8wZ1nB5cD6eF"),
    ("slack-webhook", "https://hooks.slack.com/services/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"),
    ("chat-webhook-or-bot-token", "https://discord.com/api/webhooks/123456789012345678/" + "q7L2mX9vR3tY8wZ1nB5c" * 3),
    ("chat-webhook-or-bot-token", 'bot = "1234567890:AA' + "q7L2mX9vR3tY8wZ1nB5cD6eF0gH4jK2lM" + '"'),
    ("payment-api-key", 'Stripe.api_key = "sk_live_' + "q7L2mX9vR3tY8wZ1nB5cD6eF0gH4jK2lM8" + '"'),
    ("payment-api-key", '"access_token": "sq0atp-q7L2mX9vR3tY8wZ1nB5cD6"'),
    ("payment-api-key", "token = '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'"),
    ("service-api-key", "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"),
    ("service-api-key", "twilio = 'SK3f9a1c7e5b2d8f4a6c0e9b1d3f5a7c9e'"),
    ("service-api-key", "OPENAI_API_KEY=sk-proj-q7L2mX9vR3tY8wZ1nB5cT3BlbkFJeF0gH4jK2lM8nP3qS5"),
    ("service-api-key", "ANTHROPIC_API_KEY=sk-ant-api03-" + "q7L2mX9vR3tY8wZ1nB5c" * 5),
    ("service-api-key", "HF_TOKEN=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"),
    ("jwt", "Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJzdmMtZGVwbG95In0.q7L2mX9vR3tY8wZ1nB5cD6eF0gH4jK2lM8"),
    ("url-with-password", "url: postgres://app:q7L2mX9vR3tY8wZ1@db.internal:5432/app"),
    ("generic-secret-assignment", 'SECRET_KEY = "q7L2mX9vR3tY8wZ1nB5cD6eF0gH4jK2l"'),
]

# (why it is not a secret, text)
NOT_SECRETS = [
    ("AWS documentation example key", "aws_access_key_id = AKIAIOSFODNN7EXAMPLE"),
    ("AWS documentation example secret", "aws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"),
    ("Stripe API reference test key", "sk_test_4eC39HqLyjWDarjtT1zdp7dc"),
    (
        "jwt.io sample",
        "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkpvaG4gRG9lIiwiaWF0IjoxNTE2MjM5MDIy"
        "fQ.SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c",
    ),
    ("placeholder token", "ghp_xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"),
    ("placeholder password", "postgres://user:password@localhost/db"),
    ("variable reference", "redis://app:${REDIS_PASSWORD}@cache:6379"),
    ("a PEM header in code", 'HEADER = "-----BEGIN RSA PRIVATE KEY-----"'),
    ("AWS key id one character short", "AKIAZ7QRSTUVWXYZ234"),
    ("GitLab prefix, too short", "glpat-abc123"),
    ("age key with a letter Bech32 lacks", "AGE-SECRET-KEY-1" + "B" * 58),
    ("low entropy", "password = correcthorsebatterystaple"),
    ("dotted module name", "token_backend = rest_framework.authtoken.models"),
    ("a path", "private_key = /etc/ssl/private/server1234567.key"),
    ("Stripe publishable key (public)", "pk_live_q7L2mX9vR3tY8wZ1nB5cD6eF0gH4jK2lM8"),
]


@pytest.mark.parametrize(("kind", "text"), TOKENS, ids=[f"{k}-{i}" for i, (k, _) in enumerate(TOKENS)])
def test_a_token_of_each_family_is_found(kind: str, text: str) -> None:
    assert classify("/srv/app/config.txt", f"# deploy settings\n{text}\n".encode()) == kind


@pytest.mark.parametrize(("why", "text"), NOT_SECRETS, ids=[w for w, _ in NOT_SECRETS])
def test_near_misses_and_documented_examples_are_not_found(why: str, text: str) -> None:
    assert classify("/srv/app/config.txt", f"{text}\n".encode()) is None


@pytest.mark.parametrize(
    "path",
    ["/srv/app/tests/keys/server.key", "/go/src/x/testdata/k.pem", "/usr/share/doc/pkg/README", "/app/examples/k"],
)
def test_test_fixture_and_documentation_files_are_not_reported(path: str) -> None:
    assert classify(path, TOKENS[0][1].encode()) is None


def test_package_trees_get_the_core_families_only() -> None:
    site = "/usr/local/lib/python3.11/site-packages/pkg/conf.py"
    assert classify(site, TOKENS[0][1].encode()) == "private-key"  # keys and the four old families: everywhere
    assert classify(site, TOKENS[4][1].encode()) is None  # a Google key shape in third-party code: not searched


@pytest.mark.parametrize(("kind", "text"), [t for t in TOKENS if t[0] != "private-key"])
def test_every_token_family_is_masked_in_report_text(kind: str, text: str) -> None:
    masked = redact_line(f"RUN echo {text} > /conf")
    assert "<redacted>" in masked
    secret = max(re.findall(r"[A-Za-z0-9+/_.-]+", text), key=len)  # the token: the longest run in the line
    assert secret[-12:] not in masked, f"{kind}: {masked}"

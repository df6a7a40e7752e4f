"""An image with one planted secret per family and decoys (documented examples, placeholders, test fixtures,
near misses) beside them: the ground truth both the secrets test and benchmarks/secrets_vs_trivy.py score against.

The tokens are generated here with each format's documented shape; none was ever issued by any service.
"""

from __future__ import annotations

import base64
import random
import subprocess
import tempfile
from pathlib import Path

REF = "portcullis-test/secrets-planted:1"
LABEL = "portcullis.test=1"

_rng = random.Random(17)
_ALNUM = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"


def _s(n: int, alphabet: str = _ALNUM) -> str:
    return "".join(_rng.choice(alphabet) for _ in range(n))


_UPPER_DIGITS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"
_HEX = "0123456789abcdef"
_BECH32 = "QPZRY9X8GF2TVDW0S3JN54KHCE6MUA7L"
_URLSAFE = _ALNUM + "-_"
_B64 = _ALNUM + "+/"
_KEY_BODY = "\n".join(base64.b64encode(_rng.randbytes(48)).decode() for _ in range(12))

# path -> (family, content). Every family is one file so that a file-level hit scores one family.
PLANTED: dict[str, tuple[str, str]] = {
    "srv/app/keys/deploy.pem": (
        "private key",
        f"-----BEGIN RSA PRIVATE KEY-----\n{_KEY_BODY}\n-----END RSA PRIVATE KEY-----\n",
    ),
    "srv/app/keys/age.txt": ("private key", f"# created: 2026-01-01\nAGE-SECRET-KEY-1{_s(58, _BECH32)}\n"),
    "srv/app/conf/aws-id.ini": ("cloud", f"[default]\naws_access_key_id = AKIA{_s(16, _UPPER_DIGITS)}\n"),
    "srv/app/conf/aws-secret.ini": ("cloud", f"[default]\naws_secret_access_key = {_s(40, _B64)}\n"),
    "srv/app/conf/gcp.js": ("cloud", f'const mapsKey = "AIza{_s(35, _URLSAFE)}";\n'),
    "srv/app/conf/azure.env.txt": (
        "cloud",
        "STORAGE=DefaultEndpointsProtocol=https;AccountName=prodstore;"
        f"AccountKey={base64.b64encode(_rng.randbytes(64)).decode()};EndpointSuffix=core.windows.net\n",
    ),
    "srv/app/conf/do.yaml": ("cloud", f"digitalocean:\n  token: dop_v1_{_s(64, _HEX)}\n"),
    "srv/app/ci/github.sh": ("vcs and ci", f"export GH_TOKEN=ghp_{_s(36)}\n"),
    "srv/app/ci/github-fine.sh": ("vcs and ci", f"git clone https://github_pat_{_s(22)}_{_s(59)}@github.com/o/r\n"),
    "srv/app/ci/gitlab.yml": ("vcs and ci", f"variables:\n  GL_TOKEN: glpat-{_s(20, _URLSAFE)}\n"),
    "srv/app/ci/npmrc": ("vcs and ci", f"//registry.npmjs.org/:_authToken=npm_{_s(36)}\n"),
    "srv/app/ci/pypirc": (
        "vcs and ci",
        f"[pypi]\nusername = __token__\npassword = pypi-AgEIcHlwaS5vcmc{_s(70, _URLSAFE)}\n",
    ),
    "srv/app/ci/dockerhub.sh": (
        "vcs and ci",
        f"echo dckr_pat_{_s(27, _URLSAFE)} | docker login -u ci --password-stdin\n",
    ),
    "srv/app/chat/slack.py": ("chat", f'SLACK_BOT = "xoxb-{_s(12, "0123456789")}-{_s(13, "0123456789")}-{_s(24)}"\n'),
    "srv/app/chat/slack-hook.sh": (
        "chat",
        f"curl -X POST https://hooks.slack.com/services/T{_s(10, _UPPER_DIGITS)}/B{_s(10, _UPPER_DIGITS)}/{_s(24)}\n",
    ),
    "srv/app/chat/discord.cfg": (
        "chat",
        f"hook=https://discord.com/api/webhooks/{_s(18, '0123456789')}/{_s(68, _URLSAFE)}\n",
    ),
    "srv/app/chat/telegram.toml": ("chat", f'bot = "{_s(10, "0123456789")}:AA{_s(33, _URLSAFE)}"\n'),
    "srv/app/pay/stripe.rb": ("payment", f'Stripe.api_key = "sk_live_{_s(99)}"\n'),
    "srv/app/pay/square.json": ("payment", f'{{"access_token": "sq0atp-{_s(22, _URLSAFE)}"}}\n'),
    "srv/app/pay/shopify.php": ("payment", f"<?php $token = 'shpat_{_s(32, _HEX)}';\n"),
    "srv/app/api/sendgrid.env.txt": ("api", f"SENDGRID=SG.{_s(22, _URLSAFE)}.{_s(43, _URLSAFE)}\n"),
    "srv/app/api/twilio.js": ("api", f"const twilioKey = 'SK{_s(32, _HEX)}';\n"),
    "srv/app/api/openai.py": (
        "api",
        f'client = OpenAI(api_key="sk-proj-{_s(74, _URLSAFE)}T3BlbkFJ{_s(74, _URLSAFE)}")\n',
    ),
    "srv/app/api/anthropic.sh": ("api", f"export ANTHROPIC_API_KEY=sk-ant-api03-{_s(93, _URLSAFE)}AA\n"),
    "srv/app/api/hf.txt": ("api", f"hf_{_s(34, 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz')}\n"),
    "srv/app/auth/session.txt": (
        "jwt",
        "Authorization: Bearer "
        + ".".join(
            base64.urlsafe_b64encode(part).decode().rstrip("=")
            for part in (b'{"alg":"HS256","typ":"JWT"}', b'{"sub":"svc-deploy","iat":1764547200}', _rng.randbytes(32))
        )
        + "\n",
    ),
    "srv/app/db/database.yml": ("connection string", f"url: postgres://app:{_s(20)}@db.internal:5432/app\n"),
    "srv/app/db/mongo.properties": (
        "connection string",
        f"spring.data.mongodb.uri=mongodb+srv://svc:{_s(16)}@c0.mongodb.net/x\n",
    ),
    "srv/app/settings.py": ("generic", f'SECRET_KEY = "{_s(50, _ALNUM + "!@#%^*-_")}"\n'),
    "srv/app/config.yaml": ("generic", f"auth:\n  client_secret: {_s(32)}\n"),
}

# path -> why it must not be reported
DECOYS: dict[str, tuple[str, str]] = {
    "srv/app/docs/aws.md.txt": (
        "AWS documentation example",
        "aws_access_key_id = AKIAIOSFODNN7EXAMPLE\naws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY\n",
    ),
    "srv/app/docs/jwt.txt": (
        "jwt.io sample token",
        "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkpvaG4gRG9lIiwiaWF0IjoxNTE2MjM5MDIyfQ"
        ".SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c\n",
    ),
    "srv/app/docs/stripe.txt": (
        "Stripe API reference test key",
        "curl -u sk_test_4eC39HqLyjWDarjtT1zdp7dc: https://api.stripe.com\n",
    ),
    "srv/app/docs/db.txt": ("placeholder password", "DATABASE_URL=postgres://user:password@localhost:5432/db\n"),
    "srv/app/docs/gh.txt": ("placeholder token", "GH_TOKEN=ghp_xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\n"),
    "srv/app/lib/keys.py": ("a key header in code", 'PEM_HEADER = "-----BEGIN RSA PRIVATE KEY-----"\n'),
    "srv/app/tests/fixtures/server.key": (
        "test fixture directory",
        f"-----BEGIN PRIVATE KEY-----\n{_KEY_BODY}\n-----END PRIVATE KEY-----\n",
    ),
    "srv/app/conf/low.ini": ("low-entropy value", "password = correcthorsebatterystaple\n"),
    "srv/app/conf/ref.env.txt": ("a reference, not a value", "API_KEY=${API_KEY}\nSECRET_KEY_FILE=/run/secrets/key\n"),
    "srv/app/conf/short.txt": ("near miss: too short", "token: ghp_abc123\nAKIA1234\n"),
    "srv/app/conf/module.cfg": ("a dotted name", "token_backend = rest_framework.authtoken.models\n"),
}


def build(context_dir: Path | None = None) -> str:
    """Build the image (FROM scratch, labelled) and return its reference."""
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(context_dir or tmp)
        for path, (_, text) in {**PLANTED, **DECOYS}.items():
            target = root / "files" / path
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(text)
        (root / "Dockerfile").write_text(f"FROM scratch\nLABEL {LABEL}\nCOPY files/ /\n")
        subprocess.run(["docker", "build", "-q", "-t", REF, str(root)], check=True, capture_output=True)
    return REF


def remove() -> None:
    subprocess.run(["docker", "rmi", "-f", REF], check=False, capture_output=True)

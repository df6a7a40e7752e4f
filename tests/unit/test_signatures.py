"""cosign signature judgement over recorded facts, and the trust policy file (no registry: see
tests/image/test_signatures_registry.py for the same against the real local registry)."""

from __future__ import annotations

import base64
import hashlib
import json
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, padding, rsa

from portcullis.checks.signatures import Verdict, claimed_digest, judge_image, judge_lookup
from portcullis.collect.host import content_trust_setting
from portcullis.model.facts import Facts, ImageFacts
from portcullis.model.signatures import (
    SIMPLE_SIGNING_TYPE,
    CosignSignature,
    ImageSignatures,
    SignatureLookup,
    TrustedKey,
)
from portcullis.pipelines.errors import UsageError
from portcullis.pipelines.trust import TrustPolicy, attach_signatures, engine_insecure_hosts, load_trust_policy
from support.cosign_format import SigningKey, payload

REPO = "registry.example.com/team/app"
DIGEST = "sha256:" + "a" * 64


def pem(public_key: object) -> str:
    return public_key.public_bytes(  # type: ignore[attr-defined]
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode()


def lookup(key_pem: str, body: bytes, signature: bytes, media_type: str = SIMPLE_SIGNING_TYPE) -> SignatureLookup:
    return SignatureLookup(
        repository=REPO,
        digest=DIGEST,
        signature_tag=DIGEST.replace(":", "-") + ".sig",
        trusted_keys=[TrustedKey(name="k.pub", pem=key_pem)],
        found=True,
        signatures=[
            CosignSignature(
                media_type=media_type,
                payload_digest="sha256:" + hashlib.sha256(body).hexdigest(),
                payload_b64=base64.b64encode(body).decode(),
                signature_b64=base64.b64encode(signature).decode(),
            )
        ],
    )


def test_rsa_and_ed25519_keys_verify_as_cosign_does() -> None:
    body = payload(REPO, DIGEST)
    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    rsa_signature = rsa_key.sign(body, padding.PKCS1v15(), hashes.SHA256())
    ed_key = ed25519.Ed25519PrivateKey.generate()
    assert judge_lookup(lookup(pem(rsa_key.public_key()), body, rsa_signature)).verdict is Verdict.SIGNED
    assert judge_lookup(lookup(pem(ed_key.public_key()), body, ed_key.sign(body))).verdict is Verdict.SIGNED
    # The same signature over one changed byte does not verify.
    changed = body.replace(b"team", b"tean")
    assert judge_lookup(lookup(pem(ed_key.public_key()), changed, ed_key.sign(body))).verdict is Verdict.BAD_SIGNATURE


def test_payload_keys_match_in_any_case_as_in_go() -> None:
    """The specification's examples write Critical/Image/Docker-manifest-digest; cosign (Go) accepts them."""
    document = {
        "Critical": {
            "Identity": {"docker-reference": REPO},
            "Image": {"Docker-manifest-digest": DIGEST},
            "Type": "cosign container image signature",
        },
        "Optional": None,
    }
    assert claimed_digest(json.dumps(document).encode()) == DIGEST
    document["Critical"]["Type"] = "atomic container signature"  # type: ignore[index]
    assert claimed_digest(json.dumps(document).encode()) is None
    assert claimed_digest(b"\xff not json") is None


def test_a_verified_payload_that_is_not_an_image_signature_fails() -> None:
    key = SigningKey.generate()
    body = b'{"critical":{"type":"something else"}}'
    signature = base64.b64decode(key.sign(body))
    judgement = judge_lookup(lookup(key.public_pem, body, signature))
    assert (judgement.verdict, judgement.reason) == (
        Verdict.BAD_PAYLOAD,
        "signature 1 (by k.pub) is not a cosign image signature payload",
    )


def test_garbled_base64_and_foreign_layers() -> None:
    key = SigningKey.generate()
    body = payload(REPO, DIGEST)
    garbled = lookup(key.public_pem, body, b"")
    garbled.signatures[0].signature_b64 = "not base64!"
    assert judge_lookup(garbled).reason.startswith("signature 1 cannot be decoded: ")
    other = lookup(key.public_pem, body, base64.b64decode(key.sign(body)), media_type="application/octet-stream")
    assert judge_lookup(other).verdict is Verdict.UNSIGNED


def test_the_most_telling_failure_is_reported_and_any_good_signature_wins() -> None:
    key = SigningKey.generate()
    wrong = payload(REPO, "sha256:" + "b" * 64)
    mixed = lookup(key.public_pem, wrong, base64.b64decode(key.sign(wrong)))
    stranger = SigningKey.generate()
    good = payload(REPO, DIGEST)
    mixed.signatures.append(lookup(key.public_pem, good, base64.b64decode(stranger.sign(good))).signatures[0])
    judgement = judge_lookup(mixed)
    assert judgement.verdict is Verdict.WRONG_DIGEST
    assert judgement.reason.count(";") == 1  # both reasons are given
    mixed.signatures.append(lookup(key.public_pem, good, base64.b64decode(key.sign(good))).signatures[0])
    assert judge_lookup(mixed).verdict is Verdict.SIGNED
    # An image is signed when one of its repositories is; with none, nothing can be looked up.
    assert judge_image(ImageSignatures(policy="p", lookups=[mixed])).verdict is Verdict.SIGNED
    assert judge_image(ImageSignatures(policy="p")).verdict is Verdict.NO_DIGEST


def write_key(path: Path) -> Path:
    path.write_text(SigningKey.generate().public_pem)
    return path


def test_policy_keys_are_those_of_every_matching_pattern(tmp_path: Path) -> None:
    (tmp_path / "keys").mkdir()
    write_key(tmp_path / "keys" / "team.pub")
    write_key(tmp_path / "keys" / "base.pub")
    extra = write_key(tmp_path / "extra.pub")
    policy_file = tmp_path / "trust.yaml"
    policy_file.write_text(
        "repositories:\n"
        '  - pattern: "registry.example.com/team/*"\n    keys: [keys/team.pub]\n'
        '  - pattern: "registry.example.com/*"\n    keys: [keys/base.pub, keys/team.pub]\n'
    )
    policy = load_trust_policy(policy_file, [extra])
    assert policy is not None
    assert [k.name for k in policy.keys_for("registry.example.com/team/app")] == [
        "keys/team.pub",
        "keys/base.pub",
        str(extra),
    ]
    assert [k.name for k in policy.keys_for("docker.io/library/busybox")] == [str(extra)]
    alone = load_trust_policy(policy_file)
    assert alone is not None and alone.keys_for("docker.io/library/busybox") == []
    assert policy.source == f"{policy_file}; --verify-key {extra}"
    assert load_trust_policy(None) is None


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("repositories: [", "is not YAML"),
        ("repositories: []", "repositories: List should have at least 1 item"),
        ("repositories:\n  - pattern: x\n    keys: [k.pub]\n    key: y\n", "repositories.0.key: Extra inputs"),
        ("repositories:\n  - pattern: x\n    keys: [missing.pub]\n", "cannot read key"),
        ("repositories:\n  - pattern: x\n    keys: [trust.yaml]\n", "trust.yaml is not a PEM public key"),
    ],
)
def test_a_bad_policy_is_one_clear_line(tmp_path: Path, text: str, expected: str) -> None:
    policy_file = tmp_path / "trust.yaml"
    policy_file.write_text(text)
    with pytest.raises(UsageError, match=expected) as raised:
        load_trust_policy(policy_file)
    assert "\n" not in str(raised.value)


def test_a_private_key_is_not_taken_for_a_public_one(tmp_path: Path) -> None:
    secret = tmp_path / "cosign.key"
    secret.write_bytes(
        SigningKey.generate().private.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    with pytest.raises(UsageError, match="is not a PEM public key"):
        load_trust_policy(None, [secret])


def test_the_audit_reads_signatures_over_http_where_the_engine_pulls_over_http() -> None:
    recorded = json.loads((Path(__file__).parents[1] / "rules" / "baseline.json").read_text())
    recorded["engine"]["info"]["RegistryConfig"] = {
        "InsecureRegistryCIDRs": ["127.0.0.0/8"],
        "IndexConfigs": {"reg.lan:5000": {"Secure": False}, "docker.io": {"Secure": True}},
    }
    facts = Facts.model_validate({k: v for k, v in recorded.items() if not k.startswith("_")})
    hosts = ["127.0.0.1:5000", "reg.lan:5000", "docker.io", "10.1.1.1:5000", "[::1]:5000", "localhost:5000"]
    assert engine_insecure_hosts(facts, hosts) == ["127.0.0.1:5000", "reg.lan:5000", "localhost:5000"]


@pytest.mark.parametrize(
    ("profile", "expected"),
    [
        ("export DOCKER_CONTENT_TRUST=1\n", "1"),
        ('PATH=/bin\nDOCKER_CONTENT_TRUST="1"\nDOCKER_CONTENT_TRUST=0 # later wins\n', "0"),
        ("# export DOCKER_CONTENT_TRUST=1\n", None),
        ("echo DOCKER_CONTENT_TRUST=1\n", None),
    ],
)
def test_content_trust_in_a_shell_profile(profile: str, expected: str | None) -> None:
    assert content_trust_setting(profile) == expected


def test_a_repo_digest_that_does_not_parse_is_undecided() -> None:
    image = ImageFacts.model_validate({"Id": "sha256:" + "f" * 64, "RepoDigests": ["Bad Name@sha256:zz"]})
    attach_signatures(image, TrustPolicy(source="p", entries=(("*", ()),)))
    assert image.signatures is not None
    judgement = judge_image(image.signatures)
    assert judgement.verdict is Verdict.UNDECIDED
    assert "is not an image reference" in judgement.reason


def test_where_signatures_are_stored(tmp_path: Path) -> None:
    write_key(tmp_path / "k.pub")
    policy_file = tmp_path / "trust.yaml"
    policy_file.write_text(
        "repositories:\n"
        '  - pattern: "reg.example/app*"\n    keys: [k.pub]\n    signatures: reg.example/signatures\n'
        '  - pattern: "*"\n    keys: [k.pub]\n'
    )
    policy = load_trust_policy(policy_file)
    assert policy is not None
    assert policy.store_for("reg.example/app1") == "reg.example/signatures"
    assert policy.store_for("reg.example/other") == ""
    policy_file.write_text('repositories:\n  - pattern: "*"\n    keys: [k.pub]\n    signatures: reg.example/sigs:v1\n')
    with pytest.raises(UsageError, match="names a repository, HOST/REPO, no tag"):
        load_trust_policy(policy_file)

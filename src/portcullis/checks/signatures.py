"""Verify cosign key-based signatures over recorded facts (no I/O): the judgement behind CIS-4.12 under a policy.

As `cosign verify --key` does: a signature counts when a trusted key verifies it over the bytes exactly as stored
(the simple-signing payload of the `.sig` layout, or the DSSE pre-authentication encoding of a bundle's envelope)
and what it signed vouches for the image's digest (a "cosign container image signature" payload, or an in-toto
statement of predicate cosign/sign/v1). ECDSA and RSA (PKCS#1 v1.5) keys verify with SHA-256, Ed25519 keys as
they are. The transparency log is not consulted (cosign's --insecure-ignore-tlog); a key-signed image needs none to
be trusted by its key.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa

from portcullis.model.signatures import (
    BUNDLE_TYPE,
    SIMPLE_SIGNING_TYPE,
    CosignSignature,
    ImageSignatures,
    SignatureLookup,
)

COSIGN_PAYLOAD_TYPE = "cosign container image signature"
# cosign 3 signs an in-toto statement in a DSSE envelope inside a Sigstore bundle (cmd/cosign/cli/sign).
IN_TOTO_PAYLOAD_TYPE = "application/vnd.in-toto+json"
IN_TOTO_STATEMENTS = ("https://in-toto.io/Statement/v1", "https://in-toto.io/Statement/v0.1")
COSIGN_SIGN_PREDICATE = "https://sigstore.dev/cosign/sign/v1"

PublicKey = ec.EllipticCurvePublicKey | rsa.RSAPublicKey | ed25519.Ed25519PublicKey


class Verdict(StrEnum):
    SIGNED = "signed"
    UNSIGNED = "unsigned"
    BAD_SIGNATURE = "bad signature"  # no trusted key verifies it: another key signed it, or it was altered
    WRONG_DIGEST = "wrong digest"  # a trusted key signed a payload naming another image
    BAD_PAYLOAD = "bad payload"  # verified, but not a cosign image signature payload
    NO_TRUSTED_KEY = "no trusted key"  # the policy trusts no key for the repository
    NO_DIGEST = "no registry digest"  # the image was never pushed or pulled: nothing to look up
    UNDECIDED = "undecided"  # the registry could not be asked: fails closed


# When no signature passes, the most telling failure is reported first.
_RANK = [
    Verdict.WRONG_DIGEST,
    Verdict.BAD_PAYLOAD,
    Verdict.BAD_SIGNATURE,
    Verdict.UNDECIDED,
    Verdict.UNSIGNED,
    Verdict.NO_TRUSTED_KEY,
    Verdict.NO_DIGEST,
]


@dataclass(frozen=True)
class Judgement:
    verdict: Verdict
    reason: str
    repository: str = ""
    digest: str = ""
    key: str = ""  # the trusted key that verified a signature

    def evidence(self) -> dict[str, str]:
        shown = {"repository": self.repository, "digest": self.digest, "verdict": str(self.verdict)}
        return shown | {"reason": self.reason} | ({"key": self.key} if self.key else {})


class BadKey(ValueError):
    """A key file is not a PEM public key cosign could have made; the message is one line."""


def load_public_key(pem: str, name: str) -> PublicKey:
    try:
        key = serialization.load_pem_public_key(pem.encode())
    except (ValueError, UnsupportedAlgorithm) as exc:
        raise BadKey(f"{name} is not a PEM public key ({exc})") from None
    if not isinstance(key, PublicKey):
        raise BadKey(f"{name} is a {type(key).__name__}: cosign keys are ECDSA, RSA or Ed25519")
    return key


def verifies(key: PublicKey, payload: bytes, signature: bytes) -> bool:
    try:
        if isinstance(key, ec.EllipticCurvePublicKey):
            key.verify(signature, payload, ec.ECDSA(hashes.SHA256()))
        elif isinstance(key, rsa.RSAPublicKey):
            key.verify(signature, payload, padding.PKCS1v15(), hashes.SHA256())
        else:
            key.verify(signature, payload)
    except InvalidSignature:
        return False
    return True


def _field(document: Any, name: str) -> Any:
    """A JSON member as Go's decoder finds it (cosign is Go): the exact name first, else any case."""
    if not isinstance(document, dict):
        return None
    if name in document:
        return document[name]
    return next((value for key, value in document.items() if isinstance(key, str) and key.lower() == name), None)


def claimed_digest(payload: bytes) -> str | None:
    """The digest a simple-signing payload vouches for; None when it is not a cosign image signature payload."""
    try:
        document = json.loads(payload)
    except ValueError:
        return None
    critical = _field(document, "critical")
    if _field(critical, "type") != COSIGN_PAYLOAD_TYPE:
        return None
    digest = _field(_field(critical, "image"), "docker-manifest-digest")
    return digest if isinstance(digest, str) else None


@dataclass(frozen=True)
class _Signed:
    """What a signature vouches for once its bytes are decoded: the signed message, the signatures over it, and the
    digests the payload names (None: the payload is not a cosign image signature)."""

    message: bytes
    signatures: list[bytes]
    claimed: list[str] | None


def _b64(text: Any) -> bytes:
    if not isinstance(text, str):
        raise ValueError("not a string")
    try:
        return base64.b64decode(text, validate=True)
    except binascii.Error:
        return base64.urlsafe_b64decode(text)  # protobuf JSON readers take either alphabet


def pae(payload_type: str, payload: bytes) -> bytes:
    """DSSE's pre-authentication encoding: what a DSSE signature is made over."""
    kind = payload_type.encode()
    return b"DSSEv1 %d %s %d %s" % (len(kind), kind, len(payload), payload)


def statement_digests(payload: bytes) -> list[str] | None:
    """The subject digests of the in-toto statement `cosign sign` makes in a bundle; None for any other payload."""
    try:
        statement = json.loads(payload)
    except ValueError:
        return None
    if not isinstance(statement, dict) or statement.get("_type") not in IN_TOTO_STATEMENTS:
        return None
    if statement.get("predicateType") != COSIGN_SIGN_PREDICATE or not isinstance(statement.get("subject"), list):
        return None
    digests = [s.get("digest") for s in statement["subject"] if isinstance(s, dict)]
    return [f"sha256:{d['sha256']}" for d in digests if isinstance(d, dict) and isinstance(d.get("sha256"), str)]


def _decode(signature: CosignSignature) -> _Signed:
    """Raises ValueError (binascii.Error included) when the signature's parts are not what its layout has."""
    if signature.media_type == SIMPLE_SIGNING_TYPE:
        payload = _b64(signature.payload_b64)
        claimed = claimed_digest(payload)
        return _Signed(payload, [_b64(signature.signature_b64)], None if claimed is None else [claimed])
    bundle = json.loads(_b64(signature.payload_b64))
    envelope = bundle.get("dsseEnvelope") if isinstance(bundle, dict) else None
    if not isinstance(envelope, dict) or not isinstance(envelope.get("payloadType"), str):
        raise ValueError("the bundle holds no DSSE envelope (message-signature bundles are not read)")
    payload = _b64(envelope.get("payload"))
    entries = envelope.get("signatures")
    signatures = [_b64(e.get("sig")) for e in entries if isinstance(e, dict)] if isinstance(entries, list) else []
    subjects = statement_digests(payload) if envelope["payloadType"] == IN_TOTO_PAYLOAD_TYPE else None
    return _Signed(pae(envelope["payloadType"], payload), signatures, subjects)


def _judge_signature(number: int, signature: CosignSignature, lookup: SignatureLookup) -> Judgement:
    where = {"repository": lookup.repository, "digest": lookup.digest}
    kind = "bundle" if signature.media_type == BUNDLE_TYPE else "signature"
    try:
        signed = _decode(signature)
    except ValueError as exc:  # binascii.Error and json's errors are ValueErrors
        return Judgement(Verdict.BAD_SIGNATURE, f"{kind} {number} cannot be decoded: {exc}", **where)
    names = ", ".join(key.name for key in lookup.trusted_keys)
    signer = next(
        (
            key.name
            for key in lookup.trusted_keys
            for raw in signed.signatures
            if verifies(load_public_key(key.pem, key.name), signed.message, raw)
        ),
        None,
    )
    if signer is None:
        return Judgement(
            Verdict.BAD_SIGNATURE,
            f"{kind} {number} does not verify with the trusted keys ({names}): another key made it, or the "
            "payload or signature was altered",
            **where,
        )
    if signed.claimed is None:
        return Judgement(
            Verdict.BAD_PAYLOAD, f"{kind} {number} (by {signer}) is not a cosign image signature payload", **where
        )
    if lookup.digest not in signed.claimed:
        return Judgement(
            Verdict.WRONG_DIGEST,
            f"{kind} {number} (by {signer}) vouches for {', '.join(signed.claimed) or 'no digest'}, not this "
            f"image's {lookup.digest}",
            **where,
        )
    return Judgement(Verdict.SIGNED, f"signed by {signer}", key=signer, **where)


def judge_lookup(lookup: SignatureLookup) -> Judgement:
    """One repository's verdict: signed when any signature verifies with a trusted key and names the digest."""
    where = {"repository": lookup.repository, "digest": lookup.digest}
    if lookup.error is not None:
        return Judgement(Verdict.UNDECIDED, f"the signatures could not be read: {lookup.error}", **where)
    if not lookup.trusted_keys:
        return Judgement(Verdict.NO_TRUSTED_KEY, f"the trust policy trusts no key for {lookup.repository}", **where)
    if not lookup.found:
        stored = lookup.signature_repository or lookup.repository
        return Judgement(
            Verdict.UNSIGNED, f"no {lookup.signature_tag} nor a bundle for the digest in {stored}", **where
        )
    judged = [
        _judge_signature(number, signature, lookup)
        for number, signature in enumerate(lookup.signatures, 1)
        if signature.media_type in (SIMPLE_SIGNING_TYPE, BUNDLE_TYPE)
    ]
    if not judged:
        return Judgement(Verdict.UNSIGNED, f"{lookup.signature_tag} holds no simple-signing signature", **where)
    return _best(judged)


def _best(judged: list[Judgement]) -> Judgement:
    passing = [j for j in judged if j.verdict is Verdict.SIGNED]
    if passing:
        return passing[0]
    worst = min(judged, key=lambda j: _RANK.index(j.verdict))
    reasons = "; ".join(dict.fromkeys(j.reason for j in judged))
    return Judgement(worst.verdict, reasons, worst.repository, worst.digest)


def judge_image(signatures: ImageSignatures) -> Judgement:
    """The image's verdict: signed when one of its repo digests is; else the most telling failure."""
    if not signatures.lookups:
        return Judgement(Verdict.NO_DIGEST, "the image was never pushed or pulled, so there is no signature to look up")
    judged = [judge_lookup(lookup) for lookup in signatures.lookups]
    if len(judged) > 1:  # several repositories: say which one each reason is about
        judged = [Judgement(j.verdict, f"{j.repository}: {j.reason}", j.repository, j.digest, j.key) for j in judged]
    return _best(judged)

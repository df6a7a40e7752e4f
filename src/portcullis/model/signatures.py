"""Facts about cosign signatures: what the registry holds for an image digest, and the keys trusted for it.

Collected by collect/image/signatures.py, judged by checks/signatures.py (CIS-4.12). The payload and signature
are kept as the registry served them (base64), so a recorded snapshot can be verified again later.
"""

from __future__ import annotations

from pydantic import BaseModel, Field

SIMPLE_SIGNING_TYPE = "application/vnd.dev.cosign.simplesigning.v1+json"
SIGNATURE_ANNOTATION = "dev.cosignproject.cosign/signature"
BUNDLE_TYPE = "application/vnd.dev.sigstore.bundle.v0.3+json"  # cosign 3's default: an OCI 1.1 referrer


class TrustedKey(BaseModel):
    """A public key the trust policy names: where it came from, and its PEM text (public keys are not secrets)."""

    name: str = Field(description="the key file as the user named it")
    pem: str


class CosignSignature(BaseModel):
    """One signature: a layer of the `sha256-<hex>.sig` manifest (a simple-signing payload, its signature in an
    annotation), or a Sigstore bundle attached to the digest as an OCI 1.1 referrer (its signature inside)."""

    media_type: str
    payload_digest: str = Field(description="the layer's digest: the payload (or bundle) blob as the manifest names it")
    payload_b64: str = Field("", description="the payload or bundle blob, base64; '' when the layer was not fetched")
    signature_b64: str = Field("", description="the dev.cosignproject.cosign/signature annotation (simple signing)")


class SignatureLookup(BaseModel):
    """The signatures one registry holds for one image digest, and the keys the policy trusts for that repository."""

    repository: str = Field(description="HOST/REPO where the image and its signatures live")
    digest: str = Field(description="the image's manifest (or index) digest the signatures must name")
    signature_tag: str = Field(description="sha256-<hex>.sig")
    signature_repository: str = Field(
        "", description="HOST/REPO holding the signatures when not beside the image (cosign's COSIGN_REPOSITORY)"
    )
    trusted_keys: list[TrustedKey] = Field(default_factory=list)
    found: bool = Field(False, description="the registry has the .sig tag or a bundle referring to the digest")
    signatures: list[CosignSignature] = Field(default_factory=list)
    error: str | None = Field(None, description="why the registry could not be asked: the lookup is undecided")


class ImageSignatures(BaseModel):
    """What a trust policy found for one image: one lookup per repo digest (none: the image has no registry
    digest), and the running containers that use the image (audit only)."""

    policy: str = Field(description="where the trusted keys came from: the policy file or --verify-key")
    lookups: list[SignatureLookup] = Field(default_factory=list)
    containers: list[str] = Field(default_factory=list, description="running containers of this image (audit)")

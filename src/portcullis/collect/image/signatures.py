"""Fetch the cosign signatures a registry holds for an image digest: the `sha256-<hex>.sig` tag, and Sigstore
bundles attached to the digest as OCI 1.1 referrers (cosign 3's default).

Only fetched here; checks/signatures.py judges them. The registry may be hostile: the signature manifest, the number
of signatures and each payload are bounded in size, every request in time (the registry client's deadlines) and the
whole lookup by LOOKUP_SECONDS. Any failure to ask is recorded as the lookup's error, which the rule treats as
undecided (a failure), never as unsigned or signed.
"""

from __future__ import annotations

import base64
import time
from collections.abc import Sequence
from typing import Any

from portcullis.collect.image.errors import KIB, Credentials, ImageError, Limits
from portcullis.collect.image.oci import check_digest
from portcullis.collect.image.registry import ImageReference, NotInRegistry, RegistryClient
from portcullis.model.signatures import (
    BUNDLE_TYPE,
    SIGNATURE_ANNOTATION,
    SIMPLE_SIGNING_TYPE,
    CosignSignature,
    SignatureLookup,
    TrustedKey,
)

MAX_SIGNATURE_MANIFEST = 256 * KIB  # one layer descriptor per signature: a few hundred bytes each
MAX_SIGNATURES = 32  # cosign appends a layer per `cosign sign`; more than this is not a real image's history
MAX_PAYLOAD_BYTES = 64 * KIB  # a simple-signing payload is a few hundred bytes plus the signer's annotations
MAX_BUNDLE_BYTES = 256 * KIB  # a bundle adds the transparency-log entry and maybe a certificate chain: a few KB
LOOKUP_SECONDS = 120.0  # the whole lookup: each request has its own deadline too


def signature_tag(digest: str) -> str:
    """cosign's tag for the signatures of `digest`: sha256:abc… → sha256-abc….sig."""
    algorithm, hexdigest = check_digest(digest)
    return f"{algorithm}-{hexdigest}.sig"


def lookup_signatures(
    repository: str,
    digest: str,
    keys: Sequence[TrustedKey],
    insecure_hosts: Sequence[str] = (),
    credentials: Credentials | None = None,
    stored_in: str = "",
) -> SignatureLookup:
    """The signatures stored beside `repository@digest` (HOST/REPO as an image reference names it), or in
    `stored_in` when given, with `keys` recorded as the ones trusted for it. With no key trusted the registry is not
    asked: nothing could pass."""
    ref = ImageReference.parse(f"{repository}@{digest}")
    store = ImageReference.parse(stored_in) if stored_in else ref
    tag = signature_tag(digest)
    lookup = SignatureLookup(
        repository=ref.name,
        digest=digest,
        signature_tag=tag,
        signature_repository=store.name if stored_in else "",
        trusted_keys=list(keys),
    )
    if not keys:
        return lookup
    client = RegistryClient(ImageReference(store.host, store.repository, tag, ""), list(insecure_hosts), credentials)
    give_up = time.monotonic() + LOOKUP_SECONDS
    try:
        _signature_tag(lookup, client, give_up)
        _bundles(lookup, client, give_up)
    except ImageError as exc:  # a 404 here is a payload or bundle the manifest names but the registry lacks
        lookup.error = str(exc)
    finally:
        client.close()
    return lookup


def _in_time(lookup: SignatureLookup, give_up: float) -> None:
    if time.monotonic() > give_up:
        raise ImageError(f"the signatures of {lookup.repository} took over {LOOKUP_SECONDS:g} s to fetch")


def _signature_tag(lookup: SignatureLookup, client: RegistryClient, give_up: float) -> None:
    """The `.sig` tag layout (cosign before 3, and 3 with --new-bundle-format=false)."""
    try:
        manifest, _ = client.manifest(lookup.signature_tag, Limits(max_json_bytes=MAX_SIGNATURE_MANIFEST))
    except NotInRegistry:
        return
    lookup.found = True
    layers = manifest.get("layers")
    if not isinstance(layers, list):
        raise ImageError(f"{lookup.signature_tag} is not an image manifest with layers")
    if len(layers) > MAX_SIGNATURES:
        raise ImageError(f"{lookup.signature_tag} has {len(layers)} layers, over the {MAX_SIGNATURES} read")
    for layer in layers:
        signature = _descriptor(layer)
        if signature.media_type == SIMPLE_SIGNING_TYPE:
            _in_time(lookup, give_up)
            payload = client.small_blob(signature.payload_digest, MAX_PAYLOAD_BYTES)
            signature.payload_b64 = base64.b64encode(payload).decode()
        lookup.signatures.append(signature)


def _bundles(lookup: SignatureLookup, client: RegistryClient, give_up: float) -> None:
    """Sigstore bundles attached to the digest as OCI 1.1 referrers (cosign 3's default), found as cosign finds
    them: by the referrers' artifactType."""
    limits = Limits(max_json_bytes=MAX_SIGNATURE_MANIFEST)
    index = client.referrers(lookup.digest, limits)
    if index is None:
        return
    entries = index.get("manifests")
    if not isinstance(entries, list):
        raise ImageError(f"the referrers of {lookup.digest[:19]} are not an image index")
    bundles = [e for e in entries if isinstance(e, dict) and e.get("artifactType") == BUNDLE_TYPE]
    if len(lookup.signatures) + len(bundles) > MAX_SIGNATURES:
        raise ImageError(f"{len(bundles)} bundles refer to {lookup.digest[:19]}, over the {MAX_SIGNATURES} read")
    for entry in bundles:
        _in_time(lookup, give_up)
        algorithm, hexdigest = check_digest(entry.get("digest"))
        manifest, _ = client.manifest(f"{algorithm}:{hexdigest}", limits)  # checked against that digest
        subject = manifest.get("subject")
        if not isinstance(subject, dict) or subject.get("digest") != lookup.digest:
            continue  # listed under the digest but about another image: not a signature of this one
        layers = manifest.get("layers")
        layer = layers[0] if isinstance(layers, list) and len(layers) == 1 else None
        descriptor = _descriptor(layer)
        if descriptor.media_type != BUNDLE_TYPE:
            continue
        bundle = client.small_blob(descriptor.payload_digest, MAX_BUNDLE_BYTES)
        descriptor.payload_b64 = base64.b64encode(bundle).decode()
        lookup.signatures.append(descriptor)
        lookup.found = True


def _descriptor(layer: Any) -> CosignSignature:
    if not isinstance(layer, dict):
        raise ImageError("a signature layer is not a JSON object")
    media_type, digest = layer.get("mediaType"), layer.get("digest")
    check_digest(digest)
    annotations = layer.get("annotations")
    signature = annotations.get(SIGNATURE_ANNOTATION) if isinstance(annotations, dict) else None
    return CosignSignature(
        media_type=media_type if isinstance(media_type, str) else "",
        payload_digest=digest,
        signature_b64=signature if isinstance(signature, str) else "",
    )

"""Fetch the cosign signatures a registry holds for an image digest (the `sha256-<hex>.sig` tag).

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
    SIGNATURE_ANNOTATION,
    SIMPLE_SIGNING_TYPE,
    CosignSignature,
    SignatureLookup,
    TrustedKey,
)

MAX_SIGNATURE_MANIFEST = 256 * KIB  # one layer descriptor per signature: a few hundred bytes each
MAX_SIGNATURES = 32  # cosign appends a layer per `cosign sign`; more than this is not a real image's history
MAX_PAYLOAD_BYTES = 64 * KIB  # a simple-signing payload is a few hundred bytes plus the signer's annotations
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
    try:
        _fill(lookup, client, time.monotonic() + LOOKUP_SECONDS)
    except NotInRegistry as exc:
        if lookup.found:  # the .sig tag is there but names a payload the registry lacks
            lookup.error = str(exc)
    except ImageError as exc:
        lookup.error = str(exc)
    finally:
        client.close()
    return lookup


def _fill(lookup: SignatureLookup, client: RegistryClient, give_up: float) -> None:
    manifest, _ = client.manifest(lookup.signature_tag, Limits(max_json_bytes=MAX_SIGNATURE_MANIFEST))
    lookup.found = True
    layers = manifest.get("layers")
    if not isinstance(layers, list):
        raise ImageError(f"{lookup.signature_tag} is not an image manifest with layers")
    if len(layers) > MAX_SIGNATURES:
        raise ImageError(f"{lookup.signature_tag} has {len(layers)} layers, over the {MAX_SIGNATURES} read")
    for layer in layers:
        signature = _descriptor(layer)
        if signature.media_type == SIMPLE_SIGNING_TYPE:
            if time.monotonic() > give_up:
                raise ImageError(f"the signatures of {lookup.repository} took over {LOOKUP_SECONDS:g} s to fetch")
            payload = client.small_blob(signature.payload_digest, MAX_PAYLOAD_BYTES)
            signature.payload_b64 = base64.b64encode(payload).decode()
        lookup.signatures.append(signature)


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

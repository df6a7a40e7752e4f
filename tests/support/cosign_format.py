"""Sign images as `cosign sign --key` does and push the signatures to a test registry, in both of its layouts.

Written from cosign's specifications (no cosign binary can be installed here):
- SIGNATURE_SPEC: an OCI image manifest tagged `sha256-<hex>.sig` beside the image, one layer per signature whose
  blob is the simple-signing payload (media type application/vnd.dev.cosign.simplesigning.v1+json) and whose
  annotation `dev.cosignproject.cosign/signature` holds the base64 ASN.1 ECDSA-P256/SHA-256 signature over it;
- BUNDLE_SPEC (cosign 3's default): a Sigstore bundle v0.3 whose DSSE envelope signs an in-toto statement naming the
  image's digest (predicate https://sigstore.dev/cosign/sign/v1), stored as an OCI 1.1 referrer of the image; the
  local registry has no referrers API, so the referrers index goes under the fallback tag `sha256-<hex>`.
"""

from __future__ import annotations

import base64
import hashlib
import json
from dataclasses import dataclass

import requests
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

SIMPLE_SIGNING = "application/vnd.dev.cosign.simplesigning.v1+json"
BUNDLE = "application/vnd.dev.sigstore.bundle.v0.3+json"
IN_TOTO = "application/vnd.in-toto+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_EMPTY = "application/vnd.oci.empty.v1+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
MANIFEST_ACCEPT = ", ".join(
    (OCI_MANIFEST, "application/vnd.docker.distribution.manifest.v2+json", "application/vnd.oci.image.index.v1+json")
)


@dataclass(frozen=True)
class SigningKey:
    private: ec.EllipticCurvePrivateKey

    @classmethod
    def generate(cls) -> SigningKey:
        return cls(ec.generate_private_key(ec.SECP256R1()))

    @property
    def public_pem(self) -> str:
        return (
            self.private.public_key()
            .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
            .decode()
        )

    def sign(self, payload: bytes) -> str:
        return base64.b64encode(self.private.sign(payload, ec.ECDSA(hashes.SHA256()))).decode()


def payload(reference: str, digest: str) -> bytes:
    """The simple-signing payload cosign signs for `reference` (HOST/REPO) at `digest`."""
    document = {
        "critical": {
            "identity": {"docker-reference": reference},
            "image": {"docker-manifest-digest": digest},
            "type": "cosign container image signature",
        },
        "optional": None,
    }
    return json.dumps(document, separators=(",", ":")).encode()


def bundle(key: SigningKey, digest: str, statement_digest: str = "") -> bytes:
    """A Sigstore bundle as cosign 3 makes for `digest` (or vouching for `statement_digest` instead)."""
    statement = {
        "_type": "https://in-toto.io/Statement/v1",
        "subject": [{"digest": {"sha256": (statement_digest or digest).split(":", 1)[1]}}],
        "predicateType": "https://sigstore.dev/cosign/sign/v1",
        "predicate": {},
    }
    body = json.dumps(statement).encode()
    signed = b"DSSEv1 %d %s %d %s" % (len(IN_TOTO), IN_TOTO.encode(), len(body), body)  # DSSE's PAE
    envelope = {
        "payload": base64.b64encode(body).decode(),
        "payloadType": IN_TOTO,
        "signatures": [{"sig": key.sign(signed)}],
    }
    return json.dumps({"mediaType": BUNDLE, "verificationMaterial": {}, "dsseEnvelope": envelope}).encode()


def _digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


class TestRegistry:
    """A plain-HTTP registry at `host` (127.0.0.1:5000), written through the distribution API."""

    __test__ = False  # not a pytest class

    def __init__(self, host: str) -> None:
        self.host = host
        self.base = f"http://{host}/v2"

    def push_blob(self, repository: str, data: bytes) -> str:
        digest = _digest(data)
        started = requests.post(f"{self.base}/{repository}/blobs/uploads/", timeout=10)
        assert started.status_code == 202, started.text
        location = started.headers["Location"]
        if location.startswith("/"):
            location = f"http://{self.host}{location}"
        done = requests.put(location, params={"digest": digest}, data=data, timeout=10)
        assert done.status_code == 201, done.text
        return digest

    def mount_blob(self, repository: str, digest: str, source: str) -> None:
        mounted = requests.post(
            f"{self.base}/{repository}/blobs/uploads/", params={"mount": digest, "from": source}, timeout=10
        )
        assert mounted.status_code == 201, f"mount {digest} from {source}: {mounted.status_code}"

    def manifest(self, repository: str, reference: str) -> tuple[bytes, str, str]:
        """The manifest's bytes, media type and digest."""
        answer = requests.get(
            f"{self.base}/{repository}/manifests/{reference}", headers={"Accept": MANIFEST_ACCEPT}, timeout=10
        )
        assert answer.status_code == 200, f"{repository}:{reference}: {answer.status_code}"
        return answer.content, answer.headers["Content-Type"], _digest(answer.content)

    def put_manifest(self, repository: str, reference: str, data: bytes, media_type: str) -> str:
        answer = requests.put(
            f"{self.base}/{repository}/manifests/{reference}",
            data=data,
            headers={"Content-Type": media_type},
            timeout=10,
        )
        assert answer.status_code == 201, answer.text
        return _digest(data)

    def copy_image(self, source: str, tag: str, repository: str, label: str = "") -> str:
        """Copy a single-platform image into another repository (layers mounted, not uploaded); its digest.
        With `label`, the config gets the label portcullis.test.copy=LABEL: an image of its own id, so the engine
        tells it apart from the source when it is pulled."""
        data, media_type, _ = self.manifest(source, tag)
        manifest = json.loads(data)
        for descriptor in manifest["layers"]:
            self.mount_blob(repository, descriptor["digest"], source)
        if label:
            blob = requests.get(f"{self.base}/{source}/blobs/{manifest['config']['digest']}", timeout=10)
            config = json.loads(blob.content)
            labels = config.setdefault("config", {}).get("Labels") or {}
            config["config"]["Labels"] = labels | {"portcullis.test.copy": label}
            body = json.dumps(config).encode()
            manifest["config"] |= {"digest": self.push_blob(repository, body), "size": len(body)}
            data = json.dumps(manifest).encode()
        else:
            self.mount_blob(repository, manifest["config"]["digest"], source)
        return self.put_manifest(repository, tag, data, media_type)

    def push_signatures(self, repository: str, image_digest: str, layers: list[tuple[bytes, str]]) -> str:
        """Store (payload, base64 signature) pairs as the image's `.sig` manifest; returns the tag."""
        descriptors = []
        for body, signature in layers:
            descriptors.append(
                {
                    "mediaType": SIMPLE_SIGNING,
                    "size": len(body),
                    "digest": self.push_blob(repository, body),
                    "annotations": {"dev.cosignproject.cosign/signature": signature},
                }
            )
        config = json.dumps(
            {
                "architecture": "",
                "os": "",
                "config": {},
                "rootfs": {"type": "layers", "diff_ids": [d["digest"] for d in descriptors]},
            }
        ).encode()
        manifest = {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {"mediaType": OCI_CONFIG, "size": len(config), "digest": self.push_blob(repository, config)},
            "layers": descriptors,
        }
        tag = image_digest.replace(":", "-") + ".sig"
        self.put_manifest(repository, tag, json.dumps(manifest).encode(), OCI_MANIFEST)
        return tag

    def attach_bundle(self, repository: str, image_digest: str, body: bytes) -> None:
        """Store `body` as a referrer of the image (its subject) and list it in the fallback referrers index."""
        empty = self.push_blob(repository, b"{}")
        layer = {"mediaType": BUNDLE, "digest": self.push_blob(repository, body), "size": len(body)}
        image, media_type, _ = self.manifest(repository, image_digest)
        manifest = {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "artifactType": BUNDLE,
            "config": {"mediaType": OCI_EMPTY, "digest": empty, "size": 2},
            "layers": [layer],
            "subject": {"mediaType": media_type, "digest": image_digest, "size": len(image)},
        }
        data = json.dumps(manifest).encode()
        referrer = self.put_manifest(repository, _digest(data), data, OCI_MANIFEST)
        tag = image_digest.replace(":", "-")
        listed = requests.get(f"{self.base}/{repository}/manifests/{tag}", headers={"Accept": OCI_INDEX}, timeout=10)
        index = (
            listed.json()
            if listed.status_code == 200
            else {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": []}
        )
        index["manifests"].append(
            {"mediaType": OCI_MANIFEST, "digest": referrer, "size": len(data), "artifactType": BUNDLE}
        )
        self.put_manifest(repository, tag, json.dumps(index).encode(), OCI_INDEX)

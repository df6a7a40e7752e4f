"""Sign images in cosign's `.sig` layout and push the signatures to a test registry, as `cosign sign --key` does.

Written from cosign's SIGNATURE_SPEC (no cosign binary can be installed here): an OCI image manifest tagged
`sha256-<hex>.sig` beside the image, one layer per signature whose blob is the simple-signing payload
(media type application/vnd.dev.cosign.simplesigning.v1+json) and whose annotation
`dev.cosignproject.cosign/signature` holds the base64 ASN.1 ECDSA-P256/SHA-256 signature over those bytes.
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

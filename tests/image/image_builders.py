"""Build image layers, docker-save tarballs and OCI layouts in test code (no committed blobs)."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import tarfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from backports import zstd

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar"


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


@dataclass
class M:
    """One tar member: kind is file, dir, symlink, hardlink, chr, blk or fifo."""

    name: str
    data: bytes = b""
    mode: int = 0o644
    kind: str = "file"
    link: str = ""
    size: int | None = None  # declared size when it differs from the data


def layer_tar(*members: M) -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for m in members:
            info = tarfile.TarInfo(m.name)
            info.mode = m.mode
            info.type = {
                "file": tarfile.REGTYPE,
                "dir": tarfile.DIRTYPE,
                "symlink": tarfile.SYMTYPE,
                "hardlink": tarfile.LNKTYPE,
                "chr": tarfile.CHRTYPE,
                "blk": tarfile.BLKTYPE,
                "fifo": tarfile.FIFOTYPE,
            }[m.kind]
            info.linkname = m.link
            if m.kind == "file":
                info.size = len(m.data)
                tar.addfile(info, io.BytesIO(m.data))
            else:
                tar.addfile(info)
    return out.getvalue()


def compress(data: bytes, how: str) -> bytes:
    if how == "gzip":
        return gzip.compress(data, compresslevel=1)
    if how == "zstd":
        return zstd.compress(data)
    return data


@dataclass
class Image:
    layers: list[bytes]  # uncompressed layer tars
    created_by: list[str] = field(default_factory=list)
    config: dict[str, Any] = field(default_factory=dict)
    architecture: str = "amd64"
    raw_config: bytes | None = None  # a real config (from `docker save`) used as is

    def config_json(self) -> bytes:
        if self.raw_config is not None:
            return self.raw_config
        history = [{"created": "2024-05-01T10:00:00.123456789Z", "created_by": line} for line in self.created_by] or [
            {"created_by": ""} for _ in self.layers
        ]
        doc = {
            "architecture": self.architecture,
            "os": "linux",
            "created": "2024-05-01T10:00:00.123456789Z",
            "config": self.config,
            "rootfs": {"type": "layers", "diff_ids": [sha256(layer) for layer in self.layers]},
            "history": history,
        }
        return json.dumps(doc).encode()


def add_bytes(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mode = 0o644
    tar.addfile(info, io.BytesIO(data))


def docker_archive(path: Path, image: Image, tags: list[str] | None = None, manifest: Any = None) -> Path:
    """A `docker save` style tarball (legacy layout: <id>/layer.tar, <config>.json, manifest.json last)."""
    config = image.config_json()
    config_name = sha256(config).split(":")[1] + ".json"
    layer_names = []
    with tarfile.open(path, "w") as tar:
        for index, layer in enumerate(image.layers):
            name = f"{index:02d}{sha256(layer)[7:20]}/layer.tar"
            add_bytes(tar, name, layer)
            layer_names.append(name)
        add_bytes(tar, config_name, config)
        if manifest is None:
            manifest = [{"Config": config_name, "RepoTags": tags or ["test/image:1"], "Layers": layer_names}]
        add_bytes(tar, "manifest.json", manifest if isinstance(manifest, bytes) else json.dumps(manifest).encode())
    return path


class OciLayout:
    """Blobs and an index.json, written to a directory or a tar."""

    def __init__(self) -> None:
        self.blobs: dict[str, bytes] = {}
        self.index: dict[str, Any] = {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": []}

    def blob(self, data: bytes) -> dict[str, Any]:
        digest = sha256(data)
        self.blobs[digest] = data
        return {"digest": digest, "size": len(data)}

    def manifest(self, image: Image, compression: str = "gzip") -> dict[str, Any]:
        layers = [
            {
                "mediaType": OCI_LAYER + ("+" + compression if compression != "none" else ""),
                **self.blob(compress(t, compression)),
            }
            for t in image.layers
        ]
        doc = {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {"mediaType": OCI_CONFIG, **self.blob(image.config_json())},
            "layers": layers,
        }
        return {"mediaType": OCI_MANIFEST, **self.blob(json.dumps(doc).encode())}

    def add(self, image: Image, compression: str = "gzip", name: str = "") -> None:
        descriptor = self.manifest(image, compression)
        if name:
            descriptor["annotations"] = {"org.opencontainers.image.ref.name": name}
        self.index["manifests"].append(descriptor)

    def add_multiplatform(self, images: list[Image], compression: str = "gzip") -> None:
        """One nested index with a manifest per platform, referenced from index.json."""
        nested = {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": []}
        for image in images:
            descriptor = self.manifest(image, compression)
            descriptor["platform"] = {"os": "linux", "architecture": image.architecture}
            nested["manifests"].append(descriptor)
        self.index["manifests"].append({"mediaType": OCI_INDEX, **self.blob(json.dumps(nested).encode())})

    def files(self) -> dict[str, bytes]:
        out = {"oci-layout": b'{"imageLayoutVersion": "1.0.0"}', "index.json": json.dumps(self.index).encode()}
        for digest, data in self.blobs.items():
            out["blobs/sha256/" + digest.split(":")[1]] = data
        return out

    def write_dir(self, root: Path) -> Path:
        for name, data in self.files().items():
            (root / name).parent.mkdir(parents=True, exist_ok=True)
            (root / name).write_bytes(data)
        return root

    def write_tar(self, path: Path) -> Path:
        with tarfile.open(path, "w") as tar:
            for name, data in self.files().items():
                add_bytes(tar, name, data)
        return path


def image_from_docker_save(save_tar: Path, architecture: str = "") -> Image:
    """The layers and config of a `docker save` tarball, ready to be written as an OCI image."""
    with tarfile.open(save_tar) as tar:
        manifest = json.load(tar.extractfile("manifest.json"))[0]  # type: ignore[arg-type]
        raw = tar.extractfile(manifest["Config"]).read()  # type: ignore[union-attr]
        layers = [tar.extractfile(name).read() for name in manifest["Layers"]]  # type: ignore[union-attr]
    config = json.loads(raw)
    if architecture:
        config["architecture"] = architecture
        raw = json.dumps(config).encode()
    return Image(layers=layers, architecture=config.get("architecture", "amd64"), raw_config=raw)

"""Image sources and the one-pass layer reader: `analyse_image("docker-archive:img.tar")` → ImageFacts.

Transports, as skopeo spells them: engine:, docker-archive:, oci:, oci-archive:, dir:, registry:.
Without one, an existing path is inspected (tar, OCI layout or root directory) and a name is looked
up in the engine first, then in its registry.
"""

from __future__ import annotations

import tarfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from portcullis.collect import CollectionError
from portcullis.collect.files import open_regular
from portcullis.collect.image.errors import Credentials, ImageError, Limits
from portcullis.collect.image.platforms import Platform

if TYPE_CHECKING:
    from portcullis.collect.image.layer_cache import LayerCache
    from portcullis.model.facts import ImageFacts

# Each source's reader is imported when used: a scan should not pay for the HTTP stack or the Docker SDK it never uses.

__all__ = [
    "TRANSPORTS",
    "Credentials",
    "ImageError",
    "ImageOptions",
    "Limits",
    "Platform",
    "analyse_image",
    "analyse_images",
]

TRANSPORTS = ("engine", "docker-archive", "oci", "oci-archive", "dir", "registry")


@dataclass
class ImageOptions:
    platform: Platform | None = None
    insecure_registries: list[str] = field(default_factory=list)
    credentials: Credentials | None = None
    engine_host: str | None = None
    limits: Limits = field(default_factory=Limits)
    cache: LayerCache | None = None  # layer scans and configs kept from earlier reads (layer_cache)


def split_transport(reference: str) -> tuple[str | None, str]:
    head, sep, rest = reference.partition(":")
    if sep and head in TRANSPORTS and rest:
        return head, rest
    return None, reference


def _path_and_name(text: str) -> tuple[Path, str]:
    """oci:PATH[:NAME] — the name is split off only when PATH alone does not exist."""
    path = Path(text)
    if path.exists() or ":" not in text:
        return path, ""
    base, _, name = text.rpartition(":")
    return Path(base), name


def detect_path(path: Path) -> str:
    if path.is_dir():
        return "oci" if (path / "oci-layout").is_file() and (path / "index.json").is_file() else "dir"
    try:
        with open_regular(path, ImageError) as handle, tarfile.open(fileobj=handle, mode="r:") as tar:
            names = {name.lstrip("./") for name in tar.getnames()}
    except (OSError, tarfile.TarError) as exc:
        raise ImageError(f"{path} is neither a directory nor a readable tar archive ({exc})") from None
    if "manifest.json" in names:
        return "docker-archive"
    if "index.json" in names:
        return "oci-archive"
    raise ImageError(f"{path} is a tar archive without manifest.json or index.json: not an image archive")


def analyse_image(reference: str, options: ImageOptions | None = None) -> ImageFacts:
    """Read an image's config and every layer once; raise ImageError with one clear line on failure."""
    options = options or ImageOptions()
    transport, rest = split_transport(reference)
    if not rest.strip():  # an unset $IMAGE in CI: Path("") is the current directory, which must not be scanned
        raise ImageError(f"empty image reference {reference!r}: name an image, archive or layout")
    if transport is None:
        if Path(reference).exists():
            transport = detect_path(Path(reference))
        else:
            return _engine_then_registry(reference, options)
    return _read(transport, rest, options)


def analyse_images(references: list[str], options: ImageOptions) -> list[ImageFacts | ImageError]:
    """Several images in one go: what each yields, or the ImageError that says why not. The engine's images are
    exported together, so a layer they share is read once; other sources are read one by one through the cache."""
    from portcullis.collect.image.engine_source import NotInEngine, read_engine_images

    results: dict[int, ImageFacts | ImageError] = {}
    in_engine: dict[int, str] = {}
    for index, reference in enumerate(references):
        transport, rest = split_transport(reference)
        if transport == "engine" or (transport is None and rest.strip() and not Path(reference).exists()):
            in_engine[index] = rest
            continue
        results[index] = _one(reference, options)
    if in_engine:
        try:
            read = read_engine_images(list(in_engine.values()), options.engine_host, options.limits, options.cache)
        except CollectionError as engine_down:  # no engine here: a bare name may still be in its registry
            read = [NotInEngine(str(engine_down)) for _ in in_engine]
        for (index, name), result in zip(in_engine.items(), read, strict=True):
            bare = split_transport(references[index])[0] is None
            if bare and isinstance(result, NotInEngine):
                results[index] = _one("registry:" + name, options, first=str(result))
            else:
                results[index] = result
    return [results[index] for index in range(len(references))]


def _one(reference: str, options: ImageOptions, first: str = "") -> ImageFacts | ImageError:
    try:
        return analyse_image(reference, options)
    except ImageError as exc:
        return ImageError(f"{first}; registry: {exc}") if first else exc
    except CollectionError as exc:
        return ImageError(str(exc))


def _engine_then_registry(name: str, options: ImageOptions) -> ImageFacts:
    from portcullis.collect.image.engine_source import NotInEngine

    try:
        return _read("engine", name, options)
    except NotInEngine as engine_miss:
        first = str(engine_miss)
    except ImageError:
        raise
    except CollectionError as engine_down:  # no engine here: the registry is the only place left
        first = str(engine_down)
    try:
        return _read("registry", name, options)
    except ImageError as exc:
        raise ImageError(f"{first}; registry: {exc}") from None


def _read(transport: str, rest: str, options: ImageOptions) -> ImageFacts:
    from portcullis.collect.image.assemble import ImageMeta, rootfs_facts

    limits = options.limits
    if transport == "engine":
        from portcullis.collect.image.engine_source import read_engine_image

        return read_engine_image(rest, options.engine_host, limits, options.cache)
    if transport == "registry":
        from portcullis.collect.image.registry import read_registry_image

        return read_registry_image(
            rest, options.platform, options.insecure_registries, options.credentials, limits, options.cache
        )
    if transport == "docker-archive":
        from portcullis.collect.image.docker_archive import read_docker_archive

        with open_regular(rest, ImageError) as handle:
            return read_docker_archive(handle, ImageMeta(source=transport, reference=rest), limits, options.cache)
    if transport in ("oci", "oci-archive"):
        from portcullis.collect.image.oci import LayoutArchive, LayoutDirectory, read_layout

        path, name = _path_and_name(rest)
        meta = ImageMeta(source=transport, reference=rest)
        if transport == "oci":
            if not path.is_dir():
                raise ImageError(f"{path} is not an OCI layout directory")
            return read_layout(LayoutDirectory(path), meta, options.platform, name, limits, options.cache)
        archive = LayoutArchive(path)
        try:
            return read_layout(archive, meta, options.platform, name, limits, options.cache)
        finally:
            archive.close()
    from portcullis.collect.image.rootfs import scan_rootfs

    root = Path(rest)
    if not root.is_dir():
        raise ImageError(f"{root} is not a directory")
    scan = scan_rootfs(root, limits)
    meta = ImageMeta(source="dir", reference=rest, image_id=scan.diff_id)
    return rootfs_facts(meta, scan, limits)

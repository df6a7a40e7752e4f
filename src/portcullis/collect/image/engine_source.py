"""Images in the engine: inspected for names, digests and layers, then read from the layer cache or exported.

An image whose config and every layer the cache holds is never exported: the inspect names its layers by diff_id
and its id is its config's digest. The rest are exported through the API in one stream (`docker save A B …`),
in which a layer shared by several images passes once.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import docker.errors
import requests

from portcullis.collect import CollectionError
from portcullis.collect.engine import EngineConnection, connect, from_api, parallel
from portcullis.collect.image.assemble import ImageMeta, image_facts, parse_json
from portcullis.collect.image.docker_archive import read_docker_archive_images
from portcullis.collect.image.errors import ImageError, Limits
from portcullis.collect.image.streams import CHUNK, IteratorReader, buffered
from portcullis.model.facts import ImageFacts

if TYPE_CHECKING:
    from portcullis.collect.image.layer_cache import LayerCache


class NotInEngine(ImageError):
    """The engine does not have the image (auto-detection then tries a registry)."""


@dataclass
class _Inspected:
    meta: ImageMeta
    diff_ids: list[str]


def read_engine_image(name: str, host: str | None, limits: Limits, cache: LayerCache | None = None) -> ImageFacts:
    result = read_engine_images([name], host, limits, cache)[0]
    if isinstance(result, ImageError):
        raise result
    return result


def read_engine_images(
    names: list[str], host: str | None, limits: Limits, cache: LayerCache | None = None
) -> list[ImageFacts | ImageError]:
    """Each name's ImageFacts, or the ImageError that says why it cannot be read (NotInEngine when absent)."""
    conn = connect(host)
    try:
        results: list[ImageFacts | ImageError | None] = []
        pending: dict[int, _Inspected] = {}
        # The inspects wait on the daemon, not on us: ask for all of them at once.
        for index, inspected in enumerate(parallel(lambda name: _inspect_or_error(conn, name), names)):
            if isinstance(inspected, ImageError):
                results.append(inspected)
                continue
            facts = _from_cache(inspected, limits, cache) if cache is not None else None
            results.append(facts)
            if facts is None:
                pending[index] = inspected
        if pending:
            for index, exported in zip(pending, _export(conn, list(pending.values()), limits, cache), strict=True):
                results[index] = exported
        return [result for result in results if result is not None]
    finally:
        conn.close()


def list_engine_images(host: str | None) -> list[str]:
    """Every image on the engine, by a name it is known by (its first tag, else its id), in the engine's order."""
    conn = connect(host)
    try:
        try:
            summaries = conn.api.images()
        except (docker.errors.APIError, requests.RequestException) as exc:
            raise CollectionError(f"cannot list the images of the engine at {conn.endpoint}: {exc}") from None
    finally:
        conn.close()
    names = []
    for summary in summaries if isinstance(summaries, list) else []:
        tags = [tag for tag in summary.get("RepoTags") or [] if tag != "<none>:<none>"]
        names.append(tags[0] if tags else str(summary.get("Id", "")))
    return [name for name in names if name]


def _inspect_or_error(conn: EngineConnection, name: str) -> _Inspected | ImageError:
    try:
        return _inspect(conn, name)
    except ImageError as exc:
        return exc


def _inspect(conn: EngineConnection, name: str) -> _Inspected:
    try:
        answer = conn.api.inspect_image(name)
    except docker.errors.ImageNotFound:
        raise NotInEngine(f"the engine at {conn.endpoint} has no image {name!r}") from None
    except (docker.errors.APIError, requests.RequestException) as exc:
        raise ImageError(f"cannot inspect image {name!r}: {exc}") from None
    try:
        names = from_api(ImageFacts, answer, "image inspect")
    except CollectionError as exc:  # the engine answered: this image is unreadable, no registry fallback
        raise ImageError(str(exc)) from None
    meta = ImageMeta(
        source="engine",
        reference=name,
        image_id=names.id,
        repo_tags=names.repo_tags,
        repo_digests=names.repo_digests,
    )
    return _Inspected(meta, _diff_ids(answer))


def _diff_ids(answer: Any) -> list[str]:
    rootfs = answer.get("RootFS") if isinstance(answer, dict) else None
    layers = rootfs.get("Layers") if isinstance(rootfs, dict) else None
    return [str(layer) for layer in layers] if isinstance(layers, list) else []


def _from_cache(inspected: _Inspected, limits: Limits, cache: LayerCache) -> ImageFacts | None:
    """The image from the cache alone, or None when its config or a layer is missing there."""
    image_id = inspected.meta.image_id
    whole = cache.image(image_id, inspected.meta)
    if whole is not None:
        return whole
    config = cache.config(image_id)
    if config is None or not inspected.diff_ids:
        return None
    scans = cache.layers(inspected.diff_ids, limits)
    if scans is None:
        return None
    facts = image_facts(inspected.meta, parse_json(config, f"config {image_id[:19]}"), image_id, scans, limits)
    cache.keep_image(image_id, facts)
    return facts


def _export(
    conn: EngineConnection, images: list[_Inspected], limits: Limits, cache: LayerCache | None
) -> list[ImageFacts | ImageError]:
    """Export by id (a name could be re-tagged between inspect and export), all in one stream; when that fails,
    one by one, so a single unreadable image costs only its own result."""
    try:
        return list(_export_together(conn, images, limits, cache))
    except ImageError as exc:
        if len(images) == 1:
            return [exc]
    results: list[ImageFacts | ImageError] = []
    for image in images:
        try:
            results.extend(_export_together(conn, [image], limits, cache))
        except ImageError as exc:
            results.append(exc)
    return results


def _export_together(
    conn: EngineConnection, images: list[_Inspected], limits: Limits, cache: LayerCache | None
) -> list[ImageFacts]:
    metas = [image.meta for image in images]
    what = metas[0].reference if len(metas) == 1 else f"the export of {len(metas)} images"
    try:
        chunks = conn.api.export_images([meta.image_id or meta.reference for meta in metas], CHUNK)
        return read_docker_archive_images(buffered(IteratorReader(iter(chunks))), metas, what, limits, cache)
    except (docker.errors.APIError, requests.RequestException) as exc:
        raise ImageError(f"exporting {what} from the engine failed: {exc}") from None

"""Images in the engine: inspected for names and digests, then exported through the API as one stream."""

from __future__ import annotations

import docker.errors
import requests

from portcullis.collect import CollectionError
from portcullis.collect.engine import connect, from_api
from portcullis.collect.image.assemble import ImageMeta
from portcullis.collect.image.docker_archive import read_docker_archive
from portcullis.collect.image.errors import ImageError, Limits
from portcullis.collect.image.streams import CHUNK, IteratorReader, buffered
from portcullis.model.facts import ImageFacts


class NotInEngine(ImageError):
    """The engine does not have the image (auto-detection then tries a registry)."""


def read_engine_image(name: str, host: str | None, limits: Limits) -> ImageFacts:
    conn = connect(host)
    try:
        try:
            inspected = conn.api.inspect_image(name)
        except docker.errors.ImageNotFound:
            raise NotInEngine(f"the engine at {conn.endpoint} has no image {name!r}") from None
        except (docker.errors.APIError, requests.RequestException) as exc:
            raise ImageError(f"cannot inspect image {name!r}: {exc}") from None
        try:
            names = from_api(ImageFacts, inspected, "image inspect")
        except CollectionError as exc:  # the engine answered: this image is unreadable, no registry fallback
            raise ImageError(str(exc)) from None
        meta = ImageMeta(
            source="engine",
            reference=name,
            image_id=names.id,
            repo_tags=names.repo_tags,
            repo_digests=names.repo_digests,
        )
        try:
            # Export by ID: the name could be re-tagged between inspect and export.
            chunks = conn.api.get_image(meta.image_id or name, chunk_size=CHUNK)
            return read_docker_archive(buffered(IteratorReader(iter(chunks))), meta, limits)
        except (docker.errors.APIError, requests.RequestException) as exc:
            raise ImageError(f"exporting image {name!r} from the engine failed: {exc}") from None
    finally:
        conn.close()

"""An image layer reference, shared by the facts and the vulnerability models."""

from __future__ import annotations

from pydantic import BaseModel


class LayerRef(BaseModel):
    """One layer of an image: its position, content digest and the history line that made it."""

    index: int
    diff_id: str
    created_by: str = ""

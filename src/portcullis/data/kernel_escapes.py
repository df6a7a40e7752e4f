"""The curated table of kernel bugs used for container escapes (`kernel_escapes.toml`), with its sources."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from functools import cache
from importlib import resources


@dataclass(frozen=True)
class KernelEscape:
    cve: str
    name: str
    introduced: str
    fixed: tuple[str, ...]
    sources: tuple[str, ...]


@cache
def kernel_escapes() -> tuple[KernelEscape, ...]:
    text = resources.files("portcullis.data").joinpath("kernel_escapes.toml").read_text(encoding="utf-8")
    return tuple(
        KernelEscape(
            cve=bug["cve"],
            name=bug["name"],
            introduced=bug["introduced"],
            fixed=tuple(bug["fixed"]),
            sources=tuple(bug["sources"]),
        )
        for bug in tomllib.loads(text)["bug"]
    )

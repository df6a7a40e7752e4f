"""Facts of one file under `portcullis lint`: a parsed Dockerfile or a loaded compose project.

Pure data, filled by `collect/dockerfile.py` and `collect/compose.py`; the lint rules judge it without I/O.
Every position is a 1-based line number in the file it names.
"""

from __future__ import annotations

import re
from bisect import bisect_right
from functools import cached_property
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

# --- Dockerfile ---------------------------------------------------------------------------------


class ScriptLine(BaseModel):
    """One physical line of shell that an instruction runs, with the backslash continuation removed."""

    model_config = ConfigDict(frozen=True)

    line: int
    text: str
    continues: bool = Field(False, description="the next line joins this one (line continuation), not a new line")


class Heredoc(BaseModel):
    model_config = ConfigDict(frozen=True)

    name: str
    content: str
    first_line: int = Field(description="line of the first body line")


class Instruction(BaseModel):
    model_config = ConfigDict(frozen=True)

    keyword: str = Field(description="upper-case instruction: RUN, FROM, ...")
    arguments: tuple[str, ...] = Field(description="the parser's value list (ENV gives name, value pairs)")
    flags: tuple[str, ...] = ()
    json_form: bool = False
    onbuild: str | None = Field(None, description="the instruction ONBUILD wraps")
    original: str
    start_line: int
    end_line: int
    heredocs: tuple[Heredoc, ...] = ()
    script: tuple[ScriptLine, ...] = Field(
        (), description="RUN only: the shell it runs, line by line, heredoc bodies included"
    )

    def flag(self, name: str) -> str | None:
        """The value of `--name=value` (or '' for a bare `--name`), None when absent."""
        for raw in self.flags:
            key, sep, value = raw.partition("=")
            if key == f"--{name}":
                return value if sep else ""
        return None


class Stage(BaseModel):
    model_config = ConfigDict(frozen=True)

    index: int
    base: str = Field(description="the FROM image reference, build args substituted where they had defaults")
    base_raw: str
    name: str | None = None
    from_line: int
    platform: str | None = None
    instructions: tuple[Instruction, ...] = Field(description="the stage's instructions after FROM")


class DockerfileFacts(BaseModel):
    model_config = ConfigDict(frozen=True)

    path: str
    global_args: dict[str, str | None] = Field(default_factory=dict, description="ARGs before the first FROM")
    stages: tuple[Stage, ...]
    ignores: dict[int, tuple[str, ...]] = Field(
        default_factory=dict, description="line → rule ids silenced there by `# portcullis ignore=ID[,ID]`"
    )

    @property
    def final_stage(self) -> Stage:
        return self.stages[-1]

    def instruction_start(self, line: int) -> int | None:
        """The first line of the instruction spanning `line`, if any: a bisection, as lint asks once per finding."""
        starts, ends = self._spans
        index = bisect_right(starts, line) - 1
        return starts[index] if index >= 0 and line <= ends[index] else None

    @cached_property
    def _spans(self) -> tuple[list[int], list[int]]:
        spans = sorted((i.start_line, i.end_line) for stage in self.stages for i in stage.instructions)
        return [start for start, _ in spans], [end for _, end in spans]

    def stage_named(self, name: str) -> Stage | None:
        wanted = name.lower()
        for stage in self.stages:
            if (stage.name and stage.name.lower() == wanted) or str(stage.index) == wanted:
                return stage
        return None


# --- compose ------------------------------------------------------------------------------------


class SourceRef(BaseModel):
    model_config = ConfigDict(frozen=True)

    path: str
    line: int


class ComposeFacts(BaseModel):
    """A compose project after interpolation and override merging, with where every value came from."""

    model_config = ConfigDict(frozen=True)

    path: str = Field(description="the first compose file: the project's name in findings")
    files: tuple[str, ...]
    document: dict[str, Any]
    lines: dict[str, SourceRef] = Field(
        default_factory=dict, description="JSON pointer (/services/web/ports/0) → file and line that set it"
    )
    ignores: dict[str, dict[int, tuple[str, ...]]] = Field(
        default_factory=dict, description="file → line → rule ids silenced by `# portcullis ignore=ID[,ID]`"
    )
    warnings: tuple[str, ...] = Field((), description="what Compose would warn about, e.g. unset variables")

    @property
    def services(self) -> dict[str, dict[str, Any]]:
        services = self.document.get("services") or {}
        return {name: spec or {} for name, spec in services.items()}

    def where(self, *pointer: str | int) -> SourceRef:
        """The position of a value, or of its nearest ancestor when the value itself is absent."""
        parts = [str(p).replace("~", "~0").replace("/", "~1") for p in pointer]
        while parts:
            found = self.lines.get("/" + "/".join(parts))
            if found:
                return found
            parts.pop()
        return SourceRef(path=self.path, line=1)


_ARG_REF = re.compile(r"\$(?:\{([A-Za-z_][A-Za-z0-9_]*)(?::?[-+][^}]*)?\}|([A-Za-z_][A-Za-z0-9_]*))")


def substitute_args(value: str, args: dict[str, str | None]) -> str:
    """Replace $NAME / ${NAME} by a known build-arg or ENV value; unknown references stay as written."""

    def replace(match: re.Match[str]) -> str:
        known = args.get(match.group(1) or match.group(2))
        return known if known is not None else match.group(0)

    return _ARG_REF.sub(replace, value)

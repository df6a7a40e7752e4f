"""`--engines engines.yaml`: the engines one audit run reaches, each with its own address and TLS material."""

from __future__ import annotations

from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError, model_validator

from portcullis.collect import CollectionError, first_problem
from portcullis.collect.engine import TLSFlags, validate_docker_host


class EngineSpec(BaseModel):
    """One engine: a name for the report, its address, and the docker CLI's TLS flags for it alone."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1)
    host: str = Field(min_length=1, description="unix://…, tcp://HOST:PORT or ssh://USER@HOST")
    tlsverify: bool = False
    tlscacert: Path | None = None
    tlscert: Path | None = None
    tlskey: Path | None = None

    @model_validator(mode="after")
    def _valid_host(self) -> EngineSpec:
        try:
            validate_docker_host(self.host)
        except CollectionError as exc:
            raise ValueError(str(exc).replace("DOCKER_HOST=", "host ")) from None
        return self

    def tls_flags(self) -> TLSFlags | None:
        """This engine's own TLS material; None when it names none (the command line's flags then apply)."""
        if not (self.tlsverify or self.tlscacert or self.tlscert or self.tlskey):
            return None
        return TLSFlags(verify=self.tlsverify, ca=self.tlscacert, cert=self.tlscert, key=self.tlskey)


_ENGINES = TypeAdapter(list[EngineSpec])


def load_engines(path: Path) -> list[EngineSpec]:
    """The engines listed in `path`; anything wrong (unreadable, not YAML, an unknown key, no engine) is one
    CollectionError line naming the file."""
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise CollectionError(f"cannot read {path}: {exc.strerror}") from None
    except yaml.YAMLError as exc:
        raise CollectionError(f"{path} is not YAML: {str(exc).splitlines()[0]}") from None
    try:
        engines = _ENGINES.validate_python(raw)
    except ValidationError as exc:
        raise CollectionError(f"{path}: {first_problem(exc)}") from None
    if not engines:
        raise CollectionError(f"{path} lists no engines")
    return engines

"""Wrong-typed JSON where an image config or the engine's answers are parsed: one line, never a pydantic dump."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from image_builders import Image, M, docker_archive, layer_tar

from portcullis.collect import CollectionError
from portcullis.collect.engine import EngineConnection, collect_engine
from portcullis.collect.image import ImageError, analyse_image, engine_source
from support.bounded import run_bounded


@pytest.mark.parametrize(
    ("config", "where"),
    [
        ({"Env": "PATH=/usr/bin"}, "config.Env: Input should be a valid list"),
        ({"User": 1000}, "config.User: Input should be a valid string"),
        ({"ExposedPorts": ["80/tcp"]}, "config.ExposedPorts: Input should be a valid dictionary"),
    ],
)
def test_image_config_of_the_wrong_types(tmp_path: Path, config: dict[str, Any], where: str) -> None:
    archive = docker_archive(tmp_path / "img.tar", Image(layers=[layer_tar(M("etc/hostname", b"x"))], config=config))
    line = run_bounded("image", f"docker-archive:{archive}").one_error_line()
    assert line == f"portcullis: error: the image config is malformed: {where}"


class FakeApi:
    """An engine whose answers are JSON of the wrong shape where `broken` says."""

    def __init__(self, broken: str) -> None:
        self.broken = broken
        self.hooks: dict[str, list[Any]] = {"response": []}

    def close(self) -> None:
        pass

    def _answer(self, name: str, good: Any, bad: Any) -> Any:
        return bad if name == self.broken else good

    def info(self) -> Any:
        return self._answer("info", {"ID": "x"}, {"ID": 5})

    def version(self) -> Any:
        return self._answer("version", {"Version": "27.0"}, ["27.0"])

    def containers(self, all: bool) -> list[dict[str, Any]]:
        return [{"Id": "c1"}]

    def inspect_container(self, ident: str) -> Any:
        return self._answer("container", {"Id": ident, "Name": "/web"}, {"Id": ident, "Name": "/web", "State": "up"})

    def images(self) -> list[dict[str, Any]]:
        return [{"Id": "sha256:1"}]

    def inspect_image(self, ident: str) -> Any:
        return self._answer("image", {"Id": ident}, {"Id": ident, "RepoTags": "web:1"})

    def history(self, ident: str) -> Any:
        return self._answer("history", [{"Id": "x"}], [{"Id": "x", "Created": "yesterday"}])

    def networks(self) -> Any:
        return self._answer("network", [{"Id": "n", "Name": "bridge"}], [{"Id": "n", "Name": "bridge", "Options": []}])


@pytest.mark.parametrize(
    ("broken", "line"),
    [
        ("info", "malformed /info: ID: Input should be a valid string"),
        ("version", "malformed /version: Input should be a valid dictionary"),
        ("container", "malformed container inspect: State: Input should be a valid dictionary"),
        ("image", "malformed image inspect: RepoTags: Input should be a valid list"),
        ("history", "malformed image history: Created: Input should be a valid integer"),
        ("network", "malformed network list: Options: Input should be a valid dictionary"),
    ],
)
def test_engine_answers_of_the_wrong_types(broken: str, line: str) -> None:
    assert collect_engine(EngineConnection(api=FakeApi(""), endpoint="unix:///fake.sock", local=False))
    conn = EngineConnection(api=FakeApi(broken), endpoint="unix:///fake.sock", local=False)
    with pytest.raises(CollectionError) as caught:
        collect_engine(conn)
    assert str(caught.value).startswith(f"the engine returned a {line}")
    assert "\n" not in str(caught.value)


def test_engine_image_inspect_of_the_wrong_types(monkeypatch: pytest.MonkeyPatch) -> None:
    conn = EngineConnection(api=FakeApi("image"), endpoint="unix:///fake.sock", local=False)
    monkeypatch.setattr(engine_source, "connect", lambda host: conn)
    with pytest.raises(ImageError, match=r"^the engine returned a malformed image inspect: RepoTags: "):
        analyse_image("engine:web:1")

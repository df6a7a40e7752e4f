"""The compose loader: interpolation, .env, override merging, line map, and the compose-spec schema."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest

from portcullis.collect import CollectionError
from portcullis.collect.compose import Interpolator, load_compose, read_env_file
from portcullis.model.lint import SourceRef

HERE = Path(__file__).parent
PROJECT = HERE / "projects" / "override"
REPO = HERE.parent.parent
COMPOSE_SPEC = REPO.parent / "shared" / "schemas" / "compose-spec.json"


@pytest.fixture(scope="module")
def validator() -> jsonschema.Draft7Validator:
    if not COMPOSE_SPEC.is_file():
        pytest.skip(f"{COMPOSE_SPEC} is not present (../shared is read-only reference material)")
    return jsonschema.Draft7Validator(json.loads(COMPOSE_SPEC.read_text()))


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("${SET}", "value"),
        ("$SET/x", "value/x"),
        ("${UNSET:-fallback}", "fallback"),
        ("${EMPTY:-fallback}", "fallback"),
        ("${EMPTY-fallback}", ""),
        ("${UNSET-fallback}", "fallback"),
        ("${SET:+alt}", "alt"),
        ("${EMPTY:+alt}", ""),
        ("${EMPTY+alt}", "alt"),
        ("${UNSET:-${SET}-nested}", "value-nested"),
        ("$$SET and $${SET}", "$SET and ${SET}"),
        ("cost: 5$", "cost: 5$"),
        ("${UNSET}", ""),
    ],
)
def test_interpolation_follows_compose(text: str, expected: str) -> None:
    interpolate = Interpolator({"SET": "value", "EMPTY": ""})
    assert interpolate(text, "f.yaml:1") == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("${NEEDED:?give NEEDED}", "required variable NEEDED is missing a value: give NEEDED"),
        ("${EMPTY:?no empty}", "required variable EMPTY is missing a value: no empty"),
        ("${OPEN", "unclosed"),
        ("${1BAD}", "invalid interpolation format"),
    ],
)
def test_interpolation_errors_name_the_place(text: str, message: str) -> None:
    with pytest.raises(CollectionError, match=r"f\.yaml:3") as caught:
        Interpolator({"EMPTY": ""})(text, "f.yaml:3")
    assert message in str(caught.value)


def test_required_but_empty_with_plain_question_mark_is_accepted() -> None:
    assert Interpolator({"EMPTY": ""})("${EMPTY?x}", "f") == ""


def test_env_file_forms(tmp_path: Path) -> None:
    env = tmp_path / ".env"
    env.write_text("# comment\nA=1\nexport B='two words'\nC=\"line\\nbreak\"\nD=x # trailing comment\nE\n")
    assert read_env_file(env) == {"A": "1", "B": "two words", "C": "line\nbreak", "D": "x"}
    env.write_text("not a variable line\n")
    with pytest.raises(CollectionError, match=r"\.env:1: invalid variable line"):
        read_env_file(env)


def test_override_project_merges_as_compose_does() -> None:
    facts = load_compose([PROJECT / "compose.yaml", PROJECT / "compose.prod.yaml"], environ={"NGINX_TAG": "1.27.2"})
    web, worker = facts.services["web"], facts.services["worker"]
    assert web["image"] == "nginx:1.27.2"  # environment beats the default
    assert web["privileged"] is True  # from .env, cast back to a boolean
    assert worker["image"] == "worker:2.0"
    assert web["command"] == ["nginx", "-c", "/etc/nginx/prod.conf"]  # commands replace
    assert web["healthcheck"]["test"] == ["CMD", "true"]
    assert web["ports"] == ["127.0.0.1:8080:80", "443:443"]  # ports append
    # volumes merge by container path: the override's bind replaces the base's html mount
    assert web["volumes"] == ["/etc/nginx/prod:/usr/share/nginx/html:ro", "cache:/var/cache/nginx"]
    assert web["environment"] == {"MODE": "prod", "GREETING": "${NOT_INTERPOLATED}"}  # list+mapping merge
    assert web["cap_add"] == ["CHOWN", "NET_BIND_SERVICE"]
    assert "user" not in worker  # !reset
    assert worker["network_mode"] == "host"


def test_line_map_points_into_the_file_that_set_the_value() -> None:
    base, prod = PROJECT / "compose.yaml", PROJECT / "compose.prod.yaml"
    facts = load_compose([base, prod], environ={})
    assert facts.where("services", "web", "privileged") == SourceRef(path=str(base), line=6)
    assert facts.where("services", "web", "ports", 0) == SourceRef(path=str(base), line=8)
    assert facts.where("services", "web", "ports", 1) == SourceRef(path=str(prod), line=5)
    assert facts.where("services", "worker", "network_mode") == SourceRef(path=str(prod), line=15)
    # absent values fall back to their nearest ancestor: the service key
    assert facts.where("services", "worker", "read_only") == SourceRef(path=str(base), line=20)


def test_missing_required_variable_fails_with_its_line(tmp_path: Path) -> None:
    compose = tmp_path / "compose.yaml"
    compose.write_text("services:\n  a:\n    image: ${IMAGE:?set IMAGE}\n")
    with pytest.raises(CollectionError, match=r"compose.yaml:3: required variable IMAGE"):
        load_compose([compose], environ={})


def test_unset_variables_become_warnings(tmp_path: Path) -> None:
    compose = tmp_path / "compose.yaml"
    compose.write_text("services:\n  a:\n    image: app:${TAG}\n")
    facts = load_compose([compose], environ={})
    assert facts.services["a"]["image"] == "app:"
    assert facts.warnings == ("the TAG variable is not set; Compose substitutes an empty string",)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("services:\n  a: [\n", "compose.yaml:3: invalid YAML"),
        ("- just\n- a list\n", "the top level is not a mapping"),
        ("services:\n  - a\n", "compose.yaml:1: `services` must be a mapping"),
        ("services:\n  a:\n    image: x\n    image: y\n", "invalid YAML"),
    ],
)
def test_broken_compose_files_give_one_clear_error(tmp_path: Path, text: str, message: str) -> None:
    compose = tmp_path / "compose.yaml"
    compose.write_text(text)
    with pytest.raises(CollectionError) as caught:
        load_compose([compose], environ={})
    assert message in str(caught.value)
    assert "\n" not in str(caught.value)


def test_loaded_documents_validate_against_the_compose_spec(validator: jsonschema.Draft7Validator) -> None:
    documents = [load_compose([PROJECT / "compose.yaml", PROJECT / "compose.prod.yaml"], environ={}).document]
    documents += [load_compose([p], environ={}).document for p in sorted(HERE.glob("DKR-CMP-*/*/*.yaml"))]
    assert len(documents) == 27
    for document in documents:
        errors = [e.message for e in validator.iter_errors(document)]
        assert not errors, errors


def test_the_schema_catches_what_the_loader_lets_through(validator: jsonschema.Draft7Validator) -> None:
    """The validation above can fail: an unknown service key is a schema error."""
    assert list(validator.iter_errors({"services": {"a": {"image": "x", "privilegd": True}}}))

"""The compose loader: interpolation, .env, override merging, include and extends, line map, the compose-spec schema."""

from __future__ import annotations

import json
import os
from pathlib import Path

import jsonschema
import pytest

from portcullis.collect import CollectionError
from portcullis.collect.compose import MAX_NODES, Interpolator, load_compose, read_env_file
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
    assert len(documents) == 32
    for document in documents:
        errors = [e.message for e in validator.iter_errors(document)]
        assert not errors, errors


def test_the_schema_catches_what_the_loader_lets_through(validator: jsonschema.Draft7Validator) -> None:
    """The validation above can fail: an unknown service key is a schema error."""
    assert list(validator.iter_errors({"services": {"a": {"image": "x", "privilegd": True}}}))


# --- include and extends ------------------------------------------------------------------------


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def test_extends_merges_by_the_compose_spec_rules_and_keeps_each_values_line(tmp_path: Path) -> None:
    base = write(
        tmp_path / "bases" / "web.yaml",
        "services:\n"
        "  web:\n"
        "    image: nginx:1.25\n"
        "    command: [nginx, -g, daemon off;]\n"
        '    ports: ["8080:80"]\n'
        "    volumes: [./html:/usr/share/nginx/html, cache:/var/cache/nginx]\n"
        "    environment: {MODE: dev, LOG: info}\n"
        "    cap_add: [CHOWN]\n"
        "    privileged: true\n",
    )
    compose = write(
        tmp_path / "compose.yaml",
        "services:\n"
        "  site:\n"
        "    extends: {file: bases/web.yaml, service: web}\n"
        "    image: nginx:1.27\n"
        "    command: [nginx, -c, /etc/nginx/prod.conf]\n"
        '    ports: ["8443:443"]\n'
        "    volumes: [/srv/html:/usr/share/nginx/html:ro]\n"
        "    environment: [MODE=prod]\n"
        "    cap_add: [NET_BIND_SERVICE]\n",
    )
    facts = load_compose([compose], environ={})
    site = facts.services["site"]
    assert "extends" not in site
    assert site["image"] == "nginx:1.27"  # scalars: the service's own wins
    assert site["command"] == ["nginx", "-c", "/etc/nginx/prod.conf"]  # commands replace
    assert site["ports"] == ["8080:80", "8443:443"]  # sequences: the base's first, then the service's
    assert site["volumes"] == ["/srv/html:/usr/share/nginx/html:ro", "cache:/var/cache/nginx"]  # by target
    assert site["environment"] == {"MODE": "prod", "LOG": "info"}  # mappings merged, list form or not
    assert site["cap_add"] == ["CHOWN", "NET_BIND_SERVICE"]
    assert site["privileged"] is True
    assert facts.where("services", "site", "privileged") == SourceRef(path=str(base), line=9)
    assert facts.where("services", "site", "cap_add", 0) == SourceRef(path=str(base), line=8)
    assert facts.where("services", "site", "cap_add", 1) == SourceRef(path=str(compose), line=9)
    # the service itself is where it is declared, not where its base is
    assert facts.where("services", "site", "read_only") == SourceRef(path=str(compose), line=2)
    assert set(facts.services) == {"site"}  # a base named with file: is not deployed


def test_include_brings_in_services_interpolated_with_their_own_env_file(tmp_path: Path) -> None:
    write(tmp_path / "db" / ".env", "DB_TAG=16\nSHARED=from-db\n")
    db = write(tmp_path / "db" / "compose.yaml", "services:\n  db:\n    image: postgres:${DB_TAG}-${SHARED}\n")
    compose = write(
        tmp_path / "compose.yaml",
        "include:\n  - db/compose.yaml\nservices:\n  web:\n    image: nginx:1.27\n    depends_on: [db]\n",
    )
    facts = load_compose([compose], environ={"SHARED": "from-parent"})
    assert "include" not in facts.document
    assert facts.services["db"]["image"] == "postgres:16-from-parent"  # the including project's variables win
    assert facts.where("services", "db", "image") == SourceRef(path=str(db), line=3)
    assert set(facts.services) == {"db", "web"}


def test_include_long_form_and_a_conflicting_service(tmp_path: Path) -> None:
    write(tmp_path / "vars.env", "TAG=7\n")
    write(tmp_path / "lib" / "redis.yaml", "services:\n  cache:\n    image: redis:${TAG}\n")
    compose = write(
        tmp_path / "compose.yaml",
        "include:\n  - path: [lib/redis.yaml]\n    env_file: vars.env\nservices: {}\n",
    )
    assert load_compose([compose], environ={}).services["cache"]["image"] == "redis:7"
    compose.write_text(
        "include:\n  - path: lib/redis.yaml\n    env_file: vars.env\nservices:\n  cache:\n    image: x\n"
    )
    with pytest.raises(CollectionError, match=r"compose.yaml:2: .*service cache from .*redis.yaml conflicts"):
        load_compose([compose], environ={})


@pytest.mark.parametrize(
    ("project", "message"),
    [
        (
            "extends-loop",
            "base.yaml:3: extends loop: web ({d}/compose.yaml) -> base ({d}/base.yaml) -> middle ({d}/base.yaml)"
            " -> base ({d}/base.yaml)",
        ),
        (
            "include-loop",
            "sub/a.yaml:2: include/extends loop: {d}/compose.yaml -> {d}/sub/a.yaml -> {d}/sub/../compose.yaml",
        ),
        ("extends-missing", "compose.yaml:5: cannot open {d}/bases/absent.yaml: No such file or directory"),
    ],
)
def test_loops_and_missing_bases_are_one_line_naming_the_chain(project: str, message: str) -> None:
    folder = HERE / "projects" / project
    with pytest.raises(CollectionError) as caught:
        load_compose([folder / "compose.yaml"], environ={})
    assert str(caught.value).endswith(message.format(d=folder))
    assert "\n" not in str(caught.value)


def test_a_service_extending_itself_and_an_unknown_base(tmp_path: Path) -> None:
    compose = write(tmp_path / "compose.yaml", "services:\n  a:\n    extends: a\n")
    with pytest.raises(CollectionError, match=r"compose.yaml:3: extends loop: a \(.*\) -> a \("):
        load_compose([compose], environ={})
    compose.write_text("services:\n  a:\n    extends: {service: nope}\n")
    with pytest.raises(CollectionError, match=r"compose.yaml:3: extends: no service nope$"):
        load_compose([compose], environ={})


def test_include_and_extends_read_only_regular_files(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "fifo.yaml")  # opening it would wait for a writer forever
    for text in ("include:\n  - fifo.yaml\n", "services:\n  a:\n    extends: {file: fifo.yaml, service: b}\n"):
        compose = write(tmp_path / "compose.yaml", text)
        with pytest.raises(CollectionError, match=r"fifo.yaml is not a regular file"):
            load_compose([compose], environ={})
    (tmp_path / "self.yaml").symlink_to("self.yaml")
    compose = write(tmp_path / "compose.yaml", "include:\n  - self.yaml\n")
    with pytest.raises(CollectionError, match=r"compose.yaml:2: cannot open .*self.yaml: Too many levels"):
        load_compose([compose], environ={})


def test_extends_cannot_multiply_past_the_value_bound(tmp_path: Path) -> None:
    """A base of 9**5 values (aliases) extended by ten services: each copy counts against the one budget."""
    lines = ['x0: &a0 ["v","v","v","v","v","v","v","v","v"]']
    lines += [f"x{i}: &a{i} [{','.join([f'*a{i - 1}'] * 9)}]" for i in range(1, 5)]
    lines += ["services:", "  base:", "    command: *a4"]
    lines += [f"  s{i}:\n    extends: base" for i in range(10)]
    compose = write(tmp_path / "compose.yaml", "\n".join(lines) + "\n")
    with pytest.raises(CollectionError, match=f"more than {MAX_NODES} values once include, extends and YAML"):
        load_compose([compose], environ={})

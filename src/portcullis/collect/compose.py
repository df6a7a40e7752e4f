"""Load a compose project as `docker compose -f a.yaml -f b.yaml` would, keeping where every value came from.

Steps, in Compose's order: parse each file with ruamel.yaml's round-trip loader (it keeps line numbers),
interpolate `${VAR}` forms in values from the environment and the project's `.env`, then merge the
override files over the first one following the compose-spec merge rules (see `merge`). The result is a
plain document plus a JSON-pointer → (file, line) map that lint rules use to report exact lines.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq, TaggedScalar
from ruamel.yaml.composer import MaxDepthExceededError
from ruamel.yaml.error import MarkedYAMLError, YAMLError

from portcullis.collect import CollectionError
from portcullis.collect.dockerfile import ignore_comments
from portcullis.collect.files import open_regular
from portcullis.model.lint import ComposeFacts, SourceRef

# --- a YAML tree that remembers positions -------------------------------------------------------

# Compose files are input we do not trust. Real ones nest a dozen levels and hold a few thousand values; these
# bounds are far above that and far below what exhausts the interpreter's stack (nesting) or memory (aliases,
# which the loader shares but every later step copies: nine aliases nine deep are 9**9 values).
MAX_DEPTH = 100
MAX_NODES = 250_000


class _Budget:
    """Values left before a file's aliases have expanded it beyond MAX_NODES."""

    def __init__(self, path: str) -> None:
        self.left = MAX_NODES
        self.path = path

    def spend(self) -> None:
        self.left -= 1
        if self.left < 0:
            raise CollectionError(
                f"{self.path}: refused: more than {MAX_NODES} values once YAML aliases are expanded (an alias bomb?)"
            )


@dataclass
class Node:
    """A value with the file and line that set it; containers hold Nodes."""

    value: Any
    ref: SourceRef
    tag: str | None = None  # "!reset" / "!override" from the compose-spec merge syntax


def _tag_of(raw: Any) -> str | None:
    tag = getattr(raw, "tag", None)
    value = getattr(tag, "value", None)
    return value if value in ("!reset", "!override") else None


def _located(raw: Any, ref: SourceRef, path: str, budget: _Budget) -> Node:
    budget.spend()
    tag = _tag_of(raw)
    if isinstance(raw, TaggedScalar):
        return Node(None if tag == "!reset" else raw.value, ref, tag)
    if isinstance(raw, CommentedMap):
        mapping: dict[str, Node] = {}
        for key, item in raw.items():
            try:
                line = raw.lc.key(key)[0] + 1
            except (KeyError, TypeError):  # keys merged in from a `<<: *anchor` have no own position
                line = ref.line
            mapping[str(key)] = _located(item, SourceRef(path=path, line=line), path, budget)
        return Node(mapping, ref, tag)
    if isinstance(raw, CommentedSeq):
        items = []
        for index, item in enumerate(raw):
            try:
                line = raw.lc.item(index)[0] + 1
            except (KeyError, TypeError, IndexError):
                line = ref.line
            items.append(_located(item, SourceRef(path=path, line=line), path, budget))
        return Node(items, ref, tag)
    return Node(raw, ref, tag)


def _plain(node: Node, pointer: str, lines: dict[str, SourceRef]) -> Any:
    lines[pointer or "/"] = node.ref
    if isinstance(node.value, dict):
        return {k: _plain(v, f"{pointer}/{_escape(k)}", lines) for k, v in node.value.items()}
    if isinstance(node.value, list):
        return [_plain(v, f"{pointer}/{i}", lines) for i, v in enumerate(node.value)]
    return node.value


def _escape(key: str) -> str:
    return key.replace("~", "~0").replace("/", "~1")


def _read_text(path: Path, what: str) -> str:
    try:
        with open_regular(path) as handle:
            return handle.read().decode("utf-8")
    except OSError as exc:
        raise CollectionError(f"cannot read {path}: {exc.strerror}") from exc
    except UnicodeDecodeError as exc:
        raise CollectionError(f"{path}: not {what} (not UTF-8 text)") from exc


def _read_yaml(path: Path, text: str) -> Node:
    loader = YAML(typ="rt")
    loader.max_depth = MAX_DEPTH
    try:
        raw = loader.load(text)
    except MaxDepthExceededError as exc:
        line = exc.problem_mark.line + 1 if exc.problem_mark is not None else 1
        raise CollectionError(f"{path}:{line}: refused: YAML nested deeper than {MAX_DEPTH} levels") from exc
    except MarkedYAMLError as exc:
        mark = exc.problem_mark
        where = f"{path}:{mark.line + 1}" if mark is not None else str(path)
        raise CollectionError(f"{where}: invalid YAML: {exc.problem or exc.context}") from exc
    except YAMLError as exc:
        raise CollectionError(f"{path}: invalid YAML: {str(exc).splitlines()[0]}") from exc
    except TypeError as exc:  # `? {a: 1}: x`: the loader cannot hash a mapping or sequence used as a key
        raise CollectionError(f"{path}: invalid YAML: a mapping or sequence used as a key ({exc})") from exc
    if not isinstance(raw, CommentedMap):
        raise CollectionError(f"{path}: not a compose file (the top level is not a mapping)")
    node = _located(raw, SourceRef(path=str(path), line=1), str(path), _Budget(str(path)))
    services = node.value.get("services")
    if services is not None and services.value is not None and not isinstance(services.value, dict):
        raise CollectionError(f"{path}:{services.ref.line}: `services` must be a mapping")
    return node


# --- interpolation ------------------------------------------------------------------------------

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


class Interpolator:
    """Compose's `${VAR}` language: $$ escapes, defaults (:- and -), errors (:? and ?), alternates (:+ and +)."""

    def __init__(self, variables: Mapping[str, str]) -> None:
        self.variables = variables
        self.unset: set[str] = set()

    def __call__(self, text: str, where: str) -> str:
        out: list[str] = []
        i = 0
        while i < len(text):
            char = text[i]
            if char != "$" or i + 1 == len(text):
                out.append(char)
                i += 1
                continue
            following = text[i + 1]
            if following == "$":
                out.append("$")
                i += 2
            elif following == "{":
                end = self._closing_brace(text, i + 2, where)
                out.append(self._braced(text[i + 2 : end], where))
                i = end + 1
            else:
                match = _NAME.match(text, i + 1)
                if match is None:
                    out.append("$")
                    i += 1
                    continue
                out.append(self._lookup(match.group(0)) or "")
                i = match.end()
        return "".join(out)

    @staticmethod
    def _closing_brace(text: str, start: int, where: str) -> int:
        depth = 1
        i = start
        while i < len(text):
            if text.startswith("${", i):
                depth += 1
                i += 2
                continue
            if text[i] == "}":
                depth -= 1
                if depth == 0:
                    return i
            i += 1
        raise CollectionError(f"{where}: invalid interpolation: unclosed '${{' in {text!r}")

    def _lookup(self, name: str) -> str | None:
        value = self.variables.get(name)
        if value is None:
            self.unset.add(name)
        return value

    def _braced(self, body: str, where: str) -> str:
        match = _NAME.match(body)
        if match is None:
            raise CollectionError(f"{where}: invalid interpolation format: ${{{body}}}")
        name, rest = match.group(0), body[match.end() :]
        value = self.variables.get(name)
        if not rest:
            return self._lookup(name) or ""
        for operator in (":-", ":?", ":+", "-", "?", "+"):
            if rest.startswith(operator):
                argument = rest[len(operator) :]
                break
        else:
            raise CollectionError(f"{where}: invalid interpolation format: ${{{body}}}")
        missing = value is None or (operator.startswith(":") and value == "")
        if operator.endswith("-"):
            return self(argument, where) if missing else str(value)
        if operator.endswith("?"):
            if missing:
                raise CollectionError(f"{where}: required variable {name} is missing a value: {self(argument, where)}")
            return str(value)
        return "" if missing else self(argument, where)


def read_env_file(path: Path) -> dict[str, str]:
    """A Compose `.env` file: KEY=VALUE lines, `export` prefixes, quotes, # comments."""
    text = _read_text(path, "an env file")
    values: dict[str, str] = {}
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        line = line.removeprefix("export ").lstrip()
        name, sep, value = line.partition("=")
        name = name.strip()
        if not _NAME.fullmatch(name):
            raise CollectionError(f"{path}:{number}: invalid variable line {raw.strip()!r}")
        if not sep:
            continue  # a bare name: taken from the environment, which already wins
        value = value.strip()
        if value[:1] == "'" and value.endswith("'") and len(value) > 1:
            value = value[1:-1]
        elif value[:1] == '"' and value.endswith('"') and len(value) > 1:
            value = value[1:-1].replace("\\n", "\n").replace('\\"', '"')
        else:
            value = re.split(r"\s+#", value, maxsplit=1)[0]
        values[name] = value
    return values


# Fields whose interpolated text Compose converts back to a boolean or number (so the schema still holds).
_BOOLEAN_FIELDS = frozenset(
    {"privileged", "read_only", "tty", "stdin_open", "init", "oom_kill_disable", "external", "attachable"}
)
_INTEGER_FIELDS = frozenset({"pids_limit", "published_int", "cpu_shares", "oom_score_adj"})


def _cast(key: str, text: str) -> Any:
    if key in _BOOLEAN_FIELDS and text.lower() in ("true", "false", "yes", "no", "on", "off", "1", "0"):
        return text.lower() in ("true", "yes", "on", "1")
    if key in _INTEGER_FIELDS and re.fullmatch(r"-?\d+", text):
        return int(text)
    return text


def _interpolate(node: Node, interpolate: Interpolator, key: str = "") -> None:
    if isinstance(node.value, dict):
        for child_key, child in node.value.items():
            _interpolate(child, interpolate, child_key)
    elif isinstance(node.value, list):
        for child in node.value:
            _interpolate(child, interpolate, key)
    elif isinstance(node.value, str) and "$" in node.value:
        node.value = _cast(key, interpolate(node.value, f"{node.ref.path}:{node.ref.line}"))


# --- merging override files ---------------------------------------------------------------------

# Sequences that replace instead of append (shell commands), per compose-spec merge rules.
_REPLACED = frozenset({"command", "entrypoint", "test"})
# Sequences that are really mappings in list form (KEY=VALUE), merged as mappings.
_MAPPING_LISTS = frozenset({"environment", "labels", "annotations", "extra_hosts", "sysctls", "args"})
# Sequences merged by the container-side path or name each entry targets.
_KEYED_LISTS = frozenset({"volumes", "devices", "secrets", "configs"})


def _list_as_mapping(node: Node) -> Node:
    if not isinstance(node.value, list):
        return node
    mapping: dict[str, Node] = {}
    for item in node.value:
        text = str(item.value)
        key, sep, value = text.partition("=") if "=" in text else text.partition(":")
        mapping[key.strip()] = Node(value.strip() if sep else None, item.ref)
    return Node(mapping, node.ref, node.tag)


def _entry_key(field: str, item: Node) -> str:
    value = item.value
    if isinstance(value, dict):
        for name in ("target", "source"):
            if name in value and value[name].value is not None:
                return str(value[name].value)
        return repr(sorted(value))
    text = str(value)
    if field in ("volumes", "devices"):
        parts = text.split(":")
        return parts[1] if len(parts) > 1 else parts[0]
    return text


def merge(base: Node, override: Node, key: str = "") -> Node | None:
    """Merge one override node over a base node; None means `!reset` removed it."""
    if override.tag == "!reset":
        return None
    if override.tag == "!override" or base.value is None:
        return override
    if key in _MAPPING_LISTS:
        base, override = _list_as_mapping(base), _list_as_mapping(override)
    if isinstance(base.value, dict) and isinstance(override.value, dict):
        merged = dict(base.value)
        for child_key, child in override.value.items():
            result = merge(merged[child_key], child, child_key) if child_key in merged else _untagged(child)
            if result is None:
                merged.pop(child_key, None)
            else:
                merged[child_key] = result
        return Node(merged, base.ref)
    if isinstance(base.value, list) and isinstance(override.value, list) and key not in _REPLACED:
        if key in _KEYED_LISTS:
            by_key = {_entry_key(key, item): item for item in base.value}
            by_key.update({_entry_key(key, item): item for item in override.value})
            return Node(list(by_key.values()), base.ref)
        seen = {_fingerprint(item) for item in base.value}
        appended = [item for item in override.value if _fingerprint(item) not in seen]
        return Node(base.value + appended, base.ref)
    return override


def _untagged(node: Node) -> Node | None:
    return None if node.tag == "!reset" else node


def _fingerprint(node: Node) -> str:
    value = node.value
    if isinstance(value, dict):
        return repr(sorted((k, _fingerprint(v)) for k, v in value.items()))
    if isinstance(value, list):
        return repr([_fingerprint(v) for v in value])
    return repr(value)


# --- the project --------------------------------------------------------------------------------


def load_compose(
    files: list[Path], env_file: Path | None = None, environ: Mapping[str, str] | None = None
) -> ComposeFacts:
    """Load, interpolate and merge a compose project; errors raise CollectionError with one line."""
    if not files:
        raise CollectionError("no compose file given")
    project_dir = files[0].parent
    variables: dict[str, str] = {}
    dotenv = env_file or project_dir / ".env"
    if env_file is not None or dotenv.is_file():
        variables.update(read_env_file(dotenv))
    variables.update(os.environ if environ is None else environ)
    interpolate = Interpolator(variables)

    merged: Node | None = None
    ignores: dict[str, dict[int, tuple[str, ...]]] = {}
    for path in files:
        text = _read_text(path, "a compose file")
        node = _read_yaml(path, text)
        _interpolate(node, interpolate)
        merged = node if merged is None else merge(merged, node)
        ignores[str(path)] = ignore_comments(text.splitlines())
    assert merged is not None  # files is not empty
    lines: dict[str, SourceRef] = {}
    document = _plain(merged, "", lines)
    warnings = tuple(
        f"the {name} variable is not set; Compose substitutes an empty string" for name in sorted(interpolate.unset)
    )
    return ComposeFacts(
        path=str(files[0]),
        files=tuple(str(p) for p in files),
        document=document,
        lines=lines,
        ignores=ignores,
        warnings=warnings,
    )


def looks_like_compose(document_text: str) -> bool:
    """Content sniffing for files whose name says nothing: a YAML mapping with a `services` key."""
    return bool(re.search(r"^services\s*:", document_text, re.M))

"""Load a compose project as `docker compose -f a.yaml -f b.yaml` would, keeping where every value came from.

Steps, in Compose's order: parse each file with ruamel.yaml's round-trip loader (it keeps line numbers),
interpolate `${VAR}` forms in values from the environment and the project's `.env`, import the resources of
the projects a file `include`s (each interpolated with its own env file), merge the override files over the
first one following the compose-spec merge rules (see `merge`), then merge each service over the one it
`extends` by the same rules. The result is a plain document plus a JSON-pointer → (file, line) map that lint
rules use to report exact lines, also when the value was inherited from another file.

Not done: relative host paths of an included or extended file are kept as written (Compose resolves them
against that file's directory); the rules judge only absolute host paths.
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
    """Values left before a project's aliases (or its include and extends) have expanded it beyond MAX_NODES.

    One budget covers every file a project reads, so naming a file many times cannot multiply the bound.
    """

    def __init__(self, what: str) -> None:
        self.left = MAX_NODES
        self.what = what

    def spend(self, path: str) -> None:
        self.left -= 1
        if self.left < 0:
            raise CollectionError(f"{path}: refused: more than {MAX_NODES} values once {self.what} are expanded")


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
    budget.spend(path)
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


def _plain(node: Node, pointer: str, lines: dict[str, SourceRef], budget: _Budget) -> Any:
    budget.spend(node.ref.path)  # services extending one base share its nodes: each copy counts here
    lines[pointer or "/"] = node.ref
    if isinstance(node.value, dict):
        return {k: _plain(v, f"{pointer}/{_escape(k)}", lines, budget) for k, v in node.value.items()}
    if isinstance(node.value, list):
        return [_plain(v, f"{pointer}/{i}", lines, budget) for i, v in enumerate(node.value)]
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


def _read_yaml(path: Path, text: str, budget: _Budget) -> Node:
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
    node = _located(raw, SourceRef(path=str(path), line=1), str(path), budget)
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


# --- include and extends -----------------------------------------------------------------------

# Top-level resources an `include` brings in; a name defined differently on both sides is an error, as in Compose.
_RESOURCES = ("services", "networks", "volumes", "secrets", "configs")


def _at(node: Node) -> str:
    return f"{node.ref.path}:{node.ref.line}"


def _beside(node: Node, text: str) -> Path:
    """A path written in a file, relative to that file's directory as Compose resolves it."""
    return Path(node.ref.path).parent / text


def _strings(node: Node, what: str) -> list[Node]:
    items = node.value if isinstance(node.value, list) else [node]
    if not items or not all(isinstance(item.value, str) and item.value for item in items):
        raise CollectionError(f"{_at(node)}: {what} must be a path or a list of paths")
    return items


def _mapping(node: Node | None) -> dict[str, Node]:
    return node.value if node is not None and isinstance(node.value, dict) else {}


@dataclass
class _Scope:
    """The services an `extends` without `file:` can name (one file's, or the merged -f files'), resolved once."""

    services: dict[str, Node]
    resolved: dict[str, Node]


class _Project:
    """Reads the files of one project: the -f files and every file their `include` and `extends` name.

    Each file is parsed once per environment and all of them spend one value budget; a file that is still
    being read when it is named again is a loop, and so is a service that extends itself through others.
    """

    def __init__(self) -> None:
        self.budget = _Budget("YAML aliases")
        self.ignores: dict[str, dict[int, tuple[str, ...]]] = {}
        self.interpolators: list[Interpolator] = []
        self.documents: dict[tuple[Path, int], Node] = {}
        self.scopes: dict[tuple[Path, int], _Scope] = {}
        self.reading: list[tuple[Path, str]] = []

    def interpolator(self, variables: Mapping[str, str]) -> Interpolator:
        interpolate = Interpolator(variables)
        self.interpolators.append(interpolate)  # kept alive: documents are cached by its id
        return interpolate

    def load(self, files: list[Path], interpolate: Interpolator, named_at: Node | None = None) -> Node:
        """Files merged as overrides, each with its includes imported, then every service's extends resolved."""
        merged: Node | None = None
        for path in files:
            node = self._document(path, interpolate, named_at)
            merged = node if merged is None else merge(merged, node)
        assert merged is not None  # files is not empty
        services = _mapping(merged.value.get("services"))
        if not any(isinstance(s.value, dict) and "extends" in s.value for s in services.values()):
            return merged
        scope = _Scope(services, {})
        resolved = {name: self._resolve(scope, name, interpolate, ()) for name in services}
        return Node({**merged.value, "services": Node(resolved, merged.value["services"].ref)}, merged.ref)

    def _document(self, path: Path, interpolate: Interpolator, named_at: Node | None) -> Node:
        """One file, interpolated, with the resources of the projects it includes; `named_at`: the include or
        extends that names it."""
        real = Path(os.path.realpath(path))  # unlike Path.resolve, never raises on a symlink loop
        key = (real, id(interpolate))
        if key in self.documents:
            return self.documents[key]
        prefix = f"{_at(named_at)}: " if named_at is not None else ""
        if any(reading == real for reading, _ in self.reading):  # whatever the environment: it would not end
            chain = " -> ".join([shown for _, shown in self.reading] + [str(path)])
            raise CollectionError(f"{prefix}include/extends loop: {chain}")
        if len(self.reading) >= MAX_DEPTH:
            raise CollectionError(f"{prefix}refused: include and extends nest deeper than {MAX_DEPTH} files")
        self.reading.append((real, str(path)))
        try:
            text = _read_text(path, "a compose file")
        except CollectionError as exc:
            raise CollectionError(f"{prefix}{exc}") from None
        node = _read_yaml(path, text, self.budget)
        _interpolate(node, interpolate)
        self.ignores[str(path)] = ignore_comments(text.splitlines())
        include = node.value.pop("include", None)
        if include is not None and not isinstance(include.value, list):
            raise CollectionError(f"{_at(include)}: include must be a list")
        for entry in include.value if include is not None else []:
            self._include(node, entry, interpolate)
        self.reading.pop()
        self.documents[key] = node
        return node

    def _include(self, into: Node, entry: Node, interpolate: Interpolator) -> None:
        """Load the project an `include` entry names, as Compose does, and add its resources to `into`."""
        spec = entry.value if isinstance(entry.value, dict) else {"path": entry}
        if "path" not in spec:
            raise CollectionError(f"{_at(entry)}: an include entry needs a path")
        paths = [_beside(item, item.value) for item in _strings(spec["path"], "include path")]
        directory = spec.get("project_directory")
        project_dir = _beside(directory, str(directory.value)) if directory is not None else paths[0].parent
        env_files = spec.get("env_file")
        variables: dict[str, str] = {}
        if env_files is not None:
            for item in _strings(env_files, "env_file"):
                variables.update(read_env_file(_beside(item, item.value)))
        elif (project_dir / ".env").is_file():
            variables.update(read_env_file(project_dir / ".env"))
        # The including project's variables win; the included one's .env only fills the gaps (Compose's order).
        variables.update(interpolate.variables)
        included = self.load(paths, self.interpolator(variables), entry)
        for kind in _RESOURCES:
            theirs = _mapping(included.value.get(kind))
            if not theirs:
                continue
            section = into.value.get(kind)
            ours = _mapping(section)
            for name, value in theirs.items():
                if name in ours and _fingerprint(ours[name]) != _fingerprint(value):
                    raise CollectionError(
                        f"{_at(entry)}: include: {kind[:-1]} {name} from {value.ref.path} conflicts with the one "
                        f"at {_at(ours[name])}"
                    )
            into.value[kind] = Node({**theirs, **ours}, section.ref if section is not None else entry.ref)

    def _scope(self, path: Path, interpolate: Interpolator, named_at: Node) -> _Scope:
        key = (Path(os.path.realpath(path)), id(interpolate))
        if key not in self.scopes:
            self.scopes[key] = _Scope(_mapping(self._document(path, interpolate, named_at).value.get("services")), {})
        return self.scopes[key]

    def _resolve(self, scope: _Scope, name: str, interpolate: Interpolator, chain: tuple[tuple[int, str], ...]) -> Node:
        """A service with what it `extends` merged under it, by the compose-spec merge rules."""
        if name in scope.resolved:
            return scope.resolved[name]
        service = scope.services[name]
        extends = service.value.get("extends") if isinstance(service.value, dict) else None
        if extends is None:
            return service
        link = (id(scope), f"{name} ({service.ref.path})")
        if link in chain:
            names = " -> ".join(shown for _, shown in (*chain, link))
            raise CollectionError(f"{_at(extends)}: extends loop: {names}")
        if len(chain) >= MAX_DEPTH:
            raise CollectionError(f"{_at(extends)}: refused: extends chained deeper than {MAX_DEPTH} services")
        spec = extends.value if isinstance(extends.value, dict) else {"service": extends}
        base_name = spec.get("service")
        if base_name is None or not isinstance(base_name.value, str):
            raise CollectionError(f"{_at(extends)}: extends needs the name of a service")
        base_scope, where = scope, ""
        file = spec.get("file")
        if file is not None:
            if not isinstance(file.value, str) or not file.value:
                raise CollectionError(f"{_at(file)}: extends file must be a path")
            base_scope = self._scope(_beside(file, file.value), interpolate, file)
            where = f" in {file.value}"
        if base_name.value not in base_scope.services:
            raise CollectionError(f"{_at(base_name)}: extends: no service {base_name.value}{where}")
        base = self._resolve(base_scope, base_name.value, interpolate, (*chain, link))
        own = Node({k: v for k, v in service.value.items() if k != "extends"}, service.ref)
        merged = merge(base, own) if isinstance(base.value, dict) else own
        assert merged is not None  # `own` carries no !reset tag of its own
        # The service stays where it is declared; values keep the file and line that set them.
        scope.resolved[name] = Node(merged.value, service.ref)
        return scope.resolved[name]


# --- the project --------------------------------------------------------------------------------


def load_compose(
    files: list[Path], env_file: Path | None = None, environ: Mapping[str, str] | None = None
) -> ComposeFacts:
    """Load, interpolate, include, merge and extend a compose project; errors raise CollectionError with one line."""
    if not files:
        raise CollectionError("no compose file given")
    project_dir = files[0].parent
    variables: dict[str, str] = {}
    dotenv = env_file or project_dir / ".env"
    if env_file is not None or dotenv.is_file():
        variables.update(read_env_file(dotenv))
    variables.update(os.environ if environ is None else environ)
    project = _Project()
    merged = project.load(files, project.interpolator(variables))
    lines: dict[str, SourceRef] = {}
    document = _plain(merged, "", lines, _Budget("include, extends and YAML aliases"))
    unset = sorted({name for interpolate in project.interpolators for name in interpolate.unset})
    warnings = tuple(f"the {name} variable is not set; Compose substitutes an empty string" for name in unset)
    return ComposeFacts(
        path=str(files[0]),
        files=tuple(str(p) for p in files),
        document=document,
        lines=lines,
        ignores=project.ignores,
        warnings=warnings,
    )


def looks_like_compose(document_text: str) -> bool:
    """Content sniffing for files whose name says nothing: a YAML mapping with a `services` key."""
    return bool(re.search(r"^services\s*:", document_text, re.M))

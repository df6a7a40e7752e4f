"""What every command accepts the way Trivy and docker users type it: `-h`, `-q/--quiet`, `--timeout`, `--config`,
and a PORTCULLIS_<FLAG> environment variable for every option (see docs/configuration.md).

They are added to each command's signature here, when it is registered: the commands' own code stays about their
work. Precedence is click's own: command line > environment (`envvar`) > config file (`default_map`) > default.
"""

from __future__ import annotations

import copy
import functools
import inspect
import re
import signal
from collections.abc import Callable, Iterator
from pathlib import Path
from types import FrameType
from typing import Annotated, Any

import typer
from typer.models import OptionInfo

from portcullis.cli import common

ENV_PREFIX = "PORTCULLIS"
DEFAULT_CONFIG = "portcullis.yaml"  # read from the working directory when --config is not given
HELP = {"help_option_names": ["-h", "--help"]}
# Variables that already mean something a flag does not: PORTCULLIS_DB moves the default database (an absent file
# there is "no database yet"), while --db names a file that must exist.
READ_ELSEWHERE = {"PORTCULLIS_DB"}


class CommandTimeout(BaseException):  # not an Exception: no broad `except Exception` may swallow it
    """The --timeout deadline passed."""

    def __init__(self, limit: str) -> None:
        super().__init__(f"--timeout {limit} expired; the command was stopped")


def parse_duration(text: str) -> int:
    """Whole seconds from `300`, `300s`, `5m`, `1h` or `7d`."""
    match = re.fullmatch(r"\s*(\d+)\s*([smhd]?)\s*", text.lower())
    if not match or int(match[1]) == 0:
        raise typer.BadParameter(f"{text!r} is not a duration (examples: 300, 300s, 5m, 1h, 7d)")
    return int(match[1]) * {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}[match[2]]


def _commands(command: Any, path: str = "") -> Iterator[tuple[str, Any]]:
    """(command path, command) for every runnable command under the root, e.g. ("db update", ...)."""
    children = getattr(command, "commands", None)
    if children is None:
        yield path, command
        return
    for name, child in children.items():
        yield from _commands(child, f"{path} {name}".strip())


def option_names(root: Any) -> dict[str, dict[str, Any]]:
    """Every command's config keys, its long flags without dashes (`fail-on`, `format`), each mapped to the
    click parameter it sets (named `fail_on`, `output_format`), by command path (`audit`, `db update`)."""
    return {
        path: {
            flag[2:]: p
            for p in command.params
            if p.param_type_name == "option" and p.name
            for flag in p.opts
            if flag.startswith("--")
        }
        for path, command in _commands(root)
    }


def _value(param: Any, value: Any) -> Any:
    # `severity: HIGH,CRITICAL` or `vex: one.json` for an option that takes several values
    return [value] if param.multiple and not isinstance(value, list) else value


def load_config(path: Path, known: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """The config file as click's default_map. Top-level keys apply to every command having that option; a section
    named after a command (`image:`, `db update:`) applies to it alone and wins. An unknown key is an error."""
    import yaml

    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except OSError as exc:
        common.die(f"cannot read {path}: {exc.strerror}")
    except yaml.YAMLError as exc:
        common.die(f"{path}: not valid YAML: {str(exc).splitlines()[0]}")
    if not isinstance(raw, dict):
        common.die(f"{path}: expected a mapping of option names to values")
    every = {flag for options in known.values() for flag in options}
    shared: dict[str, Any] = {}
    sections: dict[str, dict[str, Any]] = {}
    for key, value in raw.items():
        key = str(key).replace("_", "-")
        if key in known and isinstance(value, dict):
            for option in value:
                if str(option).replace("_", "-") not in known[key]:
                    common.die(f"{path}: {key}: unknown key {option!r}; `portcullis {key} -h` lists its options")
            params = [(known[key][str(k).replace("_", "-")], v) for k, v in value.items()]
            sections[key] = {p.name: _value(p, v) for p, v in params}
        elif key in every:
            shared[key] = value
        else:
            common.die(f"{path}: unknown key {key!r}; keys are option names (fail-on) or command names (image)")
    default_map: dict[str, Any] = {}
    for command, options in known.items():
        node = default_map
        *groups, leaf = command.split(" ")
        for group in groups:
            node = node.setdefault(group, {})
        mine = {options[k].name: _value(options[k], v) for k, v in shared.items() if k in options}
        node[leaf] = mine | sections.get(command, {})
    return default_map


def _read_config(ctx: typer.Context, value: Path | None) -> Path | None:
    """Eager: runs before the other options look up their defaults, so the file's values become those defaults."""
    path = value if value is not None else Path(DEFAULT_CONFIG)
    if value is None and not path.is_file():
        return None
    tree = load_config(path, option_names(ctx.find_root().command))
    names: list[str] = []
    node: Any = ctx
    while node.parent is not None:  # not command_path: the root's name varies (`python -m portcullis`)
        names.insert(0, node.info_name or "")
        node = node.parent
    for name in names:
        tree = tree.get(name, {})
    ctx.default_map = {**tree, **(ctx.default_map or {})}
    return value


ConfigOption = Annotated[
    Path | None,
    typer.Option(
        "--config",
        is_eager=True,
        callback=_read_config,
        dir_okay=False,
        help=f"options from this YAML file (default: ./{DEFAULT_CONFIG} when it exists)",
    ),
]
QuietOption = Annotated[bool, typer.Option("--quiet", "-q", help="no progress or notes on stderr; errors still print")]
TimeoutOption = Annotated[
    str | None,
    typer.Option("--timeout", metavar="DURATION", help="stop with exit 1 after this long in all: 300, 300s, 5m"),
]


def _arm_timeout(limit: str) -> None:
    seconds = parse_duration(limit)

    def expire(signum: int, frame: FrameType | None) -> None:
        raise CommandTimeout(limit)

    # SIGALRM interrupts the main thread wherever it waits (a socket read, a layer download) and raises there, so
    # `finally` blocks still remove what they started (prove's throw-away containers).
    signal.signal(signal.SIGALRM, expire)
    signal.alarm(seconds)


def _with_envvar(name: str, hint: Any) -> Any:
    """An Annotated option with PORTCULLIS_<FLAG> for each long flag: click's auto_envvar_prefix would name the
    variable after the Python parameter (PORTCULLIS_OUTPUT_FORMAT), not after the flag people type (--format)."""
    info = next((m for m in getattr(hint, "__metadata__", ()) if isinstance(m, OptionInfo)), None)
    if info is None or info.envvar is not None:
        return hint
    # typer.Option("--format", "-f") keeps its first declaration in `default`; no declaration means --<name>
    declared = [d for d in (info.default, *(info.param_decls or ())) if isinstance(d, str)]
    flags = [d for d in declared if d.startswith("--")] or [f"--{name.replace('_', '-')}"]
    names = [f"{ENV_PREFIX}_{flag[2:].upper().replace('-', '_')}" for flag in flags]
    names = [n for n in names if n not in READ_ELSEWHERE]
    if not names:
        return hint
    info = copy.copy(info)
    info.envvar = names if len(names) > 1 else names[0]  # a list prints as "['X']" in typer's error lines
    info.show_envvar = True
    return Annotated[hint.__origin__, info]


def with_conventions(func: Callable[..., Any]) -> Callable[..., Any]:
    """`func` with PORTCULLIS_<FLAG> variables, --config, -q/--quiet and, unless it has a --timeout of its own
    (`db update`, `harden`: per download, per trial), a total --timeout."""
    signature = inspect.signature(func, eval_str=True)
    owns_timeout = "timeout" in signature.parameters
    extra = {"config": ConfigOption, "quiet": QuietOption, **({} if owns_timeout else {"timeout": TimeoutOption})}

    @functools.wraps(func)
    def run(*args: Any, config: Path | None, quiet: bool, **kwargs: Any) -> Any:
        common.set_quiet(quiet)
        limit = None if owns_timeout else kwargs.pop("timeout")
        if limit is not None:
            _arm_timeout(limit)
        try:
            return func(*args, **kwargs)
        finally:
            signal.alarm(0)

    added = [
        inspect.Parameter(
            name, inspect.Parameter.KEYWORD_ONLY, annotation=hint, default=False if name == "quiet" else None
        )
        for name, hint in extra.items()
    ]
    parameters = [
        p.replace(annotation=_with_envvar(p.name, p.annotation)) for p in [*signature.parameters.values(), *added]
    ]
    run.__signature__ = signature.replace(parameters=parameters)  # type: ignore[attr-defined]
    run.__annotations__ = {p.name: p.annotation for p in parameters}
    del run.__wrapped__  # typer must read the signature above, not the original's
    return run


def install(app: typer.Typer, name: str, func: Callable[..., Any]) -> None:
    """Register `func` as command `name` of `app` with the shared conventions."""
    app.command(name=name, context_settings=HELP)(with_conventions(func))


def install_group(app: typer.Typer, group: typer.Typer, name: str) -> None:
    """Add the typer group `group` as `name`, its commands given the shared conventions."""
    for info in group.registered_commands:
        if info.callback is not None:
            info.callback = with_conventions(info.callback)
            info.context_settings = {**HELP, **(info.context_settings or {})}
    # a group that is also a command of its own (`history` lists runs, `history prune` removes them)
    if group.registered_callback is not None and group.registered_callback.callback is not None:
        group.registered_callback.callback = with_conventions(group.registered_callback.callback)
    app.add_typer(group, name=name, context_settings=HELP)

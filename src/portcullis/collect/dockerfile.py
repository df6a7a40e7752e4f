"""Read a Dockerfile the way BuildKit does and turn it into `DockerfileFacts`.

The `dockerfile` package wraps BuildKit's own Go parser, so line continuations, parser directives,
heredocs and JSON forms behave exactly as in `docker build`. What the parser drops (comments, the
physical layout of continued lines) is recovered from the raw text: rules report the exact line of the
offending command, not just the first line of a 20-line RUN, and honour `# portcullis ignore=ID` comments.
"""

from __future__ import annotations

import re
from pathlib import Path

import dockerfile

from portcullis.collect import CollectionError
from portcullis.collect.files import open_regular
from portcullis.model.lint import DockerfileFacts, Heredoc, Instruction, ScriptLine, Stage, substitute_args

KNOWN_INSTRUCTIONS = frozenset(c.upper() for c in dockerfile.all_cmds())
SHELLS = frozenset({"sh", "bash", "ash", "dash", "zsh", "ksh", "/bin/sh", "/bin/bash", "/bin/ash", "/bin/dash"})

_IGNORE = re.compile(r"^\s*#\s*portcullis\s+ignore\s*=\s*([A-Za-z0-9_.\-]+(?:\s*,\s*[A-Za-z0-9_.\-]+)*)", re.I)
_ESCAPE_DIRECTIVE = re.compile(r"^\s*#\s*escape\s*=\s*([\\`])\s*$", re.I)
_DIRECTIVE = re.compile(r"^\s*#\s*[a-z]+\s*=", re.I)
_HEREDOC_MARK = re.compile(r"<<-?\s*[\"']?([A-Za-z0-9_]+)[\"']?")


def load_dockerfile(path: Path) -> DockerfileFacts:
    """Parse one Dockerfile; an unreadable or invalid file raises CollectionError with one clear line."""
    try:
        with open_regular(path) as handle:
            raw = handle.read()
    except OSError as exc:
        raise CollectionError(f"cannot read {path}: {exc.strerror}") from exc
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise CollectionError(f"{path}: not a Dockerfile (not UTF-8 text at byte {exc.start})") from exc
    return parse_dockerfile(text, str(path))


def parse_dockerfile(text: str, path: str) -> DockerfileFacts:
    if "\x00" in text:
        raise CollectionError(f"{path}: not a Dockerfile (binary content)")
    try:
        commands = dockerfile.parse_string(text)
    except dockerfile.GoParseError as exc:
        raise CollectionError(f"{path}: cannot parse Dockerfile: {exc}") from exc
    except UnicodeDecodeError as exc:  # e.g. `HEALTHCHECK à`: the Go parser cuts a multi-byte character in two
        raise CollectionError(
            f"{path}: cannot parse Dockerfile: a non-ASCII character where BuildKit cannot take it"
        ) from exc
    lines = text.splitlines()
    escape = _escape_char(lines)

    global_args: dict[str, str | None] = {}
    stages: list[Stage] = []
    current: Stage | None = None
    pending: list[Instruction] = []

    def close_stage() -> None:
        if current is not None:
            stages.append(current.model_copy(update={"instructions": tuple(pending)}))

    for command in commands:
        if command.cmd is None:  # a line that is only a continuation mark: BuildKit's parser gives no instruction
            raise CollectionError(f"{path}:{command.start_line}: a line continuation with no instruction")
        keyword = command.cmd.upper()
        if keyword not in KNOWN_INSTRUCTIONS:
            raise CollectionError(f"{path}:{command.start_line}: unknown instruction {command.cmd!r}")
        instruction = _instruction(command, lines, escape)
        if keyword == "FROM":
            close_stage()
            pending = []
            current = _stage_header(instruction, len(stages), global_args, path)
        elif current is None:
            if keyword != "ARG":
                raise CollectionError(f"{path}:{command.start_line}: {keyword} before the first FROM")
            global_args.update(_arg_defaults(instruction))
        else:
            pending.append(instruction)
    if current is None:
        raise CollectionError(f"{path}: no FROM instruction: not a Dockerfile")
    close_stage()
    return DockerfileFacts(path=path, global_args=global_args, stages=tuple(stages), ignores=ignore_comments(lines))


def _escape_char(lines: list[str]) -> str:
    """Parser directives sit at the very top, before any blank line or other comment."""
    for line in lines:
        match = _ESCAPE_DIRECTIVE.match(line)
        if match:
            return match.group(1)
        if not _DIRECTIVE.match(line):
            break
    return "\\"


def _arg_defaults(instruction: Instruction) -> dict[str, str | None]:
    defaults: dict[str, str | None] = {}
    for item in instruction.arguments:
        name, sep, value = item.partition("=")
        defaults[name] = _unquote(value) if sep else None
    return defaults


def _unquote(value: str) -> str:
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
        return value[1:-1]
    return value


def _stage_header(instruction: Instruction, index: int, global_args: dict[str, str | None], path: str) -> Stage:
    """The FROM line of a stage; its instructions are added when the stage closes."""
    words = list(instruction.arguments)
    if not words:
        raise CollectionError(f"{path}:{instruction.start_line}: FROM needs an image")
    name = None
    if len(words) >= 3 and words[1].upper() == "AS":
        name = words[2]
    elif len(words) != 1:
        raise CollectionError(f"{path}:{instruction.start_line}: FROM takes an image and an optional `AS name`")
    return Stage(
        index=index,
        base=substitute_args(words[0], global_args),
        base_raw=words[0],
        name=name,
        from_line=instruction.start_line,
        platform=instruction.flag("platform"),
        instructions=(),
    )


def _instruction(command: dockerfile.Command, lines: list[str], escape: str) -> Instruction:
    keyword = command.cmd.upper()
    heredocs = _heredocs(command, lines)
    script: tuple[ScriptLine, ...] = ()
    if keyword == "RUN" or (keyword == "ONBUILD" and (command.sub_cmd or "").upper() == "RUN"):
        script = _run_script(command, lines, escape, heredocs)
    return Instruction(
        keyword=keyword,
        arguments=tuple(command.value),
        flags=tuple(command.flags),
        json_form=command.json,
        onbuild=command.sub_cmd.upper() if command.sub_cmd else None,
        original=command.original,
        start_line=command.start_line,
        end_line=command.end_line,
        heredocs=heredocs,
        script=script,
    )


def _heredocs(command: dockerfile.Command, lines: list[str]) -> tuple[Heredoc, ...]:
    """Heredoc bodies follow the instruction line in order; each ends on its terminator line."""
    found: list[Heredoc] = []
    line = _heredoc_command_end(command, lines) + 1
    for doc in command.heredocs:
        found.append(Heredoc(name=doc.name, content=doc.content, first_line=line))
        line += doc.content.count("\n") + 1  # the body, then the terminator
    return tuple(found)


def _heredoc_command_end(command: dockerfile.Command, lines: list[str]) -> int:
    """The line holding the last `<<NAME` marker: heredoc bodies start right after it."""
    if not command.heredocs:
        return int(command.start_line)
    last = command.heredocs[-1].name
    for number in range(command.start_line, command.end_line + 1):
        if any(m.group(1) == last for m in _HEREDOC_MARK.finditer(lines[number - 1])):
            return number
    return int(command.start_line)


def _run_script(
    command: dockerfile.Command, lines: list[str], escape: str, heredocs: tuple[Heredoc, ...]
) -> tuple[ScriptLine, ...]:
    if command.json:
        args = list(command.value)
        if len(args) >= 3 and args[0] in SHELLS and args[1].startswith("-") and "c" in args[1]:
            return (ScriptLine(line=command.start_line, text=args[2]),)
        return (ScriptLine(line=command.start_line, text=" ".join(args)),)
    command_end = _heredoc_command_end(command, lines) if heredocs else command.end_line
    script = _command_lines(command, lines, escape, command_end)
    command_text = " ".join(s.text for s in script)
    if heredocs and _heredoc_is_shell(command_text, heredocs[0].content):
        for doc in heredocs:
            for offset, body_line in enumerate(doc.content.splitlines()):
                if body_line.strip() and not body_line.lstrip().startswith("#"):
                    script.append(ScriptLine(line=doc.first_line + offset, text=body_line))
    if heredocs:
        script = [ScriptLine(line=s.line, text=_HEREDOC_MARK.sub(" ", s.text), continues=s.continues) for s in script]
    return tuple(s for s in script if s.text.strip())


def _command_lines(command: dockerfile.Command, lines: list[str], escape: str, last: int) -> list[ScriptLine]:
    """The physical lines of a shell-form RUN without keyword, flags, comments and continuation marks."""
    result: list[ScriptLine] = []
    flags = list(command.flags)
    for number in range(command.start_line, last + 1):
        text = lines[number - 1]
        if number == command.start_line:
            text = re.sub(r"^\s*(?:ONBUILD\s+)?RUN\b", "", text, count=1, flags=re.I)
        elif not text.strip() or text.lstrip().startswith("#"):
            continue  # BuildKit drops comment and blank lines inside a continued instruction
        while flags:
            stripped = text.lstrip()
            token = stripped.split(None, 1)[0] if stripped else ""
            if token != flags[0]:
                break
            flags.pop(0)
            text = stripped[len(token) :]
        continues = number < last and text.rstrip().endswith(escape)
        if continues:
            text = text.rstrip()[:-1]
        if text.strip() in ("", escape) and not continues:
            continue
        result.append(ScriptLine(line=number, text=text, continues=continues))
    return result


def _heredoc_is_shell(command_text: str, body: str) -> bool:
    """`RUN <<EOF` and `RUN bash <<EOF` run the body as shell; `RUN python3 <<EOF` does not."""
    first_body_line = body.lstrip("\t").split("\n", 1)[0]
    if first_body_line.startswith("#!"):
        interpreter = first_body_line[2:].split()
        program = interpreter[-1] if interpreter and interpreter[0].endswith("env") else (interpreter or [""])[0]
        return program.rsplit("/", 1)[-1] in {s.rsplit("/", 1)[-1] for s in SHELLS}
    words = _HEREDOC_MARK.sub(" ", command_text).split()
    return not words or words[0] in SHELLS


def ignore_comments(lines: list[str]) -> dict[int, tuple[str, ...]]:
    """Map each `# portcullis ignore=` comment to the next line that is not a comment or blank."""
    ignores: dict[int, tuple[str, ...]] = {}
    waiting: list[str] = []
    for number, line in enumerate(lines, start=1):
        match = _IGNORE.match(line)
        if match:
            waiting.extend(part.strip().upper() for part in match.group(1).split(","))
            continue
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        if waiting:
            ignores[number] = tuple(waiting)
            waiting = []
    return ignores

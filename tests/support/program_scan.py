"""Find the external programs that shell scripts, Makefile recipes and Python code call.

Used by tests/unit/test_system_programs.py to hold every program to the list in
scripts/system-programs.tsv. The shell reader is small but quote-aware: it follows `$(...)` and
backticks, skips here-document bodies and comments, and looks through wrappers such as `setsid`,
`timeout 5` and `command -v`. The Python reader walks the AST for subprocess, os.exec*, shutil.which
the local wrappers that hand their argument list to those, and tests/support/tools.py's `tool("name")`.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

# Words that are part of the shell, not programs on disk.
SHELL_BUILTINS = frozenset(
    [
        ".",
        ":",
        "[",
        "[[",
        "]]",
        "alias",
        "bg",
        "break",
        "builtin",
        "cd",
        "continue",
        "declare",
        "echo",
        "eval",
        "exec",
        "exit",
        "export",
        "false",
        "fg",
        "getopts",
        "hash",
        "jobs",
        "kill",
        "let",
        "local",
        "mapfile",
        "printf",
        "pwd",
        "read",
        "readarray",
        "readonly",
        "return",
        "set",
        "shift",
        "shopt",
        "source",
        "test",
        "times",
        "trap",
        "true",
        "type",
        "typeset",
        "ulimit",
        "umask",
        "unalias",
        "unset",
        "wait",
    ]
)
SHELL_KEYWORDS = frozenset(
    [
        "if",
        "then",
        "else",
        "elif",
        "fi",
        "do",
        "done",
        "while",
        "until",
        "for",
        "in",
        "case",
        "esac",
        "function",
        "select",
        "time",
        "!",
        "{",
        "}",
    ]
)
# Words after which the next word is again in command position.
COMMAND_STARTERS = frozenset(["if", "then", "else", "elif", "do", "while", "until", "!", "{", "time"])
SEPARATORS = frozenset({";", "&", "&&", "||", "|", "|&", "(", ")", "\n", ";;", ";&", ";;&"})
# Wrappers whose first non-option argument is the program they run.
PREFIX_WRAPPERS = frozenset({"setsid", "nohup", "exec", "sudo", "nice", "ionice"})
REDIRECTION = re.compile(r"^\d*(>>?|<<?<?|>&|<&|&>>?)")
ASSIGNMENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\[[^]]*\])?\+?=")
SKIP_PRAGMA = "program-list: skip"
HEREDOC = re.compile(r"<<-?\s*(['\"]?)([A-Za-z_][A-Za-z0-9_]*)\1")


@dataclass(frozen=True)
class Call:
    """One program call: which program, where."""

    program: str
    path: Path
    line: int


def _strip_heredocs(text: str) -> str:
    """Blank the bodies of here-documents (their lines are data, not commands), keeping line numbers."""
    lines = text.split("\n")
    out: list[str] = []
    pending: list[str] = []
    for line in lines:
        if pending:
            if line.strip() == pending[0]:
                pending.pop(0)
            out.append("")
            continue
        out.append(line)
        pending.extend(match.group(2) for match in HEREDOC.finditer(line))
    return "\n".join(out)


def _tokens(text: str) -> Iterator[tuple[str, int, bool]]:
    """Words and operators of shell text as (token, line, is_operator); substitutions yield their own commands.

    A command substitution is replaced in its word by a placeholder and its body is tokenised
    recursively, preceded by a separator so its first word is in command position.
    """
    i, line, n = 0, 1, len(text)
    word: list[str] = []
    word_line = 1
    nested: list[tuple[str, int]] = []

    def flush() -> Iterator[tuple[str, int, bool]]:
        if word:
            yield "".join(word), word_line, False
            word.clear()

    def take_balanced(start: int) -> int:
        """Index just past the `)` that closes the `$(` whose body starts at `start`."""
        depth, j, quote = 1, start, ""
        while j < n:
            c = text[j]
            if quote:
                if c == "\\" and quote == '"':
                    j += 2
                    continue
                if c == quote:
                    quote = ""
            elif c in "'\"":
                quote = c
            elif c == "\\":
                j += 2
                continue
            elif c == "(":
                depth += 1
            elif c == ")":
                depth -= 1
                if depth == 0:
                    return j + 1
            j += 1
        return n

    quote = ""
    while i < n:
        c = text[i]
        if not word:
            word_line = line
        if c == "\n":
            line += 1
        if quote == "'":
            if c == "'":
                quote = ""
            word.append(c)
            i += 1
            continue
        if c == "\\" and i + 1 < n:
            if text[i + 1] == "\n":
                line += 1
                i += 2
                continue
            word.append(text[i : i + 2])
            i += 2
            continue
        if text.startswith("$((", i):
            end = take_balanced(i + 2)
            word.append("$ARITH")
            line += text.count("\n", i, end)
            i = end
            continue
        if text.startswith("$(", i):
            end = take_balanced(i + 2)
            nested.append((text[i + 2 : end - 1], line))
            line += text.count("\n", i, end)
            word.append("$SUBST")
            i = end
            continue
        if c == "`":
            end = text.find("`", i + 1)
            end = n if end < 0 else end
            nested.append((text[i + 1 : end], line))
            word.append("$SUBST")
            i = end + 1
            continue
        if quote == '"':
            if c == '"':
                quote = ""
            word.append(c)
            i += 1
            continue
        if c in "'\"":
            quote = c
            word.append(c)
            i += 1
            continue
        if c == "#" and not word:
            end = text.find("\n", i)
            i = n if end < 0 else end
            continue
        if c in " \t":
            yield from flush()
            i += 1
            continue
        if c == "&" and word and word[-1] in "<>":
            word.append(c)  # 2>&1, <&3: a redirection, not a background operator
            i += 1
            continue
        if c == "(" and word and word[-1].endswith("="):
            end = take_balanced(i + 1)  # NAME=(a b c): an array's words are data
            word.append("(ARRAY)")
            line += text.count("\n", i, end)
            i = end
            continue
        if c in "\n;&|()":
            yield from flush()
            operator = c
            for candidate in (";;&", ";;", ";&", "&&", "||", "|&", "&>>", "&>"):
                if text.startswith(candidate, i):
                    operator = candidate
                    break
            if operator.startswith("&>"):
                word.append(operator)
                i += len(operator)
                continue
            if c == "(" and word:
                word.append(c)
                i += 1
                continue
            yield operator, line, True
            i += len(operator)
            continue
        word.append(c)
        i += 1
    yield from flush()
    for body, at in nested:
        yield "\n", at, True
        for token, offset, is_op in _tokens(body):
            yield token, at + offset - 1, is_op


def _unquote(word: str) -> str:
    return word.replace('"', "").replace("'", "")


def shell_programs(text: str) -> Iterator[tuple[str, int]]:
    """(program, line) for every word in command position in shell text."""
    tokens = list(_tokens(_strip_heredocs(text)))
    functions = {
        tokens[k][0]
        for k in range(len(tokens) - 2)
        if not tokens[k][2] and tokens[k + 1][0] == "(" and tokens[k + 2][0] == ")"
    }
    functions |= {tokens[k + 1][0] for k in range(len(tokens) - 1) if tokens[k][0] == "function"}
    expect_command = True
    in_case_patterns = False
    skip_until_do = False
    k = 0
    while k < len(tokens):
        token, line, is_op = tokens[k]
        k += 1
        if is_op:
            if token in {";;", ";&", ";;&"}:
                in_case_patterns = True
            if in_case_patterns and token == ")":
                in_case_patterns = False
            expect_command = True
            if skip_until_do and token in {";", "\n"}:
                expect_command = False
            continue
        if skip_until_do:
            if token == "do":
                skip_until_do = False
                expect_command = True
            continue
        if in_case_patterns:
            if token == "esac":
                in_case_patterns = False
            continue
        if not expect_command:
            if token == "in" and any(t[0] == "case" for t in tokens[max(0, k - 4) : k]):
                in_case_patterns = True
            continue
        if token in COMMAND_STARTERS or token in {"}", "fi", "done", "esac"}:
            continue
        if token in {"for", "select"}:
            skip_until_do = True
            continue
        if token == "case":
            expect_command = False
            continue
        if ASSIGNMENT.match(token) or REDIRECTION.match(token) or token in {"[[", "function"}:
            if token in {"[[", "function"}:
                expect_command = False
            continue
        word = _unquote(token)
        if word in functions:
            expect_command = False
            continue
        if word in PREFIX_WRAPPERS:
            if word != "exec":
                yield word, line
            continue
        if word in {"env", "xargs", "timeout", "command"}:
            # Options (and timeout's duration, env's assignments) come before the program they run.
            probing = word == "command" and k < len(tokens) and tokens[k][0] in {"-v", "-V"}
            if word != "command":
                yield word, line
            while k < len(tokens) and not tokens[k][2]:
                option = tokens[k][0]
                if option.startswith("-") or ASSIGNMENT.match(option) or (word == "timeout" and option[:1].isdigit()):
                    k += 1
                    continue
                break
            if probing:
                # `command -v NAME` looks a program up: it is needed as much as one that is run
                if k < len(tokens) and not tokens[k][2]:
                    named = _program_name(_unquote(tokens[k][0]))
                    if named:
                        yield named, tokens[k][1]
                    k += 1
                expect_command = False
            continue
        expect_command = False
        name = _program_name(word)
        if name and (word.startswith("/") or (name not in SHELL_BUILTINS and name not in SHELL_KEYWORDS)):
            yield name, line


def _program_name(word: str) -> str | None:
    """The program a command word names, or None when it is computed ($VAR, "$dir/x") or not a name."""
    if not word or "$" in word or "*" in word or "=" in word:
        return None
    name = word.rsplit("/", 1)[-1] if word.startswith("/") else word
    if "/" in name or not re.fullmatch(r"[A-Za-z0-9_.+-]+", name):
        return None
    return name


def makefile_shell(text: str) -> str:
    """The recipe lines of a Makefile as shell text (same line numbers), make's `$(VAR)` turned into `$VAR`."""
    out: list[str] = []
    for line in text.split("\n"):
        if not line.startswith("\t"):
            out.append("")
            continue
        recipe = line[1:].lstrip("@-+")
        recipe = re.sub(r"\$[({]([A-Za-z_][A-Za-z0-9_]*)[)}]", r"${\1}", recipe.replace("$$", "$"))
        out.append(recipe)
    return "\n".join(out)


# --- Python ---------------------------------------------------------------------------------------

SUBPROCESS_CALLS = frozenset({"run", "Popen", "check_output", "check_call", "call", "getoutput", "getstatusoutput"})
OS_EXEC = re.compile(r"^(exec[lv]p?e?|spawn[lv]p?e?|posix_spawnp?)$")


def _callee(node: ast.Call) -> tuple[str | None, str]:
    """(module or object name, function name) of a call."""
    func = node.func
    if isinstance(func, ast.Attribute):
        base = func.value.id if isinstance(func.value, ast.Name) else None
        return base, func.attr
    if isinstance(func, ast.Name):
        return None, func.id
    return None, ""


class _Resolver:
    """Resolves names to the string constants they are bound to anywhere in one module."""

    def __init__(self, tree: ast.AST) -> None:
        self.values: dict[str, list[ast.expr]] = {}
        for node in ast.walk(tree):
            if isinstance(node, ast.Assign):
                for target in node.targets:
                    if isinstance(target, ast.Name):
                        self.values.setdefault(target.id, []).append(node.value)
            elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name) and node.value:
                self.values.setdefault(node.target.id, []).append(node.value)
            elif (
                isinstance(node, ast.For | ast.comprehension)
                and isinstance(node.target, ast.Name)
                and isinstance(node.iter, ast.Tuple | ast.List | ast.Set)
            ):
                self.values.setdefault(node.target.id, []).extend(node.iter.elts)

    def programs(self, node: ast.expr, depth: int = 0) -> list[str]:
        """Program names an expression used as argv[0] (or as a program name) can stand for."""
        if depth > 4:
            return []
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            name = _program_name(node.value.split()[0]) if node.value.strip() else None
            return [name] if name else []
        if isinstance(node, ast.Name):
            return [p for value in self.values.get(node.id, []) for p in self.programs(value, depth + 1)]
        if isinstance(node, ast.Starred):
            return self.programs(node.value, depth + 1)
        if isinstance(node, ast.List | ast.Tuple) and node.elts:
            return self.programs(node.elts[0], depth + 1)
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Div):
            # pathlib: VENV / "bin" / "trivy" names trivy
            return self.programs(node.right, depth + 1)
        if isinstance(node, ast.Call) and _callee(node)[1] == "str" and node.args:
            return self.programs(node.args[0], depth + 1)
        if isinstance(node, ast.BoolOp):
            return [p for value in node.values for p in self.programs(value, depth + 1)]
        return []


def _argv_wrappers(tree: ast.AST) -> set[str]:
    """Functions in a module that pass their first parameter straight to a subprocess call as argv."""
    wrappers: set[str] = set()
    for function in ast.walk(tree):
        if not isinstance(function, ast.FunctionDef) or not function.args.args:
            continue
        first = function.args.args[0].arg
        for node in ast.walk(function):
            if isinstance(node, ast.Call) and node.args and _is_process_call(node):
                argv = node.args[0]
                if isinstance(argv, ast.Name) and argv.id == first:
                    wrappers.add(function.name)
    return wrappers


def _is_process_call(node: ast.Call) -> bool:
    base, name = _callee(node)
    if base == "subprocess" and name in SUBPROCESS_CALLS:
        return True
    if base is None and name in {"Popen", "check_output", "check_call"}:
        return True
    if base == "os" and OS_EXEC.match(name):
        return True
    return base == "asyncio" and name == "create_subprocess_exec"


def python_programs(text: str) -> Iterator[tuple[str, int]]:
    """(program, line) for every program a Python module runs or looks up with shutil.which."""
    tree = ast.parse(text)
    resolver = _Resolver(tree)
    local_wrappers = _argv_wrappers(tree)
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call) or not node.args:
            continue
        base, name = _callee(node)
        first = node.args[0]
        if base == "os" and OS_EXEC.match(name):
            # os.execv(path, argv): the program is the path
            candidates = resolver.programs(first)
        elif _is_process_call(node) or (name in local_wrappers and base is None):
            shell = any(
                kw.arg == "shell" and isinstance(kw.value, ast.Constant) and kw.value.value for kw in node.keywords
            )
            if shell and isinstance(first, ast.Constant) and isinstance(first.value, str):
                yield from ((program, node.lineno + offset - 1) for program, offset in shell_programs(first.value))
                continue
            candidates = resolver.programs(first)
        elif (name == "which" and base in {"shutil", None}) or (name == "tool" and base is None):
            # shutil.which looks a program up; support.tools.tool names one in the tools venv
            candidates = resolver.programs(first)
        else:
            continue
        for program in candidates:
            yield program, node.lineno


def calls_in(path: Path) -> list[Call]:
    """The program calls in one file: a shell script, a Makefile or a Python module.

    A line that carries the comment `program-list: skip` (with its reason) is left out: for a program
    the code makes itself, such as a copy of sleep named after a daemon.
    """
    text = path.read_text()
    skipped = {number for number, line in enumerate(text.split("\n"), 1) if SKIP_PRAGMA in line}
    if path.suffix == ".py":
        found = python_programs(text)
    elif path.name == "Makefile":
        found = shell_programs(makefile_shell(text))
    else:
        found = shell_programs(text)
    return [Call(program, path, line) for program, line in found if line not in skipped]

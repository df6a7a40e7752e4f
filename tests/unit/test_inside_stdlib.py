"""The zipapp's modules import nothing beyond the standard library and each other, and parse as Python 3.8.

Checked statically, over exactly the files `inside.build` packs, so a new dependency fails here rather
than on a user's container; the engine test runs the built zipapp on a real Python 3.8.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

from portcullis.inside.build import MEMBERS, PACKAGE_ROOT

ZIPAPP_MODULES = sorted(PACKAGE_ROOT / member for member in MEMBERS)
OLDEST_PYTHON = (3, 8)


def _is_zipapp_module(name: str) -> bool:
    """`portcullis` itself (the version) and `portcullis.inside.*` travel in the zipapp."""
    return name == "portcullis" or name == "portcullis.inside" or name.startswith("portcullis.inside.")


def _allowed(name: str) -> bool:
    return name.split(".")[0] in sys.stdlib_module_names or _is_zipapp_module(name)


def foreign_imports(source: str) -> list[str]:
    """Every module the source imports from outside the standard library and the zipapp."""
    foreign = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            foreign += [alias.name for alias in node.names if not _allowed(alias.name)]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            if not _allowed(node.module):
                foreign.append(node.module)
            elif node.module == "portcullis":
                # `from portcullis import checks` would pull in a sub-package the zipapp lacks.
                submodules = [f"portcullis.{alias.name}" for alias in node.names]
                foreign += [name for name in submodules if _names_a_module(name) and not _is_zipapp_module(name)]
    return foreign


def _names_a_module(dotted: str) -> bool:
    relative = Path(*dotted.split(".")[1:])
    return (PACKAGE_ROOT / relative).is_dir() or (PACKAGE_ROOT / relative).with_suffix(".py").is_file()


def test_the_zipapp_packs_the_root_package_and_every_inside_module() -> None:
    expected = {PACKAGE_ROOT / "__init__.py", *(PACKAGE_ROOT / "inside").glob("*.py")}
    assert set(ZIPAPP_MODULES) == expected


@pytest.mark.parametrize("path", ZIPAPP_MODULES, ids=[str(p.relative_to(PACKAGE_ROOT)) for p in ZIPAPP_MODULES])
def test_zipapp_module_imports_only_the_standard_library(path: Path) -> None:
    assert foreign_imports(path.read_text(encoding="utf-8")) == []


@pytest.mark.parametrize("path", ZIPAPP_MODULES, ids=[str(p.relative_to(PACKAGE_ROOT)) for p in ZIPAPP_MODULES])
def test_zipapp_module_parses_with_the_python38_grammar(path: Path) -> None:
    ast.parse(path.read_text(encoding="utf-8"), str(path), feature_version=OLDEST_PYTHON)


def test_the_import_check_flags_what_the_zipapp_cannot_import() -> None:
    source = """
import json, yaml
from os import path
from pydantic import BaseModel
from portcullis import __version__, checks
from portcullis.inside.analyse import analyse
from portcullis.model.findings import Report
import docker.errors
"""
    assert foreign_imports(source) == [
        "yaml",
        "pydantic",
        "portcullis.checks",
        "portcullis.model.findings",
        "docker.errors",
    ]


def test_the_grammar_check_flags_syntax_newer_than_python38() -> None:
    newer = "match value:\n    case 1:\n        pass\n"
    with pytest.raises(SyntaxError):
        ast.parse(newer, feature_version=OLDEST_PYTHON)

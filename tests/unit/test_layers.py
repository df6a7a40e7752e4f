"""Import layering the architecture relies on: renderers never import the rule code, benchmark data is ground level."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "src" / "portcullis"


def imported_modules(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def test_renderers_do_not_import_the_rules() -> None:
    offenders = {
        path.name: sorted(m for m in imported_modules(path) if m.startswith("portcullis.checks"))
        for path in (PACKAGE / "report").glob("*.py")
    }
    assert {name: mods for name, mods in offenders.items() if mods} == {}


def test_the_benchmark_loader_is_ground_level() -> None:
    allowed = {m for m in imported_modules(PACKAGE / "data" / "benchmark.py") if m.startswith("portcullis")}
    assert allowed <= {"portcullis.model.findings"}
    others = {m.split(".")[0] for m in imported_modules(PACKAGE / "data" / "benchmark.py")} - {"portcullis"}
    assert others <= sys.stdlib_module_names | {"__future__"}

"""What the code imports is what pyproject declares, and the locks split runtime from development tools.

`pip install .` (and the wheel, and the container image) get only `[project] dependencies`: a module imported
under src/portcullis that comes from an undeclared distribution works in the dev venv and breaks for users.
"""

from __future__ import annotations

import ast
import os
import re
import subprocess
import sys
import tomllib
from importlib.metadata import PackageNotFoundError, distribution, packages_distributions
from pathlib import Path

import pytest
from packaging.requirements import Requirement

REPO = Path(__file__).resolve().parents[2]
SRC = REPO / "src" / "portcullis"
PYPROJECT = tomllib.loads((REPO / "pyproject.toml").read_text())
# Standard-library modules newer than the oldest Python we support (3.11), imported behind a version guard.
NEWER_STDLIB = {"compression"}  # 3.14: compression.zstd, with backports.zstd below it


def norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def imported_top_modules(path: Path) -> set[str]:
    """Top-level names of every absolute import in a module, also those inside functions (lazy imports)."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


def third_party(modules: set[str]) -> set[str]:
    return {m for m in modules if m not in sys.stdlib_module_names and m not in NEWER_STDLIB and m != "portcullis"}


def declared(requirements: list[str]) -> set[str]:
    return {norm(Requirement(r).name) for r in requirements}


def runtime_closure(requirements: list[str]) -> set[str]:
    """The declared distributions and everything they require (markers evaluated here, no extras)."""
    seen: set[str] = set()
    todo = [Requirement(r) for r in requirements]
    while todo:
        req = todo.pop()
        if req.marker is not None and not req.marker.evaluate({"extra": ""}):
            continue
        if norm(req.name) in seen:
            continue
        seen.add(norm(req.name))
        try:
            todo.extend(Requirement(r) for r in distribution(req.name).requires or [])
        except PackageNotFoundError:
            pytest.fail(f"{req.name} is declared but not installed in this venv (run `make setup`)")
    return seen


def pins(lock: Path) -> dict[str, str]:
    found = {}
    for line in lock.read_text().splitlines():
        if line and not line.startswith((" ", "#", "-")):
            name, _, version = line.partition("==")
            assert version, f"{lock.name}: {line!r} is not an exact pin"
            found[norm(name)] = version
    return found


def undeclared_imports(sources: list[Path], runtime: set[str]) -> list[str]:
    providers = packages_distributions()
    problems = []
    for path in sources:
        for module in sorted(third_party(imported_top_modules(path))):
            dists = {norm(d) for d in providers.get(module, [])}
            if not dists:
                problems.append(f"{path}: {module} comes from no installed distribution")
            elif not dists & runtime:
                problems.append(f"{path}: {module} comes from {sorted(dists)}, not a declared runtime dependency")
    return problems


def test_every_third_party_import_is_a_declared_runtime_dependency() -> None:
    sources = sorted(SRC.rglob("*.py"))
    assert len(sources) > 50, "the scan found too few modules to be meaningful"
    assert not undeclared_imports(sources, declared(PYPROJECT["project"]["dependencies"]))


def test_an_undeclared_import_is_caught(tmp_path: Path) -> None:
    """The check above can fail: a module importing a dev-only tool (or a transitive dependency) is named."""
    module = tmp_path / "leak.py"
    module.write_text("import json\n\ndef f():\n    import pytest\n    from idna import core\n")
    problems = undeclared_imports([module], declared(PYPROJECT["project"]["dependencies"]))
    assert problems == [
        f"{module}: idna comes from ['idna'], not a declared runtime dependency",
        f"{module}: pytest comes from ['pytest'], not a declared runtime dependency",
    ]


def test_runtime_lock_pins_exactly_the_runtime_closure() -> None:
    runtime = runtime_closure(PYPROJECT["project"]["dependencies"])
    locked = pins(REPO / "requirements.lock")
    assert set(locked) == runtime, (
        f"missing from requirements.lock: {sorted(runtime - set(locked))}; "
        f"not needed at runtime: {sorted(set(locked) - runtime)}"
    )


def test_dev_lock_pins_the_dev_tools_and_nothing_twice() -> None:
    runtime = pins(REPO / "requirements.lock")
    dev = pins(REPO / "requirements-dev.lock")
    assert not set(runtime) & set(dev), f"pinned in both locks: {sorted(set(runtime) & set(dev))}"
    wanted = runtime_closure(PYPROJECT["project"]["optional-dependencies"]["dev"]) - set(runtime)
    assert set(dev) == wanted, f"missing: {sorted(wanted - set(dev))}; extra: {sorted(set(dev) - wanted)}"


def test_the_venv_runs_the_locked_versions() -> None:
    """The locks are what `make setup` installed: a pin that drifted from the venv would go untested."""
    drift = []
    for lock in ("requirements.lock", "requirements-dev.lock"):
        for name, version in pins(REPO / lock).items():
            try:
                installed = distribution(name).version
            except PackageNotFoundError:
                installed = "absent"
            if installed != version:
                drift.append(f"{lock}: {name}=={version}, installed {installed}")
    assert not drift


def test_the_wheel_installs_offline_from_the_locked_runtime_wheels_and_imports_everything(tmp_path: Path) -> None:
    """`pip install portcullis` resolved from pyproject's dependencies against only the wheels of requirements.lock
    (prepared by `make image`), then every module imported in that venv: an undeclared dependency fails here."""
    wheels = REPO / "build" / "image" / "wheels"
    if not list(wheels.glob("portcullis-*.whl")):
        pytest.fail(f"no wheels in {wheels}: run `make image`")
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    python = venv / "bin" / "python"
    subprocess.run(  # program-list: skip (the python of the venv this test made)
        [str(python), "-m", "pip", "install", "-q", "--no-index", "--find-links", str(wheels), "portcullis"],
        check=True, timeout=300,
    )  # fmt: skip
    probe = (
        "import importlib, pkgutil, portcullis\n"
        "names = [m.name for m in pkgutil.walk_packages(portcullis.__path__, 'portcullis.')]\n"
        "names.remove('portcullis.__main__')  # runs the CLI\n"
        "for name in names:\n"
        "    importlib.import_module(name)\n"
        "print(len(names), portcullis.__file__)\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}  # the installed wheel, not src/
    result = subprocess.run(  # program-list: skip (the python of the venv this test made)
        [str(python), "-c", probe], capture_output=True, text=True, timeout=300, check=False, env=env, cwd=tmp_path
    )
    assert result.returncode == 0, result.stderr
    count, location = result.stdout.split()
    assert int(count) > 50 and location.startswith(str(venv))

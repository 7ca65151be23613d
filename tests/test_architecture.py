"""The package layers of docs/architecture.md, checked by import-linter (pyproject.toml)."""

from __future__ import annotations

import ast
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
CONFIG = REPO / "pyproject.toml"
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")
LAYERS = "Layers: each package imports only the packages below it"
NO_PYGAMBIT = "No pygambit: sim never imports it"

pytestmark = pytest.mark.skipif(
    not LINT_IMPORTS.exists(), reason="import-linter is not installed (pip install -e '.[test]')"
)


def lint_imports(cwd: Path) -> subprocess.CompletedProcess:
    """lint-imports with the project's contracts over the `sim` package found in `cwd`."""
    env = {**os.environ, "PYTHONPATH": str(cwd)}
    return subprocess.run(
        [str(LINT_IMPORTS), "--no-cache", "--no-logo", str(CONFIG)],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def copy_package(tmp_path: Path) -> Path:
    shutil.copytree(REPO / "sim", tmp_path / "sim", ignore=shutil.ignore_patterns("__pycache__"))
    return tmp_path / "sim"


def test_the_package_keeps_its_layers():
    result = lint_imports(REPO)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"{LAYERS} KEPT" in result.stdout
    assert f"{NO_PYGAMBIT} KEPT" in result.stdout


def test_an_upward_import_breaks_the_layers_contract(tmp_path):
    package = copy_package(tmp_path)
    expr = package / "model" / "expr.py"
    expr.write_text(expr.read_text(encoding="utf-8") + "\nimport sim.cli.main  # noqa\n")
    result = lint_imports(tmp_path)
    assert result.returncode != 0, result.stdout
    assert f"{LAYERS} BROKEN" in result.stdout
    # the copy was analysed, not the installed package: only the copy has this import
    assert "sim.model is not allowed to import sim.cli" in result.stdout
    assert "sim.model.expr -> sim.cli.main" in result.stdout


def test_importing_pygambit_breaks_its_contract(tmp_path):
    package = copy_package(tmp_path)
    exact = package / "solvers" / "exact.py"
    exact.write_text(exact.read_text(encoding="utf-8") + "\nimport pygambit  # noqa\n")
    result = lint_imports(tmp_path)
    assert result.returncode != 0, result.stdout
    assert f"{NO_PYGAMBIT} BROKEN" in result.stdout
    assert "sim.solvers.exact -> pygambit" in result.stdout


def test_a_module_outside_every_layer_is_refused(tmp_path):
    package = copy_package(tmp_path)
    (package / "helpers.py").write_text('"""An undeclared top-level module."""\n')
    result = lint_imports(tmp_path)
    assert result.returncode != 0, result.stdout
    assert "sim.helpers" in result.stdout


def test_the_root_package_imports_nothing_of_its_own():
    """`sim/__init__.py` sits above every layer: a static import there would tie each module
    that reads `sim.__version__` to whatever it imports (lazy importlib loading is fine)."""
    tree = ast.parse((REPO / "sim" / "__init__.py").read_text(encoding="utf-8"))
    own = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            own += [a.name for a in node.names if a.name.split(".")[0] == "sim"]
        elif isinstance(node, ast.ImportFrom) and (
            node.level or (node.module or "").split(".")[0] == "sim"
        ):
            own.append("." * node.level + (node.module or ""))
    assert own == [], f"sim/__init__.py imports {own}"

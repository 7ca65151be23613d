"""No code in `sim/` runs strings as code: user expressions go through sim/model/expr.py only.

One module runs a file it wrote: sim/engine/compiled_specialise.py imports the compiled
kernel's own body with a model's tables as integer literals and .npz arrays (its tests check
that no scenario text reaches that file). `exec_module` is allowed there and nowhere else."""

from __future__ import annotations

import ast
from pathlib import Path

SIM = Path(__file__).resolve().parents[1] / "sim"
FORBIDDEN = {"eval", "exec", "compile", "__import__"}
RUNS_A_FILE = {"exec_module"}
MAY_RUN_A_FILE = {"sim/engine/compiled_specialise.py"}


def dynamic_calls(source: str) -> list[tuple[int, str]]:
    """(line, name) of every call of a builtin that turns a string into code."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Call):
            func = node.func
            name = func.id if isinstance(func, ast.Name) else None
            if (
                isinstance(func, ast.Attribute)
                and isinstance(func.value, ast.Name)
                and func.value.id == "builtins"
            ):
                name = func.attr
            if name in FORBIDDEN:
                found.append((node.lineno, name))
            if isinstance(func, ast.Attribute) and func.attr in RUNS_A_FILE:
                found.append((node.lineno, func.attr))
    return found


def test_no_module_of_sim_calls_eval_exec_or_compile():
    offenders = [
        f"{path.relative_to(SIM.parent)}:{line}: {name}()"
        for path in sorted(SIM.rglob("*.py"))
        for line, name in dynamic_calls(path.read_text(encoding="utf-8"))
        if not (name in RUNS_A_FILE and path.relative_to(SIM.parent).as_posix() in MAY_RUN_A_FILE)
    ]
    assert offenders == []


def test_the_check_finds_a_call():
    assert dynamic_calls("x = eval('1')\nbuiltins.exec(s)\nre.compile('a')") == [
        (1, "eval"),
        (2, "exec"),
    ]
    assert dynamic_calls("spec.loader.exec_module(m)") == [(1, "exec_module")]

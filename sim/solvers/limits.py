"""How far the solvers enumerate: a step limit, so that time is bounded as memory is.

The exact solver and the game graph of strategic actors do work for every step up to the
horizon, even when few states are alive; a mutated file with `horizon: 100000` made a strategic
scenario take minutes. They refuse a horizon beyond MAX_SOLVED_STEPS at its line and column.
"""

from __future__ import annotations

from sim.errors import ScenarioError
from sim.format.source import SourceMap
from sim.model.compiled import Model

MAX_SOLVED_STEPS = 2_000
"""The largest horizon the exact solver and the strategic solver enumerate (bundled: 32)."""


def check_solved_horizon(model: Model, purpose: str) -> None:
    """ScenarioError at `horizon` when `purpose` (a solver) would enumerate too many steps."""
    if model.horizon <= MAX_SOLVED_STEPS:
        return
    source = model.scenario._source or SourceMap("<scenario>")
    message = (
        f"{purpose} enumerates every step: at most {MAX_SOLVED_STEPS:,} steps, and the horizon "
        f"is {model.horizon:,}; lower the horizon"
    )
    raise ScenarioError([source.problem(("horizon",), message)])

"""The solvers' step limit: a huge horizon is refused at its line, in bounded time."""

from __future__ import annotations

import pytest

from sim.errors import ScenarioError
from sim.model.compiler import compile_model
from sim.model.loading import load_text
from sim.solvers.exact import solve
from sim.solvers.limits import MAX_SOLVED_STEPS
from sim.solvers.prepare import prepare_model
from tests.conftest import ROOT

SCENARIOS = ROOT / "sim" / "scenarios"


def with_horizon(name: str, horizon: int) -> str:
    text = (SCENARIOS / f"{name}.yaml").read_text()
    old = next(line for line in text.splitlines() if line.startswith("horizon:"))
    return text.replace(old, f"horizon: {horizon}", 1)


def test_a_strategic_scenario_with_a_huge_horizon_is_refused_at_the_horizon():
    """Found by the 3,000-case fuzz campaign: red_line_2020 with horizon 100000 took 207 s."""
    text = with_horizon("red_line_2020", 100_000)
    with pytest.raises(ScenarioError, match="at most 2,000 steps, and the horizon is 100,000"):
        prepare_model(load_text(text, "huge.yaml"))


def test_the_exact_solver_refuses_it_too_and_accepts_the_limit():
    with pytest.raises(ScenarioError, match="the exact solver enumerates every step") as err:
        solve(compile_model(load_text(with_horizon("chicken", MAX_SOLVED_STEPS + 1), "c.yaml")))
    line = err.value.problems[0].line
    assert (SCENARIOS / "chicken.yaml").read_text().splitlines()[line - 1].startswith("horizon")
    solve(compile_model(load_text(with_horizon("chicken", MAX_SOLVED_STEPS), "c.yaml")))

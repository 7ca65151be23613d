"""The step is defined once (sim/model/step.py): every driver agrees, and refusals agree too."""

from __future__ import annotations

import ast
from pathlib import Path

import numpy as np
import pytest

from sim.engine.runner import run_monte_carlo
from sim.errors import ScenarioError, SimulationError
from sim.format.scenario import Scenario
from sim.model.compiler import compile_model
from sim.model.loading import load_text
from sim.solvers.exact import solve as solve_exact
from sim.solvers.prepare import prepare_model
from tests.conftest import scenario_text

ROOT = Path(__file__).resolve().parents[2]

GAME = """
horizon: 3
ladder: [calm, tense, war]
parameters:
  lam: {value: 2.0, min: 0, max: 100}
state:
  pressure: {initial: 0, min: 0, max: 5, integer: true}
actors: {us: {label: US}, iran: {label: Iran}}
turn_order: [us, iran]
options:
  us:
    - id: press
      rung: tense
      effects: {add: {pressure: 1}}
      payoffs: {us: 1, iran: -1}
      outcomes:
        - {id: holds, p: 0.75, payoffs: {us: "0.5 * pressure"}}
        - {id: slips, rung: war}
    - {id: wait}
  iran:
    - {id: yield, payoffs: {iran: -1}}
    - {id: resist, rung: war, payoffs: {us: -3, iran: -2}}
policies:
  us: {kind: strategic, rationality: lam}
  iran: {kind: logit, rationality: 1, utilities: {yield: "-pressure", resist: "pressure - 2"}}
outcomes:
  war: {when: rung >= 2, payoffs: {us: -5, iran: -5}}
"""

FOLDED_DRAW = """
horizon: 2
ladder: [calm, war]
actors: {a: {label: A}, b: {label: B}}
turn_order: [a, b]
options:
  a:
    - id: go
      payoffs:
        a: >-
          1 +
          poisson(2)
    - {id: stay}
  b:
    - {id: wait}
policies:
  a: {kind: POLICY}
  b: {kind: fixed, option: wait}
"""


def test_exact_matches_monte_carlo_with_a_solved_strategic_actor():
    """Engine and exact solver both read the strategic actor's solved lookup policy."""
    model = prepare_model(load_text(scenario_text(GAME), "game.yaml"))
    exact = solve_exact(model)
    mc = run_monte_carlo(model, runs=40_000, seed=3)
    for i in range(len(model.outcome_ids)):
        q = exact.probabilities[i]
        se = max(np.sqrt(q * (1 - q) / mc.runs), 1e-12)
        assert abs(mc.probabilities[i] - q) < 4.5 * se
    assert exact.payoff_mean == pytest.approx(model.strategic.values, abs=1e-12)


def test_an_unsolved_strategic_policy_cannot_choose():
    """compile_model compiles only: the engine refuses to guess a strategic actor's play."""
    model = compile_model(load_text(scenario_text(GAME), "game.yaml"))
    assert model.strategic is None
    with pytest.raises(SimulationError, match="must be solved"):
        run_monte_carlo(model, runs=10, seed=1)


def test_a_scenario_built_in_python_solves_like_its_file():
    """The game graph needs no source file (it used to fail with AttributeError)."""
    loaded = load_text(scenario_text(GAME), "game.yaml")
    built = Scenario.model_validate(loaded.model_dump(by_alias=True))
    assert built._source is None
    a, b = prepare_model(loaded), prepare_model(built)
    np.testing.assert_array_equal(a.strategic.values, b.strategic.values)
    assert solve_exact(a).to_json()["outcomes"] == solve_exact(b).to_json()["outcomes"]


def draw_position(text: str) -> tuple[int, int]:
    """1-based line and column of 'poisson(' in the file."""
    for n, line in enumerate(text.splitlines(), 1):
        if "poisson(" in line:
            return n, line.index("poisson(") + 1
    raise AssertionError("no draw")


def test_refusals_of_a_draw_in_a_folded_block_point_at_the_draw():
    """The exact solver and the strategic solver place the draw where the compiler would: on
    its own line and column inside a folded block scalar (they used to point at the header)."""
    exact_text = scenario_text(FOLDED_DRAW.replace("POLICY", "fixed, option: go"))
    with pytest.raises(ScenarioError) as exact_err:
        solve_exact(prepare_model(load_text(exact_text, "f.yaml")))
    strategic_text = scenario_text(FOLDED_DRAW.replace("POLICY", "strategic, rationality: 1"))
    with pytest.raises(ScenarioError) as strategic_err:
        load_text(strategic_text, "f.yaml")
    want = draw_position(exact_text)
    for err in (exact_err, strategic_err):
        problem = err.value.problems[0]
        assert (problem.line, problem.col) == want, str(problem)
    assert "random draw" in strategic_err.value.problems[0].message


def names_in(path: Path) -> set[str]:
    """Every identifier and string constant of a module."""
    tree = ast.parse(path.read_text())
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Name):
            out.add(node.id)
        elif isinstance(node, ast.Attribute):
            out.add(node.attr)
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            out.update(node.value.replace("'", " ").split())
    return out


@pytest.mark.parametrize(
    "module", ["sim/engine/batch.py", "sim/engine/runner.py", "sim/solvers/exact.py"]
)
def test_the_engine_and_the_exact_solver_do_not_know_strategic_actors(module):
    """They read lookup policies; solving strategic actors happens once, before them."""
    assert not {"strategic", "StrategicSolution"} & names_in(ROOT / module)


def test_the_drivers_do_not_spell_out_the_step():
    """Engine, exact solver and game graph take the order of a step from sim/model/step.py."""
    for module in ("sim/engine/batch.py", "sim/solvers/exact.py", "sim/solvers/game_graph.py"):
        names = names_in(ROOT / module)
        assert "advance" in names
        assert not {"effect_updates", "branch_probabilities", "terminal_outcomes"} & names

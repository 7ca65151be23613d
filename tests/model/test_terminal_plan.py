"""Which terminal conditions each move can make true (semantics.terminals_to_check): a condition
of the rung alone that is false on every rung the move can set is not checked after it, and the
results do not change."""

from __future__ import annotations

import pytest

import sim.model.semantics as semantics
from sim.engine.runner import run_monte_carlo
from sim.model.loading import load_scenario
from sim.model.semantics import terminals_to_check
from sim.solvers.prepare import prepare_model
from tests.conftest import ROOT, build

GAME = """
horizon: 6
ladder: [calm, tense, war]
parameters:
  line: {value: 2, min: 0, max: 2}
state:
  heat: {initial: 0, min: 0, max: 9, integer: true}
actors: {a: {label: A}, b: {label: B}}
turn_order: [a, b]
options:
  a:
    - {id: push, rung: tense, effects: {add: {heat: 1}}}
    - {id: calm_down, rung: calm}
  b:
    - id: strike
      outcomes:
        - {id: war, p: 0.2, rung: war}
        - {id: contained}
    - {id: wait}
policies:
  a: {kind: logit, rationality: 1, utilities: {push: "1 - 0.3 * heat", calm_down: 0}}
  b: {kind: table, respond_to: a, table: {push: {strike: 0.5, wait: 0.5}, default: {wait: 1}}}
outcomes:
  war: {when: "WAR"}
  quiet: {when: heat >= 4}
"""


def outcomes(plan: list, model) -> list[list[str]]:
    return [[model.outcome_ids[t.outcome] for t in turn] for turn in plan]


def test_a_move_that_only_sets_lower_rungs_does_not_check_the_rung_condition():
    model = build(GAME.replace("WAR", "rung >= line"))
    assert outcomes(terminals_to_check(model), model) == [["quiet"], ["war"], []]


@pytest.mark.parametrize(
    "war",
    [
        "rung >= 1",  # a's push sets rung 1
        "rung >= 2 or heat >= 9",  # reads a state variable too
        "rung >= uniform(1, 3)",  # a random draw: always checked
    ],
)
def test_conditions_the_move_can_make_true_are_kept(war):
    model = build(GAME.replace("WAR", war))
    assert "war" in outcomes(terminals_to_check(model), model)[0]


@pytest.mark.parametrize("name", ["camp_taji_2020", "tit_for_tat", "red_line_2020"])
def test_results_equal_with_and_without_the_rung_proof(name, monkeypatch):
    model = prepare_model(load_scenario(ROOT / "scenarios" / f"{name}.yaml"))
    proved = run_monte_carlo(model, 9000, 3, batch_blocks=2).to_dict()
    monkeypatch.setattr(semantics, "_false_on_rungs", lambda *args: False)
    assert run_monte_carlo(model, 9000, 3, batch_blocks=2).to_dict() == proved

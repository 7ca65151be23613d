"""Tabulated logit policies (sim/model/tabulated.py) give the run-by-run results bit for bit."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import sim.engine.batch as batch
from sim.engine.runner import run_monte_carlo
from sim.model.loading import load_scenario
from sim.model.policies import logit_weights
from sim.model.semantics import checked_utilities
from sim.model.tabulated import tabulate, tabulated_policies
from sim.solvers.prepare import prepare_model
from tests.conftest import build

ROOT = Path(__file__).resolve().parents[2]
TABULATED = ("tit_for_tat", "credibility", "direct_response_2020")

GAME = """
horizon: 8
ladder: [calm, war]
parameters:
  gain: {value: 1.0, min: -3, max: 3}
state:
  resolve: {initial: 0, min: 0, max: 3, integer: true}
  heat: {initial: 2, min: -2, max: 4, integer: true}
actors: {a: {label: A}, b: {label: B}}
turn_order: [a, b]
options:
  a:
    - {id: fire, effects: {add: {resolve: 1, heat: 1}}, payoffs: {a: 1}}
    - {id: hold, effects: {add: {heat: -1}}}
    - {id: bluff, effects: {set: {resolve: 0}}}
  b:
    - {id: strike, rung: war}
    - {id: wait}
policies:
  a:
    kind: logit
    rationality: 1.5
    utilities: {fire: "gain - 0.8 * resolve + 0.1 * heat", hold: "0.3 * heat", bluff: "UTIL"}
  b: {kind: table, respond_to: a, table: {fire: {strike: 0.1, wait: 0.9}, default: {wait: 1}}}
outcomes:
  war: {when: rung >= 1}
"""


def game(bluff: str = "0") -> object:
    return build(GAME.replace("UTIL", bluff))


def test_weights_equal_the_run_by_run_computation_bit_for_bit():
    model = game("-0.5 * heat * resolve")
    table = tabulate(model, 0, model.policies[0])
    assert table is not None and table.weights.shape == (3, 4 * 7)
    rng = np.random.default_rng(3)
    state = np.vstack([rng.integers(0, 4, 5000), rng.integers(-2, 5, 5000)]).astype(float)

    class Runs:
        size = state.shape[1]
        rng = None
        step = 1

        def value(self, name: str) -> object:
            if name in model.parameters:
                return model.parameters[name]
            return state[model.state_names.index(name)]

    policy = model.policies[0]
    raw = [u(Runs()) for u in policy.utilities]
    utilities = checked_utilities(policy.utilities, raw, state.shape[1], 1)
    want = logit_weights(policy.rationality, utilities, None)
    got = table.weights_at(state)
    assert np.array_equal(got.view(np.uint64), want.view(np.uint64))


@pytest.mark.parametrize(
    "bluff",
    [
        "exp(-1 / resolve)",  # resolve -0.0 would give exp(+inf): the sign of a zero matters
        "1 / resolve",  # not finite at resolve 0: the run-by-run path raises it
        "rung",  # not a state variable
        "uniform(0, 1)",  # a random draw
    ],
)
def test_policies_that_cannot_be_tabulated_are_played_run_by_run(bluff):
    model = game(bluff)
    assert tabulate(model, 0, model.policies[0]) is None


def test_an_unbounded_or_fractional_variable_is_not_tabulated():
    model = build(GAME.replace("max: 3, integer: true", "max: 3").replace("UTIL", "0"))
    assert tabulate(model, 0, model.policies[0]) is None


@pytest.mark.parametrize("name", TABULATED)
def test_engine_results_equal_with_and_without_tables(name, monkeypatch):
    model = prepare_model(load_scenario(ROOT / "scenarios" / f"{name}.yaml"))
    assert any(t is not None for t in tabulated_policies(model))
    with_tables = [run_monte_carlo(model, 9000, seed, batch_blocks=2) for seed in (1, 5)]
    monkeypatch.setattr(batch, "tabulated_policies", lambda m: (None,) * len(m.policies))
    without = [run_monte_carlo(model, 9000, seed, batch_blocks=2) for seed in (1, 5)]
    for a, b in zip(with_tables, without, strict=True):
        assert a.to_dict() == b.to_dict()


def test_inline_game_results_equal_with_and_without_tables(monkeypatch):
    model = game("-0.5 * heat * resolve")
    with_table = run_monte_carlo(model, 6000, 2).to_dict()
    monkeypatch.setattr(batch, "tabulated_policies", lambda m: (None,) * len(m.policies))
    assert run_monte_carlo(model, 6000, 2).to_dict() == with_table

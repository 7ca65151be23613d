"""The runner: identical results for any worker count, whatever the model was compiled with."""

from __future__ import annotations

import dataclasses
import json

from sim.engine.runner import run_monte_carlo
from sim.format.loader import read_yaml
from sim.format.scenario import FixedPolicy, Scenario
from sim.model.loading import load_scenario
from sim.solvers.prepare import prepare_model
from tests.conftest import CAMP_TAJI

RUNS = 3 * 4096


def same_for_workers(model) -> None:
    one = run_monte_carlo(model, RUNS, 5, workers=1, batch_blocks=1).to_json()
    two = run_monte_carlo(model, RUNS, 5, workers=2, batch_blocks=1).to_json()
    assert json.dumps(one) == json.dumps(two)


def test_policy_overrides_reach_worker_processes():
    scenario = load_scenario(CAMP_TAJI)
    model = prepare_model(
        scenario,
        {"kh_autonomy": 0.7},
        policies={"us": FixedPolicy(kind="fixed", option="strike_iran")},
    )
    assert run_monte_carlo(model, 4096, 1).move_shares()["us"]["strike_iran"] > 0.5
    same_for_workers(model)


def test_forced_first_move_reaches_worker_processes():
    model = prepare_model(load_scenario(CAMP_TAJI))
    us = model.actor_index("us")
    strike = [o.id for o in model.options[us]].index("strike_iran")
    same_for_workers(dataclasses.replace(model, forced_first={us: strike}))


def test_scenario_built_in_python_runs_on_workers():
    data, _ = read_yaml(CAMP_TAJI.read_text(), "x")
    same_for_workers(prepare_model(Scenario.model_validate(data)))

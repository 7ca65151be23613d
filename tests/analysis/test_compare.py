"""Decision analysis: common random numbers, paired differences, the recommendation."""

from __future__ import annotations

import json

import numpy as np
import pytest

from sim.analysis.compare import compare_first_moves, compare_policies
from sim.cli.main import main
from sim.engine.runner import run_monte_carlo
from sim.model.loading import load_text
from sim.solvers.prepare import prepare_model
from tests.conftest import CAMP_TAJI, scenario_text

DUEL = """
horizon: 6
ladder: [calm, strike, war]
parameters: {risk: {value: 0.1, min: 0, max: 1}}
state: {heat: 0}
actors: {us: {label: United States}, them: {label: Them}}
turn_order: [us, them]
options:
  us:
    - {id: talk, rung: calm, payoffs: {us: -1}}
    - {id: talk_too, rung: calm, payoffs: {us: -1}}
    - id: hit
      rung: strike
      payoffs: {us: 1}
      outcomes: [{id: spiral, p: risk, rung: war}, {id: contained}]
    - {id: locked, requires: "heat > 5"}
  them:
    - {id: wait}
    - {id: hit_back, rung: strike, effects: {add: {heat: 1}}}
policies:
  us: {kind: fixed, option: talk}
  them: {kind: table, respond_to: us, table: {hit: {hit_back: 0.7, wait: 0.3},
                                               default: {wait: 0.9, hit_back: 0.1}}}
alternatives:
  us:
    hawk: {kind: fixed, option: hit}
    dove: {kind: fixed, option: talk}
outcomes:
  war: {when: rung >= 2, payoffs: {us: -20}}
"""


@pytest.fixture(scope="module")
def duel():
    return load_text(scenario_text(DUEL), "duel.yaml")


def test_columns_are_the_options_available_at_the_first_move(duel):
    comp = compare_first_moves(duel, "us", 4096, seed=2)
    assert [c.name for c in comp.columns] == ["talk", "talk_too", "hit"]


def test_common_random_numbers_reproduce_the_policy_run_exactly(duel):
    """Forcing the option the fixed policy plays anyway must give the plain run, bit for bit."""
    comp = compare_first_moves(duel, "us", 5000, seed=3)
    plain = run_monte_carlo(prepare_model(duel), 5000, 3)
    assert comp.columns[0].results.to_json() == plain.to_json()
    assert comp.columns[1].results.to_json()["outcomes"] == plain.to_json()["outcomes"]


def test_identical_options_cannot_be_separated(duel):
    comp = compare_first_moves(duel, "us", 4096, seed=4)
    mean, ci = comp.paired(comp.columns[0], comp.columns[1], "payoff")
    assert mean == 0 and ci == (0, 0)
    rec = comp.recommendation()
    assert rec["best"] in ("talk", "talk_too") or rec["best"] == "hit"


def test_paired_interval_is_narrower_than_unpaired():
    from sim.model.loading import load_scenario

    comp = compare_first_moves(load_scenario(CAMP_TAJI), "us", 8192, seed=5)
    a, b = comp.columns[0], comp.columns[1]
    _, (lo, hi) = comp.paired(a, b, "payoff")
    us = comp.actor_index()
    unpaired = 1.96 * np.hypot(a.results.payoff_sd[us], b.results.payoff_sd[us]) / np.sqrt(8192)
    assert (hi - lo) / 2 < unpaired


def test_recommendation_and_max_risk(duel):
    comp = compare_first_moves(duel, "us", 8192, seed=6, max_risk=("war", 0.05))
    rec = comp.recommendation()
    war = comp.model.outcome_ids.index("war")
    hit = next(c for c in comp.columns if c.name == "hit")
    assert hit.results.probabilities[war] > 0.05
    assert rec["max_risk"]["best"] in ("talk", "talk_too")
    assert rec["max_risk"]["separated"] is False
    best = max(comp.columns, key=lambda c: c.results.payoff_mean[comp.actor_index()])
    assert rec["best"] == best.name


def test_policies_mode_has_current_and_alternatives(duel):
    comp = compare_policies(duel, "us", 4096, seed=7)
    assert [c.name for c in comp.columns] == ["current", "hawk", "dove"]
    assert comp.columns[0].results.to_json() == comp.columns[2].results.to_json()
    data = comp.to_json()
    assert set(data) == {"actor", "mode", "columns", "differences", "recommendation"}
    assert set(data["differences"]) == {"hawk", "dove"}
    assert data["differences"]["dove"]["payoff"] == {"mean": 0.0, "ci95": [0.0, 0.0]}


def test_cli_compare_json_and_charts(tmp_path, capsys):
    path = tmp_path / "duel.yaml"
    path.write_text(scenario_text(DUEL))
    assert (
        main(
            [
                "compare",
                str(path),
                "--actor",
                "us",
                "--runs",
                "4096",
                "--json",
                "--out",
                str(tmp_path / "out"),
                "--max-risk",
                "war=0.05",
            ]
        )
        == 0
    )
    data = json.loads(capsys.readouterr().out)
    assert data["recommendation"]["max_risk"]["outcome"] == "war"
    assert len(list((tmp_path / "out").glob("*.png"))) == 2
    assert (
        main(["compare", str(path), "--actor", "us", "--policies", "--runs", "4096", "--no-charts"])
        == 0
    )
    out = capsys.readouterr().out
    assert "Recommendation:" in out and "Paired differences" in out


@pytest.mark.parametrize(
    "args,message",
    [
        (["--actor", "usa"], "did you mean 'us'"),
        (["--actor", "us", "--max-risk", "peace=0.1"], "unknown outcome 'peace'"),
        (["--actor", "us", "--max-risk", "war=2"], "not a probability"),
    ],
)
def test_cli_compare_usage_errors(tmp_path, capsys, args, message):
    path = tmp_path / "duel.yaml"
    path.write_text(scenario_text(DUEL))
    assert main(["compare", str(path), "--no-charts", *args]) == 2
    assert message in capsys.readouterr().err


def test_cli_compare_policies_needs_alternatives(tmp_path, capsys):
    path = tmp_path / "duel.yaml"
    text = scenario_text(DUEL)
    text = text[: text.index("alternatives:")] + text[text.rindex("outcomes:") :]
    path.write_text(text)
    assert main(["compare", str(path), "--actor", "us", "--policies", "--no-charts"]) == 2
    assert "no alternatives" in capsys.readouterr().err


def test_actor_with_no_first_move_is_a_usage_error(tmp_path, capsys):
    path = tmp_path / "duel.yaml"
    path.write_text(
        scenario_text(DUEL)
        .replace("- {id: talk, rung: calm", "- {id: talk, rung: calm, requires: false")
        .replace("- {id: talk_too, rung: calm", "- {id: talk_too, rung: calm, requires: false")
        .replace(
            "      rung: strike\n      payoffs: {us: 1}",
            "      rung: strike\n      requires: false\n      payoffs: {us: 1}",
        )
    )
    assert main(["compare", str(path), "--actor", "us", "--no-charts"]) == 2
    assert "no option available at its first move" in capsys.readouterr().err

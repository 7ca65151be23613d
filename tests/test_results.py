"""Aggregation: Wilson intervals, the JSON result contract of DESIGN.md section 6."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import binomtest

from sim.engine.runner import run_monte_carlo
from sim.results import wilson_interval

JSON_KEYS = {
    "scenario",
    "scenario_sha256",
    "version",
    "runs",
    "seed",
    "parameters",
    "outcomes",
    "steps",
    "peak_rung",
    "state",
    "payoffs",
    "moves",
}


@pytest.mark.parametrize("k,n", [(0, 10), (1, 10), (5, 10), (10, 10), (37, 1000), (9990, 10000)])
def test_wilson_matches_scipy(k, n):
    lo, hi = wilson_interval(k, n)
    ci = binomtest(k, n).proportion_ci(confidence_level=0.95, method="wilson")
    assert lo == pytest.approx(ci.low, abs=1e-12)
    assert hi == pytest.approx(ci.high, abs=1e-12)


def test_wilson_is_vectorised():
    lo, hi = wilson_interval(np.array([0, 5, 10]), 10)
    assert lo.shape == hi.shape == (3,)
    assert (lo <= hi).all()


def test_json_has_exactly_the_contract_fields(camp_taji):
    result = run_monte_carlo(camp_taji, 3000, 1).to_json()
    assert set(result) == JSON_KEYS
    assert result["scenario"] == "camp-taji-2020"
    assert len(result["scenario_sha256"]) == 64
    assert result["runs"] == 3000 and result["seed"] == 1
    assert set(result["outcomes"]) == set(camp_taji.outcome_ids)
    assert sum(o["p"] for o in result["outcomes"].values()) == pytest.approx(1.0)
    assert sum(o["count"] for o in result["outcomes"].values()) == 3000
    for o in result["outcomes"].values():
        assert o["ci95"][0] <= o["p"] <= o["ci95"][1]
    assert set(result["steps"]) == {"mean", "p05", "p50", "p95"}
    assert result["steps"]["p05"] <= result["steps"]["p50"] <= result["steps"]["p95"]
    assert sum(result["peak_rung"]["distribution"].values()) == pytest.approx(1.0)
    assert set(result["state"]) == set(camp_taji.state_names)
    for q in result["state"].values():
        assert q["p05"] <= q["p50"] <= q["p95"]
    assert isinstance(result["state"]["us_killed"]["p50"], int)
    for actor in camp_taji.actors:
        pay = result["payoffs"][actor]
        assert pay["ci95"][0] <= pay["mean"] <= pay["ci95"][1]
        assert sum(result["moves"][actor].values()) == pytest.approx(1.0)


def test_outcomes_that_never_happen_appear_with_zero(camp_taji):
    from tests.conftest import build

    model = build("""
horizon: 2
ladder: [low, high]
actors: {a: {label: A}}
turn_order: [a]
options: {a: [{id: wait}]}
policies: {a: {kind: fixed, option: wait}}
outcomes: {war: {when: rung >= 1}}
""")
    result = run_monte_carlo(model, 100, 1).to_json()
    assert result["outcomes"]["war"] == {
        "p": 0.0,
        "ci95": [0.0, pytest.approx(0.037, abs=1e-3)],
        "count": 0,
    }
    assert result["outcomes"]["ongoing"]["p"] == 1.0


OVERFLOWING = {
    "finite payoffs whose average overflows": ("-1e308 * (step == 2)", "too large to average"),
    "payoffs beyond 1e154 (their spread)": ("1e200", "too large to average"),
    "a payoff that is inf": ("exp(step * 1000)", "payoff evaluated to inf"),
}


@pytest.mark.filterwarnings("error::RuntimeWarning")
@pytest.mark.parametrize("command", ["run", "compare", "exact"])
@pytest.mark.parametrize("case", list(OVERFLOWING))
def test_payoffs_that_overflow_are_refused_without_a_numpy_warning(command, case, tmp_path, capsys):
    """Exit 2 and the message, and no RuntimeWarning: one here is an error, so the command ends
    with status 1. (pytest would catch a warning before it reached stderr, so a check of the
    captured stderr alone could not fail; in a real process the warning reaches stderr.)"""
    from sim.cli.main import main
    from tests.conftest import scenario_text

    payoff, message = OVERFLOWING[case]
    path = tmp_path / "s.yaml"
    path.write_text(
        scenario_text(
            "horizon: 3\nladder: [low, high]\nactors: {a: {label: A}}\nturn_order: [a]\n"
            f'options: {{a: [{{id: go, payoffs: {{a: "{payoff}"}}}}, {{id: stay}}]}}\n'
            "policies: {a: {kind: fixed, option: go}}\n"
        )
    )
    extra = {"run": ["--runs", "300", "--no-charts"], "exact": ["--json"]}
    extra["compare"] = ["--actor", "a", "--runs", "300", "--no-charts"]
    assert main([command, str(path), *extra[command]]) == 2
    err = capsys.readouterr().err
    assert message in err and "Warning" not in err, err

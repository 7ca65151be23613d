"""The lockstep engine agrees with the per-run reference loop (benchmarks/reference.py).

Three scenarios: the bundled Camp Taji scenario and two test scenarios under tests/scenarios/good/
that together exercise every policy kind and every step rule of DESIGN.md section 2. Outcome
probabilities and peak-rung shares must agree within 4 combined standard errors
sqrt(p(1-p)/n1 + p(1-p)/n2) (p pooled); mean payoffs and mean steps within 4 standard errors
sqrt(sd1^2/n1 + sd2^2/n2). Seeds are fixed, so the test is deterministic.
"""

from __future__ import annotations

import math
import sys
from functools import cache
from pathlib import Path

import numpy as np
import pytest

from sim.engine.runner import run_monte_carlo
from sim.model.loading import load_scenario
from sim.solvers.prepare import prepare_model

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "benchmarks"))

from reference import reference_run  # noqa: E402

Z_MAX = 4.0
ENGINE_RUNS = 100_000
SCENARIOS = {
    "camp_taji": (ROOT / "scenarios" / "camp_taji_2020.yaml", 4_000),
    "policy_kinds": (ROOT / "tests" / "scenarios" / "good" / "policy_kinds.yaml", 6_000),
    "logit_branches": (ROOT / "tests" / "scenarios" / "good" / "logit_branches.yaml", 6_000),
}


@cache
def simulated(name: str):
    path, ref_runs = SCENARIOS[name]
    model = prepare_model(load_scenario(path))
    engine = run_monte_carlo(model, ENGINE_RUNS, seed=20240601, workers=1)
    ref = reference_run(model, ref_runs, seed=777)
    return model, engine, ref


def proportion_z(count1: float, n1: int, count2: float, n2: int) -> float:
    p = (count1 + count2) / (n1 + n2)
    se = math.sqrt(p * (1 - p) * (1 / n1 + 1 / n2))
    diff = count1 / n1 - count2 / n2
    if se == 0:
        return 0.0 if diff == 0 else math.inf
    return abs(diff) / se


def mean_z(m1: float, sd1: float, n1: int, m2: float, sd2: float, n2: int) -> float:
    se = math.sqrt(sd1**2 / n1 + sd2**2 / n2)
    if se == 0:
        return 0.0 if abs(m1 - m2) < 1e-9 else math.inf
    return abs(m1 - m2) / se


def hist_mean_sd(hist: np.ndarray) -> tuple[float, float]:
    values = np.arange(len(hist), dtype=float)
    n = hist.sum()
    mean = float((values * hist).sum() / n)
    var = float((hist * (values - mean) ** 2).sum() / (n - 1))
    return mean, math.sqrt(var)


@pytest.mark.parametrize("name", list(SCENARIOS))
def test_outcome_probabilities_agree(name):
    model, engine, ref = simulated(name)
    bad = []
    for i, oid in enumerate(model.outcome_ids):
        z = proportion_z(
            engine.outcome_counts[i], engine.runs, ref["outcome_counts"][oid], ref["runs"]
        )
        if z > Z_MAX:
            bad.append(
                f"{oid}: engine {engine.probabilities[i]:.4f} vs reference "
                f"{ref['outcomes'][oid]:.4f} ({z:.1f} SE)"
            )
    assert not bad, "; ".join(bad)


@pytest.mark.parametrize("name", list(SCENARIOS))
def test_mean_payoffs_agree(name):
    model, engine, ref = simulated(name)
    bad = []
    for a, actor in enumerate(model.actors):
        z = mean_z(
            engine.payoff_mean[a],
            engine.payoff_sd[a],
            engine.runs,
            ref["payoffs"][actor],
            ref["payoff_sd"][actor],
            ref["runs"],
        )
        if z > Z_MAX:
            bad.append(
                f"{actor}: engine {engine.payoff_mean[a]:.3f} vs reference "
                f"{ref['payoffs'][actor]:.3f} ({z:.1f} SE)"
            )
    assert not bad, "; ".join(bad)


@pytest.mark.parametrize("name", list(SCENARIOS))
def test_steps_and_peak_rung_agree(name):
    model, engine, ref = simulated(name)
    mean, sd = hist_mean_sd(engine.steps_hist)
    z = mean_z(mean, sd, engine.runs, ref["steps_mean"], ref["steps_sd"], ref["runs"])
    assert z <= Z_MAX, f"mean steps: engine {mean:.3f} vs reference {ref['steps_mean']:.3f}"
    for rung in range(model.n_rungs):
        count = ref["peak_rung"][rung] * ref["runs"]
        z = proportion_z(engine.peak_hist[rung], engine.runs, count, ref["runs"])
        assert z <= Z_MAX, f"peak rung {rung}: {z:.1f} SE apart"


def _moves(results, model) -> dict[str, dict[str, int]]:
    out = {}
    for a, actor in enumerate(model.actors):
        names = ["pass"] + [o.id for o in model.options[a]]
        out[actor] = {name: int(results.moves[a][k]) for k, name in enumerate(names)}
    return out


def test_policy_kinds_scenario_exercises_its_features():
    """Fallbacks, passes and the table's 'pass' row really happen, in both simulators."""
    model, engine, ref = simulated("policy_kinds")
    kinds = {model.actors[i]: p.kind for i, p in enumerate(model.policies)}
    assert kinds == {"a": "fixed", "b": "sequence", "c": "table"}
    for moves in (_moves(engine, model), ref["moves"]):
        # a's doctrine is 'strike'; without ammunition it falls back to probe or hold, or passes.
        assert moves["a"]["probe"] > 0 and moves["a"]["hold"] > 0 and moves["a"]["pass"] > 0
        # b's sequence starts with 'warn', unavailable unless a struck: fallback to 'talk'.
        assert moves["b"]["talk"] > moves["b"]["warn"] > 0
        # c passes when a passed and its 'pass' row's only option (retreat) is unavailable.
        assert moves["c"]["pass"] > 0 and moves["c"]["wait"] > 0
    names = dict(zip(model.outcome_ids, engine.probabilities))
    assert names["blowup"] > 0.05 and names["settled"] > 0.05


def test_logit_branches_scenario_exercises_its_features():
    model, engine, ref = simulated("logit_branches")
    assert {p.kind for p in model.policies} == {"logit"}
    assert model.discount < 1
    for moves in (_moves(engine, model), ref["moves"]):
        for a, actor in enumerate(model.actors):
            assert all(moves[actor][o.id] > 0 for o in model.options[a]), actor
    # Every outcome, the horizon's included, happens often enough to be compared.
    assert (engine.probabilities > 0.05).all()
    # Peak rungs 2 (clash) and 3 (war) both occur.
    assert engine.peak_hist[2] > 0 and engine.peak_hist[3] > 0


def test_reference_is_reproducible():
    model, _, _ = simulated("logit_branches")
    assert reference_run(model, 50, seed=3) == reference_run(model, 50, seed=3)

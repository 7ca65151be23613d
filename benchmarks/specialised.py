"""A hand-written numpy simulation of scenarios/tit_for_tat.yaml alone, the engine's yardstick.

This is what a skilled engineer would write for that one scenario: every run advanced in
lockstep with numpy, the scenario's structure hard-coded (no expressions, no generic policy or
branch machinery): each week's draws become one event code per run, payoffs and transitions are
table look-ups by code, and finished runs are compacted away. Parameter values are read from the
YAML file (with optional overrides) so that the two simulations always play the same game.

`check_against_engine()` compares its outcome distribution and mean payoffs with
`sim.engine.runner.run_monte_carlo` on the same scenario (each within 4 standard errors).

Usage: `python benchmarks/specialised.py [--runs N] [--check]`.
"""

from __future__ import annotations

import argparse
import math
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

SCENARIO = Path(__file__).resolve().parent.parent / "scenarios" / "tit_for_tat.yaml"
OUTCOMES = ("out_of_control", "deterrence", "tit_for_tat")
ACTORS = ("militia", "us")

# Rungs of the ladder [calm, tit-for-tat, open conflict].
CALM, TIT_FOR_TAT, OPEN_CONFLICT = 0, 1, 2
RESOLVE_MAX = 3
N_EVENTS = 10
SPIRAL = 2  # the US answer code of a strike that spirals out of control
OUT_OF_CONTROL_PAYOFF = (-20.0, -30.0)  # (militia, us)
DETERRENCE_PAYOFF = (-5.0, 10.0)


def scenario_parameters(overrides: Mapping[str, float] | None = None) -> dict[str, float]:
    """The scenario's parameter values (and its horizon), with optional overrides."""
    from sim.model.compiler import resolve_parameters
    from sim.model.loading import load_scenario

    scenario = load_scenario(SCENARIO)
    params = resolve_parameters(scenario, overrides)
    params["horizon"] = scenario.horizon
    return params


def _event_tables(params: Mapping[str, float]) -> dict[str, np.ndarray]:
    """Payoffs and state transitions of every event a week can hold, indexed by event code.

    Code 0: the militia holds; 1: it holds and that makes `quiet_needed` quiet weeks (deterrence).
    Codes 2-9: it fires, `2 + 4 * lethal + us`, with `us` 0 absorb, 1 strike that hits weapons and
    fighters, 2 strike that spirals (out of control), 3 strike on evacuated sites.
    """
    strike_cost, casualty_cost = params["strike_cost"], params["casualty_cost"]
    militia = np.zeros(N_EVENTS)
    us = np.zeros(N_EVENTS)
    militia[1], us[1] = DETERRENCE_PAYOFF
    resolve_next = np.zeros((N_EVENTS, RESOLVE_MAX + 1), dtype=np.int64)
    resolve_next[:2] = np.arange(RESOLVE_MAX + 1)  # holding leaves resolve unchanged
    for lethal in (0, 1):
        for answer in range(4):
            code = 2 + 4 * lethal + answer
            militia[code] = 1.0 - (2.0 if answer == 1 else 0.0) - (0.2 if answer == 3 else 0.0)
            us[code] = -1.0 - casualty_cost * lethal - (strike_cost if answer else 0.0)
            if answer == SPIRAL:
                militia[code] += OUT_OF_CONTROL_PAYOFF[0]
                us[code] += OUT_OF_CONTROL_PAYOFF[1]  # the run ends before every_step
            else:
                us[code] -= 0.2 * TIT_FOR_TAT  # every_step: the running cost of the rung
            # Absorbing an attack resets resolve; a strike adds one (at most RESOLVE_MAX).
            resolve_next[code] = (
                0 if answer == 0 else np.minimum(np.arange(RESOLVE_MAX + 1) + 1, RESOLVE_MAX)
            )
    ends = np.zeros(N_EVENTS, dtype=bool)
    ends[[1, 2 + SPIRAL, 6 + SPIRAL]] = True
    return {"militia": militia, "us": us, "resolve_next": resolve_next, "ends": ends}


def simulate(runs: int, seed: int, params: Mapping[str, float]) -> dict[str, Any]:
    """Simulate `runs` runs of tit_for_tat; outcome counts, mean payoffs, moves and steps.

    Each week every live run draws four uniforms (the militia's choice, lethality, the US choice,
    the strike's branch), which combine into one event code; payoffs and the next `resolve` are
    looked up by code. Finished runs are compacted away.
    """
    rng = np.random.default_rng(seed)
    horizon = int(params["horizon"])
    quiet_needed = params["quiet_needed"]
    lam = params["militia_rationality"]
    utility = params["militia_gain"] - params["deterrence_per_strike"] * np.arange(RESOLVE_MAX + 1)
    # P(fire | resolve): the militia's two-option logit (hold has utility 0).
    p_fire = 1.0 / (1.0 + np.exp(-lam * utility))
    lethality, retaliation = params["lethality"], params["retaliation"]
    hit, spiral = params["hit_chance"], params["spiral_risk"]
    tables = _event_tables(params)
    pay_militia, pay_us = tables["militia"], tables["us"]
    resolve_next, ends = tables["resolve_next"], tables["ends"]

    resolve = np.zeros(runs, dtype=np.int64)
    quiet = np.zeros(runs, dtype=np.int64)
    pay = np.zeros((2, runs))  # (militia, us) payoffs of the live runs
    counts = np.zeros(len(OUTCOMES), dtype=np.int64)
    pay_total = np.zeros(2)
    pay_squares = np.zeros(2)
    steps_total = 0
    moves = 0
    for step in range(1, horizon + 1):
        n = resolve.size
        moves += 2 * n  # both actors move in every live run (a run can only end after the US)
        u = rng.random((4, n))
        fire = u[0] < p_fire[resolve]
        # US answer: 0 absorb, else the strike branch 1 sites_hit, 2 spiral, 3 empty_sites.
        answer = (u[2] < retaliation) * (1 + (u[3] >= hit) + (u[3] >= hit + spiral))
        code = np.where(fire, 2 + 4 * (u[1] < lethality) + answer, quiet + 1 >= quiet_needed)
        pay[0] += pay_militia[code]
        pay[1] += pay_us[code]
        resolve = resolve_next[code, resolve]
        quiet = np.where(fire, 0, quiet + 1)
        done = ends[code]
        if step == horizon:
            done[:] = True
        if done.any():
            events = np.bincount(code[done], minlength=N_EVENTS)
            lost = int(events[2 + SPIRAL] + events[6 + SPIRAL])
            deterred = int(events[1])
            counts[0] += lost
            counts[1] += deterred
            if step == horizon:
                counts[2] += int(events.sum()) - lost - deterred
            ended = pay[:, done]
            pay_total += ended.sum(axis=1)
            pay_squares += (ended * ended).sum(axis=1)
            steps_total += step * ended.shape[1]
            keep = ~done
            resolve, quiet, pay = resolve[keep], quiet[keep], pay[:, keep]
        if not resolve.size:
            break
    return {
        "runs": runs,
        "outcome_counts": dict(zip(OUTCOMES, counts.tolist())),
        "outcomes": {o: c / runs for o, c in zip(OUTCOMES, counts.tolist())},
        "payoffs": {a: float(pay_total[i] / runs) for i, a in enumerate(ACTORS)},
        "payoff_sd": {a: _sd(pay_total[i], pay_squares[i], runs) for i, a in enumerate(ACTORS)},
        "steps_mean": steps_total / runs,
        "run_moves": moves,
    }


def _sd(total: float, squares: float, n: int) -> float:
    if n < 2:
        return 0.0
    return math.sqrt(max(0.0, (squares - total * total / n) / (n - 1)))


def check_against_engine(
    runs: int = 20_000,
    engine_runs: int = 100_000,
    seed: int = 1,
    overrides: Mapping[str, float] | None = None,
    z_max: float = 4.0,
) -> list[str]:
    """Compare with the engine; returns a list of disagreements (empty when they agree).

    Each outcome probability must agree within `z_max` combined standard errors
    sqrt(p(1-p)/n1 + p(1-p)/n2) with p pooled; each mean payoff within `z_max` standard errors
    (the engine's payoff SD stands for both sides).
    """
    from sim.engine.runner import run_monte_carlo
    from sim.model.loading import load_scenario
    from sim.solvers.prepare import prepare_model

    params = scenario_parameters(overrides)
    mine = simulate(runs, seed + 1000, params)
    model = prepare_model(load_scenario(SCENARIO), overrides)
    res = run_monte_carlo(model, engine_runs, seed, workers=1)
    problems = []
    n1, n2 = res.runs, runs
    for i, oid in enumerate(model.outcome_ids):
        p1 = float(res.probabilities[i])
        p2 = mine["outcomes"][oid]
        pooled = (res.outcome_counts[i] + mine["outcome_counts"][oid]) / (n1 + n2)
        se = math.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n2))
        if abs(p1 - p2) > z_max * se + 1e-12:
            problems.append(
                f"outcome {oid}: engine {p1:.4f}, specialised {p2:.4f}, "
                f"{abs(p1 - p2) / se:.1f} SE apart"
            )
    for a, actor in enumerate(model.actors):
        se = math.sqrt(float(res.payoff_sd[a]) ** 2 / n1 + mine["payoff_sd"][actor] ** 2 / n2)
        m1, m2 = float(res.payoff_mean[a]), mine["payoffs"][actor]
        if abs(m1 - m2) > z_max * se + 1e-9:
            problems.append(
                f"payoff {actor}: engine {m1:.3f}, specialised {m2:.3f}, "
                f"{abs(m1 - m2) / se:.1f} SE apart"
            )
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=200_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--check", action="store_true", help="compare with the engine")
    args = parser.parse_args(argv)
    params = scenario_parameters()
    start = time.perf_counter()
    result = simulate(args.runs, args.seed, params)
    elapsed = time.perf_counter() - start
    for oid, p in result["outcomes"].items():
        print(f"{oid:16s} {p:.4f}")
    print(f"payoffs {result['payoffs']}; mean steps {result['steps_mean']:.3f}")
    print(f"{args.runs:,} runs in {elapsed:.3f} s = {args.runs / elapsed:,.0f} runs/s")
    if args.check:
        problems = check_against_engine()
        print("agrees with the engine" if not problems else "\n".join(problems))
        return 1 if problems else 0
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""A hand-written numpy simulation of scenarios/tit_for_tat.yaml alone, the engine's yardstick.

This is what a skilled engineer would write for that one scenario: every run advanced in
lockstep with numpy, the scenario's structure hard-coded (no expressions, no generic policy or
branch machinery), finished runs compacted away each week. Parameter values are read from the
YAML file (with optional overrides) so that the two simulations always play the same game.

`check_against_engine()` compares its outcome distribution and mean payoffs with
`sim.runner.run_monte_carlo` on the same scenario (each within 4 standard errors).

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
OUT_OF_CONTROL_PAYOFF = (-20.0, -30.0)  # (militia, us)
DETERRENCE_PAYOFF = (-5.0, 10.0)


def scenario_parameters(overrides: Mapping[str, float] | None = None) -> dict[str, float]:
    """The scenario's parameter values (and its horizon), with optional overrides."""
    from sim.loader import load_scenario
    from sim.model import resolve_parameters

    scenario = load_scenario(SCENARIO)
    params = resolve_parameters(scenario, overrides)
    params["horizon"] = scenario.horizon
    return params


def simulate(runs: int, seed: int, params: Mapping[str, float]) -> dict[str, Any]:
    """Simulate `runs` runs of tit_for_tat; outcome counts, mean payoffs, moves and steps."""
    rng = np.random.default_rng(seed)
    horizon = int(params["horizon"])
    quiet_needed = params["quiet_needed"]
    lam = params["militia_rationality"]
    gain = params["militia_gain"]
    deter = params["deterrence_per_strike"]
    retaliation = params["retaliation"]
    lethality = params["lethality"]
    hit = params["hit_chance"]
    spiral = params["spiral_risk"]
    strike_cost = params["strike_cost"]
    casualty_cost = params["casualty_cost"]
    # P(fire | resolve) of the militia's two-option logit, for each integer resolve 0..3.
    p_fire_of = 1.0 / (1.0 + np.exp(-lam * (gain - deter * np.arange(RESOLVE_MAX + 1))))

    resolve = np.zeros(runs, dtype=np.int64)
    quiet = np.zeros(runs, dtype=np.int64)
    rung = np.full(runs, TIT_FOR_TAT, dtype=np.int64)
    pay_m = np.zeros(runs)
    pay_u = np.zeros(runs)
    alive = np.arange(runs)  # run index of each live run

    counts = np.zeros(len(OUTCOMES), dtype=np.int64)
    pay_total = np.zeros(2)
    pay_squares = np.zeros(2)
    steps_total = 0
    moves = 0

    for step in range(1, horizon + 1):
        n = alive.size
        moves += 2 * n  # both actors move in every live run (a run can only end after the US)
        u = rng.random((4, n))
        # Militia: fire with the logit probability, else hold (rung calm).
        fire = u[0] < p_fire_of[resolve]
        lethal = fire & (u[1] < lethality)
        pay_m += fire
        pay_u -= fire + casualty_cost * lethal
        # The United States answers an attack with probability `retaliation`, else absorbs.
        strike = fire & (u[2] < retaliation)
        # Strike branches: sites_hit [0, hit), spiral [hit, hit + spiral), empty_sites the rest.
        sites_hit = strike & (u[3] < hit)
        spiralled = strike & (u[3] >= hit) & (u[3] < hit + spiral)
        empty = strike & (u[3] >= hit + spiral)
        pay_u -= strike_cost * strike
        pay_m -= 2.0 * sites_hit + 0.2 * empty
        rung = np.where(fire, np.where(spiralled, OPEN_CONFLICT, TIT_FOR_TAT), CALM)
        resolve = np.where(strike, np.minimum(resolve + 1, RESOLVE_MAX),
                           np.where(fire, 0, resolve))
        # Terminal check after the US move: only a spiral can end the run here.
        lost = spiralled
        # Every week (runs still live): running cost of the rung, quiet weeks, terminal check.
        pay_u -= 0.2 * np.where(lost, 0, rung)
        quiet = np.where(fire, 0, quiet + 1)
        deterred = ~lost & (quiet >= quiet_needed)
        pay_m += np.where(lost, OUT_OF_CONTROL_PAYOFF[0], 0.0)
        pay_u += np.where(lost, OUT_OF_CONTROL_PAYOFF[1], 0.0)
        pay_m += np.where(deterred, DETERRENCE_PAYOFF[0], 0.0)
        pay_u += np.where(deterred, DETERRENCE_PAYOFF[1], 0.0)
        done = lost | deterred
        if step == horizon:
            done[:] = True
        if done.any():
            counts[0] += int(lost.sum())
            counts[1] += int(deterred.sum())
            if step == horizon:
                counts[2] += int((~lost & ~deterred).sum())
            ended = np.stack([pay_m[done], pay_u[done]])
            pay_total += ended.sum(axis=1)
            pay_squares += (ended * ended).sum(axis=1)
            steps_total += step * int(done.sum())
            keep = ~done
            alive, resolve, quiet, pay_m, pay_u = (
                alive[keep], resolve[keep], quiet[keep], pay_m[keep], pay_u[keep])
            rung = rung[keep]
        if not alive.size:
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


def check_against_engine(runs: int = 20_000, engine_runs: int = 100_000, seed: int = 1,
                         overrides: Mapping[str, float] | None = None,
                         z_max: float = 4.0) -> list[str]:
    """Compare with the engine; returns a list of disagreements (empty when they agree).

    Each outcome probability must agree within `z_max` combined standard errors
    sqrt(p(1-p)/n1 + p(1-p)/n2) with p pooled; each mean payoff within `z_max` standard errors
    (the engine's payoff SD stands for both sides).
    """
    from sim.loader import load_scenario
    from sim.model import compile_model
    from sim.runner import run_monte_carlo

    params = scenario_parameters(overrides)
    mine = simulate(runs, seed + 1000, params)
    model = compile_model(load_scenario(SCENARIO), overrides)
    res = run_monte_carlo(model, engine_runs, seed, workers=1)
    problems = []
    n1, n2 = res.runs, runs
    for i, oid in enumerate(model.outcome_ids):
        p1 = float(res.probabilities[i])
        p2 = mine["outcomes"][oid]
        pooled = (res.outcome_counts[i] + mine["outcome_counts"][oid]) / (n1 + n2)
        se = math.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n2))
        if abs(p1 - p2) > z_max * se + 1e-12:
            problems.append(f"outcome {oid}: engine {p1:.4f}, specialised {p2:.4f}, "
                            f"{abs(p1 - p2) / se:.1f} SE apart")
    for a, actor in enumerate(model.actors):
        se = math.sqrt(float(res.payoff_sd[a]) ** 2 / n1 + mine["payoff_sd"][actor] ** 2 / n2)
        m1, m2 = float(res.payoff_mean[a]), mine["payoffs"][actor]
        if abs(m1 - m2) > z_max * se + 1e-9:
            problems.append(f"payoff {actor}: engine {m1:.3f}, specialised {m2:.3f}, "
                            f"{abs(m1 - m2) / se:.1f} SE apart")
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

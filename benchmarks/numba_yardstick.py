"""A hand-written numba loop for scenarios/tit_for_tat.yaml alone: the limit yardstick.

What the machine can do for this one scenario with a program that plays one run at a time: the
scenario's structure hard-coded (no expressions, tables or generic machinery), every number in a
register, its own counter-based random numbers (SplitMix64, one stream per run). The compiled
backend (`--backend compiled`) is measured against it in benchmarks/engine.py; the issue's target
is at least 0.7x its speed on one core, and ahead of it with two workers.

`check_against_engine()` compares its outcome distribution and mean payoffs with the engine's on
the same scenario (each within 4 standard errors: its random numbers are not the engine's).

Usage: `python benchmarks/numba_yardstick.py [--runs N] [--check]` (needs numba).
"""

from __future__ import annotations

import argparse
import math
import time

import numpy as np
from numba import njit
from specialised import OUTCOMES, scenario_parameters

OUT_OF_CONTROL, DETERRENCE, TIT_FOR_TAT = 0, 1, 2
CALM, TFT_RUNG, OPEN_CONFLICT = 0, 1, 2
NOT_YET, FIRE, HOLD = -2, 0, 1


@njit(cache=True)
def _next(state):
    """SplitMix64: the next uniform in [0, 1) of a run's stream (state: a one-element array)."""
    state[0] += np.uint64(0x9E3779B97F4A7C15)
    z = state[0]
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    z = z ^ (z >> np.uint64(31))
    return np.float64(z >> np.uint64(11)) * 2.0**-53


@njit(cache=True)
def simulate_runs(runs, seed, p):
    """Outcome counts and payoff sums (militia, us) of `runs` runs; `p` the parameter array."""
    gain, per_strike, lam, retaliation, lethality = p[0], p[1], p[2], p[3], p[4]
    hit, spiral, strike_cost, casualty_cost, quiet_needed, horizon = (
        p[5],
        p[6],
        p[7],
        p[8],
        p[9],
        int(p[10]),
    )
    counts = np.zeros(3, dtype=np.int64)
    pay = np.zeros(2)
    state = np.zeros(1, dtype=np.uint64)
    for r in range(runs):
        state[0] = np.uint64(seed) * np.uint64(0xD1B54A32D192ED03) + np.uint64(r)
        resolve, quiet, rung, last = 0, 0, TFT_RUNG, NOT_YET
        militia, us = 0.0, 0.0
        outcome = TIT_FOR_TAT
        for _step in range(horizon):
            # the militia: logit over fire (utility gain - per_strike * resolve) and hold (0)
            z = lam * (gain - per_strike * resolve)
            top = max(z, 0.0)
            w_fire, w_hold = math.exp(z - top), math.exp(-top)
            if _next(state) * (w_fire + w_hold) < w_fire:
                last, rung = FIRE, TFT_RUNG
                militia += 1.0
                us -= 1.0
                if _next(state) < lethality:
                    us -= casualty_cost
            else:
                last, rung = HOLD, CALM
            if quiet >= quiet_needed:
                outcome = DETERRENCE
                break
            # the United States: strike back with chance `retaliation` after an attack
            if last == FIRE and _next(state) < retaliation:
                rung = TFT_RUNG
                us -= strike_cost
                resolve = min(resolve + 1, 3)
                u = _next(state)
                if u < hit:
                    militia -= 2.0
                elif u < hit + spiral:
                    rung = OPEN_CONFLICT
                else:
                    militia -= 0.2
            elif last == FIRE:
                resolve = 0
            if rung >= OPEN_CONFLICT:
                outcome = OUT_OF_CONTROL
                break
            # every step
            quiet = quiet + 1 if last == HOLD else 0
            us -= 0.2 * rung
            if quiet >= quiet_needed:
                outcome = DETERRENCE
                break
        if outcome == OUT_OF_CONTROL:
            us -= 30.0
            militia -= 20.0
        elif outcome == DETERRENCE:
            us += 10.0
            militia -= 5.0
        counts[outcome] += 1
        pay[0] += militia
        pay[1] += us
    return counts, pay


def parameter_array(params: dict[str, float]) -> np.ndarray:
    names = (
        "militia_gain",
        "deterrence_per_strike",
        "militia_rationality",
        "retaliation",
        "lethality",
        "hit_chance",
        "spiral_risk",
        "strike_cost",
        "casualty_cost",
        "quiet_needed",
        "horizon",
    )
    return np.array([float(params[n]) for n in names])


def simulate(runs: int, seed: int, params: dict[str, float] | None = None):
    """Outcome shares (in OUTCOMES order) and mean payoffs (militia, us) of `runs` runs."""
    counts, pay = simulate_runs(runs, seed, parameter_array(params or scenario_parameters()))
    return counts / runs, pay / runs


def check_against_engine(runs: int = 40_000, seed: int = 3) -> None:
    """Raise AssertionError unless the yardstick plays the engine's game (4 standard errors)."""
    from specialised import SCENARIO

    from sim.engine.runner import run_monte_carlo
    from sim.model.loading import load_scenario
    from sim.solvers.prepare import prepare_model

    model = prepare_model(load_scenario(SCENARIO))
    results = run_monte_carlo(model, runs, seed)
    shares, payoffs = simulate(runs, seed)
    for i, name in enumerate(OUTCOMES):
        p = results.probabilities[model.outcome_ids.index(name)]
        se = math.sqrt(max(p * (1 - p), 1e-9) * 2 / runs)
        assert abs(shares[i] - p) <= 4 * se, (name, shares[i], p)
    for i, actor in enumerate(("militia", "us")):
        a = model.actors.index(actor)
        se = results.payoff_sd[a] * math.sqrt(2 / runs)
        assert abs(payoffs[i] - results.payoff_mean[a]) <= 4 * se + 1e-9, (actor,)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=1_000_000)
    parser.add_argument("--check", action="store_true", help="compare with the engine")
    args = parser.parse_args()
    simulate(1000, 0)  # compile (or load the cache)
    start = time.perf_counter()
    shares, payoffs = simulate(args.runs, 1)
    seconds = time.perf_counter() - start
    print(f"{args.runs:,} runs in {seconds:.3f} s: {args.runs / seconds:,.0f} runs/s")
    print(dict(zip(OUTCOMES, shares.round(4), strict=True)), payoffs.round(3))
    if args.check:
        check_against_engine()
        print("agrees with the engine within 4 standard errors")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

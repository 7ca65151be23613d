"""How fast `escalation fit` is (issue 15's targets).

1. Two free parameters on 1,000 simulated episodes of a finite 12-step scenario (the two-actor
   raid-and-strike game of tests/analysis/test_fit.py with horizon 12), exact likelihood:
   target under 30 s on one core. The estimates are printed beside the truth.
2. The simulated likelihood of camp_taji_2020's bundled log (data/logs/camp_taji_2020.csv): one
   exact pass, and the particle filter at several sizes with its Monte Carlo spread over five
   seeds; with --full, the whole two-parameter fit the docs show.

    python benchmarks/fit.py [--full]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sim.analysis.episodes import simulate_observations, to_log_text  # noqa: E402
from sim.analysis.fit import fit  # noqa: E402
from sim.errors import ScenarioError  # noqa: E402
from sim.format.episode_log import parse_episode_log, read_episode_log  # noqa: E402
from sim.format.library import resolve_scenario_path  # noqa: E402
from sim.model.loading import load_scenario, load_text  # noqa: E402
from sim.solvers.likelihood import likelihood, observations  # noqa: E402
from sim.solvers.prepare import prepare_model  # noqa: E402
from tests.analysis.test_fit import DUEL  # noqa: E402

TARGET_SECONDS = 30.0
TRUTH = {"retaliation": 0.35, "hit_chance": 0.2}


def finite_fit() -> None:
    scenario = load_text(DUEL.replace("horizon: 6", "horizon: 12"), "duel12.yaml")
    model = prepare_model(scenario, TRUTH)
    obs = simulate_observations(model, 1000, seed=3).observations
    log = parse_episode_log(to_log_text(model, obs), scenario, "simulated.csv")
    start = time.perf_counter()
    result = fit(scenario, log, list(TRUTH))
    seconds = time.perf_counter() - start
    print("1. fit of 2 free parameters, 1,000 episodes, finite 12-step scenario (exact)")
    for name, value in TRUTH.items():
        est = result.estimates[name]
        print(
            f"   {name:12s} truth {value:.3f}  estimate {est.value:.4f}  "
            f"95% [{est.ci95[0]:.4f}, {est.ci95[1]:.4f}]  ({est.interval})"
        )
    per = seconds / result.evaluations
    verdict = "met" if seconds < TARGET_SECONDS else "MISSED"
    print(
        f"   {seconds:.1f} s, {result.evaluations} likelihood evaluations ({per * 1000:.0f} ms "
        f"each); target < {TARGET_SECONDS:.0f} s: {verdict}"
    )


EXACT_STATE_LIMIT = 4_000_000
"""Beyond this the exact pass is refused (camp_taji's learnt beliefs and Iran's blows exceed it)."""


def camp_taji(full: bool) -> None:
    scenario = load_scenario(resolve_scenario_path("camp_taji_2020"))
    log = read_episode_log(ROOT / "data" / "logs" / "camp_taji_2020.csv", scenario)
    model = prepare_model(scenario)
    obs = observations(model, log)
    print("2. camp_taji_2020, its bundled log (1 episode, 26 weeks, 7 blank moves)")
    start = time.perf_counter()
    try:
        exact = likelihood(model, obs, max_states=EXACT_STATE_LIMIT)
    except ScenarioError as error:
        exact = None
        print(
            f"   exact pass: not run within {EXACT_STATE_LIMIT:,} states "
            f"({error.problems[0].message})"
        )
    else:
        print(
            f"   exact pass: loglik {exact.loglik:.4f}, {exact.states:,} states, "
            f"{time.perf_counter() - start:.1f} s "
            f"(truncated poisson mass {exact.dropped.max():.1e})"
        )
    for particles in (500, 2_000, 5_000, 20_000):
        values, start = [], time.perf_counter()
        for seed in range(1, 6):
            values.append(likelihood(model, obs, particles=particles, seed=seed).loglik)
        t = (time.perf_counter() - start) / 5
        print(
            f"   particle filter, {particles:>6,} particles: loglik {np.mean(values):.4f} "
            f"(sd over 5 seeds {np.std(values, ddof=1):.4f}"
            + (f"; exact - mean {exact.loglik - np.mean(values):+.4f}" if exact else "")
            + f"), {t:.2f} s an evaluation"
        )
    if full:
        start = time.perf_counter()
        result = fit(scenario, log, ["us_rationality", "force_protection"])
        print(
            f"   fit of us_rationality and force_protection (particle filter, 5,000): "
            f"{time.perf_counter() - start:.0f} s, {result.evaluations} evaluations, loglik "
            f"{result.loglik:.4f} (MC se {result.mc_se:.2g})"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--full", action="store_true", help="also fit camp_taji_2020 (minutes)")
    parser.add_argument("--quick", action="store_true", help="only the finite fit (smoke test)")
    args = parser.parse_args()
    finite_fit()
    if not args.quick:
        camp_taji(args.full)


if __name__ == "__main__":
    main()

"""How large a hidden-information game the strategic solver handles (issue 14's target).

The game is `scenarios/attribution_2020.yaml` played for more rounds, with two counters added: the
attacks so far (seen by everyone) and the orders so far (seen by Iran and the militia only), so
that every round multiplies the histories the United States cannot tell apart. For each horizon
it prints the reachable states, the information sets of the strategic actors, the largest one
(in states) and the solve time (agent logit QRE over information sets, continuation in the
rationality); the target is 1,000 information sets in under 5 seconds.

    python benchmarks/information_sets.py [--horizons 2 3 4 5 6] [--budget 60]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from sim.model.compiler import compile_model
from sim.model.loading import load_text
from sim.solvers.game_graph import build_graph
from sim.solvers.information import information_layers
from sim.solvers.strategic import solve

ROOT = Path(__file__).resolve().parent.parent
SCENARIO = ROOT / "sim" / "scenarios" / "attribution_2020.yaml"
TARGET_SETS, TARGET_SECONDS = 1_000, 5.0


def scenario_text(horizon: int) -> str:
    """attribution_2020 over `horizon` rounds, with the two history counters."""
    text = SCENARIO.read_text().replace("horizon: 2\n", f"horizon: {horizon}\n")
    counters = (
        "  attacks: {initial: 0, min: 0, max: 20, integer: true, doc: attacks so far}\n"
        "  orders: {initial: 0, min: 0, max: 20, integer: true, visible_to: [iran, kh],\n"
        "           doc: orders so far}\n"
    )
    text = text.replace("\nactors:\n", counters + "\nactors:\n", 1)
    text = text.replace(
        "      effects: {set: {ordered: 1}}", "      effects: {set: {ordered: 1}, add: {orders: 1}}"
    )
    return text.replace(
        "      effects: {set: {attacked: 1}}",
        "      effects: {set: {attacked: 1}, add: {attacks: 1}}",
    )


def measure(horizon: int) -> dict:
    model = compile_model(load_text(scenario_text(horizon), f"attribution_h{horizon}.yaml"))
    started = time.perf_counter()
    graph = build_graph(model)
    sets = information_layers(model, graph)
    solution = solve(model, graph)
    seconds = time.perf_counter() - started
    count = sum(s.count for s in sets.values())
    largest = max(int(np.bincount(s.of_node).max()) for s in sets.values())
    eq = solution.equilibrium
    return {
        "horizon": horizon,
        "states": graph.state_count,
        "information_sets": count,
        "largest_set": largest,
        "seconds": seconds,
        "levels": eq.levels if eq else 0,
        "iterations": eq.iterations if eq else 0,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--horizons", type=int, nargs="+", default=[2, 3, 4, 5, 6, 7])
    parser.add_argument("--budget", type=float, default=60.0, help="stop after a solve this slow")
    args = parser.parse_args()
    print("horizon  states  information sets  largest set  seconds  levels  iterations")
    rows = []
    for horizon in args.horizons:
        row = measure(horizon)
        rows.append(row)
        print(
            f"{row['horizon']:>7}  {row['states']:>6,}  {row['information_sets']:>16,}  "
            f"{row['largest_set']:>11,}  {row['seconds']:>7.2f}  {row['levels']:>6}  "
            f"{row['iterations']:>10,}"
        )
        if row["seconds"] > args.budget:
            break
    big = [r for r in rows if r["information_sets"] >= TARGET_SETS]
    if big:
        r = big[0]
        ok = "met" if r["seconds"] < TARGET_SECONDS else "NOT met"
        print(
            f"Target ({TARGET_SETS:,} information sets in under {TARGET_SECONDS:g} s): {ok}: "
            f"{r['information_sets']:,} sets in {r['seconds']:.2f} s"
        )
    largest = max(rows, key=lambda r: r["information_sets"])
    print(
        f"Largest solved: {largest['information_sets']:,} information sets "
        f"({largest['states']:,} states) in {largest['seconds']:.2f} s"
    )


if __name__ == "__main__":
    main()

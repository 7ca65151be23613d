"""Exact solver benchmark: reachable states and solve time of every bundled scenario.

Solves each scenario in `scenarios/` (and the synthetic `benchmarks/exact_synthetic.yaml`, about
100,000 distinct states per step) with `sim.solvers.exact.solve` and prints a markdown table:
the number of reachable states summed over every point of every step, the most held at once, and
the best
of `--repeat` solve times (wall clock, one process, after a warm-up solve). Scenarios the solver
refuses are listed with the reason (file:line:col).

Usage: `python benchmarks/exact.py [--repeat 3] [--only NAME ...]`.
"""

from __future__ import annotations

import argparse
import os
import platform
import time
from pathlib import Path

import numpy as np

from sim.errors import ScenarioError
from sim.model.loading import load_scenario
from sim.solvers.exact import solve
from sim.solvers.prepare import prepare_model

ROOT = Path(__file__).resolve().parent.parent
SYNTHETIC = ROOT / "benchmarks" / "exact_synthetic.yaml"


def measure(path: Path, repeat: int) -> str:
    model = prepare_model(load_scenario(path))
    name = path.relative_to(ROOT)
    try:
        results = solve(model)
    except ScenarioError as exc:
        reason = exc.problems[0]
        where = f"{Path(reason.file).name}:{reason.line}:{reason.col}"
        return f"| `{name}` | refused | | | {where}: {reason.message.split(';')[0]} |"
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        results = solve(model)
        times.append(time.perf_counter() - start)
    info = results.extra["exact"]
    per_step = info["reachable_states"] / (model.horizon * (len(model.turn_order) + 1))
    return (
        f"| `{name}` | {info['reachable_states']:,} | {info['max_states']:,} | "
        f"{per_step:,.0f} | {min(times):.3f} s |"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3, help="timed solves per scenario")
    parser.add_argument("--only", nargs="*", help="file stems to run (default: all)")
    args = parser.parse_args()
    paths = sorted((ROOT / "scenarios").glob("*.yaml")) + [SYNTHETIC]
    if args.only:
        paths = [p for p in paths if p.stem in args.only]
    print(
        f"Python {platform.python_version()}, numpy {np.__version__}, {platform.machine()}, "
        f"{os.cpu_count()} CPUs; best of {args.repeat} solves after a warm-up\n"
    )
    print(
        "| scenario | reachable states (all points) | most at once | mean per point | solve time |"
    )
    print("| --- | ---: | ---: | ---: | ---: |")
    for path in paths:
        print(measure(path, args.repeat), flush=True)


if __name__ == "__main__":
    main()

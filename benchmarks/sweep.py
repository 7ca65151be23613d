"""Sweep benchmark: a 400-point grid of camp_taji_2020 at 2,000 runs per point, on 1 and 2 workers.

Targets (issue "Batch sweeps at scale"): the grid finishes in under 2 minutes on a 2-core machine,
and 2 workers are at least 1.7x as fast as 1. Wall-clock times include everything a user waits
for: loading the scenario, starting the worker processes, the journal and points.csv (no charts).
It also checks that both runs wrote byte-identical points.csv files.

Usage: `python benchmarks/sweep.py [--levels 20] [--runs 2000] [--workers 1 2] [--repeat 1]`.
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import tempfile
import time
from pathlib import Path

from sim.analysis.sweep import SweepSpec, Vary, make_design, open_executor, run_sweep

ROOT = Path(__file__).resolve().parent.parent
SCENARIO = ROOT / "scenarios" / "camp_taji_2020.yaml"
TARGET_SECONDS = 120.0
TARGET_SPEEDUP = 1.7


def _cpu() -> float:
    own = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)  # pool workers, once joined
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def timed_sweep(spec: SweepSpec, workers: int, out: Path) -> tuple[float, float]:
    """Wall-clock and CPU seconds (this process and its worker processes) of one sweep."""
    start, cpu = time.perf_counter(), _cpu()
    with open_executor(workers) as executor:
        run_sweep(spec, out, executor, workers)
    return time.perf_counter() - start, _cpu() - cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--levels", type=int, default=20, help="grid levels per parameter")
    parser.add_argument("--runs", type=int, default=2000, help="runs per point")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--repeat", type=int, default=1, help="best of this many timings")
    args = parser.parse_args()

    n = args.levels
    varies = [Vary.parse(f"iran_resolve=0:1:{n}"), Vary.parse(f"kh_autonomy=0:1:{n}")]
    design = make_design(varies, "grid", None, seed=1)
    spec = SweepSpec(SCENARIO.read_text(encoding="utf-8"), str(SCENARIO), design, args.runs, 1)
    points = len(design.points)
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(
        f"sweep benchmark: camp_taji_2020, {points} points x {args.runs:,} runs "
        f"({points * args.runs:,} runs), grid of iran_resolve x kh_autonomy"
    )
    print(
        f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
        f"Python {platform.python_version()}, load average before start {load:.2f}"
    )

    times: dict[int, float] = {}
    csvs: dict[int, bytes] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for workers in args.workers:
            best, best_cpu = float("inf"), 0.0
            for r in range(args.repeat):
                out = Path(tmp) / f"w{workers}-{r}"
                wall, cpu = timed_sweep(spec, workers, out)
                if wall < best:
                    best, best_cpu = wall, cpu
                csvs[workers] = (out / "points.csv").read_bytes()
            times[workers] = best
            ok = "ok" if best < TARGET_SECONDS else "MISSED"
            print(
                f"  {workers} worker(s): {best:7.2f} s  {points / best:6.1f} points/s  "
                f"{points * args.runs / best:9,.0f} runs/s  CPU {best_cpu:6.1f} s "
                f"({best_cpu / best / workers:.0%} of {workers} core(s))  "
                f"(target < {TARGET_SECONDS:.0f} s: {ok})"
            )
    identical = len(set(csvs.values())) == 1
    print(f"points.csv identical across worker counts: {identical}")
    if 1 in times and 2 in times:
        speedup = times[1] / times[2]
        ok = "ok" if speedup >= TARGET_SPEEDUP else "MISSED"
        print(f"speed-up 1 -> 2 workers: {speedup:.2f}x (target >= {TARGET_SPEEDUP}x: {ok})")
    if not identical:
        raise SystemExit("points.csv differs between worker counts")


if __name__ == "__main__":
    main()

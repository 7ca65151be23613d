"""A 1,024-point Sobol sweep at 100,000 runs per point: a local Dask cluster against --workers 1.

Issue 16 asks for "a 1,000-point Sobol sweep at 100,000 runs per point on a local Dask cluster
with identical output to --workers 1". This runs the user's command twice, as a subprocess each
time, exactly as typed at a shell:

    escalation sweep SCENARIO --vary ... --method sobol --samples M --runs R \\
        --executor dask --workers K --no-charts --quiet --out DIR/dask
    escalation sweep SCENARIO --vary ... --method sobol --samples M --runs R \\
        --workers 1 --no-charts --quiet --out DIR/one

and prints each one's wall-clock time (the command's whole life: imports, the scenario, the
cluster's start and stop, the journal, points.csv, sobol_indices.csv, sweep.json; no charts),
the load average before each, and whether `points.csv` and `sobol_indices.csv` are identical
byte for byte. (`sweep.json` records the command line, which differs, so it is not compared.)

A Saltelli design has M x (parameters + 2) points with M a power of 2, so exactly 1,000 is not
possible: the default, 6 parameters and M = 128, gives 1,024 points (the smallest such design of
at least 1,000 points with 2 to 8 parameters).

    python benchmarks/sobol_cluster.py                              # tit_for_tat, 1,024 points
    python benchmarks/sobol_cluster.py --scenario camp_taji_2020    # the same on camp_taji
    python benchmarks/sobol_cluster.py --samples 16                 # 128 points: a trial
    python benchmarks/sobol_cluster.py --out /tmp/sobol             # keep the outputs

Exit status 0 if both commands succeeded and their outputs are identical, 1 otherwise.
"""

from __future__ import annotations

import argparse
import datetime
import filecmp
import os
import platform
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
COMPARED = ("points.csv", "sobol_indices.csv")

VARIES = {
    # six of the scenario's eight parameters, each over its declared range
    "tit_for_tat": [
        "militia_gain=-3:3",
        "deterrence_per_strike=0:3",
        "militia_rationality=0:10",
        "retaliation=0:1",
        "lethality=0:1",
        "hit_chance=0:0.9",
    ],
    "camp_taji_2020": [
        "kh_autonomy=0:1",
        "leader_availability=0:1",
        "iran_resolve=0:1",
        "war_risk=0:1",
        "force_protection=0:0.95",
        "backlash_risk=0:1",
    ],
}


def escalation() -> list[str]:
    """The `escalation` command of this interpreter's environment (or `python -m sim`)."""
    script = Path(sys.executable).with_name("escalation")
    return [str(script)] if script.exists() else [sys.executable, "-m", "sim"]


def load() -> str:
    one, five, fifteen = os.getloadavg()
    return f"{one:.2f}, {five:.2f}, {fifteen:.2f}"


def timed(argv: list[str]) -> tuple[float, str]:
    """Run one command; its wall-clock seconds and its last stdout line about the points."""
    start = time.perf_counter()
    out = subprocess.run(argv, capture_output=True, text=True, cwd=ROOT)
    wall = time.perf_counter() - start
    if out.returncode != 0:
        sys.stderr.write(out.stderr)
        raise SystemExit(f"exit status {out.returncode}: {shlex.join(argv)}")
    computed = [line for line in out.stdout.splitlines() if line.startswith("computed ")]
    return wall, computed[-1] if computed else ""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenario", default="tit_for_tat", choices=sorted(VARIES))
    parser.add_argument("--samples", type=int, default=128, help="Sobol base sample (128)")
    parser.add_argument("--runs", type=int, default=100_000, help="runs per point (100,000)")
    parser.add_argument("--workers", type=int, default=2, help="Dask workers (default 2)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--out", type=Path, help="keep the two output folders here")
    args = parser.parse_args(argv)

    varies = VARIES[args.scenario]
    points = args.samples * (len(varies) + 2)
    scenario = ROOT / "scenarios" / f"{args.scenario}.yaml"
    base = [*escalation(), "sweep", str(scenario.relative_to(ROOT))]
    for vary in varies:
        base += ["--vary", vary]
    base += ["--method", "sobol", "--samples", str(args.samples), "--runs", str(args.runs)]
    base += ["--seed", str(args.seed), "--no-charts", "--quiet"]

    print(
        f"Sobol sweep of {args.scenario}: {len(varies)} parameters, M = {args.samples}, "
        f"{points:,} points x {args.runs:,} runs ({points * args.runs:,} runs)"
    )
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} CPUs, Python "
        f"{platform.python_version()}; started "
        f"{datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M:%S} UTC"
    )
    with tempfile.TemporaryDirectory() as tmp:
        out = args.out or Path(tmp)
        runs = [
            ("dask", [*base, "--executor", "dask", "--workers", str(args.workers)]),
            ("one", [*base, "--workers", "1"]),
        ]
        labels = {
            "dask": f"--executor dask --workers {args.workers}",
            "one": "--workers 1",
        }
        walls = {}
        for name, command in runs:
            folder = out / name
            command = [*command, "--out", str(folder)]
            print(f"$ {shlex.join(command)}")
            print(f"  load average before: {load()}", flush=True)
            wall, computed = timed(command)
            walls[name] = wall
            print(f"  {labels[name]}: {wall:.1f} s wall clock ({computed})", flush=True)
        identical = True
        for file in COMPARED:
            same = filecmp.cmp(out / "dask" / file, out / "one" / file, shallow=False)
            size = (out / "one" / file).stat().st_size
            print(f"{file} ({size:,} bytes) identical: {same}")
            identical &= same
    print(f"load average after: {load()}")
    print(
        f"summary: {points:,} points x {args.runs:,} runs; Dask ({args.workers} workers) "
        f"{walls['dask']:.1f} s, --workers 1 {walls['one']:.1f} s; outputs identical: {identical}"
    )
    return 0 if identical else 1


if __name__ == "__main__":
    sys.exit(main())

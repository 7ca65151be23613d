"""Start-up and chart writing of `escalation run` (issue 16, item 4), against their targets.

Two figures, measured side by side in the same rounds (each round runs every command once, in
turn, so a change of load hits them alike):

- start-up: the wall time of `escalation run camp_taji_2020 --runs 1000 --no-charts`, a fresh
  process each time (target: under 0.3 s);
- charts: the time of writing the four run charts (target: under 0.5 s), measured two ways: the
  same command with `--out DIR` minus the one without, round by round: what `run` adds, whose
  charts are drawn by a process forked before the runs, so that matplotlib's import overlaps
  the simulation and the table (sim/outputs/early_charts.py); and, in a fresh process that has
  already simulated, the time of `write_run_charts(parallel=True)` (two charts at a time:
  sim.outputs.charts.in_parallel), matplotlib's import included: what a script or the report
  pays, with the CPU time of that process (its forked helper not counted); then its parts, the
  charts drawn again one by one: the import, then drawing and saving each chart.

Every figure is the minimum over the rounds (the least disturbed by other processes), with the
median beside it, and the CPU time (user + system) of the child processes. The children measure
what a user's installed package gives: bytecode present. PYTHONDONTWRITEBYTECODE (set in some
sandboxes, where every `python -m sim` compiled the modules of an editable `sim/` from
source) is removed from their environment, and they write their bytecode into a cache of their
own (PYTHONPYCACHEPREFIX, a temporary folder warmed by one run: nothing is written into the
tree). `--no-bytecode` measures without it for `sim` (PYTHONDONTWRITEBYTECODE=1 and a copy of
`sim/` without __pycache__: its modules compiled at each start; the other packages keep theirs).

`--baseline REV` measures the tree of git revision REV beside the working tree, in the same
rounds (its `sim/` extracted with `git archive`, first on PYTHONPATH, with this tree's copy of
the scenario, so that both simulate the same file): the before and after of a change.
"cache off" is the start-up with ESCALATION_CACHE_DIR=off, as the first run of a new or edited
file is (the scenario's YAML parsed; a tree from before the cache ignores the variable).
`--imports` adds the slowest imports of the start-up (`python -X importtime`, the minimum over
the rounds).

    python benchmarks/startup.py                 # 10 rounds
    python benchmarks/startup.py --baseline HEAD~3 --imports
    python benchmarks/startup.py --quick         # 2 rounds: a smoke test, figures mean nothing
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
SCENARIO = "camp_taji_2020"
RUNS = 1000
STARTUP_TARGET = 0.3
"""Seconds: `escalation run camp_taji_2020 --runs 1000 --no-charts`, wall time."""
CHARTS_TARGET = 0.5
"""Seconds: writing the four run charts."""
COMMAND = ["run", SCENARIO, "--runs", str(RUNS), "--seed", "1"]

CHART_PARTS = """
import inspect, json, sys, tempfile, time
from pathlib import Path
from sim.engine.runner import run_monte_carlo
from sim.format.library import resolve_scenario_path
from sim.model.loading import load_scenario
from sim.solvers.prepare import prepare_model
model = prepare_model(load_scenario(resolve_scenario_path({scenario!r})), {{}})
results = run_monte_carlo(model, {runs}, 1)
out = Path(tempfile.mkdtemp(prefix="startup-bench-"))
start, cpu = time.perf_counter(), time.process_time()
from sim.outputs import charts
import matplotlib.figure
parts = [["import matplotlib", time.perf_counter() - start]]
signature = inspect.signature(charts.write_run_charts).parameters
as_run = {{"parallel": True}} if "parallel" in signature else {{}}
charts.write_run_charts(results, out, **as_run)  # as `run` writes them
total, cpu = time.perf_counter() - start, time.process_time() - cpu
options = charts.current_chart_options()
for name, draw in charts.RUN_CHARTS.items():  # again, one by one, to see the parts
    t = time.perf_counter()
    fig = draw(results)
    parts.append(["draw " + name, time.perf_counter() - t])
    t = time.perf_counter()
    charts.save_figure(fig, out / options.name(name), options.dpi)
    parts.append(["save " + name, time.perf_counter() - t])
for f in out.iterdir():
    f.unlink()
out.rmdir()
print(json.dumps({{"total": total, "cpu": cpu, "parts": parts}}))
"""


class Tree:
    """A tree of the package to measure: the working tree, or a git revision extracted."""

    def __init__(self, name: str, env: dict[str, str], cwd: Path):
        self.name, self.env, self.cwd = name, env, cwd

    def argv(self, *args: str) -> list[str]:
        return [sys.executable, "-m", "sim", *args]


def child_env(cache: Path | None, parses: Path) -> dict[str, str]:
    """The children's environment: a bytecode cache of their own in `cache`, or (None) no
    bytecode written (the installed packages keep their own __pycache__ either way); and a
    cache of scenario parses of their own in `parses` (sim/format/cache.py, warmed by the
    first run), so that nothing is written in the user's cache folder."""
    env = dict(os.environ, COLUMNS="100", ESCALATION_CACHE_DIR=str(parses))
    env.pop("ESCALATION_SCENARIOS", None)
    env.pop("PYTHONPYCACHEPREFIX", None)
    if cache is None:
        env["PYTHONDONTWRITEBYTECODE"] = "1"
    else:
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        env["PYTHONPYCACHEPREFIX"] = str(cache)
    return env


def copied_tree(scratch: Path, env: dict[str, str]) -> Tree:
    """This tree's `sim/` without its __pycache__ folders, first on PYTHONPATH: with no
    bytecode written, every module of `sim` is compiled at each start."""
    folder = scratch / "this"
    shutil.copytree(ROOT / "sim", folder / "sim", ignore=shutil.ignore_patterns("__pycache__"))
    env = dict(env, PYTHONPATH=os.pathsep.join([str(folder), env.get("PYTHONPATH", "")]))
    return Tree("this tree", env, folder)


def baseline_tree(rev: str, scratch: Path, env: dict[str, str]) -> Tree:
    """The package at git revision `rev`, extracted into `scratch` and first on PYTHONPATH."""
    folder = scratch / "baseline"
    folder.mkdir()
    archive = subprocess.run(
        ["git", "-C", str(ROOT), "archive", rev, "sim"],
        capture_output=True,
        check=True,
    ).stdout
    subprocess.run(["tar", "-x", "-C", str(folder)], input=archive, check=True)
    name = f"{SCENARIO}.yaml"  # both trees simulate the same file: this tree's
    shutil.copyfile(ROOT / "sim" / "scenarios" / name, folder / "sim" / "scenarios" / name)
    env = dict(env, PYTHONPATH=os.pathsep.join([str(folder), env.get("PYTHONPATH", "")]))
    return Tree(f"baseline {rev}", env, folder)


def run_timed(argv: list[str], env: dict[str, str], cwd: Path) -> tuple[float, float, str]:
    """Wall and CPU (user + system, from getrusage) seconds of one process, and its stdout."""
    import resource

    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    result = subprocess.run(argv, env=env, cwd=cwd, capture_output=True, text=True)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if result.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} failed ({result.returncode}):\n{result.stderr}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu, result.stdout


def import_times(tree: Tree) -> dict[str, float]:
    """Cumulative import time of each module (seconds) during the start-up command."""
    argv = [sys.executable, "-X", "importtime", "-m", "sim", *COMMAND, "--no-charts"]
    result = subprocess.run(argv, env=tree.env, cwd=tree.cwd, capture_output=True, text=True)
    times: dict[str, float] = {}
    for line in result.stderr.splitlines():
        found = re.match(r"import time:\s+\d+ \|\s+(\d+) \|( *)(\S+)", line)
        if found and len(found.group(2)) <= 4:  # top-level imports and the ones just below
            times[found.group(3)] = int(found.group(1)) / 1e6
    return times


def fmt(values: list[float]) -> str:
    return f"{min(values):6.3f} s (median {statistics.median(values):6.3f})"


def verdict(value: float, target: float) -> str:
    return "met" if value < target else "MISSED"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=10, help="rounds (default 10)")
    parser.add_argument("--quick", action="store_true", help="2 rounds: a smoke test")
    parser.add_argument("--baseline", metavar="REV", help="also measure git revision REV")
    parser.add_argument("--imports", action="store_true", help="the slowest imports too")
    parser.add_argument("--no-bytecode", action="store_true", help="no bytecode cache")
    args = parser.parse_args(argv)
    rounds = 2 if args.quick else max(1, args.rounds)

    with tempfile.TemporaryDirectory(prefix="startup-bench-") as scratch_name:
        scratch = Path(scratch_name)
        cache = None if args.no_bytecode else scratch / "pycache"
        env = child_env(cache, scratch / "parses")
        trees = [Tree("this tree", env, ROOT) if cache else copied_tree(scratch, env)]
        if args.baseline:
            trees.insert(0, baseline_tree(args.baseline, scratch, env))
        charts_dir = scratch / "charts"
        load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
        print(f"escalation-sim start-up benchmark: {rounds} rounds, {os.cpu_count()} CPUs,")
        bytecode = (
            "present, as installed (PYTHONDONTWRITEBYTECODE unset, PYTHONPYCACHEPREFIX warmed)"
            if cache
            else "none for sim (its modules compiled at every start)"
        )
        print(f"load average {load:.2f} at the start; bytecode: {bytecode}")
        print(f"command: escalation {' '.join(COMMAND)} --no-charts   (python -m sim)")
        print()

        figures: dict[str, dict[str, list[float]]] = {}
        for tree in trees:  # warm-up: the bytecode cache, the font cache, the page cache
            run_timed(tree.argv(*COMMAND, "--out", str(charts_dir)), tree.env, tree.cwd)
            figures[tree.name] = {
                k: []
                for k in (
                    *("startup", "startup_cpu", "startup_cold", "with_charts", "charts"),
                    *("inproc", "inproc_cpu"),
                )
            }
        outputs: dict[str, str] = {}
        parts: dict[str, dict[str, list[float]]] = {t.name: {} for t in trees}
        imports: dict[str, dict[str, list[float]]] = {t.name: {} for t in trees}
        for _ in range(rounds):
            for tree in trees:
                f = figures[tree.name]
                wall, cpu, out = run_timed(tree.argv(*COMMAND, "--no-charts"), tree.env, tree.cwd)
                outputs[tree.name] = out
                f["startup"].append(wall)
                f["startup_cpu"].append(cpu)
                cold = dict(tree.env, ESCALATION_CACHE_DIR="off")  # the parse not cached
                f["startup_cold"].append(
                    run_timed(tree.argv(*COMMAND, "--no-charts"), cold, tree.cwd)[0]
                )
                charted, _, _ = run_timed(
                    tree.argv(*COMMAND, "--out", str(charts_dir)), tree.env, tree.cwd
                )
                f["with_charts"].append(charted)
                f["charts"].append(charted - wall)
                code = CHART_PARTS.format(scenario=SCENARIO, runs=RUNS)
                _, _, out = run_timed([sys.executable, "-c", code], tree.env, tree.cwd)
                measured = json.loads(out)
                f["inproc"].append(measured["total"])
                f["inproc_cpu"].append(measured["cpu"])
                for name, seconds in measured["parts"]:
                    parts[tree.name].setdefault(name, []).append(seconds)
                if args.imports:
                    for name, seconds in import_times(tree).items():
                        imports[tree.name].setdefault(name, []).append(seconds)
        load_end = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")

    if len(trees) == 2 and len(set(outputs.values())) != 1:
        print("NOTE: the two trees print different output for the start-up command")
    width = max(len(t.name) for t in trees)
    rows = (
        ("run --no-charts, wall", "startup"),
        ("run --no-charts, CPU", "startup_cpu"),
        ("  cache off (a new file)", "startup_cold"),
        ("run with charts, wall", "with_charts"),
        ("charts: with - without", "charts"),
        ("write_run_charts in-proc", "inproc"),
        ("  its CPU (this process)", "inproc_cpu"),
    )
    for label, key in rows:
        for tree in trees:
            print(f"{label:26} {tree.name:{width}}  {fmt(figures[tree.name][key])}")
    print()
    for tree in trees:
        print(
            f"the parts ({tree.name}; the charts drawn again, one by one), minimum over the rounds:"
        )
        for name, values in parts[tree.name].items():
            print(f"  {name:28} {min(values) * 1000:7.1f} ms")
    if args.imports:
        print()
        names = {n for t in trees for n in imports[t.name]}
        slow = sorted(names, key=lambda n: -max(min(imports[t.name].get(n, [0])) for t in trees))[
            :25
        ]
        print("slowest imports of the start-up (cumulative, minimum over the rounds, ms):")
        print(f"  {'module':40}" + "".join(f"{t.name:>22}" for t in trees))
        for name in slow:
            cells = ""
            for t in trees:
                values = imports[t.name].get(name)
                cells += f"{min(values) * 1000:22.1f}" if values else f"{'-':>22}"
            print(f"  {name:40}{cells}")
    print()
    print(f"load average {load_end:.2f} at the end")
    here = figures[trees[-1].name]
    startup, charts = min(here["startup"]), min(here["inproc"])
    charts_diff = min(here["charts"])
    print(
        f"start-up, run --no-charts          {startup:6.3f} s   target < {STARTUP_TARGET} s  "
        f"{verdict(startup, STARTUP_TARGET)}"
    )
    print(
        f"charts, run with - without charts  {charts_diff:6.3f} s   target < {CHARTS_TARGET} s  "
        f"{verdict(charts_diff, CHARTS_TARGET)}   (what `run` adds)"
    )
    print(
        f"charts, write_run_charts in-proc   {charts:6.3f} s   target < {CHARTS_TARGET} s  "
        f"{verdict(charts, CHARTS_TARGET)}   (a script: import included)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())

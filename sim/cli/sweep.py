"""`escalation sweep`: batch sweeps over scenario parameters (parsing and printing only)."""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from sim.cli.main import (
    ProgressBar,
    UsageError,
    _positive_int,
    _seed,
    add_backend_argument,
    add_executor_arguments,
    add_scenario_argument,
    add_set_argument,
    backend_of,
    check_override_names,
    default_out_dir,
    executor_spec,
    resolve_scenario_path,
    show_progress,
    writable_folder,
    writing,
)

if TYPE_CHECKING:
    from sim.analysis.sweep import Design, SweepResult, SweepSpec

COMMAND = "sweep"
HELP = "batch sweep over parameters: tidy CSV; line, heatmap and sensitivity charts"
TABLE_ROWS = 30
"""Sweeps with at most this many points print every point; larger ones print ranges."""


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.description = (
        "Simulate the scenario at many parameter points. Each point's random streams derive from "
        "(seed, point index) alone, so results are identical for any number of workers, and an "
        "interrupted sweep can be finished with --resume."
    )
    add_scenario_argument(p)
    p.add_argument(
        "--vary",
        action="append",
        metavar="NAME=LO:HI:N",
        default=[],
        help="a parameter to vary over [LO, HI], with N grid levels (repeatable; "
        "lhs and sobol ignore N)",
    )
    p.add_argument(
        "--method",
        choices=("grid", "lhs", "sobol"),
        default="grid",
        help="full factorial grid (default), scrambled Latin hypercube, or a Saltelli "
        "design with Sobol sensitivity indices",
    )
    p.add_argument(
        "--samples",
        type=_positive_int,
        metavar="M",
        help="lhs: number of points; sobol: base sample (a power of 2; the design has "
        "M x (parameters + 2) points); default 64",
    )
    p.add_argument("--runs", type=_positive_int, default=2000, help="runs per point (default 2000)")
    p.add_argument("--seed", type=_seed, default=1, help="random seed (default 1)")
    add_set_argument(p, help="fix a parameter that is not varied (repeatable)")
    add_executor_arguments(
        p,
        workers_default=None,
        workers_help="worker processes, or the workers of a local Dask cluster (default: all "
        "cores); results are identical for any K and any executor",
    )
    add_backend_argument(p)
    p.add_argument(
        "--out",
        type=Path,
        help="output folder (default reports/<id>/sweep/, or reports/<id>/set-NAME=VALUE/sweep/ "
        "under --set)",
    )
    p.add_argument(
        "--resume",
        action="store_true",
        help="finish an interrupted sweep in --out (same scenario, seed and design)",
    )
    p.add_argument(
        "--restart",
        action="store_true",
        help="discard the journal in --out (an unfinished or damaged sweep) and start again",
    )
    p.add_argument(
        "--metric",
        metavar="OUTCOME",
        help="what the heatmap and Sobol charts show: an outcome id (default: the "
        "first outcome) or a column such as payoff_us or peak_rung_mean",
    )
    p.add_argument("--no-charts", action="store_true", help="do not write charts")
    from sim.cli.chart_args import add_chart_arguments

    add_chart_arguments(p)
    p.add_argument("--quiet", action="store_true", help="no progress bar")


def run(args: argparse.Namespace) -> int:
    from sim.analysis.sweep import SweepSpec, Vary, check_varies, default_workers, make_design
    from sim.engine.runner import parse_overrides
    from sim.format.loader import read_scenario_text
    from sim.model.compiler import resolve_parameters
    from sim.model.loading import load_text

    backend_of(args)  # numba is there, before any work
    path = resolve_scenario_path(args.file)
    # read as every command reads it: a regular file only, within the size limit, UTF-8 checked
    # (a FIFO would block, /dev/zero would be read without end), with FILE:LINE:COL errors
    text = read_scenario_text(path)
    scenario = load_text(text, str(path))
    try:
        varies = [Vary.parse(v) for v in args.vary]
        fixed = parse_overrides(args.overrides)
        check_override_names(scenario, fixed)
        resolve_parameters(scenario, fixed)
        check_varies(scenario, varies, args.method, dict(fixed))
        design = make_design(varies, args.method, args.samples, args.seed)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    workers = args.workers or default_workers()
    spec = SweepSpec(text, str(path), design, args.runs, args.seed, tuple(sorted(fixed.items())))
    out_dir = args.out or default_out_dir(scenario.id, fixed) / "sweep"
    writable_folder(out_dir, "the sweep")  # before any point: a bad folder costs no simulation
    result = _run(args, spec, out_dir, workers)
    charts = []
    if not args.no_charts:
        from sim.cli.chart_args import chart_options
        from sim.outputs.sweep_charts import write_sweep_charts

        with writing("charts", out_dir):
            charts = write_sweep_charts(result, out_dir, args.metric, chart_options(args))
    _print(result, charts, args.metric)
    return 0


def _run(args: argparse.Namespace, spec: SweepSpec, out_dir: Path, workers: int) -> SweepResult:
    from sim.analysis.sweep import SweepError, run_sweep
    from sim.engine.executors import open_executor

    if args.metric is not None:
        _check_metric(spec, args.metric)
    command = _command(args, workers)
    try:
        with (
            open_executor(executor_spec(args, workers)) as executor,
            ProgressBar(
                show_progress(args),
                len(spec.design.points),
                spec.design.method,
                _sweep_columns(spec.design.method),
            ) as advance,
            writing("the sweep", out_dir),  # a full disk: one message, exit 2
        ):
            return run_sweep(
                spec,
                out_dir,
                executor,
                workers,
                args.resume,
                advance,
                command,
                notify=lambda note: print(note, file=sys.stderr),
                restart=args.restart,
                backend=args.backend,
            )
    except SweepError as exc:
        raise UsageError(str(exc)) from None


def _check_metric(spec: SweepSpec, metric: str) -> None:
    from sim.analysis.sweep import metric_columns
    from sim.model.loading import load_text
    from sim.solvers.prepare import prepare_model

    model = prepare_model(load_text(spec.text, spec.file), dict(spec.fixed))
    known = metric in model.outcome_ids or metric in metric_columns(model)
    if known and not metric.endswith(("_lo", "_hi")):
        return
    raise UsageError(
        f"--metric: unknown metric '{metric}' (choose from an outcome id: "
        f"{', '.join(model.outcome_ids)}; or payoff_<actor>, steps_mean, "
        "peak_rung_mean)"
    )


def _command(args: argparse.Namespace, workers: int) -> str:
    """The command line that reproduces this sweep, with every default spelt out."""
    parts = ["escalation", "sweep", args.file]
    for v in args.vary:
        parts += ["--vary", v]
    parts += ["--method", args.method]
    if args.samples:
        parts += ["--samples", str(args.samples)]
    parts += ["--runs", str(args.runs), "--seed", str(args.seed)]
    for item in args.overrides or []:
        parts += ["--set", item]
    parts += ["--workers", str(workers), *executor_spec(args, workers).command_flags()]
    return shlex.join(parts)


def _sweep_columns(label: str):
    """Rich columns for a sweep: points done, rate and ETA."""

    def build() -> list:
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            ProgressColumn,
            TextColumn,
            TimeRemainingColumn,
        )
        from rich.text import Text

        class Rate(ProgressColumn):
            def render(self, task) -> Text:
                speed = task.finished_speed or task.speed
                return Text(f"{speed:.1f} points/s" if speed else "- points/s")

        return [
            TextColumn(f"{label} sweep"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("points"),
            Rate(),
            TimeRemainingColumn(),
        ]

    return build


def _print(result: SweepResult, charts: list[Path], metric: str | None) -> None:
    from rich.markup import escape as esc
    from rich.table import Table

    from sim import __version__
    from sim.outputs.report_text import settings_text
    from sim.outputs.tables import print_table, terminal

    tty = sys.stdout is not None and sys.stdout.isatty()  # None: stdout closed (>&-)
    console = terminal(width=None if tty else 160)
    spec, s = result.spec, result.scenario
    design = spec.design
    console.print(f"[bold]{esc(s.title)}[/bold]  ({s.id})")
    console.print(
        f"{design.method} sweep of {', '.join(design.names)}: {len(design.points):,} "
        f"points x {spec.runs:,} runs, seed {spec.seed}; other parameters: "
        f"{esc(settings_text(dict(spec.fixed)))}; sha256 "
        f"{result.model.sha256[:12]}, escalation-sim {__version__}",
        soft_wrap=True,  # one line, as it is copied into notes
    )
    outcomes = result.model.outcome_ids
    if len(design.points) <= TABLE_ROWS:
        table = Table(title="Outcome probabilities by point", title_justify="left")
        for col in ("point", *design.names, *outcomes):
            table.add_column(col, justify="right")
        for i in range(len(design.points)):
            values = [f"{v:g}" for v in design.points[i]]
            values += [f"{100 * result.column(f'p_{o}')[i]:.1f}%" for o in outcomes]
            table.add_row(str(i), *values)
    else:
        table = Table(title="Outcome probabilities over the points", title_justify="left")
        for col in ("outcome", "lowest", "at", "highest", "at"):
            table.add_column(col, justify="left" if col in ("outcome", "at") else "right")
        for o in outcomes:
            p = result.column(f"p_{o}")
            lo, hi = int(p.argmin()), int(p.argmax())
            table.add_row(
                o,
                f"{100 * p[lo]:.1f}%",
                _where(design, lo),
                f"{100 * p[hi]:.1f}%",
                _where(design, hi),
            )
    print_table(console, table)
    if result.sobol is not None:
        from sim.outputs.sweep_charts import metric_column

        column = metric_column(result, metric)
        table = Table(
            title=f"Sobol indices of {column} (95% bootstrap intervals)", title_justify="left"
        )
        for col in ("parameter", "first order S1", "total order ST"):
            table.add_column(col, justify="left" if col == "parameter" else "right")
        for r in result.sobol:
            if r["metric"] == column:
                table.add_row(
                    r["parameter"],
                    f"{r['S1']:.3f} ± {r['S1_conf']:.3f}",
                    f"{r['ST']:.3f} ± {r['ST_conf']:.3f}",
                )
        print_table(console, table)
    rate = result.computed / result.seconds if result.seconds else 0
    reused = len(design.points) - result.computed
    console.print(
        f"computed {result.computed:,} points in {result.seconds:.1f} s "
        f"({rate:.1f} points/s, {result.workers} workers)"
        + (f"; {reused:,} from the journal" if reused else "")
    )
    for path in [*result.files, *charts]:
        console.print(f"wrote {esc(str(path))}", soft_wrap=True)


def _where(design: Design, index: int) -> str:
    return ", ".join(
        f"{n}={v:.3g}" for n, v in zip(design.names, design.points[index], strict=True)
    )

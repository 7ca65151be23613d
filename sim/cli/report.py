"""`escalation report FILE`: one self-contained HTML report (built by sim/report.py)."""

from __future__ import annotations

import argparse
from pathlib import Path

COMMAND = "report"
HELP = "one self-contained HTML report with every chart"


def add_arguments(p: argparse.ArgumentParser) -> None:
    from sim.cli.main import (
        _positive_int,
        _seed,
        add_executor_arguments,
        add_quiet_argument,
        add_scenario_argument,
        add_set_argument,
    )

    add_scenario_argument(p)
    p.add_argument("--runs", type=_positive_int, default=20_000, help="runs (default 20000)")
    p.add_argument("--seed", type=_seed, default=1, help="random seed (default 1)")
    add_set_argument(p)
    p.add_argument(
        "--out",
        type=Path,
        metavar="PATH",
        help="the HTML file to write (default reports/<id>/report.html, or "
        "reports/<id>/set-NAME=VALUE/report.html under --set)",
    )
    add_executor_arguments(p)
    add_quiet_argument(p)
    from sim.cli.chart_args import add_chart_arguments

    add_chart_arguments(p, formats=False)  # the page embeds its charts as PNG


def run(args: argparse.Namespace) -> int:
    from sim.cli.main import (
        ProgressBar,
        busy_columns,
        default_out_dir,
        executor_spec,
        load_with_overrides,
        show_progress,
        writable_file,
        writing,
    )
    from sim.engine.executors import open_executor
    from sim.outputs.report import make_report, write_atomic
    from sim.solvers.prepare import prepare_model

    scenario, overrides = load_with_overrides(args.file, args.overrides)
    out = args.out or default_out_dir(scenario.id, overrides) / "report.html"
    writable_file(out, "the report")  # before the runs: a bad path costs no simulation
    from sim.cli.chart_args import chart_options
    from sim.outputs.charts import using_chart_options

    label = f"{scenario.id}: simulating {args.runs:,} runs"
    with (
        open_executor(executor_spec(args)) as pool,
        ProgressBar(show_progress(args), args.runs, label, busy_columns) as bar,
    ):
        model = prepare_model(scenario, overrides)
        with using_chart_options(chart_options(args)):  # the --dpi of the embedded charts
            page = make_report(
                model,
                args.runs,
                args.seed,
                args.file,
                progress=bar,
                stage=None if bar is None else bar.stage,
                executor=pool,
            )
    with writing("the report", out):
        path = write_atomic(out, page)
    print(
        f"Report written to {path} ({path.stat().st_size / 1024:,.0f} KiB): open it in any "
        "browser, no network needed."
    )
    return 0

"""`escalation check`: an episode log against the model's predictive distribution (no model
logic here)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from sim.cli.fit import add_data_argument, add_doctrine_argument, parse_doctrines
from sim.cli.main import (
    EXIT_OK,
    _positive_int,
    _seed,
    add_quiet_argument,
    add_scenario_argument,
    add_set_argument,
)

COMMAND = "check"
HELP = "compare an episode log with the model's predictive distribution (DESIGN.md 8.2)"
DEFAULT_RUNS = 10_000
"""sim.analysis.check.DEFAULT_RUNS, spelt out so that building the parser imports no engine."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.description = (
        "Set each episode's statistics (steps, outcome, peak rung, each actor's move counts among "
        "its observed moves) beside the distribution of RUNS model runs: the percentile, whether "
        "it lies inside the central 90% band, and a one-line verdict per episode. Outcome and "
        "peak rung, which a log does not record, are the most probable given the log. A chart "
        "(observed marks over the model's bands) is written into --out."
    )
    add_scenario_argument(parser)
    add_data_argument(parser)
    add_set_argument(parser)
    parser.add_argument(
        "--runs",
        type=_positive_int,
        default=DEFAULT_RUNS,
        metavar="R",
        help=f"model runs for the predictive distribution (default {DEFAULT_RUNS:,})",
    )
    add_doctrine_argument(parser)
    parser.add_argument("--seed", type=_seed, default=1, help="seed of the model runs")
    parser.add_argument("--json", action="store_true", help="print the JSON result on stdout")
    parser.add_argument(
        "--out",
        type=Path,
        metavar="DIR",
        help="folder for the chart (default reports/SCENARIO/)",
    )
    parser.add_argument("--no-charts", action="store_true", help="write no chart")
    add_quiet_argument(parser)
    from sim.cli.chart_args import add_chart_arguments

    add_chart_arguments(parser)


def run(args: argparse.Namespace) -> int:
    from sim.analysis.check import check
    from sim.cli.main import (
        ProgressBar,
        UsageError,
        default_out_dir,
        load_with_overrides,
        show_progress,
        writable_folder,
        writing,
    )
    from sim.format.episode_log import read_episode_log

    scenario, overrides = load_with_overrides(args.file, args.overrides)
    doctrines = parse_doctrines(args.doctrine)
    log = read_episode_log(args.data, scenario)
    out = None if args.no_charts else (args.out or default_out_dir(scenario.id, overrides))
    if out is not None:
        writable_folder(out, "the chart")  # before the work: a bad folder costs nothing
    with ProgressBar(show_progress(args), None, f"{scenario.id}: checking", delay=1.0):
        try:
            result = check(
                scenario, log, runs=args.runs, seed=args.seed, fixed=overrides, doctrines=doctrines
            )
        except ValueError as exc:
            raise UsageError(str(exc)) from None
    charts = []
    if out is not None:
        from sim.cli.chart_args import chart_options
        from sim.outputs.evidence import write_check_chart

        with writing("the chart", out):
            charts = write_check_chart(result, out, chart_options(args))
    if args.json:
        print(json.dumps(result.to_dict(), indent=2, allow_nan=False))
    else:
        from sim.outputs.evidence import print_check

        print_check(result, charts)
    return EXIT_OK

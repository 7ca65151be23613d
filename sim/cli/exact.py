"""`escalation exact`: the exact outcome distribution, printed like `run` (no model logic here)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from sim.cli.main import (
    EXIT_OK,
    _positive_int,
    add_beliefs_argument,
    add_quiet_argument,
    add_scenario_argument,
    add_set_argument,
)

COMMAND = "exact"
HELP = "exact outcome distribution by enumerating the reachable states (no sampling error)"
MAX_STATES = 2_000_000
"""The default of --max-states: sim.solvers.exact.DEFAULT_MAX_STATES, spelt out here so that
building the parser imports no solver (tests/cli/test_startup.py checks they agree)."""
SLOW = 1.0
"""Seconds after which a solve still going shows its progress indicator."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.description = (
        "Propagate the exact probability distribution over reachable states move by move to the "
        "horizon. Supports fixed, sequence, table and logit policies, outcome branches and "
        "bernoulli/binomial draws; refuses poisson, uniform and normal draws and state spaces "
        "wider than --max-states, naming the cause as FILE:LINE:COL (exit status 2)."
    )
    add_scenario_argument(parser)
    add_set_argument(parser)
    parser.add_argument("--json", action="store_true", help="print the JSON result on stdout")
    parser.add_argument(
        "--max-states",
        type=_positive_int,
        default=MAX_STATES,
        metavar="N",
        help=f"most distinct states held at once before refusing (default {MAX_STATES:,})",
    )
    parser.add_argument(
        "--out", type=Path, metavar="DIR", help="also write the four `run` charts into DIR"
    )
    add_beliefs_argument(parser)
    add_quiet_argument(parser)
    from sim.cli.chart_args import add_chart_arguments

    add_chart_arguments(parser)


def run(args: argparse.Namespace) -> int:
    from sim.cli.main import (
        ProgressBar,
        early_charts,
        load_with_overrides,
        print_beliefs,
        show_progress,
        with_beliefs,
        writable_folder,
        writing,
    )
    from sim.solvers.exact import solve
    from sim.solvers.prepare import prepare_model

    scenario, overrides = load_with_overrides(args.file, args.overrides)
    if args.out:
        writable_folder(args.out, "charts")  # before the solve: a bad folder costs no work
    label = f"{scenario.id}: solving exactly"
    with ProgressBar(show_progress(args), None, label, delay=SLOW):  # shown only when slow
        model = prepare_model(scenario, overrides)
    charts = []
    # the chart process is forked between the two bars: a bar's timer thread forbids a fork
    with early_charts(args.out, args, model) as charts_writer:
        with ProgressBar(show_progress(args), None, label, delay=SLOW):
            results = solve(model, max_states=args.max_states)
        if args.out:
            with writing("charts", args.out):
                charts = charts_writer.write(results)
    if args.json:
        print(json.dumps(with_beliefs(results.to_json(), model, args), indent=2, allow_nan=False))
    else:
        from sim.outputs.tables import print_run

        print_run(results, charts, overrides)
        print_beliefs(model, args)
    return EXIT_OK

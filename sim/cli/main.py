"""The `escalation` command line: argument parsing and printing only, no model logic."""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from sim import __version__
from sim.errors import ScenarioError, SimulationError
from sim.format.library import bundled_scenarios_dir, resolve_scenario_path

EXIT_OK, EXIT_INTERNAL, EXIT_INPUT = 0, 1, 2

COMMAND_MODULES: tuple[str, ...] = (
    "sim.cli.sweep",
    "sim.cli.compare",
    "sim.cli.trace",
    "sim.cli.exact",
    "sim.cli.play",
    "sim.cli.report",
)
"""Modules of further commands; each has COMMAND, HELP, add_arguments(parser) and run(args).

All of them are imported to build the parser, `--help` and `--version` included, so at module
level and in add_arguments they import nothing heavy (numpy, scipy, matplotlib, rich, pydantic,
ruamel, the engine): `run` imports its command's machinery when it runs. The built-in commands
below follow the same rule; tests/cli/test_startup.py checks it."""


class UsageError(Exception):
    """Bad command-line usage: reported in one line, exit status 2."""


def load_with_overrides(file: str, settings: list[str] | None):
    """The scenario named on the command line and its checked `--set` overrides."""
    from sim.engine.runner import parse_overrides
    from sim.model.compiler import resolve_parameters
    from sim.model.loading import load_scenario

    scenario = load_scenario(resolve_scenario_path(file))
    try:
        overrides = parse_overrides(settings)
        resolve_parameters(scenario, overrides)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    return scenario, overrides


def add_scenario_argument(p: argparse.ArgumentParser) -> None:
    """The FILE argument every scenario command takes."""
    p.add_argument("file", metavar="FILE", help="scenario file (or the id of a bundled one)")


def add_set_argument(
    p: argparse.ArgumentParser, help: str = "override a parameter (repeatable)"
) -> None:
    """The repeatable --set NAME=VALUE option, read by `load_with_overrides`."""
    p.add_argument("--set", action="append", metavar="NAME=VALUE", dest="overrides", help=help)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="escalation",
        description="Escalation-ladder decision simulator: play out a crisis many times.",
    )
    parser.add_argument("--version", action="version", version=f"escalation-sim {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    sub.add_parser("list", help="the bundled scenarios with their titles")

    p = sub.add_parser("validate", help="check scenario files; FILE:LINE:COL: message per problem")
    p.add_argument("files", nargs="+", metavar="FILE")

    p = sub.add_parser("run", help="Monte Carlo: outcome table with 95%% intervals, and charts")
    add_scenario_argument(p)
    p.add_argument("--runs", type=_positive_int, default=10_000, help="runs (default 10000)")
    p.add_argument("--seed", type=_seed, default=1, help="random seed (default 1)")
    add_set_argument(p)
    p.add_argument("--json", action="store_true", help="print the JSON result on stdout")
    p.add_argument("--out", type=Path, help="chart folder (default reports/<id>/)")
    p.add_argument("--no-charts", action="store_true", help="do not write charts")
    p.add_argument(
        "--precision",
        type=_half_width,
        metavar="H",
        help="add runs until every outcome's 95%% half-width is at most H (stops at --max-runs)",
    )
    p.add_argument(
        "--max-runs",
        type=_positive_int,
        default=None,
        help="cap for --precision (default 4,000,000)",
    )
    p.add_argument(
        "--workers",
        type=_positive_int,
        default=1,
        help="worker processes (results are identical for any number)",
    )
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument(
        "--exact-check",
        action="store_true",
        help="also solve exactly and report each outcome's z-score against it",
    )

    sub.add_parser("schema", help="JSON Schema of the scenario format, for editor completion")
    for module in _command_modules():
        module.add_arguments(sub.add_parser(module.COMMAND, help=module.HELP))
    return parser


def _command_modules() -> list:
    import importlib

    return [importlib.import_module(name) for name in COMMAND_MODULES]


def _positive_int(text: str) -> int:
    try:
        value = int(text.replace("_", "").replace(",", ""))
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not a whole number") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be positive, got {value}")
    return value


def _seed(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not a whole number") from None
    if value < 0:
        raise argparse.ArgumentTypeError("the seed must be >= 0")
    return value


def _half_width(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not a number") from None
    if not 0 < value < 0.5:
        raise argparse.ArgumentTypeError("the half-width must be between 0 and 0.5")
    return value


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; returns the exit status (0 ok, 2 bad input or usage, 1 internal)."""
    parser = _parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:
        return int(exc.code or 0)
    handlers = {"list": cmd_list, "validate": cmd_validate, "run": cmd_run, "schema": cmd_schema}
    handlers.update({m.COMMAND: m.run for m in _command_modules()})
    handler = handlers[args.command]
    try:
        return handler(args)
    except ScenarioError as exc:
        for problem in exc.problems:
            print(problem, file=sys.stderr)
        return EXIT_INPUT
    except (UsageError, SimulationError) as exc:
        print(f"escalation {args.command}: error: {exc}", file=sys.stderr)
        return EXIT_INPUT
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # the reader (e.g. `| head`) closed the pipe: stop quietly, as other Unix tools do
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141
    except Exception as exc:  # an internal failure: one line, and the details on request
        if os.environ.get("ESCALATION_DEBUG"):
            raise
        print(
            f"escalation {args.command}: internal error: {type(exc).__name__}: {exc} "
            "(set ESCALATION_DEBUG=1 for the traceback)",
            file=sys.stderr,
        )
        return EXIT_INTERNAL


def entry_point() -> None:
    sys.exit(main())


def cmd_list(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    from sim.model.loading import load_scenario

    library = bundled_scenarios_dir()
    table = Table(title=f"Bundled scenarios ({library})", title_justify="left")
    table.add_column("file")
    table.add_column("id")
    table.add_column("title")
    for path in sorted(library.glob("*.yaml")):
        try:
            scenario = load_scenario(path)
            table.add_row(path.name, scenario.id, escape(scenario.title))
        except ScenarioError as exc:
            table.add_row(path.name, "-", f"[red]invalid: {escape(exc.problems[0].message)}[/red]")
    Console().print(table)
    return EXIT_OK


def cmd_validate(args: argparse.Namespace) -> int:
    from sim.model.loading import load_scenario

    status = EXIT_OK
    for name in args.files:
        try:
            load_scenario(resolve_scenario_path(name))
            print(f"{name}: ok")
        except ScenarioError as exc:
            for problem in exc.problems:
                print(problem)
            status = EXIT_INPUT
    return status


def cmd_schema(args: argparse.Namespace) -> int:
    from sim.format.scenario import json_schema

    print(json.dumps(json_schema(), indent=2))
    return EXIT_OK


def cmd_run(args: argparse.Namespace) -> int:
    from sim.engine.runner import PRECISION_CAP, run_monte_carlo, run_to_precision
    from sim.engine.streams import BLOCK_SIZE
    from sim.solvers.prepare import prepare_model

    scenario, overrides = load_with_overrides(args.file, args.overrides)
    model = prepare_model(scenario, overrides)
    exact = None
    if args.exact_check:  # solved first: a scenario that cannot be solved fails before the runs
        from sim.solvers.exact import solve

        exact = solve(model)
    cap = args.max_runs or PRECISION_CAP
    if args.precision and cap < BLOCK_SIZE:
        raise UsageError(f"--max-runs must be at least {BLOCK_SIZE:,} (one block) with --precision")
    out_dir = None
    if not args.no_charts:  # checked before the runs, so a bad folder costs no simulation
        out_dir = args.out or Path("reports") / scenario.id
        try:
            out_dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise UsageError(f"cannot write charts to {out_dir}: {exc.strerror or exc}") from None
    total = cap if args.precision else args.runs
    show = not args.quiet and sys.stderr.isatty() and total >= 50_000
    with ProgressBar(show, total, scenario.id, _run_columns) as advance:
        if args.precision:
            results = run_to_precision(
                model, args.precision, args.seed, args.runs, cap, args.workers, progress=advance
            )
        else:
            results = run_monte_carlo(model, args.runs, args.seed, args.workers, progress=advance)
    if exact is not None:
        from sim.solvers.exact import exact_check

        results.extra["exact_check"] = exact_check(results, exact)
    if results.precision is not None:
        results.extra["precision"] = results.precision
    if args.json:
        print(json.dumps(results.to_json(), indent=2))
    else:
        from sim.outputs.tables import print_run

        print_run(results, [], overrides)
    if out_dir is not None:  # after the results are out: a chart failure cannot lose them
        from sim.outputs.charts import write_run_charts

        try:
            charts = write_run_charts(results, out_dir)
        except OSError as exc:
            raise UsageError(f"cannot write charts to {out_dir}: {exc.strerror or exc}") from None
        if not args.json:
            print("Charts: " + ", ".join(str(c) for c in charts))
    return EXIT_OK


class ProgressBar:
    """A transient rich progress bar on stderr; does nothing when disabled (not a terminal,
    --quiet, or too short to be worth it). `columns` builds the rich columns lazily."""

    def __init__(self, enabled: bool, total: int, label: str, columns: Callable[[], list]):
        self.enabled, self.total, self.label, self.columns = enabled, total, label, columns
        self.bar = None

    def __enter__(self):
        if not self.enabled:
            return None
        from rich.console import Console
        from rich.progress import Progress

        self.bar = Progress(*self.columns(), console=Console(stderr=True), transient=True)
        self.bar.start()
        task = self.bar.add_task(self.label, total=self.total)
        return lambda n: self.bar.advance(task, n)

    def __exit__(self, *exc) -> None:
        if self.bar is not None:
            self.bar.stop()


def _run_columns() -> list:
    from rich.progress import BarColumn, TextColumn, TimeRemainingColumn

    return [
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.completed:,}/{task.total:,} runs"),
        TimeRemainingColumn(),
    ]

"""`escalation compare`: an actor's first moves or doctrines side by side."""

from __future__ import annotations

import argparse
import json
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from sim.errors import did_you_mean

if TYPE_CHECKING:
    from rich.console import Console

COMMAND = "compare"
HELP = "outcome distributions side by side, one column per option or alternative policy"


def add_arguments(p: argparse.ArgumentParser) -> None:
    from sim.cli.main import (
        _positive_int,
        _seed,
        add_backend_argument,
        add_executor_arguments,
        add_quiet_argument,
        add_scenario_argument,
        add_set_argument,
    )

    add_scenario_argument(p)
    p.add_argument("--actor", required=True, help="the actor whose choice is compared")
    mode = p.add_mutually_exclusive_group()
    mode.add_argument(
        "--first-move",
        action="store_true",
        help="one column per option available at the actor's first move (default)",
    )
    mode.add_argument(
        "--policies",
        action="store_true",
        help="one column per named alternative policy, plus 'current'",
    )
    p.add_argument("--runs", type=_positive_int, default=20_000, help="runs per column")
    p.add_argument("--seed", type=_seed, default=1)
    add_set_argument(p)
    p.add_argument(
        "--max-risk",
        metavar="OUTCOME=P",
        help="recommend the best column whose probability of OUTCOME is at most P",
    )
    p.add_argument("--json", action="store_true", help="print the JSON comparison on stdout")
    p.add_argument(
        "--out",
        type=Path,
        help="chart folder (default reports/<id>/, or reports/<id>/set-NAME=VALUE/ under --set; "
        "with --json, charts are written only when --out is given)",
    )
    p.add_argument("--no-charts", action="store_true")
    add_executor_arguments(p)
    add_backend_argument(p)
    add_quiet_argument(p)
    from sim.cli.chart_args import add_chart_arguments

    add_chart_arguments(p)


def _max_risk(text: str | None, outcomes: tuple[str, ...]) -> tuple[str, float] | None:
    from sim.cli.main import UsageError

    if text is None:
        return None
    name, sep, value = text.partition("=")
    if not sep:
        raise UsageError(f"--max-risk expects OUTCOME=P, got '{text}'")
    if name not in outcomes:
        raise UsageError(
            f"--max-risk: unknown outcome '{name}'{did_you_mean(name, outcomes)}; "
            f"outcomes: {', '.join(outcomes)}"
        )
    try:
        limit = float(value)
    except ValueError:
        raise UsageError(f"--max-risk: '{value}' is not a probability") from None
    if not 0 <= limit <= 1:
        raise UsageError(f"--max-risk: {limit:g} is not a probability in [0, 1]")
    return name, limit


def run(args: argparse.Namespace) -> int:
    from sim.analysis.compare import compare_first_moves, compare_policies
    from sim.cli.main import (
        ProgressBar,
        UsageError,
        backend_of,
        default_out_dir,
        executor_spec,
        load_with_overrides,
        show_progress,
        writable_folder,
        writing,
    )

    backend = backend_of(args)
    scenario, overrides = load_with_overrides(args.file, args.overrides)
    if args.actor not in scenario.actors:
        raise UsageError(
            f"unknown actor '{args.actor}'{did_you_mean(args.actor, scenario.actors)}"
            f"; actors: {', '.join(scenario.actors)}"
        )
    if args.actor not in scenario.turn_order:
        raise UsageError(f"actor '{args.actor}' never moves (not in turn_order)")
    max_risk = _max_risk(args.max_risk, tuple(scenario.outcome_ids))
    if args.policies and not scenario.alternatives.get(args.actor):
        raise UsageError(
            f"the scenario has no alternatives for '{args.actor}'; "
            "add them under `alternatives:` or use --first-move"
        )
    out_dir = None
    if not args.no_charts and (args.out is not None or not args.json):
        out_dir = args.out or default_out_dir(scenario.id, overrides)
        writable_folder(out_dir, "charts")  # before the runs: a bad folder costs no simulation
    what = "doctrines" if args.policies else "first moves"
    label = f"{scenario.id}: comparing {what}, {args.runs:,} runs each"
    from sim.engine.executors import open_executor

    with (
        open_executor(executor_spec(args)) as pool,
        ProgressBar(show_progress(args), None, label),
    ):
        if args.policies:
            comparison = compare_policies(
                scenario, args.actor, args.runs, args.seed, overrides, max_risk, pool, backend
            )
        else:
            try:
                comparison = compare_first_moves(
                    scenario, args.actor, args.runs, args.seed, overrides, max_risk, pool, backend
                )
            except ValueError as exc:
                raise UsageError(str(exc)) from None
    charts = []
    if out_dir is not None:
        from sim.cli.chart_args import chart_options
        from sim.outputs.compare_charts import write_compare_charts

        with writing("charts", out_dir):
            charts = write_compare_charts(comparison, out_dir, chart_options(args))
    if args.json:
        print(json.dumps(comparison.to_json(), indent=2, allow_nan=False))
    else:
        print_comparison(comparison, charts, overrides=overrides)
    return 0


def _pct(x: float) -> str:
    return f"{100 * x:.1f}%"


def print_comparison(
    comparison,
    charts,
    console: Console | None = None,
    overrides: Mapping[str, float] | None = None,
) -> None:
    """The side-by-side table, the paired differences and the recommendation. The tables never
    cut a number or an option id: on a narrow terminal the headers are abbreviated with a legend,
    or the columns are split over several tables. `overrides`: the --set values (default: the
    parameters that differ from the scenario's)."""
    from rich.markup import escape as esc

    from sim.analysis.compare import possessive
    from sim.outputs.report_text import model_overrides, settings_text
    from sim.outputs.tables import print_side_by_side, terminal

    console = console or terminal()
    m = comparison.model
    s = m.scenario
    first = comparison.columns[0].results
    settings = settings_text(model_overrides(m) if overrides is None else overrides)
    console.print(f"[bold]{esc(s.title)}[/bold]  ({s.id})")
    console.print(
        f"{esc(s.actors[comparison.actor].label)}: "
        f"{'first move' if comparison.mode == 'first-move' else 'doctrines'} compared; "
        f"{first.runs:,} runs per column, seed {first.seed}, common random numbers; "
        f"parameters: {esc(settings)}; sha256 {m.sha256[:12]}"
    )
    columns = comparison.columns
    labels, cells = [], []
    for o, oid in enumerate(m.outcome_ids):
        row = []
        for col in columns:
            lo, hi = col.results.intervals()
            row.append(
                f"{_pct(col.results.probabilities[o])}\n[dim]{_pct(lo[o])} to {_pct(hi[o])}[/dim]"
            )
        labels.append(esc(s.outcome_label(oid)))
        cells.append(row)
    for b, actor in enumerate(m.actors):
        row = []
        for col in columns:
            lo, hi = col.results.payoff_interval()
            row.append(f"{col.results.payoff_mean[b]:.2f}\n[dim]{lo[b]:.2f} to {hi[b]:.2f}[/dim]")
        labels.append(f"payoff: {esc(s.actors[actor].label)}")
        cells.append(row)
    labels.append("mean peak rung")
    cells.append([f"{c.results.peak_mean():.2f}" for c in columns])
    names = [c.name for c in columns]
    print_side_by_side(console, "Outcomes (95% interval)", labels, names, cells)

    diffs = comparison.differences()
    if diffs:
        base = comparison.columns[0].name
        labels = [f"payoff: {esc(s.actors[comparison.actor].label)}"]
        cells = [
            [
                f"{d['payoff']['mean']:+.2f}\n[dim]{d['payoff']['ci95'][0]:+.2f} to "
                f"{d['payoff']['ci95'][1]:+.2f}[/dim]"
                for d in diffs.values()
            ]
        ]
        for oid in m.outcome_ids:
            labels.append(esc(s.outcome_label(oid)))
            cells.append(
                [
                    f"{100 * d['outcomes'][oid]['mean']:+.1f} pts\n[dim]"
                    f"{100 * d['outcomes'][oid]['ci95'][0]:+.1f} to "
                    f"{100 * d['outcomes'][oid]['ci95'][1]:+.1f}[/dim]"
                    for d in diffs.values()
                ]
            )
        print_side_by_side(
            console,
            f"Paired differences from '{esc(base)}' (95% interval)",
            labels,
            list(diffs),
            cells,
        )

    rec = comparison.recommendation()
    line = (
        f"Recommendation: [bold]{rec['best']}[/bold] maximises "
        f"{possessive(esc(s.actors[comparison.actor].label))} expected payoff "
        f"({rec['expected_payoff']:.2f})"
    )
    if "runner_up" in rec:
        lo, hi = rec["difference_ci95"]
        if rec["separated"]:
            line += (
                f", ahead of {rec['runner_up']} by {rec['difference']:.2f} ({lo:.2f} to {hi:.2f})"
            )
        else:
            line += (
                f", but the data cannot separate it from {rec['runner_up']} "
                f"(difference {rec['difference']:.2f}, 95% interval {lo:.2f} to {hi:.2f})"
            )
    console.print(line + ".")
    if "max_risk" in rec:
        r = rec["max_risk"]
        label = esc(s.outcome_label(r["outcome"]))
        if r["best"] is None:
            console.print(f"With P({label}) <= {_pct(r['limit'])}: no column qualifies.")
        else:
            extra = ""
            if "runner_up" in r and not r["separated"]:
                extra = f"; the data cannot separate it from {r['runner_up']}"
            console.print(
                f"With P({label}) <= {_pct(r['limit'])}: [bold]{r['best']}[/bold] "
                f"(P = {_pct(r['p'])}, upper 95% bound {_pct(r['p_upper95'])}; "
                f"expected payoff {r['expected_payoff']:.2f}{extra})."
            )
    if charts:
        console.print("Charts: " + ", ".join(esc(str(c)) for c in charts))

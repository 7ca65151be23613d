"""`escalation compare`: an actor's first moves or doctrines side by side."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import TYPE_CHECKING

from sim.errors import did_you_mean

if TYPE_CHECKING:
    from rich.console import Console

COMMAND = "compare"
HELP = "outcome distributions side by side, one column per option or alternative policy"


def add_arguments(p: argparse.ArgumentParser) -> None:
    from sim.cli.main import _positive_int, _seed, add_scenario_argument, add_set_argument

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
    p.add_argument("--out", type=Path, help="chart folder (default reports/<id>/)")
    p.add_argument("--no-charts", action="store_true")


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
    from sim.cli.main import UsageError, load_with_overrides

    scenario, overrides = load_with_overrides(args.file, args.overrides)
    if args.actor not in scenario.actors:
        raise UsageError(
            f"unknown actor '{args.actor}'{did_you_mean(args.actor, scenario.actors)}"
            f"; actors: {', '.join(scenario.actors)}"
        )
    if args.actor not in scenario.turn_order:
        raise UsageError(f"actor '{args.actor}' never moves (not in turn_order)")
    max_risk = _max_risk(args.max_risk, tuple(scenario.outcome_ids))
    if args.policies:
        if not scenario.alternatives.get(args.actor):
            raise UsageError(
                f"the scenario has no alternatives for '{args.actor}'; "
                "add them under `alternatives:` or use --first-move"
            )
        comparison = compare_policies(
            scenario, args.actor, args.runs, args.seed, overrides, max_risk
        )
    else:
        try:
            comparison = compare_first_moves(
                scenario, args.actor, args.runs, args.seed, overrides, max_risk
            )
        except ValueError as exc:
            raise UsageError(str(exc)) from None
    charts = []
    if not args.no_charts:
        from sim.outputs.compare_charts import write_compare_charts

        charts = write_compare_charts(comparison, args.out or Path("reports") / scenario.id)
    if args.json:
        print(json.dumps(comparison.to_json(), indent=2))
    else:
        print_comparison(comparison, charts)
    return 0


def _pct(x: float) -> str:
    return f"{100 * x:.1f}%"


def print_comparison(comparison, charts, console: Console | None = None) -> None:
    """The side-by-side table, the paired differences and the recommendation."""
    from rich.console import Console
    from rich.markup import escape as esc
    from rich.table import Table

    from sim.analysis.compare import possessive

    console = console or Console()
    m = comparison.model
    s = m.scenario
    first = comparison.columns[0].results
    console.print(f"[bold]{esc(s.title)}[/bold]  ({s.id})")
    console.print(
        f"{esc(s.actors[comparison.actor].label)}: "
        f"{'first move' if comparison.mode == 'first-move' else 'doctrines'} compared; "
        f"{first.runs:,} runs per column, seed {first.seed}, common random numbers; "
        f"sha256 {m.sha256[:12]}"
    )
    table = Table(title="Outcomes (95% interval)", title_justify="left")
    table.add_column("")
    for col in comparison.columns:
        table.add_column(col.name, justify="right")
    for o, oid in enumerate(m.outcome_ids):
        cells = []
        for col in comparison.columns:
            lo, hi = col.results.intervals()
            cells.append(
                f"{_pct(col.results.probabilities[o])}\n[dim]{_pct(lo[o])}-{_pct(hi[o])}[/dim]"
            )
        table.add_row(esc(s.outcome_label(oid)), *cells)
    for b, actor in enumerate(m.actors):
        cells = []
        for col in comparison.columns:
            lo, hi = col.results.payoff_interval()
            cells.append(f"{col.results.payoff_mean[b]:.2f}\n[dim]{lo[b]:.2f} to {hi[b]:.2f}[/dim]")
        table.add_row(f"payoff: {esc(s.actors[actor].label)}", *cells)
    table.add_row("mean peak rung", *[f"{c.results.peak_mean():.2f}" for c in comparison.columns])
    console.print(table)

    diffs = comparison.differences()
    if diffs:
        base = comparison.columns[0].name
        table = Table(
            title=f"Paired differences from '{base}' (95% interval)", title_justify="left"
        )
        table.add_column("")
        for name in diffs:
            table.add_column(name, justify="right")
        table.add_row(
            f"payoff: {esc(s.actors[comparison.actor].label)}",
            *[
                f"{d['payoff']['mean']:+.2f}\n[dim]{d['payoff']['ci95'][0]:+.2f} to "
                f"{d['payoff']['ci95'][1]:+.2f}[/dim]"
                for d in diffs.values()
            ],
        )
        for oid in m.outcome_ids:
            table.add_row(
                esc(s.outcome_label(oid)),
                *[
                    f"{100 * d['outcomes'][oid]['mean']:+.1f} pts\n[dim]"
                    f"{100 * d['outcomes'][oid]['ci95'][0]:+.1f} to "
                    f"{100 * d['outcomes'][oid]['ci95'][1]:+.1f}[/dim]"
                    for d in diffs.values()
                ],
            )
        console.print(table)

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
        console.print("Charts: " + ", ".join(str(c) for c in charts))

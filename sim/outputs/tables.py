"""Rich tables of a result for the terminal."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from rich.console import Console
from rich.markup import escape as esc
from rich.table import Table

from sim import __version__
from sim.results import Results


def _pct(x: float) -> str:
    return f"{100 * x:.1f}%"


def _num(x: float) -> str:
    return f"{x:,.2f}" if abs(x) < 1e5 else f"{x:,.0f}"


def print_run(
    results: Results,
    charts: list[Path],
    overrides: Mapping[str, float],
    console: Console | None = None,
) -> None:
    """The outcome table and the distributions of steps, peak rung, state and payoffs."""
    console = console or Console()
    m = results.model
    s = m.scenario
    console.print(f"[bold]{esc(s.title)}[/bold]  ({s.id})")
    settings = ", ".join(f"{k}={v:g}" for k, v in overrides.items()) or "scenario defaults"
    if results.exact:
        console.print(
            f"exact solution (no sampling error), parameters: {settings}; "
            f"sha256 {m.sha256[:12]}, escalation-sim {__version__}"
        )
        _print_exact_size(results, console)
    else:
        console.print(
            f"{results.runs:,} runs, seed {results.seed}, parameters: {settings}; "
            f"sha256 {m.sha256[:12]}, escalation-sim {__version__}"
        )
    if results.precision:
        pr = results.precision
        state = "reached" if pr["reached"] else f"NOT reached (cap {pr['cap']:,} runs)"
        console.print(
            f"precision target ±{pr['target']:g} {state}: widest half-width "
            f"{pr['widest_half_width']:.4f}"
        )

    table = Table(title="Outcomes", title_justify="left")
    for col, justify in (
        ("outcome", "left"),
        ("probability", "right"),
        ("95% interval", "right"),
        ("runs", "right"),
    ):
        table.add_column(col, justify=justify)
    lo, hi = results.intervals()
    for i, oid in enumerate(m.outcome_ids):
        if results.exact:
            table.add_row(
                f"{esc(s.outcome_label(oid))} ({oid})",
                _exact_pct(results.probabilities[i]),
                "exact",
                "-",
            )
            continue
        table.add_row(
            f"{esc(s.outcome_label(oid))} ({oid})",
            _pct(results.probabilities[i]),
            f"{_pct(lo[i])} - {_pct(hi[i])}",
            f"{int(results.outcome_counts[i]):,}",
        )
    console.print(table)

    steps = results.steps_summary()
    console.print(
        f"{s.step_label.capitalize()}s to the end: mean {steps['mean']:.1f}, "
        f"5%-50%-95%: {steps['p05']} / {steps['p50']} / {steps['p95']} "
        f"(horizon {m.horizon})"
    )

    table = Table(title="Peak rung", title_justify="left")
    table.add_column("rung")
    table.add_column("share", justify="right")
    for r, name in enumerate(s.ladder):
        share = results.peak_hist[r] / max(results.runs, 1)
        if share:
            table.add_row(esc(f"{r} {name}"), _pct(share))
    console.print(table)

    if m.state_names:
        table = Table(title="Final state", title_justify="left")
        for col in ("variable", "mean", "5%", "median", "95%"):
            table.add_column(col, justify="left" if col == "variable" else "right")
        for name, q in results.state_summary().items():
            table.add_row(name, _num(q["mean"]), _num(q["p05"]), _num(q["p50"]), _num(q["p95"]))
        console.print(table)

    table = Table(title="Payoffs and moves", title_justify="left")
    for col in ("actor", "mean payoff", "95% interval", "moves"):
        table.add_column(col, justify="right" if "payoff" in col or "interval" in col else "left")
    plo, phi = results.payoff_interval()
    shares = results.move_shares()
    for a, actor in enumerate(m.actors):
        moves = ", ".join(f"{k} {_pct(v)}" for k, v in shares.get(actor, {}).items() if v)
        interval = "exact" if results.exact else f"{_num(plo[a])} to {_num(phi[a])}"
        table.add_row(esc(s.actors[actor].label), _num(results.payoff_mean[a]), interval, moves)
    console.print(table)
    if charts:
        console.print("Charts: " + ", ".join(str(c) for c in charts))
    if "exact_check" in results.extra:
        print_exact_check(results, results.extra["exact_check"], console)


def _exact_pct(x: float) -> str:
    return f"{100 * x:.4f}%"


def _print_exact_size(results: Results, console: Console) -> None:
    info = results.extra.get("exact")
    if not info:
        return
    console.print(
        f"reachable states: {info['reachable_states']:,} in all, at most "
        f"{info['max_states']:,} at once ({info['widest_at']}); "
        f"solve time {info['solve_seconds']:.3f} s"
    )


def print_exact_check(results: Results, check: Mapping, console: Console | None = None) -> None:
    """`run --exact-check`: each outcome and mean payoff against the exact value, as z-scores."""
    console = console or Console()
    m = results.model
    s = m.scenario
    table = Table(
        title=f"Exact check ({check['runs']:,} runs against the exact solution, "
        f"{check['reachable_states']:,} reachable states)",
        title_justify="left",
    )
    for col in ("", "Monte Carlo", "exact", "std. error", "z"):
        table.add_column(col, justify="left" if not col else "right")
    for oid, row in check["outcomes"].items():
        table.add_row(
            f"{esc(s.outcome_label(oid))} ({oid})",
            _exact_pct(row["p"]),
            _exact_pct(row["exact"]),
            _exact_pct(row["se"]),
            _z(row["z"]),
        )
    for actor, row in check["payoffs"].items():
        table.add_row(
            f"payoff: {esc(s.actors[actor].label)}",
            f"{row['mean']:,.4f}",
            f"{row['exact']:,.4f}",
            f"{row['se']:,.4f}",
            _z(row["z"]),
        )
    console.print(table)
    worst = check["max_abs_z"]
    verdict = (
        "an outcome the exact solution calls impossible occurred"
        if worst is None
        else f"largest |z| {worst:.2f}" + (" (beyond 5: suspicious)" if worst > 5 else "")
    )
    console.print(f"Exact check: {verdict}")


def _z(z: float | None) -> str:
    return "impossible" if z is None else f"{z:+.2f}"

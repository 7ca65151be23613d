"""The report's sections on what the runs gave: outcomes, payoffs and moves, doctrines compared."""

from __future__ import annotations

from typing import Any

from sim.format.scenario import Scenario
from sim.model.compiled import Model
from sim.outputs.report_html import esc, expr_html, html_table, payoffs_html, section
from sim.outputs.report_text import describe_policy, fmt, pct
from sim.results import Results


def outcomes_section(results: Results) -> str:
    """Each outcome: when it happens, its payoffs, its probability with a 95% interval."""
    m, s = results.model, results.model.scenario
    lo, hi = results.intervals()
    rows = []
    for i, oid in enumerate(m.outcome_ids):
        terminal = s.outcomes.get(oid)
        when = (
            expr_html(terminal.when)
            if terminal is not None
            else f"the horizon ({s.horizon} {esc(s.step_label)}s)"
        )
        pays = payoffs_html(terminal.payoffs) if terminal is not None and terminal.payoffs else ""
        rows.append(
            [
                f"<strong>{esc(s.outcome_label(oid))}</strong> <code>{esc(oid)}</code>",
                when,
                pays,
                pct(results.probabilities[i]),
                f"{pct(lo[i])} – {pct(hi[i])}",
                f"{int(results.outcome_counts[i]):,}",
            ]
        )
    table = html_table(
        ["outcome", "when", "payoffs", "probability", "95% interval", "runs"], rows, num=(3, 4, 5)
    )
    steps = results.steps_summary()
    text = (
        f"<p>{results.runs:,} runs, seed {results.seed}. Conditions are checked after every "
        "move, in this order; the first that holds ends the run. "
        f"{esc(s.step_label.capitalize())}s to the end: mean {steps['mean']:.1f}, "
        f"median {steps['p50']}, 5%–95% {steps['p05']}–{steps['p95']} (horizon {s.horizon}).</p>"
    )
    return section("outcomes", "Outcomes", text + table)


def results_detail(results: Results) -> str:
    """Payoffs and move shares of every actor, and the state at the end of the runs."""
    m, s = results.model, results.model.scenario
    plo, phi = results.payoff_interval()
    shares = results.move_shares()
    rows = []
    for a, actor in enumerate(m.actors):
        moves = ", ".join(f"{esc(k)} {pct(v)}" for k, v in shares.get(actor, {}).items() if v)
        rows.append(
            [
                esc(s.actors[actor].label),
                fmt(results.payoff_mean[a]),
                f"{fmt(plo[a])} to {fmt(phi[a])}",
                moves,
            ]
        )
    body = "<h3>Payoffs and moves</h3>" + html_table(
        ["actor", "mean payoff", "95% interval", "share of its moves"], rows, num=(1, 2)
    )
    if m.state_names:
        rows = [
            [
                f"<code>{esc(name)}</code>",
                fmt(q["mean"]),
                fmt(q["p05"]),
                fmt(q["p50"]),
                fmt(q["p95"]),
            ]
            for name, q in results.state_summary().items()
        ]
        body += "<h3>State at the end of the runs</h3>" + html_table(
            ["variable", "mean", "5%", "median", "95%"], rows, num=(1, 2, 3, 4)
        )
    return body


def comparison_html(
    scenario: Scenario,
    model: Model,
    actor: str,
    comparison: Any,
    runs: int,
    seed: int,
    figures: str,
) -> str:
    """One actor's doctrines side by side: outcome shares and payoffs with their intervals, the
    recommendation, each doctrine in words, then `figures` (HTML) as given."""
    s, a, cols = scenario, model.actor_index(actor), comparison.columns
    named = scenario.alternatives[actor]
    rows = []
    for o, oid in enumerate(model.outcome_ids):
        cells = []
        for col in cols:
            lo, hi = col.results.intervals()
            cells.append(
                f"{pct(col.results.probabilities[o])}<br><span class=muted>"
                f"{pct(lo[o])} – {pct(hi[o])}</span>"
            )
        rows.append([esc(s.outcome_label(oid)), *cells])
    pay = []
    for col in cols:
        plo, phi = col.results.payoff_interval()
        pay.append(
            f"{fmt(col.results.payoff_mean[a])}<br><span class=muted>{fmt(plo[a])} "
            f"to {fmt(phi[a])}</span>"
        )
    rows.append([f"payoff of {esc(s.actors[actor].label)}", *pay])
    table = html_table(
        ["", *[f"<code>{esc(c.name)}</code>" for c in cols]],
        rows,
        num=tuple(range(1, len(cols) + 1)),
    )
    rec = comparison.recommendation()
    doctrines = "".join(
        f"<li><code>{esc(c.name)}</code>: "
        + esc(describe_policy(s, actor, named.get(c.name), model.parameters))
        + "</li>"
        for c in cols
    )
    text = (
        f"<p>{runs:,} runs per doctrine, seed {seed}, common random numbers. The highest "
        f"expected payoff: <code>{esc(rec['best'])}</code> ({fmt(rec['expected_payoff'])})"
        + (
            ""
            if rec.get("separated", True)
            else f", not separable from <code>{esc(rec['runner_up'])}</code> at 95%"
        )
        + f".</p><ul>{doctrines}</ul>"
    )
    return f"<h3>{esc(s.actors[actor].label)}</h3>{text}{table}{figures}"

"""Figures of a comparison: outcome probabilities per column, and risk against reward."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from sim.analysis.compare import Comparison, possessive
from sim.outputs.charts import OUTCOME_COLOURS, _finish, _pyplot


def outcome_bars(comparison: Comparison, path: Path) -> Path:
    plt = _pyplot()
    m = comparison.model
    cols = comparison.columns
    n_out = len(m.outcome_ids)
    width = 0.8 / n_out
    x = np.arange(len(cols))
    fig, ax = plt.subplots(figsize=(max(8, 1.6 * len(cols) + 3), 5))
    for o, oid in enumerate(m.outcome_ids):
        p = np.array([c.results.probabilities[o] for c in cols])
        lo = np.array([c.results.intervals()[0][o] for c in cols])
        hi = np.array([c.results.intervals()[1][o] for c in cols])
        ax.bar(
            x + (o - (n_out - 1) / 2) * width,
            p,
            width,
            yerr=[p - lo, hi - p],
            capsize=2,
            label=m.scenario.outcome_label(oid),
            color=OUTCOME_COLOURS[o % len(OUTCOME_COLOURS)],
        )
    ax.set_xticks(x, [c.name.replace("_", "\n") for c in cols], fontsize=9)
    ax.yaxis.set_major_formatter(plt.FuncFormatter(lambda v, _: f"{v:.0%}"))
    ax.set_ylabel("Probability (bars: 95% Wilson interval)")
    actor = m.scenario.actors[comparison.actor].label
    what = "first move" if comparison.mode == "first-move" else "doctrine"
    ax.set_title(
        f"{m.scenario.title}\nOutcomes by {possessive(actor)} {what} (common random numbers)"
    )
    ax.legend(fontsize=8, frameon=False, loc="center left", bbox_to_anchor=(1.01, 0.5))
    return _finish(fig, comparison.columns[0].results, path)


def risk_reward(comparison: Comparison, path: Path) -> Path:
    plt = _pyplot()
    m = comparison.model
    a = comparison.actor_index()
    worst = comparison.worst_outcome()
    o = m.outcome_ids.index(worst)
    fig, ax = plt.subplots(figsize=(8, 5.5))
    for i, col in enumerate(comparison.columns):
        r = col.results
        p = r.probabilities[o]
        lo, hi = r.intervals()
        plo, phi = r.payoff_interval()
        y = r.payoff_mean[a]
        ax.errorbar(
            p,
            y,
            xerr=[[p - lo[o]], [hi[o] - p]],
            yerr=[[y - plo[a]], [phi[a] - y]],
            fmt="o",
            capsize=3,
            color=OUTCOME_COLOURS[i % len(OUTCOME_COLOURS)],
        )
        ax.annotate(col.name, (p, y), textcoords="offset points", xytext=(6, 6), fontsize=9)
    if comparison.max_risk:
        ax.axvline(
            comparison.max_risk[1],
            color="#b22222",
            linestyle="--",
            linewidth=1,
            label=f"risk limit {comparison.max_risk[1]:.0%}",
        )
        ax.legend(fontsize=8, frameon=False)
    ax.xaxis.set_major_formatter(plt.FuncFormatter(lambda v, _: f"{v:.1%}"))
    actor = m.scenario.actors[comparison.actor].label
    ax.set_xlabel(f"Probability of {m.scenario.outcome_label(worst)}")
    ax.set_ylabel(f"{possessive(actor)} expected payoff")
    ax.set_title(
        f"{m.scenario.title}\nRisk and reward of {possessive(actor)} choices (95% intervals)"
    )
    return _finish(fig, comparison.columns[0].results, path)


def write_compare_charts(comparison: Comparison, out_dir: Path) -> list[Path]:
    """Grouped outcome bars and the risk-reward scatter, written into `out_dir`."""
    stem = f"compare_{comparison.actor}_{comparison.mode.replace('-', '_')}"
    return [
        outcome_bars(comparison, Path(out_dir) / f"{stem}_outcomes.png"),
        risk_reward(comparison, Path(out_dir) / f"{stem}_risk_reward.png"),
    ]

"""Figures of a comparison: outcome probabilities per column, and risk against reward.

Like every chart of `sim.outputs.charts`: a `Figure` built without pyplot, drawn into the
caller's Axes with `ax=`; `write_compare_charts` saves both as PNG files.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from sim.analysis.compare import Comparison, possessive
from sim.outputs.charts import (
    OUTCOME_COLOURS,
    PLAIN,
    RUN_DPI,
    figure_and_axes,
    finish,
    footer,
    percent,
    plain_legend,
    save_figure,
)

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure


def outcome_bars(comparison: Comparison, *, ax: Axes | None = None) -> Figure:
    """Each column's outcome probabilities side by side, with 95% intervals."""
    m = comparison.model
    cols = comparison.columns
    n_out = len(m.outcome_ids)
    width = 0.8 / n_out
    x = np.arange(len(cols))
    fig, ax, own = figure_and_axes(ax, (max(8, 1.6 * len(cols) + 3), 5))
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
    ax.set_xticks(x, [c.name.replace("_", "\n") for c in cols], fontsize=9, **PLAIN)
    ax.yaxis.set_major_formatter(percent())
    ax.set_ylabel("Probability (bars: 95% Wilson interval)")
    actor = m.scenario.actors[comparison.actor].label
    what = "first move" if comparison.mode == "first-move" else "doctrine"
    ax.set_title(
        f"{m.scenario.title}\nOutcomes by {possessive(actor)} {what} (common random numbers)",
        **PLAIN,
    )
    plain_legend(
        ax.legend(fontsize=8, frameon=False, loc="center left", bbox_to_anchor=(1.01, 0.5))
    )
    return finish(fig, footer(comparison.columns[0].results)) if own else fig


def risk_reward(comparison: Comparison, *, ax: Axes | None = None) -> Figure:
    """Each column's probability of the worst outcome against the actor's expected payoff."""
    m = comparison.model
    a = comparison.actor_index()
    worst = comparison.worst_outcome()
    o = m.outcome_ids.index(worst)
    fig, ax, own = figure_and_axes(ax, (8, 5.5))
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
        ax.annotate(
            col.name, (p, y), textcoords="offset points", xytext=(6, 6), fontsize=9, **PLAIN
        )
    if comparison.max_risk:
        ax.axvline(
            comparison.max_risk[1],
            color="#b22222",
            linestyle="--",
            linewidth=1,
            label=f"risk limit {comparison.max_risk[1]:.0%}",
        )
        plain_legend(ax.legend(fontsize=8, frameon=False))
    ax.xaxis.set_major_formatter(percent(1))
    actor = m.scenario.actors[comparison.actor].label
    ax.set_xlabel(f"Probability of {m.scenario.outcome_label(worst)}", **PLAIN)
    ax.set_ylabel(f"{possessive(actor)} expected payoff", **PLAIN)
    ax.set_title(
        f"{m.scenario.title}\nRisk and reward of {possessive(actor)} choices (95% intervals)",
        **PLAIN,
    )
    return finish(fig, footer(comparison.columns[0].results)) if own else fig


def write_compare_charts(comparison: Comparison, out_dir: str | Path) -> list[Path]:
    """Grouped outcome bars and the risk-reward scatter, written into `out_dir` as PNG files."""
    stem = f"compare_{comparison.actor}_{comparison.mode.replace('-', '_')}"
    return [
        save_figure(outcome_bars(comparison), Path(out_dir) / f"{stem}_outcomes.png", RUN_DPI),
        save_figure(risk_reward(comparison), Path(out_dir) / f"{stem}_risk_reward.png", RUN_DPI),
    ]

"""Figures of a comparison: outcome probabilities per column, and risk against reward.

Like every chart of `sim.outputs.charts`: a `Figure` built without pyplot, drawn into the
caller's Axes with `ax=`; outcomes keep the colours of their kind (`sim.outputs.palette`), the
legend stays clear of the data, and `write_compare_charts` saves both in the chosen format.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from sim.analysis.compare import Comparison, possessive
from sim.outputs.charts import (
    PLAIN,
    ChartOptions,
    current_chart_options,
    figure_and_axes,
    finish,
    footer,
    outside_legend,
    percent,
    save_figure,
)
from sim.outputs.palette import BLACK, outcome_colours, series_colours

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
    palette = outcome_colours(m.scenario, m.outcome_ids)
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
            color=palette[oid],
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
    outside_legend(ax)
    return finish(fig, footer(comparison.columns[0].results)) if own else fig


def risk_reward(comparison: Comparison, *, ax: Axes | None = None) -> Figure:
    """Each column's probability of the worst outcome against the actor's expected payoff."""
    m = comparison.model
    a = comparison.actor_index()
    worst = comparison.worst_outcome()
    o = m.outcome_ids.index(worst)
    fig, ax, own = figure_and_axes(ax, (8, 5.5))
    colours = series_colours(comparison.columns)
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
            color=colours[i],
        )
        ax.annotate(
            col.name, (p, y), textcoords="offset points", xytext=(6, 6), fontsize=9, **PLAIN
        )
    if comparison.max_risk:
        ax.axvline(
            comparison.max_risk[1],
            color=BLACK,
            linestyle="--",
            linewidth=1,
            label=f"risk limit {comparison.max_risk[1]:.0%}",
        )
        outside_legend(ax, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    ax.xaxis.set_major_formatter(percent())
    actor = m.scenario.actors[comparison.actor].label
    ax.set_xlabel(f"Probability of {m.scenario.outcome_label(worst)}", **PLAIN)
    ax.set_ylabel(f"{possessive(actor)} expected payoff", **PLAIN)
    ax.set_title(
        f"{m.scenario.title}\nRisk and reward of {possessive(actor)} choices (95% intervals)",
        **PLAIN,
    )
    return finish(fig, footer(comparison.columns[0].results)) if own else fig


def write_compare_charts(
    comparison: Comparison, out_dir: str | Path, options: ChartOptions | None = None
) -> list[Path]:
    """Grouped outcome bars and the risk-reward scatter, written into `out_dir` in the options'
    format and resolution (default: `current_chart_options()`, PNG at 150 dpi)."""
    options = options or current_chart_options()
    stem = f"compare_{comparison.actor}_{comparison.mode.replace('-', '_')}"
    return [
        save_figure(draw(comparison), Path(out_dir) / options.name(f"{stem}_{name}"), options.dpi)
        for name, draw in (("outcomes.png", outcome_bars), ("risk_reward.png", risk_reward))
    ]

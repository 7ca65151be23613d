"""Figures of a sweep: outcome lines (one parameter), a heatmap (two), marginal effects (more),
and Sobol indices (`--method sobol`).

Like every chart of `sim.outputs.charts`: a `Figure` built without pyplot (no backend switch, no
rcParams change), drawn into the caller's Axes with `ax=` (the marginals, small multiples, into a
caller's Figure or SubFigure with `fig=`). A figure of our own carries a footer with the scenario
id, design, runs, seed, scenario hash, version and fixed `--set` values that reproduce it;
`write_sweep_charts` saves them in the chosen format through a temporary name renamed into place.
Outcomes keep the colours of their kind (`sim.outputs.palette`); an outcome that never happens
at any point is left out of the lines and named in the legend's title.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from sim import __version__
from sim.analysis.sweep import SweepResult
from sim.outputs.charts import (
    PLAIN,
    RUN_DPI,
    ChartOptions,
    current_chart_options,
    figure_and_axes,
    finish,
    integer_ticks,
    new_figure,
    note,
    outside_legend,
    overrides_line,
    percent,
    plain_legend,
    root_figure,
    save_figure,
)
from sim.outputs.palette import BLUE, SKY_BLUE, outcome_colours

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure, SubFigure

MARGINAL_BINS = 8
SWEEP_DPI = RUN_DPI
"""Default resolution of the sweep chart files (the same as every chart's, `--dpi`)."""


def footer(result: SweepResult) -> str:
    spec = result.spec
    sha = result.model.sha256[:12]
    text = (
        f"{result.scenario.id} | {spec.design.method} sweep, {len(spec.design.points):,} points x "
        f"{spec.runs:,} runs, seed {spec.seed} | sha256 {sha} | escalation-sim {__version__}"
    )
    settings = overrides_line(dict(spec.fixed))
    return f"{text}\n{settings}" if settings else text


def _seen(result: SweepResult) -> tuple[list[str], list[str]]:
    """The outcomes that happen at some point of the sweep, and those that never do."""
    seen, never = [], []
    for oid in result.model.outcome_ids:
        (seen if np.nanmax(result.column(f"p_{oid}"), initial=0) > 0 else never).append(oid)
    return seen, never


def _legend_title(result: SweepResult, never: list[str]) -> str | None:
    if not never:
        return None
    return "never at any point: " + ", ".join(result.scenario.outcome_label(o) for o in never)


def metric_column(result: SweepResult, metric: str | None) -> str:
    """The column of `--metric` (an outcome id or a metric column); ValueError if unknown."""
    outcomes = result.model.outcome_ids
    if metric is None:
        return f"p_{outcomes[0]}"
    if metric in outcomes:
        return f"p_{metric}"
    if metric in result.metrics():
        return metric
    choices = ", ".join([*outcomes, *[m for m in result.metrics() if not m.startswith("p_")]])
    raise ValueError(f"--metric: unknown metric '{metric}' (choose from {choices})")


def metric_label(result: SweepResult, column: str) -> str:
    s, m = result.scenario, result.model
    if column.startswith("p_") and column[2:] in m.outcome_ids:
        return f"P({s.outcome_label(column[2:])})"
    if column.startswith("payoff_") and column[7:] in m.actors:
        return f"Mean payoff of {s.actors[column[7:]].label}"
    return {"steps_mean": f"Mean {s.step_label}s to the end", "peak_rung_mean": "Mean peak rung"}[
        column
    ]


def _param_label(result: SweepResult, name: str) -> str:
    param = result.scenario.parameters[name]
    return param.label or name


def _is_probability(column: str) -> bool:
    return column.startswith("p_")


def line_chart(result: SweepResult, *, ax: Axes | None = None) -> Figure:
    """Each outcome's probability against the (first) varied parameter, with 95% interval bands."""
    name = result.spec.design.names[0]
    x = result.column(name)
    order = np.argsort(x, kind="stable")
    fig, ax, own = figure_and_axes(ax, (9, 5))
    palette = outcome_colours(result.scenario, result.model.outcome_ids)
    seen, never = _seen(result)
    for oid in seen:
        colour = palette[oid]
        p, lo, hi = (result.column(f"p_{oid}{s}")[order] for s in ("", "_lo", "_hi"))
        ax.fill_between(x[order], lo, hi, color=colour, alpha=0.2, linewidth=0)
        ax.plot(
            x[order],
            p,
            color=colour,
            marker="o",
            markersize=3,
            label=result.scenario.outcome_label(oid),
        )
    ax.set_ylim(0, None)
    ax.yaxis.set_major_formatter(percent())
    integer_ticks(ax.xaxis, x)
    ax.set_xlabel(_param_label(result, name), **PLAIN)
    ax.set_ylabel("Probability (bands: 95% Wilson interval)")
    ax.set_title(f"{result.scenario.title}\nHow the crisis ends as {name} changes", **PLAIN)
    legend = outside_legend(ax, title=_legend_title(result, never), title_fontsize=8)
    if legend is not None:
        legend.get_title().set_parse_math(False)
    ax.grid(alpha=0.3)
    return finish(fig, footer(result)) if own else fig


def heatmap_chart(
    result: SweepResult, metric: str | None = None, *, ax: Axes | None = None
) -> Figure:
    """A metric (an outcome id, or a column such as `p_war` or `payoff_us`; default the first
    outcome) over the two varied parameters, with a colour bar."""
    return _heatmap(result, metric_column(result, metric), ax)


def _heatmap(result: SweepResult, column: str, ax: Axes | None) -> Figure:
    design = result.spec.design
    if len(design.names) != 2:
        raise ValueError(f"a heatmap needs a sweep of two parameters, not {len(design.names)}")
    ny_name, nx_name = design.names
    x, y, z = result.column(nx_name), result.column(ny_name), result.column(column)
    prob = _is_probability(column)
    fig, ax, own = figure_and_axes(ax, (8, 6))
    kwargs = {"cmap": "YlOrRd" if prob else "viridis"}
    if design.method == "grid":
        ny, nx = design.varies[0].n or 1, design.varies[1].n or 1
        xs, ys = x[:nx], y[::nx]
        grid = z.reshape(ny, nx)
        mesh = ax.pcolormesh(_edges(xs), _edges(ys), grid, **kwargs)
        if nx * ny <= 144:
            top = np.nanmax(grid) if grid.size else 0
            for (i, j), v in np.ndenumerate(grid):
                text = (f"{v:.1%}" if nx <= 8 else f"{v:.0%}") if prob else f"{v:.3g}"
                colour = "white" if top and v > 0.6 * top else "black"
                ax.text(xs[j], ys[i], text, ha="center", va="center", fontsize=8, color=colour)
        for axis, levels in ((ax.xaxis, xs), (ax.yaxis, ys)):
            if len(levels) <= 12:  # a tick on each grid level, not between them
                axis.set_ticks(levels, [f"{v:.3g}" for v in levels])
    else:
        mesh = ax.scatter(x, y, c=z, s=30, edgecolors="none", **kwargs)
    if len(z) and np.nanmin(z) == np.nanmax(z):
        shown = f"{z[0]:.1%}" if prob else f"{z[0]:.3g}"
        note(ax, f"{metric_label(result, column)} is {shown} at every point")
    if design.method != "grid":
        integer_ticks(ax.xaxis, x)
        integer_ticks(ax.yaxis, y)
    bar = ax.figure.colorbar(mesh, ax=ax)
    bar.set_label(metric_label(result, column), **PLAIN)
    if prob:
        bar.ax.yaxis.set_major_formatter(percent())
    ax.set_xlabel(_param_label(result, nx_name), **PLAIN)
    ax.set_ylabel(_param_label(result, ny_name), **PLAIN)
    ax.set_title(
        f"{result.scenario.title}\n{metric_label(result, column)} by {ny_name} and {nx_name}",
        **PLAIN,
    )
    return finish(fig, footer(result)) if own else fig


def _edges(centres: np.ndarray) -> np.ndarray:
    """Cell edges around grid levels (a single level gets a unit-wide cell)."""
    if len(centres) == 1:
        return np.array([centres[0] - 0.5, centres[0] + 0.5])
    mid = (centres[1:] + centres[:-1]) / 2
    return np.concatenate([[2 * centres[0] - mid[0]], mid, [2 * centres[-1] - mid[-1]]])


def marginal_effects(result: SweepResult, name: str, column: str) -> tuple[np.ndarray, np.ndarray]:
    """Mean of `column` at each level of `name` (grid) or in quantile bins of it (lhs, sobol)."""
    x, z = result.column(name), result.column(column)
    if result.spec.design.method == "grid":
        levels = np.unique(x)
        return levels, np.array([z[x == v].mean() for v in levels])
    edges = np.quantile(x, np.linspace(0, 1, MARGINAL_BINS + 1))
    which = np.clip(np.searchsorted(edges, x, side="right") - 1, 0, MARGINAL_BINS - 1)
    keep = [b for b in range(MARGINAL_BINS) if np.any(which == b)]
    return (
        np.array([x[which == b].mean() for b in keep]),
        np.array([z[which == b].mean() for b in keep]),
    )


def marginals_chart(result: SweepResult, *, fig: Figure | SubFigure | None = None) -> Figure:
    """Small multiples: each outcome's mean probability against each parameter in turn (drawn
    into `fig`, a caller's Figure or SubFigure, if given)."""
    names = result.spec.design.names
    cols = min(3, len(names))
    rows = -(-len(names) // cols)
    own = fig is None
    target = new_figure((4.2 * cols, 3.3 * rows + 0.8)) if fig is None else fig
    axes = target.subplots(rows, cols, squeeze=False, sharey=True)
    palette = outcome_colours(result.scenario, result.model.outcome_ids)
    seen, never = _seen(result)
    for k, ax in enumerate(axes.flat):
        if k >= len(names):
            ax.axis("off")
            continue
        for oid in seen:
            xs, ys = marginal_effects(result, names[k], f"p_{oid}")
            ax.plot(
                xs,
                ys,
                marker="o",
                markersize=3,
                color=palette[oid],
                label=result.scenario.outcome_label(oid),
            )
        integer_ticks(ax.xaxis, result.column(names[k]))
        ax.set_xlabel(_param_label(result, names[k]), **PLAIN)
        ax.yaxis.set_major_formatter(percent())
        ax.grid(alpha=0.3)
    for ax in axes[:, 0]:
        ax.set_ylabel("Mean probability")
    handles, labels = axes.flat[0].get_legend_handles_labels()
    legend = target.legend(
        handles,
        labels,
        loc="upper center",
        ncol=min(5, len(labels)),
        fontsize=8,
        frameon=False,
        bbox_to_anchor=(0.5, 0.95),
        title=_legend_title(result, never),
        title_fontsize=8,
    )
    plain_legend(legend)
    legend.get_title().set_parse_math(False)
    target.suptitle(
        f"{result.scenario.title}: one-parameter effects (averaged over the others)",
        fontsize=11,
        **PLAIN,
    )
    if own:
        finish(target, footer(result), rect=(0, 0.03, 1, 0.9))
    return root_figure(target)


def sobol_chart(
    result: SweepResult, metric: str | None = None, *, ax: Axes | None = None
) -> Figure:
    """First- and total-order Sobol indices of one metric (as for `heatmap_chart`), with 95%
    bootstrap intervals; the sweep must have used `--method sobol`."""
    return _sobol(result, metric_column(result, metric), ax)


def _sobol(result: SweepResult, column: str, ax: Axes | None) -> Figure:
    if result.sobol is None:
        raise ValueError("Sobol indices need a sweep with method 'sobol'")
    rows = [r for r in result.sobol if r["metric"] == column]
    names = [r["parameter"] for r in rows]
    y = np.arange(len(names))[::-1]
    fig, ax, own = figure_and_axes(ax, (8, 0.55 * len(names) + 2))
    for shift, key, colour, label in (
        (0.2, "S1", SKY_BLUE, "first order (S1)"),
        (-0.2, "ST", BLUE, "total order (ST)"),
    ):
        values = np.array([r[key] for r in rows], dtype=float)
        conf = np.array([r[f"{key}_conf"] for r in rows], dtype=float)
        ax.barh(
            y + shift,
            np.nan_to_num(values),
            height=0.38,
            xerr=np.nan_to_num(conf),
            capsize=3,
            color=colour,
            alpha=0.85,
            label=label,
        )
    ax.set_yticks(y, [_param_label(result, n) for n in names], **PLAIN)
    ax.axvline(0, color="#999999", linewidth=0.8)
    ax.set_xlabel("Share of the variance (bars: 95% bootstrap interval)")
    ax.set_title(
        f"{result.scenario.title}\nWhat drives {metric_label(result, column)}: Sobol indices",
        **PLAIN,
    )
    if rows and all(np.isnan(float(r["S1"])) and np.isnan(float(r["ST"])) for r in rows):
        note(ax, f"{metric_label(result, column)} does not vary over this design: no indices")
    outside_legend(ax, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    return finish(fig, footer(result)) if own else fig


def sweep_charts(result: SweepResult, metric: str | None = None) -> dict[str, Figure]:
    """The figures `escalation sweep` writes, by file name: lines (one parameter), a heatmap
    (two) or marginal effects (more); Sobol bars for a sobol design."""
    column = metric_column(result, metric)
    names = result.spec.design.names
    charts: dict[str, Figure] = {}
    if len(names) == 1:
        charts["sweep_lines.png"] = line_chart(result)
    elif len(names) == 2:
        charts[f"sweep_heatmap_{column}.png"] = _heatmap(result, column, None)
    else:
        charts["sweep_marginals.png"] = marginals_chart(result)
    if result.sobol is not None:
        charts[f"sweep_sobol_{column}.png"] = _sobol(result, column, None)
    return charts


def write_sweep_charts(
    result: SweepResult,
    out_dir: str | Path,
    metric: str | None = None,
    options: ChartOptions | None = None,
) -> list[Path]:
    """The `sweep_charts` figures, written into `out_dir` in the options' format and resolution
    (default: `current_chart_options()`, PNG at 150 dpi)."""
    options = options or current_chart_options()
    out_dir = Path(out_dir)
    return [
        save_figure(fig, out_dir / options.name(name), options.dpi)
        for name, fig in sweep_charts(result, metric).items()
    ]

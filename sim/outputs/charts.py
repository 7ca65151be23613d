"""Matplotlib figures of a result: outcomes, rung occupancy over time, steps to the end, peak rung.

Every chart function returns a `matplotlib.figure.Figure` built with the object-oriented API:
no pyplot, no backend switch, no change to `matplotlib.rcParams`, so a notebook's own pyplot
state is untouched. With `ax=` it draws into the caller's Axes and returns that Axes' figure
(without the footer or layout changes, which belong to the caller). Without it, it makes a
figure of its own carrying a footer with the scenario id, seed, runs, scenario hash and version
that reproduce it. `write_run_charts` saves the four `run` charts through `sim.files.write_atomic`,
so no file is ever left half-written.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from sim import __version__
from sim.files import write_atomic
from sim.results import Results

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

OUTCOME_COLOURS = ["#4c4c4c", "#8c564b", "#1f77b4", "#2ca02c", "#9467bd", "#e377c2", "#17becf"]
RUN_DPI = 110
"""Resolution of the `run`, `exact` and `compare` PNG files."""
PLAIN = {"parse_math": False}
"""Scenario text may hold '$': every text drawn from it is shown as written, never as mathtext
(set on each text, not through rcParams)."""


def new_figure(figsize: tuple[float, float]) -> Figure:
    """A figure outside pyplot (a plain `Figure`: no backend, no global state; savefig works)."""
    from matplotlib.figure import Figure

    return Figure(figsize=figsize)


def figure_and_axes(ax: Axes | None, figsize: tuple[float, float]) -> tuple[Figure, Axes, bool]:
    """The caller's Axes and its figure, or a new figure with one Axes; the flag says whether
    the figure is ours (so we may add the footer and lay it out)."""
    if ax is not None:
        return root_figure(ax), ax, False
    fig = new_figure(figsize)
    return fig, fig.subplots(), True


def root_figure(artist: Any) -> Figure:
    """The top-level Figure of an Axes or SubFigure (the one that can be saved)."""
    try:
        return artist.get_figure(root=True)  # matplotlib >= 3.10
    except TypeError:
        fig = artist.figure
        while getattr(fig, "figure", fig) is not fig:
            fig = fig.figure
        return fig


def percent(decimals: int = 0):
    """A tick formatter: 0.25 -> 25% (or 25.0% with decimals=1)."""
    from matplotlib.ticker import FuncFormatter

    return FuncFormatter(lambda v, _: f"{v:.{decimals}%}")


def colormap(name: str):
    """A registered colormap, without pyplot."""
    import matplotlib

    return matplotlib.colormaps[name]


def plain_legend(legend: Any) -> Any:
    """A legend whose labels (scenario text) are shown as written."""
    if legend is not None:
        for text in legend.get_texts():
            text.set_parse_math(False)
    return legend


def footer(results: Results) -> str:
    m = results.model
    runs = "exact" if results.seed is None else f"{results.runs:,} runs, seed {results.seed}"
    return f"{m.scenario.id} | {runs} | sha256 {m.sha256[:12]} | escalation-sim {__version__}"


def finish(fig: Figure, text: str, rect: tuple[float, float, float, float] = (0, 0.03, 1, 1)):
    """The footer and the layout of a figure we made ourselves."""
    fig.text(0.99, 0.005, text, ha="right", va="bottom", fontsize=7, color="#666666", **PLAIN)
    fig.tight_layout(rect=rect)
    return fig


def save_figure(fig: Figure, path: str | Path, dpi: int = RUN_DPI) -> Path:
    """Write the figure as PNG through a temporary file renamed into place (never half-written)."""
    return write_atomic(Path(path), lambda f: fig.savefig(f, format="png", dpi=dpi))


def outcome_chart(results: Results, *, ax: Axes | None = None) -> Figure:
    """How the crisis ends: each outcome's probability with its 95% interval, as bars."""
    m = results.model
    labels = [m.scenario.outcome_label(o) for o in m.outcome_ids]
    p = results.probabilities
    lo, hi = results.intervals()
    fig, ax, own = figure_and_axes(ax, (8, 0.6 * len(labels) + 1.8))
    y = np.arange(len(labels))[::-1]
    colours = [OUTCOME_COLOURS[i % len(OUTCOME_COLOURS)] for i in range(len(labels))]
    ax.barh(y, p, xerr=[p - lo, hi - p], color=colours, capsize=4, alpha=0.85)
    for yi, pi, hii in zip(y, p, hi):
        ax.text(hii + 0.01, yi, f"{pi:.1%}", va="center", fontsize=9)
    ax.set_yticks(y, labels, **PLAIN)
    ax.set_xlim(0, min(1.0, max(hi.max() * 1.25, 0.05)))
    ax.xaxis.set_major_formatter(percent())
    ax.set_xlabel("Probability (bars: 95% Wilson interval)")
    ax.set_title(f"{m.scenario.title}\nHow the crisis ends", **PLAIN)
    return finish(fig, footer(results)) if own else fig


def occupancy_chart(results: Results, *, ax: Axes | None = None) -> Figure:
    """Where the runs are, step by step: the share at each rung and the share already ended."""
    m = results.model
    total = max(results.runs, 1)
    steps = np.arange(m.horizon + 1)
    active = results.occupancy / total
    ended_counts = results.ended.copy()
    ended_counts[m.horizon, m.end_outcome] -= results.occupancy[m.horizon].sum()
    ended = np.cumsum(ended_counts, axis=0) / total
    cmap = colormap("YlOrRd")
    rung_colours = [cmap(0.15 + 0.8 * r / max(m.n_rungs - 1, 1)) for r in range(m.n_rungs)]
    fig, ax, own = figure_and_axes(ax, (9, 5))
    layers = [ended[:, o] for o in range(len(m.outcome_ids))] + [
        active[:, r] for r in range(m.n_rungs)
    ]
    labels = [f"ended: {m.scenario.outcome_label(o)}" for o in m.outcome_ids]
    labels += [f"rung {r}: {name}" for r, name in enumerate(m.scenario.ladder)]
    colours = [OUTCOME_COLOURS[i % len(OUTCOME_COLOURS)] for i in range(len(m.outcome_ids))]
    colours += rung_colours
    keep = [i for i, layer in enumerate(layers) if layer.any()]
    ax.stackplot(
        steps,
        *[layers[i] for i in keep],
        labels=[labels[i] for i in keep],
        colors=[colours[i] for i in keep],
        step="post",
        alpha=0.9,
    )
    ax.set_xlim(0, m.horizon)
    ax.set_ylim(0, 1)
    ax.yaxis.set_major_formatter(percent())
    ax.set_xlabel(f"{m.scenario.step_label.capitalize()} (0 = start)", **PLAIN)
    ax.set_ylabel("Share of runs")
    ax.set_title(
        f"{m.scenario.title}\nWhere the runs are, {m.scenario.step_label} by "
        f"{m.scenario.step_label}",
        **PLAIN,
    )
    plain_legend(
        ax.legend(loc="center left", bbox_to_anchor=(1.01, 0.5), fontsize=8, frameon=False)
    )
    return finish(fig, footer(results)) if own else fig


def steps_chart(results: Results, *, ax: Axes | None = None) -> Figure:
    """Time to the end: the share of runs ending in each step, stacked by outcome."""
    m = results.model
    total = max(results.runs, 1)
    steps = np.arange(m.horizon + 1)
    fig, ax, own = figure_and_axes(ax, (9, 4.5))
    bottom = np.zeros(m.horizon + 1)
    for o, oid in enumerate(m.outcome_ids):
        share = results.ended[:, o] / total
        if share.any():
            ax.bar(
                steps,
                share,
                bottom=bottom,
                width=0.85,
                label=m.scenario.outcome_label(oid),
                color=OUTCOME_COLOURS[o % len(OUTCOME_COLOURS)],
            )
            bottom += share
    ax.set_xlim(0.3, m.horizon + 0.7)
    ax.yaxis.set_major_formatter(percent())
    ax.set_xlabel(f"{m.scenario.step_label.capitalize()} in which the run ended", **PLAIN)
    ax.set_ylabel("Share of runs")
    summary = results.steps_summary()
    ax.set_title(
        f"{m.scenario.title}\nTime to the end (median {summary['p50']}, "
        f"mean {summary['mean']:.1f} {m.scenario.step_label}s)",
        **PLAIN,
    )
    plain_legend(ax.legend(fontsize=8, frameon=False))
    return finish(fig, footer(results)) if own else fig


def peak_chart(results: Results, *, ax: Axes | None = None) -> Figure:
    """How high the crisis climbs: the share of runs whose highest rung is each rung."""
    m = results.model
    share = results.peak_hist / max(results.runs, 1)
    fig, ax, own = figure_and_axes(ax, (9, 4.5))
    cmap = colormap("YlOrRd")
    x = np.arange(m.n_rungs)
    ax.bar(x, share, color=[cmap(0.15 + 0.8 * r / max(m.n_rungs - 1, 1)) for r in x])
    for xi, s in zip(x, share):
        if s:
            ax.text(xi, s + 0.01, f"{s:.1%}", ha="center", fontsize=9)
    ax.set_xticks(
        x, [name.replace(" ", "\n", 1) for name in m.scenario.ladder], fontsize=8, **PLAIN
    )
    ax.set_ylim(0, min(1.0, share.max() * 1.2 + 0.02))
    ax.yaxis.set_major_formatter(percent())
    ax.set_xlabel("Highest rung reached")
    ax.set_ylabel("Share of runs")
    ax.set_title(
        f"{m.scenario.title}\nHow high the crisis climbs "
        f"(mean peak rung {results.peak_mean():.2f})",
        **PLAIN,
    )
    return finish(fig, footer(results)) if own else fig


RUN_CHARTS: dict[str, Callable[..., Figure]] = {
    "outcomes.png": outcome_chart,
    "rung_occupancy.png": occupancy_chart,
    "steps.png": steps_chart,
    "peak_rung.png": peak_chart,
}
"""The `run` charts: file name -> the function drawing it."""


def write_run_charts(results: Results, out_dir: str | Path) -> list[Path]:
    """The four `run` charts, written into `out_dir` as PNG files."""
    return [
        save_figure(draw(results), Path(out_dir) / name, RUN_DPI)
        for name, draw in RUN_CHARTS.items()
    ]

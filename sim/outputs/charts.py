"""Matplotlib figures of a result: outcomes, rung occupancy over time, steps to the end, peak rung.

Every figure carries a footer with the scenario id, seed, runs, scenario hash and version that
reproduce it. Files are written to a temporary name and renamed, so none is left half-written.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import numpy as np

from sim import __version__
from sim.files import readable
from sim.results import Results

OUTCOME_COLOURS = ["#4c4c4c", "#8c564b", "#1f77b4", "#2ca02c", "#9467bd", "#e377c2", "#17becf"]


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    matplotlib.rcParams["text.parse_math"] = False  # scenario text may hold '$'
    import matplotlib.pyplot as plt

    return plt


def footer(results: Results) -> str:
    m = results.model
    runs = "exact" if results.seed is None else f"{results.runs:,} runs, seed {results.seed}"
    return f"{m.scenario.id} | {runs} | sha256 {m.sha256[:12]} | escalation-sim {__version__}"


def _finish(fig, results: Results, path: Path) -> Path:
    fig.text(0.99, 0.005, footer(results), ha="right", va="bottom", fontsize=7, color="#666666")
    fig.tight_layout(rect=(0, 0.03, 1, 1))
    return save_figure(fig, path, dpi=110)


def save_figure(fig, path: Path, dpi: int) -> Path:
    """Write the figure to a temporary file, then rename it into place (never half-written)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}-", suffix=".png", dir=path.parent)
    os.close(fd)
    readable(tmp)
    try:
        fig.savefig(tmp, dpi=dpi)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
        _pyplot().close(fig)
    return path


def outcome_chart(results: Results, path: Path) -> Path:
    plt = _pyplot()
    m = results.model
    labels = [m.scenario.outcome_label(o) for o in m.outcome_ids]
    p = results.probabilities
    lo, hi = results.intervals()
    fig, ax = plt.subplots(figsize=(8, 0.6 * len(labels) + 1.8))
    y = np.arange(len(labels))[::-1]
    colours = [OUTCOME_COLOURS[i % len(OUTCOME_COLOURS)] for i in range(len(labels))]
    ax.barh(y, p, xerr=[p - lo, hi - p], color=colours, capsize=4, alpha=0.85)
    for yi, pi, hii in zip(y, p, hi):
        ax.text(hii + 0.01, yi, f"{pi:.1%}", va="center", fontsize=9)
    ax.set_yticks(y, labels)
    ax.set_xlim(0, min(1.0, max(hi.max() * 1.25, 0.05)))
    ax.xaxis.set_major_formatter(plt.FuncFormatter(lambda v, _: f"{v:.0%}"))
    ax.set_xlabel("Probability (bars: 95% Wilson interval)")
    ax.set_title(f"{m.scenario.title}\nHow the crisis ends")
    return _finish(fig, results, path)


def occupancy_chart(results: Results, path: Path) -> Path:
    plt = _pyplot()
    m = results.model
    total = max(results.runs, 1)
    steps = np.arange(m.horizon + 1)
    active = results.occupancy / total
    ended_counts = results.ended.copy()
    ended_counts[m.horizon, m.end_outcome] -= results.occupancy[m.horizon].sum()
    ended = np.cumsum(ended_counts, axis=0) / total
    cmap = plt.get_cmap("YlOrRd")
    rung_colours = [cmap(0.15 + 0.8 * r / max(m.n_rungs - 1, 1)) for r in range(m.n_rungs)]
    fig, ax = plt.subplots(figsize=(9, 5))
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
    ax.yaxis.set_major_formatter(plt.FuncFormatter(lambda v, _: f"{v:.0%}"))
    ax.set_xlabel(f"{m.scenario.step_label.capitalize()} (0 = start)")
    ax.set_ylabel("Share of runs")
    ax.set_title(
        f"{m.scenario.title}\nWhere the runs are, {m.scenario.step_label} by "
        f"{m.scenario.step_label}"
    )
    ax.legend(loc="center left", bbox_to_anchor=(1.01, 0.5), fontsize=8, frameon=False)
    return _finish(fig, results, path)


def steps_chart(results: Results, path: Path) -> Path:
    plt = _pyplot()
    m = results.model
    total = max(results.runs, 1)
    steps = np.arange(m.horizon + 1)
    fig, ax = plt.subplots(figsize=(9, 4.5))
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
    ax.yaxis.set_major_formatter(plt.FuncFormatter(lambda v, _: f"{v:.0%}"))
    ax.set_xlabel(f"{m.scenario.step_label.capitalize()} in which the run ended")
    ax.set_ylabel("Share of runs")
    summary = results.steps_summary()
    ax.set_title(
        f"{m.scenario.title}\nTime to the end (median {summary['p50']}, "
        f"mean {summary['mean']:.1f} {m.scenario.step_label}s)"
    )
    ax.legend(fontsize=8, frameon=False)
    return _finish(fig, results, path)


def peak_chart(results: Results, path: Path) -> Path:
    plt = _pyplot()
    m = results.model
    share = results.peak_hist / max(results.runs, 1)
    fig, ax = plt.subplots(figsize=(9, 4.5))
    cmap = plt.get_cmap("YlOrRd")
    x = np.arange(m.n_rungs)
    ax.bar(x, share, color=[cmap(0.15 + 0.8 * r / max(m.n_rungs - 1, 1)) for r in x])
    for xi, s in zip(x, share):
        if s:
            ax.text(xi, s + 0.01, f"{s:.1%}", ha="center", fontsize=9)
    ax.set_xticks(x, [name.replace(" ", "\n", 1) for name in m.scenario.ladder], fontsize=8)
    ax.set_ylim(0, min(1.0, share.max() * 1.2 + 0.02))
    ax.yaxis.set_major_formatter(plt.FuncFormatter(lambda v, _: f"{v:.0%}"))
    ax.set_xlabel("Highest rung reached")
    ax.set_ylabel("Share of runs")
    ax.set_title(
        f"{m.scenario.title}\nHow high the crisis climbs (mean peak rung {results.peak_mean():.2f})"
    )
    return _finish(fig, results, path)


RUN_CHARTS = {
    "outcomes.png": outcome_chart,
    "rung_occupancy.png": occupancy_chart,
    "steps.png": steps_chart,
    "peak_rung.png": peak_chart,
}


def write_run_charts(results: Results, out_dir: Path) -> list[Path]:
    """The four `run` charts, written into `out_dir`."""
    return [draw(results, Path(out_dir) / name) for name, draw in RUN_CHARTS.items()]

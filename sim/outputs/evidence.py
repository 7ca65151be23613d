"""What `fit` and `check` print and draw: the estimates table, the check table and its chart."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from rich.console import Console
from rich.markup import escape as esc
from rich.table import Table

from sim.analysis.check import CheckResult, EpisodeCheck
from sim.analysis.fit import FitResult
from sim.outputs.charts import ChartOptions, current_chart_options, new_figure, save_figure
from sim.outputs.tables import print_table, terminal

if TYPE_CHECKING:
    from matplotlib.figure import Figure

MAX_EPISODES_SHOWN = 10
"""Episodes whose statistics `check` lists one by one (the rest are summarised)."""
MAX_CHART_PANELS = 16
MAX_CHART_EPISODES = 40
"""Episodes drawn in each panel of the check chart (one row each; the first ones)."""
"""Statistics drawn by the check chart (the first ones)."""


def _g(x: float | None, digits: int = 4) -> str:
    return "-" if x is None else f"{x:.{digits}g}"


def print_fit(result: FitResult, console: Console | None = None) -> None:
    """The estimates with their intervals, the log-likelihood and how they were found."""
    console = console or terminal()
    s = result.scenario
    table = Table(
        title=f"{esc(s.title)}: maximum-likelihood estimates from {result.episodes:,} "
        f"episode{'s' if result.episodes != 1 else ''}",
        title_justify="left",
    )
    for col in ("parameter", "estimate", "95% interval", "std. error", "range", "start"):
        table.add_column(col, justify="left" if col == "parameter" else "right")
    boot = any(e.bootstrap95 for e in result.estimates.values())
    if boot:
        table.add_column("bootstrap 95%", justify="right")
    for name, est in result.estimates.items():
        p = s.parameters[name]
        lo, hi = est.ci95
        marks = (
            ("[", "]")
            if not any(est.at_bound)
            else ("[" if not est.at_bound[0] else "|", "]" if not est.at_bound[1] else "|")
        )
        row = [
            esc(name),
            _g(est.value),
            f"{marks[0]}{_g(lo)}, {_g(hi)}{marks[1]}",
            _g(est.se),
            f"{_g(p.min)} to {_g(p.max)}",
            _g(result.start[name]),
        ]
        if boot:
            row.append(
                "-"
                if not est.bootstrap95
                else f"{_g(est.bootstrap95[0])}, {_g(est.bootstrap95[1])}"
            )
        table.add_row(*row)
    print_table(console, table)
    ll = "-inf" if not np.isfinite(result.loglik) else f"{result.loglik:,.4f}"
    start = (
        "-inf (impossible)"
        if not np.isfinite(result.start_loglik)
        else f"{result.start_loglik:,.4f}"
    )
    mc = "" if result.mc_se is None else f" (Monte Carlo standard error {result.mc_se:.3g})"
    console.print(f"log-likelihood {ll}{mc}; at the start {start}")
    methods = sorted({e.interval for e in result.estimates.values()})
    console.print(f"intervals: {', '.join(methods)}; | marks an end held at the declared bound")
    console.print(f"method: {esc(result.method)}")
    console.print(
        f"{result.evaluations:,} likelihood evaluations in {result.seconds:,.1f} s; "
        f"scenario sha256 {_sha(result)}"
    )


def _sha(result: FitResult | CheckResult) -> str:
    from sim.format.digest import scenario_sha256

    return scenario_sha256(result.scenario)[:12]


def print_check(result: CheckResult, charts: list[Path], console: Console | None = None) -> None:
    """Each episode's statistics against the model's 90% bands, and a verdict per episode."""
    console = console or terminal()
    shown = result.episodes[:MAX_EPISODES_SHOWN]
    for episode in shown:
        _print_episode(result, episode, console)
    rest = result.episodes[MAX_EPISODES_SHOWN:]
    if rest:
        fits = sum(1 for e in rest if not e.outside)
        console.print(
            f"... and {len(rest):,} more episodes: {fits:,} with every statistic inside its band "
            "(--json lists them all)"
        )
    played = "".join(f"; {actor} plays {name}" for actor, name in result.doctrines.items())
    console.print(
        f"{result.inside_fraction:.1%} of all statistics inside the model's 90% bands "
        f"({result.runs:,} model runs, seed {result.seed}{played}; scenario sha256 "
        f"{_sha(result)})"
    )
    for path in charts:
        console.print(f"chart: {path}")


def _print_episode(result: CheckResult, episode: EpisodeCheck, console: Console) -> None:
    table = Table(
        title=f"Episode {episode.number} against {result.runs:,} runs of "
        f"{esc(result.scenario.title)}",
        title_justify="left",
    )
    for col in ("statistic", "observed", "model 90% band", "median", "percentile", ""):
        table.add_column(col, justify="left" if col in ("statistic", "") else "right")
    for s in episode.statistics:
        if s.percentile is None:
            band, pct, med = ", ".join(s.band), f"p = {s.probability:.1%}", "-"
        else:
            band, pct, med = (
                f"{_g(s.band[0])} to {_g(s.band[1])}",
                f"{s.percentile:.1f}",
                _g(s.median),
            )
        observed = s.observed if isinstance(s.observed, str) else _g(s.observed)
        table.add_row(
            esc(s.name), esc(observed), esc(band), med, pct, "" if s.inside else "outside"
        )
    print_table(console, table)
    if episode.impossible_line is not None:
        console.print(
            f"Episode {episode.number}: the log has probability 0 under the model (line "
            f"{episode.impossible_line} of the log): outcome and peak rung cannot be inferred"
        )
    console.print(f"Episode {episode.number}: {episode.verdict}")


def check_figure(result: CheckResult) -> Figure:
    """One panel per count statistic: the model's 90% band and median, each episode's value."""
    from matplotlib.ticker import MaxNLocator

    names: list[str] = []
    for e in result.episodes:
        for s in e.statistics:
            if s.percentile is not None and s.name not in names:
                names.append(s.name)
    names = names[:MAX_CHART_PANELS]
    cols = min(4, max(1, len(names)))
    rows = max(1, -(-len(names) // cols))
    shown = min(len(result.episodes), MAX_CHART_EPISODES)
    fig = new_figure((3.2 * cols, (1.0 + 0.06 * shown) * rows + 0.9))
    axes = fig.subplots(rows, cols, squeeze=False)
    for k, name in enumerate(names):
        ax = axes[k // cols][k % cols]
        stats = [s for e in result.episodes for s in e.statistics if s.name == name]
        stats = stats[:MAX_CHART_EPISODES]
        rows_y = np.arange(len(stats))[::-1]
        for y, s in zip(rows_y, stats, strict=True):  # each episode's own band (move counts
            lo, hi = s.band  # are compared with the runs that ended where it ended)
            label = "model 90% band" if y == rows_y[0] else None
            ax.barh(y, hi - lo + 1, left=lo - 0.5, height=0.8, color="#c6dbef", label=label)
            ax.plot(
                [s.median, s.median],
                [y - 0.4, y + 0.4],
                color="#2171b5",
                lw=1.5,
                label="model median" if y == rows_y[0] else None,
            )
        values = np.array([float(s.observed) for s in stats])
        outside = np.array([not s.inside for s in stats])
        ax.scatter(
            values[~outside], rows_y[~outside], color="black", s=14, zorder=3, label="observed"
        )
        ax.scatter(
            values[outside],
            rows_y[outside],
            color="#cb181d",
            marker="x",
            s=24,
            zorder=3,
            label="observed, outside",
        )
        ax.xaxis.set_major_locator(MaxNLocator(integer=True, min_n_ticks=1))
        ax.set_yticks([])
        ax.set_ylim(-0.6, len(stats) - 0.4)
        lows = [s.band[0] for s in stats] + list(values)
        highs = [s.band[1] for s in stats] + list(values)
        ax.set_xlim(min(lows) - 0.5, max(highs) + 0.5)
        ax.set_title(name, fontsize=8, loc="left")
        ax.tick_params(labelsize=7)
    for k in range(len(names), rows * cols):
        axes[k // cols][k % cols].set_visible(False)
    handles, labels = axes[0][0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=4, fontsize=7, frameon=False)
    fig.suptitle(
        f"{result.scenario.title}: the log against {result.runs:,} model runs",
        fontsize=9,
        x=0.01,
        ha="left",
    )
    fig.tight_layout(rect=(0, 0.07, 1, 0.95))
    return fig


def write_check_chart(
    result: CheckResult, out_dir: Path, options: ChartOptions | None = None
) -> list[Path]:
    """The check chart written into `out_dir` (check.png by default)."""
    options = options or current_chart_options()
    return [save_figure(check_figure(result), Path(out_dir) / options.name("check"), options.dpi)]

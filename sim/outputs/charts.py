"""Matplotlib figures of a result: outcomes, rung occupancy over time, steps to the end, peak rung.

Every chart function returns a `matplotlib.figure.Figure` built with the object-oriented API:
no pyplot, no backend switch, no change to `matplotlib.rcParams`, so a notebook's own pyplot
state is untouched. With `ax=` it draws into the caller's Axes and returns that Axes' figure
(without the footer or layout changes, which belong to the caller). Without it, it makes a
figure of its own carrying a footer with the scenario id, seed, runs, scenario hash, version and
`--set` overrides that reproduce it. `write_run_charts` saves the four `run` charts through
`sim.files.write_atomic`, so no file is ever left half-written; the file's suffix (`.png`,
`.svg`, `.pdf`) decides its format.

Outcome colours follow what an outcome is, the same in every scenario and chart
(`sim.outputs.palette`); each chart says when it has little to show (docs/charts.md).
"""

from __future__ import annotations

import contextlib
import contextvars
import os
import sys
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from sim import __version__
from sim.files import write_atomic
from sim.model.compiled import Model
from sim.outputs.palette import OKABE_ITO, outcome_colours
from sim.results import Results

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

OUTCOME_COLOURS = list(OKABE_ITO)
"""The palette's colours in order (kept for old callers; charts colour outcomes by meaning
through `sim.outputs.palette.outcome_colours`)."""
RUN_DPI = 150
"""Default resolution of every chart file (`--dpi`): sharp on a slide or a projector."""
CHART_FORMATS = ("png", "svg", "pdf")
"""The file formats a chart can be written in (`--format`; a file's suffix decides)."""
PNG_COMPRESS_LEVEL = 3
"""zlib level of PNG files: PIL's default, 6, spends half as long again compressing (26 against
17 ms a chart at 150 dpi) for files 8% smaller (benchmarks/README.md)."""
FOOTER_SIZE = 9
"""Font size of the provenance footer, in points: readable on a slide."""
PLAIN = {"parse_math": False}
"""Scenario text may hold '$': every text drawn from it is shown as written, never as mathtext
(set on each text, not through rcParams)."""


@dataclass(frozen=True)
class ChartOptions:
    """How chart files are written: their format (the suffix of their names) and resolution."""

    format: str = "png"
    dpi: int = RUN_DPI

    def __post_init__(self) -> None:
        if self.format not in CHART_FORMATS:
            raise ValueError(
                f"unknown chart format '{self.format}' (choose from {', '.join(CHART_FORMATS)})"
            )
        if not 10 <= self.dpi <= 2400:
            raise ValueError(f"a chart's dpi must be between 10 and 2400, not {self.dpi}")

    def name(self, name: str) -> str:
        """A chart's file name with this format's suffix: outcomes.png -> outcomes.svg."""
        return Path(name).with_suffix(f".{self.format}").name


DEFAULT_OPTIONS = ChartOptions()
_OPTIONS: contextvars.ContextVar[ChartOptions | None] = contextvars.ContextVar(
    "escalation_chart_options", default=None
)


def current_chart_options() -> ChartOptions:
    """The options chart writers use when they are given none (see `using_chart_options`)."""
    return _OPTIONS.get() or DEFAULT_OPTIONS


@contextlib.contextmanager
def using_chart_options(options: ChartOptions | None) -> Iterator[ChartOptions]:
    """Within the block, chart writers called without options (such as the HTML report's) use
    `options`; a context variable, so other threads and tasks are not affected."""
    token = _OPTIONS.set(options or DEFAULT_OPTIONS)
    try:
        yield current_chart_options()
    finally:
        _OPTIONS.reset(token)


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


def percent(decimals: int | None = None):
    """A tick formatter: 0.25 -> 25%; with `decimals` None, as few decimals as the ticks'
    spacing allows (25%, but 2.5% and 0.25% where ticks are that close: never 0%, 0%, 1%)."""
    from matplotlib.ticker import Formatter

    class Percent(Formatter):
        ticks: Any = ()

        def set_locs(self, locs: Any) -> None:
            self.ticks = locs

        def __call__(self, x: float, pos: int | None = None) -> str:
            places = decimals
            if places is None:
                values = 100 * np.asarray(self.ticks, dtype=float)
                places = next(
                    (d for d in range(4) if np.allclose(np.round(values, d), values, atol=1e-6)),
                    4,
                )
            return f"{100 * x:.{places}f}%"

    return Percent()


def integer_ticks(axis: Any, values: Any = None) -> None:
    """Ticks only at whole numbers, for an axis of counts, steps or rungs (`values`: when
    given, only if they are all whole numbers; a few values get a tick each)."""
    from matplotlib.ticker import FixedLocator, MaxNLocator

    if values is not None:
        v = np.unique(np.asarray(values, dtype=float))
        v = v[np.isfinite(v)]
        if not len(v) or not np.allclose(v, np.round(v)):
            return
        if len(v) <= 12:
            axis.set_major_locator(FixedLocator(np.round(v)))
            return
    axis.set_major_locator(MaxNLocator(integer=True, steps=[1, 2, 5, 10]))


def colormap(name: str):
    """A registered colormap, without pyplot."""
    import matplotlib

    return matplotlib.colormaps[name]


def rung_heat(n_rungs: int) -> list:
    """The colours of rungs by height (pale yellow to dark red), for charts of rungs alone."""
    cmap = colormap("YlOrRd")
    return [cmap(0.15 + 0.8 * r / max(n_rungs - 1, 1)) for r in range(n_rungs)]


def rung_greys(n_rungs: int) -> list:
    """The colours of rungs still being fought over, next to outcome colours: greys, light for
    low rungs and dark for high ones, so they never look like an outcome's colour."""
    cmap = colormap("Greys")
    return [cmap(0.25 + 0.55 * r / max(n_rungs - 1, 1)) for r in range(n_rungs)]


def plain_legend(legend: Any) -> Any:
    """A legend whose labels (scenario text) are shown as written."""
    if legend is not None:
        for text in legend.get_texts():
            text.set_parse_math(False)
    return legend


def outside_legend(ax: Axes, **kwargs: Any) -> Any:
    """A legend to the right of the Axes, clear of the data (scenario text shown as written)."""
    if not ax.get_legend_handles_labels()[0]:
        return None
    options = {"loc": "center left", "bbox_to_anchor": (1.01, 0.5), "fontsize": 8}
    options.update({"frameon": False, **kwargs})
    return plain_legend(ax.legend(**options))


def note(ax: Axes, text: str) -> Any:
    """A remark drawn in the Axes (top left), for a chart that has little to show."""
    return ax.text(
        0.02,
        0.97,
        text,
        transform=ax.transAxes,
        ha="left",
        va="top",
        fontsize=9,
        color="#333333",
        bbox={"boxstyle": "round,pad=0.4", "facecolor": "white", "edgecolor": "#bbbbbb"},
        **PLAIN,
    )


def overrides(model: Model) -> dict[str, float]:
    """The parameters whose value differs from the scenario's own: the `--set` overrides."""
    defaults = model.scenario.parameters
    return {
        k: v for k, v in model.parameters.items() if k not in defaults or v != defaults[k].value
    }


def overrides_line(values: Mapping[str, float]) -> str:
    """`--set NAME=VALUE ...` for a footer, or "" without overrides."""
    return " ".join(f"--set {k}={float(v):.15g}" for k, v in values.items())


def footer(results: Results) -> str:
    m = results.model
    runs = "exact" if results.seed is None else f"{results.runs:,} runs, seed {results.seed}"
    text = f"{m.scenario.id} | {runs} | sha256 {m.sha256[:12]} | escalation-sim {__version__}"
    settings = overrides_line(overrides(m))
    return f"{text}\n{settings}" if settings else text


def finish(fig: Figure, text: str, rect: tuple[float, float, float, float] | None = None) -> Figure:
    """The footer and the layout of a figure we made ourselves (`rect`: the area left to the
    Axes; by default all but the footer's lines)."""
    import textwrap

    width = max(40, int(fig.get_figwidth() * 72 / (FOOTER_SIZE * 0.56)))
    lines = [w for line in text.split("\n") for w in textwrap.wrap(line, width) or [""]]
    fig.text(
        0.99,
        0.005,
        "\n".join(lines),
        ha="right",
        va="bottom",
        fontsize=FOOTER_SIZE,
        color="#555555",
        **PLAIN,
    )
    bottom = (len(lines) * FOOTER_SIZE * 1.3 / 72 + 0.04) / fig.get_figheight()
    left, low, right, top = rect or (0, 0, 1, 1)
    tight_layout(fig, (left, max(low, bottom), right, top))
    return fig


def tight_layout(fig: Figure, rect: tuple[float, float, float, float]) -> None:
    """`fig.tight_layout(rect=rect)`, the same layout, but the figure keeps no layout engine:
    `tight_layout` leaves a placeholder engine behind, for which every `savefig` lays the whole
    figure out once more before drawing it (a third of the time of writing a chart)."""
    from matplotlib.layout_engine import TightLayoutEngine

    TightLayoutEngine(rect=rect).execute(fig)  # what Figure.tight_layout runs
    if fig.get_layout_engine() is not None:  # one from rcParams (figure.autolayout): as before
        fig.set_layout_engine("none")


def save_figure(fig: Figure, path: str | Path, dpi: int | None = None) -> Path:
    """Write the figure through a temporary file renamed into place (never half-written), in
    the format its suffix names (.png, .svg or .pdf); `dpi` defaults to the current options'."""
    path = Path(path)
    fmt = path.suffix.lower().lstrip(".")
    if fmt not in CHART_FORMATS:
        raise ValueError(
            f"{path}: a chart file must end in {', '.join('.' + f for f in CHART_FORMATS)}"
        )
    dpi = dpi or current_chart_options().dpi
    metadata = {"svg": {"Date": None}, "pdf": {"CreationDate": None}}.get(fmt)
    extra = {"pil_kwargs": {"compress_level": PNG_COMPRESS_LEVEL}} if fmt == "png" else {}
    return write_atomic(
        path, lambda f: fig.savefig(f, format=fmt, dpi=dpi, metadata=metadata, **extra)
    )


def outcome_chart(results: Results, *, ax: Axes | None = None) -> Figure:
    """How the crisis ends: each outcome's probability with its 95% interval, as bars."""
    m = results.model
    labels = [m.scenario.outcome_label(o) for o in m.outcome_ids]
    p = results.probabilities
    lo, hi = results.intervals()
    fig, ax, own = figure_and_axes(ax, (8, 0.6 * len(labels) + 1.8))
    y = np.arange(len(labels))[::-1]
    palette = outcome_colours(m.scenario, m.outcome_ids)
    colours = [palette[o] for o in m.outcome_ids]
    ax.barh(y, p, xerr=[p - lo, hi - p], color=colours, capsize=4)
    for yi, pi, hii in zip(y, p, hi):
        ax.text(hii + 0.01, yi, f"{pi:.1%}", va="center", fontsize=9)
    ax.set_yticks(y, labels, **PLAIN)
    ax.set_xlim(0, min(1.0, max(hi.max() * 1.25, 0.05)))
    ax.xaxis.set_major_formatter(percent())
    exact = results.seed is None
    ax.set_xlabel("Probability (exact)" if exact else "Probability (bars: 95% Wilson interval)")
    ax.set_title(f"{m.scenario.title}\nHow the crisis ends", **PLAIN)
    return finish(fig, footer(results)) if own else fig


def _step_axis(ax: Axes, horizon: int) -> None:
    """Whole-step ticks on the x axis: every step for a short crisis, else a few."""
    if horizon <= 12:
        ax.set_xticks(np.arange(horizon + 1))
    else:
        integer_ticks(ax.xaxis)


def occupancy_chart(results: Results, *, ax: Axes | None = None) -> Figure:
    """Where the runs are, step by step: the share at each rung (greys, darker for higher rungs)
    and the share already ended, by outcome. Step s is the column from s - 1/2 to s + 1/2, so
    the horizon's own column is shown too."""
    m = results.model
    active, ended = results.occupancy_shares()
    fig, ax, own = figure_and_axes(ax, (9, 5))
    layers = [ended[:, o] for o in range(len(m.outcome_ids))] + [
        active[:, r] for r in range(m.n_rungs)
    ]
    labels = [f"ended: {m.scenario.outcome_label(o)}" for o in m.outcome_ids]
    labels += [f"rung {r}: {name}" for r, name in enumerate(m.scenario.ladder)]
    palette = outcome_colours(m.scenario, m.outcome_ids)
    colours = [palette[o] for o in m.outcome_ids] + rung_greys(m.n_rungs)
    keep = [i for i, layer in enumerate(layers) if np.any(layer > 1e-12)]
    edges = np.arange(m.horizon + 2) - 0.5
    ax.stackplot(
        edges,
        *[np.append(layers[i], layers[i][-1]) for i in keep],
        labels=[labels[i] for i in keep],
        colors=[colours[i] for i in keep],
        step="post",
        edgecolor="white",
        linewidth=0.3,
    )
    ax.set_xlim(edges[0], edges[-1])
    _step_axis(ax, m.horizon)
    ax.set_ylim(0, 1)
    ax.yaxis.set_major_formatter(percent())
    ax.set_xlabel(f"{m.scenario.step_label.capitalize()} (0 = start)", **PLAIN)
    ax.set_ylabel("Share of runs")
    ax.set_title(
        f"{m.scenario.title}\nWhere the runs are, {m.scenario.step_label} by "
        f"{m.scenario.step_label}",
        **PLAIN,
    )
    outside_legend(ax)
    return finish(fig, footer(results)) if own else fig


SPIKE = 3.0
"""The steps chart cuts its y axis when the horizon's bar is more than this many times the
tallest other bar, so the other steps stay readable; the cut bar is labelled."""


def steps_chart(results: Results, *, ax: Axes | None = None) -> Figure:
    """Time to the end: the share of runs ending in each step, stacked by outcome. When the runs
    still going at the horizon dwarf the rest, the axis is cut above the other steps and the
    horizon's bar is marked as cut and labelled with its height."""
    m = results.model
    s = m.scenario
    total = max(results.runs, 1)
    steps = np.arange(m.horizon + 1)
    fig, ax, own = figure_and_axes(ax, (9, 4.5))
    palette = outcome_colours(s, m.outcome_ids)
    bottom = np.zeros(m.horizon + 1)
    for o, oid in enumerate(m.outcome_ids):
        share = results.ended[:, o] / total
        if np.any(share > 1e-12):
            columns(ax, steps, share, bottom, 0.85, palette[oid], s.outcome_label(oid))
            bottom += share
    first = 0 if bottom[0] > 1e-12 else 1
    ax.set_xlim(first - 0.6, m.horizon + 0.6)
    _step_axis(ax, m.horizon)
    if m.horizon <= 12 and first:
        ax.set_xticks(np.arange(1, m.horizon + 1))
    ax.yaxis.set_major_formatter(percent())
    ax.set_xlabel(f"{s.step_label.capitalize()} in which the run ended", **PLAIN)
    ax.set_ylabel("Share of runs")
    summary = results.steps_summary()
    ends_in = np.flatnonzero(bottom > 1e-12)
    if len(ends_in) == 1:
        heading = f"Time to the end: every run ends in {s.step_label} {ends_in[0]}"
    else:
        heading = (
            f"Time to the end (median {summary['p50']}, mean {summary['mean']:.1f} {s.step_label}s)"
        )
    ax.set_title(f"{s.title}\n{heading}", **PLAIN)
    spike, rest = bottom[m.horizon], bottom[: m.horizon].max(initial=0.0)
    going = results.occupancy[m.horizon].sum() / total
    horizon_terminal = spike - going
    if m.horizon > 1 and rest > 0 and spike > SPIKE * max(rest, horizon_terminal):
        top = max(rest, horizon_terminal) * 1.35
        ax.set_ylim(0, top)
        _cut_mark(ax, m.horizon, top)
        ax.annotate(
            f"{spike:.1%} end in {s.step_label} {m.horizon}\n"
            f"({going:.1%} still going at the horizon;\naxis cut)",
            xy=(m.horizon, top),
            xytext=(-14, -6),
            textcoords="offset points",
            ha="right",
            va="top",
            fontsize=8,
            color="#222222",
            **PLAIN,
        )
    else:
        ax.set_ylim(0, max(bottom.max(), 1e-9) * 1.08)
    outside_legend(ax)
    return finish(fig, footer(results)) if own else fig


def columns(
    ax: Axes, x: Any, heights: Any, bottom: Any, width: float, colour: str, label: str
) -> Any:
    """The bars of `ax.bar(x, heights, width, bottom, color=colour, label=label)` (edgeless), as
    one collection instead of one patch a bar: the same pixels, and camp_taji's steps chart (27
    steps by 4 outcomes) drawn in a third of the time (benchmarks/README.md). The axis limits
    are the caller's."""
    from matplotlib.collections import PolyCollection

    x, heights, bottom = (np.asarray(v, dtype=float) for v in (x, heights, bottom))
    left, right, top = x - width / 2, x + width / 2, bottom + heights
    corners = [(left, bottom), (left, top), (right, top), (right, bottom)]
    verts = np.stack([np.stack(corner, axis=-1) for corner in corners], axis=1)
    bars = PolyCollection(verts, facecolors=colour, edgecolors="none", label=label)
    ax.add_collection(bars, autolim=True)
    return bars


def _cut_mark(ax: Axes, x: float, top: float) -> None:
    """Two white slashes across a bar that runs off the top of the axis."""
    for dy in (0.05, 0.09):
        y = top * (1 - dy)
        ax.plot(
            [x - 0.5, x + 0.5],
            [y - top * 0.015, y + top * 0.015],
            color="white",
            linewidth=2.5,
            solid_capstyle="butt",
            clip_on=True,
        )


def peak_chart(results: Results, *, ax: Axes | None = None) -> Figure:
    """How high the crisis climbs: the share of runs whose highest rung is each rung."""
    m = results.model
    share = results.peak_hist / max(results.runs, 1)
    fig, ax, own = figure_and_axes(ax, (9, 4.5))
    x = np.arange(m.n_rungs)
    ax.bar(x, share, color=rung_heat(m.n_rungs), edgecolor="#555555", linewidth=0.5)
    for xi, sh in zip(x, share):
        if sh:
            ax.text(xi, sh + 0.01, f"{sh:.1%}", ha="center", fontsize=9)
    ax.set_xticks(
        x, [name.replace(" ", "\n", 1) for name in m.scenario.ladder], fontsize=8, **PLAIN
    )
    ax.set_xlim(-0.6, m.n_rungs - 0.4)
    ax.set_ylim(0, min(1.0, share.max() * 1.2 + 0.02) if share.max() < 0.95 else 1.08)
    ax.yaxis.set_major_formatter(percent())
    ax.set_xlabel("Highest rung reached")
    ax.set_ylabel("Share of runs")
    peaks = np.flatnonzero(share > 1e-12)
    if len(peaks) == 1:
        r = int(peaks[0])
        heading = (
            f"How high the crisis climbs: every run peaks at rung {r} ({m.scenario.ladder[r]})"
        )
    else:
        heading = f"How high the crisis climbs (mean peak rung {results.peak_mean():.2f})"
    ax.set_title(f"{m.scenario.title}\n{heading}", **PLAIN)
    return finish(fig, footer(results)) if own else fig


RUN_CHARTS: dict[str, Callable[..., Figure]] = {
    "outcomes.png": outcome_chart,
    "rung_occupancy.png": occupancy_chart,
    "steps.png": steps_chart,
    "peak_rung.png": peak_chart,
}
"""The `run` charts: file name (the suffix follows the chosen format) -> the function drawing it."""


def write_run_charts(
    results: Results,
    out_dir: str | Path,
    options: ChartOptions | None = None,
    *,
    parallel: bool = False,
) -> list[Path]:
    """The four `run` charts, written into `out_dir` in the options' format and resolution
    (default: `current_chart_options()`, PNG at 150 dpi).

    With `parallel` (the `escalation` command), a forked copy of this process writes half of
    them meanwhile, where that is safe (`can_fork`): the same files, in about half the time on
    two free CPUs."""
    options = options or current_chart_options()
    jobs = [(draw, Path(out_dir) / options.name(name)) for name, draw in RUN_CHARTS.items()]

    def write(chosen: list[tuple[Callable[..., Figure], Path]]) -> None:
        for draw, path in chosen:
            save_figure(draw(results), path, options.dpi)

    if parallel and can_fork():
        # drawing and saving times about even (camp_taji: steps + peak rung against outcomes +
        # occupancy, 261 and 288 ms one by one; benchmarks/startup.py prints the parts)
        in_parallel(write, jobs[2:], jobs[:2])
    else:
        write(jobs)
    return [path for _, path in jobs]


def can_fork() -> bool:
    """True where `in_parallel` may fork: POSIX with fork, and this the only Python thread (a
    notebook's kernel has others: it writes the charts one after another)."""
    import threading

    return (
        hasattr(os, "fork")
        and sys.platform.startswith("linux")
        and threading.active_count() == 1
        and threading.current_thread() is threading.main_thread()
    )


def in_parallel(work: Callable[[Any], None], theirs: Any, ours: Any) -> None:
    """`work(theirs)` in a forked child while this process runs `work(ours)` (`beside`)."""
    beside(lambda: work(theirs), lambda: work(ours))


def beside(theirs: Callable[[], Any], ours: Callable[[], Any]) -> tuple[Any, Any]:
    """`theirs()` in a forked child while this process runs `ours()`; returns both results
    (the child's pickled back through a pipe). The child's exception, if it had one, is raised
    here (an OSError as itself: the caller names the file). Call it where `can_fork`.

    matplotlib is imported first, so that the child starts drawing at once. SIGINT and SIGTERM
    are blocked across the fork, so that the child never runs the parent's code; a signal that
    unwinds this process ends the child too (its temporary file removed: sim.files), and it is
    waited for before this returns or raises. Where no process can be spared, `theirs()` runs
    here first."""
    import pickle
    import signal

    import matplotlib.backends.backend_agg  # noqa: F401 (imported once, for both processes)
    import matplotlib.figure  # noqa: F401

    read_end, write_end = os.pipe()
    blocked = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM})
    try:
        pid = os.fork()
    except OSError:  # no process to spare: one after the other
        pid = -1
    if pid == 0:  # the child: it never leaves this block
        status = 1
        try:
            os.close(read_end)
            signal.pthread_sigmask(signal.SIG_SETMASK, blocked)
            try:
                value = pickle.dumps(theirs(), protocol=pickle.HIGHEST_PROTOCOL)
                report = b"+" + value
                status = 0
            except BaseException as exc:  # noqa: BLE001 - handed to the parent
                report = b"-" + _pickled_exception(exc)
            with os.fdopen(write_end, "wb") as pipe:
                pipe.write(report)
        finally:
            os._exit(status)
    os.close(write_end)
    reader = os.fdopen(read_end, "rb")
    try:
        signal.pthread_sigmask(signal.SIG_SETMASK, blocked)
        if pid < 0:
            return theirs(), ours()
        mine = ours()
        report = reader.read()  # the child's result, written as it ends
        code = os.waitpid(pid, 0)[1]
        pid = -1
    finally:
        reader.close()
        if pid > 0:  # this process is unwinding: end the child, and wait for it
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGTERM)
                os.waitpid(pid, 0)
    if report[:1] == b"-":
        raise _unpickled_exception(report[1:])
    if report[:1] != b"+" or code != 0:
        raise RuntimeError(f"the process writing charts beside this one ended with status {code}")
    return pickle.loads(report[1:]), mine  # written by our own child


def _pickled_exception(exc: BaseException) -> bytes:
    """The child's exception for the parent: its text, and itself if it can be pickled."""
    import pickle

    try:
        inner = pickle.dumps(exc)
    except Exception:  # noqa: BLE001 - an exception that cannot be pickled: its text will do
        inner = b""
    return pickle.dumps((f"{type(exc).__name__}: {exc}", inner))


def _unpickled_exception(report: bytes) -> BaseException:
    import pickle

    text, inner = pickle.loads(report)  # written by our own child
    try:
        exc = pickle.loads(inner) if inner else None
    except Exception:  # noqa: BLE001 - one that cannot be rebuilt here: its text will do
        exc = None
    return exc if isinstance(exc, BaseException) else RuntimeError(text)

"""Rich tables of a result for the terminal, laid out so that no number or id is ever cut."""

from __future__ import annotations

import errno
import string
from collections.abc import Mapping, Sequence
from pathlib import Path

from rich.console import Console, RenderableType
from rich.markup import escape as esc
from rich.measure import Measurement
from rich.table import Table
from rich.text import Text

from sim import __version__
from sim.outputs.report_text import settings_text
from sim.results import Results


class Terminal(Console):
    """A rich Console for the program's output. When the reader of a pipe has gone away
    (`| head -1`) it raises BrokenPipeError, which the command line turns into a quiet exit 141;
    rich's own Console exits with status 1 instead.

    Where it writes no colours or styles at all (a pipe, a file, TERM=dumb), it does not
    highlight: highlighting only adds styles, so no character changes, and its first use
    compiles rich's repr regexes (a tenth of the start-up of `escalation run` into a pipe)."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        if self.color_system is None and "highlight" not in kwargs:
            self._highlight = False

    def on_broken_pipe(self) -> None:
        self.quiet = True
        raise BrokenPipeError(errno.EPIPE, "Broken pipe")


def terminal(**kwargs) -> Terminal:
    """The Console every command prints with (its width: the terminal's, else $COLUMNS, else
    80 into a pipe or file)."""
    return Terminal(**kwargs)


# --- tables that never cut a number or an id ---------------------------------------------------


def _measure(console: Console, renderable: RenderableType) -> tuple[int, int]:
    """(longest word, longest line) of a cell: the narrowest it may wrap to without cutting a
    word, and its natural width."""
    m = Measurement.get(console, console.options.update(width=10_000), renderable)
    return m.minimum, m.maximum


def _column_widths(console: Console, table: Table) -> tuple[list[int], list[int], int]:
    """Each column's narrowest and natural content width, and the table's fixed extra width
    (borders and padding)."""
    low, high = [], []
    for column in table.columns:
        cells = [column.header, *column.cells] if table.show_header else list(column.cells)
        sizes = [_measure(console, c) for c in cells] or [(1, 1)]
        top = max(size[1] for size in sizes)
        low.append(top if column.no_wrap else max(size[0] for size in sizes))
        high.append(top)
    n = len(table.columns)
    _, right, _, left = table.padding
    padding = sum(
        (left if table.pad_edge or i > 0 else 0) + (right if table.pad_edge or i < n - 1 else 0)
        for i in range(n)
    )
    borders = ((2 if table.show_edge else 0) + max(n - 1, 0)) if table.box else 0
    return low, high, padding + borders


def fit_table(console: Console, table: Table, width: int | None = None) -> bool:
    """Give the columns of `table` widths that fit `width` (default the console's) without
    cutting any word of any cell or header: numbers and ids stay whole, text wraps between
    words. Returns False, leaving the table as it was, when even that is too wide."""
    width = width or console.width
    low, high, extra = _column_widths(console, table)
    widths = list(high)
    if sum(widths) + extra <= width:
        return True
    room = width - extra
    if sum(low) > room:
        return False
    excess = sum(widths) - room
    while excess > 0:  # narrow the widest column that can still wrap, one cell at a time
        i = max((k for k in range(len(widths)) if widths[k] > low[k]), key=lambda k: widths[k])
        widths[i] -= 1
        excess -= 1
    for column, w in zip(table.columns, widths, strict=True):
        column.width = w
        column.min_width = None
        column.max_width = None
        column.overflow = "fold"
    return True


def table_width(console: Console, table: Table) -> int:
    """The narrowest width the table can take without cutting a word."""
    low, _, extra = _column_widths(console, table)
    return sum(low) + extra


def print_table(console: Console, table: Table) -> None:
    """Print a table that never cuts a number or id: fitted to the console, or, when the console
    is narrower than the table's longest words allow, at that narrowest width (the terminal then
    wraps its lines)."""
    if fit_table(console, table):
        console.print(table)
        return
    needed = table_width(console, table)
    fit_table(console, table, needed)
    saved = console.width
    console.width = needed
    try:
        console.print(table)
    finally:
        console.width = saved


def letters(n: int) -> list[str]:
    """Short column keys: A, B, ..., Z, AA, AB, ..."""
    out = []
    for i in range(n):
        key, k = "", i
        while True:
            key = string.ascii_uppercase[k % 26] + key
            k = k // 26 - 1
            if k < 0:
                break
        out.append(key)
    return out


def print_side_by_side(
    console: Console,
    title: str,
    labels: Sequence[RenderableType],
    headers: Sequence[str],
    cells: Sequence[Sequence[RenderableType]],
    what: str = "columns",
) -> None:
    """Rows `labels` and one right-aligned column per header (`cells[row][column]`), never
    cutting a number or a header: the whole table when it fits; else the headers abbreviated to
    A, B, ... with a legend below; else the columns split over several tables ("columns 1-3 of
    5"), each with the row labels again."""

    def build(columns: Sequence[int], names: Sequence[str], heading: str) -> Table:
        table = Table(title=heading, title_justify="left")
        table.add_column("")
        for name in names:
            table.add_column(esc(name), justify="right")
        for r, label in enumerate(labels):
            table.add_row(label, *[cells[r][j] for j in columns])
        return table

    everything = range(len(headers))
    table = build(everything, headers, title)
    if fit_table(console, table):
        console.print(table)
        return
    keys = letters(len(headers))
    short = build(everything, keys, title)
    if fit_table(console, short):
        console.print(short)
        legend = "   ".join(f"{k} = {h}" for k, h in zip(keys, headers, strict=True))
        console.print(Text(legend, style="dim"))
        return
    start, n = 0, len(headers)
    while start < n:
        stop = start + 1
        while stop < n and fit_table(
            console, build(range(start, stop + 1), headers[start : stop + 1], title)
        ):
            stop += 1
        span = f"{what} {start + 1}" if stop == start + 1 else f"{what} {start + 1}-{stop}"
        part = build(range(start, stop), headers[start:stop], f"{title}, {span} of {n}")
        print_table(console, part)
        start = stop


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
    console = console or terminal()
    m = results.model
    s = m.scenario
    console.print(f"[bold]{esc(s.title)}[/bold]  ({s.id})")
    settings = settings_text(overrides)
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
    print_table(console, table)

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
    print_table(console, table)

    if m.state_names:
        table = Table(title="Final state", title_justify="left")
        for col in ("variable", "mean", "5%", "median", "95%"):
            table.add_column(col, justify="left" if col == "variable" else "right")
        for name, q in results.state_summary().items():
            table.add_row(name, _num(q["mean"]), _num(q["p05"]), _num(q["p50"]), _num(q["p95"]))
        print_table(console, table)

    table = Table(title="Payoffs and moves", title_justify="left")
    for col in ("actor", "mean payoff", "95% interval", "moves"):
        table.add_column(col, justify="right" if "payoff" in col or "interval" in col else "left")
    plo, phi = results.payoff_interval()
    shares = results.move_shares()
    for a, actor in enumerate(m.actors):
        moves = ", ".join(f"{k} {_pct(v)}" for k, v in shares.get(actor, {}).items() if v)
        interval = "exact" if results.exact else f"{_num(plo[a])} to {_num(phi[a])}"
        table.add_row(esc(s.actors[actor].label), _num(results.payoff_mean[a]), interval, moves)
    print_table(console, table)
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
    console = console or terminal()
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
    print_table(console, table)
    worst = check["max_abs_z"]
    verdict = (
        "an outcome the exact solution calls impossible occurred"
        if worst is None
        else f"largest |z| {worst:.2f}" + (" (beyond 5: suspicious)" if worst > 5 else "")
    )
    console.print(f"Exact check: {verdict}")


def _z(z: float | None) -> str:
    return "impossible" if z is None else f"{z:+.2f}"

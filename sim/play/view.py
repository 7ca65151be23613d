"""What the student sees in `play`: the ladder, the state, the options and their explanations."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from rich.console import Group, RenderableType
from rich.padding import Padding
from rich.rule import Rule
from rich.table import Table
from rich.text import Text

from sim.model.compiled import CompiledEffects, CompiledOption, Model
from sim.outputs.report_text import fmt, fmt_signed, pct


class _Now:
    """Evaluates an expression on the current state for `?`; random draws are refused, so asking
    for details never changes the game."""

    class Random(Exception):
        pass

    def __init__(self, view: Any, hidden: frozenset[str] = frozenset()):
        self.view = view
        self.size = view.size
        self.rng = self
        self.hidden = hidden
        """Names the student does not see: an expression reading one is shown as text only."""

    def value(self, name: str) -> Any:
        if name in self.hidden:
            raise self.Random
        return self.view.value(name)

    def draw(self, kind: str, *args: Any) -> np.ndarray:
        raise self.Random


def ended_as(model: Model, outcome: int, steps: int | None = None) -> str:
    """'ended in Regional war (in week 9)' or 'was still going after 26 weeks (Ongoing)'."""
    s, oid = model.scenario, model.outcome_ids[outcome]
    if oid == s.end and oid not in s.outcomes:
        return f"was still going after {s.horizon} {s.step_label}s ({s.outcome_label(oid)})"
    when = "" if steps is None else f" in {s.step_label} {steps}"
    return f"ended in {s.outcome_label(oid)}{when}"


def intro_lines(model: Model, me: int, seed: int) -> list[RenderableType]:
    """The opening: title, summary, the student's actor, the turn order and how it can end."""
    s, actor = model.scenario, model.actors[me]
    lines: list[RenderableType] = [Rule(Text(s.title))]
    if s.summary:
        lines.append(Text.assemble(s.summary))
    order = ", then ".join(s.actors[a].label for a in s.turn_order)
    lines.append(
        Text.assemble(
            "\nYou play ",
            (s.actors[actor].label, "bold"),
            f". Each {s.step_label}: {order}. "
            f"The crisis lasts at most {s.horizon} {s.step_label}s. How it can end:",
        )
    )
    for oid in model.outcome_ids:
        terminal = s.outcomes.get(oid)
        if terminal is None:
            text = f"  - {s.outcome_label(oid)}: still going after {s.horizon} {s.step_label}s"
        else:
            pay = terminal.payoffs.get(actor)
            yours = "" if pay is None else f"; your payoff {expr_text(pay, signed=True)}"
            text = f"  - {s.outcome_label(oid)}: when {expr_text(terminal.when)}{yours}"
        lines.append(Text.assemble(text))
    lines.append(Text.assemble(f"Seed {seed}: replay this crisis with --seed {seed}."))
    return lines


def ladder_text(model: Model, rung: int, peak: int) -> Text:
    """The ladder from the top, the current rung highlighted and the peak so far marked."""
    text = Text("ladder\n", style="bold")
    for r in reversed(range(model.n_rungs)):
        line = f"{r} {model.scenario.ladder[r]}"
        if r == rung:
            text.append(f"▶ {line} ◀ now", style="bold reverse")
        elif r == peak:
            text.append(f"  {line} (peak)", style="yellow")
        else:
            text.append(f"  {line}", style="dim" if r > peak else "")
        text.append("\n")
    text.rstrip()
    return text


def hidden_names(model: Model, actor: int) -> frozenset[str]:
    """What `actor` cannot read: hidden state variables and the true moves it saw otherwise."""
    view = model.view_of(actor)
    names = {n for i, n in enumerate(model.state_names) if i not in view.state}
    names |= {f"last_{a}" for m, a in enumerate(model.actors) if view.last_rows[m] != m}
    return frozenset(names)


def state_table(
    model: Model, state: np.ndarray, seen: np.ndarray, full: bool, hidden=frozenset()
) -> Table:
    """The state now and its change since the student's last move (`full`: with meanings);
    `hidden` variables show as unknown."""
    table = Table(box=None, pad_edge=False, header_style="bold")
    table.add_column("state")
    table.add_column("now", justify="right")
    table.add_column("change", justify="right")
    if full:
        table.add_column("meaning", style="dim")
    for i, name in enumerate(model.state_names):
        var = model.scenario.state[name]
        if name in hidden:
            row = [Text(var.label or name), Text("unknown to you", style="dim italic"), ""]
            if full:
                row.append(Text(var.doc))
            table.add_row(*row)
            continue
        delta = state[i] - seen[i]
        change = "" if abs(delta) < 1e-12 else fmt_signed(delta)
        row = [Text(var.label or name), fmt(state[i]), change]
        if full:
            row.append(Text(var.doc))
        table.add_row(*row, style="bold" if change else "")
    return table


def options_table(model: Model, menu: Sequence[CompiledOption], ok: Sequence[bool]) -> Table:
    """The student's options, numbered; the unavailable ones struck through with their needs."""
    table = Table(
        box=None,
        show_header=False,
        pad_edge=False,
        title="Your options",
        title_justify="left",
        title_style="bold",
    )
    table.add_column(justify="right")
    table.add_column()
    for option, available in zip(menu, ok, strict=True):
        where = "" if option.rung is None else f" → {model.scenario.ladder[option.rung]}"
        if available:
            table.add_row(str(option.index + 1), Text.assemble(option.label, (where, "dim")))
        else:
            table.add_row(
                "-",
                Text.assemble(
                    (option.label, "dim strike"),
                    (f" (not available now: needs {requires_text(option)})", "dim"),
                ),
            )
    return table


def explain_option(
    model: Model,
    option: CompiledOption,
    index: int,
    available: bool,
    view: Any,
    names: Sequence[str],
    hidden: frozenset[str] = frozenset(),
) -> tuple[Text, Padding]:
    """Option `index` (0-based) in full, valued on the current state: heading, then details
    (an expression reading something the student does not see is shown as written)."""
    now, ladder = _Now(view, hidden), model.scenario.ladder
    lines: list[Any] = []
    if option.doc:
        lines.append(Text(option.doc, style="italic"))
    if not available:
        lines.append(Text(f"Not available now: needs {requires_text(option)}."))
    lines.append(
        Text(
            "Leaves the crisis on its rung."
            if option.rung is None
            else f"Moves the crisis to rung {option.rung} ({ladder[option.rung]})."
        )
    )
    if option.payoffs:
        lines.append(Text(f"Immediate payoffs: {payoff_text(option.payoffs, now, names)}."))
    if option.effects:
        lines.append(Text(f"Effects: {effects_text(model, option.effects, now)}."))
    if option.branches:
        lines.append(Text("Then one of:"))
        branches = Table.grid(padding=(0, 2, 0, 0))
        branches.add_column(justify="right")
        branches.add_column()
        lines.append(Padding(branches, (0, 0, 0, 2)))
        for branch, p in zip(option.branches, _branch_probabilities(option, now), strict=True):
            parts = []
            if branch.rung is not None and branch.rung != option.rung:
                parts.append(f"rung {branch.rung} ({ladder[branch.rung]})")
            if branch.payoffs:
                parts.append(f"payoffs {payoff_text(branch.payoffs, now, names)}")
            if branch.effects:
                parts.append(effects_text(model, branch.effects, now))
            what = f": {'; '.join(parts)}" if parts else ""
            branches.add_row(p, Text(f"{branch.label}{what}"))
    heading = Text(f"{index + 1}. {option.label} ({option.id})", style="bold")
    return heading, Padding(Group(*lines), (0, 0, 0, 3))


def payoff_text(payoffs: tuple, now: _Now, names: Sequence[str]) -> str:
    """Payoffs as 'You (US) -2, Iran +1', valued on the current state."""
    return ", ".join(f"{names[a]} {_value_text(e, now, signed=True)}" for a, e in payoffs)


def effects_text(model: Model, effects: CompiledEffects, now: _Now) -> str:
    """Effects on the state, valued on the current state."""
    names = model.state_names
    parts = [f"{names[v]} {_value_text(e, now, signed=True)}" for v, e in effects.add]
    parts += [f"{names[v]} set to {_value_text(e, now)}" for v, e in effects.set]
    return ", ".join(parts)


def expr_text(value: Any, signed: bool = False) -> str:
    """A scenario value as written: a number, true/false or the expression's text."""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, (int, float)):
        return fmt_signed(value) if signed else fmt(value)
    return str(value)


def requires_text(option: CompiledOption) -> str:
    """What an option needs to be available, as its expression's text."""
    return "nothing" if option.requires is None else option.requires.expr.source


def _value_now(expr: Any, now: _Now) -> float | None:
    """The expression's value on the current state; None when it draws at random."""
    compiled = expr.expr
    if compiled.constant is not None:
        return float(compiled.constant)
    if compiled.uses_random:
        return None
    try:
        with np.errstate(all="ignore"):
            return float(np.asarray(expr(now), dtype=float).reshape(-1)[0])
    except (_Now.Random, ValueError, TypeError, KeyError, IndexError):
        return None


def _value_text(expr: Any, now: _Now, signed: bool = False) -> str:
    """A constant as a number; else its value now and its text; only the text if it is random."""
    value = _value_now(expr, now)
    source = expr.expr.source
    if value is None:
        return source
    shown = fmt_signed(value) if signed else fmt(value)
    return shown if expr.expr.constant is not None else f"{shown} (= {source})"


def _branch_probabilities(option: CompiledOption, now: _Now) -> list[str]:
    values = [None if b.p is None else _value_now(b.p, now) for b in option.branches]
    given = [v for b, v in zip(option.branches, values, strict=True) if b.p is not None]
    rest = None if None in given else max(0.0, 1 - sum(given))
    out = []
    for branch, v in zip(option.branches, values, strict=True):
        if branch.p is None:
            out.append("the rest" if rest is None else pct(rest))
        else:
            out.append(branch.p.expr.source if v is None else pct(v))
    return out

"""`escalation play`: one crisis at the keyboard, the other actors following their policies.

A game is one run of the engine (runs=1, the given seed) with a Chooser that asks the student for
their actor's moves and an Observer that narrates every move, the branch drawn and the state of the
crisis. Input is a readline-style callable (prompt -> line, EOFError at the end) or a text stream,
output a text stream, so tests drive a game with io.StringIO. At the end the student's line of play
is set against the Monte Carlo distribution of the scenario's own policy for that actor.
"""

from __future__ import annotations

import shlex
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TextIO

import numpy as np
from rich.console import Console, Group
from rich.markdown import Markdown
from rich.padding import Padding
from rich.rule import Rule
from rich.table import Table
from rich.text import Text

from sim.engine import Observer, simulate_batch
from sim.model import PASS, CompiledEffects, CompiledOption, Model
from sim.report import describe_policy, fmt, fmt_signed, overrides_text
from sim.results import Results, summarise_batch, wilson_interval
from sim.runner import DEFAULT_BATCH_BLOCKS
from sim.streams import block_count

DEFAULT_COMPARE_RUNS = 20_000

LineReader = Callable[[str], str]
"""Like `input`: shows the prompt, returns the line without its newline, EOFError at the end."""


class QuitGame(Exception):
    """The student left the game (q, end of input); carries the reason for the summary line."""


def stream_reader(stream: TextIO, echo: TextIO | None = None) -> LineReader:
    """A LineReader over a text stream; with `echo`, prompt and answer are written there too,
    so a piped session reads like a terminal transcript."""

    def read(prompt: str) -> str:
        if echo is not None:
            echo.write(prompt)
            echo.flush()
        line = stream.readline()
        if not line:
            raise EOFError
        line = line.rstrip("\r\n")
        if echo is not None:
            echo.write(line + "\n")
        return line

    return read


@dataclass
class PolicyRuns:
    """A Monte Carlo experiment with the actor's per-run outcome, steps and payoff kept."""

    results: Results
    outcome: np.ndarray
    steps: np.ndarray
    payoffs: np.ndarray


@dataclass
class Comparison:
    """The student's game against the Monte Carlo distribution of the actor's own policy."""

    results: Results
    payoffs: np.ndarray  # the actor's payoff in each run
    outcome: int
    payoff: float

    @property
    def probability(self) -> tuple[float, float, float]:
        count = self.results.outcome_counts[self.outcome]
        lo, hi = wilson_interval(count, self.results.runs)
        return float(self.results.probabilities[self.outcome]), float(lo), float(hi)

    @property
    def payoff_rank(self) -> tuple[float, float]:
        """Shares of runs in which the actor did worse than, and as well as, the student."""
        tie = np.abs(self.payoffs - self.payoff) <= 1e-9 * max(1.0, abs(self.payoff))
        return float(np.mean((self.payoffs < self.payoff) & ~tie)), float(np.mean(tie))


def simulate_policy(model: Model, runs: int, seed: int, actor: int) -> PolicyRuns:
    """`run_monte_carlo(model, runs, seed)` (the same runs and numbers), keeping each run's
    outcome, steps and the actor's payoff. Run 0 has the same dice as a game with that seed."""
    summaries, outcome, steps, payoffs = [], [], [], []
    blocks = block_count(runs)
    for first in range(0, blocks, DEFAULT_BATCH_BLOCKS):
        count = min(DEFAULT_BATCH_BLOCKS, blocks - first)
        out = simulate_batch(model, seed, first, count, runs, record_moves=False)
        summaries += summarise_batch(model, out)
        outcome.append(out.records.outcome)
        steps.append(out.records.steps)
        payoffs.append(out.records.payoffs[actor])
    return PolicyRuns(
        Results.from_blocks(model, seed, summaries),
        np.concatenate(outcome),
        np.concatenate(steps),
        np.concatenate(payoffs),
    )


class _Now:
    """Evaluates an expression on the current state for `?`; random draws are refused, so asking
    for details never changes the game."""

    class Random(Exception):
        pass

    def __init__(self, view: Any):
        self.view = view
        self.size = view.size
        self.rng = self

    def value(self, name: str) -> Any:
        return self.view.value(name)

    def draw(self, kind: str, *args: Any) -> np.ndarray:
        raise self.Random


class Game(Observer):
    """One crisis played by a student as `actor`; `play()` returns the exit status (always 0)."""

    def __init__(
        self,
        model: Model,
        actor: str,
        seed: int,
        input: LineReader | TextIO,
        output: TextIO,
        *,
        compare_runs: int = DEFAULT_COMPARE_RUNS,
        width: int | None = None,
        color: bool | None = None,
        file: str | None = None,
    ):
        self.m = model
        self.s = model.scenario
        self.me = model.actor_index(actor)
        self.seed = seed
        self.compare_runs = compare_runs
        source = self.s._source
        self.file = file or (source.file if source is not None else self.s.id)
        self.out = output
        self.console = Console(
            file=output,
            width=width,
            highlight=False,
            force_terminal=color,
            no_color=color is False,
            emoji=False,
        )
        self.readline = input if callable(input) else stream_reader(input, output)
        self.menu = model.options[self.me]
        self.state = model.state_initial.copy()
        self.seen_state = self.state.copy()
        self.rung = self.peak = model.initial_rung
        self.pay = np.zeros(len(model.actors))
        self.step = self.shown_step = self.turns = 0
        self.pending: tuple[int, int | None] = (PASS, None)
        self.my_moves: list[int] = []

    def say(self, *parts: str | Text, style: str = "") -> None:
        """Print plain text (never rich markup: scenario text may hold brackets)."""
        self.console.print(Text.assemble(*parts, style=style))

    # --- the game ----------------------------------------------------------------------------

    def play(self) -> int:
        try:
            self.intro()
            out = simulate_batch(
                self.m, self.seed, 0, 1, 1, observer=self, choosers={self.me: self.choose}
            )
        except QuitGame as exc:
            self.stopped(str(exc))
            return 0
        except KeyboardInterrupt:
            self.stopped("interrupted")
            return 0
        rec = out.records
        outcome, steps, peak = int(rec.outcome[0]), int(rec.steps[0]), int(rec.peak_rung[0])
        self.finale(outcome, steps, peak, rec.payoffs[:, 0])
        try:
            self.compare(outcome, float(rec.payoffs[self.me, 0]), steps, peak)
        except KeyboardInterrupt:
            self.say("\nComparison interrupted.")
            return 0
        if self.s.teaching_notes.strip():
            self.console.print(Rule("Teaching notes"))
            self.console.print(Markdown(self.s.teaching_notes))
        return 0

    def name(self, actor: int) -> str:
        label = self.s.actors[self.m.actors[actor]].label
        return f"You ({label})" if actor == self.me else label

    def ended_as(self, outcome: int, steps: int | None = None) -> str:
        """'ended in Regional war (in week 9)' or 'was still going after 26 weeks (Ongoing)'."""
        s, oid = self.s, self.m.outcome_ids[outcome]
        if oid == s.end and oid not in s.outcomes:
            return f"was still going after {s.horizon} {s.step_label}s ({s.outcome_label(oid)})"
        when = "" if steps is None else f" in {s.step_label} {steps}"
        return f"ended in {s.outcome_label(oid)}{when}"

    def intro(self) -> None:
        s, me = self.s, self.m.actors[self.me]
        self.console.print(Rule(Text(s.title)))
        if s.summary:
            self.say(s.summary)
        order = ", then ".join(s.actors[a].label for a in s.turn_order)
        self.say(
            "\nYou play ",
            (s.actors[me].label, "bold"),
            f". Each {s.step_label}: {order}. "
            f"The crisis lasts at most {s.horizon} {s.step_label}s. How it can end:",
        )
        for oid in self.m.outcome_ids:
            terminal = s.outcomes.get(oid)
            if terminal is None:
                self.say(
                    f"  - {s.outcome_label(oid)}: still going after {s.horizon} {s.step_label}s"
                )
                continue
            pay = terminal.payoffs.get(me)
            yours = "" if pay is None else f"; your payoff {_expr_text(pay, signed=True)}"
            self.say(f"  - {s.outcome_label(oid)}: when {_expr_text(terminal.when)}{yours}")
        self.say(f"Seed {self.seed}: replay this crisis with --seed {self.seed}.")

    def enter(self, step: int) -> None:
        self.step = step
        if step > self.shown_step:
            self.shown_step = step
            self.console.print(Rule(f"{self.s.step_label.capitalize()} {step} of {self.s.horizon}"))

    # --- the Chooser -------------------------------------------------------------------------

    def choose(self, step: int, available: np.ndarray | None, view: Any) -> np.ndarray:
        self.enter(step)
        ok = [True] * len(self.menu) if available is None else [bool(a) for a in available[:, 0]]
        if not any(ok):
            self.say("You have no available option: you pass.")
            return np.full(view.size, PASS, dtype=np.int64)
        self.turns += 1
        self.show_situation(full=self.turns == 1)
        self.show_options(ok)
        choice = self.ask(ok, view)
        self.seen_state = self.state.copy()
        return np.full(view.size, choice, dtype=np.int64)

    def ask(self, ok: list[bool], view: Any) -> int:
        n = len(self.menu)
        prompt = f"Your move [1-{n}, ?N explains option N, s the state, q quits]: "
        while True:
            try:
                line = self.readline(prompt)
            except EOFError:
                self.out.write("\n")
                raise QuitGame("end of input") from None
            except KeyboardInterrupt:
                self.out.write("\n")
                raise
            text = line.strip().lower()
            if text in ("q", "quit", "exit"):
                raise QuitGame("you quit")
            if text in ("s", "state"):
                self.show_state(full=True)
            elif text in ("h", "help") or text.startswith("?") or text.endswith("?"):
                which = text.strip("?").strip()
                if which in ("", "h", "help"):
                    for i in range(n):
                        self.explain(i, ok[i], view)
                elif which.isdigit() and 1 <= int(which) <= n:
                    self.explain(int(which) - 1, ok[int(which) - 1], view)
                else:
                    self.say(f"There is no option {which}: the options are 1 to {n}.")
            else:
                index = self.option_number(text)
                if index is not None and ok[index]:
                    return index
                if index is None:
                    self.say(f"Please type a number from 1 to {n} (?N explains option N, q quits).")
                else:
                    option = self.menu[index]
                    self.say(
                        f"Option {index + 1} ({option.label}) is not available now: it "
                        f"needs {_requires_text(option)}."
                    )

    def option_number(self, text: str) -> int | None:
        if text.isdigit() and 1 <= int(text) <= len(self.menu):
            return int(text) - 1
        for option in self.menu:
            if text == option.id.lower():
                return option.index
        return None

    # --- what the student sees -----------------------------------------------------------------

    def ladder(self) -> Text:
        text = Text("ladder\n", style="bold")
        for r in reversed(range(self.m.n_rungs)):
            line = f"{r} {self.s.ladder[r]}"
            if r == self.rung:
                text.append(f"▶ {line} ◀ now", style="bold reverse")
            elif r == self.peak:
                text.append(f"  {line} (peak)", style="yellow")
            else:
                text.append(f"  {line}", style="dim" if r > self.peak else "")
            text.append("\n")
        text.rstrip()
        return text

    def state_table(self, full: bool) -> Table:
        table = Table(box=None, pad_edge=False, header_style="bold")
        table.add_column("state")
        table.add_column("now", justify="right")
        table.add_column("change", justify="right")
        if full:
            table.add_column("meaning", style="dim")
        for i, name in enumerate(self.m.state_names):
            var = self.s.state[name]
            delta = self.state[i] - self.seen_state[i]
            change = "" if abs(delta) < 1e-12 else fmt_signed(delta)
            row = [Text(var.label or name), fmt(self.state[i]), change]
            if full:
                row.append(Text(var.doc))
            table.add_row(*row, style="bold" if change else "")
        return table

    def show_state(self, full: bool) -> None:
        if self.m.state_names:
            self.console.print(self.state_table(full))

    def show_situation(self, full: bool) -> None:
        if full or not self.m.state_names:
            self.console.print(self.ladder())
            self.show_state(full)
        else:
            grid = Table.grid(padding=(0, 4))
            grid.add_row(self.ladder(), self.state_table(False))
            self.console.print(grid)
        self.say(f"Your payoff so far: {fmt(self.pay[self.me])}")

    def show_options(self, ok: list[bool]) -> None:
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
        for option, available in zip(self.menu, ok, strict=True):
            where = "" if option.rung is None else f" → {self.s.ladder[option.rung]}"
            if available:
                table.add_row(str(option.index + 1), Text.assemble(option.label, (where, "dim")))
            else:
                table.add_row(
                    "-",
                    Text.assemble(
                        (option.label, "dim strike"),
                        (f" (not available now: needs {_requires_text(option)})", "dim"),
                    ),
                )
        self.console.print(table)

    def explain(self, index: int, available: bool, view: Any) -> None:
        option, now = self.menu[index], _Now(view)
        lines: list[Any] = [Text(f"{index + 1}. {option.label} ({option.id})", style="bold")]
        if option.doc:
            lines.append(Text(option.doc, style="italic"))
        if not available:
            lines.append(Text(f"Not available now: needs {_requires_text(option)}."))
        lines.append(
            Text(
                "Leaves the crisis on its rung."
                if option.rung is None
                else f"Moves the crisis to rung {option.rung} ({self.s.ladder[option.rung]})."
            )
        )
        if option.payoffs:
            lines.append(Text(f"Immediate payoffs: {self.payoff_text(option.payoffs, now)}."))
        if option.effects:
            lines.append(Text(f"Effects: {self.effects_text(option.effects, now)}."))
        if option.branches:
            lines.append(Text("Then one of:"))
            branches = Table.grid(padding=(0, 2, 0, 0))
            branches.add_column(justify="right")
            branches.add_column()
            lines.append(Padding(branches, (0, 0, 0, 2)))
            for branch, p in zip(option.branches, _branch_probabilities(option, now), strict=True):
                parts = []
                if branch.rung is not None and branch.rung != option.rung:
                    parts.append(f"rung {branch.rung} ({self.s.ladder[branch.rung]})")
                if branch.payoffs:
                    parts.append(f"payoffs {self.payoff_text(branch.payoffs, now)}")
                if branch.effects:
                    parts.append(self.effects_text(branch.effects, now))
                what = f": {'; '.join(parts)}" if parts else ""
                branches.add_row(p, Text(f"{branch.label}{what}"))
        self.console.print(lines[0])
        self.console.print(Padding(Group(*lines[1:]), (0, 0, 0, 3)))

    def payoff_text(self, payoffs: tuple, now: _Now) -> str:
        return ", ".join(f"{self.name(a)} {_value_text(e, now, signed=True)}" for a, e in payoffs)

    def effects_text(self, effects: CompiledEffects, now: _Now) -> str:
        names = self.m.state_names
        parts = [f"{names[v]} {_value_text(e, now, signed=True)}" for v, e in effects.add]
        parts += [f"{names[v]} set to {_value_text(e, now)}" for v, e in effects.set]
        return ", ".join(parts)

    # --- the Observer: narration ---------------------------------------------------------------

    def chose(self, step, actor, runs, chosen) -> None:
        self.enter(step)
        self.pending = (int(chosen[0]), None)
        if actor == self.me:
            self.my_moves.append(int(chosen[0]))

    def branched(self, step, actor, option, runs, branch) -> None:
        self.pending = (option, int(branch[0]))

    def moved(self, step, actor, runs, before, after, rung, payoffs) -> None:
        option, branch = self.pending
        who = (self.name(actor), "bold cyan" if actor == self.me else "bold magenta")
        if option == PASS:
            text = Text.assemble(who, " passes (no option available)")
        else:
            chosen = self.m.options[actor][option]
            text = Text.assemble(who, ": ", chosen.label)
            if branch is not None:
                text.append(f" → {chosen.branches[branch].label}", style="bold")
        details = self.changes(after[:, 0], int(rung[0]), payoffs[:, 0])
        text.append(f". {details}." if details else ".")
        self.console.print(text)

    def stepped(self, step, runs, before, after, rung, payoffs) -> None:
        details = self.changes(after[:, 0], int(rung[0]), payoffs[:, 0])
        if details:
            self.say(f"End of {self.s.step_label} {step}: {details}.", style="dim")

    def ended(self, step, runs, outcome) -> None:
        self.say(f"The crisis {self.ended_as(int(outcome[0]), step)}.", style="bold")

    def changes(self, state: np.ndarray, rung: int, pay: np.ndarray) -> str:
        """What changed since the last event (rung, state, the student's payoff); tracks it."""
        parts = []
        if rung != self.rung:
            parts.append(
                f"rung {'up' if rung > self.rung else 'down'} to {rung} ({self.s.ladder[rung]})"
            )
        for i, name in enumerate(self.m.state_names):
            if abs(state[i] - self.state[i]) > 1e-12:
                label = self.s.state[name].label or name
                parts.append(f"{label} {fmt(self.state[i])}→{fmt(state[i])}")
        delta = pay[self.me] - self.pay[self.me]
        if abs(delta) > 1e-12:
            parts.append(f"your payoff {fmt_signed(delta)}")
        self.state, self.pay = state.copy(), pay.copy()
        self.rung, self.peak = rung, max(self.peak, rung)
        return ", ".join(parts)

    # --- the end -------------------------------------------------------------------------------

    def stopped(self, reason: str) -> None:
        where = (
            f"in {self.s.step_label} {self.step} of {self.s.horizon}"
            if self.step
            else "before the first move"
        )
        self.console.print(
            Text(
                f"Game over ({reason}): stopped {where} on rung {self.rung} "
                f"({self.s.ladder[self.rung]}) with no outcome yet; your payoff so far "
                f"{fmt(self.pay[self.me])}. Replay with --seed {self.seed}."
            ),
            soft_wrap=True,
        )

    def finale(self, outcome: int, steps: int, peak: int, payoffs: np.ndarray) -> None:
        s = self.s
        self.console.print(Rule("The crisis is over"))
        self.say(
            f"Your crisis {self.ended_as(outcome, steps)}; the highest rung was {peak} "
            f"({s.ladder[peak]})."
        )
        self.say("Payoffs, summed over the crisis:", style="bold")
        table = Table(box=None, show_header=False, pad_edge=False)
        table.add_column()
        table.add_column(justify="right")
        for a in range(len(self.m.actors)):
            table.add_row(Text(self.name(a)), fmt(payoffs[a]), style="bold" if a == self.me else "")
        self.console.print(table)

    def compare(self, outcome: int, payoff: float, steps: int, peak: int) -> None:
        s, m, me = self.s, self.m, self.me
        if self.compare_runs <= 0 or m.policies[me] is None:
            return
        self.console.print(Rule("How your line of play compares"))
        sim = simulate_policy(m, self.compare_runs, self.seed, me)
        results = sim.results
        cmp = Comparison(results, sim.payoffs, outcome, payoff)
        p, lo, hi = cmp.probability
        label = s.actors[m.actors[me]].label
        policy = describe_policy(s, m.actors[me], parameters=m.parameters)
        self.say(
            f"The scenario's own policy for {label}: {policy}. Played {results.runs:,} "
            f"times (seed {self.seed}):"
        )
        self.say(
            f"- Your crisis {self.ended_as(outcome)}; with that policy this happens in ",
            (f"{_pct(p)} ({_pct(lo)}-{_pct(hi)})", "bold"),
            f" of {results.runs:,} runs.",
        )
        mean = results.payoff_mean[me]
        plo, phi = results.payoff_interval()
        q05, q50, q95 = np.quantile(sim.payoffs, [0.05, 0.5, 0.95], method="inverted_cdf")
        below, tie = cmp.payoff_rank
        ties = f" (as well as you in {_pct(tie)})" if tie >= 0.0005 else ""
        self.say(
            "- Your payoff: ",
            (fmt(payoff), "bold"),
            f". With that policy {label} "
            f"averages {fmt(mean)} (95% interval {fmt(plo[me])} to {fmt(phi[me])}; median "
            f"{fmt(q50)}, 90% of runs between {fmt(q05)} and {fmt(q95)}). You did better "
            f"than {_pct(below)} of the runs{ties}.",
        )
        st = results.steps_summary()
        self.say(
            f"- Your crisis lasted {steps} {s.step_label}s and peaked at rung {peak}; with "
            f"that policy the median run lasts {st['p50']} {s.step_label}s and the mean "
            f"peak rung is {results.peak_mean():.2f}."
        )
        same = int(sim.outcome[0])
        self.say(
            f"- With the same dice (run 0 of seed {self.seed}), that policy's crisis "
            f"{self.ended_as(same, int(sim.steps[0]))}, payoff "
            f"{fmt(sim.payoffs[0])}."
        )
        mine = np.bincount(
            np.array(self.my_moves, dtype=np.int64) + 1, minlength=len(self.menu) + 1
        )
        self.say(
            f"- Your moves: {_shares(mine, self.menu)}. The policy's moves: "
            f"{_shares(results.moves[me], self.menu)}."
        )
        table = Table(title="Outcomes with that policy", title_justify="left", title_style="bold")
        for col, justify in (
            ("outcome", "left"),
            ("probability", "right"),
            ("95% interval", "right"),
            ("", "left"),
        ):
            table.add_column(col, justify=justify)
        lo_all, hi_all = results.intervals()
        for i, oid in enumerate(m.outcome_ids):
            table.add_row(
                Text(s.outcome_label(oid)),
                _pct(results.probabilities[i]),
                f"{_pct(lo_all[i])}-{_pct(hi_all[i])}",
                "◀ yours" if i == outcome else "",
                style="bold" if i == outcome else "",
            )
        self.console.print(table)
        self.console.print(
            Text(f"Reproduce these numbers: {self.run_command(results.runs)}"), soft_wrap=True
        )

    def run_command(self, runs: int) -> str:
        return (
            f"escalation run {shlex.quote(self.file)} --runs {runs} --seed {self.seed}"
            f"{overrides_text(self.m)}"
        )


# --- formatting helpers ---------------------------------------------------------------------


def _pct(x: float) -> str:
    return f"{100 * x:.1f}%"


def _shares(counts: np.ndarray, menu: tuple[CompiledOption, ...]) -> str:
    total = counts.sum()
    if not total:
        return "none"
    names = ["pass"] + [o.id for o in menu]
    order = sorted(range(len(counts)), key=lambda k: -counts[k])
    shares = [(names[k], counts[k] / total) for k in order if counts[k]]
    return ", ".join(f"{name} {'<0.1%' if x < 0.0005 else _pct(x)}" for name, x in shares)


def _expr_text(value: Any, signed: bool = False) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, (int, float)):
        return fmt_signed(value) if signed else fmt(value)
    return str(value)


def _requires_text(option: CompiledOption) -> str:
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
            out.append("the rest" if rest is None else _pct(rest))
        else:
            out.append(branch.p.expr.source if v is None else _pct(v))
    return out

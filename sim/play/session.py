"""`escalation play`: one crisis at the keyboard, the other actors following their policies.

A game is one run of the engine (runs=1, the given seed) with a Chooser that asks the student for
their actor's moves and an Observer that narrates every move, the branch drawn and the state of the
crisis. Input is a readline-style callable (prompt -> line, EOFError at the end) or a text stream,
output a text stream, so tests drive a game with io.StringIO. At the end the student's line of play
is set against the Monte Carlo distribution of the scenario's own policy for that actor.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from contextlib import AbstractContextManager as ContextManager
from typing import Any, TextIO

import numpy as np
from rich.markdown import Markdown
from rich.rule import Rule
from rich.table import Table
from rich.text import Text

from sim.engine.batch import Observer, simulate_batch
from sim.model.compiled import PASS, Model
from sim.model.views import seen_by
from sim.outputs.report_text import fmt, fmt_signed
from sim.outputs.tables import Terminal
from sim.play.debrief import (
    Comparison,
    Played,
    PolicyRuns,
    debrief,
    finale_lines,
    simulate_policy,
    stopped_text,
)
from sim.play.trace import check_payoff_totals
from sim.play.view import (
    ended_as,
    explain_option,
    hidden_names,
    intro_lines,
    ladder_text,
    options_table,
    requires_text,
    state_table,
)

__all__ = [
    "BadInput",
    "Comparison",
    "Game",
    "PolicyRuns",
    "QuitGame",
    "simulate_policy",
    "stream_reader",
]

DEFAULT_COMPARE_RUNS = 20_000
MAX_LINE = 1000
"""Longest answer read from a stream; a longer line (or endless input such as /dev/zero) is not
an answer and ends the game with exit status 2."""
MAX_INVALID = 100
"""Unrecognised answers in a row that end the game (`yes x | escalation play ...` must end)."""
EXIT_INTERRUPTED = 130

LineReader = Callable[[str], str]
"""Like `input`: shows the prompt, returns the line without its newline, EOFError at the end."""


class QuitGame(Exception):
    """The student left the game (q, end of input); carries the reason for the summary line."""

    status = 0


class BadInput(QuitGame):
    """The input is not answers (binary, endless, an overlong line): the game stops, exit 2."""

    status = 2


def stream_reader(stream: TextIO, echo: TextIO | None = None) -> LineReader:
    """A LineReader over a text stream; with `echo`, prompt and answer are written there too,
    so a piped session reads like a terminal transcript."""

    def read(prompt: str) -> str:
        if echo is not None:
            echo.write(prompt)
            echo.flush()
        try:
            line = stream.readline(MAX_LINE + 1)
        except UnicodeDecodeError:
            raise BadInput("the input is not text") from None
        if not line:
            raise EOFError
        if len(line) > MAX_LINE and not line.endswith("\n"):
            raise BadInput(f"an answer longer than {MAX_LINE:,} characters")
        if "\0" in line:
            raise BadInput("the input is not text")
        line = line.rstrip("\r\n")
        if echo is not None:
            echo.write(line + "\n")
        return line

    return read


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
        busy: Callable[[str], ContextManager[Any]] | None = None,
    ):
        self.m = model
        self.s = model.scenario
        self.me = model.actor_index(actor)
        self.seed = seed
        self.compare_runs = compare_runs
        source = self.s._source
        self.file = file or (source.file if source is not None else self.s.id)
        self.out = output
        self.console = Terminal(
            file=output,
            width=width,
            highlight=False,
            force_terminal=color,
            no_color=color is False,
            emoji=False,
        )
        self.readline = input if callable(input) else stream_reader(input, output)
        self.busy = busy or (lambda label: contextlib.nullcontext())
        """`busy(label)`: a context shown while the debrief simulates (a progress indicator)."""
        self.menu = model.options[self.me]
        self.state = model.state_initial.copy()
        self.seen_state = self.state.copy()
        self.rung = self.peak = model.initial_rung
        self.pay = np.zeros(len(model.actors))
        self.step = self.shown_step = self.turns = 0
        self.pending: tuple[int, int | None] = (PASS, None)
        self.my_moves: list[int] = []
        self.hidden = hidden_names(model, self.me)
        self.secret = model.hidden_information
        """With hidden information the student sees only its actor's view, and its payoff
        (which may betray what it does not see) only at the end."""
        self.unseen: list[str] = []
        """What happened out of the student's sight, told in the debrief."""

    def say(self, *parts: str | Text, style: str = "") -> None:
        """Print plain text (never rich markup: scenario text may hold brackets)."""
        self.console.print(Text.assemble(*parts, style=style))

    # --- the game ----------------------------------------------------------------------------

    def play(self) -> int:
        """Play the game; the exit status: 0 when it ends or the student leaves (q, end of
        input), 2 when the input is not answers, 130 after Ctrl-C."""
        try:
            self.intro()
            out = simulate_batch(
                self.m, self.seed, 0, 1, 1, observer=self, choosers={self.me: self.choose}
            )
        except QuitGame as exc:
            self.stopped(str(exc))
            return exc.status
        except KeyboardInterrupt:
            self.stopped("interrupted")
            return EXIT_INTERRUPTED
        rec = out.records
        outcome, steps, peak = int(rec.outcome[0]), int(rec.steps[0]), int(rec.peak_rung[0])
        self.finale(outcome, steps, peak, rec.payoffs[:, 0])
        self.reveal(rec.state[:, 0])
        try:
            self.compare(outcome, float(rec.payoffs[self.me, 0]), steps, peak)
        except KeyboardInterrupt:
            self.say("\nComparison interrupted.")
            return EXIT_INTERRUPTED
        if self.s.teaching_notes.strip():
            self.console.print(Rule("Teaching notes"))
            self.console.print(Markdown(self.s.teaching_notes))
        return 0

    def name(self, actor: int) -> str:
        label = self.s.actors[self.m.actors[actor]].label
        return f"You ({label})" if actor == self.me else label

    def intro(self) -> None:
        for line in intro_lines(self.m, self.me, self.seed):
            self.console.print(line)

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
        invalid = 0
        while True:
            if invalid >= MAX_INVALID:
                raise BadInput(f"{MAX_INVALID} answers in a row were not moves")
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
                elif (k := self.option_number(which)) is not None:
                    self.explain(k, ok[k], view)
                else:
                    invalid += 1
                    self.say(f"There is no option {which[:20]}: the options are 1 to {n}.")
            else:
                index = self.option_number(text)
                if index is not None and ok[index]:
                    return index
                invalid += 1
                if index is None:
                    self.say(f"Please type a number from 1 to {n} (?N explains option N, q quits).")
                else:
                    option = self.menu[index]
                    self.say(
                        f"Option {index + 1} ({option.label}) is not available now: it "
                        f"needs {requires_text(option)}."
                    )

    def option_number(self, text: str) -> int | None:
        """The 0-based option a typed number or option id names; None for anything else (ASCII
        digits only, and short: int() of thousands of digits raises, of '²' too)."""
        short = text.isascii() and text.isdigit() and len(text) <= 6
        if short and 1 <= int(text) <= len(self.menu):
            return int(text) - 1
        for option in self.menu:
            if text == option.id.lower():
                return option.index
        return None

    # --- what the student sees -----------------------------------------------------------------

    def show_state(self, full: bool) -> None:
        if self.m.state_names:
            self.console.print(self.state_view(full))

    def state_view(self, full: bool) -> Table:
        return state_table(self.m, self.state, self.seen_state, full, self.hidden)

    def show_situation(self, full: bool) -> None:
        ladder = ladder_text(self.m, self.rung, self.peak)
        if full or not self.m.state_names:
            self.console.print(ladder)
            self.show_state(full)
        else:
            grid = Table.grid(padding=(0, 4))
            grid.add_row(ladder, self.state_view(False))
            self.console.print(grid)
        if self.secret:
            self.say("Your payoff is told at the end (it could betray what you cannot see).")
        else:
            self.say(f"Your payoff so far: {fmt(self.pay[self.me])}")

    def show_options(self, ok: list[bool]) -> None:
        self.console.print(options_table(self.m, self.menu, ok))

    def explain(self, index: int, available: bool, view: Any) -> None:
        names = [self.name(a) for a in range(len(self.m.actors))]
        menu = self.menu[index]
        for part in explain_option(self.m, menu, index, available, view, names, self.hidden):
            self.console.print(part)

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
        label = None if option == PASS or actor == self.me else seen_by(self.m, actor, option)
        label = (label or {}).get(self.m.actors[self.me], "as it is")
        if option == PASS:
            text = Text.assemble(who, " passes (no option available)")
        elif label is None:
            text = Text.assemble(who, " made a move you did not see")
        elif label != "as it is":
            text = Text.assemble(who, ": ", label.replace("_", " "))
        else:
            chosen = self.m.options[actor][option]
            text = Text.assemble(who, ": ", chosen.label)
            if branch is not None:
                text.append(f" → {chosen.branches[branch].label}", style="bold")
        if label != "as it is" and option != PASS:
            chosen = self.m.options[actor][option]
            drawn = "" if branch is None else f" → {chosen.branches[branch].label}"
            self.unseen.append(
                f"{self.s.step_label.capitalize()} {step}: {self.name(actor)} played "
                f"{chosen.label}{drawn} (you saw {'nothing' if label is None else label})"
            )
        details = self.changes(after[:, 0], int(rung[0]), payoffs[:, 0])
        text.append(f". {details}." if details else ".")
        self.console.print(text)

    def stepped(self, step, runs, before, after, rung, payoffs) -> None:
        details = self.changes(after[:, 0], int(rung[0]), payoffs[:, 0])
        if details:
            self.say(f"End of {self.s.step_label} {step}: {details}.", style="dim")

    def ended(self, step, runs, outcome) -> None:
        self.say(f"The crisis {ended_as(self.m, int(outcome[0]), step)}.", style="bold")

    def changes(self, state: np.ndarray, rung: int, pay: np.ndarray) -> str:
        """What changed since the last event (rung, state, the student's payoff); tracks it."""
        check_payoff_totals(self.m, pay)  # a total that overflowed stops the game, never `inf`
        parts = []
        if rung != self.rung:
            parts.append(
                f"rung {'up' if rung > self.rung else 'down'} to {rung} ({self.s.ladder[rung]})"
            )
        for i, name in enumerate(self.m.state_names):
            if abs(state[i] - self.state[i]) > 1e-12 and name not in self.hidden:
                label = self.s.state[name].label or name
                parts.append(f"{label} {fmt(self.state[i])}→{fmt(state[i])}")
        delta = pay[self.me] - self.pay[self.me]
        if abs(delta) > 1e-12 and not self.secret:
            parts.append(f"your payoff {fmt_signed(delta)}")
        self.state, self.pay = state.copy(), pay.copy()
        self.rung, self.peak = rung, max(self.peak, rung)
        return ", ".join(parts)

    # --- the end -------------------------------------------------------------------------------

    def stopped(self, reason: str) -> None:
        text = stopped_text(self.m, self.me, reason, self.step, self.rung, self.pay, self.seed)
        self.console.print(text, soft_wrap=True)

    def finale(self, outcome: int, steps: int, peak: int, payoffs: np.ndarray) -> None:
        names = [self.name(a) for a in range(len(self.m.actors))]
        for line in finale_lines(self.m, self.me, names, outcome, steps, peak, payoffs):
            self.console.print(line)

    def reveal(self, final_state: np.ndarray) -> None:
        """The debrief of a game with hidden information: what the student did not see."""
        if not self.secret:
            return
        self.console.print(Rule("What you did not see"))
        for line in self.unseen or ["Every move was in plain sight."]:
            self.say(line)
        for i, name in enumerate(self.m.state_names):
            if name in self.hidden:
                label = self.s.state[name].label or name
                self.say(f"{label} (hidden from you) ended at {fmt(final_state[i])}.")

    def compare(self, outcome: int, payoff: float, steps: int, peak: int) -> None:
        if self.compare_runs <= 0 or self.m.policies[self.me] is None:
            return
        self.console.print(Rule("How your line of play compares"))
        played = Played(outcome, payoff, steps, peak, self.my_moves)
        debrief(
            self.console,
            self.m,
            self.me,
            self.seed,
            self.compare_runs,
            self.file,
            played,
            busy=self.busy,
        )

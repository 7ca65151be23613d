"""The end of a `play` game: where it stopped or how it ended, and the policy's runs compared."""

from __future__ import annotations

import contextlib
import shlex
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager as ContextManager
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from rich.console import Console, RenderableType
from rich.rule import Rule
from rich.table import Table
from rich.text import Text

from sim.engine.runner import run_with_records
from sim.model.compiled import CompiledOption, Model
from sim.outputs.report_text import describe_policy, fmt, overrides_text, pct
from sim.play.view import ended_as
from sim.results import Results, wilson_interval


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


@dataclass
class Played:
    """How the student's crisis went: outcome, the student's payoff, length, peak and moves."""

    outcome: int
    payoff: float
    steps: int
    peak: int
    moves: list[int] = field(default_factory=list)


def stopped_text(
    model: Model, me: int, reason: str, step: int, rung: int, pay: np.ndarray, seed: int
) -> Text:
    """The summary of a game left before its end (q, end of input, Ctrl-C)."""
    s = model.scenario
    where = f"in {s.step_label} {step} of {s.horizon}" if step else "before the first move"
    return Text(
        f"Game over ({reason}): stopped {where} on rung {rung} ({s.ladder[rung]}) with no "
        f"outcome yet; your payoff so far {fmt(pay[me])}. Replay with --seed {seed}."
    )


def finale_lines(
    model: Model,
    me: int,
    names: Sequence[str],
    outcome: int,
    steps: int,
    peak: int,
    payoffs: np.ndarray,
) -> list[RenderableType]:
    """How the crisis ended, its highest rung and every actor's payoff (`names`: as shown)."""
    table = Table(box=None, show_header=False, pad_edge=False)
    table.add_column()
    table.add_column(justify="right")
    for a in range(len(model.actors)):
        table.add_row(Text(names[a]), fmt(payoffs[a]), style="bold" if a == me else "")
    return [
        Rule("The crisis is over"),
        Text.assemble(
            f"Your crisis {ended_as(model, outcome, steps)}; the highest rung was {peak} "
            f"({model.scenario.ladder[peak]})."
        ),
        Text.assemble("Payoffs, summed over the crisis:", style="bold"),
        table,
    ]


def simulate_policy(model: Model, runs: int, seed: int, actor: int) -> PolicyRuns:
    """`run_monte_carlo(model, runs, seed)` (the same runs and numbers), keeping each run's
    outcome, steps and the actor's payoff. Run 0 has the same dice as a game with that seed."""
    results, table = run_with_records(model, runs, seed)
    return PolicyRuns(results, table.outcome, table.steps, table.payoffs[actor])


def debrief(
    console: Console,
    model: Model,
    me: int,
    seed: int,
    runs: int,
    file: str,
    played: Played,
    busy: Callable[[str], ContextManager[Any]] | None = None,
) -> None:
    """Play the actor's own policy `runs` times and print how the student's game compares.
    `busy(label)` is entered while the runs are simulated (a progress indicator)."""
    s, menu = model.scenario, model.options[me]

    def say(*parts: str | tuple[str, str]) -> None:
        console.print(Text.assemble(*parts))

    busy = busy or (lambda label: contextlib.nullcontext())
    with busy(f"playing the scenario's own policy {runs:,} times"):
        sim = simulate_policy(model, runs, seed, me)
    results = sim.results
    cmp = Comparison(results, sim.payoffs, played.outcome, played.payoff)
    p, lo, hi = cmp.probability
    label = s.actors[model.actors[me]].label
    policy = describe_policy(s, model.actors[me], parameters=model.parameters)
    say(
        f"The scenario's own policy for {label}: {policy}. Played {results.runs:,} "
        f"times (seed {seed}):"
    )
    say(
        f"- Your crisis {ended_as(model, played.outcome)}; with that policy this happens in ",
        (f"{pct(p)} ({pct(lo)}-{pct(hi)})", "bold"),
        f" of {results.runs:,} runs.",
    )
    mean = results.payoff_mean[me]
    plo, phi = results.payoff_interval()
    q05, q50, q95 = np.quantile(sim.payoffs, [0.05, 0.5, 0.95], method="inverted_cdf")
    below, tie = cmp.payoff_rank
    ties = f" (as well as you in {pct(tie)})" if tie >= 0.0005 else ""
    say(
        "- Your payoff: ",
        (fmt(played.payoff), "bold"),
        f". With that policy {label} "
        f"averages {fmt(mean)} (95% interval {fmt(plo[me])} to {fmt(phi[me])}; median "
        f"{fmt(q50)}, 90% of runs between {fmt(q05)} and {fmt(q95)}). You did better "
        f"than {pct(below)} of the runs{ties}.",
    )
    st = results.steps_summary()
    say(
        f"- Your crisis lasted {played.steps} {s.step_label}s and peaked at rung {played.peak}; "
        f"with that policy the median run lasts {st['p50']} {s.step_label}s and the mean "
        f"peak rung is {results.peak_mean():.2f}."
    )
    say(
        f"- With the same dice (run 0 of seed {seed}), that policy's crisis "
        f"{ended_as(model, int(sim.outcome[0]), int(sim.steps[0]))}, payoff "
        f"{fmt(sim.payoffs[0])}."
    )
    mine = np.bincount(np.array(played.moves, dtype=np.int64) + 1, minlength=len(menu) + 1)
    say(
        f"- Your moves: {_shares(mine, menu)}. The policy's moves: "
        f"{_shares(results.moves[me], menu)}."
    )
    console.print(_outcomes_table(model, results, played.outcome))
    console.print(
        Text(f"Reproduce these numbers: {run_command(file, model, seed, results.runs)}"),
        soft_wrap=True,
    )


def _outcomes_table(model: Model, results: Results, outcome: int) -> Table:
    table = Table(title="Outcomes with that policy", title_justify="left", title_style="bold")
    for col, justify in (
        ("outcome", "left"),
        ("probability", "right"),
        ("95% interval", "right"),
        ("", "left"),
    ):
        table.add_column(col, justify=justify)
    lo_all, hi_all = results.intervals()
    for i, oid in enumerate(model.outcome_ids):
        table.add_row(
            Text(model.scenario.outcome_label(oid)),
            pct(results.probabilities[i]),
            f"{pct(lo_all[i])}-{pct(hi_all[i])}",
            "◀ yours" if i == outcome else "",
            style="bold" if i == outcome else "",
        )
    return table


def run_command(file: str, model: Model, seed: int, runs: int) -> str:
    """The `escalation run` command that reproduces the comparison's numbers."""
    return f"escalation run {shlex.quote(file)} --runs {runs} --seed {seed}{overrides_text(model)}"


def _shares(counts: np.ndarray, menu: tuple[CompiledOption, ...]) -> str:
    total = counts.sum()
    if not total:
        return "none"
    names = ["pass"] + [o.id for o in menu]
    order = sorted(range(len(counts)), key=lambda k: -counts[k])
    shares = [(names[k], counts[k] / total) for k in order if counts[k]]
    return ", ".join(f"{name} {'<0.1%' if x < 0.0005 else pct(x)}" for name, x in shares)

"""One run told as a story: who moved, which branch was drawn, what changed, how it ended.

The run is replayed inside its own block with the block's stream, so the story is exactly the
run with that index in `escalation run` with the same seed and run count.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
from rich.markup import escape as esc

from sim.engine.batch import Observer, simulate_batch
from sim.engine.streams import BLOCK_SIZE
from sim.errors import SimulationError
from sim.model.compiled import PASS, Model
from sim.model.views import seen, seen_by
from sim.outputs.beliefs import belief_text
from sim.outputs.report_text import model_overrides, settings_text
from sim.solvers.information import beliefs


@dataclass
class Move:
    step: int
    actor: str
    option: str | None  # None: the actor passed
    label: str
    branch: str | None = None
    branch_label: str | None = None
    changes: dict[str, tuple[float, float]] = field(default_factory=dict)
    rung: int = 0
    seen_by: dict[str, str | None] = field(default_factory=dict)
    """Viewers who saw this move under another label (None: they did not see it)."""
    sees: dict[str, Any] | None = None
    """With hidden information: what the mover saw when it chose."""
    beliefs: list[dict] | None = None
    """A strategic mover's beliefs about what it did not see (its information set)."""


@dataclass
class Story:
    """The events of one run, in order."""

    model: Model
    seed: int
    run: int
    moves: list[Move] = field(default_factory=list)
    step_changes: dict[int, dict[str, tuple[float, float]]] = field(default_factory=dict)
    outcome: str | None = None
    steps: int = 0
    payoffs: dict[str, float] = field(default_factory=dict)
    final_rung: int = 0
    peak_rung: int = 0

    def to_json(self) -> dict[str, Any]:
        m = self.model
        return {
            "scenario": m.scenario.id,
            "scenario_sha256": m.sha256,
            "seed": self.seed,
            "run": self.run,
            "parameters": dict(m.parameters),
            "outcome": self.outcome,
            "steps": self.steps,
            "payoffs": self.payoffs,
            "peak_rung": self.peak_rung,
            "moves": [
                {
                    "step": mv.step,
                    "actor": mv.actor,
                    "option": mv.option,
                    "branch": mv.branch,
                    "rung": mv.rung,
                    "changes": {k: {"from": a, "to": b} for k, (a, b) in mv.changes.items()},
                    **self._views_json(mv),
                }
                for mv in self.moves
            ],
        }

    def _views_json(self, mv: Move) -> dict[str, Any]:
        if not self.model.hidden_information:
            return {}
        out: dict[str, Any] = {"seen_by": mv.seen_by, "sees": mv.sees}
        if mv.beliefs is not None:
            out["beliefs"] = mv.beliefs
        return out


def _frozen(sees: dict | None) -> tuple:
    return tuple(sorted((sees or {}).items()))


class _Recorder(Observer):
    def __init__(self, model: Model, story: Story, with_beliefs: bool = False):
        self.m = model
        self.story = story
        self.run = story.run
        self.sees: dict | None = None
        self.beliefs = {}
        solution = model.strategic
        if with_beliefs and solution is not None and solution.equilibrium is not None:
            for entry in beliefs(model, model.strategic):
                key = (entry["step"], entry["actor"], _frozen(entry["sees"]))
                self.beliefs[key] = entry["beliefs"]

    def _where(self, runs: np.ndarray) -> int | None:
        hit = np.flatnonzero(runs == self.run)
        return int(hit[0]) if hit.size else None

    def _changes(self, i: int, before: np.ndarray, after: np.ndarray) -> dict:
        return {
            name: (float(before[v, i]), float(after[v, i]))
            for v, name in enumerate(self.m.state_names)
            if before[v, i] != after[v, i]
        }

    def deciding(self, step, actor, runs, x, rung, last):
        i = self._where(runs)
        if i is not None and self.m.hidden_information:
            self.sees = seen(self.m, actor, x[:, i], int(rung[i]), last[:, i])

    def chose(self, step, actor, runs, chosen):
        i = self._where(runs)
        if i is None:
            return
        code = int(chosen[i])
        name = self.m.actors[actor]
        if code == PASS:
            move = Move(step, name, None, "passes (no option available)")
        else:
            option = self.m.options[actor][code]
            move = Move(step, name, option.id, option.label)
            move.seen_by = seen_by(self.m, actor, code)
        if self.m.hidden_information:
            move.sees = self.sees
            move.beliefs = self.beliefs.get((step, name, _frozen(self.sees)))
        self.story.moves.append(move)

    def branched(self, step, actor, option, runs, branch):
        i = self._where(runs)
        if i is not None:
            b = self.m.options[actor][option].branches[int(branch[i])]
            self.story.moves[-1].branch = b.id
            self.story.moves[-1].branch_label = b.label

    def moved(self, step, actor, runs, before, after, rung, payoffs):
        i = self._where(runs)
        if i is not None:
            self.story.moves[-1].changes = self._changes(i, before, after)
            self.story.moves[-1].rung = int(rung[i])

    def stepped(self, step, runs, before, after, rung, payoffs):
        i = self._where(runs)
        if i is not None:
            self.story.step_changes[step] = self._changes(i, before, after)

    def ended(self, step, runs, outcome):
        i = self._where(runs)
        if i is not None:
            self.story.outcome = self.m.outcome_ids[int(outcome[i])]
            self.story.steps = step


def check_payoff_totals(model: Model, payoffs: np.ndarray) -> None:
    """Refuse payoff totals that overflowed (rows: actors; columns, if any: runs), naming the
    actor, as Monte Carlo does (sim.results.summarise_batch): never `inf` in a story or a game."""
    finite = np.isfinite(payoffs).reshape(len(payoffs), -1).all(axis=1)
    if not finite.all():
        actor = model.actors[int(np.flatnonzero(~finite)[0])]
        raise SimulationError(f"the payoffs of {actor} overflow (a run's total is not finite)")


def trace_run(model: Model, seed: int, run: int, with_beliefs: bool = False) -> Story:
    """Replay run `run` of any experiment with `seed` (a run does not depend on the run count);
    `with_beliefs`: record each strategic mover's beliefs at its information set."""
    if run < 0:
        raise ValueError(f"run {run} must be >= 0")
    story = Story(model, seed, run)
    block = run // BLOCK_SIZE
    runs = (block + 1) * BLOCK_SIZE
    out = simulate_batch(
        model, seed, block, 1, runs, observer=_Recorder(model, story, with_beliefs)
    )
    local = run - out.records.first_run
    check_payoff_totals(model, out.records.payoffs[:, local : local + 1])  # never `inf`
    story.payoffs = {a: float(out.records.payoffs[k, local]) for k, a in enumerate(model.actors)}
    story.final_rung = int(out.records.final_rung[local])
    story.peak_rung = int(out.records.peak_rung[local])
    return story


def rung_gauge(model: Model, rung: int) -> str:
    """A small text ladder: one mark per rung, filled up to the current one."""
    marks = "".join("█" if r <= rung else "·" for r in range(model.n_rungs))
    return f"{marks} {rung} {esc(model.scenario.ladder[rung])}"


def _fmt(x: float) -> str:
    return f"{x:g}" if float(x).is_integer() else f"{x:.3g}"


def story_lines(story: Story) -> list[str]:
    """The story as plain text lines (rich markup for emphasis)."""
    m = story.model
    s = m.scenario
    unit = s.step_label
    lines = [
        f"[bold]{esc(s.title)}[/bold] — run {story.run}, seed {story.seed}, parameters: "
        + esc(settings_text(model_overrides(m))),
        f"Start: {rung_gauge(m, m.initial_rung)}",
    ]
    current = None
    hidden = _hidden_from(m)
    for mv in story.moves:
        if mv.step != current:
            current = mv.step
            if current > 1 and current - 1 in story.step_changes:
                lines += _change_lines(
                    story.step_changes[current - 1], f"end of {unit} {current - 1}", hidden
                )
            lines.append(f"[bold]{unit.capitalize()} {current}[/bold]")
        who = esc(s.actors[mv.actor].label)
        text = f"  {who}: {esc(mv.label)}" if mv.option else f"  {who} {esc(mv.label)}"
        if mv.branch_label:
            text += f"  [italic]→ {esc(mv.branch_label)}[/italic]"
        lines.append(text)
        lines += _view_lines(m, mv)
        lines += _change_lines(mv.changes, None, hidden)
        lines.append(f"      ladder {rung_gauge(m, mv.rung)}")
    if story.steps in story.step_changes:
        lines += _change_lines(
            story.step_changes[story.steps], f"end of {unit} {story.steps}", hidden
        )
    label = esc(s.outcome_label(story.outcome)) if story.outcome else "?"
    lines.append(
        f"[bold]Outcome: {label}[/bold] in {unit} {story.steps} "
        f"(peak rung {story.peak_rung}: {esc(s.ladder[story.peak_rung])})"
    )
    lines.append(
        "Payoffs: "
        + ", ".join(f"{esc(s.actors[a].label)} {v:.2f}" for a, v in story.payoffs.items())
    )
    return lines


def _hidden_from(model: Model) -> dict[str, list[str]]:
    """Each state variable some actor does not see, with those actors."""
    s = model.scenario
    return {
        name: [a for a in s.actors if a not in var.visible_to]
        for name, var in s.state.items()
        if var.visible_to is not None and set(var.visible_to) != set(s.actors)
    }


def _view_lines(model: Model, mv: Move) -> list[str]:
    """Beside the truth, what others saw of the move and what a strategic mover believed."""
    lines = []
    for viewer, label in mv.seen_by.items():
        who = esc(model.scenario.actors[viewer].label)
        seen_text = "did not see it" if label is None else f"saw '{esc(label)}'"
        lines.append(f"      [italic]{who} {seen_text}[/italic]")
    if mv.beliefs and any(row["hidden"] for row in mv.beliefs):
        lines.append(f"      [italic]believed: {esc(belief_text(mv.beliefs))}[/italic]")
    return lines


def _change_lines(
    changes: dict[str, tuple[float, float]],
    title: str | None,
    hidden: dict[str, list[str]] | None = None,
) -> list[str]:
    if not changes:
        return []
    hidden = hidden or {}

    def one(k: str, a: float, b: float) -> str:
        mark = f" (hidden from {', '.join(hidden[k])})" if k in hidden else ""
        return f"{k} {_fmt(a)} → {_fmt(b)}{mark}"

    text = ", ".join(one(k, a, b) for k, (a, b) in changes.items())
    return [f"      {title + ': ' if title else ''}[dim]{esc(text)}[/dim]"]

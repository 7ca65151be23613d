"""Decision analysis: an actor's options or doctrines side by side, with common random numbers.

Every column is simulated with the same seed and block streams, so differences between columns
are mostly the decision's effect, not noise; paired per-run differences give their intervals.
With an `executor` (sim.engine.executors), each column's blocks run there: the same numbers.
"""

from __future__ import annotations

import dataclasses
from concurrent.futures import Executor
from dataclasses import dataclass
from typing import Any

import numpy as np

from sim.engine.batch import simulate_batch
from sim.engine.runner import DEFAULT_BATCH_BLOCKS, run_with_records
from sim.format.scenario import Scenario
from sim.model.compiled import PASS, Model
from sim.results import Z95, Results
from sim.solvers.prepare import prepare_model

CURRENT = "current"


def possessive(name: str) -> str:
    """`United States'`, `Iran's`."""
    return f"{name}'" if name.endswith("s") else f"{name}'s"


PILOT_RUNS = 1024


@dataclass
class Column:
    """One decision's results and the per-run data needed for paired comparisons."""

    name: str
    label: str
    results: Results
    outcome: np.ndarray
    payoff: np.ndarray


@dataclass
class Comparison:
    """All columns of a comparison for one actor, first column the baseline."""

    actor: str
    mode: str
    columns: list[Column]
    max_risk: tuple[str, float] | None = None

    @property
    def model(self) -> Model:
        return self.columns[0].results.model

    def paired(self, a: Column, b: Column, values: str, outcome: int | None = None):
        """Mean and 95% interval of the per-run difference b - a."""
        if values == "payoff":
            diff = b.payoff - a.payoff
        else:
            diff = (b.outcome == outcome).astype(float) - (a.outcome == outcome)
        n = diff.size
        mean = float(diff.mean())
        half = Z95 * float(diff.std(ddof=1)) / np.sqrt(n) if n > 1 else 0.0
        return mean, (mean - half, mean + half)

    def differences(self) -> dict[str, Any]:
        base = self.columns[0]
        out: dict[str, Any] = {}
        for col in self.columns[1:]:
            mean, ci = self.paired(base, col, "payoff")
            outcomes = {}
            for i, oid in enumerate(self.model.outcome_ids):
                m, c = self.paired(base, col, "outcome", i)
                outcomes[oid] = {"mean": m, "ci95": list(c)}
            out[col.name] = {
                "baseline": base.name,
                "payoff": {"mean": mean, "ci95": list(ci)},
                "outcomes": outcomes,
            }
        return out

    def actor_index(self) -> int:
        return self.model.actor_index(self.actor)

    def recommendation(self) -> dict[str, Any]:
        a = self.actor_index()
        ranked = sorted(self.columns, key=lambda c: -c.results.payoff_mean[a])
        rec: dict[str, Any] = {
            "best": ranked[0].name,
            "expected_payoff": float(ranked[0].results.payoff_mean[a]),
        }
        if len(ranked) > 1:
            mean, ci = self.paired(ranked[1], ranked[0], "payoff")
            rec.update(
                runner_up=ranked[1].name,
                difference=mean,
                difference_ci95=list(ci),
                separated=bool(ci[0] > 0),
            )
        if self.max_risk:
            name, limit = self.max_risk
            o = self.model.outcome_ids.index(name)
            safe = [c for c in ranked if c.results.probabilities[o] <= limit]
            rec["max_risk"] = {
                "outcome": name,
                "limit": limit,
                "best": safe[0].name if safe else None,
                "expected_payoff": float(safe[0].results.payoff_mean[a]) if safe else None,
                "p": float(safe[0].results.probabilities[o]) if safe else None,
                "p_upper95": float(safe[0].results.intervals()[1][o]) if safe else None,
            }
            if len(safe) > 1:
                mean, ci = self.paired(safe[1], safe[0], "payoff")
                rec["max_risk"].update(runner_up=safe[1].name, separated=bool(ci[0] > 0))
        return rec

    def worst_outcome(self) -> str:
        """The outcome named in --max-risk, else the terminal outcome worst for the actor."""
        if self.max_risk:
            return self.max_risk[0]
        scenario = self.model.scenario
        worst, value = self.model.outcome_ids[0], np.inf
        for oid, terminal in scenario.outcomes.items():
            pay = terminal.payoffs.get(self.actor, 0)
            if isinstance(pay, (int, float)) and pay < value:
                worst, value = oid, pay
        return worst

    def to_json(self) -> dict[str, Any]:
        return {
            "actor": self.actor,
            "mode": self.mode,
            "columns": {c.name: c.results.to_json() for c in self.columns},
            "differences": self.differences(),
            "recommendation": self.recommendation(),
        }


def _simulate(
    model: Model,
    runs: int,
    seed: int,
    actor: int,
    batch_blocks: int = DEFAULT_BATCH_BLOCKS,
    executor: Executor | None = None,
    backend: str = "numpy",
) -> tuple[Results, np.ndarray, np.ndarray]:
    results, table = run_with_records(model, runs, seed, batch_blocks, executor, backend)
    return results, table.outcome, table.payoffs[actor]


def first_move_options(model: Model, actor: int, seed: int) -> list[int]:
    """Options of `actor` available at its first move in at least one run (pilot of one block)."""
    seen = np.zeros(len(model.options[actor]), dtype=bool)

    def record(step: int, available: np.ndarray | None, view: Any) -> np.ndarray:
        if step_of_first[0] is None:
            step_of_first[0] = step
            seen[:] = True if available is None else available.any(axis=1)
        if available is None:
            return np.zeros(view.size, dtype=np.int64)
        return np.where(available.any(axis=0), available.argmax(axis=0), PASS)

    step_of_first: list[int | None] = [None]
    simulate_batch(model, seed, 0, 1, PILOT_RUNS, choosers={actor: record})
    return [i for i in range(len(seen)) if seen[i]]


def compare_first_moves(
    scenario: Scenario,
    actor: str,
    runs: int,
    seed: int,
    overrides: dict[str, float] | None = None,
    max_risk: tuple[str, float] | None = None,
    executor: Executor | None = None,
    backend: str = "numpy",
) -> Comparison:
    """One column per option available at the actor's first move; then its own policy."""
    base = prepare_model(scenario, overrides)
    a = base.actor_index(actor)
    columns = []
    options = first_move_options(base, a, seed)
    if not options:
        raise ValueError(
            f"{actor} has no option available at its first move in any run (it has no options,"
            " none is available then, or every run ends before it moves)"
        )
    for option in options:
        model = dataclasses.replace(base, forced_first={a: option})
        results, outcome, payoff = _simulate(
            model, runs, seed, a, executor=executor, backend=backend
        )
        menu = base.options[a][option]
        columns.append(Column(menu.id, menu.label, results, outcome, payoff))
    return Comparison(actor, "first-move", columns, max_risk)


def compare_policies(
    scenario: Scenario,
    actor: str,
    runs: int,
    seed: int,
    overrides: dict[str, float] | None = None,
    max_risk: tuple[str, float] | None = None,
    executor: Executor | None = None,
    backend: str = "numpy",
) -> Comparison:
    """One column for the scenario's own policy, then one per named alternative."""
    named = {CURRENT: None, **scenario.alternatives.get(actor, {})}
    columns = []
    for name, policy in named.items():
        model = prepare_model(scenario, overrides, None if policy is None else {actor: policy})
        a = model.actor_index(actor)
        results, outcome, payoff = _simulate(
            model, runs, seed, a, executor=executor, backend=backend
        )
        label = "the scenario's policy" if policy is None else name.replace("_", " ")
        columns.append(Column(name, label, results, outcome, payoff))
    return Comparison(actor, "policies", columns, max_risk)

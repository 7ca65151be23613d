"""The rules of a step that concern values: effects settle, branch probabilities, checks.

sim/model/step.py applies them in the order of a step for every driver (engine, exact solver,
game graph), so a state reached by any of them is the same to the last bit.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from sim.errors import SimulationError
from sim.model.compiled import CompiledOption, Located, Model

PROBABILITY_TOLERANCE = 1e-9


def terminals_to_check(model: Model) -> list[tuple[Any, ...]]:
    """For each turn (then `every_step`), the terminal conditions that the move can make true.

    A condition false at its previous check stays false unless the move changes a name it reads,
    so the others are skipped. Conditions with random draws are always checked; so is every
    condition at the first check of a run (the engine checks all then).
    """
    plans = []
    for turn, actor in enumerate(model.turn_order):
        changed = {f"last_{model.actors[actor]}"}
        if turn == 0:
            changed.add("step")
        rungs = set()
        for option in model.options[actor]:
            parts = [option, *option.branches]
            for part in parts:
                changed.update(model.state_names[v] for v in changed_by(model, part.effects))
                if part.rung is not None:
                    changed.update(("rung", "peak_rung"))
                    rungs.add(part.rung)
        relevant = _relevant(model, changed)
        plans.append(tuple(t for t in relevant if not _false_on_rungs(model, t.when, rungs)))
    step_changes = changed_by(model, model.step_effects)
    plans.append(_relevant(model, {model.state_names[v] for v in step_changes}))
    return plans


def changed_by(model: Model, effects: Any) -> set[int]:
    """The state variables an effect may change: its own, and the totals its tallies add to."""
    changed = {v for v, _ in effects.set + effects.add}
    for tally in model.tallies:
        if tally.var in changed:
            changed.update(tally.into)
    return changed


def _false_on_rungs(model: Model, when: Located, rungs: set[int]) -> bool:
    """Whether a condition of the rung (and parameters) alone is false on every rung a move
    can set: then the move cannot make it true (a run whose rung it leaves unchanged had it false
    at the previous check, or the run would have ended)."""
    expr = when.expr
    if expr.uses_random or not rungs or "rung" not in expr.names:
        return False
    if any(name != "rung" and name not in model.parameters for name in expr.names):
        return False

    class _Rungs:
        rng = None
        step = 0
        size = len(rungs)

        def value(self, name: str) -> Any:
            return (
                np.array(sorted(rungs), dtype=np.int64)
                if name == "rung"
                else (model.parameters[name])
            )

    try:
        with np.errstate(all="ignore"):
            holds = checked_condition(when, when(_Rungs()), len(rungs), 0)
    except Exception:  # e.g. a NaN: keep checking it, so that the run reports it
        return False
    return not holds.any()


def _relevant(model: Model, changed: set[str]) -> tuple[Any, ...]:
    return tuple(
        t for t in model.terminals if t.when.expr.uses_random or t.when.expr.names & changed
    )


def vector(value: Any, n: int, dtype: Any = float) -> np.ndarray:
    """An expression's value as one entry per row (scalars broadcast); read it, never write it
    (it may be the value itself)."""
    if type(value) is np.ndarray and value.shape == (n,) and value.dtype == dtype:
        return value
    return np.broadcast_to(np.asarray(value, dtype=dtype), (n,))


def checked_utilities(
    utilities: Sequence[Located], values: Sequence[Any], n: int, step: int
) -> np.ndarray:
    """(options, rows) logit utilities; NaN or infinity stops the run with its source position."""
    matrix = np.empty((len(utilities), n))
    for i, (expr, value) in enumerate(zip(utilities, values, strict=True)):
        matrix[i] = vector(value, n)
        if not np.isfinite(matrix[i]).all():
            bad = matrix[i][~np.isfinite(matrix[i])][0]
            raise SimulationError(f"{expr.where}: utility evaluated to {bad} at step {step}")
    return matrix


def checked_condition(expr: Located, value: Any, n: int, step: int) -> np.ndarray:
    """A condition (`requires`, `when`) per row; a numeric NaN is an error, not "true"."""
    value = np.asarray(value)
    if value.dtype.kind == "f" and np.isnan(value).any():
        raise SimulationError(f"{expr.where}: condition evaluated to nan at step {step}")
    return vector(value, n, bool)


def checked_payoff(expr: Located, value: Any) -> Any:
    """A payoff expression's value, refusing NaN and infinity with its source position."""
    if np.isscalar(value) and np.isfinite(value):
        return value
    value = np.asarray(value, dtype=float)
    if not np.isfinite(value).all():
        raise SimulationError(
            f"{expr.where}: payoff evaluated to {value[~np.isfinite(value)].ravel()[0]}"
        )
    return value


def settle_effects(
    model: Model, new: list[tuple[int, Any, Located]], step: int
) -> list[tuple[int, np.ndarray]]:
    """Check (no NaN or infinity), round (integer variables) and clip computed new values."""
    out = []
    for var, value, expr in new:
        value = np.asarray(value, dtype=float)
        if not np.isfinite(value).all():
            raise SimulationError(
                f"{expr.where}: effect on '{model.state_names[var]}' evaluated to "
                f"{value[~np.isfinite(value)].ravel()[0]} at step {step}"
            )
        out.append((var, settle_value(model, var, value)))
    return out


def settle_value(model: Model, var: int, value: Any) -> np.ndarray:
    """A state variable's new value as it is stored: rounded if integer, clipped to its range."""
    value = np.asarray(value, dtype=float)
    if model.state_integer[var]:
        value = np.rint(value)
    return np.clip(value, model.state_min[var], model.state_max[var])


def checked_branch_probabilities(
    model: Model, actor: int, option: CompiledOption, values: list[Any], n: int, step: int
) -> np.ndarray:
    """The branch probabilities from the values of the branches' `p` expressions (in order):
    each in [0, 1], summing to 1 (or the remainder branch at least 0), else a clear error."""
    probs = np.zeros((len(option.branches), n))
    remainder = None
    where = f"option '{option.id}' of {model.actors[actor]}"
    given = iter(values)
    for j, b in enumerate(option.branches):
        if b.p is None:
            remainder = j
            continue
        p = vector(next(given), n)
        bad = ~((p >= 0) & (p <= 1))
        if bad.any():
            raise SimulationError(
                f"{b.p.where}: {where}, branch '{b.id}': probability {p[bad][0]:g} is outside "
                f"[0, 1] at step {step}"
            )
        probs[j] = p
    total = probs.sum(axis=0)
    if remainder is None:
        off = np.abs(total - 1) > PROBABILITY_TOLERANCE
        if off.any():
            raise SimulationError(
                f"{option.branches[0].p.where}: {where}: branch probabilities sum to "
                f"{total[off][0]:.12g}, not 1, at step {step} (never renormalised)"
            )
    else:
        rest = 1 - total
        if (rest < -PROBABILITY_TOLERANCE).any():
            raise SimulationError(
                f"{where}: branch probabilities sum to "
                f"{total[rest < -PROBABILITY_TOLERANCE][0]:.12g} > 1, leaving a negative "
                f"remainder for branch '{option.branches[remainder].id}' at step {step}"
            )
        probs[remainder] = np.maximum(rest, 0)
    return probs

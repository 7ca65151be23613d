"""Logit policies tabulated over the few values their utilities can read: the engine's plan.

A logit policy whose utilities read only parameters and bounded integer state variables has
one set of choice weights per combination of those variables' values. They are computed once
per model, by the same routines on a grid of every combination, and the engine then looks each
run's weights up instead of evaluating utilities, checks and exponentials for every run.

The look-up is bit for bit what the run-by-run computation gives: the same expressions and the
same elementwise numpy routines see the same values (a settled integer variable holds an integer
in [min, max], checked at its start here), a zero's sign is shown not to matter, and a grid on
which any utility is not finite is not tabulated, so that the run-by-run path raises the same
error at the same step.
"""

from __future__ import annotations

import itertools
import weakref
from dataclasses import dataclass
from typing import Any

import numpy as np

from sim.model.compiled import CompiledPolicy, Model
from sim.model.policies import logit_weights
from sim.model.semantics import checked_utilities

MAX_CELLS = 4096
"""Largest grid tabulated (combinations of the variables' values)."""
MAX_SIGNED = 4
"""Most variables whose range holds 0 (each zero is tried with both signs)."""
_CACHE_LIMIT = 64


@dataclass(frozen=True)
class TabulatedPolicy:
    """A logit policy's weights (options, cells) for every combination of the state variables
    `variables`; cell = sum of (value - low) * stride."""

    variables: tuple[int, ...]
    lows: tuple[float, ...]
    strides: tuple[int, ...]
    weights: np.ndarray

    def weights_at(self, state: np.ndarray) -> np.ndarray:
        """(options, runs) weights of the runs whose state variables are the columns of `state`."""
        cell = None
        for var, low, stride in zip(self.variables, self.lows, self.strides, strict=True):
            part = state[var] - low if low else state[var]
            if stride != 1:
                part = part * stride
            cell = part if cell is None else cell + part
        if cell is None:
            return np.repeat(self.weights, state.shape[1], axis=1)
        return self.weights.take(cell.astype(np.intp), axis=1)


class _Grid:
    """The context expressions are evaluated on: one row per cell of the grid."""

    rng = None
    step = 0

    def __init__(self, values: dict[str, Any], size: int):
        self.values = values
        self.size = size

    def value(self, name: str) -> Any:
        return self.values[name]


_plans: dict[int, tuple[weakref.ref, tuple[TabulatedPolicy | None, ...]]] = {}


def tabulated_policies(model: Model) -> tuple[TabulatedPolicy | None, ...]:
    """Each actor's tabulated policy (None: played run by run), built once per model."""
    entry = _plans.get(id(model))
    if entry is not None and entry[0]() is model:
        return entry[1]
    plans = tuple(tabulate(model, a, policy) for a, policy in enumerate(model.policies))
    if len(_plans) >= _CACHE_LIMIT:
        _plans.clear()
    _plans[id(model)] = (weakref.ref(model), plans)
    return plans


def tabulate(model: Model, actor: int, policy: CompiledPolicy | None) -> TabulatedPolicy | None:
    """The policy's weights over every value of the state variables it reads, or None when it
    is not a logit policy of parameters and bounded integer variables alone (or not finite)."""
    if policy is None or policy.kind != "logit" or not policy.utilities:
        return None
    if any(o.requires is not None for o in model.options[actor]):
        return None  # availability varies by run
    if any(u.expr.uses_random for u in policy.utilities):
        return None
    names = sorted(set().union(*(u.expr.names for u in policy.utilities)))
    variables = []
    for name in names:
        if name in model.parameters:
            continue
        if name not in model.state_names:
            return None  # rung, step, a latest move: not tabulated
        var = model.state_names.index(name)
        if not _bounded_integer(model, var):
            return None
        variables.append(var)
    sizes = [int(model.state_max[v] - model.state_min[v]) + 1 for v in variables]
    cells = int(np.prod(sizes)) if sizes else 1
    if cells > MAX_CELLS:
        return None
    axes = [np.arange(model.state_min[v], model.state_max[v] + 1, dtype=float) for v in variables]
    grids = [g.ravel() for g in np.meshgrid(*axes, indexing="ij")] if axes else []
    values: dict[str, Any] = dict(model.parameters)
    for var, grid in zip(variables, grids, strict=True):
        values[model.state_names[var]] = grid
    weights = _weights(policy, values, cells)
    if weights is None:
        return None
    zeros = [i for i, v in enumerate(variables) if model.state_min[v] <= 0 <= model.state_max[v]]
    if len(zeros) > MAX_SIGNED:
        return None
    for signs in itertools.product((False, True), repeat=len(zeros)):
        if not any(signs):
            continue
        signed = dict(values)
        for i, negative in zip(zeros, signs, strict=True):
            if negative:
                signed[model.state_names[variables[i]]] = np.where(grids[i] == 0, -0.0, grids[i])
        other = _weights(policy, signed, cells)
        if other is None or not np.array_equal(other.view(np.uint64), weights.view(np.uint64)):
            return None  # a zero's sign would matter: keep the run-by-run path
    strides = [int(np.prod(sizes[i + 1 :])) for i in range(len(sizes))]
    lows = tuple(float(model.state_min[v]) for v in variables)
    return TabulatedPolicy(tuple(variables), lows, tuple(strides), weights)


def _bounded_integer(model: Model, var: int) -> bool:
    """Whether the variable always holds an integer of a finite range: settled values are
    rounded and clipped to integer bounds, and its initial value is one of them."""
    low, high, start = model.state_min[var], model.state_max[var], model.state_initial[var]
    if not (model.state_integer[var] and np.isfinite(low) and np.isfinite(high)):
        return False
    return (
        low == np.rint(low)
        and high == np.rint(high)
        and start == np.rint(start)
        and (low <= start <= high)
    )


def _weights(policy: CompiledPolicy, values: dict[str, Any], cells: int) -> np.ndarray | None:
    """The policy's (options, cells) weights on the grid, or None if a utility is not finite."""
    grid = _Grid(values, cells)
    try:
        with np.errstate(all="ignore"):
            raw = [u(grid) for u in policy.utilities]
            utilities = checked_utilities(policy.utilities, raw, cells, 0)
            return np.ascontiguousarray(logit_weights(policy.rationality, utilities, None))
    except Exception:  # any error: the run-by-run path raises it where a run meets it
        return None

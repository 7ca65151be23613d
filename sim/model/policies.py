"""How actors choose, vectorised over rows: fixed, sequence, table, logit and solved lookups.

One routine (`choice_weights`) turns a policy into weights per option and row; the engine samples
from them (`choose`) and the exact solver and the game graph normalise them (`probabilities`).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from sim.errors import SimulationError
from sim.model.compiled import PASS, CompiledPolicy

Uniforms = Callable[[], np.ndarray]
"""Draws one uniform number in [0, 1) per row from the rows' own streams."""

RUNNABLE = ("fixed", "sequence", "table", "logit", "lookup")
"""Compiled policy kinds that choose by themselves (others must be solved first)."""


def choose(
    policy: CompiledPolicy,
    available: np.ndarray | None,
    n: int,
    move_number: int,
    latest: np.ndarray | None,
    inputs: np.ndarray | None,
    uniforms: Uniforms,
) -> np.ndarray:
    """Option index chosen in each row (PASS where nothing is available).

    `available` is a boolean (options, rows) matrix, or None when every option is available;
    `latest` the `respond_to` actor's latest move codes (tables); `inputs` the utility matrix
    (logit) or the solved probabilities (1 + options, rows), row 0 PASS (lookup).
    """
    option = preferred_option(policy, move_number)
    if option is not None:
        return _preferred(option, available, n)
    weights, with_pass = choice_weights(policy, available, latest, inputs)
    if with_pass:
        return _sample(weights, uniforms(), positive=True) - 1
    return _sample(weights, uniforms(), positive=available is None)


def probabilities(
    policy: CompiledPolicy,
    available: np.ndarray | None,
    n_options: int,
    n: int,
    move_number: int,
    latest: np.ndarray | None,
    inputs: np.ndarray | None,
) -> np.ndarray:
    """Choice probabilities (1 + options, rows) of a policy; row 0 is PASS."""
    option = preferred_option(policy, move_number)
    if option is not None:
        out = np.zeros((n_options + 1, n))
        out[_preferred(option, available, n) + 1, np.arange(n)] = 1.0
        return out
    weights, with_pass = choice_weights(policy, available, latest, inputs)
    if with_pass:
        return weights
    total = weights.sum(axis=0)
    out = np.zeros((n_options + 1, n))
    np.divide(weights, total, out=out[1:], where=total > 0)
    out[0] = total <= 0
    return out


def preferred_option(policy: CompiledPolicy, move_number: int) -> int | None:
    """The option a doctrine (fixed, sequence) prefers at this move; None for other kinds."""
    if policy.kind == "fixed":
        return policy.option
    if policy.kind == "sequence":
        return policy.sequence[min(move_number, len(policy.sequence) - 1)]
    return None


def choice_weights(
    policy: CompiledPolicy,
    available: np.ndarray | None,
    latest: np.ndarray | None,
    inputs: np.ndarray | None,
) -> tuple[np.ndarray, bool]:
    """Unnormalised weights per option and row of a table, logit or lookup policy, and whether
    they hold a PASS row 0 (lookup) rather than one row per option."""
    if policy.kind == "table":
        # the table's row for each latest move code, then one gather per run (not two)
        by_code = policy.rows_by_option.take(policy.row_of_code, axis=1)
        weights = by_code.take(latest + 2, axis=1)
        if available is not None:
            weights = weights * available
        return weights, False
    if policy.kind == "lookup":
        return inputs, True
    if policy.kind == "logit":
        return _logit_weights(policy.rationality, inputs, available), False
    raise SimulationError(
        f"a '{policy.kind}' policy must be solved before it can choose "
        "(sim.solvers.prepare.prepare_model does that)"
    )


def _preferred(option: int, available: np.ndarray | None, n: int) -> np.ndarray:
    """The preferred option where available, else the first available one in menu order."""
    if available is None:
        return np.full(n, option, dtype=np.int64)
    first = np.argmax(available, axis=0)
    first = np.where(available.any(axis=0), first, PASS)
    return np.where(available[option], option, first).astype(np.int64)


def _sample(weights: np.ndarray, u: np.ndarray, positive: bool = False) -> np.ndarray:
    """Draw an option per row with probability proportional to its weight (PASS if all zero).

    `positive`: every row's weights are known to have a positive total (skips the PASS check).
    """
    k = weights.shape[0]
    total = weights[0] + weights[1] if k > 1 else weights[0].copy()
    for row in weights[2:]:
        total += row
    target = u * total
    if k == 1:
        choice = np.zeros(u.shape, dtype=np.int64)
    else:
        # the running sum of the weights before each option (the same additions in the same
        # order as the total's): the choice is how many of them are at most the target
        choice = (weights[0] <= target).astype(np.int64)
        if k > 2:
            running = weights[0] + weights[1]
            for row in weights[2:-1]:
                choice += running <= target
                running += row
            choice += running <= target
    return choice if positive else np.where(total > 0, choice, PASS)


def _logit_weights(rationality: float, utilities: np.ndarray, available: np.ndarray | None):
    """Softmax weights exp(lambda * u), unavailable options left out, stable for large lambda."""
    z = rationality * utilities
    if available is None and z.ndim == 2 and z.shape[0] == 2:
        pair = _two_option_weights(z)
        if pair is not None:
            return pair
    if available is not None:
        z = np.where(available, z, -np.inf)
    top = z.max(axis=0)
    if available is not None:
        top = np.where(np.isfinite(top), top, 0.0)
    with np.errstate(invalid="ignore", over="ignore"):
        z -= top
        return np.exp(z, out=z)


def logit_weights(
    rationality: float, utilities: np.ndarray, available: np.ndarray | None
) -> np.ndarray:
    """Softmax weights exp(lambda * u) per option and row (public: tabulated policies)."""
    return _logit_weights(rationality, utilities, available)


def sample(weights: np.ndarray, u: np.ndarray, positive: bool = False) -> np.ndarray:
    """An option per row with probability proportional to its weight (public: the engine's
    tabulated policies sample exactly as `choose` does)."""
    return _sample(weights, u, positive)


def _two_option_weights(z: np.ndarray) -> np.ndarray | None:
    """exp(z - max) of two options with one exp per row instead of two, bit for bit the same:
    the larger gets exp(0) = 1, the other exp(-|z0 - z1|), since z1 - z0 is exactly
    -(z0 - z1); None (use the general path) unless every difference is finite."""
    d = z[0] - z[1]
    if not np.isfinite(d).all():
        return None
    first_on_top = d >= 0
    np.abs(d, out=d)
    np.negative(d, out=d)
    np.exp(d, out=d)
    out = np.empty_like(z)
    np.copyto(out[0], d)
    out[1] = 1.0
    np.copyto(out[0], 1.0, where=first_on_top)
    np.copyto(out[1], d, where=first_on_top)
    return out


def logit_probabilities(
    rationality: float, utilities: np.ndarray, available: np.ndarray | None = None
) -> np.ndarray:
    """Logit choice probabilities (options, rows); all zero where nothing is available."""
    w = _logit_weights(rationality, np.asarray(utilities, dtype=float), available)
    total = w.sum(axis=0)
    return np.divide(w, total, out=np.zeros_like(w), where=total > 0)

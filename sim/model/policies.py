"""How actors choose, vectorised over every active run: fixed, sequence, table, logit."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from sim.model.compiled import PASS, CompiledPolicy

Uniforms = Callable[[], np.ndarray]
"""Draws one uniform number in [0, 1) per active run from the runs' own block streams."""


def choose(
    policy: CompiledPolicy,
    available: np.ndarray | None,
    n: int,
    move_number: int,
    latest: np.ndarray | None,
    utilities: Callable[[], np.ndarray] | None,
    uniforms: Uniforms,
) -> np.ndarray:
    """Option index chosen in each run (PASS where nothing is available).

    `available` is a boolean (options, runs) matrix, or None when every option is available.
    Kind "sampled": `utilities()` returns given probabilities (1 + options, runs), row 0 PASS.
    """
    if policy.kind == "fixed":
        return _preferred(policy.option, available, n)
    if policy.kind == "sequence":
        seq = policy.sequence
        return _preferred(seq[min(move_number, len(seq) - 1)], available, n)
    if policy.kind == "table":
        weights = policy.rows_by_option.take(policy.row_of_code[latest + 2], axis=1)
        if available is not None:
            weights = weights * available
        return _sample(weights, uniforms(), positive=available is None)
    if policy.kind == "sampled":
        return _sample(utilities(), uniforms(), positive=True) - 1
    weights = _logit_weights(policy.rationality, utilities(), available)
    return _sample(weights, uniforms(), positive=available is None)


def _preferred(option: int, available: np.ndarray | None, n: int) -> np.ndarray:
    """The preferred option where available, else the first available one in menu order."""
    if available is None:
        return np.full(n, option, dtype=np.int64)
    first = np.argmax(available, axis=0)
    first = np.where(available.any(axis=0), first, PASS)
    return np.where(available[option], option, first).astype(np.int64)


def _sample(weights: np.ndarray, u: np.ndarray, positive: bool = False) -> np.ndarray:
    """Draw an option per run with probability proportional to its weight (PASS if all zero).

    `positive`: every run's weights are known to have a positive total (skips the PASS check).
    """
    total = weights[0].copy()
    for row in weights[1:]:
        total += row
    target = u * total
    running = weights[0].copy()
    choice = np.zeros(u.shape, dtype=np.int64)
    for row in weights[1:]:
        choice += running <= target
        running += row
    return choice if positive else np.where(total > 0, choice, PASS)


def _logit_weights(rationality: float, utilities: np.ndarray, available: np.ndarray | None):
    """Softmax weights exp(lambda * u), unavailable options left out, stable for large lambda."""
    z = rationality * utilities
    if available is not None:
        z = np.where(available, z, -np.inf)
    top = z.max(axis=0)
    if available is not None:
        top = np.where(np.isfinite(top), top, 0.0)
    with np.errstate(invalid="ignore", over="ignore"):
        return np.exp(z - top)


def logit_probabilities(
    rationality: float, utilities: np.ndarray, available: np.ndarray | None = None
) -> np.ndarray:
    """Logit choice probabilities (options, runs); all zero where nothing is available."""
    w = _logit_weights(rationality, np.asarray(utilities, dtype=float), available)
    total = w.sum(axis=0)
    return np.divide(w, total, out=np.zeros_like(w), where=total > 0)


def probabilities(
    policy: CompiledPolicy,
    available: np.ndarray | None,
    n_options: int,
    n: int,
    move_number: int,
    latest: np.ndarray | None,
    utilities: Callable[[], np.ndarray] | None,
) -> np.ndarray:
    """Choice probabilities (1 + options, states) of a non-strategic policy; row 0 is PASS."""
    if policy.kind in ("fixed", "sequence"):
        option = policy.option
        if policy.kind == "sequence":
            option = policy.sequence[min(move_number, len(policy.sequence) - 1)]
        out = np.zeros((n_options + 1, n))
        out[_preferred(option, available, n) + 1, np.arange(n)] = 1.0
        return out
    if policy.kind == "table":
        weights = policy.rows_by_option.take(policy.row_of_code[latest + 2], axis=1)
        if available is not None:
            weights = weights * available
    else:
        weights = _logit_weights(policy.rationality, utilities(), available)
    total = weights.sum(axis=0)
    out = np.zeros((n_options + 1, n))
    np.divide(weights, total, out=out[1:], where=total > 0)
    out[0] = total <= 0
    return out

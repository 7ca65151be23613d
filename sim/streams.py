"""Random streams per fixed-size block of runs, so results never depend on batching or workers.

Block b draws from `SeedSequence(seed, spawn_key=(b,))` (or `(*stream, b)` for a named stream,
such as one point of a sweep). A batch simulates several whole blocks
in lockstep; every draw is split into per-block segments, so each block consumes its own stream
exactly as it would if it were simulated alone.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from sim.errors import SimulationError

BLOCK_SIZE = 4096


def block_generator(seed: int, block: int, stream: tuple[int, ...] = ()) -> np.random.Generator:
    """The generator of one block of runs; `stream` separates experiments (e.g. sweep points)."""
    key = (*stream, block)
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence(seed, spawn_key=key)))


def block_count(runs: int) -> int:
    return -(-runs // BLOCK_SIZE)


def block_runs(runs: int, block: int) -> tuple[int, int]:
    """Global run indices [start, stop) of a block."""
    start = block * BLOCK_SIZE
    return start, min(runs, start + BLOCK_SIZE)


class BlockStreams:
    """The generators of the blocks of one batch and where each block sits among active runs."""

    def __init__(self, generators: list[np.random.Generator]):
        self.generators = generators
        self.bounds = np.zeros(len(generators) + 1, dtype=np.int64)

    def set_active(self, block_of_run: np.ndarray) -> None:
        """Record block boundaries of the (sorted) active runs after they change."""
        self.bounds = np.searchsorted(block_of_run, np.arange(len(self.generators) + 1))

    def segments(self, idx: np.ndarray | None) -> list[tuple[np.random.Generator, int, int]]:
        bounds = self.bounds if idx is None else np.searchsorted(idx, self.bounds)
        out = []
        for b, gen in enumerate(self.generators):
            lo, hi = int(bounds[b]), int(bounds[b + 1])
            if hi > lo:
                out.append((gen, lo, hi))
        return out

    def uniform01(self, idx: np.ndarray | None, size: int) -> np.ndarray:
        segs = self.segments(idx)
        if len(segs) == 1:
            return segs[0][0].random(size)
        out = np.empty(size)
        for gen, lo, hi in segs:
            out[lo:hi] = gen.random(hi - lo)
        return out

    def draw(self, idx: np.ndarray | None, size: int, kind: str, *args: Any) -> np.ndarray:
        segs = self.segments(idx)
        args = [np.asarray(a, dtype=float) for a in args]
        dtype = bool if kind == "bernoulli" else float
        out = np.empty(size, dtype=dtype)
        for gen, lo, hi in segs:
            part = [a if a.ndim == 0 else a[lo:hi] for a in args]
            out[lo:hi] = _draw(gen, kind, part, hi - lo)
        return out


def _draw(gen: np.random.Generator, kind: str, args: list[np.ndarray], n: int) -> np.ndarray:
    try:
        if kind == "bernoulli":
            (p,) = args
            _check_probability(p, "bernoulli(p)")
            return gen.random(n) < p
        if kind == "poisson":
            (lam,) = args
            if np.any(lam < 0) or not np.all(np.isfinite(lam)):
                raise SimulationError(f"poisson(lam) needs a finite lam >= 0, got {_first_bad(lam)}")
            return gen.poisson(lam, n).astype(float)
        if kind == "binomial":
            count, p = args
            _check_probability(p, "binomial(n, p)")
            if np.any(count < 0) or not np.all(np.isfinite(count)):
                raise SimulationError("binomial(n, p) needs a finite n >= 0")
            return gen.binomial(np.floor(count).astype(np.int64), p, n).astype(float)
        if kind == "uniform":
            low, high = args
            return gen.uniform(low, high, n)
        if kind == "normal":
            mu, sd = args
            if np.any(sd < 0):
                raise SimulationError(f"normal(mu, sd) needs sd >= 0, got {_first_bad(sd)}")
            return gen.normal(mu, sd, n)
    except ValueError as exc:
        raise SimulationError(f"{kind}(): {exc}") from None
    raise SimulationError(f"unknown random draw {kind}")


def _check_probability(p: np.ndarray, what: str) -> None:
    if np.any(p < 0) or np.any(p > 1) or np.any(np.isnan(p)):
        bad = p[(p < 0) | (p > 1) | np.isnan(p)] if p.ndim else p
        raise SimulationError(f"{what} needs p in [0, 1], got {float(np.ravel(bad)[0]):g}")


def _first_bad(a: np.ndarray) -> float:
    return float(np.ravel(a)[0]) if a.ndim == 0 else float(a[(a < 0) | ~np.isfinite(a)][0])

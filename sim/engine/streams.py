"""Position-addressed random numbers: a draw is a function of (seed, stream, step, turn, site, run).

A run's uniform at a draw site is a counter-based hash (SplitMix64's finaliser over a Weyl
sequence, as in Steele et al., "Fast splittable pseudorandom number generators", 2014), keyed by
a 64-bit key derived from `SeedSequence(seed, spawn_key=stream)` and the (step, turn, site)
coordinates, and indexed by the global run number. So:

- results never depend on batch size, block grouping or worker count;
- a run's random numbers do not depend on which other runs are still active;
- two experiments with the same seed (the columns of `compare`) use the same number for the same
  run at the same decision point: common random numbers that stay aligned even when the columns'
  histories differ.

Other distributions are made from these uniforms by inversion (inverse CDF), which keeps them
aligned across experiments too.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import numpy as np

from sim.model.inversion import invert

BLOCK_SIZE = 4096
"""Runs per block: the unit of aggregation, batching and work distribution."""

HASH_CHUNK = 32768
"""Runs hashed at a time: 256 KiB a pass, so that a large batch's passes stay in cache."""

_M64 = (1 << 64) - 1
_GAMMA = 0x9E3779B97F4A7C15
_C1, _C2 = 0xBF58476D1CE4E5B9, 0x94D049BB133111EB
_ONE_BITS = 0x3FF0000000000000
_ONE_MINUS_HALF_ULP = 1.0 - 2.0**-53


def _mix_int(z: int) -> int:
    z &= _M64
    z = ((z ^ (z >> 30)) * _C1) & _M64
    z = ((z ^ (z >> 27)) * _C2) & _M64
    return z ^ (z >> 31)


_U30, _U27, _U31, _U12 = (np.uint64(k) for k in (30, 27, 31, 12))
_UC1, _UC2, _UONE = np.uint64(_C1), np.uint64(_C2), np.uint64(_ONE_BITS)


def _mix_array(z: np.ndarray) -> np.ndarray:
    """SplitMix64's finaliser of every entry, in place (`z` is changed and returned)."""
    t = z >> _U30
    z ^= t
    z *= _UC1
    np.right_shift(z, _U27, out=t)
    z ^= t
    z *= _UC2
    np.right_shift(z, _U31, out=t)
    z ^= t
    return z


@lru_cache(maxsize=1 << 16)
def _call_key(key: int, step: int, turn: int, site: int) -> np.uint64:
    z = _mix_int(key ^ _mix_int(step * 0x100000001B3 + 1))
    z = _mix_int(z ^ _mix_int(turn * 0x9FB21C651E98DF25 + 7))
    return np.uint64(_mix_int(z ^ _mix_int(site * 0xC2B2AE3D27D4EB4F + 13)))


def block_count(runs: int) -> int:
    return -(-runs // BLOCK_SIZE)


def block_runs(runs: int, block: int) -> tuple[int, int]:
    """Global run indices [start, stop) of a block."""
    start = block * BLOCK_SIZE
    return start, min(runs, start + BLOCK_SIZE)


class RandomField:
    """Uniforms and other draws addressed by (step, turn, site) and global run index."""

    def __init__(self, seed: int, stream: tuple[int, ...] = ()):
        state = np.random.SeedSequence(seed, spawn_key=stream).generate_state(2, np.uint64)
        self.key = (int(state[0]) << 1 | 1) ^ int(state[1])

    def _call_key(self, step: int, turn: int, site: int) -> np.uint64:
        """The key of a draw site (the same for every batch of an experiment: cached)."""
        return _call_key(self.key, step, turn, site)

    @staticmethod
    def offsets(runs: np.ndarray) -> np.ndarray:
        """Each run's position in the Weyl sequence; computed once per batch by the engine."""
        with np.errstate(over="ignore"):
            return np.uint64(_GAMMA) * (runs.astype(np.uint64) + np.uint64(1))

    def uniforms(
        self,
        runs: np.ndarray | None,
        step: int,
        turn: int,
        site: int,
        offsets: np.ndarray | None = None,
    ) -> np.ndarray:
        """One uniform in (0, 1) per run (`offsets`: the runs' precomputed `offsets(runs)`)."""
        if offsets is None:
            offsets = self.offsets(runs)
        # (integer arrays wrap around silently: no error state to set)
        bits = offsets + _call_key(self.key, step, turn, site)
        # the dozen passes of the hash run over pieces that stay in the CPU's cache
        for lo in range(0, bits.shape[0], HASH_CHUNK):
            piece = _mix_array(bits[lo : lo + HASH_CHUNK])
            # 52 random mantissa bits under exponent 0 make a float in [1, 2)
            piece >>= _U12
            piece |= _UONE
        doubles = bits.view(np.float64)  # shifted into (0, 1) below
        doubles -= _ONE_MINUS_HALF_ULP
        return doubles

    def draw(
        self,
        kind: str,
        runs: np.ndarray | None,
        step: int,
        turn: int,
        site: int,
        *args: Any,
        offsets: np.ndarray | None = None,
    ) -> np.ndarray:
        """A draw of `kind` per run, by inversion of the run's uniform."""
        u = self.uniforms(runs, step, turn, site, offsets)
        params = [np.asarray(a, dtype=float) for a in args]
        return invert(kind, u, params)

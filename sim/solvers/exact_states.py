"""Weighted sets of distinct states for the exact solver (sim/exact.py): splitting and merging.

A `Dist` holds distinct states as columns, like the live runs of an engine batch, each with its
probability and the sums of probability * payoff and probability * payoff**2 per actor, so that
merging identical states keeps the expected payoff and its variance exact.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

DENSE_SLACK = 4
"""Group keys by a dense table when the key space is at most this many times the row count."""


@dataclass
class Dist:
    """Weighted distinct states: one column per state."""

    x: np.ndarray  # (state vars, n) float64
    rung: np.ndarray  # (n,) int64
    peak: np.ndarray  # (n,) int64
    last: np.ndarray  # (actors, n) int64
    w: np.ndarray  # (n,) probability of the state
    s1: np.ndarray  # (actors, n) sum of probability * accumulated payoff
    s2: np.ndarray  # (actors, n) sum of probability * accumulated payoff**2
    tag: np.ndarray | None = None
    """(n,) int64 group of each state, a key column: states of different groups never merge
    (the episode a state belongs to in sim/solvers/likelihood.py); None: one group."""

    @property
    def n(self) -> int:
        return self.w.shape[0]

    def take(self, idx: np.ndarray, factor: np.ndarray | None = None) -> Dist:
        """The states at `idx` (copies), their probabilities multiplied by `factor`."""
        # np.take is several times faster than fancy indexing for this gather
        w, s1, s2 = self.w.take(idx), self.s1.take(idx, axis=1), self.s2.take(idx, axis=1)
        if factor is not None:
            w *= factor
            s1 *= factor
            s2 *= factor
        return Dist(
            self.x.take(idx, axis=1),
            self.rung.take(idx),
            self.peak.take(idx),
            self.last.take(idx, axis=1),
            w,
            s1,
            s2,
            None if self.tag is None else self.tag.take(idx),
        )

    def scale(self, factor: np.ndarray) -> None:
        """Multiply every state's probability by `factor`, in place."""
        self.w *= factor
        self.s1 *= factor
        self.s2 *= factor

    def add_payoff(self, actor: int, value: Any) -> None:
        """Add `value` (already discounted) to every state's accumulated payoff of `actor`."""
        s1 = self.s1[actor]
        self.s2[actor] = self.s2[actor] + 2 * value * s1 + self.w * value * value
        self.s1[actor] = s1 + self.w * value

    def key_columns(self) -> list[np.ndarray]:
        tag = [] if self.tag is None else [self.tag]
        return [*self.x, self.rung, self.peak, *self.last, *tag]


def split(d: Dist, probs: np.ndarray) -> list[tuple[int, Dist]]:
    """One piece of `d` per row k of `probs` (k, states) with some positive probability: the
    states where it is positive, their probabilities multiplied by it. The last piece reuses the
    arrays of `d` when it covers every state, so `d` must not be used afterwards."""
    rows = [k for k in range(probs.shape[0]) if (probs[k] > 0).any()]
    out = []
    for i, k in enumerate(rows):
        q = probs[k]
        where = np.flatnonzero(q > 0)
        whole = where.size == d.n
        factor = None if whole and np.all(q == 1) else q[where]
        if whole and i == len(rows) - 1:
            if factor is not None:
                d.scale(factor)
            out.append((k, d))
        else:
            out.append((k, d.take(where, factor)))
    return out


def merge(pieces: Sequence[Dist], integral: Sequence[bool]) -> Dist:
    """The union of `pieces`, identical states as one with their probabilities and payoff sums
    added. `integral[f]` says key column f is known to hold integers (no check needed)."""
    if all(p.n == 0 for p in pieces):
        return pieces[0]  # a move whose every state was dropped (a log's impossible move)
    pieces = [p for p in pieces if p.n]
    if len(pieces) == 1 and pieces[0].n <= 1:
        return pieces[0]
    first, inverse, count = group_rows([p.key_columns() for p in pieces], integral)
    sizes = np.array([p.n for p in pieces])
    if len(pieces) == 1 and count == pieces[0].n:
        return pieces[0]
    offsets = np.concatenate([[0], np.cumsum(sizes)])
    owner = np.searchsorted(offsets, first, side="right") - 1
    p0 = pieces[0]
    x = np.empty((p0.x.shape[0], count))
    rung = np.empty(count, dtype=np.int64)
    peak = np.empty(count, dtype=np.int64)
    last = np.empty((p0.last.shape[0], count), dtype=np.int64)
    tag = None if p0.tag is None else np.empty(count, dtype=np.int64)
    for i, p in enumerate(pieces):
        pos = np.flatnonzero(owner == i) if len(pieces) > 1 else np.arange(count)
        rows = first.take(pos) - offsets[i]
        x[:, pos] = p.x.take(rows, axis=1)
        rung[pos] = p.rung.take(rows)
        peak[pos] = p.peak.take(rows)
        last[:, pos] = p.last.take(rows, axis=1)
        if tag is not None:
            tag[pos] = p.tag.take(rows)

    def summed(values: list[np.ndarray]) -> np.ndarray:
        return np.bincount(inverse, weights=np.concatenate(values), minlength=count)

    w = summed([p.w for p in pieces])
    n_act = p0.s1.shape[0]
    s1 = np.stack([summed([p.s1[a] for p in pieces]) for a in range(n_act)]).reshape(n_act, count)
    s2 = np.stack([summed([p.s2[a] for p in pieces]) for a in range(n_act)]).reshape(n_act, count)
    return Dist(x, rung, peak, last, w, s1, s2, tag)


def group_rows(parts: Sequence[Sequence[np.ndarray]], integral: Sequence[bool] | None = None):
    """Group equal rows across pieces, each given as its list of key columns.

    Returns (a representative row of each group, as an index into the pieces concatenated; the
    group of each row of the concatenation; the number of groups). Each column is coded as small
    integers (its values minus its minimum when they are integers in a small range, else their
    rank), the codes are combined into one mixed-radix key, and keys are grouped by a dense
    table or, for wide key spaces, a sort. Nothing but the keys is ever concatenated.
    """
    sizes = [cols[0].shape[0] for cols in parts]
    total = sum(sizes)
    keys = [np.zeros(s, dtype=np.int64) for s in sizes]
    size = 1
    for f in range(len(parts[0])):
        codes, card = _column_codes(
            [cols[f] for cols in parts], sizes, total, bool(integral and integral[f])
        )
        if card == 1:
            continue
        if size * card >= 1 << 62:
            _, inverse, size = _dense(np.concatenate(keys), size)
            keys = np.split(inverse, np.cumsum(sizes)[:-1])
        for key, code in zip(keys, codes, strict=True):
            key *= card
            key += code
        size *= card
    return _dense(np.concatenate(keys), size)


def row_keys(columns: Sequence[np.ndarray]) -> tuple[np.ndarray, np.ndarray, int]:
    """`group_rows` for one piece."""
    return group_rows([list(columns)])


def _column_codes(cols: list[np.ndarray], sizes: list[int], total: int, integral: bool):
    lo = min(c.min() for c in cols)
    hi = max(c.max() for c in cols)
    if lo == hi:
        return None, 1
    span = hi - lo
    if span < DENSE_SLACK * total + 1024 and (
        integral or cols[0].dtype.kind in "iu" or all(np.array_equal(c, np.rint(c)) for c in cols)
    ):
        base = int(lo)
        codes = []
        for c in cols:
            code = c.astype(np.int64)
            if base:
                code -= base
            codes.append(code)
        return codes, int(span) + 1
    uniq, inverse = np.unique(np.concatenate(cols), return_inverse=True)
    return np.split(inverse.reshape(-1).astype(np.int64), np.cumsum(sizes)[:-1]), len(uniq)


def _dense(key: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray, int]:
    n = key.shape[0]
    if size <= DENSE_SLACK * n + 1024:
        present = np.zeros(size, dtype=bool)
        present[key] = True
        code = np.cumsum(present) - 1
        inverse = code.take(key)
        count = int(code[-1]) + 1
        first = np.empty(count, dtype=np.int64)
        first[inverse] = np.arange(n)
        return first, inverse, count
    _, first, inverse = np.unique(key, return_index=True, return_inverse=True)
    return first, inverse.reshape(-1), len(first)


_SMALL_N = 50
_COMB = np.array(
    [[math.comb(a, b) for b in range(_SMALL_N + 1)] for a in range(_SMALL_N + 1)], dtype=float
)


def binomial_pmf(k: np.ndarray, n: np.ndarray, p: np.ndarray) -> np.ndarray:
    """P(Binomial(n, p) = k), elementwise: the direct product for n <= 50, else via logs."""
    out = np.empty(k.shape)
    small = n <= _SMALL_N
    ks, ns, ps = k[small], n[small], p[small]
    out[small] = _COMB[ns, ks] * ps**ks * (1 - ps) ** (ns - ks)
    big = ~small
    if big.any():
        kb, nb, pb = k[big], n[big], p[big]
        log_fact = np.array([math.lgamma(i + 1) for i in range(int(nb.max()) + 1)])
        with np.errstate(divide="ignore", invalid="ignore"):
            log_p = np.where(kb > 0, kb * np.log(pb), 0.0)
            log_q = np.where(nb - kb > 0, (nb - kb) * np.log1p(-pb), 0.0)
        out[big] = np.exp(log_fact[nb] - log_fact[kb] - log_fact[nb - kb] + log_p + log_q)
    return out


def enumerate_draw(kind: str, args: list[np.ndarray], n: int):
    """Every value a `bernoulli` or `binomial` draw can take in each of n states: (the state each
    value belongs to, the value, its probability), zero-probability values left out. The
    arguments are checked by the caller."""
    p = args[-1]
    if kind == "bernoulli":
        lo, hi = np.flatnonzero(p < 1), np.flatnonzero(p > 0)
        src = np.concatenate([lo, hi])
        values = np.concatenate([np.zeros(lo.size, bool), np.ones(hi.size, bool)])
        return src, values, np.concatenate([1 - p[lo], p[hi]])
    trials = np.floor(args[0]).astype(np.int64)  # as numpy's binomial in sim/streams.py
    sizes = trials + 1
    src = np.repeat(np.arange(n), sizes)
    k = np.arange(src.size) - np.repeat(np.cumsum(sizes) - sizes, sizes)
    probs = binomial_pmf(k, trials[src], p[src])
    keep = probs > 0
    return src[keep], k[keep].astype(float), probs[keep]

"""Aggregation of run records into outcome distributions with honest intervals, and the JSON result.

Each block of runs is summarised on its own; summaries are combined in block order, so the
numbers do not depend on how blocks were grouped into batches or spread over workers.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from sim import __version__
from sim.engine.batch import BatchOutput
from sim.errors import SimulationError
from sim.model.compiled import Model

Z95 = 1.959963984540054


def wilson_interval(count: Any, n: int, z: float = Z95) -> tuple[np.ndarray, np.ndarray]:
    """95% Wilson score interval of a binomial proportion (vectorised over counts)."""
    count = np.asarray(count, dtype=float)
    if n <= 0:
        return np.zeros_like(count), np.ones_like(count)
    p = count / n
    z2 = z * z
    centre = (p + z2 / (2 * n)) / (1 + z2 / n)
    half = z * np.sqrt(p * (1 - p) / n + z2 / (4 * n * n)) / (1 + z2 / n)
    lo = np.where(count <= 0, 0.0, np.clip(centre - half, 0, 1))
    hi = np.where(count >= n, 1.0, np.clip(centre + half, 0, 1))
    return lo, hi


@dataclass
class BlockSummary:
    """Everything the results need from one block of runs."""

    block: int
    runs: int
    outcome_counts: np.ndarray
    steps_hist: np.ndarray
    peak_hist: np.ndarray
    occupancy: np.ndarray
    ended: np.ndarray
    payoff_mean: np.ndarray
    payoff_m2: np.ndarray
    moves: np.ndarray
    final_state: np.ndarray


def summarise_batch(model: Model, out: BatchOutput) -> list[BlockSummary]:
    """Split a batch's records into per-block summaries."""
    rec = out.records
    summaries = []
    start = 0
    n_out = len(model.outcome_ids)
    for k, size in enumerate(out.block_sizes):
        sl = slice(start, start + size)
        pay = np.ascontiguousarray(rec.payoffs[:, sl])
        if not np.isfinite(pay).all():
            actor = model.actors[int(np.flatnonzero(~np.isfinite(pay).all(axis=1))[0])]
            raise SimulationError(f"the payoffs of {actor} overflow (a run's total is not finite)")
        mean = pay.mean(axis=1) if size else np.zeros(pay.shape[0])
        m2 = ((pay - mean[:, None]) ** 2).sum(axis=1)
        summaries.append(
            BlockSummary(
                block=out.first_block + k,
                runs=size,
                outcome_counts=np.bincount(rec.outcome[sl], minlength=n_out),
                steps_hist=np.bincount(rec.steps[sl], minlength=model.horizon + 1),
                peak_hist=np.bincount(rec.peak_rung[sl], minlength=model.n_rungs),
                occupancy=out.occupancy[k],
                ended=out.ended[k],
                payoff_mean=mean,
                payoff_m2=m2,
                moves=out.move_counts[k],
                final_state=np.array(rec.state[:, sl]),
            )
        )
        start += size
    return summaries


@dataclass
class Results:
    """Outcome distributions of a Monte Carlo experiment (or an exact solution)."""

    model: Model
    seed: int | None
    runs: int
    outcome_counts: np.ndarray
    steps_hist: np.ndarray
    peak_hist: np.ndarray
    occupancy: np.ndarray
    ended: np.ndarray
    payoff_mean: np.ndarray
    payoff_sd: np.ndarray
    moves: np.ndarray
    final_state: np.ndarray
    extra: dict[str, Any] = field(default_factory=dict)
    precision: dict[str, Any] | None = None
    exact: bool = False
    """An exact solution (sim/exact.py): `runs` is 1 and the count arrays hold probabilities."""
    final_weights: np.ndarray | None = None
    """Probability of each column of `final_state` (exact solutions); None: each run counts 1."""

    @classmethod
    def from_blocks(
        cls,
        model: Model,
        seed: int,
        blocks: list[BlockSummary],
        final_state: np.ndarray | None = None,
    ) -> Results:
        """Combine block summaries in block order (`final_state`: already gathered, if given)."""
        blocks = sorted(blocks, key=lambda b: b.block)
        n = 0
        mean = np.zeros(len(model.actors))
        m2 = np.zeros(len(model.actors))
        for b in blocks:
            if not b.runs:
                continue
            total = n + b.runs
            delta = b.payoff_mean - mean
            mean = mean + delta * (b.runs / total)
            m2 = m2 + b.payoff_m2 + delta**2 * (n * b.runs / total)
            n = total
        if not (np.isfinite(mean).all() and np.isfinite(m2).all()):
            raise SimulationError("payoffs are too large to average (their spread overflows)")
        sd = np.sqrt(m2 / (n - 1)) if n > 1 else np.zeros_like(m2)
        return cls(
            model=model,
            seed=seed,
            runs=n,
            outcome_counts=sum(b.outcome_counts for b in blocks),
            steps_hist=sum(b.steps_hist for b in blocks),
            peak_hist=sum(b.peak_hist for b in blocks),
            occupancy=sum(b.occupancy for b in blocks),
            ended=sum(b.ended for b in blocks),
            payoff_mean=mean,
            payoff_sd=sd,
            moves=sum(b.moves for b in blocks),
            final_state=final_state
            if final_state is not None
            else np.concatenate([b.final_state for b in blocks], axis=1),
        )

    @classmethod
    def from_exact(
        cls,
        model: Model,
        *,
        outcome_p: np.ndarray,
        steps_hist: np.ndarray,
        peak_hist: np.ndarray,
        occupancy: np.ndarray,
        ended: np.ndarray,
        payoff_mean: np.ndarray,
        payoff_sd: np.ndarray,
        moves: np.ndarray,
        final_state: np.ndarray,
        final_weights: np.ndarray,
        extra: dict[str, Any] | None = None,
    ) -> Results:
        """An exact solution: probabilities (floats) where Monte Carlo has counts, and `runs` 1,
        so every share (count / runs) is the probability itself; intervals collapse to the point.
        `moves` holds expected move counts; `final_state` the distinct final states as columns
        with their probabilities in `final_weights`."""
        return cls(
            model=model,
            seed=None,
            runs=1,
            outcome_counts=np.asarray(outcome_p, dtype=float),
            steps_hist=np.asarray(steps_hist, dtype=float),
            peak_hist=np.asarray(peak_hist, dtype=float),
            occupancy=np.asarray(occupancy, dtype=float),
            ended=np.asarray(ended, dtype=float),
            payoff_mean=np.asarray(payoff_mean, dtype=float),
            payoff_sd=np.asarray(payoff_sd, dtype=float),
            moves=np.asarray(moves, dtype=float),
            final_state=np.asarray(final_state, dtype=float),
            extra=dict(extra or {}),
            exact=True,
            final_weights=np.asarray(final_weights, dtype=float),
        )

    # --- derived figures ---------------------------------------------------------------

    @property
    def probabilities(self) -> np.ndarray:
        return self.outcome_counts / max(self.runs, 1)

    def intervals(self) -> tuple[np.ndarray, np.ndarray]:
        if self.exact:
            p = self.probabilities
            return p.copy(), p.copy()
        return wilson_interval(self.outcome_counts, self.runs)

    def half_widths(self) -> np.ndarray:
        lo, hi = self.intervals()
        return (hi - lo) / 2

    def payoff_interval(self) -> tuple[np.ndarray, np.ndarray]:
        if self.exact:
            return self.payoff_mean.copy(), self.payoff_mean.copy()
        half = Z95 * self.payoff_sd / np.sqrt(max(self.runs, 1))
        return self.payoff_mean - half, self.payoff_mean + half

    def steps_summary(self) -> dict[str, float]:
        return _hist_summary(self.steps_hist)

    def peak_distribution(self) -> dict[str, float]:
        total = max(self.peak_hist.sum(), 1)
        return {str(r): float(c / total) for r, c in enumerate(self.peak_hist) if c}

    def peak_mean(self) -> float:
        total = max(self.peak_hist.sum(), 1)
        return float((np.arange(len(self.peak_hist)) * self.peak_hist).sum() / total)

    def state_summary(self) -> dict[str, dict[str, float]]:
        out = {}
        m = self.model
        for i, name in enumerate(m.state_names):
            values = self.final_state[i]
            if not values.size:
                continue
            cast = int if m.state_integer[i] else float
            if self.final_weights is not None:
                mean, q = _weighted_summary(values, self.final_weights)
                out[name] = {"mean": mean, "p05": cast(q[0]), "p50": cast(q[1]), "p95": cast(q[2])}
                continue
            q = np.quantile(values, [0.05, 0.5, 0.95], method="inverted_cdf")
            out[name] = {
                "mean": float(values.mean()),
                "p05": cast(q[0]),
                "p50": cast(q[1]),
                "p95": cast(q[2]),
            }
        return out

    def move_shares(self) -> dict[str, dict[str, float]]:
        m = self.model
        out = {}
        for a, actor in enumerate(m.actors):
            counts = self.moves[a]
            total = counts.sum()
            if not total:
                out[actor] = {}
                continue
            names = ["pass"] + [o.id for o in m.options[a]]
            out[actor] = {
                names[k]: float(c / total)
                for k, c in enumerate(counts)
                if k < len(names) and (c or k > 0)
            }
        return out

    def to_json(self) -> dict[str, Any]:
        """The result object of DESIGN.md section 6."""
        m = self.model
        lo, hi = self.intervals()
        p = self.probabilities
        plo, phi = self.payoff_interval()
        exact = self.seed is None
        result: dict[str, Any] = {
            "scenario": m.scenario.id,
            "scenario_sha256": m.sha256,
            "version": __version__,
            "runs": None if exact else int(self.runs),
            "seed": self.seed,
            "parameters": {k: float(v) for k, v in m.parameters.items()},
            "outcomes": {
                oid: {
                    "p": float(p[i]),
                    "ci95": [float(lo[i]), float(hi[i])],
                    "count": None if exact else int(self.outcome_counts[i]),
                }
                for i, oid in enumerate(m.outcome_ids)
            },
            "steps": self.steps_summary(),
            "peak_rung": {"distribution": self.peak_distribution(), "mean": self.peak_mean()},
            "state": self.state_summary(),
            "payoffs": {
                actor: {"mean": float(self.payoff_mean[a]), "ci95": [float(plo[a]), float(phi[a])]}
                for a, actor in enumerate(m.actors)
            },
            "moves": self.move_shares(),
        }
        result.update(self.extra)
        return result


def _weighted_summary(values: np.ndarray, weights: np.ndarray) -> tuple[float, list[float]]:
    """Mean and 5/50/95% quantiles (inverted CDF, as for runs) of a weighted distribution."""
    order = np.argsort(values, kind="stable")
    v, w = values[order], weights[order]
    total = w.sum()
    if total <= 0:
        return 0.0, [0.0, 0.0, 0.0]
    cdf = np.cumsum(w) / total
    idx = np.minimum(np.searchsorted(cdf, np.array([0.05, 0.5, 0.95]) - 1e-12), len(v) - 1)
    return float((v * w).sum() / total), [float(v[i]) for i in idx]


def _hist_summary(hist: np.ndarray) -> dict[str, float]:
    total = hist.sum()
    if not total:
        return {"mean": 0.0, "p05": 0, "p50": 0, "p95": 0}
    values = np.arange(len(hist))
    cdf = np.cumsum(hist) / total

    def q(level: float) -> int:
        return int(values[np.searchsorted(cdf, level - 1e-12)])

    return {
        "mean": float((values * hist).sum() / total),
        "p05": q(0.05),
        "p50": q(0.5),
        "p95": q(0.95),
    }

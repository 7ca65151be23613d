"""Aggregation of run records into outcome distributions with honest intervals, and the JSON result.

Each block of runs is summarised on its own; summaries are combined in block order, so the
numbers do not depend on how blocks were grouped into batches or spread over workers.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from sim import __version__
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


def summarise_batch(model: Model, out: Any) -> list[BlockSummary]:
    """Split a batch's records (a `sim.engine.batch.BatchOutput`; not imported here, the engine
    is a higher layer) into per-block summaries."""
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
        with np.errstate(all="ignore"):  # an overflow is refused below, without a warning
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
        with np.errstate(all="ignore"):  # an overflow is refused below, without a warning
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
                "mean": _finite_mean(values),
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

    def to_dict(self) -> dict[str, Any]:
        """The result object of DESIGN.md section 6: exactly what `run --json` and `exact --json`
        print (`json.dumps(results.to_dict())`), with any extra entries (`precision`,
        `exact_check`) the command added."""
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
        _check_finite(result, m)
        return result

    def to_json(self) -> dict[str, Any]:
        """The old name of `to_dict` (kept: same object)."""
        return self.to_dict()

    # --- notebooks ---------------------------------------------------------------------------

    REPR_OUTCOMES = 3
    """Outcomes shown by `repr`, most likely first."""

    def _describe(self) -> str:
        """`camp-taji-2020, 2,000 runs, seed 1` or `chicken, exact`."""
        if self.exact:
            return f"{self.model.scenario.id}, exact"
        return f"{self.model.scenario.id}, {self.runs:,} runs, seed {self.seed}"

    def _share(self, x: float) -> str:
        return f"{x:.4%}" if self.exact else f"{x:.1%}"

    def __repr__(self) -> str:
        m = self.model
        p = self.probabilities
        lo, hi = self.intervals()
        order = sorted(range(len(m.outcome_ids)), key=lambda i: (-p[i], i))
        shown = order[: self.REPR_OUTCOMES]
        width = max((len(m.outcome_ids[i]) for i in shown), default=0)
        lines = [f"<Results {self._describe()}>"]
        for i in shown:
            where = "exact" if self.exact else f"95% {self._share(lo[i])} - {self._share(hi[i])}"
            lines.append(f"  {m.outcome_ids[i]:<{width}}  {self._share(p[i]):>8}  {where}")
        if len(order) > len(shown):
            more = len(order) - len(shown)
            lines.append(f"  (+{more} more outcome{'s' * (more > 1)}: .to_frame() has them all)")
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        """The outcome table, for Jupyter (every piece of scenario text escaped)."""
        from html import escape

        m, s = self.model, self.model.scenario
        p = self.probabilities
        lo, hi = self.intervals()
        rows = []
        for i, oid in enumerate(m.outcome_ids):
            interval = "exact" if self.exact else f"{self._share(lo[i])} - {self._share(hi[i])}"
            count = "-" if self.exact else f"{int(self.outcome_counts[i]):,}"
            rows.append(
                f"<tr><td>{escape(s.outcome_label(oid))} (<code>{escape(oid)}</code>)</td>"
                f'<td style="text-align:right">{self._share(p[i])}</td>'
                f'<td style="text-align:right">{interval}</td>'
                f'<td style="text-align:right">{count}</td></tr>'
            )
        caption = (
            f"<b>{escape(s.title)}</b> ({escape(self._describe())}; sha256 "
            f"{escape(m.sha256[:12])}, escalation-sim {escape(__version__)})"
        )
        return (
            f'<table class="escalation-results"><caption style="text-align:left">{caption}'
            "</caption><thead><tr><th>outcome</th><th>probability</th><th>95% interval</th>"
            f"<th>runs</th></tr></thead><tbody>{''.join(rows)}</tbody></table>"
        )

    def to_frame(self):
        """A tidy pandas DataFrame of the numbers of `to_dict()`, one row per figure:

        | metric    | actor | key        | label          | value | ci_low, ci_high | count |
        | --------- | ----- | ---------- | -------------- | ----- | --------------- | ----- |
        | outcome   | -     | outcome id | outcome label  | p     | 95% interval    | runs  |
        | payoff    | actor | actor      | actor label    | mean  | 95% interval    | -     |
        | move      | actor | option id  | option label   | share | -               | -     |
        | peak_rung | -     | rung index | rung name      | share | -               | -     |

        Missing cells are NaN (`count`, a nullable integer, is <NA>; it is <NA> throughout for
        an exact solution). `df.attrs` holds scenario, scenario_sha256, version, runs and seed.
        Needs pandas (`pip install pandas`); the rest of the package does not.
        """
        try:
            import pandas as pd
        except ImportError:
            raise ImportError(
                "Results.to_frame() needs pandas: pip install pandas "
                "(or use Results.to_dict(), which needs nothing)"
            ) from None
        data = self.to_dict()
        m, s = self.model, self.model.scenario
        nan = float("nan")
        rows: list[tuple[Any, ...]] = []
        for oid, o in data["outcomes"].items():
            lo, hi = o["ci95"]
            rows.append(("outcome", None, oid, s.outcome_label(oid), o["p"], lo, hi, o["count"]))
        for actor, pay in data["payoffs"].items():
            lo, hi = pay["ci95"]
            label = s.actors[actor].label
            rows.append(("payoff", actor, actor, label, pay["mean"], lo, hi, None))
        for a, actor in enumerate(m.actors):
            labels = {"pass": "pass (no option available)"}
            labels.update({o.id: o.label for o in m.options[a]})
            for option, share in data["moves"][actor].items():
                rows.append(
                    ("move", actor, option, labels.get(option, option), share, nan, nan, None)
                )
        for rung, share in data["peak_rung"]["distribution"].items():
            rows.append(("peak_rung", None, rung, s.ladder[int(rung)], share, nan, nan, None))
        columns = ["metric", "actor", "key", "label", "value", "ci_low", "ci_high", "count"]
        frame = pd.DataFrame(rows, columns=columns)
        frame["count"] = frame["count"].astype("Int64")
        frame.attrs = {
            k: data[k] for k in ("scenario", "scenario_sha256", "version", "runs", "seed")
        }
        return frame


def _finite_mean(values: np.ndarray, weights: np.ndarray | None = None) -> float:
    """The (weighted) mean of finite values, finite too: summing 1e308s overflows, so such
    values are scaled down first. Never a NumPy RuntimeWarning."""
    with np.errstate(all="ignore"):
        mean = values.mean() if weights is None else (values * weights).sum() / weights.sum()
        if np.isfinite(mean) or not np.isfinite(values).all():
            return float(mean)
        scale = float(np.abs(values).max())
        if weights is None:
            return float((values / scale).mean() * scale)
        return float(((values / scale) * weights).sum() / weights.sum() * scale)


def _check_finite(result: Any, model: Model, path: tuple[str, ...] = ()) -> None:
    """Every number of the JSON result is finite (strict JSON has no NaN or Infinity); else a
    SimulationError that names the figure (and the state variable or actor it belongs to)."""
    if isinstance(result, dict):
        for key, value in result.items():
            _check_finite(value, model, (*path, str(key)))
    elif isinstance(result, (list, tuple)):
        for i, value in enumerate(result):
            _check_finite(value, model, (*path, str(i)))
    elif isinstance(result, float) and not math.isfinite(result):
        figure = ".".join(path)
        if len(path) > 1 and path[0] == "state":
            what = f"state variable '{path[1]}'"
            where = model.scenario._source
            if where is not None and where.located:
                what = str(where.problem(("state", path[1]), what, key=True))
            raise SimulationError(
                f"{what}: the result's {figure} is {result}, not a finite number "
                "(its values overflow: give the variable a max, or smaller effects)"
            )
        if len(path) > 1 and path[0] == "payoffs":
            raise SimulationError(
                f"the payoffs of {path[1]} overflow: the result's {figure} is {result}"
            )
        raise SimulationError(f"the result's {figure} is {result}, not a finite number")


def _weighted_summary(values: np.ndarray, weights: np.ndarray) -> tuple[float, list[float]]:
    """Mean and 5/50/95% quantiles (inverted CDF, as for runs) of a weighted distribution."""
    order = np.argsort(values, kind="stable")
    v, w = values[order], weights[order]
    total = w.sum()
    if total <= 0:
        return 0.0, [0.0, 0.0, 0.0]
    cdf = np.cumsum(w) / total
    idx = np.minimum(np.searchsorted(cdf, np.array([0.05, 0.5, 0.95]) - 1e-12), len(v) - 1)
    return _finite_mean(v, w), [float(v[i]) for i in idx]


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

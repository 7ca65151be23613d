"""Aggregation of run records into outcome distributions with honest intervals, and the JSON result.

Each block of runs is summarised on its own; summaries are combined in block order, so the
numbers do not depend on how blocks were grouped into batches or spread over workers.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from fractions import Fraction
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
    final_state: np.ndarray | None
    """The block's final states (state vars, runs), until an `Aggregate` has taken them in."""


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


KEEP_FINAL_RUNS = 262_144
"""Experiments of at most this many runs also keep each run's final state (`Results.final_state`,
2 MiB a state variable at most), for scripts and tests that look at single runs; no figure of
the result comes from it."""


class Aggregate:
    """Block summaries folded into running totals, in block order, in memory that does not grow
    with the number of runs: what `Results` is made of.

    `runs` (when known in advance) adds the fixed-memory summary of the final states
    (`StateStream`); the final states themselves are kept while at most `keep` runs are added.
    """

    def __init__(self, model: Model, runs: int | None, keep: int = KEEP_FINAL_RUNS):
        self.model = model
        self.state = None if runs is None else StateStream(model, runs)
        self.keep = keep
        self.kept: list[np.ndarray] | None = []
        self.next_block = 0
        self.n = 0
        self.mean = np.zeros(len(model.actors))
        self.m2 = np.zeros(len(model.actors))
        self.totals: dict[str, Any] = {}

    def add(self, b: BlockSummary) -> None:
        """The summary of the next block (blocks must come in order: the payoff moments are
        combined in floating point, whose result depends on the order)."""
        if b.block < self.next_block:
            raise ValueError(f"block {b.block} added after block {self.next_block - 1}")
        self.next_block = b.block + 1
        for name in ("outcome_counts", "steps_hist", "peak_hist", "occupancy", "ended", "moves"):
            value = getattr(b, name)
            self.totals[name] = (
                value.copy() if name not in self.totals else self.totals[name] + value
            )
        with np.errstate(all="ignore"):  # an overflow is refused in results(), without a warning
            if b.runs:
                total = self.n + b.runs
                delta = b.payoff_mean - self.mean
                self.mean = self.mean + delta * (b.runs / total)
                self.m2 = self.m2 + b.payoff_m2 + delta**2 * (self.n * b.runs / total)
                self.n = total
        if b.final_state is not None:
            if self.state is not None:
                self.state.add(b.final_state)
            if self.kept is not None:
                self.kept = self.kept if self.n <= self.keep else None
            if self.kept is not None:
                self.kept.append(b.final_state)
            b.final_state = None

    def final_states(self) -> np.ndarray | None:
        """Every run's final state, if all were kept."""
        if self.kept is None:
            return None
        if not self.kept:
            return np.zeros((len(self.model.state_names), 0))
        return np.concatenate(self.kept, axis=1)

    def results(self, seed: int) -> Results:
        if not (np.isfinite(self.mean).all() and np.isfinite(self.m2).all()):
            raise SimulationError("payoffs are too large to average (their spread overflows)")
        n, m2 = self.n, self.m2
        sd = np.sqrt(m2 / (n - 1)) if n > 1 else np.zeros_like(m2)
        t = self.totals
        return Results(
            model=self.model,
            seed=seed,
            runs=n,
            outcome_counts=t.get("outcome_counts", 0),
            steps_hist=t.get("steps_hist", 0),
            peak_hist=t.get("peak_hist", 0),
            occupancy=t.get("occupancy", 0),
            ended=t.get("ended", 0),
            payoff_mean=self.mean,
            payoff_sd=sd,
            moves=t.get("moves", 0),
            final_state=self.final_states(),
            state_stream=self.state,
        )

    def nbytes(self) -> int:
        """Bytes held (beyond the kept final states): the same after N and 4N runs."""
        held = sum(v.nbytes for v in self.totals.values()) + self.mean.nbytes + self.m2.nbytes
        return held + (self.state.nbytes() if self.state is not None else 0)


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
    final_state: np.ndarray | None
    """Each run's final state (state vars, runs), kept only for experiments of at most
    KEEP_FINAL_RUNS runs (and for exact solutions: the distinct final states); None beyond."""
    extra: dict[str, Any] = field(default_factory=dict)
    precision: dict[str, Any] | None = None
    exact: bool = False
    """An exact solution (sim/exact.py): `runs` is 1 and the count arrays hold probabilities."""
    final_weights: np.ndarray | None = None
    """Probability of each column of `final_state` (exact solutions); None: each run counts 1."""
    state_stream: StateStream | None = None
    """The fixed-memory summary of every run's final state (Monte Carlo) that the state figures
    come from."""

    @classmethod
    def from_blocks(cls, model: Model, seed: int, blocks: list[BlockSummary]) -> Results:
        """Combine block summaries in block order."""
        blocks = sorted(blocks, key=lambda b: b.block)
        total = Aggregate(model, sum(b.runs for b in blocks))
        for b in blocks:
            total.add(b)
        return total.results(seed)

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

    def occupancy_shares(self) -> tuple[np.ndarray, np.ndarray]:
        """Where the runs are at the end of each step t = 0..horizon, as shares of all runs:
        (still going, by rung: (steps, rungs); already ended, by outcome: (steps, outcomes)).
        Runs still going at the horizon are not counted as ended, so each step's two rows add up
        to 1. The one definition behind the run chart and the browser explorer."""
        m = self.model
        total = max(self.runs, 1)
        ended_counts = np.array(self.ended, dtype=float)
        ended_counts[m.horizon, m.end_outcome] -= self.occupancy[m.horizon].sum()
        return self.occupancy / total, np.cumsum(ended_counts, axis=0) / total

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
        """Mean and 5/50/95% quantiles (numpy's inverted CDF) of each state variable's final
        value: from the fixed-memory `state_stream` for Monte Carlo (docs/model.md, "Final
        state figures"), from the weighted final states for an exact solution."""
        out = {}
        m = self.model
        stream = self.state_stream if self.final_weights is None else None
        means = stream.means() if stream is not None and stream.runs else None
        for i, name in enumerate(m.state_names):
            cast = int if m.state_integer[i] else float
            if stream is not None:
                if not stream.runs:
                    continue
                mean, q = float(means[i]), stream.counts[i].quantiles()
            else:
                values = self.final_state[i]
                if not values.size:
                    continue
                if self.final_weights is not None:
                    mean, q = _weighted_summary(values, self.final_weights)
                else:
                    levels = list(QUANTILES)
                    q = np.quantile(values, levels, method="inverted_cdf")
                    mean = _finite_mean(values)
            out[name] = {"mean": mean, "p05": cast(q[0]), "p50": cast(q[1]), "p95": cast(q[2])}
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


# --- fixed-memory summaries of final states ---------------------------------------------------

QUANTILES = (0.05, 0.5, 0.95)
"""The quantiles of each state variable's final value in the result (p05, p50, p95)."""
MAX_DISTINCT = 65_536
"""Most distinct final values of one state variable counted exactly (1 MiB a variable); beyond
that its quantiles come from a log-bucket sketch (SKETCH_ALPHA)."""
MAX_DENSE = 1 << 20
"""Widest range of an integer state variable's values counted in one dense array (8 MiB)."""
SKETCH_ALPHA = 1e-3
"""Relative error bound of a sketched quantile: |estimate - exact| <= SKETCH_ALPHA * |exact|."""
_GAMMA = (1 + SKETCH_ALPHA) / (1 - SKETCH_ALPHA)
_LOG_GAMMA = math.log(_GAMMA)
_MAX_KEY = math.ceil(math.log(np.finfo(float).max) / _LOG_GAMMA) + 1
_MIN_KEY = math.floor(math.log(np.finfo(float).smallest_subnormal) / _LOG_GAMMA) - 1
_SCALE = 2.0**-64
"""Values are summed a second time scaled by this power of two (exactly), for a mean of values
so large that their plain sum overflows."""


def quantile_ranks(n: int, levels: Any = QUANTILES) -> np.ndarray:
    """0-based ranks (in sorted order) of numpy's `method="inverted_cdf"` quantiles of n values,
    computed with numpy's own arithmetic, so that counts give its numbers bit for bit."""
    index = n * np.asarray(levels, dtype=float) - 1
    previous = np.floor(index)
    rank = np.where(index - previous == 0, previous, previous + 1).astype(np.int64)
    return np.clip(rank, 0, max(n - 1, 0))


def _pairwise_leaf_sums(buffer: np.ndarray, starts: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """numpy's pairwise-summation leaf of each column span [start, start + length) of `buffer`
    (rows, columns), length <= 128: 8 accumulators over the first `length - length % 8` values,
    combined pairwise, then the rest added one by one (below 8 values: one by one from 0.0).
    All spans at once: (rows, spans) sums.

    Spans of different lengths are padded with zeros, which changes no sum: x + 0.0 is x for
    every x but -0.0, and a zero's sign cannot reach the total (x + z is x for x nonzero, and
    the total is 0.0 + the root, as numpy starts from the identity 0.0)."""
    rows = buffer.shape[0]
    rest = lengths % 8
    whole = lengths - rest
    wide, tail = int(whole.max()), int(rest.max())
    padded = np.concatenate([buffer, np.zeros((rows, 1))], axis=1)
    pad = padded.shape[1] - 1

    def gather(first: np.ndarray, count: np.ndarray, width: int) -> np.ndarray:
        offsets = np.arange(width)
        at = first[:, None] + offsets
        at[offsets >= count[:, None]] = pad
        return padded[:, at]  # (rows, spans, width)

    if wide:
        slab = gather(starts, whole, wide).reshape(rows, starts.size, wide // 8, 8)
        r = slab[:, :, 0].copy()
        for i in range(1, wide // 8):
            r += slab[:, :, i]
        res = ((r[..., 0] + r[..., 1]) + (r[..., 2] + r[..., 3])) + (
            (r[..., 4] + r[..., 5]) + (r[..., 6] + r[..., 7])
        )
    else:
        res = np.zeros((rows, starts.size))
    if tail:
        ends = gather(starts + whole, rest, tail)
        for i in range(tail):
            res = res + ends[:, :, i]
    return res


class _PairwiseLeaves:
    """The leaves of numpy's pairwise-summation tree over n values, in order, as (start,
    length, merges): `merges` is how many nodes the leaf completes (each the sum left + right of
    the two latest values: a postfix walk). Holds O(log n) frames, never the n / 128 leaves."""

    def __init__(self, n: int):
        self.frames: list[list[int]] = []  # [lo, n, half, right child begun] on the path
        self.leaf: tuple[int, int] | None = None
        self._descend(0, n)

    def _descend(self, lo: int, n: int) -> None:
        while n > _PAIRWISE_BLOCK:
            half = n // 2
            half -= half % 8
            self.frames.append([lo, n, half, 0])
            n = half
        self.leaf = (lo, n)

    def __iter__(self) -> _PairwiseLeaves:
        return self

    def __next__(self) -> tuple[int, int, int]:
        if self.leaf is None:
            raise StopIteration
        lo, n = self.leaf
        frames = self.frames
        merges = 0
        while frames and frames[-1][3]:
            frames.pop()
            merges += 1
        if frames:
            frame = frames[-1]
            frame[3] = 1
            self._descend(frame[0] + frame[2], frame[1] - frame[2])
        else:
            self.leaf = None
        return lo, n, merges


_PAIRWISE_BLOCK = 128


class PairwiseSum:
    """Row sums of a (rows, n) matrix fed a few columns at a time, in order, equal bit for bit to
    numpy's `matrix.sum(axis=1)` of the whole (its pairwise summation, whose tree depends only on
    n, which must be known in advance). Holds O(rows * (128 + log n)) numbers beyond the columns
    of the latest `add`, never n. The leaves an `add` completes are summed together."""

    def __init__(self, rows: int, n: int):
        self.rows, self.n = rows, n
        self.buffer = np.empty((rows, 0))
        self.buffer_start = 0  # column index of the buffer's first column
        self.seen = 0
        self.done = 0  # columns summed into finished leaves
        self.total: np.ndarray | None = np.zeros(rows) if n == 0 else None
        self.leaves = _PairwiseLeaves(n) if n else None
        self.next_leaf = next(self.leaves) if n else None
        self.values: list[np.ndarray] = []  # the postfix walk's stack: O(log n) sums

    def _sum_leaves(self) -> None:
        """Sum every leaf now complete, all at once, and combine them up the tree."""
        spans = []
        while self.next_leaf is not None and self.next_leaf[0] + self.next_leaf[1] <= self.seen:
            spans.append(self.next_leaf)
            self.next_leaf = next(self.leaves, None)
        if not spans:
            return
        starts = np.array([s[0] for s in spans]) - self.buffer_start
        lengths = np.array([s[1] for s in spans])
        sums = _pairwise_leaf_sums(self.buffer, starts, lengths)
        values = self.values
        for k, (_, _, merges) in enumerate(spans):
            values.append(sums[:, k])
            for _ in range(merges):
                right = values.pop()
                values[-1] = values[-1] + right
        last = spans[-1]
        self.done = last[0] + last[1]
        if self.next_leaf is None:
            self.total = 0.0 + values.pop()  # numpy starts from the identity, 0.0
            self.leaves = None
            self.buffer = self.buffer[:, :0]

    def add(self, columns: np.ndarray) -> None:
        if self.leaves is None:
            raise ValueError("more values than announced")
        self.buffer = np.concatenate(
            [self.buffer[:, self.done - self.buffer_start :], columns], axis=1
        )
        self.buffer_start = self.done
        self.seen += columns.shape[1]
        self._sum_leaves()

    def nbytes(self) -> int:
        return self.buffer.nbytes


class ValueCounts:
    """Mergeable counts of one state variable's final values in fixed memory.

    Exact while the values are integers spanning at most MAX_DENSE (a dense array) or number at
    most MAX_DISTINCT distinct values (a table); otherwise a log-bucket sketch (DDSketch-style:
    bucket k of |x| is (gamma^(k-1), gamma^k]) whose quantiles are within SKETCH_ALPHA relative
    error. What it ends as depends only on the multiset of values, never on the order in which
    blocks are added, so it is the same for any batch size and worker count.
    """

    def __init__(self, integer: bool):
        self.mode = "dense" if integer else "table"
        self.n = 0
        self.lo = 0  # dense: value of counts[0]; sketch: key of counts[0]
        self.values = np.empty(0)
        self.counts = np.zeros(0, dtype=np.int64)
        self.pending: list[tuple[np.ndarray, np.ndarray]] = []
        self.pending_size = 0
        self.neg = ValueCountsWindow()
        self.pos = ValueCountsWindow()
        self.zero = 0
        self.vmin = math.inf
        self.vmax = -math.inf

    # --- adding -----------------------------------------------------------------------------

    def add(self, values: np.ndarray) -> None:
        if not values.size:
            return
        self.n += values.size
        finite = values[np.isfinite(values)]
        if finite.size:
            self.vmin = min(self.vmin, float(finite.min()))
            self.vmax = max(self.vmax, float(finite.max()))
        if self.mode == "dense":
            if finite.size == values.size and self._add_dense(values):
                return
            self._to_table()
        if self.mode == "table":
            v, c = np.unique(values, return_counts=True)
            self.pending.append((v, c.astype(np.int64)))
            self.pending_size += v.size
            if self.pending_size > max(self.values.size, 4096):
                self._merge()
            return
        self._add_sketch(values, np.ones(values.size, dtype=np.int64))

    def _add_dense(self, values: np.ndarray) -> bool:
        ints = values.astype(np.int64)
        if not np.array_equal(ints, values):
            return False
        lo, hi = int(ints.min()), int(ints.max())
        if self.counts.size:
            lo, hi = min(lo, self.lo), max(hi, self.lo + self.counts.size - 1)
        if hi - lo + 1 > MAX_DENSE:
            return False
        if not self.counts.size or lo < self.lo or hi >= self.lo + self.counts.size:
            grown = np.zeros(hi - lo + 1, dtype=np.int64)
            if self.counts.size:
                grown[self.lo - lo : self.lo - lo + self.counts.size] = self.counts
            self.counts, self.lo = grown, lo
        self.counts += np.bincount(ints - self.lo, minlength=self.counts.size)
        return True

    def _to_table(self) -> None:
        at = np.flatnonzero(self.counts)
        self.values = (at + self.lo).astype(float)
        self.counts = self.counts[at]
        self.mode = "table"

    def _merge(self) -> None:
        if not self.pending:
            return
        v = np.concatenate([self.values, *(p[0] for p in self.pending)])
        c = np.concatenate([self.counts, *(p[1] for p in self.pending)])
        self.pending, self.pending_size = [], 0
        values, inverse = np.unique(v, return_inverse=True)
        counts = np.bincount(inverse.ravel(), weights=c, minlength=values.size).astype(np.int64)
        if values.size <= MAX_DISTINCT:
            self.values, self.counts = values, counts
            return
        self.mode = "sketch"
        self.values, self.counts = np.empty(0), np.zeros(0, dtype=np.int64)
        self._add_sketch(values, counts)

    def _add_sketch(self, values: np.ndarray, counts: np.ndarray) -> None:
        zero = values == 0
        self.zero += int(counts[zero].sum())
        with np.errstate(all="ignore"):
            keys = np.ceil(np.log(np.abs(values)) / _LOG_GAMMA)
        keys = np.clip(np.nan_to_num(keys, nan=_MAX_KEY), _MIN_KEY, _MAX_KEY).astype(np.int64)
        for window, side in ((self.pos, values > 0), (self.neg, values < 0)):
            if side.any():
                window.add(keys[side], counts[side])

    def merged(self) -> ValueCounts:
        self._merge()
        return self

    def nbytes(self) -> int:
        parts = [self.values, self.counts, self.neg.counts, self.pos.counts]
        return sum(p.nbytes for p in parts) + sum(v.nbytes + c.nbytes for v, c in self.pending)

    # --- figures ----------------------------------------------------------------------------

    @property
    def exact(self) -> bool:
        return self.mode != "sketch"

    def quantiles(self, levels: Any = QUANTILES) -> list[float]:
        """numpy's `np.quantile(values, levels, method="inverted_cdf")` of every value added:
        exact (bit for bit) unless sketched, then within SKETCH_ALPHA relative error."""
        self._merge()
        ranks = quantile_ranks(self.n, levels)
        if self.mode == "dense":
            at = np.searchsorted(np.cumsum(self.counts), ranks, side="right")
            return [float(self.lo + a) for a in at]
        if self.mode == "table":
            at = np.searchsorted(np.cumsum(self.counts), ranks, side="right")
            return [float(self.values[a]) for a in at]
        # sketch: negative buckets from the most negative, then zero, then positive
        neg_keys, neg_counts = self.neg.items()
        pos_keys, pos_counts = self.pos.items()
        keys = np.concatenate([neg_keys[::-1], [0], pos_keys])
        signs = np.concatenate([-np.ones(neg_keys.size), [0.0], np.ones(pos_keys.size)])
        counts = np.concatenate([neg_counts[::-1], [self.zero], pos_counts])
        at = np.searchsorted(np.cumsum(counts), ranks, side="right")
        out = []
        for a in at:
            estimate = signs[a] * 2 * _GAMMA ** float(keys[a]) / (_GAMMA + 1)
            out.append(float(min(max(estimate, self.vmin), self.vmax)))
        return out


class ValueCountsWindow:
    """Counts over a contiguous, growing range of integer keys."""

    def __init__(self) -> None:
        self.lo = 0
        self.counts = np.zeros(0, dtype=np.int64)

    def add(self, keys: np.ndarray, counts: np.ndarray) -> None:
        lo, hi = int(keys.min()), int(keys.max())
        if self.counts.size:
            lo, hi = min(lo, self.lo), max(hi, self.lo + self.counts.size - 1)
        if not self.counts.size or lo < self.lo or hi >= self.lo + self.counts.size:
            grown = np.zeros(hi - lo + 1, dtype=np.int64)
            if self.counts.size:
                grown[self.lo - lo : self.lo - lo + self.counts.size] = self.counts
            self.counts, self.lo = grown, lo
        self.counts += np.bincount(
            keys - self.lo, weights=counts, minlength=self.counts.size
        ).astype(np.int64)

    def items(self) -> tuple[np.ndarray, np.ndarray]:
        at = np.flatnonzero(self.counts)
        return at + self.lo, self.counts[at]


class ExactSum:
    """The exact sum of a stream of floats (rows, values), one per row, in fixed memory: a
    Python int (or, once a value is not an integer, a Fraction over a power of two), so it does
    not depend on the order of the values or on how they are cut into pieces; NaN and
    infinities are noted apart. Integers below 2^40 are summed as int64 (exact); other values
    split exactly into 53-bit integer significands and exponents, whose halves numpy sums
    exactly per exponent. Its mean is the exact mean rounded once, which is numpy's mean of the
    values bit for bit whenever their pairwise sum is exact (integers whose absolute values sum
    below 2^53), and nearer the truth otherwise."""

    CHUNK = 1 << 20
    """Values summed at a time: int64 sums of integers below 2^40 and float64 sums of 27-bit
    halves stay exact."""
    _SMALL = 2.0**40
    _HALF = 27

    def __init__(self, rows: int):
        self.totals = [0] * rows  # int or Fraction: the exact sum of each row
        self.nan = np.zeros(rows, dtype=bool)
        self.pos_inf = np.zeros(rows, dtype=bool)
        self.neg_inf = np.zeros(rows, dtype=bool)

    def add(self, values: np.ndarray) -> None:
        for lo in range(0, values.shape[1], self.CHUNK):
            self._add(values[:, lo : lo + self.CHUNK])

    def _add(self, values: np.ndarray) -> None:
        if not values.size:
            return
        with np.errstate(invalid="ignore"):
            fast = np.abs(values).max(axis=1) <= self._SMALL  # NaN: not fast
        if fast.any():
            small = values if fast.all() else values[fast]
            ints = small.astype(np.int64)
            whole = (ints == small).all(axis=1)
            for r, ok, total in zip(np.flatnonzero(fast), whole, ints.sum(axis=1).tolist()):
                if ok:
                    self.totals[r] += total
                else:
                    fast[r] = False
        for r in np.flatnonzero(~fast):
            self._add_any(int(r), values[r])

    def _add_any(self, r: int, row: np.ndarray) -> None:
        """Any floats: each finite one is exactly `significand * 2**exponent`, the significand a
        53-bit integer split into two halves, whose sums per exponent are exact in float64."""
        finite = np.isfinite(row)
        if not finite.all():
            self.nan[r] |= bool(np.isnan(row).any())
            self.pos_inf[r] |= bool((row == np.inf).any())
            self.neg_inf[r] |= bool((row == -np.inf).any())
            row = row[finite]
        fraction, exponent = np.frexp(row)
        significand = (fraction * 2.0**53).astype(np.int64)
        exponents, at = np.unique(exponent, return_inverse=True)
        high = np.bincount(at, weights=significand >> self._HALF, minlength=exponents.size)
        low = np.bincount(
            at, weights=significand & ((1 << self._HALF) - 1), minlength=exponents.size
        )
        total = Fraction(0)
        for e, h, lo in zip(exponents.tolist(), high.tolist(), low.tolist()):
            whole = (int(h) << self._HALF) + int(lo)
            total += whole * Fraction(2) ** (e - 53)
        self.totals[r] += total

    def means(self, n: int) -> np.ndarray:
        """Each row's exact mean over n values, rounded once (NaN and infinities as IEEE sums
        give them)."""
        out = np.empty(len(self.totals))
        for r, total in enumerate(self.totals):
            if self.nan[r] or self.pos_inf[r] and self.neg_inf[r]:
                out[r] = math.nan
            elif self.pos_inf[r] or self.neg_inf[r]:
                out[r] = math.inf if self.pos_inf[r] else -math.inf
            else:
                out[r] = float(total / n)  # int / int and Fraction / int: rounded once
        return out


class StateStream:
    """Fixed-memory summary of the final states of an experiment of `runs` runs, fed block by
    block in run order: per variable the mean and counts of its values for the quantiles. The
    mean of a variable that is not an integer is numpy's pairwise sum, bit for bit, so the same
    number as `final_state[i].mean()`; an integer variable's sum is exact (`ExactSum`: the same
    number whenever its values' absolute sum is below 2^53, as it is when the pairwise sum is
    exact), which is cheaper than the pairwise tree."""

    def __init__(self, model: Model, runs: int):
        n_state = len(model.state_names)
        self.runs = runs
        self.added = 0
        integer = np.array([bool(model.state_integer[i]) for i in range(n_state)], dtype=bool)
        self.exact_rows = np.flatnonzero(integer)
        self.paired_rows = np.flatnonzero(~integer)
        self.exact = ExactSum(self.exact_rows.size)
        self.sums = PairwiseSum(2 * self.paired_rows.size, runs) if self.paired_rows.size else None
        self.counts = [ValueCounts(bool(integer[i])) for i in range(n_state)]
        self.all_finite = np.ones(self.paired_rows.size, dtype=bool)
        self.scale = np.zeros(self.paired_rows.size)

    def add(self, state: np.ndarray) -> None:
        """The final states (state vars, runs) of the next runs, in run order."""
        self.added += state.shape[1]
        if self.added > self.runs:
            raise ValueError(f"more than the {self.runs:,} runs announced")
        if self.exact_rows.size:
            self.exact.add(state[self.exact_rows])
        if self.paired_rows.size:
            paired = state[self.paired_rows]
            with np.errstate(all="ignore"):
                self.sums.add(np.concatenate([paired, paired * _SCALE]))
                finite = np.isfinite(paired)
                self.all_finite &= finite.all(axis=1)
                if paired.size:
                    self.scale = np.maximum(
                        self.scale, np.where(finite, np.abs(paired), 0).max(axis=1)
                    )
        for i, counts in enumerate(self.counts):
            counts.add(state[i])

    def nbytes(self) -> int:
        paired = self.sums.nbytes() if self.sums is not None else 0
        return paired + sum(c.nbytes() for c in self.counts)

    def means(self) -> np.ndarray:
        """Each variable's mean final value: `final_state[i].mean()` bit for bit (see the
        class), and, like `_finite_mean`, finite for finite values whose plain sum overflows."""
        if self.added != self.runs or self.sums is not None and self.sums.total is None:
            raise ValueError(f"{self.added:,} of {self.runs:,} runs added")
        mean = np.empty(len(self.counts))
        mean[self.exact_rows] = self.exact.means(self.runs)
        if self.sums is None:
            return mean
        n_paired = self.paired_rows.size
        with np.errstate(all="ignore"):
            paired = self.sums.total[:n_paired] / self.runs
            for k in np.flatnonzero(~np.isfinite(paired) & self.all_finite):
                paired[k] = self._scaled_mean(k)
        mean[self.paired_rows] = paired
        return mean

    def _scaled_mean(self, k: int) -> float:
        """The mean of the k-th variable summed pairwise, whose plain sum overflowed."""
        counts = self.counts[int(self.paired_rows[k])].merged()
        scale = float(self.scale[k])
        if counts.mode == "sketch" or not scale:
            # summed a second time scaled down by a power of two (exact), then scaled back
            return float(self.sums.total[self.paired_rows.size + k] / self.runs / _SCALE)
        values = counts.values
        if counts.mode == "dense":
            values = np.arange(counts.lo, counts.lo + counts.counts.size, dtype=float)
        return float(((values / scale) * counts.counts).sum() / self.runs * scale)

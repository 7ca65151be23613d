"""Predictive checks of an episode log against a scenario (`escalation check`).

Each episode's statistics are set beside the distribution the model predicts for them, from
`runs` Monte Carlo episodes (sim/analysis/episodes.py, the runs of `escalation run --seed`):

- `steps`: the steps the episode lasted (its log's last step);
- `outcome`: how it ended, and `peak rung`: the highest rung reached. A log does not record
  them, so the observed value is the most probable one given the log (the likelihood's
  conditioned pass, sim/solvers/likelihood.py; certain when every cell is observed);
- `ACTOR: OPTION`: how often the actor played the option among the episode's observed moves,
  against the model runs that ended at the same move (each counted over the same moves, so
  blanks in the log are treated alike), or, if fewer than MIN_ALIKE did, those that got at least
  as far;
- with several episodes, each count's total over all of them (`pooled`), against the sum of
  the per-episode predictive means and variances (normal approximation).

For a count, the percentile is the mid-rank 100 (P(X < x) + P(X = x) / 2) and the statistic is
inside the central 90% band unless P(X >= x) < 5% or P(X <= x) < 5% (for a discrete statistic
this band holds at least 90% of the model's episodes). For the outcome, the band is the most
probable outcomes that together hold at least 90%.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from sim.analysis.doctrines import alternative_policies
from sim.analysis.episodes import Simulated, reached, simulate_observations
from sim.format.digest import scenario_sha256
from sim.format.episode_log import EpisodeLog
from sim.format.scenario import Scenario
from sim.model.compiled import Model
from sim.solvers.likelihood import UNSEEN, Likelihood, Observations, likelihood, observations
from sim.solvers.prepare import prepare_model

MAX_RECORD_BYTES = 1 << 30
"""Most memory the model runs' recorded moves may take (1 GiB)."""
TAIL = 0.05
"""Each tail outside the central 90% band."""
DEFAULT_RUNS = 10_000
MIN_ALIKE = 200
"""Model runs that must end where an episode ended for its move counts to be compared with
theirs alone."""
EXACT_STATES = 250_000
"""The widest exact conditioned pass tried before the particle filter takes over."""
PARTICLES = 5_000
"""States per episode when the conditioned pass (for outcome and peak) is too wide to be exact."""


@dataclass(frozen=True)
class Statistic:
    name: str
    observed: float | str
    percentile: float | None
    """Mid-rank percentile of the observed value (None for the outcome)."""
    band: tuple[Any, Any] | tuple[str, ...]
    """The central 90% band: (low, high) values, or the outcomes it holds."""
    inside: bool
    probability: float
    """The model's probability of the observed value."""
    median: float | None = None
    mean: float | None = None
    variance: float | None = None
    """The model's mean and variance of a count (for the pooled check of all episodes)."""

    def to_dict(self) -> dict[str, Any]:
        out = {
            "name": self.name,
            "observed": self.observed,
            "percentile": self.percentile,
            "band90": list(self.band),
            "inside": self.inside,
            "p_observed": self.probability,
        }
        if self.median is not None:
            out["median"] = self.median
        return out


@dataclass(frozen=True)
class EpisodeCheck:
    number: int
    statistics: tuple[Statistic, ...]
    impossible_line: int | None = None
    blanks: bool = False
    """Whether the episode's log has unobserved cells."""
    """The log line of the first move the model gives probability 0 (the log's last line when
    it is its end), or None when the episode is possible."""

    @property
    def outside(self) -> list[Statistic]:
        return [s for s in self.statistics if not s.inside]

    @property
    def verdict(self) -> str:
        n, out = len(self.statistics), self.outside
        if self.impossible_line is not None:
            return (
                f"impossible under the model: the log has probability 0 (from line "
                f"{self.impossible_line}); {len(out)} of {n} statistics outside their 90% bands"
            )
        if not out:
            return f"consistent with the model: all {n} statistics inside its 90% bands"
        shown = "; ".join(_describe(s) for s in out[:4])
        more = f"; and {len(out) - 4} more" if len(out) > 4 else ""
        return f"not typical of the model: {len(out)} of {n} statistics outside: {shown}{more}"


def _describe(s: Statistic) -> str:
    if s.percentile is None:
        return f"{s.name} {s.observed} (model probability {s.probability:.1%})"
    return f"{s.name} {_number(s.observed)} (percentile {s.percentile:.1f})"


def _number(x: Any) -> str:
    return f"{x:g}" if isinstance(x, float) else str(x)


@dataclass
class CheckResult:
    scenario: Scenario
    runs: int
    seed: int
    episodes: list[EpisodeCheck]
    fixed: dict[str, float] = field(default_factory=dict)
    model_runs: Simulated | None = None
    pooled: tuple[Statistic, ...] = ()
    """With several episodes: each count summed over all of them against the model's total
    (episodes independent: means and variances add), by its normal approximation."""
    doctrines: dict[str, str] = field(default_factory=dict)
    """Actor -> the scenario alternative it played instead of its policy (`--doctrine`)."""

    @property
    def pooled_verdict(self) -> str | None:
        if not self.pooled:
            return None
        out = [s for s in self.pooled if not s.inside]
        n = len(self.pooled)
        if not out:
            return (
                f"all {len(self.episodes):,} episodes together: all {n} totals inside the "
                "model's 90% bands"
            )
        shown = "; ".join(_describe(s) for s in out[:4])
        return (
            f"all {len(self.episodes):,} episodes together: {len(out)} of {n} totals outside the "
            f"model's 90% bands: {shown}"
        )

    @property
    def inside_fraction(self) -> float:
        stats = [s for e in self.episodes for s in e.statistics]
        return sum(s.inside for s in stats) / len(stats) if stats else 1.0

    def to_dict(self) -> dict[str, Any]:
        from sim import __version__

        out: dict[str, Any] = {
            "scenario": self.scenario.id,
            "scenario_sha256": scenario_sha256(self.scenario),
            "version": __version__,
            "runs": self.runs,
            "seed": self.seed,
            "inside_fraction": self.inside_fraction,
            "episodes": [
                {
                    "episode": e.number,
                    "statistics": [s.to_dict() for s in e.statistics],
                    "inside": not e.outside,
                    "impossible_line": e.impossible_line,
                    "verdict": e.verdict,
                }
                for e in self.episodes
            ],
        }
        if self.pooled:
            out["pooled"] = {
                "statistics": [s.to_dict() for s in self.pooled],
                "verdict": self.pooled_verdict,
            }
        if self.fixed:
            out["set"] = dict(self.fixed)
        if self.doctrines:
            out["doctrines"] = dict(self.doctrines)
        return out


def check(
    scenario: Scenario,
    log: EpisodeLog,
    runs: int = DEFAULT_RUNS,
    seed: int = 1,
    fixed: Mapping[str, float] | None = None,
    doctrines: Mapping[str, str] | None = None,
) -> CheckResult:
    """Each episode of `log` against `runs` episodes of the model (see the module docstring);
    `doctrines` {actor: alternative} plays scenario alternatives in place of actors' policies
    (an `as_it_happened` doctrine, say)."""
    if runs < 2:
        raise ValueError("--runs must be at least 2 for a predictive distribution")
    size = 2 * 8 * scenario.horizon * len(scenario.turn_order) * runs
    if size > MAX_RECORD_BYTES:
        most = MAX_RECORD_BYTES // (16 * scenario.horizon * len(scenario.turn_order))
        raise ValueError(
            f"--runs {runs:,} would record {size / (1 << 30):,.1f} GiB of moves; at most "
            f"{most:,} runs of this scenario fit in {MAX_RECORD_BYTES >> 20} MiB"
        )
    fixed = dict(fixed or {})
    doctrines = dict(doctrines or {})
    model = prepare_model(scenario, fixed, alternative_policies(scenario, doctrines))
    obs = observations(model, log)
    given = _conditioned(model, obs)
    simulated = simulate_observations(model, runs, seed)
    checks = []
    for e, episode in enumerate(log.episodes):
        stats = [
            _count_stat("steps", float(obs.last_step[e]), simulated.observations.last_step),
            _outcome_stat(model, given, e, simulated.outcome),
            _count_stat("peak rung", _peak(given, e), simulated.peak_rung),
            *_move_stats(model, obs, e, simulated.observations),
        ]
        line = None if given is None or given.estimated else given.impossible_at.get(e)
        if line is not None and line < 0:
            line = episode.moves[-1].line
        blanks = any(mv.option is None for mv in episode.moves)
        kept = tuple(s for s in stats if s is not None)
        checks.append(EpisodeCheck(episode.number, kept, line, blanks))
    return CheckResult(
        scenario, runs, seed, checks, fixed, simulated, _pooled(checks), doctrines=doctrines
    )


def _pooled(checks: list[EpisodeCheck]) -> tuple[Statistic, ...]:
    """Each count statistic's total over the episodes against the model's: z = (observed -
    mean) / sd, percentile 100 Phi(z), inside the 90% band where |z| <= 1.645."""
    if len(checks) < 2:
        return ()
    from scipy.stats import norm

    totals: dict[str, list[float]] = {}
    for episode in checks:
        for s in episode.statistics:
            if s.mean is None or (s.name == "peak rung" and episode.blanks):
                continue  # a blanked episode's peak is its most probable, not a draw
            t = totals.setdefault(s.name, [0.0, 0.0, 0.0])
            t[0] += float(s.observed)
            t[1] += s.mean
            t[2] += s.variance
    out = []
    z90 = norm.ppf(1 - TAIL)
    for name, (observed, mean, variance) in totals.items():
        sd = variance**0.5
        z = (
            (observed - mean) / sd
            if sd > 0
            else (0.0 if observed == mean else np.inf * np.sign(observed - mean))
        )
        out.append(
            Statistic(
                name=f"total {name}",
                observed=observed,
                percentile=float(100 * norm.cdf(z)),
                band=(mean - z90 * sd, mean + z90 * sd),
                inside=bool(abs(z) <= z90),
                probability=float(2 * norm.sf(abs(z))),
                median=mean,
                mean=mean,
                variance=variance,
            )
        )
    return tuple(out)


def _conditioned(model: Model, obs: Observations) -> Likelihood | None:
    """The conditioned pass that gives outcome and peak rung given the log: exact where small,
    else the particle filter; None where neither can run (those two statistics are then left
    out)."""
    from sim.errors import ScenarioError

    try:
        return likelihood(model, obs, max_states=EXACT_STATES)
    except ScenarioError:
        pass
    try:
        return likelihood(model, obs, particles=PARTICLES)
    except ScenarioError:
        return None


def _peak(given: Likelihood | None, e: int) -> float | None:
    if given is None:
        return None
    mass = given.peak[e]
    return float(np.argmax(mass)) if mass.sum() > 0 else None


def _count_stat(name: str, observed: float | None, values: np.ndarray) -> Statistic | None:
    if observed is None:
        return None
    values = np.asarray(values, dtype=float)
    below = float(np.mean(values < observed))
    equal = float(np.mean(values == observed))
    lo, hi = np.quantile(values, [TAIL, 1 - TAIL], method="inverted_cdf")
    inside = bool(lo <= observed <= hi)  # as printed: outside iff a tail beyond it holds < 5%
    return Statistic(
        name=name,
        observed=observed,
        percentile=100 * (below + equal / 2),
        band=(float(lo), float(hi)),
        inside=inside,
        probability=equal,
        median=float(np.quantile(values, 0.5, method="inverted_cdf")),
        mean=float(values.mean()),
        variance=float(values.var()),
    )


def _outcome_stat(
    model: Model, given: Likelihood | None, e: int, simulated: np.ndarray
) -> Statistic | None:
    if given is None:
        return None
    mass = given.outcome[e]
    if mass.sum() <= 0:
        return None
    observed = int(np.argmax(mass))
    p = np.bincount(simulated, minlength=len(model.outcome_ids)) / simulated.size
    order = np.argsort(-p, kind="stable")
    held = np.cumsum(p[order])
    band = order[: int(np.searchsorted(held, 1 - 2 * TAIL - 1e-12)) + 1]
    return Statistic(
        name="outcome",
        observed=model.outcome_ids[observed],
        percentile=None,
        band=tuple(model.outcome_ids[i] for i in band),
        inside=bool(observed in band),
        probability=float(p[observed]),
    )


def _move_stats(model: Model, obs: Observations, e: int, sim: Observations) -> list[Statistic]:
    """Each actor's count of each option among the episode's observed moves, against the model
    runs that ended where the episode ended (or, if fewer than MIN_ALIKE did, those that got at
    least as far): how an episode ends and what it does on the way are not independent, and the
    steps are checked on their own."""
    seen = (obs.option[:, :, e] != UNSEEN) & reached(obs)[:, :, e]
    nt = len(model.turn_order)
    end = (obs.last_step[e] - 1) * nt + obs.last_turn[e]
    sim_end = (sim.last_step - 1) * nt + sim.last_turn
    alike = np.flatnonzero(sim_end == end)
    if alike.size < MIN_ALIKE:
        alike = np.flatnonzero(sim_end >= end)
    if not alike.size:
        return []
    out = []
    for turn, actor in enumerate(model.turn_order):
        here = np.flatnonzero(seen[:, turn])
        if not here.size:
            continue
        mine = obs.option[here, turn, e]
        theirs = sim.option[here, turn][:, alike]
        for option in model.options[actor]:
            observed = float(np.count_nonzero(mine == option.index))
            counts = np.count_nonzero(theirs == option.index, axis=0)
            name = f"{model.actors[actor]}: {option.id}"
            stat = _count_stat(name, observed, counts)
            if stat is not None:
                out.append(stat)
    return out

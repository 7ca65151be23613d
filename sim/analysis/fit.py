"""Maximum-likelihood estimates of scenario parameters from an episode log (`escalation fit`).

The log-likelihood of a log (sim/solvers/likelihood.py) is a function of the free parameters,
each searched within its declared [min, max]: the model is rebuilt at every point by
`prepare_model` (strategic actors solved again), so every mechanism the parameter drives moves.

- The search: the scenario's own values as the start (or, where the log is impossible there,
  the best of 64 scrambled Sobol points of the box), then Nelder-Mead on the box scaled to the
  unit cube, which tolerates the -inf of impossible regions.
- Intervals: the profile likelihood, {theta : 2 (l(hat) - max_other l(theta, other)) <= 3.84}
  (chi-square, 1 degree of freedom, 95%), each end found by Brent's method, or the declared
  bound when the profile stays above the cut there. Standard errors: the observed information
  (central second differences), where the estimate is inside its range and the information is
  positive definite; otherwise None.
- A parametric bootstrap on request: logs of as many episodes simulated from the estimates, with
  the real log's blank cells blanked again, fitted again; the 2.5% and 97.5% quantiles of the
  estimates, and how many of the logs could be fitted.
- Where the exact pass cannot hold the scenario's states (or the scenario draws `uniform` or
  `normal`), a particle filter (`particles` per episode, common random numbers) estimates the
  likelihood; the Monte Carlo standard error of the printed log-likelihood (one filter run) is
  the spread of REPLICATES further seeds at the estimates.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from sim.analysis.doctrines import alternative_policies
from sim.errors import ScenarioError
from sim.format.digest import scenario_sha256
from sim.format.episode_log import EpisodeLog
from sim.format.scenario import Scenario
from sim.model.compiled import Model
from sim.solvers.exact import DEFAULT_MAX_STATES
from sim.solvers.likelihood import (
    Likelihood,
    Observations,
    impossible_problem,
    likelihood,
    observations,
)
from sim.solvers.prepare import prepare_model

Z_95 = 1.959963984540054
"""The 97.5% point of the standard normal distribution."""
CHI2_95 = Z_95**2
"""The 95% point of the chi-square distribution with one degree of freedom."""
EXACT_STATES = 250_000
"""The widest exact pass chosen by itself: wider ones take the particle filter (or insist on
the exact pass, up to the solver's own limit, with particles=0)."""
DEFAULT_PARTICLES = 5_000
"""States kept per episode by the particle filter, where the exact pass is too wide."""
MIN_PARTICLES = 200
FILTER_STATES = 400_000
"""States the default particle filter aims to keep over all episodes at once."""
REPLICATES = 5
"""Further particle-filter seeds at the estimates, for the Monte Carlo error of the loglik."""
IMPOSSIBLE = 1e300
"""What the search minimises where the log is impossible (minus a log-likelihood of -inf)."""
HESSIAN_STEP_PF = 0.01
"""Second-difference step (a fraction of each range) on a particle filter's likelihood: wide
enough that its resampling noise (a Monte Carlo error of about 1e-4 in the loglik) does not
swamp the curvature; the exact likelihood uses 1e-4."""
START_POINTS = 64
"""Sobol points searched for a start where the log is impossible at the scenario's values."""


@dataclass(frozen=True)
class Estimate:
    value: float
    ci95: tuple[float, float]
    se: float | None
    at_bound: tuple[bool, bool]
    """Whether each end of the interval is the declared bound (the profile stays above the cut)."""
    interval: str = "profile likelihood"
    """How ci95 was found: "profile likelihood" or "observed information"."""
    bootstrap95: tuple[float, float] | None = None


@dataclass
class FitResult:
    """What `escalation fit` prints: `to_dict` is the JSON of DESIGN.md section 8.2."""

    scenario: Scenario
    log: EpisodeLog | None
    episodes: int
    loglik: float
    free: list[str]
    estimates: dict[str, Estimate]
    method: str
    start: dict[str, float]
    start_loglik: float
    evaluations: int
    seconds: float
    fixed: dict[str, float] = field(default_factory=dict)
    mc_se: float | None = None
    bootstrap: int = 0
    bootstrap_fits: int = 0
    doctrines: dict[str, str] = field(default_factory=dict)
    """Bootstrap logs that could be fitted (a simulated log the estimates make impossible, as
    with a blank pattern it cannot follow, is left out)."""

    def to_dict(self) -> dict[str, Any]:
        from sim import __version__

        out: dict[str, Any] = {
            "scenario": self.scenario.id,
            "scenario_sha256": scenario_sha256(self.scenario),
            "version": __version__,
            "episodes": self.episodes,
            "loglik": _finite(self.loglik),
            "free": list(self.free),
            "estimates": {
                name: {
                    "value": est.value,
                    "ci95": list(est.ci95),
                    "se": est.se,
                    "ci95_at_bound": list(est.at_bound),
                    "ci95_method": est.interval,
                    **({"bootstrap95": list(est.bootstrap95)} if est.bootstrap95 else {}),
                }
                for name, est in self.estimates.items()
            },
            "method": self.method,
            "start": dict(self.start),
            "start_loglik": _finite(self.start_loglik),
            "evaluations": self.evaluations,
            "seconds": round(self.seconds, 3),
        }
        if self.fixed:
            out["set"] = dict(self.fixed)
        if self.mc_se is not None:
            out["loglik_mc_se"] = self.mc_se
        if self.bootstrap:
            out["bootstrap"] = self.bootstrap
            out["bootstrap_fits"] = self.bootstrap_fits
        if self.doctrines:
            out["doctrines"] = dict(self.doctrines)
        return out


def _finite(x: float) -> float | None:
    return x if math.isfinite(x) else None


class Objective:
    """The log-likelihood as a function of the free parameters (cached, counted)."""

    def __init__(
        self,
        scenario: Scenario,
        obs: Observations,
        free: Sequence[str],
        fixed: Mapping[str, float],
        particles: int | None,
        seed: int = 1,
        policies: Mapping[str, Any] | None = None,
    ):
        self.scenario, self.obs, self.free = scenario, obs, list(free)
        self.policies = dict(policies or {})
        self.fixed = dict(fixed)
        self.particles, self.seed = particles, seed
        self.lo = np.array([_bound(scenario, n, "min") for n in free])
        self.hi = np.array([_bound(scenario, n, "max") for n in free])
        self.cache: dict[tuple[float, ...], float] = {}
        self.evaluations = 0

    def model(self, theta: Sequence[float]) -> Model:
        values = {**self.fixed, **{n: float(v) for n, v in zip(self.free, theta, strict=True)}}
        return prepare_model(self.scenario, values, self.policies)

    def full(self, theta: Sequence[float], seed: int | None = None) -> Likelihood:
        return likelihood(
            self.model(theta),
            self.obs,
            particles=self.particles,
            seed=self.seed if seed is None else seed,
        )

    def __call__(self, theta: Sequence[float]) -> float:
        theta = tuple(float(np.clip(v, lo, hi)) for v, lo, hi in zip(theta, self.lo, self.hi))
        if theta not in self.cache:
            self.evaluations += 1
            self.cache[theta] = self.full(theta).loglik
        return self.cache[theta]

    def scaled(self, u: np.ndarray) -> float:
        """Minus the log-likelihood at a point of the unit cube (IMPOSSIBLE where the log has
        probability 0: finite, so the simplex's convergence test stays defined)."""
        value = self(self.lo + np.clip(u, 0, 1) * (self.hi - self.lo))
        return -value if math.isfinite(value) else IMPOSSIBLE


def _bound(scenario: Scenario, name: str, which: str) -> float:
    value = getattr(scenario.parameters[name], which)
    assert value is not None  # checked by check_free
    return float(value)


def check_free(scenario: Scenario, free: Sequence[str], fixed: Mapping[str, float]) -> None:
    """ValueError unless every free parameter exists, once, with a declared [min, max], and is
    not also fixed by an override."""
    from sim.errors import did_you_mean

    if not free:
        raise ValueError("name at least one free parameter (--free NAME)")
    seen: set[str] = set()
    for name in free:
        if name not in scenario.parameters:
            hint = did_you_mean(name, list(scenario.parameters))
            raise ValueError(f"--free {name}: no such parameter{hint}")
        if name in seen:
            raise ValueError(f"--free {name}: named twice")
        seen.add(name)
        if name in fixed:
            raise ValueError(f"--free {name}: also fixed by --set; a parameter is one or the other")
        p = scenario.parameters[name]
        if p.min is None or p.max is None or not p.max > p.min:
            raise ValueError(
                f"--free {name}: the parameter needs a declared range (min and max, min < max) to "
                "be estimated within"
            )


def fit(
    scenario: Scenario,
    log: EpisodeLog,
    free: Sequence[str],
    fixed: Mapping[str, float] | None = None,
    particles: int | None = None,
    seed: int = 1,
    bootstrap: int = 0,
    profiled: bool = False,
    progress: Callable[[str], None] | None = None,
    doctrines: Mapping[str, str] | None = None,
) -> FitResult:
    """Maximum-likelihood estimates of `free` from `log` (see the module docstring).

    `particles`: None chooses the exact pass where it fits, else the particle filter with
    DEFAULT_PARTICLES; 0 insists on the exact pass; N uses the particle filter with N.
    `profiled`: profile-likelihood intervals even where the observed information is regular.
    `doctrines`: {actor: alternative} played in place of those actors' policies."""
    start_time = time.perf_counter()
    fixed = dict(fixed or {})
    check_free(scenario, free, fixed)
    doctrines = dict(doctrines or {})
    policies = alternative_policies(scenario, doctrines)
    start_model = prepare_model(scenario, fixed, policies)
    obs = observations(start_model, log)
    chosen, why = choose_method(start_model, obs, particles)
    method = describe_method(chosen, why)
    objective = Objective(scenario, obs, free, fixed, chosen, seed, policies)
    solution = maximise(objective, log, progress)
    mc_se = None
    if chosen is not None:
        lls = [objective.full(solution.theta, seed + 1 + r).loglik for r in range(REPLICATES)]
        if all(math.isfinite(v) for v in lls):  # the spread of one estimate (the printed one)
            mc_se = float(np.std(lls, ddof=1))
        else:
            method += (
                "; its Monte Carlo error is not stated: a replicate seed estimated probability 0 "
                "(use more --particles)"
            )
    if progress:
        progress("intervals")
    estimates = intervals(objective, solution, profiled)
    refits = 0
    if bootstrap:
        estimates, refits = _bootstrap(objective, solution, estimates, bootstrap, seed, progress)
    return FitResult(
        scenario=scenario,
        log=log,
        episodes=obs.episodes,
        loglik=solution.loglik,
        free=list(free),
        estimates=estimates,
        method=method,
        start={n: float(v) for n, v in zip(free, solution.start, strict=True)},
        start_loglik=solution.start_loglik,
        evaluations=objective.evaluations,
        seconds=time.perf_counter() - start_time,
        fixed=fixed,
        mc_se=mc_se,
        bootstrap=bootstrap,
        bootstrap_fits=refits,
        doctrines=doctrines,
    )


def choose_method(model: Model, obs: Observations, particles: int | None):
    """(particles or None for exact, the reason the filter was chosen)."""
    if particles:
        return particles, "asked for"
    try:
        likelihood(model, obs, max_states=EXACT_STATES if particles is None else DEFAULT_MAX_STATES)
    except ScenarioError as exc:
        if particles == 0:
            raise
        reason = exc.problems[0].message.split(" (use")[0].split(";")[0]
        return default_particles(obs.episodes), reason
    return None, ""


def default_particles(episodes: int) -> int:
    """States kept per episode by default: DEFAULT_PARTICLES for a few episodes, fewer (down to
    MIN_PARTICLES) for many, so that the whole pass stays near FILTER_STATES states."""
    return int(max(MIN_PARTICLES, min(DEFAULT_PARTICLES, FILTER_STATES // max(episodes, 1))))


def describe_method(particles: int | None, why: str) -> str:
    if particles is None:
        return (
            "maximum likelihood, exact forward pass over the reachable states (poisson draws "
            "enumerated to a tail of 1e-15); Nelder-Mead, then L-BFGS-B, within the declared "
            "ranges"
        )
    return (
        f"maximum simulated likelihood, particle filter with {particles:,} states per episode "
        f"and common random numbers ({why}); Nelder-Mead within the declared ranges"
    )


@dataclass(frozen=True)
class Solution:
    theta: np.ndarray
    loglik: float
    start: np.ndarray
    start_loglik: float


def maximise(
    objective: Objective, log: EpisodeLog | None, progress: Callable[[str], None] | None = None
) -> Solution:
    """The maximum of the log-likelihood over the box (ScenarioError, at the log's impossible
    move, when no point of the search gives the log any probability)."""
    scenario, lo, hi = objective.scenario, objective.lo, objective.hi
    values = {**{n: p.value for n, p in scenario.parameters.items()}, **objective.fixed}
    start = np.clip([values[n] for n in objective.free], lo, hi)
    u0 = (start - lo) / (hi - lo)
    if progress:
        progress("start")
    first = objective.full(start)
    start_ll = first.loglik
    if not math.isfinite(start_ll):
        u0 = _feasible_start(objective)
        if u0 is None:
            if log is not None:
                raise impossible_problem(
                    log, first, f"the scenario's values and {START_POINTS} other points"
                )
            raise ValueError("the log is impossible everywhere in the parameters' ranges")
    if progress:
        progress("search")
    theta = _search(objective, u0)
    return Solution(theta, objective(theta), start, start_ll)


def _search(objective: Objective, u0: np.ndarray) -> np.ndarray:
    """Nelder-Mead over the unit cube from u0 (a simplex of tenths of the ranges), polished by
    L-BFGS-B where the likelihood is exact (a particle filter's estimate is smooth only at
    scales above its resampling noise, so there the simplex stops at 1e-3 of the ranges)."""
    from scipy.optimize import minimize

    k = len(objective.free)
    exact = objective.particles is None
    xatol, fatol = (1e-4, 1e-6) if exact else (1e-3, 1e-4)
    simplex = np.vstack(
        [u0] + [u0 + np.where(np.arange(k) == i, _step(u0[i]), 0) for i in range(k)]
    )
    best = minimize(
        objective.scaled,
        u0,
        method="Nelder-Mead",
        bounds=[(0.0, 1.0)] * k,
        options={"initial_simplex": simplex, "xatol": xatol, "fatol": fatol, "maxfev": 200 * k},
    )
    u = np.clip(best.x, 0, 1)
    if exact and best.fun < IMPOSSIBLE:  # polish: quasi-Newton from the simplex's best point
        polished = minimize(
            objective.scaled,
            u,
            method="L-BFGS-B",
            bounds=[(0.0, 1.0)] * k,
            options={"eps": 1e-7, "ftol": 1e-13, "gtol": 1e-9, "maxfun": 60 * k},
        )
        if polished.fun <= best.fun:
            u = np.clip(polished.x, 0, 1)
    return objective.lo + u * (objective.hi - objective.lo)


def _step(u: float) -> float:
    """A simplex edge of a tenth of the range, pointing inside the unit interval."""
    return 0.1 if u <= 0.9 else -0.1


def _feasible_start(objective: Objective) -> np.ndarray | None:
    from scipy.stats import qmc

    points = qmc.Sobol(len(objective.free), scramble=True, seed=1).random(START_POINTS)
    scores = [objective.scaled(u) for u in points]
    best = int(np.argmin(scores))
    return points[best] if scores[best] < IMPOSSIBLE else None


def intervals(
    objective: Objective, solution: Solution, profiled: bool = False
) -> dict[str, Estimate]:
    """95% intervals and observed-information standard errors. With one free parameter, or
    `profiled`, or where the information is not regular (an estimate at or near its bound:
    estimate +- 1.96 se would cross it), from the profile likelihood, and no standard error is
    claimed where it is not regular; otherwise estimate +- 1.96 se (the profile's quadratic
    approximation, which needs no inner maximisations)."""
    se = _standard_errors(objective, solution)
    wald = se is not None and len(objective.free) > 1 and not profiled
    out = {}
    for i, name in enumerate(objective.free):
        here = float(solution.theta[i])
        half = Z_95 * float(se[i]) if se is not None else math.inf
        regular = objective.lo[i] < here - half and here + half < objective.hi[i]
        if wald and regular:
            (lo, hi), at_lo, at_hi = (here - half, here + half), False, False
        else:
            lo, at_lo = _profile_end(objective, solution, i, -1)
            hi, at_hi = _profile_end(objective, solution, i, +1)
        out[name] = Estimate(
            value=here,
            ci95=(lo, hi),
            se=float(se[i]) if se is not None and regular else None,
            at_bound=(at_lo, at_hi),
            interval="observed information" if wald and regular else "profile likelihood",
        )
    return out


def profile(objective: Objective, solution: Solution, i: int, value: float) -> float:
    """The profile log-likelihood of parameter i at `value` (the others maximised)."""
    from scipy.optimize import minimize

    k = len(objective.free)
    if k == 1:
        return objective([value])
    others = [j for j in range(k) if j != i]
    lo, hi = objective.lo, objective.hi

    def minus(u: np.ndarray) -> float:
        theta = np.array(solution.theta, dtype=float)
        theta[i] = value
        theta[others] = lo[others] + np.clip(u, 0, 1) * (hi[others] - lo[others])
        ll = objective(theta)
        return -ll if math.isfinite(ll) else IMPOSSIBLE

    u0 = (solution.theta[others] - lo[others]) / (hi[others] - lo[others])
    simplex = np.vstack(
        [u0] + [u0 + np.where(np.arange(k - 1) == j, _step(u0[j]) / 2, 0) for j in range(k - 1)]
    )
    best = minimize(
        minus,
        u0,
        method="Nelder-Mead",
        bounds=[(0.0, 1.0)] * (k - 1),
        options={
            "initial_simplex": simplex,
            "xatol": 1e-6 if objective.particles is None else 1e-3,
            "fatol": 1e-8 if objective.particles is None else 1e-4,
            "maxfev": 200 * k if objective.particles is None else 40 * k,
        },
    )
    return -float(best.fun)


def _profile_end(objective: Objective, solution: Solution, i: int, side: int) -> tuple[float, bool]:
    """Where the profile falls to the 95% cut on one side of the estimate, or the bound."""
    from scipy.optimize import brentq

    cut = solution.loglik - CHI2_95 / 2
    here = float(solution.theta[i])
    bound = float(objective.hi[i] if side > 0 else objective.lo[i])
    if here == bound:
        return bound, True

    def gap(value: float) -> float:
        ll = profile(objective, solution, i, value)
        return (ll if math.isfinite(ll) else -1e300) - cut

    if gap(bound) >= 0:
        return bound, True
    width = abs(bound - here)
    tol = 1e-6 if objective.particles is None else 1e-3  # the filter's noise: no finer
    return float(brentq(gap, here, bound, xtol=tol * width, rtol=1e-10)), False


def _standard_errors(objective: Objective, solution: Solution) -> np.ndarray | None:
    """Square roots of the diagonal of the inverse observed information, or None where it is
    not regular (an estimate at or near its bound, or the information not positive definite)."""
    theta, k = solution.theta, len(objective.free)
    width = objective.hi - objective.lo
    if objective.particles is None:
        h = 1e-4 * width
    else:  # as wide as the bounds allow, down to a tenth of the preferred step
        room = np.minimum(theta - objective.lo, objective.hi - theta) / 2
        h = np.minimum(HESSIAN_STEP_PF * width, room)
        if np.any(h < HESSIAN_STEP_PF * width / 10):
            return None
    if np.any(theta - 2 * h < objective.lo) or np.any(theta + 2 * h > objective.hi):
        return None
    f0 = solution.loglik
    hess = np.empty((k, k))
    for a in range(k):
        for b in range(a, k):
            ea, eb = np.eye(k)[a] * h[a], np.eye(k)[b] * h[b]
            if a == b:
                value = (objective(theta + ea) - 2 * f0 + objective(theta - ea)) / h[a] ** 2
            else:
                value = (
                    objective(theta + ea + eb)
                    - objective(theta + ea - eb)
                    - objective(theta - ea + eb)
                    + objective(theta - ea - eb)
                ) / (4 * h[a] * h[b])
            hess[a, b] = hess[b, a] = value
    info = -hess
    if not np.all(np.isfinite(info)):
        return None
    try:
        np.linalg.cholesky(info)
    except np.linalg.LinAlgError:
        return None
    return np.sqrt(np.diag(np.linalg.inv(info)))


def _bootstrap(
    objective: Objective,
    solution: Solution,
    estimates: dict[str, Estimate],
    repetitions: int,
    seed: int,
    progress: Callable[[str], None] | None,
) -> dict[str, Estimate]:
    """Parametric bootstrap: fully observed logs simulated from the estimates, fitted again."""
    from sim.analysis.episodes import simulate_observations
    from sim.solvers.likelihood import UNSEEN

    model = objective.model(solution.theta)
    blank = objective.obs.option == UNSEEN  # the real log's blanks, blanked again
    fits = []
    for r in range(repetitions):
        if progress:
            progress(f"bootstrap {r + 1}/{repetitions}")
        sim = simulate_observations(model, objective.obs.episodes, seed + 1000 + r).observations
        sim = Observations(
            option=np.where(blank, UNSEEN, sim.option),
            branch=np.where(blank, -1, sim.branch),
            last_step=sim.last_step,
            last_turn=sim.last_turn,
            lines={},
        )
        again = Objective(
            objective.scenario,
            sim,
            objective.free,
            objective.fixed,
            objective.particles,
            objective.seed,
        )
        start = Solution(solution.theta, again(solution.theta), solution.theta, math.nan)
        if not math.isfinite(start.loglik):
            continue
        fits.append(_polish(again, start).theta)
    out = {}
    draws = np.array(fits)
    for i, (name, est) in enumerate(estimates.items()):
        band = None
        if len(fits) >= 2:
            band = (float(np.quantile(draws[:, i], 0.025)), float(np.quantile(draws[:, i], 0.975)))
        out[name] = Estimate(est.value, est.ci95, est.se, est.at_bound, est.interval, band)
    return out, len(fits)


def _polish(objective: Objective, start: Solution) -> Solution:
    """Nelder-Mead from a known feasible point (the bootstrap's refits)."""
    u0 = (start.theta - objective.lo) / (objective.hi - objective.lo)
    theta = _search(objective, u0)
    return Solution(theta, objective(theta), start.theta, start.loglik)

"""`fit`: estimates recover known parameters; the 95% intervals cover them about 95% of the time.

Logs are simulated by the Monte Carlo engine from known parameter values (sim/analysis/episodes.py),
written as CSV, read back through the episode-log reader and fitted. The slow campaign (100
repetitions of 1,000 episodes) runs with ESCALATION_SLOW=1; `make test` runs a smaller one.
"""

from __future__ import annotations

import math
import os

import numpy as np
import pytest
from scipy.stats import binom

from sim.analysis.episodes import blanked, simulate_observations, to_log_text
from sim.analysis.fit import CHI2_95, fit
from sim.format.episode_log import parse_episode_log
from sim.model.loading import load_text
from sim.solvers.likelihood import likelihood
from sim.solvers.prepare import prepare_model
from tests.conftest import scenario_text

SLOW = bool(os.environ.get("ESCALATION_SLOW"))

DUEL = scenario_text(
    """
    horizon: 6
    ladder: [calm, raids, war]
    initial_rung: raids
    parameters:
      gain: {value: 0.5, min: -3, max: 3, doc: the militia's value of a raid}
      deterrence: {value: 1.0, min: 0, max: 3, doc: what each answered raid takes off it}
      retaliation: {value: 0.6, min: 0, max: 1, doc: chance the US answers a raid}
      hit_chance: {value: 0.3, min: 0, max: 1, doc: chance a US strike hits}
    state:
      answered: {initial: 0, min: 0, max: 3, integer: true}
    actors:
      militia: {label: Militia}
      us: {label: United States}
    turn_order: [militia, us]
    options:
      militia:
        - {id: raid, label: Raid, rung: raids}
        - {id: hold, label: Hold, rung: calm}
      us:
        - id: strike
          label: Strike
          effects: {add: {answered: 1}}
          outcomes:
            - {id: hit, label: Hit, p: hit_chance, rung: war}
            - {id: miss, label: Miss}
        - {id: absorb, label: Absorb}
    policies:
      militia:
        kind: logit
        rationality: 1
        utilities: {raid: "gain - deterrence * answered", hold: 0}
      us:
        kind: table
        respond_to: militia
        table:
          raid: {strike: retaliation, absorb: "1 - retaliation"}
          default: {absorb: 1}
    outcomes:
      war: {when: "rung == 2", label: War}
      ongoing: {when: "false", label: Ongoing}
    end: ongoing
    """
)


def _scenario():
    return load_text(DUEL, "duel.yaml")


def _log(scenario, truth: dict, episodes: int, seed: int, hide: float = 0.0):
    model = prepare_model(scenario, truth)
    obs = simulate_observations(model, episodes, seed).observations
    if hide:
        obs = blanked(obs, hide, seed)
    return parse_episode_log(to_log_text(model, obs), scenario, "simulated.csv")


def test_fit_recovers_two_parameters_within_their_intervals():
    """1,000 simulated episodes: both estimates within a few standard errors of the truth, the
    intervals hold the truth and are narrow."""
    scenario = _scenario()
    truth = {"retaliation": 0.35, "hit_chance": 0.2}
    result = fit(scenario, _log(scenario, truth, 1000, seed=3), ["retaliation", "hit_chance"])
    for name, value in truth.items():
        est = result.estimates[name]
        lo, hi = est.ci95
        assert lo < value < hi, (name, est)
        assert hi - lo < 0.15
        assert abs(est.value - value) < 4 * est.se
        assert est.interval == "observed information"
    assert result.method.startswith("maximum likelihood, exact")


def test_fit_loglik_is_the_likelihood_at_the_estimates_and_a_maximum():
    """`loglik` is the log-likelihood recomputed at the estimates, and moving any estimate by
    a little lowers it; the profile interval's ends lie 1.92 below it."""
    scenario = _scenario()
    log = _log(scenario, {"retaliation": 0.5}, 300, seed=4)
    result = fit(scenario, log, ["retaliation"])
    est = result.estimates["retaliation"]
    model = prepare_model(scenario, {"retaliation": est.value})
    from sim.solvers.likelihood import observations

    obs = observations(model, log)
    assert math.isclose(likelihood(model, obs).loglik, result.loglik, rel_tol=0, abs_tol=1e-9)
    for delta in (-0.01, 0.01):
        moved = prepare_model(scenario, {"retaliation": est.value + delta})
        assert likelihood(moved, obs).loglik < result.loglik
    for end in est.ci95:
        at_end = likelihood(prepare_model(scenario, {"retaliation": end}), obs).loglik
        assert math.isclose(result.loglik - at_end, CHI2_95 / 2, abs_tol=1e-4)


def test_fit_with_blank_cells_still_recovers():
    """A third of the moves unobserved (integrated out): the interval still holds the truth and
    is wider than with the full log."""
    scenario = _scenario()
    truth = {"retaliation": 0.4}
    full = fit(scenario, _log(scenario, truth, 600, seed=5), ["retaliation"])
    part = fit(scenario, _log(scenario, truth, 600, seed=5, hide=0.33), ["retaliation"])
    lo, hi = part.estimates["retaliation"].ci95
    assert lo < 0.4 < hi
    f_lo, f_hi = full.estimates["retaliation"].ci95
    assert hi - lo > f_hi - f_lo


def test_estimate_at_a_bound_gets_a_one_sided_profile_interval():
    """A US that never answers: the estimate sits at 0, the interval's lower end is the bound,
    and no standard error is claimed."""
    scenario = _scenario()
    result = fit(scenario, _log(scenario, {"retaliation": 0.0}, 200, seed=6), ["retaliation"])
    est = result.estimates["retaliation"]
    assert est.value < 1e-3
    assert est.ci95[0] == 0.0 and est.at_bound[0]
    assert 0 < est.ci95[1] < 0.05
    assert est.se is None


def test_bootstrap_band_is_near_the_likelihood_interval():
    """The parametric bootstrap's 95% band overlaps the profile interval and holds the
    estimate."""
    scenario = _scenario()
    log = _log(scenario, {"retaliation": 0.5}, 300, seed=8)
    result = fit(scenario, log, ["retaliation"], bootstrap=12, seed=2)
    est = result.estimates["retaliation"]
    b_lo, b_hi = est.bootstrap95
    assert b_lo <= est.value <= b_hi
    assert b_lo < est.ci95[1] and est.ci95[0] < b_hi
    assert result.to_dict()["bootstrap"] == 12


def test_same_inputs_same_fit():
    """Fitting twice gives identical estimates (no hidden randomness in the exact fit)."""
    scenario = _scenario()
    log = _log(scenario, {"retaliation": 0.5}, 200, seed=9)
    a, b = (fit(scenario, log, ["retaliation"]).to_dict() for _ in range(2))
    a.pop("seconds"), b.pop("seconds")
    assert a == b


def _coverage(repetitions: int, episodes: int) -> int:
    scenario = _scenario()
    truth = 0.45
    covered = 0
    for r in range(repetitions):
        log = _log(scenario, {"retaliation": truth}, episodes, seed=100 + r)
        lo, hi = fit(scenario, log, ["retaliation"]).estimates["retaliation"].ci95
        covered += lo <= truth <= hi
    return covered


def test_interval_coverage_fast():
    """24 repetitions of 150 episodes: the 95% profile interval holds the truth in at least 20
    (binomial(24, 0.95) falls below 20 with probability 0.8%)."""
    covered = _coverage(24, 150)
    assert binom.cdf(19, 24, 0.95) < 0.01
    assert covered >= 20, covered


@pytest.mark.skipif(not SLOW, reason="slow (about 4 minutes): set ESCALATION_SLOW=1")
def test_interval_coverage_slow():
    """100 repetitions of 1,000 episodes: coverage between 88 and 100 (the binomial(100, 0.95)
    probability of fewer than 88 is 0.1%)."""
    covered = _coverage(100, 1000)
    assert binom.cdf(87, 100, 0.95) < 0.002
    assert covered >= 88, covered


@pytest.mark.skipif(not SLOW, reason="slow (about 4 minutes): set ESCALATION_SLOW=1")
def test_two_parameter_interval_coverage_slow():
    """Two free parameters, observed-information intervals: each covers its truth in at least
    88 of 100 repetitions of 500 episodes (and both are Wald intervals throughout)."""
    scenario = _scenario()
    truth = {"retaliation": 0.35, "hit_chance": 0.2}
    covered = dict.fromkeys(truth, 0)
    for r in range(100):
        result = fit(scenario, _log(scenario, truth, 500, seed=300 + r), list(truth))
        for name, value in truth.items():
            est = result.estimates[name]
            assert est.interval == "observed information"
            covered[name] += est.ci95[0] <= value <= est.ci95[1]
    assert min(covered.values()) >= 88, covered


def test_particle_filter_fit_agrees_with_the_exact_fit():
    """Forced onto the particle filter with so few particles that it must resample (half the
    moves blank, 8 states kept per episode), the estimate is the exact one within a quarter of
    its interval, and the Monte Carlo error of the loglik is stated and positive."""
    from sim.solvers.likelihood import observations

    scenario = _scenario()
    log = _log(scenario, {"retaliation": 0.5}, 60, seed=10, hide=0.5)
    model = prepare_model(scenario, {"retaliation": 0.5})
    assert likelihood(model, observations(model, log), particles=8).estimated  # it resamples
    exact = fit(scenario, log, ["retaliation"])
    pf = fit(scenario, log, ["retaliation"], particles=8)
    lo, hi = exact.estimates["retaliation"].ci95
    gap = abs(pf.estimates["retaliation"].value - exact.estimates["retaliation"].value)
    assert gap < (hi - lo) / 4
    assert pf.mc_se is not None and 0 < pf.mc_se < 1
    assert "particle filter with 8 states" in pf.method
    assert np.isfinite(pf.loglik)


def test_continuous_draws_are_sampled_by_the_particle_filter():
    """A `uniform` draw (it scales the chance that a strike hits) that the exact pass refuses:
    `fit` takes the particle filter by itself and recovers the parameter."""
    text = (
        DUEL.replace(
            "  answered: {initial: 0, min: 0, max: 3, integer: true}",
            "  answered: {initial: 0, min: 0, max: 3, integer: true}\n"
            "  noise: {initial: 0, min: 0, max: 1}",
        )
        .replace(
            "      effects: {add: {answered: 1}}",
            '      effects: {add: {answered: 1}, set: {noise: "uniform(0, 1)"}}',
        )
        .replace(
            "{id: hit, label: Hit, p: hit_chance,",
            '{id: hit, label: Hit, p: "hit_chance * (0.5 + noise)",',
        )
    )
    assert "uniform(0, 1)" in text and "0.5 + noise" in text
    scenario = load_text(text, "noisy.yaml")
    result = fit(scenario, _log(scenario, {"retaliation": 0.4}, 300, seed=12), ["retaliation"])
    est = result.estimates["retaliation"]
    assert "particle filter" in result.method and "uniform" in result.method
    assert est.ci95[0] < 0.4 < est.ci95[1]


@pytest.mark.parametrize(
    ("free", "message"),
    [
        (["retaliaton"], "did you mean 'retaliation'"),
        (["retaliation", "retaliation"], "named twice"),
        ([], "at least one free parameter"),
    ],
)
def test_bad_free_parameters_are_refused(free, message):
    """Unknown, repeated or missing free parameters: a ValueError that says which."""
    scenario = _scenario()
    log = _log(scenario, {}, 5, seed=1)
    with pytest.raises(ValueError, match=message):
        fit(scenario, log, free)


def test_a_parameter_without_a_range_cannot_be_freed():
    """A parameter without min and max is refused, naming the range it needs."""
    scenario = load_text(DUEL.replace("value: 0.6, min: 0, max: 1,", "value: 0.6,"), "duel.yaml")
    log = _log(scenario, {}, 5, seed=1)
    with pytest.raises(ValueError, match="needs a declared range"):
        fit(scenario, log, ["retaliation"])


def test_a_log_impossible_everywhere_is_located():
    """A US strike after the militia held: impossible at every parameter value (the table
    answers only raids); the error names the log's line."""
    from sim.errors import ScenarioError

    scenario = _scenario()
    text = "episode,step,actor,option,branch\n1,1,militia,hold,\n1,1,us,strike,miss\n"
    log = parse_episode_log(text, scenario, "bad.csv")
    with pytest.raises(ScenarioError) as info:
        fit(scenario, log, ["retaliation"])
    assert str(info.value.problems[0]).startswith("bad.csv:3:1: episode 1")

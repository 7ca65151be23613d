"""`check`: logs from the true model sit inside the model's 90% bands; others' do not."""

from __future__ import annotations

import math

import numpy as np

from sim.analysis.check import check
from sim.analysis.episodes import blanked, simulate_observations, to_log_text
from sim.format.episode_log import parse_episode_log
from sim.solvers.prepare import prepare_model
from tests.analysis.test_fit import _scenario


def _log(scenario, values: dict, episodes: int, seed: int, hide: float = 0.0):
    model = prepare_model(scenario, values)
    obs = simulate_observations(model, episodes, seed).observations
    if hide:
        obs = blanked(obs, hide, seed)
    return parse_episode_log(to_log_text(model, obs), scenario, "simulated.csv")


def test_logs_from_the_true_model_are_inside_their_bands():
    """150 episodes of the scenario itself (another seed than the check's runs): at least 90% of
    the statistics inside their central 90% bands (discrete statistics: at least 90% by
    construction), and most episodes judged consistent."""
    scenario = _scenario()
    result = check(scenario, _log(scenario, {}, 150, seed=21), runs=4000, seed=1)
    assert 0.9 <= result.inside_fraction <= 1.0
    flagged = sum(1 for e in result.episodes if e.outside)
    assert flagged <= 0.15 * len(result.episodes)
    assert all(e.impossible_line is None for e in result.episodes)
    assert sum(not s.inside for s in result.pooled) <= 1


def test_logs_from_another_model_are_flagged():
    """Control: the same check on logs of a militia that raids far more and a US that always
    answers flags several times as many episodes (one episode is weak evidence, so the flags
    are a minority), fewer statistics are inside, and the pooled totals are far outside."""
    scenario = _scenario()
    other = {"gain": 3.0, "retaliation": 1.0}
    truth = check(scenario, _log(scenario, {}, 150, seed=22), runs=4000, seed=1)
    wrong = check(scenario, _log(scenario, other, 150, seed=22), runs=4000, seed=1)
    assert wrong.inside_fraction < truth.inside_fraction - 0.05
    flagged = [sum(1 for e in r.episodes if e.outside) for r in (truth, wrong)]
    assert flagged[1] >= 0.3 * len(wrong.episodes)
    assert flagged[1] > 3 * flagged[0]
    assert sum(not s.inside for s in wrong.pooled) >= 3
    assert "outside" in wrong.pooled_verdict


def test_blanks_are_counted_over_the_same_moves():
    """With a third of the moves blanked, the move counts are taken over the observed moves in
    both the log and the model runs: logs of the true model stay inside their bands."""
    scenario = _scenario()
    result = check(scenario, _log(scenario, {}, 100, seed=23, hide=0.33), runs=4000, seed=2)
    assert result.inside_fraction >= 0.9


def test_percentile_and_band_of_a_count():
    """The mid-rank percentile and the 5% tails, on one episode worked by hand: the steps of a
    full-length episode against the model's distribution of steps."""
    scenario = _scenario()
    result = check(scenario, _log(scenario, {}, 1, seed=24), runs=3000, seed=3)
    steps = result.episodes[0].statistics[0]
    assert steps.name == "steps"
    model_steps = result.model_runs.observations.last_step.astype(float)
    x = steps.observed
    below, equal = np.mean(model_steps < x), np.mean(model_steps == x)
    assert steps.percentile == 100 * (below + equal / 2)
    assert steps.inside == (steps.band[0] <= x <= steps.band[1])


def test_count_statistic_worked_by_hand():
    """90 zeros, 5 ones, 5 twos: an observed 2 has mid-rank percentile 97.5 and lies above the
    band [0, 1] (the upper 5% quantile is 1); an observed 1 is inside, at percentile 92.5."""
    from sim.analysis.check import _count_stat

    values = np.array([0] * 90 + [1] * 5 + [2] * 5)
    two, one = _count_stat("x", 2.0, values), _count_stat("x", 1.0, values)
    assert (two.percentile, two.band, two.inside) == (97.5, (0.0, 1.0), False)
    assert (one.percentile, one.inside, one.probability) == (92.5, True, 0.05)
    assert math.isclose(two.mean, 0.15) and math.isclose(two.variance, 0.25 - 0.15**2)


def test_an_impossible_episode_says_so():
    """An episode the model cannot produce (a strike after the militia held) is marked
    impossible, with the log line, in its verdict."""
    scenario = _scenario()
    text = "episode,step,actor,option,branch\n1,1,militia,hold,\n1,1,us,strike,miss\n"
    result = check(scenario, parse_episode_log(text, scenario, "bad.csv"), runs=500)
    episode = result.episodes[0]
    assert episode.impossible_line == 3
    assert episode.verdict.startswith("impossible under the model")


def test_same_seed_same_check():
    """Identical results for the same log, runs and seed."""
    scenario = _scenario()
    log = _log(scenario, {}, 20, seed=25)
    assert (
        check(scenario, log, runs=1000, seed=4).to_dict()
        == check(scenario, log, runs=1000, seed=4).to_dict()
    )


def test_every_bundled_log_is_checked():
    """`check` answers on each bundled log (the exact conditioned pass where it is small, the
    particle filter where it is not), with a verdict; a log with probability 0 under the
    scenario's default doctrine says where."""
    import sim
    from tests.conftest import ROOT

    for path in sorted((ROOT / "data" / "logs").glob("*.csv")):
        result = sim.check(path.stem, path, runs=1000)
        (episode,) = result.episodes
        assert episode.statistics[0].name == "steps", path.stem
        assert episode.verdict
        if episode.impossible_line is not None:
            assert path.read_text().splitlines()[episode.impossible_line - 1].startswith("1,")

"""Streaming results: the memory of a Monte Carlo experiment does not grow with its runs.

The final state of every run is folded into fixed-size summaries (sim/results.py `Aggregate`,
`StateStream`) as each block is done; the figures equal those of the sorted arrays of every run's
final state, bit for bit, for any batch size and worker count.
"""

from __future__ import annotations

import json
from fractions import Fraction

import numpy as np
import pytest

import sim.results as results_module
from sim.engine.runner import run_monte_carlo, simulate_blocks
from sim.engine.streams import BLOCK_SIZE, block_count
from sim.model.loading import load_scenario
from sim.results import (
    KEEP_FINAL_RUNS,
    Aggregate,
    ExactSum,
    PairwiseSum,
    ValueCounts,
    _finite_mean,
)
from sim.solvers.prepare import prepare_model
from tests.conftest import CAMP_TAJI, SCENARIOS

LEVELS = [0.05, 0.5, 0.95]


@pytest.fixture(scope="module")
def model():
    return prepare_model(load_scenario(CAMP_TAJI))


def aggregate(model, runs: int, seed: int = 3, batch_blocks: int = 4) -> Aggregate:
    total = Aggregate(model, runs, keep=0)
    blocks = range(block_count(runs))
    simulate_blocks(model, runs, seed, blocks, batch_blocks, sink=total.add)
    return total


def test_summaries_take_the_same_memory_after_n_and_4n_runs():
    chicken = prepare_model(load_scenario(SCENARIOS / "chicken.yaml"))
    small, large = aggregate(chicken, 4 * BLOCK_SIZE), aggregate(chicken, 16 * BLOCK_SIZE)
    assert small.kept is None and large.kept is None  # keep=0: no final state held
    assert large.nbytes() == small.nbytes()
    assert large.results(3).final_state is None


def test_summaries_stop_growing_once_the_distinct_values_pass_the_cap(model):
    """camp_taji's learnt credibility takes a new value in almost every run. Each continuous
    variable is kept exactly up to MAX_DISTINCT distinct values, then as a fixed-size sketch, so
    the summaries are bounded whatever the runs: never above 16 bytes per allowed distinct value
    of each variable, and no larger for twice the runs once the cap is passed."""
    bound = 16 * results_module.MAX_DISTINCT * len(model.state_names)
    below = aggregate(model, 16 * BLOCK_SIZE)
    past = aggregate(model, 20 * BLOCK_SIZE)
    twice = aggregate(model, 40 * BLOCK_SIZE)
    assert 20 * BLOCK_SIZE > results_module.MAX_DISTINCT
    assert max(below.nbytes(), past.nbytes(), twice.nbytes()) < bound
    assert twice.nbytes() <= past.nbytes()


def test_state_figures_equal_those_of_the_sorted_final_states(model):
    runs = 5 * BLOCK_SIZE + 123
    results = run_monte_carlo(model, runs, 11, batch_blocks=2)
    assert results.final_state is not None and results.final_state.shape[1] == runs
    got = results.state_summary()
    for i, name in enumerate(model.state_names):
        values = results.final_state[i]
        q = np.quantile(values, LEVELS, method="inverted_cdf")
        cast = int if model.state_integer[i] else float
        want = {"mean": _finite_mean(values), "p05": cast(q[0]), "p50": cast(q[1])}
        want["p95"] = cast(q[2])
        assert got[name] == want, name
        assert type(got[name]["p50"]) is cast


def test_state_figures_do_not_depend_on_batches_or_workers(model):
    runs = 3 * BLOCK_SIZE + 7
    one = json.dumps(run_monte_carlo(model, runs, 5, batch_blocks=1).to_dict())
    assert json.dumps(run_monte_carlo(model, runs, 5, batch_blocks=16).to_dict()) == one
    assert json.dumps(run_monte_carlo(model, runs, 5, workers=2, batch_blocks=1).to_dict()) == one


def test_final_states_are_kept_only_up_to_the_limit(model, monkeypatch):
    monkeypatch.setattr(results_module, "KEEP_FINAL_RUNS", BLOCK_SIZE)
    total = Aggregate(model, 2 * BLOCK_SIZE, keep=results_module.KEEP_FINAL_RUNS)
    simulate_blocks(model, 2 * BLOCK_SIZE, 1, range(2), 1, sink=total.add)
    assert total.final_states() is None and KEEP_FINAL_RUNS >= 200_000


@pytest.mark.parametrize("n", [1, 7, 8, 129, 4096, 4097, 20_000])
def test_pairwise_sum_equals_numpy_fed_in_any_pieces(n):
    a = np.random.default_rng(n).standard_normal((3, n)) * 1e6
    for piece in (1, 100, 4096):
        total = PairwiseSum(3, n)
        for i in range(0, n, piece):
            total.add(a[:, i : i + piece])
        assert np.array_equal(total.total, a.sum(axis=1))


def _exact_values(kind: str, n: int) -> np.ndarray:
    rng = np.random.default_rng(n)
    if kind == "small integers":
        return rng.integers(-50, 50, (3, n)).astype(float)
    if kind == "53-bit integers":
        return rng.integers(-(2**52), 2**52, (3, n)).astype(float)
    if kind == "any magnitude":
        return rng.standard_normal((3, n)) * 10.0 ** rng.integers(-320, 300, (3, n))
    values = rng.integers(0, 5, (3, n)).astype(float)  # mixed: subnormals, halves, 2^60, 1e308
    values[0, ::7], values[1, ::5] = 5e-324, 0.5
    values[2, :3] = [2.0**60, -1e308, 1e308][:n]
    return values


@pytest.mark.parametrize("kind", ["small integers", "53-bit integers", "any magnitude", "mixed"])
@pytest.mark.parametrize("n", [1, 4097, 20_000])
def test_an_exact_sum_is_the_exact_sum_fed_in_any_pieces(kind, n):
    """Brute force: Python's exact rationals of every value; the mean is that sum rounded once,
    and numpy's mean itself for integers whose absolute sum is below 2^53."""
    values = _exact_values(kind, n)
    want = [sum(map(Fraction, row.tolist()), Fraction(0)) for row in values]
    for piece in (1, 1000, 4096) if n < 5000 else (4096, 7000):
        total = ExactSum(3)
        for i in range(0, n, piece):
            total.add(values[:, i : i + piece])
        assert [Fraction(t) for t in total.totals] == want
        means = total.means(n)
        assert means.tolist() == [float(w / n) for w in want]
        if kind == "small integers":
            assert np.array_equal(means, values.mean(axis=1))


def test_an_exact_sum_of_infinities_and_nan_is_ieees():
    total = ExactSum(4)
    total.add(np.array([[1.0, np.inf], [np.nan, 2.0], [np.inf, -np.inf], [-np.inf, 3.0]]))
    assert np.array_equal(total.means(2), [np.inf, np.nan, np.nan, -np.inf], equal_nan=True)


def test_an_integer_variables_streamed_mean_is_numpys_past_the_kept_runs(monkeypatch):
    """tit_for_tat's variables are integers: summed exactly, not pairwise; the mean of 3 blocks
    equals numpy's mean of the final states, which only the kept copy still has."""
    tit = prepare_model(load_scenario(SCENARIOS / "tit_for_tat.yaml"))
    assert tit.state_integer.all()
    results = run_monte_carlo(tit, 3 * BLOCK_SIZE + 5, 3, batch_blocks=2)
    stream = results.state_stream
    assert stream.sums is None and stream.exact_rows.size == len(tit.state_names)
    assert np.array_equal(stream.means(), results.final_state.mean(axis=1))


@pytest.mark.parametrize("kind", ["integer", "unbounded integer", "grid", "continuous"])
def test_value_counts_quantiles_are_numpys(kind):
    rng = np.random.default_rng(7)
    n = 30_001
    values = {
        "integer": rng.integers(-3, 40, n),
        "unbounded integer": rng.integers(0, 2, n) * 10**9 + rng.integers(0, 5, n),
        "grid": np.round(rng.random(n), 2),
        "continuous": rng.standard_normal(n),
    }[kind].astype(float)
    counts = ValueCounts(kind.endswith("integer"))
    for i in range(0, n, 4096):
        counts.add(values[i : i + 4096])
    assert counts.exact
    assert counts.quantiles() == np.quantile(values, LEVELS, method="inverted_cdf").tolist()


def test_a_sketch_is_within_its_stated_error(monkeypatch):
    monkeypatch.setattr(results_module, "MAX_DISTINCT", 500)
    rng = np.random.default_rng(2)
    values = rng.lognormal(0, 4, 50_000) * rng.choice([-1.0, 1.0], 50_000)
    values[:100] = 0.0
    counts = ValueCounts(False)
    for i in range(0, values.size, 4096):
        counts.add(values[i : i + 4096])
    assert not counts.exact
    want = np.quantile(values, LEVELS, method="inverted_cdf")
    got = np.array(counts.quantiles())
    assert np.all(np.abs(got - want) <= results_module.SKETCH_ALPHA * np.abs(want))

"""The lockstep engine: step semantics of DESIGN.md section 2, run-time checks, reproducibility."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from sim.engine.batch import Observer, simulate_batch
from sim.engine.runner import run_monte_carlo
from sim.engine.streams import BLOCK_SIZE
from sim.errors import SimulationError
from tests.conftest import build

ONE_ACTOR = """
horizon: {horizon}
ladder: [low, mid, high]
actors: {{a: {{label: A}}}}
turn_order: [a]
"""


def one_actor(body: str, horizon: int = 1, **kw) -> object:
    return build(ONE_ACTOR.format(horizon=horizon) + body, **kw)


def within(p_hat: float, p: float, n: int, sigmas: float = 4.0) -> bool:
    return abs(p_hat - p) <= sigmas * math.sqrt(p * (1 - p) / n) + 1e-12


def test_branch_probability_matches_exact_value():
    model = one_actor("""
options:
  a:
    - {id: go, outcomes: [{id: up, p: 0.3, rung: 2}, {id: stay}]}
policies: {a: {kind: fixed, option: go}}
outcomes: {war: {when: rung >= 2}}
""")
    n = 50_000
    r = run_monte_carlo(model, n, seed=3)
    assert within(r.probabilities[0], 0.3, n)
    lo, hi = r.intervals()
    assert lo[0] <= 0.3 <= hi[0] or not within(r.probabilities[0], 0.3, n, 2)


def test_geometric_time_to_war():
    """Each step ends the crisis with chance 0.2: P(end by step 5) = 1 - 0.8**5."""
    model = one_actor(
        """
options:
  a:
    - {id: go, outcomes: [{id: up, p: 0.2, rung: 2}, {id: stay, rung: 0}]}
policies: {a: {kind: fixed, option: go}}
outcomes: {war: {when: rung >= 2}}
""",
        horizon=5,
    )
    n = 40_000
    r = run_monte_carlo(model, n, seed=11)
    assert within(r.probabilities[0], 1 - 0.8**5, n)
    share_step1 = r.steps_hist[1] / n
    assert within(share_step1, 0.2, n)
    assert within(r.probabilities[1], 0.8**5, n)
    assert r.steps_hist[5] == r.ended[5].sum()


def test_state_dependent_probability_out_of_range_stops_the_run():
    model = one_actor(
        """
state: {x: 0.5}
options:
  a:
    - id: go
      effects: {add: {x: 0.3}}
      outcomes: [{id: up, p: "x"}, {id: stay}]
policies: {a: {kind: fixed, option: go}}
""",
        horizon=5,
    )
    with pytest.raises(SimulationError) as err:
        run_monte_carlo(model, 100, seed=1)
    message = str(err.value)
    assert "option 'go' of a" in message and "branch 'up'" in message
    assert "1.1" in message and "outside [0, 1]" in message and "step 2" in message
    assert message.startswith("inline.yaml:")


def test_a_run_time_error_names_the_same_run_whatever_the_order_of_live_runs():
    """Finished runs' places are taken by live runs from the end of the batch; an error then
    plays the batch again in run order, so the message names the value of the same run as an
    observer (which sees live runs in run order) does."""
    model = one_actor(
        """
state: {x: 0}
options:
  a:
    - id: go
      effects: {set: {x: "uniform(0, 2)"}}
      outcomes: [{id: up, p: "where(step >= 2, x / 1.8, 0)"}, {id: stay}]
policies: {a: {kind: fixed, option: go}}
outcomes: {low: {when: x < 1.6}}
""",
        horizon=3,
    )
    messages = []
    for observer in (None, Observer()):
        with pytest.raises(SimulationError) as err:
            simulate_batch(model, 1, 0, 2, 2 * BLOCK_SIZE, observer=observer)
        messages.append(str(err.value))
    assert messages[0] == messages[1] and "outside [0, 1] at step 2" in messages[0]


def test_probabilities_not_summing_to_one_are_never_renormalised():
    with pytest.raises(SimulationError, match=r"sum to 1\.2, not 1"):
        model = one_actor("""
state: {q: 0.6}
options:
  a:
    - id: go
      outcomes: [{id: up, p: "q"}, {id: down, p: "q"}]
policies: {a: {kind: fixed, option: go}}
""")
        run_monte_carlo(model, 10, seed=1)


def test_parameter_only_probabilities_are_checked_when_compiled():
    """`p: q` with a parameter q is folded and checked once, with the file position."""
    from sim.errors import ScenarioError

    body = """
parameters: {q: {value: 0.5, min: 0, max: 1}}
options:
  a:
    - id: go
      outcomes: [{id: up, p: "q"}, {id: down, p: "q"}]
policies: {a: {kind: fixed, option: go}}
"""
    assert one_actor(body).options[0][0].constant_cumulative.tolist() == [0.5, 1.0]
    with pytest.raises(ScenarioError, match=r"inline\.yaml:\d+:\d+: .*sum to 1\.2, not 1"):
        one_actor(body, overrides={"q": 0.6})


def test_negative_remainder_is_an_error():
    model = one_actor("""
state: {x: 0.7}
options:
  a:
    - id: go
      outcomes: [{id: up, p: "x"}, {id: down, p: "x"}, {id: rest}]
policies: {a: {kind: fixed, option: go}}
""")
    with pytest.raises(SimulationError, match="negative remainder for branch 'rest'"):
        run_monte_carlo(model, 10, seed=1)


def test_pass_when_nothing_is_available_and_fixed_fallback():
    model = build("""
horizon: 3
ladder: [low, high]
state: {t: 0}
actors: {a: {label: A}}
turn_order: [a]
options:
  a:
    - {id: first, requires: "t >= 1", effects: {add: {t: 1}}}
    - {id: second, requires: "t == 0", effects: {add: {t: 1}}}
    - {id: never, requires: "t > 100"}
policies: {a: {kind: fixed, option: never}}
""")
    r = run_monte_carlo(model, 100, seed=1)
    shares = r.move_shares()["a"]
    assert shares["second"] == pytest.approx(1 / 3)
    assert shares["first"] == pytest.approx(2 / 3)
    assert "pass" not in shares or shares["pass"] == 0
    blocked = build("""
horizon: 2
ladder: [low]
actors: {a: {label: A}}
turn_order: [a]
options: {a: [{id: x, requires: false}]}
policies: {a: {kind: fixed, option: x}}
""")
    assert run_monte_carlo(blocked, 10, seed=1).move_shares()["a"] == {"pass": 1.0, "x": 0.0}


def test_rungs_branch_overrides_option_and_peak_includes_initial():
    model = build("""
horizon: 2
ladder: [r0, r1, r2, r3]
initial_rung: 3
actors: {a: {label: A}}
turn_order: [a]
options:
  a:
    - id: go
      rung: 1
      outcomes: [{id: b, p: 0.5, rung: 0}, {id: keep}]
policies: {a: {kind: fixed, option: go}}
""")
    out = simulate_batch(model, 5, 0, 1, 2000, record_paths=True)
    paths = out.records.rung_path
    assert (paths[:, 0] == 3).all()
    assert set(np.unique(paths[:, 1])) == {0, 1}
    assert (out.records.peak_rung == 3).all()


def test_discount_and_every_step_payoffs():
    model = build("""
horizon: 3
discount: 0.5
ladder: [low]
actors: {a: {label: A}, b: {label: B}}
turn_order: [a]
options: {a: [{id: go, payoffs: {a: 2}}]}
policies: {a: {kind: fixed, option: go}}
every_step: {payoffs: {b: 1}}
""")
    r = run_monte_carlo(model, 10, seed=1)
    assert r.payoff_mean[0] == pytest.approx(2 * (1 + 0.5 + 0.25))
    assert r.payoff_mean[1] == pytest.approx(1.75)
    assert r.payoff_sd[0] == 0


def test_effects_read_state_before_clip_and_round():
    model = build("""
horizon: 1
ladder: [low]
state:
  a: 1
  b: 2
  n: {initial: 0, min: 0, max: 3, integer: true}
actors: {x: {label: X}}
turn_order: [x]
options:
  x:
    - id: go
      effects: {set: {a: b, b: a}, add: {n: 7.6}}
policies: {x: {kind: fixed, option: go}}
""")
    r = run_monte_carlo(model, 5, seed=1)
    assert r.final_state[:, 0].tolist() == [2.0, 1.0, 3.0]


def test_branch_effects_see_option_effects_and_terminal_order():
    model = build("""
horizon: 4
ladder: [low, high]
state: {x: 0}
actors: {a: {label: A}}
turn_order: [a]
options:
  a:
    - id: go
      effects: {add: {x: 1}}
      outcomes: [{id: only, effects: {set: {x: "x * 10"}}}]
policies: {a: {kind: fixed, option: go}}
outcomes:
  first: {when: "x >= 10", payoffs: {a: 5}}
  second: {when: "x >= 10", payoffs: {a: 100}}
""")
    r = run_monte_carlo(model, 20, seed=1)
    assert r.outcome_counts.tolist() == [20, 0, 0]
    assert r.final_state[0, 0] == 10
    assert r.payoff_mean[0] == 5
    assert r.steps_hist[1] == 20


def test_last_move_builtin_and_sequence_policy():
    model = build("""
horizon: 4
ladder: [low, high]
state: {hits: 0}
actors: {a: {label: A}, b: {label: B}}
turn_order: [a, b]
options:
  a: [{id: talk}, {id: strike}]
  b:
    - {id: react, effects: {add: {hits: "where(last_a == 'strike', 1, 0)"}}}
policies:
  a: {kind: sequence, options: [talk, strike, talk]}
  b: {kind: fixed, option: react}
""")
    r = run_monte_carlo(model, 10, seed=1)
    assert r.final_state[0, 0] == 1
    assert r.move_shares()["a"] == {"talk": 0.75, "strike": 0.25}


def test_table_policy_spreads_unavailable_share_proportionally():
    model = build("""
horizon: 1
ladder: [low]
actors: {a: {label: A}, b: {label: B}}
turn_order: [b]
options:
  a: [{id: x}]
  b: [{id: p1}, {id: p2}, {id: gone, requires: false}]
policies:
  a: {kind: fixed, option: x}
  b: {kind: table, respond_to: a, table: {default: {p1: 0.2, p2: 0.3, gone: 0.5}}}
""")
    n = 60_000
    shares = run_monte_carlo(model, n, seed=2).move_shares()["b"]
    assert within(shares["p1"], 0.4, n)
    assert within(shares["p2"], 0.6, n)


def test_logit_choice_frequencies_match_softmax():
    model = build("""
horizon: 1
ladder: [low]
parameters: {lam: 1.3}
actors: {a: {label: A}}
turn_order: [a]
options: {a: [{id: u}, {id: v}, {id: w}]}
policies: {a: {kind: logit, rationality: lam, utilities: {u: 0, v: 1, w: -0.5}}}
""")
    n = 60_000
    shares = run_monte_carlo(model, n, seed=4).move_shares()["a"]
    w = np.exp(1.3 * np.array([0, 1, -0.5]))
    expected = w / w.sum()
    for name, p in zip(["u", "v", "w"], expected):
        assert within(shares[name], p, n)


def test_results_identical_whatever_the_batch_size(camp_taji):
    runs = 3 * BLOCK_SIZE + 321
    reference = json.dumps(run_monte_carlo(camp_taji, runs, 42, batch_blocks=16).to_json())
    for blocks in (1, 2, 3):
        again = json.dumps(run_monte_carlo(camp_taji, runs, 42, batch_blocks=blocks).to_json())
        assert again == reference


def test_results_identical_whatever_the_worker_count(camp_taji):
    runs = 4 * BLOCK_SIZE
    one = run_monte_carlo(camp_taji, runs, 9, workers=1, batch_blocks=1).to_json()
    two = run_monte_carlo(camp_taji, runs, 9, workers=2, batch_blocks=1).to_json()
    assert json.dumps(one) == json.dumps(two)


def test_per_run_records_do_not_depend_on_batch_grouping(camp_taji):
    runs = 3 * BLOCK_SIZE
    together = simulate_batch(camp_taji, 5, 0, 3, runs).records
    for block in range(3):
        alone = simulate_batch(camp_taji, 5, block, 1, runs).records
        sl = slice(block * BLOCK_SIZE, (block + 1) * BLOCK_SIZE)
        np.testing.assert_array_equal(alone.outcome, together.outcome[sl])
        np.testing.assert_array_equal(alone.payoffs, together.payoffs[:, sl])
        np.testing.assert_array_equal(alone.state, together.state[:, sl])
        np.testing.assert_array_equal(alone.moves, together.moves[:, :, sl])


def test_different_seeds_differ_and_same_seed_repeats(camp_taji):
    a = run_monte_carlo(camp_taji, 5000, 1).to_json()
    b = run_monte_carlo(camp_taji, 5000, 1).to_json()
    c = run_monte_carlo(camp_taji, 5000, 2).to_json()
    assert a == b
    assert a["outcomes"] != c["outcomes"]


def test_records_are_complete_and_consistent(camp_taji):
    out = simulate_batch(camp_taji, 1, 0, 2, 2 * BLOCK_SIZE, record_paths=True)
    rec = out.records
    assert (rec.outcome >= 0).all()
    assert ((rec.steps >= 1) & (rec.steps <= camp_taji.horizon)).all()
    moves_per_run = rec.moves.sum(axis=(0, 1))
    assert (moves_per_run <= 3 * rec.steps).all() and (moves_per_run >= 3 * (rec.steps - 1)).all()
    last = rec.rung_path[np.arange(rec.steps.size), rec.steps]
    np.testing.assert_array_equal(last, rec.final_rung)
    assert (rec.peak_rung >= rec.rung_path.max(axis=1)).all()
    assert out.ended.sum() == 2 * BLOCK_SIZE
    occupancy0 = out.occupancy[:, 0, :].sum()
    assert occupancy0 == 2 * BLOCK_SIZE


def test_random_draws_in_effects_have_the_right_mean():
    model = build("""
horizon: 1
ladder: [low]
state: {k: 0, u: 0}
actors: {a: {label: A}}
turn_order: [a]
options: {a: [{id: go, effects: {add: {k: "poisson(2.5)", u: "uniform(1, 3)"}}}]}
policies: {a: {kind: fixed, option: go}}
""")
    n = 40_000
    r = run_monte_carlo(model, n, seed=8)
    assert abs(r.final_state[0].mean() - 2.5) < 4 * math.sqrt(2.5 / n)
    assert abs(r.final_state[1].mean() - 2.0) < 4 * math.sqrt((4 / 12) / n)


def test_nan_in_effect_is_a_clear_error():
    model = one_actor("""
state: {x: -1}
options: {a: [{id: go, effects: {set: {x: "sqrt(x)"}}}]}
policies: {a: {kind: fixed, option: go}}
""")
    pattern = r"inline\.yaml:\d+:\d+: effect on 'x' evaluated to nan"
    with pytest.raises(SimulationError, match=pattern):
        run_monte_carlo(model, 10, seed=1)


class _Recorder(Observer):
    def __init__(self, run: int):
        self.run = run
        self.events: list[tuple] = []

    def chose(self, step, actor, runs, chosen):
        hit = runs == self.run
        if hit.any():
            self.events.append(("chose", step, actor, int(chosen[hit][0])))

    def branched(self, step, actor, option, runs, branch):
        hit = runs == self.run
        if hit.any():
            self.events.append(("branch", step, actor, option, int(branch[hit][0])))

    def moved(self, *args):
        pass

    def stepped(self, *args):
        pass

    def ended(self, step, runs, outcome):
        hit = runs == self.run
        if hit.any():
            self.events.append(("ended", step, int(outcome[hit][0])))


def test_observer_sees_one_runs_story_consistent_with_records(camp_taji):
    run = 4100
    rec_obs = _Recorder(run)
    out = simulate_batch(camp_taji, 3, 0, 2, 2 * BLOCK_SIZE, observer=rec_obs)
    ended = [e for e in rec_obs.events if e[0] == "ended"]
    assert len(ended) == 1
    assert ended[0][1] == out.records.steps[run] and ended[0][2] == out.records.outcome[run]
    chose = [e for e in rec_obs.events if e[0] == "chose"]
    assert len(chose) == out.records.moves[:, :, run].sum()
    alone = simulate_batch(camp_taji, 3, 1, 1, 2 * BLOCK_SIZE, observer=_Recorder(run))
    assert alone.records.outcome[run - BLOCK_SIZE] == out.records.outcome[run]


def test_chooser_replaces_the_policy(camp_taji):
    us = camp_taji.actor_index("us")
    out = simulate_batch(
        camp_taji,
        3,
        0,
        1,
        200,
        choosers={us: lambda step, avail, view: np.zeros(view.size, dtype=int)},
    )
    assert (out.records.moves[us, 1] == out.records.moves[us].sum(axis=0)).all()


def test_condition_true_from_the_start_ends_the_run_at_the_first_check():
    """Terminal checks skip conditions a move cannot change, but the first check sees them all."""
    model = build("""
horizon: 5
ladder: [low, high]
state: {calm: 1}
actors: {a: {label: A}, b: {label: B}}
turn_order: [a, b]
options: {a: [{id: go}], b: [{id: go}]}
policies: {a: {kind: fixed, option: go}, b: {kind: fixed, option: go}}
outcomes: {already: {when: "calm >= 1"}}
""")
    r = run_monte_carlo(model, 50, seed=1)
    assert r.outcome_counts[0] == 50 and r.steps_hist[1] == 50
    assert r.moves[0, 1] == 50 and r.moves[1].sum() == 0


def test_condition_on_step_alone_is_checked_at_each_new_step():
    model = build("""
horizon: 9
ladder: [low, high]
actors: {a: {label: A}, b: {label: B}}
turn_order: [a, b]
options: {a: [{id: go}], b: [{id: go}]}
policies: {a: {kind: fixed, option: go}, b: {kind: fixed, option: go}}
outcomes: {late: {when: "step >= 3"}}
""")
    r = run_monte_carlo(model, 50, seed=1)
    assert r.steps_hist[3] == 50
    assert r.moves[0, 1] == 150 and r.moves[1, 1] == 100

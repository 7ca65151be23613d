"""A tally (state `tally:`) settles a counter's increases at once: into totals and per-unit
payoffs, so a run that ends before `every_step` loses none of them (issue 18, item 5)."""

from __future__ import annotations

import numpy as np
import pytest

from sim.engine.batch import simulate_batch
from sim.engine.streams import block_count
from sim.solvers.exact import solve as solve_exact
from tests.conftest import build

LAM = 1.5
"""Mean deaths per salvo: binomial(3, 0.5), which the exact solver enumerates."""
PER_DEATH = -2.0

# A salvo kills binomial(3, 0.5) this week; half the runs end at once (mid-step, before
# every_step), the rest after every_step resets the weekly counter.
GAME = f"""
horizon: 2
ladder: [calm, attack]
state:
  killed: {{initial: 3, min: 0, integer: true}}
  killed_this_week:
    initial: 0
    min: 0
    integer: true
    tally: {{into: [killed], payoffs: {{us: {PER_DEATH}}}}}
  stop: {{initial: 0, min: 0, max: 1, integer: true}}
actors: {{kh: {{label: KH}}, us: {{label: US}}}}
turn_order: [kh, us]
options:
  kh:
    - id: salvo
      rung: attack
      effects: {{add: {{killed_this_week: "binomial(3, 0.5)"}}, set: {{stop: "bernoulli(0.5)"}}}}
  us:
    - id: wait
policies:
  kh: {{kind: fixed, option: salvo}}
  us: {{kind: fixed, option: wait}}
every_step:
  effects: {{set: {{killed_this_week: 0}}}}
outcomes:
  ended_mid_step: {{when: stop == 1}}
"""


def test_exact_totals_and_payoffs_include_runs_that_end_mid_step():
    """Hand calculation: every week adds binomial(3, 0.5) deaths, 1.5 on average. Half the runs
    end after week 1's salvo (mid-step), so E[weeks] = 1 + 0.5 = 1.5; E[killed] = 3 + 1.5 * 1.5
    = 5.25 and the US payoff is -2 per death: -2 * 2.25 = -4.5."""
    model = build(GAME)
    result = solve_exact(model).to_dict()
    weeks = 1 + 0.5
    assert result["payoffs"]["us"]["mean"] == pytest.approx(PER_DEATH * LAM * weeks, abs=1e-12)
    assert result["state"]["killed"]["mean"] == pytest.approx(3 + LAM * weeks, abs=1e-12)


def test_every_run_is_charged_what_it_counted():
    """Monte Carlo, run by run: the total grew by the deaths drawn and the payoff is -2 each."""
    model = build(GAME)
    runs = 4000
    rec = simulate_batch(model, 7, 0, block_count(runs), runs).records
    killed = rec.state[model.state_names.index("killed")] - 3
    assert killed.sum() > 1000  # the game kills
    np.testing.assert_array_equal(rec.payoffs[model.actors.index("us")], PER_DEATH * killed)


def test_a_reset_is_not_a_decrease_of_the_total():
    """every_step's reset of the weekly counter (a decrease) leaves the total alone."""
    model = build(GAME.replace("bernoulli(0.5)", "0"))
    result = solve_exact(model).to_dict()
    assert result["state"]["killed"]["mean"] == pytest.approx(3 + 2 * LAM, abs=1e-12)
    assert result["state"]["killed_this_week"]["mean"] == 0

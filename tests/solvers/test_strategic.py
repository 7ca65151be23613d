"""Strategic actors: logit agent quantal response equilibrium against hand calculations."""

from __future__ import annotations

import math

import numpy as np
import pytest

from sim.engine.runner import run_monte_carlo
from sim.errors import ScenarioError
from sim.model.compiled import NOT_YET
from sim.model.loading import load_text
from sim.solvers.prepare import prepare_model
from tests.claims.harness import knockout_parameter
from tests.conftest import scenario_text

CRISIS = """
horizon: 2
ladder: [status quo, demand, war]
parameters:
  lam_c: {value: 1.0, min: 0, max: 1000}
  lam_d: {value: 1.0, min: 0, max: 1000}
  audience_cost: {value: 1.5, min: 0, max: 10}
actors: {c: {label: Challenger}, d: {label: Defender}}
turn_order: [c, d]
options:
  c:
    - {id: status_quo, requires: "step == 1"}
    - {id: demand, rung: demand, requires: "step == 1"}
    - {id: back_down, requires: "step == 2 and last_d == 'resist'"}
    - {id: fight, rung: war, requires: "step == 2 and last_d == 'resist'"}
  d:
    - {id: concede, requires: "last_c == 'demand'"}
    - {id: resist, requires: "last_c == 'demand'"}
policies:
  c: {kind: strategic, rationality: lam_c}
  d: {kind: strategic, rationality: lam_d}
outcomes:
  status_quo: {when: "last_c == 'status_quo'"}
  capitulation: {when: "last_d == 'concede'", payoffs: {c: 1, d: -1}}
  backdown: {when: "last_c == 'back_down'", payoffs: {c: "-audience_cost", d: 1}}
  war: {when: "last_c == 'fight'", payoffs: {c: -0.5, d: -2}}
"""


def logit2(lam: float, u_a: float, u_b: float) -> float:
    """Probability of a in a binary logit choice."""
    return 1 / (1 + math.exp(-lam * (u_a - u_b)))


def crisis_by_hand(lam_c: float, lam_d: float, a: float) -> dict[str, float]:
    """The two-stage crisis game with audience cost `a`, solved backwards by hand.

    Stage 3, challenger after resistance: fight (-0.5) or back down (-a):
        P(fight) = L(lam_c; -0.5 vs -a).
    Stage 2, defender after a demand: concede (-1) or resist, worth
        P(fight) * (-2) + (1 - P(fight)) * 1,   P(resist) = L(lam_d; resist vs -1).
    Stage 1, challenger: status quo (0) or demand, worth
        (1 - P(resist)) * 1 + P(resist) * (P(fight) * -0.5 + (1 - P(fight)) * -a).
    """
    fight = logit2(lam_c, -0.5, -a)
    resist_value = fight * -2 + (1 - fight) * 1
    resist = logit2(lam_d, resist_value, -1)
    demand_value = (1 - resist) * 1 + resist * (fight * -0.5 + (1 - fight) * -a)
    demand = logit2(lam_c, demand_value, 0)
    return {"demand": demand, "resist": resist, "fight": fight}


def node_choice(model, step: int, turn: int, last: list[int], rung: int) -> np.ndarray:
    x = np.zeros((len(model.state_names), 1))
    r = np.array([rung])
    return model.strategic.probabilities(step, turn, x, r, r.copy(), np.array([last]).T)[:, 0]


def crisis(lam_c: float, lam_d: float, a: float = 1.5):
    scenario = load_text(scenario_text(CRISIS), "crisis.yaml")
    return prepare_model(scenario, {"lam_c": lam_c, "lam_d": lam_d, "audience_cost": a})


@pytest.mark.parametrize(
    "lam_c,lam_d,a", [(0.5, 0.5, 1.5), (1, 1, 1.5), (3, 0.7, 1.5), (2, 2, 0.2), (1.3, 4, 3.0)]
)
def test_crisis_with_audience_costs_matches_hand_calculation(lam_c, lam_d, a):
    model = crisis(lam_c, lam_d, a)
    hand = crisis_by_hand(lam_c, lam_d, a)
    start = node_choice(model, 1, 0, [NOT_YET, NOT_YET], 0)
    assert start[2] == pytest.approx(hand["demand"], abs=1e-12)
    assert start[1] + start[2] == pytest.approx(1, abs=1e-12)
    defender = node_choice(model, 1, 1, [1, NOT_YET], 1)
    assert defender[2] == pytest.approx(hand["resist"], abs=1e-12)
    again = node_choice(model, 2, 0, [1, 1], 1)
    assert again[4] == pytest.approx(hand["fight"], abs=1e-12)
    assert again[1] == 0 and again[2] == 0


def test_zero_rationality_is_uniform():
    model = crisis(0, 0)
    assert node_choice(model, 1, 0, [NOT_YET, NOT_YET], 0)[1:3] == pytest.approx([0.5, 0.5])
    assert node_choice(model, 1, 1, [1, NOT_YET], 1)[1:] == pytest.approx([0.5, 0.5])


def test_high_rationality_converges_to_subgame_perfect_play():
    """With a = 1.5 fighting (-0.5) beats backing down; the defender then concedes (-1 > -2);
    so the challenger demands (1 > 0): the subgame-perfect path is demand, concede. With a = 0.2
    the challenger would back down, so the defender resists. (Residuals are exp(-60 * gap).)"""
    model = crisis(60, 60)
    assert node_choice(model, 2, 0, [1, 1], 1)[4] > 1 - 1e-12
    assert node_choice(model, 1, 1, [1, NOT_YET], 1)[1] > 1 - 1e-12
    assert node_choice(model, 1, 0, [NOT_YET, NOT_YET], 0)[2] > 1 - 1e-12
    low_cost = crisis(60, 60, a=0.2)
    assert node_choice(low_cost, 2, 0, [1, 1], 1)[3] > 1 - 1e-6
    assert node_choice(low_cost, 1, 1, [1, NOT_YET], 1)[2] > 1 - 1e-6


def test_audience_costs_make_threats_credible():
    """Fearon: higher audience costs make the challenger fight more, the defender resist less."""
    low, high = crisis_by_hand(1, 1, 0.2), crisis_by_hand(1, 1, 3.0)
    assert high["fight"] > low["fight"] and high["resist"] < low["resist"]
    m_low, m_high = crisis(1, 1, 0.2), crisis(1, 1, 3.0)
    assert (
        node_choice(m_high, 1, 1, [1, NOT_YET], 1)[2] < node_choice(m_low, 1, 1, [1, NOT_YET], 1)[2]
    )


def test_monte_carlo_with_strategic_actors_matches_the_equilibrium():
    model = crisis(1, 1)
    hand = crisis_by_hand(1, 1, 1.5)
    expected = {
        "status_quo": 1 - hand["demand"],
        "capitulation": hand["demand"] * (1 - hand["resist"]),
        "backdown": hand["demand"] * hand["resist"] * (1 - hand["fight"]),
        "war": hand["demand"] * hand["resist"] * hand["fight"],
    }
    n = 100_000
    result = run_monte_carlo(model, n, seed=5)
    for i, oid in enumerate(model.outcome_ids[:4]):
        p = expected[oid]
        assert abs(result.probabilities[i] - p) < 5 * math.sqrt(p * (1 - p) / n), oid


SIGNORINO = """
horizon: 1
ladder: [status quo, crisis, war]
parameters:
  lam1: {value: 1.0, min: 0, max: 100}
  lam2: {value: 1.0, min: 0, max: 100}
actors: {one: {label: Player 1}, two: {label: Player 2}}
turn_order: [one, two]
options:
  one:
    - {id: keep, label: Keep the status quo}
    - {id: challenge, rung: crisis}
  two:
    - {id: capitulate, requires: "last_one == 'challenge'"}
    - {id: war, rung: war, requires: "last_one == 'challenge'"}
policies:
  one: {kind: strategic, rationality: lam1}
  two: {kind: strategic, rationality: lam2}
outcomes:
  status_quo: {when: "last_one == 'keep'", payoffs: {one: 0.2, two: 0.5}}
  capitulation: {when: "last_two == 'capitulate'", payoffs: {one: 1, two: -0.6}}
  war: {when: "rung >= 2", payoffs: {one: -1.2, two: -0.9}}
"""


@pytest.mark.parametrize("lam1,lam2", [(0.5, 0.5), (1, 2), (4, 1), (2.5, 2.5)])
def test_signorino_three_outcome_game(lam1, lam2):
    """Signorino's status quo / capitulation / war game in its logit (agent QRE) form:
    P(war | challenge) = L(lam2; -0.9 vs -0.6);
    P(challenge) = L(lam1; P(war) * -1.2 + (1 - P(war)) * 1 vs 0.2)."""
    scenario = load_text(scenario_text(SIGNORINO), "signorino.yaml")
    model = prepare_model(scenario, {"lam1": lam1, "lam2": lam2})
    war = logit2(lam2, -0.9, -0.6)
    challenge = logit2(lam1, war * -1.2 + (1 - war) * 1, 0.2)
    first = node_choice(model, 1, 0, [NOT_YET, NOT_YET], 0)
    second = node_choice(model, 1, 1, [1, NOT_YET], 1)
    assert first[2] == pytest.approx(challenge, abs=1e-12)
    assert second[2] == pytest.approx(war, abs=1e-12)
    values = model.strategic.values
    p_sq, p_cap, p_war = 1 - challenge, challenge * (1 - war), challenge * war
    assert values[0] == pytest.approx(0.2 * p_sq + 1 * p_cap - 1.2 * p_war, abs=1e-12)
    assert values[1] == pytest.approx(0.5 * p_sq - 0.6 * p_cap - 0.9 * p_war, abs=1e-12)


LATE_REWARD = """
horizon: 3
discount: {discount}
ladder: [calm, tense]
state: {{invested: {{initial: 0, min: 0, max: 1, integer: true}}}}
actors: {{a: {{label: A}}}}
turn_order: [a]
options:
  a:
    - {{id: invest, requires: "step == 1", payoffs: {{a: -1}}, effects: {{set: {{invested: 1}}}}}}
    - {{id: idle, requires: "step == 1"}}
    - {{id: wait, requires: "step > 1"}}
policies: {{a: {{kind: strategic, rationality: 2{lookahead}}}}}
every_step:
  payoffs: {{a: "where(step == 3, 3 * invested, 0)"}}
{terminal_value}
"""


def late_reward(discount: float = 1.0, lookahead: str = "", terminal_value: str = ""):
    text = LATE_REWARD.format(discount=discount, lookahead=lookahead, terminal_value=terminal_value)
    return prepare_model(load_text(scenario_text(text), "late.yaml"))


def test_full_lookahead_sees_the_late_reward_discounted():
    """Investing costs 1 now and pays 3 at step 3: Q(invest) = -1 + 3 d^2, Q(idle) = 0."""
    for d in (1.0, 0.5):
        model = late_reward(discount=d)
        p = node_choice(model, 1, 0, [NOT_YET], 0)
        assert p[1] == pytest.approx(logit2(2, -1 + 3 * d * d, 0), abs=1e-12)


def test_short_lookahead_misses_it_unless_a_terminal_value_says_so():
    """Looking one step ahead, the payoff of step 3 is invisible: Q(invest) = -1."""
    model = late_reward(lookahead=", lookahead: 1")
    assert node_choice(model, 1, 0, [NOT_YET], 0)[1] == pytest.approx(logit2(2, -1, 0), abs=1e-12)
    valued = late_reward(
        lookahead=", lookahead: 1", terminal_value="terminal_value: {a: '2.5 * invested'}"
    )
    assert node_choice(valued, 1, 0, [NOT_YET], 0)[1] == pytest.approx(logit2(2, 1.5, 0), abs=1e-12)


def test_strategic_actor_with_random_draws_is_refused_with_the_position():
    text = SIGNORINO.replace("payoffs: {one: 1, two: -0.6}", "payoffs: {one: 'poisson(1)', two: 0}")
    with pytest.raises(ScenarioError) as err:
        load_text(scenario_text(text), "draws.yaml")
    problem = err.value.problems[0]
    line = scenario_text(text).splitlines()[problem.line - 1]
    assert "random draw" in problem.message
    assert line[problem.col - 1 :].startswith("poisson(")


def test_compare_with_a_strategic_opponent():
    from sim.analysis.compare import compare_first_moves

    scenario = load_text(scenario_text(CRISIS), "crisis.yaml")
    comp = compare_first_moves(scenario, "c", 4096, seed=1)
    names = [c.name for c in comp.columns]
    assert names == ["status_quo", "demand"]
    sq = comp.columns[0].results
    assert sq.probabilities[0] == 1.0


def test_exact_solver_gives_the_equilibrium_outcome_distribution():
    from sim.solvers.exact import solve

    for lam_c, lam_d, a in [(1, 1, 1.5), (3, 0.7, 0.2)]:
        hand = crisis_by_hand(lam_c, lam_d, a)
        exact = solve(crisis(lam_c, lam_d, a))
        p = dict(zip(exact.model.outcome_ids, exact.probabilities))
        assert p["status_quo"] == pytest.approx(1 - hand["demand"], abs=1e-12)
        assert p["capitulation"] == pytest.approx(hand["demand"] * (1 - hand["resist"]), abs=1e-12)
        assert p["war"] == pytest.approx(hand["demand"] * hand["resist"] * hand["fight"], abs=1e-12)


def test_strategic_game_with_state_exact_and_monte_carlo_agree():
    from sim.solvers.exact import solve

    model = late_reward(
        discount=0.8,
        lookahead=", lookahead: 2",
        terminal_value="terminal_value: {a: '1.5 * invested'}",
    )
    exact = solve(model)
    n = 100_000
    mc = run_monte_carlo(model, n, seed=9)
    invested_exact = float((exact.final_state[0] * exact.final_weights).sum())
    invested_mc = mc.final_state[0].mean()
    assert abs(invested_mc - invested_exact) < 5 * math.sqrt(0.25 / n)
    assert mc.payoff_mean[0] == pytest.approx(
        exact.payoff_mean[0], abs=5 * mc.payoff_sd[0] / math.sqrt(n) + 1e-12
    )


def test_cli_exact_solves_a_strategic_scenario(tmp_path, capsys):
    import json

    from sim.cli.main import main

    path = tmp_path / "crisis.yaml"
    path.write_text(scenario_text(CRISIS))
    assert main(["exact", str(path), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    hand = crisis_by_hand(1, 1, 1.5)
    assert data["outcomes"]["status_quo"]["p"] == pytest.approx(1 - hand["demand"], abs=1e-12)


def red_line(**overrides):
    from sim.model.loading import load_scenario
    from tests.conftest import SCENARIOS

    return prepare_model(load_scenario(SCENARIOS / "red_line_2020.yaml"), overrides)


def red_line_by_hand(p: dict[str, float]) -> dict[str, float]:
    """scenarios/red_line_2020.yaml solved backwards by hand (logit at each node).

    Iran after a strike: restrain (-face) or retaliate (-war_i): P(ret) = L(lam_i; -war_i vs -face).
    US after an attack: absorb (-absorb - audience) or strike, worth
        (1 - P(ret)) * strike_gain - P(ret) * war_us.
    Iran at the start: hold (0) or attack, worth
        P(absorb) * gain + P(strike) * ((1 - P(ret)) * -face + P(ret) * -war_i).
    """
    ret = logit2(p["iran_rationality"], -p["iran_war_cost"], -p["iran_face_cost"])
    strike_value = (1 - ret) * p["us_strike_gain"] - ret * p["us_war_cost"]
    absorb_value = -p["us_absorb_cost"] - p["us_audience_cost"]
    strike = logit2(p["us_rationality"], strike_value, absorb_value)
    attack_value = (1 - strike) * p["iran_attack_gain"] + strike * (
        (1 - ret) * -p["iran_face_cost"] - ret * p["iran_war_cost"]
    )
    attack = logit2(p["iran_rationality"], attack_value, 0)
    return {
        "status_quo": 1 - attack,
        "us_absorbs": attack * (1 - strike),
        "iran_backs_down": attack * strike * (1 - ret),
        "war": attack * strike * ret,
    }


@pytest.mark.parametrize(
    "overrides",
    [
        {},
        {"us_audience_cost": 1},
        {"iran_rationality": 0.5},
        {"iran_war_cost": 4, "us_rationality": 6},
    ],
)
def test_bundled_red_line_scenario_matches_hand_calculation(overrides):
    from sim.solvers.exact import solve

    model = red_line(**overrides)
    hand = red_line_by_hand(model.parameters)
    exact = dict(zip(model.outcome_ids, solve(model).probabilities))
    for outcome, p in hand.items():
        assert exact[outcome] == pytest.approx(p, abs=1e-12), outcome


def test_audience_costs_deter_attacks_in_the_red_line_scenario():
    """Article 000: Trump pledged to retaliate if Americans were harmed. A president who pays at
    home for absorbing an attack strikes more surely, so Iran attacks less (Fearon's audience
    costs). Monte Carlo, 40,000 runs per arm, the difference beyond 4 standard errors; gone when
    Iran chooses at random (knock-out `iran_rationality` 0)."""
    n = 40_000

    def deterred(**knockout):
        low = run_monte_carlo(red_line(us_audience_cost=0, **knockout), n, seed=3)
        high = run_monte_carlo(red_line(us_audience_cost=1, **knockout), n, seed=3)
        low, high = low.probabilities[0], high.probabilities[0]
        se = math.sqrt(low * (1 - low) / n + high * (1 - high) / n)
        return (high - low) / se

    assert deterred() > 4
    # the knock-out (tests/claims/harness.py): an Iran that does not weigh the US answer
    knockout_parameter("red_line_2020.yaml", "iran_rationality")
    assert deterred(iran_rationality=0) < 2


def test_a_red_line_works_only_if_iran_fears_the_war():
    """Article 002: a direct strike makes Khamenei restrain the Guard rather than risk a war that
    threatens the regime. The more Iran fears that war, the likelier the status quo; with the
    knock-out `iran_rationality` 0 (Iran weighs nothing) the war's cost changes nothing."""
    from sim.solvers.exact import solve

    timid = dict(zip(red_line().outcome_ids, solve(red_line(iran_war_cost=4)).probabilities))
    bold = dict(zip(red_line().outcome_ids, solve(red_line(iran_war_cost=1)).probabilities))
    assert timid["status_quo"] > bold["status_quo"] + 0.3
    assert timid["war"] < bold["war"]
    knockout_parameter("red_line_2020.yaml", "iran_rationality")  # Iran weighs nothing
    off = [solve(red_line(iran_war_cost=c, iran_rationality=0)).probabilities for c in (4, 1)]
    assert off[0][0] == pytest.approx(off[1][0], abs=1e-12)

"""Agent logit QRE over information sets (sim/solvers/information.py): hand calculations, the
fixed point, Monte Carlo against exact, refusals, and a claim with its knock-out control.

pygambit cross-checks are in test_gambit_imperfect.py."""

from __future__ import annotations

import numpy as np
import pytest

import sim.solvers.information as information
from sim.engine.runner import run_monte_carlo
from sim.errors import ScenarioError, SimulationError
from sim.model.compiler import compile_model
from sim.model.loading import load_scenario, load_text
from sim.solvers.exact import solve as solve_exact
from sim.solvers.information import beliefs
from sim.solvers.prepare import prepare_model
from sim.solvers.strategic import solve
from tests.conftest import ROOT

HIDDEN = ROOT / "tests" / "scenarios" / "hidden"
ATTRIBUTION = ROOT / "sim" / "scenarios" / "attribution_2020.yaml"


def strategic_us(rationality: float = 2.0) -> str:
    text = (HIDDEN / "attribution.yaml").read_text()
    i = text.index("  us:\n    kind: logit")
    return text[:i] + f"  us: {{kind: strategic, rationality: {rationality}}}\nend: over\n"


def us_after_attack(model) -> dict:
    (entry,) = [
        e
        for e in beliefs(model, model.strategic)
        if e["actor"] == "us" and e["step"] == 1 and e["sees"]["attacked"] == 1
    ]
    return entry


def test_one_shot_attribution_matches_a_hand_calculation():
    """Iran orders with p 0.4; the militia attacks if ordered, else with p 0.3 (rockets or
    drones, both seen by the US as 'attack'). P(ordered | attack) = 0.4 / (0.4 + 0.6 * 0.3) =
    0.4 / 0.58. Payoffs after an attack: strike Iran 2 * ordered - 1, so E = 2 * 0.4/0.58 - 1;
    strike the militia 0.5 - 0.2 = 0.3; hold -0.5. At rationality 2 the US strikes Iran with
    exp(2 E) / (exp(2 E) + exp(0.6) + exp(-1))."""
    model = prepare_model(load_text(strategic_us(), "attribution.yaml"))
    entry = us_after_attack(model)
    belief = 0.4 / 0.58
    value = 2 * belief - 1
    weights = np.exp([2 * value, 2 * 0.3, 2 * -0.5])
    assert entry["choice"]["strike_iran"] == pytest.approx(weights[0] / weights.sum(), abs=1e-12)
    ordered = sum(r["p"] for r in entry["beliefs"] if r["hidden"]["ordered"] == 1)
    assert ordered == pytest.approx(belief, abs=1e-12)
    assert entry["reach"] == pytest.approx(0.58, abs=1e-12)


def test_a_strategic_actor_who_sees_everything_is_solved_by_backward_induction():
    """Only the non-strategic US is blind; Iran (strategic) sees all: every information set is
    one state, so the solver takes the exact backward induction path (no fixed point)."""
    text = (
        (HIDDEN / "attribution.yaml")
        .read_text()
        .replace(
            "  iran:\n    kind: table\n    respond_to: us\n    table:\n"
            '      default: {order: p_order, no_order: "1 - p_order"}\n',
            "  iran: {kind: strategic, rationality: 1}\n",
        )
    )
    model = compile_model(load_text(text, "iran_strategic.yaml"))
    solution = solve(model)
    assert solution.equilibrium is None


def fixed_point_residual(model) -> float:
    """max |sigma - logit(L * Qbar(sigma))| at the solution, recomputed from scratch."""
    solution = model.strategic
    graph, sets, eq = solution.graph, solution.sets, solution.equilibrium
    fixed = {i: eq.node_pi[i] for i in eq.node_pi if i not in sets}
    game = information._Game(compile_model(model.scenario, model.parameters), graph, sets, fixed)
    qs, _ = game.backward(eq.node_pi)
    z = game.qbar(qs, game.forward(eq.node_pi))
    again = game.set_probabilities(z, 1.0)
    return max(float(np.abs(again[i] - eq.set_pi[i]).max()) for i in sets)


def test_the_answer_is_a_fixed_point_of_the_logit_response_with_bayes_beliefs():
    model = prepare_model(load_scenario(ATTRIBUTION))
    assert model.strategic.equilibrium is not None
    assert fixed_point_residual(model) < 1e-10


def test_monte_carlo_agrees_with_the_exact_answer_within_five_standard_errors():
    model = prepare_model(load_scenario(ATTRIBUTION))
    exact = solve_exact(model).to_json()["outcomes"]
    runs = 60_000
    mc = run_monte_carlo(model, runs, seed=11).to_json()["outcomes"]
    for outcome, row in exact.items():
        p = row["p"]
        se = max(np.sqrt(p * (1 - p) / runs), 1 / runs)
        assert abs(mc[outcome]["p"] - p) < 5 * se, outcome


def test_a_level_that_does_not_converge_is_an_error_not_an_answer(monkeypatch):
    monkeypatch.setattr(information, "MAX_ITERATIONS", 1)
    monkeypatch.setattr(information, "MIN_STEP", 0.01)
    with pytest.raises(SimulationError, match="did not converge"):
        prepare_model(load_scenario(ATTRIBUTION))


def test_lookahead_with_information_sets_is_refused_at_its_line():
    text = ATTRIBUTION.read_text().replace(
        "  us: {kind: strategic, rationality: 2}",
        "  us: {kind: strategic, rationality: 2, lookahead: 1}",
    )
    with pytest.raises(ScenarioError, match="lookahead is not supported") as err:
        prepare_model(load_text(text, "lookahead.yaml"))
    assert err.value.problems[0].line > 0


def strike_iran_after_attack(text: str, p_rogue: float) -> float:
    model = prepare_model(load_text(text, "attribution.yaml"), {"p_rogue": p_rogue})
    rows = [
        e
        for e in beliefs(model, model.strategic)
        if e["actor"] == "us" and e["step"] == 1 and e["sees"]["attacked"] == 1
    ]
    assert rows, "no information set of the US after an attack"
    return rows[0]["choice"]["strike_iran"]


def visible_order() -> str:
    """Knock-out: the order is visible to the US and Iran's move is seen (no hidden state)."""
    text = ATTRIBUTION.read_text()
    text = text.replace("    visible_to: [iran, kh]\n", "").replace("      seen_as: {us: ~}\n", "")
    return text.replace("      seen_as: {us: attack}\n", "")


def test_doubt_about_who_ordered_the_attack_restrains_the_united_states():
    """Article 001: "It's unclear if Iran had anything to do with the attack"; allies "sometimes
    act without explicit instruction". Mechanism: the US's Bayesian belief that an attack was
    ordered. With rogue attacks possible (p_rogue 0.3) the US strikes Iran after an attack far
    less often than when every attack is ordered (p_rogue 0)."""
    text = ATTRIBUTION.read_text()
    doubt = strike_iran_after_attack(text, 0.3)
    certain = strike_iran_after_attack(text, 0.0)
    assert certain - doubt > 0.2, (certain, doubt)


def test_knock_out_seeing_the_order_removes_the_effect_of_rogue_attacks():
    """Control: when the US sees the order, its choice after an ordered attack no longer depends
    on how often the militia goes rogue (the effect above came from the belief)."""
    uses_belief = load_scenario(ATTRIBUTION)
    assert compile_model(uses_belief).hidden_information
    text = visible_order()
    assert not compile_model(load_text(text, "visible.yaml")).hidden_information
    model_a = prepare_model(load_text(text, "visible.yaml"), {"p_rogue": 0.3})
    model_b = prepare_model(load_text(text, "visible.yaml"), {"p_rogue": 0.0})
    assert model_a.strategic.equilibrium is None  # perfect information: backward induction
    p = [strategic_choice_after_ordered_attack(m) for m in (model_a, model_b)]
    assert abs(p[0] - p[1]) < 0.05, p


def strategic_choice_after_ordered_attack(model) -> float:
    """The US's probability of striking Iran in round 1 after an ordered attack (full view)."""
    us = model.actor_index("us")
    turn = model.scenario.turn_order.index("us")
    x = np.array([[1.0], [1.0], [0.0]])  # ordered, attacked, war
    rung = np.array([1])
    last = np.full((model.n_last_rows, 1), -2)
    last[model.actor_index("iran")] = 0  # order_attack
    last[model.actor_index("kh")] = 0  # rockets
    p = model.strategic.table.probabilities(1, turn, x, rung, rung, last)
    return float(p[1 + [o.id for o in model.options[us]].index("strike_iran"), 0])

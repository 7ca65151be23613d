"""Each actor's view (DESIGN.md 8.1): what its policy reads, in the engine and the exact solver."""

from __future__ import annotations

import numpy as np
import pytest

from sim.engine.runner import run_monte_carlo
from sim.model.compiled import KEEP, NOT_YET, PASS
from sim.model.compiler import compile_model
from sim.model.loading import load_scenario, load_text
from sim.model.step import record_move
from sim.solvers.exact import solve
from tests.conftest import ROOT

ATTRIBUTION = ROOT / "tests" / "scenarios" / "hidden" / "attribution.yaml"


def us_table(rows: str) -> str:
    """The attribution test game with the US answering the militia's move as it sees it."""
    text = ATTRIBUTION.read_text()
    i = text.index("  us:\n    kind: logit")
    return text[:i] + f"  us:\n    kind: table\n    respond_to: kh\n    table:\n{rows}end: over\n"


def test_channels_map_true_moves_to_labels_and_unseen_moves_to_keep():
    model = compile_model(load_scenario(ATTRIBUTION))
    iran, kh, us = (model.actor_index(a) for a in ("iran", "kh", "us"))
    by_pair = {(c.mover, c.viewer): c for c in model.channels}
    assert set(by_pair) == {(iran, us), (kh, us)}  # the militia sees Iran's orders as they are
    kh_us = by_pair[(kh, us)]
    assert kh_us.labels == ("attack", "hold")
    assert list(kh_us.codes) == [NOT_YET, PASS, 0, 0, 1]  # rockets, drones -> attack; hold
    assert list(by_pair[(iran, us)].codes[2:]) == [KEEP, KEEP]
    assert model.view_of(us).state == (1, 2)  # not `ordered`
    assert model.view_of(us).last_rows == (by_pair[(iran, us)].row, kh_us.row, us)


def test_record_move_keeps_what_a_viewer_saw_when_it_does_not_see_the_move():
    model = compile_model(load_scenario(ATTRIBUTION))
    iran = model.actor_index("iran")
    row = next(c.row for c in model.channels if c.mover == iran)
    last = np.full((model.n_last_rows, 3), NOT_YET, dtype=np.int64)
    last[row] = [5, 6, 7]  # whatever the US saw before
    record_move(model, last, iran, np.array([0, 1, 0]))
    assert list(last[iran]) == [0, 1, 0]
    assert list(last[row]) == [5, 6, 7]


def test_a_table_answers_the_label_it_sees_in_engine_and_exact_alike():
    """P(strike_iran) = P(attack) = p_order + (1 - p_order) p_rogue = 0.4 + 0.6 * 0.3 = 0.58:
    both rockets and drones are seen as 'attack', so the row 'attack' answers both."""
    text = us_table("      attack: {strike_iran: 1}\n      default: {hold: 1}\n")
    scenario = load_text(text, "table.yaml")
    exact = solve(compile_model(scenario)).to_json()
    assert exact["peak_rung"]["distribution"]["2"] == pytest.approx(0.58, abs=1e-12)
    mc = run_monte_carlo(compile_model(scenario), 40_000, seed=3).to_json()
    p = mc["peak_rung"]["distribution"]["2"]
    assert abs(p - 0.58) < 5 * np.sqrt(0.58 * 0.42 / 40_000)


def test_a_logit_policy_reads_its_view_of_the_move():
    """US utilities read last_kh == 'attack', true for rockets and drones. After an attack
    (p 0.58) the utilities are 1, 0.5, 0 at rationality 2: strike Iran e^2 / (e^2 + e + 1);
    with none they are 0, 0, 1: 1 / (2 + e^2)."""
    model = compile_model(load_scenario(ATTRIBUTION))
    exact = solve(model).to_json()
    attack = 0.58
    p_attack = np.exp(2) / (np.exp(2) + np.exp(1) + 1)
    p_calm = 1 / (2 + np.exp(2))  # utilities 0, 0, 1
    expected = attack * p_attack + (1 - attack) * p_calm
    assert exact["peak_rung"]["distribution"]["2"] == pytest.approx(expected, abs=1e-12)


def test_without_hidden_information_no_channel_and_no_view_is_compiled():
    model = compile_model(load_scenario(ROOT / "scenarios" / "maximum_pressure_2019.yaml"))
    assert model.channels == () and model.views == ()
    assert model.n_last_rows == len(model.actors)
    assert not model.hidden_information

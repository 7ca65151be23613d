"""`play` and `trace` with hidden information: the student sees only its actor's view, the trace
shows each view beside the truth, and the debrief reveals what the student did not see."""

from __future__ import annotations

import io

from sim.model.loading import load_scenario
from sim.play.session import Game
from sim.play.trace import story_lines, trace_run
from sim.solvers.prepare import prepare_model
from tests.conftest import ROOT

ATTRIBUTION = ROOT / "sim" / "scenarios" / "attribution_2020.yaml"


def model():
    return prepare_model(load_scenario(ATTRIBUTION))


def played(answers: str, seed: int = 4) -> str:
    out = io.StringIO()
    Game(model(), "us", seed, io.StringIO(answers), out, compare_runs=200, width=120).play()
    return out.getvalue()


def test_the_student_sees_only_its_view_until_the_debrief():
    """Seed 4: Iran restrains in round 1, orders in round 2 (see the trace test below)."""
    text = played("3\n3\n")
    during, _, after = text.partition("What you did not see")
    assert after, text
    assert "unknown to you" in during
    assert "Iran made a move you did not see." in during
    assert "Order an attack" not in during and "Restrain its allies" not in during
    assert "Kata'ib Hezbollah: attack." in during  # the label the US sees, not 'rockets'
    assert "ordered 0→1" not in during and "your payoff +" not in during
    assert "Your payoff is told at the end" in during
    assert "Iran played Order an attack (you saw nothing)" in after
    assert "Kata'ib Hezbollah played Fire rockets at a US base (you saw attack)" in after


def test_explaining_an_option_never_values_what_the_student_cannot_see():
    text = played("?1\n3\n?1\n3\n")
    # strike_iran's payoff reads `ordered`: shown as written, never as a number
    assert "deterrence_gain * ordered - blame * (1 - ordered)" in text
    assert "(= deterrence_gain * ordered" not in text


def test_the_trace_shows_each_view_beside_the_truth_and_the_beliefs():
    story = trace_run(model(), 4, 0, with_beliefs=True)
    moves = [(m.step, m.actor, m.option) for m in story.moves]
    assert moves[3] == (2, "iran", "order_attack")
    assert story.moves[3].seen_by == {"us": None}
    assert story.moves[4].seen_by == {"us": "attack"}
    us = story.moves[5]
    assert us.sees["last_kh"] == "attack" and "ordered" not in us.sees
    ordered = sum(r["p"] for r in us.beliefs if r["hidden"]["ordered"] == 1)
    assert 0.85 < ordered < 0.95
    text = "\n".join(story_lines(story))
    assert "United States did not see it" in text and "United States saw 'attack'" in text
    assert "ordered 0 → 1 (hidden from us)" in text
    assert "believed: ordered=1" in text
    moves_json = story.to_json()["moves"]
    assert moves_json[5]["beliefs"] and moves_json[3]["seen_by"] == {"us": None}


def test_without_beliefs_requested_the_trace_shows_none():
    story = trace_run(model(), 4, 0)
    assert all(m.beliefs is None for m in story.moves)

"""`trace`: one run as a story, identical to that run inside `escalation run`."""

from __future__ import annotations

import json

import numpy as np

from sim.cli.main import main
from sim.engine.batch import simulate_batch
from sim.engine.runner import DEFAULT_BATCH_BLOCKS
from sim.engine.streams import BLOCK_SIZE
from sim.play.trace import trace_run
from tests.conftest import CAMP_TAJI, scenario_text


def test_story_is_the_same_run_as_in_a_full_batch(camp_taji):
    runs = 10_000
    batch = simulate_batch(camp_taji, 4, 0, min(DEFAULT_BATCH_BLOCKS, 3), runs).records
    for run in (0, 4500, 9999):
        story = trace_run(camp_taji, 4, run)
        assert story.outcome == camp_taji.outcome_ids[batch.outcome[run]]
        assert story.steps == batch.steps[run]
        assert story.peak_rung == batch.peak_rung[run]
        got = np.array([story.payoffs[a] for a in camp_taji.actors])
        np.testing.assert_array_equal(got, batch.payoffs[:, run])
        moves = [m for m in story.moves]
        assert len(moves) == batch.moves[:, :, run].sum()


def test_story_changes_chain_consistently(camp_taji):
    story = trace_run(camp_taji, 11, 123)
    state = dict(zip(camp_taji.state_names, camp_taji.state_initial.tolist()))
    for step in range(1, story.steps + 1):
        for mv in [m for m in story.moves if m.step == step]:
            for name, (before, after) in mv.changes.items():
                assert state[name] == before
                state[name] = after
        for name, (before, after) in story.step_changes.get(step, {}).items():
            assert state[name] == before
            state[name] = after


def test_cli_trace_prints_a_story_and_json(capsys):
    assert main(["trace", str(CAMP_TAJI), "--seed", "3", "--run", "7"]) == 0
    text = capsys.readouterr().out
    assert "Week 1" in text and "Outcome:" in text and "United States:" in text
    assert main(["trace", str(CAMP_TAJI), "--seed", "3", "--run", "7", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["run"] == 7 and data["moves"][0]["actor"] == "us"


def test_cli_trace_negative_run(capsys):
    assert main(["trace", str(CAMP_TAJI), "--run", "-1"]) == 2
    assert "--run must be between 0 and" in capsys.readouterr().err
    assert main(["trace", str(CAMP_TAJI), "--run", str(2**70)]) == 2


def test_a_run_does_not_depend_on_the_run_count(camp_taji):
    """Run 9000's story is the same inside 9,001 runs and inside 20,000 runs."""
    small = simulate_batch(camp_taji, 2, 2, 1, 9001).records
    large = simulate_batch(camp_taji, 2, 2, 1, 20_000).records
    i = 9000 - 2 * BLOCK_SIZE
    assert small.outcome[i] == large.outcome[i] and small.steps[i] == large.steps[i]
    np.testing.assert_array_equal(small.payoffs[:, i], large.payoffs[:, i])


OVERFLOW = """
horizon: 3
ladder: [low, high]
state: {x: 1e308}
actors: {a: {label: A}}
turn_order: [a]
options: {a: [{id: go, payoffs: {a: "1e308"}}]}
policies: {a: {kind: fixed, option: go}}
"""


def test_a_payoff_total_that_overflows_is_refused_not_printed_as_inf(tmp_path, capsys):
    """Each payoff is finite, their total is not: `trace --json` printed `Infinity` (no JSON)
    and `trace` "A inf"; now both say what `run` says (issue 13, silent garbage)."""
    path = tmp_path / "overflow.yaml"
    path.write_text(scenario_text(OVERFLOW))
    for extra in ([], ["--json"]):
        assert main(["trace", str(path), *extra]) == 2
        out, err = capsys.readouterr()
        assert "Infinity" not in out and " inf" not in out
        assert (
            err
            == "escalation trace: error: the payoffs of a overflow (a run's total is not finite)\n"
        )
    assert main(["run", str(path), "--runs", "10", "--no-charts"]) == 2
    assert "the payoffs of a overflow" in capsys.readouterr().err

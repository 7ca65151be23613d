"""`escalation play`: the game driven through piped input, robust at the keyboard, reproducible,
and compared honestly with the Monte Carlo distribution of the actor's own policy."""

from __future__ import annotations

import io
import os
import re
import select
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from sim.cli.main import main
from sim.engine.runner import run_monte_carlo
from sim.errors import SimulationError
from sim.model.loading import load_text
from sim.play.session import Game, simulate_policy, stream_reader
from sim.results import wilson_interval
from sim.solvers.prepare import prepare_model
from tests.conftest import CAMP_TAJI, ROOT, build, scenario_text

SMALL = """
summary: A strike, a militia that may fire back, and a ladder of three rungs.
step_label: week
horizon: 6
ladder: [calm, tense, war]
initial_rung: tense
state:
  quiet: {initial: 0, min: 0, integer: true, doc: Weeks without rockets}
  hits: {initial: 0, min: 0, integer: true, label: depot hits, doc: "Strikes that hit [the depot]"}
actors:
  us: {label: United States}
  kh: {label: "Militia [KH]"}
turn_order: [us, kh]
options:
  us:
    - id: strike
      label: "Strike [the depot]"
      doc: Hits about half the time.
      rung: tense
      payoffs: {us: -1}
      outcomes:
        - {id: hit, label: Depot hit, p: 0.5, effects: {add: {hits: 1}}, payoffs: {us: 2}}
        - {id: miss, label: Missed}
    - id: wait
      label: Wait and see
      requires: step >= 2
      rung: calm
  kh:
    - id: lie_low
      label: Lie low
    - id: fire
      label: Fire rockets
      effects: {set: {quiet: 0}}
      outcomes:
        - {id: spiral, label: Spiral, p: 0.3, rung: war}
        - {id: contained, label: Contained}
policies:
  us: {kind: fixed, option: strike}
  kh: {kind: logit, rationality: 1, utilities: {lie_low: 0, fire: "0.5 - hits"}}
every_step:
  effects: {add: {quiet: 1}}
outcomes:
  war: {when: rung >= 2, label: War, payoffs: {us: -10}}
  quiet: {when: quiet >= 3, label: Quiet restored, payoffs: {us: 5}}
"""


def small_model():
    return build(SMALL)


def play(
    model, actor: str, answers: str, seed: int = 3, compare_runs: int = 1000, width: int = 100
) -> tuple[int, str]:
    out = io.StringIO()
    game = Game(
        model, actor, seed, io.StringIO(answers), out, compare_runs=compare_runs, width=width
    )
    return game.play(), out.getvalue()


def test_a_whole_game_through_piped_input():
    status, text = play(small_model(), "us", "1\n" * 10)
    assert status == 0
    assert "You play United States" in text and "Week 1 of 6" in text
    assert "▶ 1 tense ◀ now" in text  # the ladder with the current rung highlighted
    assert "Weeks without rockets" in text and "depot hits" in text  # state labels and docs
    assert "Your options" in text and "1  Strike [the depot] → tense" in text
    assert "Militia [KH]: " in text  # the other actor's move is narrated (brackets kept)
    assert "The crisis is over" in text
    assert "How your line of play compares" in text and "Played 1,000 times" in text
    assert "Traceback" not in text


def test_same_seed_and_answers_replay_the_same_game():
    model = small_model()
    assert play(model, "us", "1\n2\n1\n2\n1\n2\n") == play(model, "us", "1\n2\n1\n2\n1\n2\n")
    assert play(model, "us", "1\n" * 6, seed=3)[1] != play(model, "us", "1\n" * 6, seed=4)[1]


def test_asking_for_details_never_changes_the_game():
    model = small_model()
    plain = play(model, "us", "1\n" * 6)[1]
    curious = play(model, "us", "?\n1\n?2\n1\n2?\ns\n1\n1\n1\n1\n1\n")[1]
    tail = plain[plain.index("The crisis is over") :]
    assert curious.endswith(tail)
    assert "Hits about half the time." in curious and "50.0%  Depot hit" in curious


def test_playing_the_doctrine_reproduces_run_0_of_the_monte_carlo():
    """The game is run 0 of the seed: playing the fixed policy's moves gives its exact result."""
    model = small_model()
    for seed in (1, 2, 3, 5, 8):
        text = play(model, "us", "1\n" * 10, seed=seed, compare_runs=500)[1]
        runs = simulate_policy(model, 500, seed, model.actor_index("us"))
        outcome = model.scenario.outcome_label(model.outcome_ids[runs.outcome[0]])
        assert (
            f"that policy's crisis {'ended in ' + outcome if outcome != 'Ongoing' else 'was'}"
            in text
        )
        payoff = re.search(r"Your payoff: (-?\d+(?:\.\d+)?)\. ", text).group(1)
        assert float(payoff) == pytest.approx(runs.payoffs[0], abs=0.005)


def test_simulate_policy_is_run_monte_carlo():
    model = small_model()
    runs = simulate_policy(model, 9000, 7, 0)
    assert runs.results.to_json() == run_monte_carlo(model, 9000, 7).to_json()
    assert runs.payoffs.shape == runs.outcome.shape == (9000,)
    assert runs.payoffs.mean() == pytest.approx(runs.results.payoff_mean[0])


def test_comparison_reports_the_wilson_interval_of_the_students_outcome():
    model = small_model()
    text = play(model, "us", "1\n" * 10, seed=3, compare_runs=3000, width=200)[1]
    outcome_line = next(line for line in text.splitlines() if "this happens in" in line)
    label = next(lab for lab in ("War", "Quiet restored", "Ongoing") if lab in outcome_line)
    runs = simulate_policy(model, 3000, 3, 0).results
    i = [model.scenario.outcome_label(o) for o in model.outcome_ids].index(label)
    lo, hi = wilson_interval(runs.outcome_counts[i], runs.runs)
    p = runs.probabilities[i]
    assert f"{100 * p:.1f}% ({100 * lo:.1f}%-{100 * hi:.1f}%)" in text
    assert "◀ yours" in text and "escalation run inline.yaml --runs 3000 --seed 3" in text


@pytest.mark.parametrize(
    "answers,reason",
    [("", "end of input"), ("1\n", "end of input"), ("q\n", "you quit"), ("x\nquit\n", "you quit")],
)
def test_leaving_early_ends_cleanly_with_one_line(answers, reason):
    status, text = play(small_model(), "us", answers)
    assert status == 0
    last = text.rstrip("\n").splitlines()[-1]
    assert last.startswith(f"Game over ({reason}): stopped in week ")
    assert "no outcome yet; your payoff so far" in last and "--seed 3" in last
    assert "The crisis is over" not in text and "Traceback" not in text


def test_ctrl_c_at_the_prompt_ends_cleanly():
    def interrupted(prompt: str) -> str:
        raise KeyboardInterrupt

    out = io.StringIO()
    status = Game(small_model(), "us", 3, interrupted, out, compare_runs=0).play()
    assert status == 130, "Ctrl-C in play exits 130, like every other command"
    assert out.getvalue().rstrip().splitlines()[-1].startswith("Game over (interrupted)")


def test_invalid_input_is_asked_again():
    status, text = play(small_model(), "us", "hello\n0\n7\n\n?9\n2\nstrike\n1\n1\n1\n1\n1\n")
    assert status == 0
    assert text.count("Please type a number from 1 to 2") == 4  # hello, 0, 7 and the empty line
    assert "There is no option 9" in text
    assert "Option 2 (Wait and see) is not available now: it needs step >= 2" in text
    # answers are echoed after the prompt, so a piped session reads like a terminal
    assert "Your move [1-2, ?N explains option N, s the state, q quits]: hello\n" in text
    assert "You (United States): Strike [the depot]" in text  # typed by id


def test_a_student_with_nothing_available_passes_without_a_prompt():
    model = build("""
        horizon: 2
        step_label: week
        ladder: [low, high]
        actors: {us: {label: US}, them: {label: Them}}
        turn_order: [us, them]
        options:
          us: [{id: act, label: Act, requires: step >= 2, rung: high}]
          them: [{id: wait, label: Wait}]
        policies:
          us: {kind: fixed, option: act}
          them: {kind: fixed, option: wait}
        """)
    status, text = play(model, "us", "1\n", compare_runs=100)
    assert status == 0
    week1 = text[text.index("Week 1 of 2") : text.index("Week 2 of 2")]
    assert "You have no available option: you pass." in week1 and "Your move" not in week1
    assert "You (US): Act" in text and "The crisis is over" in text


def test_scenario_text_is_never_read_as_markup():
    model = build(
        SMALL.replace("Militia [KH]", "Militia [bold red]x[/]").replace(
            "summary: A strike, a militia that may fire back, and a ladder of three rungs.",
            'summary: "[link=http://example.com]A strike[/link] and [/] a stray tag"',
        )
    )
    text = play(model, "us", "1\n" * 10, compare_runs=100)[1]
    assert "Militia [bold red]x[/]" in text
    assert "[link=http://example.com]A strike[/link] and [/] a stray tag" in text


def test_playing_a_later_actor_of_the_bundled_scenario():
    model = prepare_model(load_text(CAMP_TAJI.read_text(), str(CAMP_TAJI)))
    status, text = play(model, "kh", "1\n" * 30, seed=11, compare_runs=500)
    assert status == 0 and "You play Kata'ib Hezbollah" in text
    first_prompt = text.index("Your move")
    assert "United States: " in text[:first_prompt]  # the US moved before KH's first turn
    assert "The crisis is over" in text and "Teaching notes" in text


def test_stream_reader_echoes_and_raises_eof():
    echo = io.StringIO()
    read = stream_reader(io.StringIO("a\r\nb"), echo)
    assert read("> ") == "a" and read("> ") == "b"
    with pytest.raises(EOFError):
        read("> ")
    assert echo.getvalue() == "> a\n> b\n> "


# --- the command -----------------------------------------------------------------------------


def test_cli_play_with_piped_stdin(monkeypatch, capsys):
    monkeypatch.setattr(sys, "stdin", io.StringIO("1\n" * 30))
    assert (
        main(
            [
                "play",
                "camp_taji_2020",
                "--as",
                "United States",
                "--seed",
                "5",
                "--compare-runs",
                "2000",
            ]
        )
        == 0
    )
    out = capsys.readouterr()
    assert "You play United States" in out.out and "The crisis is over" in out.out
    assert "Played 2,000 times" in out.out and out.err == ""


def test_cli_play_without_seed_prints_the_seed_to_replay(monkeypatch, capsys):
    monkeypatch.setattr(sys, "stdin", io.StringIO(""))
    assert main(["play", str(CAMP_TAJI), "--as", "us"]) == 0
    out = capsys.readouterr().out
    seed = int(out.split("Seed ")[1].split(":")[0])
    assert f"replay this crisis with --seed {seed}" in out
    assert out.rstrip().splitlines()[-1].startswith("Game over (end of input)")


@pytest.mark.parametrize(
    "args,message",
    [
        (["--as", "usa"], "unknown actor 'usa'"),
        (["--as", "us", "--set", "nonsense=1"], "unknown parameter 'nonsense'"),
        (["--as", "us", "--compare-runs", "-5"], "must be positive"),
    ],
)
def test_cli_play_usage_errors_exit_2(capsys, args, message):
    assert main(["play", str(CAMP_TAJI), *args]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_cli_play_idle_actor_is_a_usage_error(tmp_path, capsys):
    path = tmp_path / "idle.yaml"
    path.write_text(scenario_text(SMALL.replace("actors:\n", "actors:\n  idle: {label: Idle}\n")))
    assert main(["play", str(path), "--as", "idle"]) == 2
    assert "never moves" in capsys.readouterr().err


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(ROOT), "COLUMNS": "80"}


def test_real_stdin_pipe_matches_the_in_process_game(monkeypatch, capsys):
    """End to end through a real pipe; identical to the same game driven in process."""
    answers = "2\n1\n?1\n1\n" + "1\n" * 30
    args = ["play", str(CAMP_TAJI), "--as", "us", "--seed", "9", "--compare-runs", "1000"]
    proc = subprocess.run(
        [sys.executable, "-m", "sim", *args],
        input=answers,
        text=True,
        capture_output=True,
        cwd=ROOT,
        env=_env(),
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""
    monkeypatch.setattr(sys, "stdin", io.StringIO(answers))
    monkeypatch.setenv("COLUMNS", "80")
    assert main(args) == 0
    assert proc.stdout == capsys.readouterr().out


@pytest.mark.skipif(sys.platform == "win32", reason="SIGINT to a child process is POSIX-only")
def test_ctrl_c_in_a_real_process_exits_130_without_traceback():
    proc = subprocess.Popen(
        [sys.executable, "-m", "sim", "play", str(CAMP_TAJI), "--as", "us", "--seed", "1"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=ROOT,
        env=_env(),
    )
    try:
        seen = b""
        deadline = time.monotonic() + 60
        while b"Your move" not in seen:  # wait for the first prompt, then press Ctrl-C
            assert time.monotonic() < deadline, seen.decode(errors="replace")
            ready, _, _ = select.select([proc.stdout], [], [], 1)
            if ready:
                chunk = os.read(proc.stdout.fileno(), 65536)
                assert chunk, "the game ended before its first prompt"
                seen += chunk
        proc.send_signal(signal.SIGINT)
        rest, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, err.decode()
    text = (seen + rest).decode()
    assert text.rstrip().splitlines()[-1].startswith("Game over (interrupted): stopped in week 1")
    assert b"Traceback" not in err and b"Traceback" not in rest


def test_payoff_rank_counts_ties_separately():
    from sim.play.session import Comparison

    model = small_model()
    results = run_monte_carlo(model, 100, 1)
    cmp = Comparison(results, np.array([1.0, 2.0, 2.0, 3.0]), 0, 2.0)
    assert cmp.payoff_rank == (0.25, 0.5)


def test_a_payoff_total_that_overflows_stops_the_game_with_2(tmp_path, capsys):
    """Not "your payoff so far: inf": the game stops as `run` does (issue 13)."""
    path = tmp_path / "overflow.yaml"
    path.write_text(
        scenario_text(
            "horizon: 3\nladder: [low, high]\nactors: {a: {label: A}}\nturn_order: [a]\n"
            'options: {a: [{id: go, payoffs: {a: "1e308"}}, {id: stay}]}\n'
            "policies: {a: {kind: fixed, option: go}}\n"
        )
    )
    answers = iter(["1"] * 5)
    model = prepare_model(load_text(path.read_text(), str(path)))
    out = io.StringIO()
    game = Game(model, "a", 1, lambda prompt: next(answers), out, compare_runs=0)
    with pytest.raises(SimulationError, match="the payoffs of a overflow"):
        game.play()
    assert not re.search(r"\binf\b", out.getvalue())
    proc = subprocess.run(
        [sys.executable, "-m", "sim", "play", str(path), "--as", "a", "--compare-runs", "0"],
        input=b"1\n1\n1\n",
        capture_output=True,
        cwd=ROOT,
        timeout=120,
    )
    assert proc.returncode == 2 and not re.search(rb"\binf\b", proc.stdout), proc.stderr.decode()
    assert (
        proc.stderr
        == b"escalation play: error: the payoffs of a overflow (a run's total is not finite)\n"
    )

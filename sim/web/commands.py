"""The command lines a page shows, so that a student can get the same numbers in a terminal."""

from __future__ import annotations

import shlex

from sim.web.store import GameRow


def _number(x: float) -> str:
    """A float as the shortest text that reads back the same (1.0 -> '1')."""
    text = repr(float(x))
    return text[:-2] if text.endswith(".0") else text


def _sets(overrides: dict[str, float]) -> str:
    return "".join(f" --set {name}={_number(v)}" for name, v in sorted(overrides.items()))


def play_command(file: str, row: GameRow, compare_runs: int) -> str:
    """The `escalation play` command that plays the same crisis, with the same debrief, in a
    terminal."""
    return (
        f"escalation play {shlex.quote(file)} --as {row.actor} --seed {row.seed}"
        + _sets(row.overrides)
        + f" --compare-runs {compare_runs}"
    )


def run_command(file: str, seed: int, runs: int, overrides: dict[str, float]) -> str:
    """The `escalation run` command of the scenario's own policies, as the debrief used them."""
    return f"escalation run {shlex.quote(file)} --runs {runs} --seed {seed}" + _sets(overrides)

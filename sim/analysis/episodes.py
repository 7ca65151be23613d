"""Episodes simulated by the Monte Carlo engine, recorded move by move as a log would code them.

`simulate_observations` runs the lockstep engine with an observer that notes every run's option
and branch at every (step, turn) and where it ended, as the arrays of
sim/solvers/likelihood.Observations: what a fully observed episode log of those runs would say.
Parameter recovery (tests/analysis/test_fit.py), the parametric bootstrap of `fit` and the
predictive distributions of `check` are built on it. `to_log_text` writes such arrays as an
episode log (DESIGN.md section 8.2).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from sim.engine.batch import Observer, simulate_batch
from sim.engine.streams import BLOCK_SIZE
from sim.format.episode_log import HEADER
from sim.format.episode_log import PASS as PASS_CELL
from sim.model.compiled import PASS, Model
from sim.solvers.likelihood import UNSEEN, Observations

NOT_REACHED = -4
"""Option code of a (step, turn) a run never reached (it had ended)."""


@dataclass(frozen=True)
class Simulated:
    """Simulated episodes: the observations a full log would hold, and each run's outcome and
    peak rung (which a log does not record)."""

    observations: Observations
    outcome: np.ndarray
    peak_rung: np.ndarray


class _Recorder(Observer):
    """Notes each run's moves and branches (runs are global indices from 0)."""

    def __init__(self, model: Model, runs: int):
        self.order = list(model.turn_order)
        self.step, self.next_turn, self.turn = 0, 0, 0
        shape = (model.horizon, len(model.turn_order), runs)
        self.option = np.full(shape, NOT_REACHED, dtype=np.int64)
        self.branch = np.full(shape, -1, dtype=np.int64)
        self.last_step = np.zeros(runs, dtype=np.int64)
        self.last_turn = np.zeros(runs, dtype=np.int64)

    def chose(self, step: int, actor: int, runs: np.ndarray, chosen: np.ndarray) -> None:
        if step != self.step:
            self.step, self.next_turn = step, 0
        turn = self.order.index(actor, self.next_turn)  # an actor may move twice in a step
        self.turn, self.next_turn = turn, turn + 1
        self.option[step - 1, turn, runs] = chosen
        self.last_step[runs] = step
        self.last_turn[runs] = turn

    def branched(
        self, step: int, actor: int, option: int, runs: np.ndarray, branch: np.ndarray
    ) -> None:
        self.branch[step - 1, self.turn, runs] = branch


def simulate_observations(model: Model, episodes: int, seed: int) -> Simulated:
    """`episodes` runs of `model` from `seed` (the runs of `escalation run --seed SEED`),
    recorded as a fully observed log."""
    if episodes < 1:
        raise ValueError("episodes must be at least 1")
    recorder = _Recorder(model, episodes)
    blocks = math.ceil(episodes / BLOCK_SIZE)
    out = simulate_batch(model, seed, 0, blocks, episodes, observer=recorder, record_moves=False)
    option = np.where(recorder.option == NOT_REACHED, UNSEEN, recorder.option)
    obs = Observations(
        option=option,
        branch=recorder.branch,
        last_step=recorder.last_step,
        last_turn=recorder.last_turn,
        lines={},
    )
    rec = out.records
    return Simulated(obs, rec.outcome.astype(np.int64), rec.peak_rung.astype(np.int64))


def reached(obs: Observations) -> np.ndarray:
    """(steps, turns, episodes) whether each episode's log holds a row for that move."""
    h, nt, _ = obs.option.shape
    pos = np.arange(h)[:, None] * nt + np.arange(nt)[None, :]
    last = (obs.last_step - 1) * nt + obs.last_turn
    return pos[:, :, None] <= last[None, None, :]


def to_log_text(model: Model, obs: Observations, comment: str = "") -> str:
    """The observations as an episode log (CSV, DESIGN.md section 8.2), with a `# scenario:`
    line and `comment` as further comment lines."""
    lines = [f"# scenario: {model.scenario.id}"]
    lines += [f"# {text}".rstrip() for text in comment.splitlines()]
    lines.append(",".join(HEADER))
    inside = reached(obs)
    for e in range(obs.episodes):
        for s in range(int(obs.last_step[e])):
            for t, actor in enumerate(model.turn_order):
                if not inside[s, t, e]:
                    break
                code, branch = int(obs.option[s, t, e]), int(obs.branch[s, t, e])
                option = branch_id = ""
                if code == PASS:
                    option = PASS_CELL
                elif code >= 0:
                    chosen = model.options[actor][code]
                    option = chosen.id
                    if branch >= 0:
                        branch_id = chosen.branches[branch].id
                lines.append(f"{e + 1},{s + 1},{model.actors[actor]},{option},{branch_id}")
    return "\n".join(lines) + "\n"


def blanked(obs: Observations, fraction: float, seed: int) -> Observations:
    """A copy with about `fraction` of the moves made unobserved (option and branch empty)."""
    rng = np.random.default_rng(seed)
    hide = rng.random(obs.option.shape) < fraction
    return Observations(
        option=np.where(hide, UNSEEN, obs.option),
        branch=np.where(hide, -1, obs.branch),
        last_step=obs.last_step,
        last_turn=obs.last_turn,
        lines=obs.lines,
    )

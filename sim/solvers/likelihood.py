"""The exact likelihood of episode logs: the exact solver's forward pass, conditioned on the log.

Every episode of a log (sim/format/episode_log.py) starts as one weighted state (probability 1)
tagged with its number, and all episodes advance together through the step of
sim/model/step.py as the exact solver advances a distribution: choices, outcome branches and
enumerable draws split states into weighted copies, identical states of one episode merge. The
log conditions the pass: at each move, the copies of an episode whose option (or branch) differs
from the observed one are dropped; an empty cell drops nothing, so an unobserved move or branch
is summed over (integrated out). What is left of an episode's probability where its log ends is
its likelihood:

- states that reach a terminal outcome before the log's last move are dropped (the log goes on);
- after the last move, states that end there count (after every_step too, when the last move was
  the last actor's of its step); states still live are dropped, unless the log reached the
  horizon, where they end as `end` and count.

So an episode's likelihood is the sum, over every completion of its empty cells, of the product
of the choice, branch and draw probabilities along the path, times the probability that the
crisis ended where the log ends. `poisson` draws are enumerated up to the value whose upper
tail is below POISSON_TAIL; the probability left out is carried per episode as `dropped`, a
bound: the true likelihood lies in [likelihood, likelihood + dropped]. `uniform` and `normal`
draws cannot be enumerated: the exact pass refuses them at their file:line:col, and the particle
filter samples them (one value per state, common random numbers).

Hand check (tests/solvers/test_likelihood.py, "coin" scenario): actor a plays `go` with logit
probability e^1 / (e^1 + e^0) = 0.7310585786; `go` succeeds with p = 0.3, which ends the crisis.
A one-move log `1,1,a,go,success` has likelihood 0.7310585786 * 0.3 = 0.2193175736.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sim.errors import Problem, ScenarioError, SimulationError
from sim.format.episode_log import PASS as PASS_CELL
from sim.format.episode_log import EpisodeLog
from sim.model.compiled import NOT_YET, PASS, CompiledOption, CompiledPolicy, Located, Model
from sim.model.inversion import invert
from sim.model.step import advance, first_terminal
from sim.solvers.exact import (
    DEFAULT_MAX_MEMORY,
    DEFAULT_MAX_STATES,
    ROW_FACTOR,
    SUPPORTED_POLICIES,
    _DistPart,
    _NeedDraw,
    _Solver,
    _vector,
)
from sim.solvers.exact_states import Dist, merge
from sim.solvers.limits import check_solved_horizon

CONTINUOUS = ("uniform", "normal")
"""Draws the exact pass cannot enumerate: the particle filter samples them."""
UNSEEN = -3
"""Option code of a move not observed (every code is then kept); -1 is PASS, >= 0 an option."""
MAX_OBSERVATION_BYTES = 512 << 20
"""Largest log held as (steps x turns x episodes) arrays of codes."""
POISSON_TAIL = 1e-15
"""A `poisson` draw is enumerated up to the value above which its probability is below this."""
MAX_POISSON_LAMBDA = 1_000.0
"""Largest `poisson` mean enumerated (its values would otherwise number in the thousands)."""


@dataclass(frozen=True)
class Observations:
    """A log as arrays over (step - 1, turn, episode): the observed option code (UNSEEN, PASS
    or an option index) and branch index (-1: not observed), and where each episode ends."""

    option: np.ndarray
    branch: np.ndarray
    last_step: np.ndarray
    last_turn: np.ndarray
    lines: dict[tuple[int, int, int], int]
    """(episode index, step, turn) -> line of the log holding that move."""

    @property
    def episodes(self) -> int:
        return int(self.last_step.shape[0])


@dataclass(frozen=True)
class Likelihood:
    """The likelihood of each episode of a log under one model."""

    likelihood: np.ndarray
    """(episodes,) probability of each episode's observed moves and end."""
    dropped: np.ndarray
    """(episodes,) probability left out by enumerating `poisson` draws only up to a tail of
    POISSON_TAIL: the true likelihood is at most likelihood + dropped."""
    impossible_at: dict[int, int]
    """Episode index -> the log line of the move (or, -1, the end) that has probability zero."""
    states: int
    """Distinct weighted states the pass went through (its work)."""
    outcome: np.ndarray
    """(episodes, outcomes) probability of the log and each outcome: divided by `likelihood`,
    each outcome's probability given what the log shows."""
    peak: np.ndarray
    """(episodes, rungs) the same for the peak rung."""
    estimated: bool = False
    """Whether the particle filter cut or sampled anything: the figures are then estimates."""

    @property
    def loglik(self) -> float:
        """The log-likelihood of the whole log (-inf if an episode is impossible)."""
        with np.errstate(divide="ignore"):
            return float(np.log(self.likelihood).sum())

    @property
    def per_episode(self) -> np.ndarray:
        with np.errstate(divide="ignore"):
            return np.log(self.likelihood)

    @property
    def error_bound(self) -> float:
        """Largest amount by which `loglik` may fall short of the true log-likelihood, from the
        truncated `poisson` draws (0 when there are none)."""
        if not self.dropped.any():
            return 0.0
        with np.errstate(divide="ignore", invalid="ignore"):
            ratio = np.where(self.dropped > 0, self.dropped / self.likelihood, 0.0)
        return float(np.log1p(ratio).sum())


def observations(model: Model, log: EpisodeLog) -> Observations:
    """The log's cells as codes of `model` (the log was read against the model's scenario)."""
    n_ep, n_turns = len(log.episodes), len(model.turn_order)
    size = 2 * 8 * model.horizon * n_turns * n_ep
    if size > MAX_OBSERVATION_BYTES:
        message = (
            f"the log's {n_ep:,} episodes over the scenario's {model.horizon:,} steps would take "
            f"{size / (1 << 30):,.1f} GiB as arrays, more than the limit of "
            f"{MAX_OBSERVATION_BYTES >> 20} MiB: split the log into several files"
        )
        raise ScenarioError([Problem(log.file, 1, 1, message)])
    option = np.full((model.horizon, n_turns, n_ep), UNSEEN, dtype=np.int64)
    branch = np.full((model.horizon, n_turns, n_ep), -1, dtype=np.int64)
    last_step = np.zeros(n_ep, dtype=np.int64)
    last_turn = np.zeros(n_ep, dtype=np.int64)
    lines: dict[tuple[int, int, int], int] = {}
    for e, episode in enumerate(log.episodes):
        for mv in episode.moves:
            lines[(e, mv.step, mv.turn)] = mv.line
            if mv.option is None:
                continue
            if mv.option == PASS_CELL:
                option[mv.step - 1, mv.turn, e] = PASS
                continue
            menu = model.options[mv.actor]
            chosen = next(o for o in menu if o.id == mv.option)
            option[mv.step - 1, mv.turn, e] = chosen.index
            if mv.branch is not None:
                branch[mv.step - 1, mv.turn, e] = next(
                    j for j, b in enumerate(chosen.branches) if b.id == mv.branch
                )
        last = episode.moves[-1]
        last_step[e], last_turn[e] = last.step, last.turn
    return Observations(option, branch, last_step, last_turn, lines)


def likelihood(
    model: Model,
    obs: Observations,
    particles: int | None = None,
    seed: int = 1,
    max_states: int = DEFAULT_MAX_STATES,
    max_memory: int = DEFAULT_MAX_MEMORY,
) -> Likelihood:
    """Each episode's likelihood under `model`: exact, or with `particles`, a particle filter's
    unbiased estimate (its resampling uniforms fixed by `seed`: common random numbers). Raises
    ScenarioError, located, where the model cannot be enumerated: a continuous draw, too many
    states, an unsupported policy."""
    solver = _LogSolver(model, obs, max_states, max_memory, particles, seed)
    with np.errstate(all="ignore"):
        solver.solve()
    return solver.result()


class _LogSolver(_Solver):
    """The exact solver, conditioned on observed moves (see the module docstring)."""

    def __init__(
        self,
        model: Model,
        obs: Observations,
        max_states: int,
        max_memory: int,
        particles: int | None = None,
        seed: int = 1,
    ):
        super().__init__(model, max_states, max_memory)
        self.obs = obs
        self.particles, self.seed = particles, seed
        self.draws = self.cuts = 0
        self.resampled = self.sampled = False
        self.integral = [*self.integral, True]  # the episode tag is a key column
        self.row_bytes += 8
        n_ep, nt = obs.episodes, len(model.turn_order)
        self.n_turns = nt
        self.lik = np.zeros(n_ep)
        self.dropped = np.zeros(n_ep)
        self.outcome_mass = np.zeros((n_ep, len(model.outcome_ids)))
        self.peak_mass = np.zeros((n_ep, model.n_rungs))
        end = (obs.last_step - 1) * (nt + 1) + obs.last_turn
        self.end_pos = end
        """Position of each episode's last move (moves of step s at (s - 1) * (turns + 1) +
        turn, its every_step at (s - 1) * (turns + 1) + turns)."""
        self.stop_pos = np.where(obs.last_turn == nt - 1, end + 1, end)
        """The last position after which the episode may end."""
        self.horizon_ok = (obs.last_step == model.horizon) & (obs.last_turn == nt - 1)
        self.open = np.ones(n_ep, dtype=bool)
        self.impossible_at: dict[int, int] = {}

    def solve(self) -> None:
        m = self.m
        check_solved_horizon(m, "the likelihood of a log")
        for a, policy in enumerate(m.policies):
            if policy is not None and policy.kind not in SUPPORTED_POLICIES and m.options[a]:
                raise self._refuse(
                    ("policies", m.actors[a]),
                    f"the likelihood of a log cannot be computed for '{policy.kind}' policies "
                    f"(actor {m.actors[a]}); it handles {', '.join(SUPPORTED_POLICIES)}",
                )
        n_ep, n_act = self.obs.episodes, len(m.actors)
        self.d = Dist(
            np.repeat(m.state_initial[:, None], n_ep, axis=1),
            np.full(n_ep, m.initial_rung, dtype=np.int64),
            np.full(n_ep, m.initial_rung, dtype=np.int64),
            np.full((m.n_last_rows, n_ep), NOT_YET, dtype=np.int64),
            np.ones(n_ep),
            np.zeros((n_act, n_ep)),
            np.zeros((n_act, n_ep)),
            np.arange(n_ep, dtype=np.int64),
        )
        self._count(self.d, "the start")
        advance(self)
        self._close(np.flatnonzero(self.open))

    def begin_turn(self, step: int, turn: int, actor: int, move_number: int) -> None:
        super().begin_turn(step, turn, actor, move_number)
        self.draws = self.cuts = 0  # random offsets depend on the position, not on the history

    @property
    def pos(self) -> int:
        return (self.step - 1) * (self.n_turns + 1) + self.turn

    # --- conditioning on the log ------------------------------------------------------------

    def _keep(self, d: Dist, allowed: np.ndarray) -> Dist:
        """The states of `d` whose episode allows them (allowed: per episode, per state)."""
        if allowed.all():
            return d
        return d.take(np.flatnonzero(allowed))

    def _option_allowed(self, d: Dist, code: int) -> np.ndarray:
        seen = self.obs.option[self.step - 1, self.turn].take(d.tag)
        return (seen == UNSEEN) | (seen == code)

    def choose(
        self,
        part: _DistPart,
        actor: int,
        policy: CompiledPolicy,
        available: np.ndarray | None,
        inputs: np.ndarray | None,
        move_number: int,
    ) -> list[tuple[int, _DistPart]]:
        out = []
        for code, piece in super().choose(part, actor, policy, available, inputs, move_number):
            kept = self._keep(piece.d, self._option_allowed(piece.d, code))
            if kept.n:
                out.append((code, _DistPart(self, kept)))
        return out

    def played(self, actor: int, code: int, parts: list[_DistPart]) -> None:
        if not self.counted:  # no policy or no options: everyone passes, as the log must say
            parts = [
                _DistPart(self, self._keep(p.d, self._option_allowed(p.d, PASS))) for p in parts
            ]
        if self.particles is not None:  # keep a move's pieces near the cap as they are made
            parts = [_DistPart(self, self._resampled(p.d)) for p in parts]
        super().played(actor, code, parts)

    def branches(self, part: _DistPart, actor: int, option: CompiledOption):
        out = []
        for j, sub in super().branches(part, actor, option):
            seen = self.obs.branch[self.step - 1, self.turn].take(sub.d.tag)
            kept = self._keep(sub.d, (seen < 0) | (seen == j))
            if kept.n:
                out.append((j, _DistPart(self, kept)))
        return out

    def moved(self, actor: int) -> None:
        if not self.pieces:  # every state of the move was dropped: no episode fits the log
            self.pieces = [self.d.take(np.arange(0))]
        super().moved(actor)
        self._note_vanished()
        self._resample()

    def stepped(self, part: _DistPart) -> None:
        super().stepped(part)  # every_step drops no state: nothing can vanish here
        self._resample()

    def _resample(self) -> None:
        """Particle filter: an episode holding more than `particles` states keeps `particles`
        of them, drawn by systematic resampling in proportion to their probability, each with
        an equal share of the episode's probability (copies of one state merge again). The
        uniform offset of each episode depends only on the seed and the position in the game,
        so nearby parameter values resample alike (common random numbers)."""
        if self.particles is not None:
            self.d = self._resampled(self.d)

    def _resampled(self, d: Dist) -> Dist:
        """`d` with each episode cut to `particles` states (see `_resample`)."""
        cap = self.particles
        if cap is None or d.n <= cap:
            return d
        n_ep = self.obs.episodes
        over = np.bincount(d.tag, minlength=n_ep) > cap
        over &= self.end_pos > self.pos  # at its last move an episode keeps every state
        if not over.any():
            return d
        self.resampled = True
        chosen = over.take(d.tag)
        rows = np.flatnonzero(chosen)
        rows = rows[np.argsort(d.tag.take(rows), kind="stable")]
        tag, w = d.tag.take(rows), d.w.take(rows)
        episodes = np.flatnonzero(over)
        first = np.searchsorted(tag, episodes)
        after = np.searchsorted(tag, episodes, side="right")
        cum = np.cumsum(w)
        before = cum.take(first) - w.take(first)
        total = cum.take(after - 1) - before
        self.cuts += 1
        offset = np.random.default_rng((self.seed, self.pos, self.cuts)).random(n_ep)
        offset = offset.take(episodes)
        points = (
            before[:, None] + (np.arange(cap)[None, :] + offset[:, None]) / cap * total[:, None]
        )
        pick = np.searchsorted(cum, points.ravel(), side="right")
        pick = np.clip(pick, np.repeat(first, cap), np.repeat(after - 1, cap))
        share = np.repeat(total / cap, cap) / np.maximum(w.take(pick), np.finfo(float).tiny)
        resampled = d.take(rows.take(pick), share)
        return merge([d.take(np.flatnonzero(~chosen)), resampled], self.integral)

    def _note_vanished(self, after: bool = False) -> None:
        """Remember where an open episode has no probability left: at this move (its
        observation ruled out every state), or, `after` a terminal check that ended every
        state early, at the episode's next row (the log goes on where the crisis cannot)."""
        mass = np.bincount(self.d.tag, weights=self.d.w, minlength=self.obs.episodes)
        gone = self.open & (mass <= 0) & (self.lik <= 0) & (self.end_pos >= self.pos)
        step, turn = self.step, self.turn
        if after:
            step, turn = (step, turn + 1) if turn + 1 < self.n_turns else (step + 1, 0)
        for e in np.flatnonzero(gone):
            if int(e) not in self.impossible_at:
                self.impossible_at[int(e)] = self.obs.lines.get((int(e), step, turn), -1)

    # --- where episodes end -----------------------------------------------------------------

    def check_terminals(self, weight: float) -> bool:
        d, pos = self.d, self.pos
        if self.m.terminals and d.n:
            part, outcome = first_terminal(self.everyone())
            d = part.d
            done = outcome >= 0
            if done.any():
                ended = np.flatnonzero(done)
                tag = d.tag.take(ended)
                counts = (self.end_pos.take(tag) <= pos) & (pos <= self.stop_pos.take(tag))
                rows = ended[counts]
                self._ended(d.tag.take(rows), d.w.take(rows), outcome.take(rows), d.peak.take(rows))
                d = d.take(np.flatnonzero(~done))
                self.d = d
                self._note_vanished(after=True)
        closing = np.flatnonzero(self.open & (self.stop_pos == pos) & ~self.horizon_ok)
        if closing.size:
            self._close(closing)
            d = d.take(np.flatnonzero(self.open.take(d.tag)))
        self.d = d
        return d.n > 0

    def _close(self, episodes: np.ndarray) -> None:
        """Episodes past their log's end: any still without probability is impossible."""
        self.open[episodes] = False
        for e in episodes:
            if self.lik[e] <= 0 and int(e) not in self.impossible_at:
                self.impossible_at[int(e)] = -1

    def end_step(self, step: int) -> None:
        """Nothing to record: the pass keeps only what the likelihood needs."""

    def finish_horizon(self, weight: float) -> None:
        d = self.d
        self._ended(d.tag, d.w, np.full(d.n, self.m.end_outcome), d.peak)
        self.d = d.take(np.arange(0))

    def _ended(self, tag: np.ndarray, w: np.ndarray, outcome: np.ndarray, peak: np.ndarray) -> None:
        """States that end where their episode's log ends: they make its likelihood."""
        n_ep = self.obs.episodes
        self.lik += np.bincount(tag, weights=w, minlength=n_ep)
        n_out, n_rungs = self.outcome_mass.shape[1], self.peak_mass.shape[1]
        self.outcome_mass += np.bincount(
            tag * n_out + outcome, weights=w, minlength=n_ep * n_out
        ).reshape(n_ep, n_out)
        self.peak_mass += np.bincount(
            tag * n_rungs + peak, weights=w, minlength=n_ep * n_rungs
        ).reshape(n_ep, n_rungs)

    # --- draws -----------------------------------------------------------------------------

    def _enumerate(self, e: Located, need: _NeedDraw, d: Dist):
        if need.kind in CONTINUOUS and self.particles is not None:
            return self._sample(need, d)
        if need.kind != "poisson":
            return super()._enumerate(e, need, d)
        lam = _vector(need.args[0], d.n)
        if not np.all(np.isfinite(lam)) or np.any(lam < 0) or np.any(lam > MAX_POISSON_LAMBDA):
            bad = lam[~(np.isfinite(lam) & (lam >= 0) & (lam <= MAX_POISSON_LAMBDA))][0]
            raise SimulationError(
                f"{e.where}: the likelihood enumerates poisson(lam) for lam in [0, "
                f"{MAX_POISSON_LAMBDA:g}], got {float(bad):g} at step {self.step}"
            )
        from scipy.stats import poisson

        top = poisson.isf(POISSON_TAIL, lam)
        top = np.where(lam > 0, np.maximum(top, 0), 0).astype(np.int64)
        rows = float(top.sum() + d.n)
        if rows > ROW_FACTOR * self.max_states:
            message = (
                f"the likelihood cannot be computed exactly: enumerating this poisson() draw at "
                f"step {self.step} takes {int(rows):,} weighted copies of {d.n:,} states, more "
                f"than {ROW_FACTOR} x the state limit of {self.max_states:,} (a higher "
                "--max-states)"
            )
            raise ScenarioError([self._draw_problem(e, need, message)]) from None
        self._memory(
            int(rows),
            f"step {self.step}",
            0,
            f"enumerating a poisson() draw into {int(rows):,} weighted states",
        )
        sizes = top + 1
        src = np.repeat(np.arange(d.n), sizes)
        k = np.arange(src.size) - np.repeat(np.cumsum(sizes) - sizes, sizes)
        probs = poisson.pmf(k, lam[src])
        tail = poisson.sf(top, lam)
        self.dropped += np.bincount(d.tag, weights=d.w * tail, minlength=self.obs.episodes)
        keep = probs > 0
        return src[keep], k[keep].astype(float), probs[keep]

    def _sample(self, need: _NeedDraw, d: Dist):
        """The particle filter's draw of a `uniform` or `normal`: one value per state, by
        inversion of a uniform fixed by the seed, the position in the game, the draw and the
        state's place (common random numbers: the value moves smoothly with the parameters)."""
        self.draws += 1
        self.sampled = True
        rng = np.random.default_rng((self.seed, self.pos, need.index, self.draws))
        values = invert(need.kind, rng.random(d.n), [_vector(a, d.n) for a in need.args])
        return np.arange(d.n), values, np.ones(d.n)

    def result(self) -> Likelihood:
        return Likelihood(
            likelihood=self.lik.copy(),
            dropped=self.dropped.copy(),
            impossible_at=dict(sorted(self.impossible_at.items())),
            states=int(self.total_states),
            outcome=self.outcome_mass.copy(),
            peak=self.peak_mass.copy(),
            estimated=self.resampled or self.sampled,
        )


def impossible_problem(log: EpisodeLog, lik: Likelihood, where: str) -> ScenarioError:
    """A located error for the first impossible episodes of a log (at `where`, e.g. 'the
    scenario's parameter values'). Under the particle filter a zero may only mean that no kept
    state fitted the log, and the message says so."""
    problems = []
    for e, line in list(lik.impossible_at.items())[:5]:
        episode = log.episodes[e]
        at_end = line < 0
        line = episode.moves[-1].line if at_end else line
        if lik.estimated:
            what = "its end" if at_end else "this move"
            message = (
                f"episode {episode.number}: the particle filter estimates probability 0 for "
                f"{what} under {where}: no state it kept fits the log here (use more "
                "--particles, or --particles 0 for the exact pass)"
            )
        elif at_end:
            message = (
                f"episode {episode.number} cannot end where its log ends under {where}: "
                "no terminal outcome can hold there (probability 0)"
            )
        else:
            message = (
                f"episode {episode.number}: this move has probability 0 under {where} (it is "
                "unavailable, never chosen, or the crisis has ended by then)"
            )
        problems.append(Problem(log.file, line, 1, message))
    return ScenarioError(problems)

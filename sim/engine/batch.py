"""Lockstep Monte Carlo: all runs of a batch advance together as numpy arrays.

Active runs are kept compacted (finished runs are written to the output records and dropped), so
every array operation touches only live runs. There is no per-run Python loop here.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from sim.engine.streams import BLOCK_SIZE, RandomField, block_runs
from sim.model.compiled import (
    CHOICE_SITE,
    NOT_YET,
    PASS,
    CompiledOption,
    CompiledPolicy,
    Model,
)
from sim.model.policies import choose, sample
from sim.model.semantics import checked_branch_probabilities, terminals_to_check
from sim.model.step import acting_policy, advance, ended_rows, record_move, terminal_payoffs
from sim.model.tabulated import tabulated_policies

ALL = slice(None)
_CHOOSER = CompiledPolicy("chooser")
"""Marks an actor whose moves a `Chooser` makes (e.g. a student at the keyboard)."""
LANES = 8
"""Interleaved histograms of each count (a run's lane is its first position modulo 8): one
histogram's few cells, incremented by run after run, make each increment wait for the last."""
UNNAMED_SITE = 2**31 - 1
"""Site of a draw from an expression compiled without site numbers (not by compile_model)."""


class Observer:
    """Hooks called as a batch is simulated (for `trace` and `play`); all do nothing by default.

    `runs` are global run indices; `before`/`after` are (state vars, runs) matrices.
    """

    def deciding(
        self, step: int, actor: int, runs: np.ndarray, x: np.ndarray, rung: np.ndarray, last
    ) -> None:
        """Just before `actor` chooses: each run's state, rung and `last` matrix (one row per
        actor, then the view channels), from which its view follows (sim/model/views.py)."""

    def chose(self, step: int, actor: int, runs: np.ndarray, chosen: np.ndarray) -> None:
        """Each run's chosen option index (PASS = -1) for `actor`."""

    def branched(
        self, step: int, actor: int, option: int, runs: np.ndarray, branch: np.ndarray
    ) -> None:
        """The outcome branch drawn in each run that played `option`."""

    def moved(
        self,
        step: int,
        actor: int,
        runs: np.ndarray,
        before: np.ndarray,
        after: np.ndarray,
        rung: np.ndarray,
        payoffs: np.ndarray,
    ) -> None:
        """State, rung and accumulated payoffs after `actor`'s move, with the state before it."""

    def stepped(
        self,
        step: int,
        runs: np.ndarray,
        before: np.ndarray,
        after: np.ndarray,
        rung: np.ndarray,
        payoffs: np.ndarray,
    ) -> None:
        """After `every_step` (state before and after it)."""

    def ended(self, step: int, runs: np.ndarray, outcome: np.ndarray) -> None:
        """Runs that reached an outcome (index into model.outcome_ids)."""


Chooser = Callable[[int, np.ndarray | None, "_View"], np.ndarray]
"""Chooses for an actor instead of its policy (e.g. a human at the keyboard): given the step,
the availability matrix (None = all available) and the view of active runs, returns option indices
(PASS = -1) per active run."""


@dataclass
class RunRecords:
    """Per-run results of one batch, indexed by run - first run of the batch."""

    first_run: int
    outcome: np.ndarray  # int16, index into model.outcome_ids
    steps: np.ndarray  # int32, step in which the run ended
    peak_rung: np.ndarray  # int16
    final_rung: np.ndarray  # int16
    payoffs: np.ndarray  # (actors, runs) float64, discounted sums
    state: np.ndarray  # (state vars, runs) float64, final values
    moves_by_run: np.ndarray | None  # (runs, actors, 1 + options) int32; 0 counts passes
    rung_path: np.ndarray | None  # (runs, horizon + 1) int8: rung at the end of each step, -1 after

    @property
    def moves(self) -> np.ndarray:
        """Move counts as (actors, 1 + options, runs); column 0 counts passes."""
        return np.moveaxis(self.moves_by_run, 0, -1)


@dataclass
class BatchOutput:
    """A batch's per-run records and its per-block, per-step rung occupancy."""

    first_block: int
    block_sizes: list[int]
    records: RunRecords
    occupancy: np.ndarray  # (blocks, horizon + 1, rungs): active runs on each rung after step t
    ended: np.ndarray  # (blocks, horizon + 1, outcomes): runs that ended in step t
    move_counts: np.ndarray  # (blocks, actors, 1 + options): moves made; column 0 counts passes


class _View:
    """What expressions see: named values for a subset of active runs, and their random draws."""

    __slots__ = ("batch", "idx", "size", "cache")

    def __init__(self, batch: _Batch, idx: Any, size: int):
        self.batch = batch
        self.idx = idx
        self.size = size
        self.cache: dict[str, Any] = {}

    @property
    def step(self) -> int:
        return self.batch.step

    @property
    def rng(self) -> _View:
        """The view draws its own random numbers (a property: no reference cycle)."""
        return self

    def value(self, name: str) -> Any:
        cached = self.cache.get(name)
        if cached is not None:
            return cached
        kind, where = self.batch.names[name]
        b = self.batch
        if kind == "param":
            value = where
        elif kind == "state":
            value = b.state[where][self.idx]
        elif kind == "rung":
            value = b.rung[self.idx]
        elif kind == "peak":
            value = b.peak[self.idx]
        elif kind == "step":
            value = b.step
        else:
            value = b.last[where][self.idx]
        self.cache[name] = value
        return value

    def offsets(self) -> np.ndarray:
        """The runs' positions in the random sequence (see sim/streams.py)."""
        return self.batch.offsets if self.idx is ALL else self.batch.offsets[self.idx]

    def draw_site(self, site: int, kind: str, *args: Any) -> np.ndarray:
        b = self.batch
        return b.rand.draw(kind, None, b.step, b.turn, site, *args, offsets=self.offsets())

    def draw(self, kind: str, *args: Any) -> np.ndarray:
        return self.draw_site(UNNAMED_SITE, kind, *args)

    def uniforms(self, site: int = CHOICE_SITE) -> np.ndarray:
        b = self.batch
        return b.rand.uniforms(None, b.step, b.turn, site, self.offsets())


class _Part:
    """Runs of a batch (`idx` into the live runs, or ALL), changed in place by the step."""

    __slots__ = ("batch", "idx", "size", "_view")

    def __init__(self, batch: _Batch, idx: Any, size: int):
        self.batch, self.idx, self.size = batch, idx, size
        self._view: _View | None = None

    @property
    def model(self) -> Model:
        return self.batch.m

    @property
    def step(self) -> int:
        return self.batch.step

    @property
    def turn(self) -> int:
        return self.batch.turn

    def view(self) -> _View:
        if self._view is None:
            self._view = _View(self.batch, self.idx, self.size)
        return self._view

    def evaluate(self, exprs: Any) -> tuple[_Part, list[Any]]:
        view = self.view()
        return self, [e(view) for e in exprs]

    def columns(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        b, idx = self.batch, self.idx
        if idx is ALL:
            return b.state, b.rung, b.peak, b.last
        return b.state[:, idx], b.rung[idx], b.peak[idx], b.last[:, idx]

    def state_value(self, var: int) -> Any:
        return self.view().value(self.batch.m.state_names[var])

    def add_payoff(self, actor: int, value: Any) -> None:
        # one row first, then the runs: numpy's fast one-axis indexing (twice as fast)
        self.batch.pay[actor][self.idx] += value

    def set_state(self, var: int, value: Any) -> None:
        self.batch.state[var][self.idx] = value  # one row, then the runs (as add_payoff)
        self._view = None

    def set_rung(self, rung: int) -> None:
        self.batch.rung[self.idx] = rung

    def branches(self, actor: int, option: CompiledOption) -> list[tuple[int, _Part]]:
        b, idx = self.batch, self.idx
        self._view = None
        branch = b.draw_branch(actor, option, self)
        if b.observer:
            runs = b.run if idx is ALL else b.run[idx]
            b.observer.branched(b.step, actor, option.index, runs, branch)
        out = []
        for j in range(len(option.branches)):
            # each branch's rows by one comparison (no bincount: a few branches, many rows)
            sel = (branch == j).nonzero()[0]
            count = sel.shape[0]
            if count == self.size:
                out.append((j, _Part(b, idx, count)))
                break
            if count:
                out.append((j, _Part(b, sel if idx is ALL else idx[sel], count)))
        return out


class _Batch:
    """The live state of the active runs of one batch and the records of the finished ones."""

    def __init__(
        self,
        model: Model,
        seed: int,
        first_block: int,
        n_blocks: int,
        runs: int,
        record_paths: bool,
        record_moves: bool = True,
        stream: tuple[int, ...] = (),
        observer: Observer | None = None,
        choosers: Mapping[int, Chooser] | None = None,
        stable: bool = False,
    ):
        self.m = self.model = model
        self.observer = observer
        self.choosers = dict(choosers or {})
        self.stable = stable or observer is not None or bool(self.choosers)
        """Live runs stay in run order (observers and choosers see them so); otherwise a
        finished run's place is taken by a live run from the end, and an error stops the batch
        to be played again in run order, so that its message names the same run's value."""
        ranges = [block_runs(runs, b) for b in range(first_block, first_block + n_blocks)]
        self.block_sizes = [hi - lo for lo, hi in ranges]
        self.first_run = ranges[0][0]
        n = sum(self.block_sizes)
        self.rand = RandomField(seed, stream)
        self.turn = 0
        n_state, n_actors = len(model.state_names), len(model.actors)
        self.floats = np.zeros((n_state + n_actors, n))
        self.floats[:n_state] = model.state_initial[:, None]
        self.ints = np.empty((5 + model.n_last_rows, n), dtype=np.int64)
        self.ints[0] = np.arange(self.first_run, self.first_run + n)
        n_codes = model.max_options + 1
        self.width = max(n_codes, len(model.outcome_ids), model.n_rungs)
        position = np.arange(n)
        n_blocks_here = len(self.block_sizes)
        self.ints[1] = (position % LANES * n_blocks_here + position // BLOCK_SIZE) * self.width + 1
        self.ints[2:4] = model.initial_rung
        self.ints[4] = RandomField.offsets(self.ints[0]).view(np.int64)
        self.ints[5:] = NOT_YET
        self._bind_rows()
        self.moves = np.zeros((n, n_actors, n_codes), dtype=np.int32) if record_moves else None
        self.move_counts = np.zeros((n_blocks, n_actors, n_codes), dtype=np.int64)
        self.step = 0
        self.names = self._name_table()
        self.terminal_plan = terminals_to_check(model)
        self.tabulated = [
            None if t is None else CompiledPolicy("tabulated", lookup=t)
            for t in tabulated_policies(model)
        ]
        """Per actor: its logit policy's weights looked up by state (sim/model/tabulated.py)."""
        self.checked_once = False
        h, n_out = model.horizon, len(model.outcome_ids)
        self.records = RunRecords(
            first_run=self.first_run,
            outcome=np.full(n, -1, dtype=np.int16),
            steps=np.zeros(n, dtype=np.int32),
            peak_rung=np.zeros(n, dtype=np.int16),
            final_rung=np.zeros(n, dtype=np.int16),
            payoffs=np.zeros((len(model.actors), n)),
            state=np.zeros((len(model.state_names), n)),
            moves_by_run=None if self.moves is None else np.zeros_like(self.moves),
            rung_path=np.full((n, h + 1), -1, dtype=np.int8) if record_paths else None,
        )
        self.occupancy = np.zeros((n_blocks, h + 1, model.n_rungs), dtype=np.int64)
        self.ended = np.zeros((n_blocks, h + 1, n_out), dtype=np.int64)
        self._record_occupancy(0)

    def _name_table(self) -> dict[str, tuple[str, Any]]:
        m = self.m
        names: dict[str, tuple[str, Any]] = {k: ("param", v) for k, v in m.parameters.items()}
        names.update({k: ("state", i) for i, k in enumerate(m.state_names)})
        names.update({"rung": ("rung", None), "peak_rung": ("peak", None), "step": ("step", None)})
        names.update({name: ("last", row) for name, row in m.last_names().items()})
        return names

    @property
    def active(self) -> int:
        return self.run.shape[0]

    def view(self, idx: Any = ALL) -> _View:
        size = self.active if idx is ALL else idx.shape[0]
        return _View(self, idx, size)

    # --- the step (sim/model/step.py drives; these are the engine's realisations) --------

    def simulate(self) -> None:
        advance(self)

    def begin_turn(self, step: int, turn: int, actor: int, move_number: int) -> None:
        self.step = step
        self.turn = turn
        if self.observer:
            self.before = self.state.copy()

    def everyone(self) -> _Part:
        return _Part(self, ALL, self.active)

    def policy(self, actor: int, move_number: int) -> CompiledPolicy | None:
        if actor in self.choosers:
            return _CHOOSER
        policy = acting_policy(self.m, actor, move_number)
        if policy is not None and policy is self.m.policies[actor] and self.tabulated[actor]:
            return self.tabulated[actor]
        return policy

    def choose(
        self,
        part: _Part,
        actor: int,
        policy: CompiledPolicy,
        available: np.ndarray | None,
        inputs: np.ndarray | None,
        move_number: int,
    ) -> list[tuple[int, _Part]]:
        n = self.active
        view = part.view()
        if self.observer:
            self.observer.deciding(self.step, actor, self.run, self.state, self.rung, self.last)
        if policy is _CHOOSER:
            chosen = np.asarray(self.choosers[actor](self.step, available, view), dtype=np.int64)
        elif policy.kind == "tabulated":  # no `requires` in the menu: `available` is None
            weights = policy.lookup.weights_at(self.state)
            chosen = sample(weights, view.uniforms(), positive=True)
        else:
            latest = self.last[policy.respond_to] if policy.kind == "table" else None
            chosen = choose(policy, available, n, move_number, latest, inputs, view.uniforms)
        return self._chosen_parts(actor, chosen)

    def _chosen_parts(self, actor: int, chosen: np.ndarray) -> list[tuple[int, _Part]]:
        """Count the moves and group the runs by the option they play (passes play nothing)."""
        self.chosen = chosen
        n = self.active
        if self.observer:
            self.observer.chose(self.step, actor, self.run, chosen)
        n_codes = self.move_counts.shape[2]
        by_block = self._by_block(chosen, n_codes, 1)
        self.move_counts[:, actor, :] += by_block
        if self.moves is not None:
            self.moves[np.arange(n), actor, chosen + 1] += 1
        counts = by_block.sum(axis=0)
        parts = []
        for code in counts[1:].nonzero()[0]:
            idx = ALL if counts[code + 1] == n else (chosen == code).nonzero()[0]
            parts.append((int(code), _Part(self, idx, n if idx is ALL else idx.shape[0])))
        return parts

    def played(self, actor: int, code: int, parts: list) -> None:
        """Runs are changed in place; only an actor without a policy or options gets here with
        PASS (a policy's passes are never played), and its passes are counted."""
        if code == PASS:
            self._chosen_parts(actor, np.full(self.active, PASS, dtype=np.int64))

    def moved(self, actor: int) -> None:
        record_move(self.m, self.last, actor, self.chosen)
        np.maximum(self.peak, self.rung, out=self.peak)
        if self.observer:
            self.observer.moved(
                self.step, actor, self.run, self.before, self.state, self.rung, self.pay
            )

    def stepped(self, part: _Part) -> None:
        if self.observer:
            self.observer.stepped(self.step, self.run, self.before, self.state, self.rung, self.pay)

    def end_step(self, step: int) -> None:
        self._record_occupancy(step)

    def finish_horizon(self, weight: float) -> None:
        m = self.m
        self.turn = len(m.turn_order) + 1
        n = self.active
        self.finish(np.ones(n, dtype=bool), np.full(n, m.end_outcome), m.horizon, weight, True)

    def draw_branch(self, actor: int, option: CompiledOption, part: _Part) -> np.ndarray:
        view = part.view()
        m = view.size
        if option.constant_cumulative is not None:
            # how many of the constant thresholds the uniform reaches, one comparison each
            u = view.uniforms(option.branch_site)
            branch = np.zeros(m, dtype=np.int64)
            for threshold in option.constant_cumulative[:-1]:
                branch += u >= threshold
            return branch
        else:
            part, values = part.evaluate([b.p for b in option.branches if b.p is not None])
            probs = checked_branch_probabilities(self.m, actor, option, values, m, self.step)
            cumulative = np.cumsum(probs, axis=0)[:-1]
        u = view.uniforms(option.branch_site)
        return (u[None, :] >= cumulative).sum(axis=0).reshape(m)

    def check_terminals(self, weight: float) -> bool:
        if not self.m.terminals or not self.active:
            return self.active > 0
        terminals = self.terminal_plan[self.turn] if self.checked_once else None
        self.checked_once = True
        if terminals is not None and not terminals:
            return True
        _, outcome = ended_rows(self.everyone(), terminals)
        if outcome is not None:
            self.finish(outcome >= 0, outcome, self.step, weight)
        return self.active > 0

    def finish(
        self, done: np.ndarray, outcome: np.ndarray, step: int, weight: float, horizon: bool = False
    ) -> None:
        m = self.m
        gone = done.nonzero()[0]
        ended_as = outcome[gone]
        for terminal in m.terminals:
            if terminal.payoffs:
                sub = gone[ended_as == terminal.outcome]
                if sub.size:
                    terminal_payoffs(_Part(self, sub, sub.shape[0]), terminal.outcome, weight)
        if self.observer:
            self.observer.ended(step, self.run[gone], ended_as)
        rec = self.records
        local = self.run[gone] - self.first_run
        # cast before the scatter: numpy's indexed assignment that casts is several times slower
        rec.outcome[local] = ended_as.astype(rec.outcome.dtype)
        rec.steps[local] = step
        rec.peak_rung[local] = self.peak[gone].astype(rec.peak_rung.dtype)
        rec.final_rung[local] = self.rung[gone].astype(rec.final_rung.dtype)
        for into, rows in ((rec.payoffs, self.pay), (rec.state, self.state)):
            for i, row in enumerate(rows):  # row by row: numpy's fast one-axis indexing
                into[i][local] = row[gone]
        if self.moves is not None:
            rec.moves_by_run[local] = self.moves.take(gone, axis=0)
        if rec.rung_path is not None:
            rec.rung_path[local, step] = self.rung[gone]
        n_out = len(m.outcome_ids)
        self.ended[:, step, :] += self._by_block(ended_as, n_out, 0, gone)
        if horizon:
            self.run = self.run[:0]
            return
        if self.stable:
            keep = (~done).nonzero()[0]
            self.floats = self.floats.take(keep, axis=1)
            self.ints = self.ints.take(keep, axis=1)
            if self.moves is not None:
                self.moves = self.moves.take(keep, axis=0)
        else:
            # the live runs of the tail fill the places of the finished runs before it, and the
            # live matrices are cut to the live count: a copy of the finished runs' number of
            # columns, not of all of them (the runs' order changes; no figure depends on it)
            live = self.active - gone.shape[0]
            holes = gone[: np.searchsorted(gone, live)]
            if holes.size:
                fillers = (~done[live:]).nonzero()[0]
                fillers += live
                for rows in (self.floats, self.ints):
                    for row in rows:  # row by row: numpy's fast one-axis indexing
                        row[holes] = row[fillers]
                if self.moves is not None:
                    self.moves[holes] = self.moves[fillers]
            self.floats = self.floats[:, :live]
            self.ints = self.ints[:, :live]
            if self.moves is not None:
                self.moves = self.moves[:live]
        self._bind_rows()

    def _bind_rows(self) -> None:
        """Named views of the rows of the live matrices (compaction moves whole matrices)."""
        n_state = len(self.m.state_names)
        self.state = self.floats[:n_state]
        self.pay = self.floats[n_state:]
        self.run, self.slot, self.rung, self.peak = self.ints[:4]
        self.offsets = self.ints[4].view(np.uint64)
        self.last = self.ints[5:]

    def _record_occupancy(self, step: int) -> None:
        self.occupancy[:, step, :] = self._by_block(self.rung, self.m.n_rungs, 0)
        if self.records.rung_path is not None:
            self.records.rung_path[self.run - self.first_run, step] = self.rung

    def _by_block(self, codes: np.ndarray, width: int, shift: int, at: Any = ALL) -> np.ndarray:
        """(blocks, width) counts of the codes (each in [-shift, width - shift)) of the runs `at`
        in each block. `slot` is each run's (lane, block) pair times `self.width`, plus 1: the
        runs are counted in LANES interleaved histograms, added up at the end."""
        n_blocks = len(self.block_sizes)
        keys = self.slot[at] + codes
        cells = LANES * n_blocks * self.width
        counts = np.bincount(keys, minlength=cells + 1)[1 - shift : 1 - shift + cells]
        return counts.reshape(LANES, n_blocks, self.width).sum(axis=0)[:, :width]

    def output(self, first_block: int) -> BatchOutput:
        return BatchOutput(
            first_block,
            self.block_sizes,
            self.records,
            self.occupancy,
            self.ended,
            self.move_counts,
        )


def simulate_batch(
    model: Model,
    seed: int,
    first_block: int,
    n_blocks: int,
    runs: int,
    record_paths: bool = False,
    stream: tuple[int, ...] = (),
    observer: Observer | None = None,
    choosers: Mapping[int, Chooser] | None = None,
    record_moves: bool = True,
) -> BatchOutput:
    """Simulate whole blocks [first_block, first_block + n_blocks) of a `runs`-run experiment.

    `record_moves=False` skips the per-run move counts (aggregates are always kept): faster.
    """
    args = (model, seed, first_block, n_blocks, runs, record_paths, record_moves, stream)
    batch = _Batch(*args, observer, choosers)
    with np.errstate(all="ignore"):
        try:
            batch.simulate()
        except Exception:
            if batch.stable:
                raise
            # the same runs again in run order: the error (which names the first run's value
            # that is wrong) is the one the runs give in that order
            batch = _Batch(*args, observer, choosers, stable=True)
            batch.simulate()
    return batch.output(first_block)

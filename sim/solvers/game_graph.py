"""The reachable game graph: distinct states before every move, and the transitions between them.

Layer (t, j) holds the distinct states just before the j-th mover of step t acts (j equal to the
number of movers: just before `every_step`). Every available option is expanded, whatever its
probability under the mover's policy, so that any policy (a forced first move, an alternative
doctrine, a student at the keyboard) stays inside the graph. Transitions carry the branch
probability, the discounted payoffs received and the next state (or the outcome that ended it).
Backward induction over this graph solves strategic actors (sim/strategic.py).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from sim.errors import ScenarioError, SimulationError
from sim.format.source import SourceMap
from sim.model.compiled import NOT_YET, PASS, CompiledPolicy, Model
from sim.model.draws import refuse_random_draws
from sim.model.lookup import state_keys
from sim.model.semantics import checked_branch_probabilities
from sim.model.step import advance, first_terminal, record_move, terminal_payoffs
from sim.solvers.limits import check_solved_horizon

DEFAULT_STATE_LIMIT = 2_000_000


@dataclass
class States:
    """Distinct states as columns, like the live runs of an engine batch."""

    x: np.ndarray  # (state vars, n)
    rung: np.ndarray  # (n,) int64
    peak: np.ndarray  # (n,) int64
    last: np.ndarray  # (actors, n) int64

    @property
    def n(self) -> int:
        return self.rung.shape[0]

    def take(self, idx: np.ndarray) -> States:
        return States(
            self.x.take(idx, axis=1),
            self.rung.take(idx),
            self.peak.take(idx),
            self.last.take(idx, axis=1),
        )

    @staticmethod
    def concat(parts: list[States], model: Model) -> States:
        if not parts:
            return States(
                np.zeros((len(model.state_names), 0)),
                np.zeros(0, np.int64),
                np.zeros(0, np.int64),
                np.zeros((model.n_last_rows, 0), np.int64),
            )
        return States(
            np.concatenate([p.x for p in parts], axis=1),
            np.concatenate([p.rung for p in parts]),
            np.concatenate([p.peak for p in parts]),
            np.concatenate([p.last for p in parts], axis=1),
        )


@dataclass
class Transitions:
    """Moves out of one layer: from node `src` by `option` (PASS = -1) with branch probability
    `p`, receiving discounted `reward` per actor, to node `dst` of the next layer (-1: ended)."""

    src: np.ndarray
    option: np.ndarray
    p: np.ndarray
    reward: np.ndarray  # (actors, m)
    dst: np.ndarray
    outcome: np.ndarray  # outcome index where dst == -1


@dataclass
class Layer:
    step: int
    turn: int
    actor: int  # -1 for the every_step layer
    move_number: int
    states: States
    keys: np.ndarray  # sorted, one per node
    available: np.ndarray | None = None  # (options, n) or None: all available
    out: Transitions | None = None


@dataclass
class GameGraph:
    """All layers of the reachable game, in order."""

    model: Model
    layers: list[Layer] = field(default_factory=list)

    @property
    def state_count(self) -> int:
        return sum(layer.states.n for layer in self.layers)

    def index(self, step: int, turn: int) -> int:
        return (step - 1) * (len(self.model.turn_order) + 1) + turn


class _NodeView:
    """What expressions see when evaluated over the distinct states of a layer."""

    def __init__(self, model: Model, states: States, step: int):
        self.m = model
        self.s = states
        self.size = states.n
        self.step = step
        self.rng = self

    def value(self, name: str) -> Any:
        m = self.m
        if name in m.parameters:
            return m.parameters[name]
        if name == "rung":
            return self.s.rung
        if name == "peak_rung":
            return self.s.peak
        if name == "step":
            return self.step
        if name.startswith("last_"):
            return self.s.last[m.last_names()[name]]
        return self.s.x[m.state_names.index(name)]

    def draw(self, kind: str, *args: Any) -> np.ndarray:
        raise SimulationError(f"random draw {kind}() cannot be enumerated")

    def draw_site(self, site: int, kind: str, *args: Any) -> np.ndarray:
        return self.draw(kind)


class _GraphPart:
    """Rows expanded from the nodes of a layer (`src`), with their branch probability `p` and
    the discounted payoffs `reward` received since the layer: a part of the step."""

    __slots__ = ("builder", "states", "src", "p", "reward")

    def __init__(self, builder: _Builder, states: States, src, p, reward):
        self.builder, self.states, self.src, self.p, self.reward = builder, states, src, p, reward

    @property
    def model(self) -> Model:
        return self.builder.m

    @property
    def step(self) -> int:
        return self.builder.step

    @property
    def turn(self) -> int:
        return self.builder.turn

    @property
    def size(self) -> int:
        return self.states.n

    def evaluate(self, exprs: Any) -> tuple[_GraphPart, list[Any]]:
        view = _NodeView(self.builder.m, self.states, self.builder.step)
        return self, [e(view) for e in exprs]

    def columns(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        s = self.states
        return s.x, s.rung, s.peak, s.last

    def state_value(self, var: int) -> Any:
        return self.states.x[var]

    def add_payoff(self, actor: int, value: Any) -> None:
        self.reward[actor] += value

    def set_state(self, var: int, value: Any) -> None:
        self.states.x[var] = value

    def set_rung(self, rung: int) -> None:
        self.states.rung[:] = rung

    def take(self, idx: np.ndarray, factor: np.ndarray | None = None) -> _GraphPart:
        p = self.p[idx] if factor is None else self.p[idx] * factor
        return _GraphPart(
            self.builder, self.states.take(idx), self.src[idx], p, self.reward[:, idx].copy()
        )

    def branches(self, actor: int, option: Any) -> list[tuple[int, _GraphPart]]:
        """Every branch with a positive probability, each with its probability."""
        b = self.builder
        _, values = self.evaluate([br.p for br in option.branches if br.p is not None])
        probs = checked_branch_probabilities(b.m, actor, option, values, self.size, b.step)
        out = []
        for j in range(len(option.branches)):
            keep = np.flatnonzero(probs[j] > 0)
            if keep.size:
                out.append((j, self.take(keep, probs[j][keep])))
        return out


_EXPAND = CompiledPolicy("expand")
"""The game graph plays every available option, whatever the actor's policy."""


class _Builder:
    """Drives the step (sim/model/step.py) over the distinct states of each layer."""

    def __init__(self, model: Model, limit: int, purpose: str):
        self.m = self.model = model
        self.limit = limit
        self.purpose = purpose
        self.count = 0
        self.step = self.turn = 0

    def build(self) -> GameGraph:
        m = self.m
        refuse_random_draws(m, self.purpose)
        check_solved_horizon(m, self.purpose)
        self.graph = GameGraph(m)
        self.states = States(
            m.state_initial[:, None].copy(),
            np.array([m.initial_rung]),
            np.array([m.initial_rung]),
            np.full((m.n_last_rows, 1), NOT_YET),
        )
        advance(self)
        return self.graph

    def begin_turn(self, step: int, turn: int, actor: int, move_number: int) -> None:
        self.step, self.turn = step, turn
        self.layer = self._layer(step, turn, actor, move_number, self.states)
        self.pieces: list[tuple[int, _GraphPart]] = []

    def everyone(self) -> _GraphPart:
        n = self.states.n
        rows = np.arange(n)
        return _GraphPart(
            self, self.states.take(rows), rows, np.ones(n), np.zeros((len(self.m.actors), n))
        )

    def policy(self, actor: int, move_number: int) -> CompiledPolicy | None:
        return None if self.m.policies[actor] is None else _EXPAND

    def choose(self, part, actor, policy, available, inputs, move_number):
        """Every available option of every node, then PASS where none is available."""
        self.layer.available = available
        menu, states = self.m.options[actor], self.layer.states
        pieces = []
        for o in menu:
            src = np.arange(states.n) if available is None else np.flatnonzero(available[o.index])
            if src.size:
                pieces.append((o.index, self._fresh(src)))
        passing = (
            np.zeros(0, np.int64) if available is None else np.flatnonzero(~available.any(axis=0))
        )
        if passing.size or not pieces:
            pieces.append((PASS, self._fresh(passing)))
        return pieces

    def _fresh(self, src: np.ndarray) -> _GraphPart:
        states = self.layer.states.take(src)
        return _GraphPart(
            self, states, src, np.ones(src.size), np.zeros((len(self.m.actors), src.size))
        )

    def played(self, actor: int, code: int, parts: list[_GraphPart]) -> None:
        self.pieces += [(code, part) for part in parts]

    def moved(self, actor: int) -> None:
        codes = [np.full(part.size, code) for code, part in self.pieces]
        parts = [part for _, part in self.pieces]
        self.pending = self._gather(parts, np.concatenate(codes))
        record_move(self.m, self.pending.states.last, actor, self.pending.option)
        np.maximum(self.pending.states.peak, self.pending.states.rung, out=self.pending.states.peak)

    def stepped(self, part: _GraphPart) -> None:
        self.pending = self._gather([part], np.full(part.size, PASS))

    def _gather(self, parts: list[_GraphPart], option: np.ndarray) -> _Pending:
        m = self.m
        return _Pending(
            np.concatenate([p.src for p in parts]),
            option,
            np.concatenate([p.p for p in parts]),
            np.concatenate([p.reward for p in parts], axis=1),
            States.concat([p.states for p in parts], m),
        )

    def check_terminals(self, weight: float) -> bool:
        """Terminal checks, then merge the surviving states into the next layer's nodes.

        Always True: the graph has every layer to the horizon, empty ones included."""
        m, t = self.m, self.pending
        after = _GraphPart(self, t.states, t.src, t.p, t.reward)
        outcome = np.full(after.size, -1) if not m.terminals else first_terminal(after)[1]
        for terminal in m.terminals:
            self._terminal_payoffs(t, np.flatnonzero(outcome == terminal.outcome), terminal, weight)
        alive = np.flatnonzero(outcome < 0)
        survivors = t.states.take(alive)
        keys = state_keys(survivors.x, survivors.rung, survivors.peak, survivors.last)
        unique, first, inverse = np.unique(keys, return_index=True, return_inverse=True)
        dst = np.full(t.states.n, -1, dtype=np.int64)
        dst[alive] = inverse.reshape(-1)
        self.layer.out = Transitions(t.src, t.option, t.p, t.reward, dst, outcome)
        self.states = survivors.take(first)
        return True

    def _terminal_payoffs(self, t: _Pending, hit: np.ndarray, terminal: Any, weight: float):
        if hit.size and terminal.payoffs:
            part = _GraphPart(self, t.states.take(hit), t.src[hit], t.p[hit], t.reward[:, hit])
            t.reward[:, hit] = terminal_payoffs(part, terminal.outcome, weight).reward

    def end_step(self, step: int) -> None:
        """Nothing to record between steps."""

    def finish_horizon(self, weight: float) -> None:
        """The transitions of the last layer that survived end as the scenario's `end`."""
        m, t, out = self.m, self.pending, self.layer.out
        alive = np.flatnonzero(out.dst >= 0)
        out.outcome[alive] = m.end_outcome
        out.dst[alive] = -1
        for terminal in m.terminals:
            if terminal.outcome == m.end_outcome:
                self._terminal_payoffs(t, alive, terminal, weight)
        self.states = self.states.take(np.zeros(0, np.int64))

    def _layer(self, step: int, turn: int, actor: int, move_number: int, states: States) -> Layer:
        self.count += states.n
        if self.count > self.limit:
            raise ScenarioError(
                [
                    (self.m.scenario._source or SourceMap("<scenario>")).problem(
                        ("policies",),
                        f"{self.purpose}: more than {self.limit:,} reachable states by "
                        f"step {step} (the limit); it needs a small, finite game",
                    )
                ]
            )
        layer = Layer(
            step,
            turn,
            actor,
            move_number,
            states,
            state_keys(states.x, states.rung, states.peak, states.last),
        )
        self.graph.layers.append(layer)
        return layer


@dataclass
class _Pending:
    """The rows of a move or of `every_step` before their terminal check."""

    src: np.ndarray
    option: np.ndarray
    p: np.ndarray
    reward: np.ndarray
    states: States


def build_graph(
    model: Model, limit: int = DEFAULT_STATE_LIMIT, purpose: str = "the strategic policy"
) -> GameGraph:
    """Enumerate the reachable game of `model`; ScenarioError if it has random draws or is big."""
    with np.errstate(all="ignore"):
        return _Builder(model, limit, purpose).build()

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

from sim.errors import Problem, ScenarioError, SimulationError
from sim.model.compiled import NOT_YET, PASS, Located, Model
from sim.model.semantics import (
    branch_probabilities,
    condition_values,
    effect_updates,
    payoff_values,
    terminal_outcomes,
)

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
                np.zeros((len(model.actors), 0), np.int64),
            )
        return States(
            np.concatenate([p.x for p in parts], axis=1),
            np.concatenate([p.rung for p in parts]),
            np.concatenate([p.peak for p in parts]),
            np.concatenate([p.last for p in parts], axis=1),
        )


def state_keys(x: np.ndarray, rung: np.ndarray, peak: np.ndarray, last: np.ndarray) -> np.ndarray:
    """One opaque, sortable key per state (its exact bits), for merging and look-up."""
    rows = np.ascontiguousarray(
        np.vstack([x, rung[None].astype(float), peak[None].astype(float), last.astype(float)]).T
    )
    return rows.view(np.dtype((np.void, rows.dtype.itemsize * rows.shape[1]))).ravel()


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
        if name.startswith("last_") and name[5:] in m.actors:
            return self.s.last[m.actors.index(name[5:])]
        return self.s.x[m.state_names.index(name)]

    def draw(self, kind: str, *args: Any) -> np.ndarray:
        raise SimulationError(f"random draw {kind}() cannot be enumerated")

    def draw_site(self, site: int, kind: str, *args: Any) -> np.ndarray:
        return self.draw(kind)


def random_draws(model: Model) -> list[tuple[str, int]]:
    """(source position, column offset) of every expression that makes a random draw."""
    found = []
    for expr in _expressions(model):
        if expr.expr.uses_random:
            found.append((expr.where, expr.expr.random_offset))
    return found


def _expressions(model: Model):
    for menu in model.options:
        for o in menu:
            if o.requires is not None:
                yield o.requires
            yield from (e for _, e in o.payoffs)
            yield from (e for _, e in o.effects.set + o.effects.add)
            for b in o.branches:
                if b.p is not None:
                    yield b.p
                yield from (e for _, e in b.payoffs)
                yield from (e for _, e in b.effects.set + b.effects.add)
    yield from (e for _, e in model.step_payoffs)
    yield from (e for _, e in model.step_effects.set + model.step_effects.add)
    for t in model.terminals:
        yield t.when
        yield from (e for _, e in t.payoffs)
    yield from (e for _, e in model.terminal_value)
    for policy in model.policies:
        if policy is not None:
            yield from policy.utilities


def _located_problem(model: Model, where: str, offset: int, message: str) -> Problem:
    file, line, col = where.rsplit(":", 2)
    source = model.scenario._source
    line_no, col_no = int(line), int(col)
    if source is not None and 0 < line_no <= len(source.lines):
        text = source.lines[line_no - 1]
        if col_no - 1 < len(text) and text[col_no - 1] in "'\"":
            col_no += 1
    return Problem(file, line_no, col_no + offset, message)


class _Builder:
    def __init__(self, model: Model, limit: int, purpose: str):
        self.m = model
        self.limit = limit
        self.purpose = purpose
        self.count = 0

    def build(self) -> GameGraph:
        m = self.m
        draws = random_draws(m)
        if draws:
            where, offset = draws[0]
            raise ScenarioError(
                [
                    _located_problem(
                        m,
                        where,
                        offset,
                        f"{self.purpose} needs every outcome enumerated, but this "
                        "expression makes a random draw; use outcome branches instead",
                    )
                ]
            )
        graph = GameGraph(m)
        n_actors = len(m.actors)
        states = States(
            m.state_initial[:, None].copy(),
            np.array([m.initial_rung]),
            np.array([m.initial_rung]),
            np.full((n_actors, 1), NOT_YET),
        )
        moves_made = [0] * n_actors
        for step in range(1, m.horizon + 1):
            weight = m.discount ** (step - 1)
            for turn, actor in enumerate(m.turn_order):
                layer = self._layer(graph, step, turn, actor, moves_made[actor], states)
                moves_made[actor] += 1
                states = self._expand_move(layer, weight)
            layer = self._layer(graph, step, len(m.turn_order), -1, 0, states)
            states = self._expand_step(layer, weight, last_step=step == m.horizon)
        return graph

    def _layer(
        self, graph: GameGraph, step: int, turn: int, actor: int, move_number: int, states: States
    ) -> Layer:
        self.count += states.n
        if self.count > self.limit:
            raise ScenarioError(
                [
                    self.m.scenario._source.problem(
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
        graph.layers.append(layer)
        return layer

    def _expand_move(self, layer: Layer, weight: float) -> States:
        m = self.m
        actor, states = layer.actor, layer.states
        menu = m.options[actor]
        view = _NodeView(m, states, layer.step)
        available = None
        if menu and any(o.requires is not None for o in menu):
            available = np.ones((len(menu), states.n), dtype=bool)
            for o in menu:
                if o.requires is not None:
                    available[o.index] = condition_values(o.requires, view, layer.step)
        layer.available = available
        pieces: list[tuple[np.ndarray, int, np.ndarray, np.ndarray, States]] = []
        if menu and m.policies[actor] is not None:
            for o in menu:
                src = (
                    np.arange(states.n) if available is None else np.flatnonzero(available[o.index])
                )
                if src.size:
                    pieces += self._apply_option(layer, o, src, weight)
            passing = (
                np.zeros(0, np.int64)
                if available is None
                else np.flatnonzero(~available.any(axis=0))
            )
        else:
            passing = np.arange(states.n)
        if passing.size or not pieces:
            pieces.append(
                (
                    passing,
                    PASS,
                    np.ones(passing.size),
                    np.zeros((len(m.actors), passing.size)),
                    states.take(passing),
                )
            )
        src = np.concatenate([p[0] for p in pieces])
        option = np.concatenate([np.full(p[0].size, p[1]) for p in pieces])
        prob = np.concatenate([p[2] for p in pieces])
        reward = np.concatenate([p[3] for p in pieces], axis=1)
        after = States.concat([p[4] for p in pieces], m)
        after.last[actor] = option
        np.maximum(after.peak, after.rung, out=after.peak)
        return self._settle(layer, src, option, prob, reward, after, weight)

    def _apply_option(self, layer: Layer, o: Any, src: np.ndarray, weight: float):
        m = self.m
        actor = layer.actor
        s = layer.states.take(src)
        reward = np.zeros((len(m.actors), src.size))
        view = _NodeView(m, s, layer.step)
        _add(reward, o.payoffs, view, weight)
        for var, value in effect_updates(m, o.effects, view, layer.step):
            s.x[var] = value
        if not o.branches:
            if o.rung is not None:
                s.rung[:] = o.rung
            return [(src, o.index, np.ones(src.size), reward, s)]
        probs = branch_probabilities(m, actor, o, _NodeView(m, s, layer.step), layer.step)
        out = []
        for j, b in enumerate(o.branches):
            keep = np.flatnonzero(probs[j] > 0)
            if not keep.size:
                continue
            sb = s.take(keep)
            rb = reward[:, keep].copy()
            bview = _NodeView(m, sb, layer.step)
            _add(rb, b.payoffs, bview, weight)
            for var, value in effect_updates(m, b.effects, bview, layer.step):
                sb.x[var] = value
            rung = b.rung if b.rung is not None else o.rung
            if rung is not None:
                sb.rung[:] = rung
            out.append((src[keep], o.index, probs[j][keep], rb, sb))
        return out

    def _expand_step(self, layer: Layer, weight: float, last_step: bool) -> States:
        m = self.m
        s = layer.states.take(np.arange(layer.states.n))
        reward = np.zeros((len(m.actors), s.n))
        view = _NodeView(m, s, layer.step)
        _add(reward, m.step_payoffs, view, weight)
        for var, value in effect_updates(m, m.step_effects, view, layer.step):
            s.x[var] = value
        src = np.arange(s.n)
        return self._settle(
            layer, src, np.full(s.n, PASS), np.ones(s.n), reward, s, weight, horizon=last_step
        )

    def _settle(
        self,
        layer: Layer,
        src,
        option,
        prob,
        reward,
        after: States,
        weight: float,
        horizon: bool = False,
    ) -> States:
        """Terminal checks, then merge the surviving states into the next layer's nodes."""
        m = self.m
        view = _NodeView(m, after, layer.step)
        outcome = terminal_outcomes(m, view) if m.terminals else np.full(after.n, -1)
        if horizon:
            outcome = np.where(outcome < 0, m.end_outcome, outcome)
        for terminal in m.terminals:
            hit = np.flatnonzero(outcome == terminal.outcome)
            if hit.size and terminal.payoffs:
                part = reward[:, hit]
                _add(part, terminal.payoffs, _NodeView(m, after.take(hit), layer.step), weight)
                reward[:, hit] = part
        alive = np.flatnonzero(outcome < 0)
        survivors = after.take(alive)
        keys = state_keys(survivors.x, survivors.rung, survivors.peak, survivors.last)
        unique, first, inverse = np.unique(keys, return_index=True, return_inverse=True)
        dst = np.full(after.n, -1, dtype=np.int64)
        dst[alive] = inverse.reshape(-1)
        layer.out = Transitions(src, option, prob, reward, dst, outcome)
        return survivors.take(first)


def _add(
    reward: np.ndarray, payoffs: tuple[tuple[int, Located], ...], view: Any, weight: float
) -> None:
    for actor, expr in payoffs:
        reward[actor] += weight * payoff_values(expr, view)


def build_graph(
    model: Model, limit: int = DEFAULT_STATE_LIMIT, purpose: str = "the strategic policy"
) -> GameGraph:
    """Enumerate the reachable game of `model`; ScenarioError if it has random draws or is big."""
    with np.errstate(all="ignore"):
        return _Builder(model, limit, purpose).build()

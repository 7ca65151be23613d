"""Strategic actors: logit agent quantal response equilibrium by backward induction.

At each decision node a strategic actor chooses option o with probability proportional to
exp(rationality * Q(o)), where Q(o) is its expected discounted payoff from the node on (discounted
to the decision's step) if it plays o now and everyone, itself included, then follows their
policies, strategic actors their own quantal responses. With `lookahead: K`, Q counts payoffs of
the next K steps only and values the state then reached by `terminal_value` (0 by default).
Several strategic actors are solved jointly: one backward pass settles every node's choice.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

from sim.errors import ScenarioError
from sim.format.source import SourceMap
from sim.model.compiled import Model
from sim.model.lookup import LookupTable
from sim.model.policies import _logit_weights, probabilities
from sim.model.semantics import checked_payoff, checked_utilities
from sim.solvers.game_graph import GameGraph, Layer, States, _NodeView, build_graph
from sim.solvers.information import (
    Equilibrium,
    InformationLayer,
    all_singletons,
    information_layers,
    solve_equilibrium,
)


@dataclass
class StrategicSolution:
    """The solved choices of the strategic actors and what the solver learnt on the way."""

    table: LookupTable
    """Choice probabilities at every node where a strategic actor moves."""
    values: np.ndarray
    """Expected discounted payoff of each actor at the start (full-horizon solution)."""
    state_count: int
    equilibrium: Equilibrium | None = None
    """With hidden information: the fixed point, its reach probabilities and beliefs."""
    graph: GameGraph | None = None
    sets: dict[int, InformationLayer] | None = None
    """With hidden information: the game graph and its information sets (for `beliefs`)."""

    def probabilities(self, step, turn, x, rung, peak, last) -> np.ndarray:
        """(1 + options, rows) choice probabilities for rows in the given states."""
        return self.table.probabilities(step, turn, x, rung, peak, last)


def _policy_probabilities(model: Model, layer: Layer, q: np.ndarray) -> np.ndarray:
    """(1 + options, nodes) choice probabilities at a move layer, given Q (actors, 1+opts, n)."""
    actor = layer.actor
    policy = model.policies[actor]
    menu = model.options[actor]
    n = layer.states.n
    k = len(menu)
    if not menu or policy is None:
        out = np.zeros((k + 1, n))
        out[0] = 1
        return out
    available = layer.available
    if policy.kind == "strategic":
        scale = model.discount ** (layer.step - 1)
        weights = _logit_weights(policy.rationality, q[actor, 1:] / scale, available)
        total = weights.sum(axis=0)
        out = np.zeros((k + 1, n))
        np.divide(weights, total, out=out[1:], where=total > 0)
        out[0] = total <= 0
        return out
    view = _NodeView(model, layer.states, layer.step)
    inputs = None
    if policy.kind == "logit":
        values = [e(view) for e in policy.utilities]
        inputs = checked_utilities(policy.utilities, values, n, layer.step)
    latest = layer.states.last[policy.respond_to] if policy.kind == "table" else None
    return probabilities(policy, available, k, n, layer.move_number, latest, inputs)


def _boundary_values(model: Model, states: States, step: int) -> np.ndarray:
    """Value of the states reached when the lookahead stops: `terminal_value`, discounted."""
    values = np.zeros((len(model.actors), states.n))
    weight = model.discount ** (step - 1)
    view = _NodeView(model, states, step)
    for actor, expr in model.terminal_value:
        values[actor] += weight * checked_payoff(expr, expr(view))
    return values


def _backward(
    model: Model, graph: GameGraph, first: int, last: int, boundary: np.ndarray | None
) -> tuple[dict[int, np.ndarray], np.ndarray]:
    """Backward induction over layers [first, last]; returns choice probabilities of move
    layers and the values at layer `first`. `boundary`: values of the nodes after `last`."""
    n_actors = len(model.actors)
    after = boundary
    pis: dict[int, np.ndarray] = {}
    for index in range(last, first - 1, -1):
        layer = graph.layers[index]
        t = layer.out
        n = layer.states.n
        cont = np.zeros((n_actors, t.dst.size))
        alive = t.dst >= 0
        if after is not None and alive.any():
            cont[:, alive] = after[:, t.dst[alive]]
        gain = t.p * (t.reward + cont)
        if layer.actor < 0:
            values = np.zeros((n_actors, n))
            for a in range(n_actors):
                values[a] = np.bincount(t.src, weights=gain[a], minlength=n)
        else:
            k = len(model.options[layer.actor])
            slot = t.src * (k + 1) + (t.option + 1)
            q = np.zeros((n_actors, n * (k + 1)))
            for a in range(n_actors):
                q[a] = np.bincount(slot, weights=gain[a], minlength=n * (k + 1))
            q = q.reshape(n_actors, n, k + 1).transpose(0, 2, 1)
            pi = _policy_probabilities(model, layer, q)
            pis[index] = pi
            values = (q * pi[None]).sum(axis=1)
        after = values
    return pis, after


def _solve_imperfect(
    model: Model, graph: GameGraph, sets: dict[int, InformationLayer]
) -> StrategicSolution:
    """Agent logit QRE over information sets (sim/solvers/information.py)."""
    for a, policy in enumerate(model.policies):
        if policy is not None and policy.kind == "strategic" and policy.lookahead is not None:
            source = model.scenario._source or SourceMap("<scenario>")
            raise ScenarioError(
                [
                    source.problem(
                        ("policies", model.actors[a], "lookahead"),
                        "lookahead is not supported for a strategic actor who does not see "
                        "everything (its information sets span several states); remove it",
                    )
                ]
            )
    fixed = {}
    for index, layer in enumerate(graph.layers):
        if layer.actor >= 0 and index not in sets:
            fixed[index] = _policy_probabilities(model, layer, None)
    with np.errstate(all="ignore"):
        eq = solve_equilibrium(model, graph, sets, fixed)
    choices, views = {}, {}
    for index, s in sets.items():
        layer = graph.layers[index]
        choices[(layer.step, layer.turn)] = (s.keys, eq.set_pi[index].T)
        views[(layer.step, layer.turn)] = model.view_of(layer.actor)
    table = LookupTable(choices, views)
    return StrategicSolution(table, eq.values, graph.state_count, eq, graph, sets)


def solve(model: Model, graph: GameGraph | None = None) -> StrategicSolution:
    """Solve every strategic actor of `model` (ScenarioError if the game cannot be enumerated)."""
    graph = graph or build_graph(model)
    sets = information_layers(model, graph)
    if not all_singletons(sets, graph):
        return _solve_imperfect(model, graph, sets)
    last_layer = len(graph.layers) - 1
    choices: dict[tuple[int, int], tuple[np.ndarray, np.ndarray]] = {}
    with np.errstate(all="ignore"):
        pis, start = _backward(model, graph, 0, last_layer, None)
        lookaheads = {
            p.lookahead
            for p in model.policies
            if p is not None and p.kind == "strategic" and p.lookahead is not None
        }
        windowed: dict[int, dict[int, np.ndarray]] = {}
        for k in sorted(lookaheads):
            windowed[k] = {}
            for step in range(1, model.horizon + 1):
                first = graph.index(step, 0)
                end_step = step + k
                if end_step > model.horizon:
                    part, _ = _backward(model, graph, first, last_layer, None)
                else:
                    stop = graph.index(end_step, 0)
                    boundary = _boundary_values(model, graph.layers[stop].states, end_step)
                    part, _ = _backward(model, graph, first, stop - 1, boundary)
                for index, pi in part.items():
                    if graph.layers[index].step == step:
                        windowed[k][index] = pi
    for index, layer in enumerate(graph.layers):
        if layer.actor < 0:
            continue
        policy = model.policies[layer.actor]
        if policy is None or policy.kind != "strategic":
            continue
        pi = pis[index] if policy.lookahead is None else windowed[policy.lookahead][index]
        order = np.argsort(layer.keys)
        choices[(layer.step, layer.turn)] = (layer.keys[order], pi.T[order])
    values = start[:, 0] if start.size else start
    return StrategicSolution(LookupTable(choices), values, graph.state_count)


def solve_strategic(model: Model) -> Model:
    """The model with each strategic actor's policy replaced by its solved lookup policy (and
    the solution kept as `model.strategic`); unchanged if no policy is strategic."""
    if not any(p is not None and p.kind == "strategic" for p in model.policies):
        return model
    solution = solve(model)
    policies = tuple(
        dataclasses.replace(p, kind="lookup", lookup=solution.table)
        if p is not None and p.kind == "strategic"
        else p
        for p in model.policies
    )
    return dataclasses.replace(model, policies=policies, strategic=solution)

"""Strategic actors who do not see everything: agent logit QRE over information sets.

DESIGN.md section 8.1. A strategic actor's information set is (step, its place in the turn order,
its view): the nodes of one layer of the game graph whose view keys are equal. At an information
set h the actor chooses option a with probability

    sigma(h, a) = exp(L * Qbar(h, a)) / sum_b exp(L * Qbar(h, b))
    Qbar(h, a)  = sum_{n in h} mu(n | h) * Q(n, a)
    mu(n | h)   = reach(n) / sum_{m in h} reach(m)

where Q(n, a) is the actor's expected discounted payoff (discounted to the decision's step) if it
plays a at node n and everyone then follows their policies, and reach(n) the probability that the
crisis reaches n under those same policies: beliefs by Bayes' rule from the equilibrium's own
reach probabilities. An information set the equilibrium never reaches (a forced move, a
zero-probability doctrine) takes the nodes of the set as equally likely.

The fixed point is followed from L = 0 (every available option equally likely) to each actor's own
rationality by continuation: every rationality is scaled by t, t going from 0 to 1 in steps that
shrink when a level does not converge, and at each level the fixed point in the Qbar values is
solved by Anderson-accelerated iteration started from a secant prediction through the two
previous levels' answers. A level is accepted only if no choice probability moved by more than
MAX_MOVE from the previous level: a bigger move means the iteration may have converged to a fixed
point on another branch (the game can have several quantal response equilibria at one
rationality), so the step is shrunk and the level retried. A level that does not converge, or
keeps jumping, after every retry is an error (never an unconverged or off-branch answer); this
happens where the principal branch turns back in the rationality (a fold), which a continuation
in t cannot follow.

With every information set a single node (nothing hidden from a strategic actor) the equilibrium
is the backward induction of sim/solvers/strategic.py, and that is what is used.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sim.errors import SimulationError
from sim.model.compiled import Model
from sim.model.lookup import state_keys
from sim.model.views import hidden_facts, seen
from sim.solvers.game_graph import GameGraph, Layer

TOLERANCE = 1e-12
"""Largest change of any Qbar value (relative to its scale) at a converged level."""
MAX_ITERATIONS = 2_000
"""Iterations per continuation level before the level is retried with a smaller step."""
MIN_STEP = 1e-4
"""Smallest continuation step in t before the solver gives up."""
MAX_MOVE = 0.05
"""Largest change of any choice probability from one continuation level to the next. Checked
against Gambit's principal branch on 300 random one-round signalling games (rationalities 0.5
to 20) and 60 two-round ones (0.5 to 10): without this check (and with 0.1) some levels
converged to other equilibria, off by up to 1 in a choice probability; with 0.05 none did.
tests/solvers/test_gambit_imperfect.py keeps one of them (gambit_provocation.yaml)."""
MEMORY = 6
"""Past iterates kept by Anderson acceleration."""


@dataclass(frozen=True)
class InformationLayer:
    """The information sets of one strategic move layer."""

    index: int
    """Index of the layer in the game graph."""
    of_node: np.ndarray
    """Information set of each node of the layer."""
    keys: np.ndarray
    """The sets' view keys, sorted (as the lookup table reads them)."""
    count: int

    def first_nodes(self) -> np.ndarray:
        """The first node of each information set (its availability and view stand for all)."""
        first = np.zeros(self.count, dtype=np.int64)
        first[self.of_node[::-1]] = np.arange(self.of_node.size)[::-1]
        return first


def view_keys(model: Model, layer: Layer) -> np.ndarray:
    """Each node's view key for the actor who moves at `layer` (its information set)."""
    view = model.view_of(layer.actor)
    s = layer.states
    return state_keys(s.x[list(view.state)], s.rung, s.peak, s.last[list(view.last_rows)])


def information_layers(model: Model, graph: GameGraph) -> dict[int, InformationLayer]:
    """The information sets of every layer where a strategic actor moves."""
    out = {}
    for index, layer in enumerate(graph.layers):
        policy = model.policies[layer.actor] if layer.actor >= 0 else None
        if policy is None or policy.kind != "strategic" or not model.options[layer.actor]:
            continue
        keys, of_node = np.unique(view_keys(model, layer), return_inverse=True)
        out[index] = InformationLayer(index, of_node.reshape(-1), keys, keys.shape[0])
    return out


def all_singletons(sets: dict[int, InformationLayer], graph: GameGraph) -> bool:
    """True when every information set is one node (perfect information for the solver)."""
    return all(s.count == graph.layers[i].states.n for i, s in sets.items())


@dataclass
class Equilibrium:
    """The solved agent QRE: node choice probabilities, values, reach and beliefs."""

    node_pi: dict[int, np.ndarray]
    """(1 + options, nodes) choice probabilities of every move layer (strategic and not)."""
    set_pi: dict[int, np.ndarray]
    """(1 + options, sets) choice probabilities at each strategic layer's information sets."""
    values: np.ndarray
    """Expected discounted payoff of each actor at the start."""
    reach: list[np.ndarray]
    """Probability of reaching each node of each layer."""
    iterations: int
    levels: int


class _Game:
    """The game graph with the non-strategic choices fixed: the map from Qbar to Qbar."""

    def __init__(self, model: Model, graph: GameGraph, sets: dict[int, InformationLayer], fixed):
        self.m, self.g, self.sets = model, graph, sets
        self.fixed = fixed  # node choice probabilities of the non-strategic move layers
        self.n_actors = len(model.actors)
        self.slices: dict[int, slice] = {}
        self.avail: dict[int, np.ndarray] = {}
        start = 0
        for index, s in sets.items():
            layer = graph.layers[index]
            k = len(model.options[layer.actor])
            first = s.first_nodes()
            if layer.available is None:
                avail = np.ones((k, s.count), dtype=bool)
            else:
                avail = layer.available[:, first]
            self.avail[index] = avail
            self.slices[index] = slice(start, start + k * s.count)
            start += k * s.count
        self.size = start
        # bins of one bincount for every actor (or option) at once: actor a's (option o's)
        # entries come after those of a - 1, so each bin adds the same values in the same
        # order as a bincount of its own would
        self.value_bins: list[np.ndarray] = []
        self.alive: list[np.ndarray] = []  # the transitions of each layer that go on
        self.alive_dst: list[np.ndarray] = []  # and the nodes they go to
        self.option_rows: list[np.ndarray] = []  # each transition's row of node_pi
        for layer in graph.layers:
            t, n = layer.out, layer.states.n
            self.alive.append(np.flatnonzero(t.dst >= 0))
            self.alive_dst.append(t.dst[self.alive[-1]])
            self.option_rows.append(t.option + 1)
            if layer.actor >= 0:
                k = len(model.options[layer.actor])
                t_bins, width = t.src * (k + 1) + (t.option + 1), n * (k + 1)
            else:
                t_bins, width = t.src, n
            self.value_bins.append(
                (np.arange(self.n_actors)[:, None] * width + t_bins[None, :]).ravel()
            )
        self.belief_bins: dict[int, np.ndarray] = {}
        for index, s in sets.items():
            k = len(model.options[graph.layers[index].actor])
            self.belief_bins[index] = (np.arange(k)[:, None] * s.count + s.of_node[None, :]).ravel()

    def rationality(self, index: int) -> float:
        return self.m.policies[self.g.layers[index].actor].rationality

    def scale(self, index: int) -> float:
        return self.m.discount ** (self.g.layers[index].step - 1)

    def set_probabilities(self, z: np.ndarray, t: float) -> dict[int, np.ndarray]:
        """(1 + options, sets) logit choices from the Qbar vector at continuation level t."""
        out = {}
        for index, s in self.sets.items():
            avail = self.avail[index]
            k = avail.shape[0]
            q = z[self.slices[index]].reshape(k, s.count)
            logits = np.where(avail, t * self.rationality(index) * q, -np.inf)
            top = logits.max(axis=0)
            top = np.where(np.isfinite(top), top, 0.0)
            w = np.exp(logits - top)
            total = w.sum(axis=0)
            pi = np.zeros((k + 1, s.count))
            np.divide(w, total, out=pi[1:], where=total > 0)
            pi[0] = total <= 0
            out[index] = pi
        return out

    def node_probabilities(self, set_pi: dict[int, np.ndarray]) -> dict[int, np.ndarray]:
        out = dict(self.fixed)
        for index, s in self.sets.items():
            out[index] = set_pi[index][:, s.of_node]
        return out

    def backward(self, node_pi: dict[int, np.ndarray]):
        """Q (actors, 1 + options, nodes) of every move layer and the values at the start."""
        after = None
        qs: dict[int, np.ndarray] = {}
        for index in range(len(self.g.layers) - 1, -1, -1):
            layer = self.g.layers[index]
            t, n = layer.out, layer.states.n
            cont = np.zeros((self.n_actors, t.dst.size))
            alive = self.alive[index]
            if after is not None and alive.size:
                cont[:, alive] = after[:, self.alive_dst[index]]
            gain = t.p * (t.reward + cont)
            bins = self.value_bins[index]
            if layer.actor < 0:
                values = np.bincount(
                    bins, weights=gain.ravel(), minlength=self.n_actors * n
                ).reshape(self.n_actors, n)
            else:
                k = len(self.m.options[layer.actor])
                q = np.bincount(
                    bins, weights=gain.ravel(), minlength=self.n_actors * n * (k + 1)
                ).reshape(self.n_actors, n, k + 1)
                q = q.transpose(0, 2, 1)
                qs[index] = q
                values = (q * node_pi[index][None]).sum(axis=1)
            after = values
        return qs, after

    def forward(self, node_pi: dict[int, np.ndarray]) -> list[np.ndarray]:
        """The probability of reaching each node of each layer."""
        reach = [np.ones(1)]
        for index, layer in enumerate(self.g.layers[:-1]):
            t = layer.out
            w = reach[index][t.src] * t.p
            if layer.actor >= 0:
                w = w * node_pi[index][self.option_rows[index], t.src]
            n_next = self.g.layers[index + 1].states.n
            reach.append(
                np.bincount(self.alive_dst[index], weights=w[self.alive[index]], minlength=n_next)
            )
        return reach

    def qbar(self, qs: dict[int, np.ndarray], reach: list[np.ndarray]) -> np.ndarray:
        """Each information set's option values, nodes weighted by their beliefs."""
        z = np.zeros(self.size)
        for index, s in self.sets.items():
            layer = self.g.layers[index]
            q = qs[index][layer.actor, 1:] / self.scale(index)  # (options, nodes)
            r = reach[index]
            mass = np.bincount(s.of_node, weights=r, minlength=s.count)
            weight = np.where(mass[s.of_node] > 0, r, 1.0)
            total = np.bincount(s.of_node, weights=weight, minlength=s.count)
            k = q.shape[0]
            sums = np.bincount(
                self.belief_bins[index], weights=(weight * q).ravel(), minlength=k * s.count
            ).reshape(k, s.count)
            z[self.slices[index]] = (sums / total).ravel()
        return z

    def image(self, z: np.ndarray, t: float) -> np.ndarray:
        node_pi = self.node_probabilities(self.set_probabilities(z, t))
        qs, _ = self.backward(node_pi)
        return self.qbar(qs, self.forward(node_pi))


def _anderson(game: _Game, z: np.ndarray, t: float) -> tuple[np.ndarray, int] | None:
    """The fixed point z = image(z) at level t from `z` (None if it does not converge)."""
    xs: list[np.ndarray] = []
    fs: list[np.ndarray] = []
    scale = 1.0 + np.abs(z).max(initial=0.0)
    for iteration in range(1, MAX_ITERATIONS + 1):
        g = game.image(z, t)
        f = g - z
        if not np.isfinite(f).all():
            return None
        if np.abs(f).max(initial=0.0) <= TOLERANCE * scale:
            return g, iteration
        xs.append(z)
        fs.append(f)
        if len(xs) > MEMORY:
            xs.pop(0)
            fs.pop(0)
        if len(xs) == 1:
            z = g
            continue
        df = np.stack([fs[i + 1] - fs[i] for i in range(len(fs) - 1)], axis=1)
        dx = np.stack([xs[i + 1] - xs[i] for i in range(len(xs) - 1)], axis=1)
        gamma, *_ = np.linalg.lstsq(df, f, rcond=None)
        z = g - (dx + df) @ gamma
    return None


def _flat(set_pi: dict[int, np.ndarray]) -> np.ndarray:
    """Every choice probability of every information set, in one vector."""
    return np.concatenate([p.ravel() for p in set_pi.values()]) if set_pi else np.zeros(0)


def solve_equilibrium(
    model: Model, graph: GameGraph, sets: dict[int, InformationLayer], fixed: dict[int, np.ndarray]
) -> Equilibrium:
    """Agent logit QRE over information sets by continuation in the rationality (see above)."""
    game = _Game(model, graph, sets, fixed)
    z = game.image(np.zeros(game.size), 0.0)
    here = _flat(game.set_probabilities(z, 0.0))
    before: tuple[float, np.ndarray] | None = None  # the level before this one: (t, z)
    t, step, iterations, levels = 0.0, 0.05, 0, 0
    while t < 1.0:
        target = min(1.0, t + step)
        start = z if before is None else z + (z - before[1]) * ((target - t) / (t - before[0]))
        solved = _anderson(game, start, target)
        moved = np.inf
        if solved is not None:
            iterations += solved[1]
            there = _flat(game.set_probabilities(solved[0], target))
            moved = float(np.abs(there - here).max(initial=0.0))
        if moved > MAX_MOVE:  # not converged, or perhaps converged off the principal branch
            step /= 2
            if step < MIN_STEP:
                raise SimulationError(
                    "the strategic solver (agent logit QRE over information sets) did not "
                    f"converge beyond {t:.4f} of the actors' rationality (the equilibrium "
                    "there changes too abruptly to follow, or turns back): lower the "
                    "rationality or simplify what is hidden"
                )
            continue
        before = (t, z)
        z, used = solved
        here = there
        levels += 1
        t = target
        if used < 20 and moved <= MAX_MOVE / 2:
            step = min(step * 2, 0.25)
    set_pi = game.set_probabilities(z, 1.0)
    node_pi = game.node_probabilities(set_pi)
    _, start = game.backward(node_pi)
    values = start[:, 0] if start.size else start
    return Equilibrium(node_pi, set_pi, values, game.forward(node_pi), iterations, levels)


def beliefs(model: Model, solution) -> list[dict]:
    """Every information set of every strategic actor, JSON-ready: what the actor sees, how
    likely the crisis is to get there, its choice probabilities and its beliefs about what it
    does not see (the hidden state variables and the true moves behind what it saw).

    Empty when no strategic actor is uncertain of anything (each set is one state)."""
    eq = solution.equilibrium
    if eq is None:
        return []
    graph, sets = solution.graph, solution.sets
    out = []
    for index, s in sets.items():
        layer = graph.layers[index]
        actor = layer.actor
        first = s.first_nodes()
        s_x, s_rung, s_last = layer.states.x, layer.states.rung, layer.states.last
        reach = eq.reach[index]
        mass = np.bincount(s.of_node, weights=reach, minlength=s.count)
        for h in range(s.count):
            nodes = np.flatnonzero(s.of_node == h)
            weights = reach[nodes] / mass[h] if mass[h] > 0 else np.full(nodes.size, 1 / nodes.size)
            out.append(
                {
                    "step": layer.step,
                    "actor": model.actors[actor],
                    "sees": seen(
                        model, actor, s_x[:, first[h]], s_rung[first[h]], s_last[:, first[h]]
                    ),
                    "reach": float(mass[h]),
                    "choice": _choice(model, actor, eq.set_pi[index][:, h]),
                    "beliefs": _belief_rows(model, layer, nodes, weights, actor),
                }
            )
    return out


def _choice(model: Model, actor: int, pi: np.ndarray) -> dict:
    out = {o.id: float(pi[o.index + 1]) for o in model.options[actor]}
    if pi[0] > 0:
        out["pass"] = float(pi[0])
    return out


def _belief_rows(model: Model, layer: Layer, nodes, weights, actor: int) -> list[dict]:
    """The distinct hidden facts of the nodes, with their probabilities."""
    st = layer.states
    rows: dict[tuple, float] = {}
    for node, w in zip(nodes, weights, strict=True):
        fact = hidden_facts(model, actor, st.x[:, node], st.last[:, node])
        rows[fact] = rows.get(fact, 0.0) + float(w)
    ranked = sorted(rows.items(), key=lambda r: -r[1])
    return [{"hidden": dict(fact), "p": p} for fact, p in ranked if p > 0]

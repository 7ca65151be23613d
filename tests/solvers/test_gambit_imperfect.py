"""The agent logit QRE over information sets (sim/solvers/information.py) against Gambit.

Each game is written twice: as a scenario (tests/scenarios/hidden/gambit_*.yaml: every actor
strategic, chance as a `table` actor with only a `default` row or as option branches) and, here,
as a pygambit extensive-form tree with information sets, written out by hand from the game's
description (a function from a history to its node), never generated from the compiled model.
For every game and rationality, Gambit's `logit_solve_lambda(..., use_strategic=False)` (the agent
QRE on the principal branch) and ours must agree to 1e-6 on

- the choice probabilities at every information set,
- the beliefs (the probability of each node of an information set given that it is reached),
- the probability of each outcome of the scenario,
- each actor's expected payoff, from the strategic solver and from the exact solver.

Information sets are matched by what the actor sees: each member history of a Gambit information
set is replayed through our game graph (the labels of its actions are our option and branch ids),
and every member must land in one and the same information set of ours, different Gambit sets in
different sets of ours. The replay also checks that the two encodings are one game: every leaf
ends in the scenario outcome the tree names, with the payoffs the tree gives it.

Gambit has one lambda: each player's payoffs are multiplied by its rationality relative to the
common one, which gives each player its own. Payoffs of a scenario are received along the way;
with discount 1 their sum is put at the tree's leaf (a payoff already received adds the same
constant to every option of an information set, so the logit choices are unchanged).
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Mapping
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

pg = pytest.importorskip(
    "pygambit",
    minversion="17.0.0b2",
    reason="pygambit >= 17.0.0b2 (GPL, a test-only dependency: pip install -e '.[test]') is not "
    "installed; the Gambit cross-checks of the imperfect-information solver are skipped",
)

from sim.engine.runner import run_monte_carlo  # noqa: E402
from sim.model.compiler import compile_model  # noqa: E402
from sim.model.loading import load_scenario  # noqa: E402
from sim.solvers import exact, strategic  # noqa: E402
from sim.solvers.game_graph import build_graph  # noqa: E402
from sim.solvers.information import information_layers  # noqa: E402
from sim.solvers.prepare import prepare_model  # noqa: E402
from tests.conftest import ROOT  # noqa: E402

H = pg.H
HIDDEN = ROOT / "tests" / "scenarios" / "hidden"
RATIONALITIES = (0.5, 1.0, 2.0, 5.0)
TOL = 1e-6


# --- a game tree, written as a function from a history to its node ------------------------------


@dataclass(frozen=True)
class Chance:
    probs: Mapping[str, Fraction]
    """Action label (our option or branch id) -> probability."""


@dataclass(frozen=True)
class Move:
    player: str
    actions: tuple[str, ...]
    sees: Hashable
    """What the player knows here: nodes with equal (player, sees) form one information set."""


@dataclass(frozen=True)
class Leaf:
    outcome: str
    """The scenario outcome this play ends in."""
    payoffs: Mapping[str, float]
    """Each player's total payoff along the play."""


Node = Chance | Move | Leaf
Spec = Callable[[tuple[str, ...]], Node]


@dataclass
class Tree:
    game: object
    players: tuple[str, ...]
    infosets: dict[tuple[str, Hashable], list[tuple[str, ...]]] = field(default_factory=dict)
    actions: dict[tuple[str, Hashable], tuple[str, ...]] = field(default_factory=dict)
    leaves: dict[tuple[str, ...], Leaf] = field(default_factory=dict)


def build_tree(players: tuple[str, ...], spec: Spec, scale: Mapping[str, float]) -> Tree:
    """The pygambit tree of `spec`, each player's payoffs multiplied by `scale[player]`."""
    game = pg.ExtensiveGame(list(players), title="escalation-sim cross-check")
    tree = Tree(game, players)
    frontier: list[tuple[str, ...]] = [()]
    while frontier:
        history = frontier.pop(0)
        node = spec(history)
        here = H.path(*history)
        if isinstance(node, Leaf):
            tree.leaves[history] = node
            payoffs = {p: scale[p] * node.payoffs.get(p, 0.0) for p in players}
            game.make_outcome(here, payoffs, f"leaf {len(tree.leaves)}")
            continue
        if isinstance(node, Chance):
            assert sum(node.probs.values()) == 1
            probs = {a: pg.Rational(p.numerator, p.denominator) for a, p in node.probs.items()}
            game.append_event(here, probs)
            frontier += [history + (a,) for a in node.probs]
            continue
        key = (node.player, node.sees)
        if key in tree.infosets:
            assert tree.actions[key] == node.actions, key
            game.append_infoset(here, H.path(*tree.infosets[key][0]))
            tree.infosets[key].append(history)
        else:
            game.append_move(here, node.player, list(node.actions))
            tree.infosets[key] = [history]
            tree.actions[key] = node.actions
        frontier += [history + (a,) for a in node.actions]
    assert game.is_perfect_recall
    return tree


def payoffs(*moves: Mapping[str, float]) -> dict[str, float]:
    """The sum of the payoffs received along a play."""
    total: dict[str, float] = {}
    for m in moves:
        for player, value in m.items():
            total[player] = total.get(player, 0.0) + value
    return total


# --- the games, as trees (the scenarios say the same in YAML) -----------------------------------


def attribution(h: tuple[str, ...]) -> Node:
    """(a) Iran orders or not; the militia sees the order and fires rockets, flies drones or holds;
    the US sees an attack (rockets and drones alike), not the order, and strikes Iran, strikes
    the militia (its sites occupied with probability 3/5) or holds."""
    if not h:
        return Move("iran", ("order", "no_order"), "the start")
    if len(h) == 1:
        return Move("kh", ("rockets", "drones", "hold"), h[0])
    o, a = int(h[0] == "order"), int(h[1] != "hold")
    if len(h) == 2:
        return Move("us", ("strike_iran", "strike_militia", "hold"), "attack" if a else "quiet")
    if h[2] == "strike_militia" and len(h) == 3:
        return Chance({"sites_hit": Fraction(3, 5), "empty_sites": Fraction(2, 5)})
    iran = {"iran": -0.2 * o}
    kh = {
        "rockets": {"kh": 1 + 0.5 * o, "iran": 0.8 * o - 0.3, "us": -1},
        "drones": {"kh": 0.6 + 0.8 * o, "iran": 0.5 * o - 0.2, "us": -0.6},
        "hold": {"kh": -0.5 * o},
    }[h[1]]
    if h[2] == "strike_iran":
        return Leaf("iran_struck", payoffs(iran, kh, {"us": 2 * o - 1 - 1.5 * (1 - a), "iran": -2}))
    if h[2] == "hold":
        return Leaf("us_held", payoffs(iran, kh, {"us": -0.5 * a, "iran": 0.3 * a}))
    us = {"us": 0.5 * a - 0.2, "kh": -0.5}
    if h[3] == "sites_hit":
        return Leaf("militia_hit", payoffs(iran, kh, us, {"kh": -1, "us": 0.5}))
    return Leaf("empty_sites_hit", payoffs(iran, kh, us))


def signalling(h: tuple[str, ...]) -> Node:
    """(b) Chance: Iran resolute (2/5) or bluffing; Iran, knowing its type, escalates (costly,
    more so for a bluffer) or probes; the US sees the move, not the type: back off or confront."""
    if not h:
        return Chance({"resolute": Fraction(2, 5), "bluffing": Fraction(3, 5)})
    r = int(h[0] == "resolute")
    if len(h) == 1:
        return Move("iran", ("escalate", "probe"), h[0])
    if len(h) == 2:
        return Move("us", ("back_off", "confront"), h[1])
    iran = {"iran": -0.2 - 0.8 * (1 - r)} if h[1] == "escalate" else {}
    if h[2] == "back_off":
        return Leaf("us_backs_off", payoffs(iran, {"us": -1, "iran": 2}))
    if h[1] == "escalate":
        return Leaf("war", payoffs(iran, {"us": 1.5 - 4 * r, "iran": r - 2}))
    return Leaf("standoff", payoffs(iran, {"us": 1 - 2 * r, "iran": -1}))


def seen_by_one(h: tuple[str, ...]) -> Node:
    """(c) The US deploys or withholds: Iran sees it, the militia does not. Iran arms, funds or
    restrains: the militia sees 'support' (arm or fund) or 'restrain'. The militia attacks or
    holds."""
    if not h:
        return Move("us", ("deploy", "withhold"), "the start")
    if len(h) == 1:
        return Move("iran", ("arm", "fund", "restrain"), h[0])
    if len(h) == 2:
        return Move("kh", ("attack", "hold"), "restrain" if h[1] == "restrain" else "support")
    d = int(h[0] == "deploy")
    arm, fund, restrain = (int(h[1] == x) for x in ("arm", "fund", "restrain"))
    us = {"us": -0.4 * d}
    iran = {"iran": -0.3 * arm - 0.1 * fund + 0.2 * d * restrain}
    if h[2] == "attack":
        kh = {
            "kh": 0.5 + arm + 0.4 * fund - 1.8 * d - 0.6 * restrain,
            "iran": 0.6 - 1.5 * d * arm,
            "us": -2 + 1.2 * d,
        }
        return Leaf("attack_on_defences" if d else "attack", payoffs(us, iran, kh))
    return Leaf("calm", payoffs(us, iran, {"kh": 0.3 * restrain, "us": 0.2}))


def two_rounds(h: tuple[str, ...]) -> Node:
    """(d) Chance: Iran resolute (3/10) or bluffing, known to Iran only. Two rounds: Iran
    escalates or probes, the US (seeing the move) backs off or confronts; confronting an
    escalation is war and ends the crisis. In round 2 each player knows the first round's moves;
    the US's information sets each span both types."""
    if not h:
        return Chance({"resolute": Fraction(3, 10), "bluffing": Fraction(7, 10)})
    r = int(h[0] == "resolute")
    rounds = [h[i : i + 2] for i in range(1, len(h), 2)]
    total: dict[str, float] = {}
    escalations = backoffs = 0
    for moves in rounds:
        if len(moves) < 2:
            break
        iran, us = moves
        if iran == "escalate":
            total = payoffs(total, {"iran": -0.3 - 0.7 * (1 - r) + 0.2 * escalations})
            escalations += 1
        if us == "back_off":
            gain = 1.5 - 0.5 * (iran == "probe")
            total = payoffs(total, {"us": -1 - 0.5 * backoffs, "iran": gain})
            backoffs += 1
        elif iran == "escalate":
            return Leaf("war", payoffs(total, {"us": 1 - 4 * r, "iran": 1.5 * r - 3}))
        else:
            total = payoffs(total, {"us": 0.5, "iran": -1})
    played = h[1:]
    if len(played) == 4:
        return Leaf("us_backed_down_twice" if backoffs == 2 else "no_war", total)
    if len(played) % 2 == 0:
        return Move("iran", ("escalate", "probe"), (h[0], played))
    return Move("us", ("back_off", "confront"), played)


def evacuation(h: tuple[str, ...]) -> Node:
    """(e) Chance: a warning reaches the militia (1/2) or not, unknown to the US. The militia
    evacuates or stays, unseen by the US; the US strikes (fighters hit with probability 1/10 at
    evacuated sites, 7/10 at occupied ones) or holds. The US is three times as rational."""
    if not h:
        return Chance({"warning": Fraction(1, 2), "no_warning": Fraction(1, 2)})
    w = int(h[0] == "warning")
    if len(h) == 1:
        return Move("kh", ("evacuate", "stay"), h[0])
    e = int(h[1] == "evacuate")
    if len(h) == 2:
        return Move("us", ("strike", "hold"), "the start")
    kh = {"kh": -0.6 + 0.4 * w} if e else {"kh": 0.3 * (1 - w)}
    if h[2] == "hold":
        return Leaf("no_strike", payoffs(kh, {"us": -0.2, "kh": 0.4 - 0.4 * e}))
    if len(h) == 3:
        p = Fraction(1, 10) if e else Fraction(7, 10)
        return Chance({"fighters_hit": p, "empty_sites": 1 - p})
    if h[3] == "fighters_hit":
        return Leaf("fighters_hit", payoffs(kh, {"us": -0.3 + 2, "kh": -3}))
    return Leaf("empty_sites", payoffs(kh, {"us": -0.3 - 0.5, "kh": 0.5}))


PROVOCATION = {  # (player, resolute, Iran's move, the US answer) -> payoff
    ("iran", 0, "escalate", "back_off"): 0.75,
    ("iran", 0, "escalate", "confront"): -1.94,
    ("iran", 0, "probe", "back_off"): 1.34,
    ("iran", 0, "probe", "confront"): 1.26,
    ("iran", 1, "escalate", "back_off"): -2.29,
    ("iran", 1, "escalate", "confront"): 1.53,
    ("iran", 1, "probe", "back_off"): -2.24,
    ("iran", 1, "probe", "confront"): 0.01,
    ("us", 0, "escalate", "back_off"): 1.75,
    ("us", 0, "escalate", "confront"): -2.22,
    ("us", 0, "probe", "back_off"): 1.9,
    ("us", 0, "probe", "confront"): 1.64,
    ("us", 1, "escalate", "back_off"): -1.93,
    ("us", 1, "escalate", "confront"): 0.19,
    ("us", 1, "probe", "back_off"): -1.34,
    ("us", 1, "probe", "confront"): -0.64,
}


def provocation(h: tuple[str, ...]) -> Node:
    """(f) The signalling game of (b) with the payoffs of PROVOCATION (a resolute Iran wants a
    confrontation) and a prior of 3/10: several equilibria at one rationality, and the solver
    must follow the principal branch (it once jumped to another at rationalities 2 and 5)."""
    if not h:
        return Chance({"resolute": Fraction(3, 10), "bluffing": Fraction(7, 10)})
    if len(h) == 1:
        return Move("iran", ("escalate", "probe"), h[0])
    if len(h) == 2:
        return Move("us", ("back_off", "confront"), h[1])
    r = int(h[0] == "resolute")
    outcome = "us_backs_off" if h[2] == "back_off" else "war" if h[1] == "escalate" else "standoff"
    return Leaf(outcome, {p: PROVOCATION[(p, r, h[1], h[2])] for p in ("iran", "us")})


def bluff(h: tuple[str, ...]) -> Node:
    """(g) The bundled scenarios/bluff_2020.yaml (a next crisis after each round with
    probability 4/5): chance makes Iran resolute (3/10) or pragmatic, known to Iran only. Up to
    three rounds: the US absorbs (US -1, Iran +1) or strikes Iran (Iran -1); struck, Iran
    restrains the Guard (US +2, a resolute Iran -3) or retaliates (US -1), which is war with
    probability 3/20 (each -10). The US sees every move but the type."""
    if not h:
        return Chance({"resolute": Fraction(3, 10), "pragmatic": Fraction(7, 10)})
    resolute = int(h[0] == "resolute")
    total: dict[str, float] = {}
    i = 1
    for round_ in (1, 2, 3):
        if round_ > 1:
            if i == len(h):
                return Chance({"another_attack": Fraction(4, 5), "settled": Fraction(1, 5)})
            if h[i] == "settled":
                return Leaf("settled", total)
            i += 1
        if i == len(h):
            return Move("us", ("absorb", "strike_iran"), h[1:i])
        i += 1
        if h[i - 1] == "absorb":
            total = payoffs(total, {"us": -1, "iran": 1})
            continue
        total = payoffs(total, {"iran": -1})
        if i == len(h):
            return Move("iran", ("restrain_guard", "retaliate"), h[:i])
        i += 1
        if h[i - 1] == "restrain_guard":
            total = payoffs(total, {"us": 2, "iran": -3 * resolute})
            continue
        total = payoffs(total, {"us": -1})
        if i == len(h):
            return Chance({"war": Fraction(3, 20), "contained": Fraction(17, 20)})
        if h[i] == "war":
            return Leaf("war", payoffs(total, {"us": -10, "iran": -10}))
        i += 1
    return Leaf("three_crises", total)


@dataclass(frozen=True)
class Game:
    name: str
    spec: Spec
    players: tuple[str, ...]
    relative: Mapping[str, float]
    """Each player's rationality divided by the common one (`lam` of the scenario)."""
    bundled: str | None = None
    """A bundled scenario to check instead of tests/scenarios/hidden/gambit_<name>.yaml."""
    fixed: Mapping[str, float] = field(default_factory=dict)
    """Parameters set for the check, besides the common rationality."""
    common: str = "lam"
    """The scenario's parameter that holds the common rationality."""

    @property
    def path(self) -> Path:
        if self.bundled:
            return ROOT / "sim" / "scenarios" / f"{self.bundled}.yaml"
        return HIDDEN / f"gambit_{self.name}.yaml"

    def overrides(self, lam: float) -> dict[str, float]:
        return {self.common: lam, **self.fixed}


GAMES = [
    Game("attribution", attribution, ("iran", "kh", "us"), {"iran": 1, "kh": 1, "us": 1}),
    Game("signalling", signalling, ("iran", "us"), {"iran": 1, "us": 1}),
    Game("seen_by_one", seen_by_one, ("us", "iran", "kh"), {"us": 1, "iran": 1, "kh": 1}),
    Game("two_rounds", two_rounds, ("iran", "us"), {"iran": 1, "us": 1}),
    Game("evacuation", evacuation, ("kh", "us"), {"kh": 1, "us": 3}),
    Game("provocation", provocation, ("iran", "us"), {"iran": 1, "us": 1}),
    Game(
        "bluff",
        bluff,
        ("us", "iran"),
        {"us": 1, "iran": 1},
        bundled="bluff_2020",
        common="rationality",
    ),
]


# --- our side: the history replayed through the game graph --------------------------------------


@dataclass(frozen=True)
class Stop:
    """Where a replayed history stops: a node of a move layer, or an outcome at the end."""

    layer: int
    node: int
    outcome: int | None
    reward: np.ndarray
    """Each actor's payoff received along the way."""


def replay(model, graph, history: tuple[str, ...]) -> Stop:
    """Follow the action labels of `history` (option ids, each option's drawn branch id after
    it) through `graph` from the start; passes and `every_step` are followed on their own."""
    labels = list(history)
    index, node = 0, 0
    reward = np.zeros(len(model.actors))
    while True:
        layer = graph.layers[index]
        t = layer.out
        rows = np.flatnonzero(t.src == node)
        if layer.actor >= 0 and (t.option[rows] >= 0).any():
            if not labels:
                return Stop(index, node, None, reward)
            menu = model.options[layer.actor]
            here = {int(o) for o in t.option[rows] if o >= 0}
            if labels[0] in {o.id for o in menu}:
                label = labels.pop(0)
                option = next(o for o in menu if o.id == label)
            else:  # a forced move (a `fixed` chance actor's one option): the tree has no label
                assert len(here) == 1, f"{history}: {labels[0]} is not a move here"
                option = menu[here.pop()]
            rows = rows[t.option[rows] == option.index]
            if option.branches:  # every branch has a positive probability in these games
                assert rows.size == len(option.branches)
                rows = rows[[[b.id for b in option.branches].index(labels.pop(0))]]
        assert rows.size == 1, f"{history}: {rows.size} moves match"
        row = int(rows[0])
        reward = reward + t.reward[:, row]
        if t.dst[row] < 0:
            assert not labels, f"{history} ends early"
            return Stop(index, node, int(t.outcome[row]), reward)
        node = int(t.dst[row])
        index += 1


@dataclass
class Comparison:
    """The largest absolute difference of each kind of number between us and Gambit."""

    choices: float = 0.0
    beliefs: float = 0.0
    reach: float = 0.0
    outcomes: float = 0.0
    payoffs: float = 0.0

    def update(self, kind: str, ours, theirs) -> None:
        diff = float(np.max(np.abs(np.asarray(ours, float) - np.asarray(theirs, float))))
        setattr(self, kind, max(getattr(self, kind), diff))

    @property
    def worst(self) -> float:
        return max(self.choices, self.beliefs, self.reach, self.outcomes, self.payoffs)


def by_actions(vector) -> dict[tuple[str, ...], float]:
    return {history.actions: value for history, value in vector}


def compare(game: Game, lam: float, tree: Tree, profile) -> Comparison:
    """Everything our solvers say about `game` at rationality `lam` against Gambit's profile."""
    overrides = game.overrides(lam)
    model = compile_model(load_scenario(game.path), overrides)
    solution = strategic.solve(model)
    graph = build_graph(model)
    sets = information_layers(model, graph)
    eq = solution.equilibrium
    assert eq is not None, "the game hides nothing from a strategic actor"
    actors = list(model.actors)
    result = Comparison()

    # Both encodings are one game: each leaf is the scenario's outcome with the tree's payoffs.
    for history, leaf in tree.leaves.items():
        stop = replay(model, graph, history)
        assert model.outcome_ids[stop.outcome] == leaf.outcome, history
        expected = [leaf.payoffs.get(a, 0.0) for a in actors]
        np.testing.assert_allclose(stop.reward, expected, atol=1e-12, err_msg=str(history))

    # Information sets: every member of a Gambit set in one set of ours, different sets apart.
    realised = by_actions(profile.realiz_probs)
    beliefs = by_actions(profile.beliefs)
    ours_of: dict[tuple[str, Hashable], tuple[int, int]] = {}
    for key, members in tree.infosets.items():
        player, _ = key
        stops = [replay(model, graph, h) for h in members]
        ids = {(s.layer, int(sets[s.layer].of_node[s.node])) for s in stops}
        assert len(ids) == 1, f"{key}: Gambit's information set is split by ours: {ids}"
        layer_index, set_id = ids.pop()
        layer = graph.layers[layer_index]
        assert model.actors[layer.actor] == player
        ours_of[key] = (layer_index, set_id)

        # Choice probabilities, looked up by the state of a member node (what the engine does).
        s, n = layer.states, stops[0].node
        pi = solution.probabilities(
            layer.step, layer.turn, s.x[:, [n]], s.rung[[n]], s.peak[[n]], s.last[:, [n]]
        )[:, 0]
        menu = {o.id: o.index for o in model.options[layer.actor]}
        mixed = profile[H.path(*members[0])]
        actions = tree.actions[key]
        assert set(actions) == set(menu)
        result.update("choices", [pi[1 + menu[a]] for a in actions], [mixed[a] for a in actions])
        np.testing.assert_allclose(
            eq.set_pi[layer_index][:, set_id], pi, atol=1e-15, err_msg="set_pi and the table"
        )

        # Reach and beliefs: several histories may be one node of ours (states are merged).
        reach_ours = eq.reach[layer_index]
        mass = reach_ours[sets[layer_index].of_node == set_id].sum()
        nodes: dict[int, list[tuple[str, ...]]] = {}
        for h, stop in zip(members, stops):
            nodes.setdefault(stop.node, []).append(h)
        for node, hs in nodes.items():
            result.update("reach", reach_ours[node], sum(realised[h] for h in hs))
            result.update("beliefs", reach_ours[node] / mass, sum(beliefs[h] for h in hs))
    assert len(set(ours_of.values())) == len(ours_of), "two Gambit sets are one of ours"
    choosing = sum(int((eq.set_pi[i][0] < 1).sum()) for i in sets)  # not sets that only pass
    assert len(ours_of) == choosing, "a set of ours is not in the tree"

    # Outcome probabilities and expected payoffs, from the exact solver (with the solved choices)
    # and, for the payoffs, from the strategic solver's own values.
    results = exact.solve(prepare_model(load_scenario(game.path), overrides))
    gambit_p = dict.fromkeys(model.outcome_ids, 0.0)
    for history, leaf in tree.leaves.items():
        gambit_p[leaf.outcome] += realised[history]
    result.update("outcomes", results.probabilities, [gambit_p[o] for o in model.outcome_ids])
    gambit_payoffs = profile.payoffs
    for player in game.players:
        a = actors.index(player)
        theirs = gambit_payoffs[player] / game.relative[player]
        result.update("payoffs", [results.payoff_mean[a], solution.values[a]], [theirs, theirs])
    return result


# --- the cross-checks ---------------------------------------------------------------------------


def gambit_profiles(game: Game) -> tuple[Tree, dict[float, tuple[float, object]]]:
    """Gambit's agent logit QRE of `game` at every rationality, on one trace of the principal
    branch (each player's payoffs scaled by its relative rationality): rationality -> (the
    lambda Gambit's tracer stopped at, within about 1e-8 of it, and the profile there)."""
    tree = build_tree(game.players, game.spec, game.relative)
    solved = pg.qre.logit_solve_lambda(tree.game, list(RATIONALITIES), use_strategic=False)
    assert len(solved) == len(RATIONALITIES)
    profiles = {}
    for lam, qre in zip(RATIONALITIES, solved):
        assert qre.lam == pytest.approx(lam, abs=1e-6)
        profiles[lam] = (qre.lam, qre.profile)
    return tree, profiles


@pytest.mark.parametrize("game", GAMES, ids=[g.name for g in GAMES])
def test_agent_qre_matches_gambit(game):
    tree, profiles = gambit_profiles(game)
    for lam, (at, profile) in profiles.items():
        found = compare(game, at, tree, profile)
        assert found.worst <= TOL, f"{game.name} at rationality {lam}: {found}"


def test_monte_carlo_agrees_with_the_exact_answer():
    """The engine plays the solved choices by information set: 200,000 runs of the two-round
    game agree with the exact outcome probabilities and payoffs within 5 standard errors."""
    game = next(g for g in GAMES if g.name == "two_rounds")
    model = prepare_model(load_scenario(game.path), {"lam": 2.0})
    check = exact.exact_check(run_monte_carlo(model, 200_000, seed=14), exact.solve(model))
    assert check["max_abs_z"] is not None and check["max_abs_z"] <= 5, check

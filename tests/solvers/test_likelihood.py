"""Verification of sim/solvers/likelihood.py: tests that would catch a wrong likelihood.

Two scenarios below, "duel" and "relay", are small enough to enumerate. Their semantics are coded
a second time, in plain Python (`duel_game`, `relay_game`, run by `forward`: an independent
forward evaluator, no sim code), which lists every log a complete episode can leave, with its
probability, outcome and peak rung. The likelihood must agree with it path by path, with
brute-force sums over the completions of blank cells, and with hand calculations written out in
the comments.

Duel (horizon 3, turn order a then b; theta = 0.6, lam = 1.5 by default):

- a (logit, rationality lam): utilities probe = 1 - 0.5 * heat, wait = 0.2.
  probe: heat += 1 (clipped to [0, 3]), rung tense; then a branch read after the effect:
  noticed p 0.3 (rung war: ends the crisis mid-step), leak p theta * heat / 4 (heat += 1 more),
  quiet the remainder. wait: rung calm.
- b (table responding to a's move of this step): after probe {hit 0.5, warn 0.3, idle 0.2},
  after wait {warn 0.4, idle 0.6}; hit requires heat >= 2 (else the row is renormalised over
  warn and idle). hit: hurt = bernoulli(0.4) (unobserved draw that a terminal reads).
  warn: heeded p 0.35 (heat -= 1) or ignored p 0.65 (two constant branches). idle: nothing.
- every_step: heat -= 1 if b idled.
- terminals, in order, after every move and after every_step: war (rung >= 2), wounded
  (hurt == 1), cooled (heat == 0 and step >= 2); the horizon ends as `stalemate`.

Relay (horizon 3, turn order a, c, b): a's table answers b's move of the previous step (rows
push, pass, default); a's go needs fuel >= 1 (else the row renormalises to stay), spends fuel
and draws far (p 0.2 + 0.1 * fuel, rung high) or near; c has no options (always passes); b's
fixed push needs rung >= 1 (else b passes) and sets boom = binomial(2, 0.5) >= 2 (p 1/4,
unobserved); every_step refuels after a b pass; terminals blown (boom == 1), soar (rung >= 2 and
step >= 2); the horizon ends as `drift`.
"""

from __future__ import annotations

import itertools
import math
import random
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import numpy as np
import pytest

from sim.analysis.episodes import blanked, simulate_observations, to_log_text
from sim.format.episode_log import parse_episode_log
from sim.model.loading import load_scenario, load_text
from sim.solvers.likelihood import impossible_problem, likelihood, observations
from sim.solvers.prepare import prepare_model
from tests.conftest import SCENARIOS

THETA, LAM = 0.6, 1.5
HEADER = "episode,step,actor,option,branch"

DUEL = """\
schema: 1
id: duel
title: Likelihood hand check
horizon: 3
ladder: [calm, tense, war]
parameters:
  theta: {value: 0.6, min: 0, max: 1}
  lam: {value: 1.5, min: 0, max: 5}
state:
  heat: {initial: 0, min: 0, max: 3, integer: true}
  hurt: {initial: 0, min: 0, max: 1, integer: true}
actors:
  a: {label: A}
  b: {label: B}
turn_order: [a, b]
options:
  a:
    - id: probe
      rung: tense
      effects: {add: {heat: 1}}
      outcomes:
        - {id: noticed, p: 0.3, rung: war}
        - {id: leak, p: "theta * heat / 4", effects: {add: {heat: 1}}}
        - {id: quiet}
    - id: wait
      rung: calm
  b:
    - id: hit
      requires: heat >= 2
      effects: {set: {hurt: "bernoulli(0.4)"}}
    - id: warn
      outcomes:
        - {id: heeded, p: 0.35, effects: {add: {heat: -1}}}
        - {id: ignored, p: 0.65}
    - id: idle
policies:
  a:
    kind: logit
    rationality: lam
    utilities:
      probe: "1 - 0.5 * heat"
      wait: 0.2
  b:
    kind: table
    respond_to: a
    table:
      probe: {hit: 0.5, warn: 0.3, idle: 0.2}
      wait: {warn: 0.4, idle: 0.6}
      default: {idle: 1}
every_step:
  effects: {add: {heat: "where(last_b == 'idle', -1, 0)"}}
outcomes:
  war: {when: rung >= 2}
  wounded: {when: hurt == 1}
  cooled: {when: "heat == 0 and step >= 2"}
end: stalemate
"""

RELAY = """\
schema: 1
id: relay
title: Likelihood hand check with passes
horizon: 3
ladder: [low, mid, high]
state:
  fuel: {initial: 2, min: 0, max: 2, integer: true}
  boom: {initial: 0, min: 0, max: 1, integer: true}
actors:
  a: {label: A}
  b: {label: B}
  c: {label: C}
turn_order: [a, c, b]
options:
  a:
    - id: go
      requires: fuel >= 1
      rung: mid
      effects: {add: {fuel: -1}}
      outcomes:
        - {id: far, p: "0.2 + 0.1 * fuel", rung: high}
        - {id: near}
    - id: stay
      rung: low
  b:
    - id: push
      requires: rung >= 1
      effects: {set: {boom: "binomial(2, 0.5) >= 2"}}
  c: []
policies:
  a:
    kind: table
    respond_to: b
    table:
      push: {go: 0.3, stay: 0.7}
      pass: {go: 0.8, stay: 0.2}
      default: {go: 0.5, stay: 0.5}
  b: {kind: fixed, option: push}
  c: {kind: logit, utilities: {}}
every_step:
  effects: {add: {fuel: "where(last_b == 'pass', 1, 0)"}}
outcomes:
  blown: {when: boom == 1}
  soar: {when: rung >= 2 and step >= 2}
end: drift
"""

# --- the independent evaluator ------------------------------------------------------------------


@dataclass(frozen=True)
class Game:
    """A scenario's semantics in plain Python: each actor's moves as (option, branch,
    probability, next state), every_step as a next state, the terminals, the horizon."""

    order: tuple[str, ...]
    horizon: int
    moves: dict[str, Callable[[dict], Iterable[tuple[str, str, float, dict]]]]
    every_step: Callable[[dict], dict]
    terminal: Callable[[dict], str | None]
    start: dict
    end: str
    menus: dict[str, dict[str, list[str]]]


def forward(game: Game) -> tuple[dict, dict]:
    """Every complete log of `game`: rows ((step, actor, option, branch), ...) -> {outcome:
    probability}, and the same rows -> {peak rung: probability}. A move that changes no log
    cell (a hidden draw) gives several next states under the same rows; they add up."""
    out: dict = defaultdict(lambda: defaultdict(float))
    peaks: dict = defaultdict(lambda: defaultdict(float))

    def record(rows, outcome, p, s):
        out[rows][outcome] += p
        peaks[rows][s["peak"]] += p

    def go(s, turn, rows, p):
        step = s["step"]
        if turn == len(game.order):
            s2 = game.every_step(s)
            o = game.terminal(s2)
            if o:
                record(rows, o, p, s2)
            elif step == game.horizon:
                record(rows, game.end, p, s2)
            else:
                go({**s2, "step": step + 1}, 0, rows, p)
            return
        actor = game.order[turn]
        for option, branch, q, s2 in game.moves[actor](s):
            if q == 0:
                continue
            s2 = {**s2, "peak": max(s2["peak"], s2["rung"]), f"last_{actor}": option}
            rows2 = (*rows, (step, actor, option, branch))
            o = game.terminal(s2)
            if o:
                record(rows2, o, p * q, s2)
            else:
                go(s2, turn + 1, rows2, p * q)

    go({**game.start, "rung": 0, "peak": 0, "step": 1}, 0, (), 1.0)
    return out, peaks


def _clip(x: int, hi: int) -> int:
    return min(max(x, 0), hi)


def p_probe(heat: int, lam: float = LAM) -> float:
    """a's logit probability of probing: e^(lam u1) / (e^(lam u1) + e^(lam u2))."""
    u1, u2 = 1 - 0.5 * heat, 0.2
    return math.exp(lam * u1) / (math.exp(lam * u1) + math.exp(lam * u2))


def duel_game(theta: float = THETA, lam: float = LAM) -> Game:
    def a_moves(s):
        pp = p_probe(s["heat"], lam)
        h1 = _clip(s["heat"] + 1, 3)
        leak = theta * h1 / 4  # read after probe's own effect
        base = {**s, "heat": h1, "rung": 1}
        yield "probe", "noticed", pp * 0.3, {**base, "rung": 2}
        yield "probe", "leak", pp * leak, {**base, "heat": _clip(h1 + 1, 3)}
        yield "probe", "quiet", pp * (1 - 0.3 - leak), base
        yield "wait", "", 1 - pp, {**s, "rung": 0}

    def b_moves(s):
        table = {
            "probe": {"hit": 0.5, "warn": 0.3, "idle": 0.2},
            "wait": {"warn": 0.4, "idle": 0.6},
        }
        avail = {k: v for k, v in table[s["last_a"]].items() if k != "hit" or s["heat"] >= 2}
        total = sum(avail.values())  # unavailable options' share spread in proportion
        for option, w in avail.items():
            p = w / total
            if option == "hit":  # hurt = bernoulli(0.4): a draw the log does not show
                yield option, "", p * 0.4, {**s, "hurt": 1}
                yield option, "", p * 0.6, {**s, "hurt": 0}
            elif option == "warn":
                yield option, "heeded", p * 0.35, {**s, "heat": _clip(s["heat"] - 1, 3)}
                yield option, "ignored", p * 0.65, s
            else:
                yield option, "", p, s

    def terminal(s):
        if s["rung"] >= 2:
            return "war"
        if s["hurt"] == 1:
            return "wounded"
        if s["heat"] == 0 and s["step"] >= 2:
            return "cooled"
        return None

    return Game(
        order=("a", "b"),
        horizon=3,
        moves={"a": a_moves, "b": b_moves},
        every_step=lambda s: {**s, "heat": _clip(s["heat"] - (s["last_b"] == "idle"), 3)},
        terminal=terminal,
        start={"heat": 0, "hurt": 0, "last_a": "none", "last_b": "none"},
        end="stalemate",
        menus={
            "a": {"probe": ["noticed", "leak", "quiet"], "wait": []},
            "b": {"hit": [], "warn": ["heeded", "ignored"], "idle": []},
        },
    )


def relay_game() -> Game:
    def a_moves(s):
        rows = {
            "none": {"go": 0.5, "stay": 0.5},
            "push": {"go": 0.3, "stay": 0.7},
            "pass": {"go": 0.8, "stay": 0.2},
        }
        avail = {k: v for k, v in rows[s["last_b"]].items() if k != "go" or s["fuel"] >= 1}
        total = sum(avail.values())
        if "go" in avail:
            fuel = s["fuel"] - 1
            far = 0.2 + 0.1 * fuel  # read after go's own effect
            p = avail["go"] / total
            yield "go", "far", p * far, {**s, "fuel": fuel, "rung": 2}
            yield "go", "near", p * (1 - far), {**s, "fuel": fuel, "rung": 1}
        yield "stay", "", avail["stay"] / total, {**s, "rung": 0}

    def b_moves(s):
        if s["rung"] >= 1:  # boom = binomial(2, 0.5) >= 2: probability 1/4, not in the log
            yield "push", "", 0.25, {**s, "boom": 1}
            yield "push", "", 0.75, {**s, "boom": 0}
        else:
            yield "pass", "", 1.0, s

    def terminal(s):
        if s["boom"] == 1:
            return "blown"
        if s["rung"] >= 2 and s["step"] >= 2:
            return "soar"
        return None

    return Game(
        order=("a", "c", "b"),
        horizon=3,
        moves={"a": a_moves, "c": lambda s: [("pass", "", 1.0, s)], "b": b_moves},
        every_step=lambda s: {**s, "fuel": _clip(s["fuel"] + (s["last_b"] == "pass"), 2)},
        terminal=terminal,
        start={"fuel": 2, "boom": 0, "last_a": "none", "last_b": "none", "last_c": "none"},
        end="drift",
        menus={"a": {"go": ["far", "near"], "stay": []}, "b": {"push": []}, "c": {}},
    )


# --- helpers ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def scenarios():
    return {"duel": load_text(DUEL, "duel.yaml"), "relay": load_text(RELAY, "relay.yaml")}


@pytest.fixture(scope="module")
def models(scenarios):
    return {name: prepare_model(sc, {}) for name, sc in scenarios.items()}


def log_text(episodes) -> str:
    """A log of episodes, each a sequence of (step, actor, option, branch) rows."""
    lines = [HEADER]
    for e, rows in enumerate(episodes, start=1):
        lines += [f"{e},{s},{a},{o},{b}" for s, a, o, b in rows]
    return "\n".join(lines) + "\n"


def lik_of(model, episodes, **kw):
    log = parse_episode_log(log_text(episodes), model.scenario, "log.csv")
    return likelihood(model, observations(model, log), **kw), log


def rows_of(text: str):
    """Rows from 'step,actor,option,branch; ...' shorthand (episode 1)."""
    out = []
    for cell in text.split(";"):
        s, a, o, *b = [x.strip() for x in cell.split(",")]
        out.append((int(s), a, o, b[0] if b else ""))
    return tuple(out)


# --- 1. hand calculations -----------------------------------------------------------------------


def test_evaluator_matches_hand_numbers():
    """The independent evaluator itself reproduces hand-computed path probabilities."""
    paths, _ = forward(duel_game())
    # p_probe(0) = e^1.5 / (e^1.5 + e^0.3) = 4.4817 / (4.4817 + 1.3499) = 0.768525
    assert p_probe(0) == pytest.approx(0.7685247834990175, abs=1e-15)
    assert paths[rows_of("1,a,probe,noticed")]["war"] == pytest.approx(0.3 * p_probe(0), 1e-14)
    assert sum(sum(v.values()) for v in paths.values()) == pytest.approx(1.0, abs=1e-13)
    relay, _ = forward(relay_game())
    assert sum(sum(v.values()) for v in relay.values()) == pytest.approx(1.0, abs=1e-13)


DUEL_HAND = [
    # 1,1,a,probe,noticed: logit e^1.5/(e^1.5+e^0.3) = 0.7685247835, then noticed (p 0.3) puts
    # the rung at war, which ends the crisis after a's move: 0.7685247835 * 0.3 = 0.2305574350.
    ("1,a,probe,noticed", 0.3 * p_probe(0)),
    # probe, leak: leak p = theta * heat / 4 read after probe's effect (heat 1) = 0.6 / 4 = 0.15;
    # heat becomes 2, so hit is available and b keeps the probe row: hit 0.5; hurt = bernoulli
    # (0.4) = 1 ends as wounded: 0.7685247835 * 0.15 * 0.5 * 0.4 = 0.0230557435.
    ("1,a,probe,leak; 1,b,hit", p_probe(0) * 0.15 * 0.5 * 0.4),
    # wait (1 - 0.7685 = 0.2314752165), idle (0.6); every_step heat stays 0 (clipped); step 2:
    # a waits again (heat 0: 0.2314752165) and cooled (heat 0, step 2) ends the crisis after
    # a's move: 0.2314752165^2 * 0.6 = 0.0321486862.
    ("1,a,wait; 1,b,idle; 2,a,wait", (1 - p_probe(0)) ** 2 * 0.6),
    # Ends after every_step of step 2 (not the horizon): probe quiet (p 1 - 0.3 - 0.15 = 0.55,
    # heat 1), hit unavailable so the probe row renormalises to warn 0.6 idle 0.4: idle 0.4;
    # every_step heat 0; step 2 the same again (heat 0 at a's move, so the same logit); after
    # every_step heat 0 at step 2 is cooled: (0.7685247835 * 0.55 * 0.4)^2 = 0.0285857830.
    ("1,a,probe,quiet; 1,b,idle; 2,a,probe,quiet; 2,b,idle", (p_probe(0) * 0.55 * 0.4) ** 2),
    # wait (0.2314752165), warn (0.4) heeded (0.35): heat clipped at 0; step 2 (heat 0) probe
    # (0.7685247835) leak (0.15) heat 2, warn (0.3, hit available) ignored (0.65); every_step
    # (warn: heat 2); step 3 a's logit at heat 2: e^0 / (e^0 + e^0.3) = 0.4255574832 probe,
    # noticed (0.3): war at a's move in step 3.
    (
        "1,a,wait; 1,b,warn,heeded; 2,a,probe,leak; 2,b,warn,ignored; 3,a,probe,noticed",
        (1 - p_probe(0)) * 0.4 * 0.35 * p_probe(0) * 0.15 * 0.3 * 0.65 * p_probe(2) * 0.3,
    ),
    # To the horizon, `stalemate`: probe quiet (0.7685 * 0.55), idle (0.4): heat 0; step 2
    # probe leak (heat 2; 0.7685 * 0.15), hit (0.5) with hurt 0 (0.6); every_step (hit: heat 2);
    # step 3 at heat 2: wait (1 - 0.4255574832 = 0.5744425168), warn (0.4) ignored (0.65); no
    # terminal holds after every_step (heat 2) and the horizon ends it.
    (
        "1,a,probe,quiet; 1,b,idle; 2,a,probe,leak; 2,b,hit; 3,a,wait; 3,b,warn,ignored",
        p_probe(0) * 0.55 * 0.4 * p_probe(0) * 0.15 * 0.5 * 0.6 * (1 - p_probe(2)) * 0.4 * 0.65,
    ),
]

RELAY_HAND = [
    # default row (b has not moved): go 0.5, fuel 1 so far p = 0.2 + 0.1 * 1 = 0.3 (rung high;
    # soar needs step >= 2); c passes (no options); b pushes (fixed, rung >= 1) and boom =
    # binomial(2, 0.5) >= 2 holds with probability 1/4: 0.5 * 0.3 * 0.25 = 0.0375, blown.
    ("1,a,go,far; 1,c,pass; 1,b,push", 0.5 * 0.3 * 0.25),
    # stay (0.5), c passes, b passes (push needs rung >= 1); every_step fuel min(2 + 1, 2) = 2;
    # step 2 the pass row: go 0.8, far 0.3: soar after a's move: 0.5 * 0.8 * 0.3 = 0.12.
    ("1,a,stay; 1,c,pass; 1,b,pass; 2,a,go,far", 0.5 * 0.8 * 0.3),
    # go near (0.5 * 0.7, fuel 1), push without boom (0.75), fuel 1; step 2 push row: go 0.3,
    # fuel 0, near 1 - 0.2 = 0.8, push without boom (0.75); step 3 go is unavailable (fuel 0):
    # the push row renormalises to stay 0.7 / 0.7 = 1; b passes; the horizon: drift.
    # 0.5 * 0.7 * 0.75 * 0.3 * 0.8 * 0.75 * 1 = 0.04725.
    (
        "1,a,go,near; 1,c,pass; 1,b,push; 2,a,go,near; 2,c,pass; 2,b,push; 3,a,stay; 3,c,pass;"
        " 3,b,pass",
        0.5 * 0.7 * 0.75 * 0.3 * 0.8 * 0.75,
    ),
]


@pytest.mark.parametrize(
    ("name", "shorthand", "expected"),
    [("duel", *h) for h in DUEL_HAND] + [("relay", *h) for h in RELAY_HAND],
)
def test_hand_calculated_logs(models, name, shorthand, expected):
    """Log-likelihoods of specific logs equal hand calculations to 1e-12."""
    lk, _ = lik_of(models[name], [rows_of(shorthand)])
    assert lk.loglik == pytest.approx(math.log(expected), abs=1e-12)
    assert lk.likelihood[0] == pytest.approx(expected, abs=1e-14)
    assert lk.impossible_at == {}


def test_hand_calculation_at_other_parameter_values(scenarios):
    """Overridden parameters (theta in a branch p, lam in the logit) enter the likelihood."""
    theta, lam = 0.8, 0.7
    model = prepare_model(scenarios["duel"], {"theta": theta, "lam": lam})
    # probe at heat 0: e^0.7 / (e^0.7 + e^0.14); leak p = 0.8 * 1 / 4 = 0.2; hit 0.5; hurt 0
    # (0.6); every_step heat 2; step 2 logit at heat 2: e^0 / (e^0 + e^0.14), probe: heat 3,
    # leak p = 0.8 * 3 / 4 = 0.6 (heat stays 3 by clipping); hit 0.5 and hurt 1 (0.4).
    e = math.exp
    expected = e(0.7) / (e(0.7) + e(0.14)) * 0.2 * 0.5 * 0.6 * 1 / (1 + e(0.14)) * 0.6 * 0.5 * 0.4
    shorthand = "1,a,probe,leak; 1,b,hit; 2,a,probe,leak; 2,b,hit"
    lk, _ = lik_of(model, [rows_of(shorthand)])
    assert lk.loglik == pytest.approx(math.log(expected), abs=1e-12)
    paths, _ = forward(duel_game(theta, lam))
    assert sum(paths[rows_of(shorthand)].values()) == pytest.approx(expected, abs=1e-15)


def test_docstring_coin_example():
    """The module docstring's worked example: 0.7310585786 * 0.3 = 0.2193175736."""
    coin = """\
schema: 1
id: coin
title: Coin
horizon: 2
ladder: [calm, war]
actors: {a: {label: A}}
turn_order: [a]
options:
  a:
    - id: go
      outcomes: [{id: success, p: 0.3, rung: war}, {id: failure}]
    - id: stay
policies:
  a: {kind: logit, utilities: {go: 1, stay: 0}}
outcomes:
  over: {when: rung >= 1}
"""
    model = prepare_model(load_text(coin, "coin.yaml"), {})
    lk, _ = lik_of(model, [((1, "a", "go", "success"),)])
    expected = math.e / (math.e + 1) * 0.3
    assert lk.likelihood[0] == pytest.approx(expected, abs=1e-15)
    assert f"{expected:.10f}" == "0.2193175736"


# --- 2. every full path against the independent evaluator --------------------------------------


@dataclass(frozen=True)
class Case:
    model: object
    game: Game
    paths: dict
    peaks: dict
    keys: list
    lk: object


@pytest.fixture(scope="module", params=["duel", "relay"])
def case(request, models):
    game = {"duel": duel_game, "relay": relay_game}[request.param]()
    paths, peaks = forward(game)
    keys = sorted(paths)
    lk, _ = lik_of(models[request.param], keys)
    return Case(models[request.param], game, paths, peaks, keys, lk)


def test_every_full_path_matches_independent_evaluator(case):
    """Each complete log's likelihood is the product of its choice, branch and draw
    probabilities (and of ending there), as the plain-Python evaluator computes it."""
    assert 20 <= len(case.keys) <= 5000
    expected = np.array([sum(case.paths[k].values()) for k in case.keys])
    np.testing.assert_allclose(case.lk.likelihood, expected, rtol=1e-12, atol=1e-15)
    assert case.lk.impossible_at == {}
    # logs end at every row: mid-step, after every_step and at the horizon
    rows = case.game.horizon * len(case.game.order)
    n, lengths = len(case.game.order), {len(k) for k in case.keys}
    assert rows in lengths and any(m % n for m in lengths)
    assert any(m < rows and m % n == 0 for m in lengths)


def test_full_paths_sum_to_one(case):
    """The likelihoods of all complete logs (early ends included) sum to 1."""
    assert case.lk.likelihood.sum() == pytest.approx(1.0, abs=1e-12)


def test_outcome_and_peak_mass_match_evaluator(case):
    """lk.outcome and lk.peak split each episode's likelihood by outcome and peak rung."""
    ids = list(case.model.outcome_ids)
    want = np.array([[case.paths[k].get(o, 0.0) for o in ids] for k in case.keys])
    np.testing.assert_allclose(case.lk.outcome, want, rtol=1e-12, atol=1e-15)
    want_peak = np.array([[case.peaks[k].get(r, 0.0) for r in range(3)] for k in case.keys])
    np.testing.assert_allclose(case.lk.peak, want_peak, rtol=1e-12, atol=1e-15)


# --- 3. blank cells -----------------------------------------------------------------------------


def completions(rows, menus):
    """Every completion of a log's blank cells (option None: any option or pass; branch None:
    any branch of the option, or empty where it has none)."""
    choices = []
    for step, actor, option, branch in rows:
        opts = [*menus[actor], "pass"] if option is None else [option]
        row = []
        for o in opts:
            branches = menus[actor].get(o, [])
            if branch is None:
                row += [(step, actor, o, b) for b in (branches or [""])]
            else:
                row.append((step, actor, o, branch))
        choices.append(row)
    return [tuple(c) for c in itertools.product(*choices)]


def blank(rows, rng: random.Random, fraction: float):
    """Rows with some option and branch cells (None) or branch cells alone made blank."""
    out = []
    for step, actor, option, branch in rows:
        u = rng.random()
        if u < fraction / 2:
            out.append((step, actor, None, None))
        elif u < fraction and branch:
            out.append((step, actor, option, None))
        else:
            out.append((step, actor, option, branch))
    return tuple(out)


def cells(rows):
    return tuple((s, a, o or "", b or "") for s, a, o, b in rows)


def test_blanks_equal_sum_over_completions(case):
    """A log with empty cells has the summed likelihood of every completion of its blanks
    (brute force through the same function, and through the independent evaluator)."""
    rng = random.Random(7)
    picked = rng.sample(case.keys, 12)
    blanked = [blank(k, rng, 0.6) for k in picked]
    blanked.append(tuple((s, a, None, None) for s, a, _, _ in max(case.keys, key=len)))
    assert any(None in row for b in blanked for row in b)
    lk, _ = lik_of(case.model, [cells(b) for b in blanked])
    for e, b in enumerate(blanked):
        done = completions(b, case.game.menus)
        brute, _ = lik_of(case.model, done)
        assert lk.likelihood[e] == pytest.approx(brute.likelihood.sum(), abs=1e-12)
        independent = sum(sum(case.paths[c].values()) for c in done if c in case.paths)
        assert lk.likelihood[e] == pytest.approx(independent, abs=1e-12)


def test_all_blank_gives_probability_of_ending_there(case):
    """Blanking every cell leaves the probability that the crisis ends at that row, and those
    probabilities sum to 1 over the rows a log can end at."""
    g = case.game
    order = [(s, a) for s in range(1, g.horizon + 1) for a in g.order]
    ends = defaultdict(float)
    for k in case.keys:
        ends[len(k)] += sum(case.paths[k].values())
    logs = [tuple((s, a, "", "") for s, a in order[:n]) for n in range(1, len(order) + 1)]
    lk, _ = lik_of(case.model, logs)
    np.testing.assert_allclose(lk.likelihood, [ends[n] for n in range(1, len(order) + 1)])
    assert lk.likelihood.sum() == pytest.approx(1.0, abs=1e-12)


def test_all_blank_duel_first_row(models):
    """Ending at the duel's first row is war only: 0.3 * e^1.5 / (e^1.5 + e^0.3)."""
    lk, _ = lik_of(models["duel"], [((1, "a", "", ""),)])
    assert lk.likelihood[0] == pytest.approx(0.3 * p_probe(0), abs=1e-14)


# --- 4. impossible episodes ---------------------------------------------------------------------


def test_impossible_moves_are_located(models):
    """An impossible move gives likelihood 0 and impossible_at names its log line; the other
    episodes keep their likelihood."""
    episodes = [
        rows_of("1,a,probe,noticed; 1,b,idle"),  # line 3: noticed ended the crisis at line 2
        rows_of("1,a,wait; 1,b,hit"),  # line 5: hit is not in the row answering wait
        rows_of("1,a,probe,quiet; 1,b,hit; 2,a,wait"),  # line 7: hit needs heat >= 2, heat 1
        rows_of("1,a,probe,noticed"),  # possible
    ]
    lk, log = lik_of(models["duel"], episodes)
    assert list(lk.likelihood[:3]) == [0.0, 0.0, 0.0]
    assert lk.likelihood[3] == pytest.approx(0.3 * p_probe(0), abs=1e-14)
    assert lk.impossible_at == {0: 3, 1: 5, 2: 7}
    assert lk.loglik == -math.inf
    lines = [p.line for p in impossible_problem(log, lk, "the defaults").problems]
    assert lines == [3, 5, 7]


def test_impossible_passes_are_located(models):
    """A pass where an option is available, and an option where none is, are impossible."""
    episodes = [
        rows_of("1,a,go,near; 1,c,pass; 1,b,pass"),  # line 4: push was available (rung mid)
        rows_of("1,a,stay; 1,c,pass; 1,b,push"),  # line 7: push needs rung >= 1
    ]
    lk, _ = lik_of(models["relay"], episodes)
    assert list(lk.likelihood) == [0.0, 0.0]
    assert lk.impossible_at == {0: 4, 1: 7}


def test_log_ending_where_no_terminal_can_hold(models):
    """An episode whose log stops where the crisis cannot end (before the horizon, no terminal
    possible there) is impossible at its end: impossible_at -1, located at its last row."""
    lk, log = lik_of(models["duel"], [rows_of("1,a,wait; 1,b,idle"), rows_of("1,a,probe,quiet")])
    assert list(lk.likelihood) == [0.0, 0.0]
    assert lk.impossible_at == {0: -1, 1: -1}
    problems = impossible_problem(log, lk, "the defaults").problems
    assert [p.line for p in problems] == [3, 4]
    assert all("cannot end where its log ends" in p.message for p in problems)


# A duel episode that stays possible to the horizon (heat never 0 from step 2 on).
LIVE = "1,a,probe,quiet; 1,b,warn,ignored; 2,a,probe,quiet; 2,b,warn,ignored; 3,a,wait; 3,b,idle"


@pytest.mark.parametrize(
    ("shorthand", "line"),
    [
        # noticed ends the crisis for sure at a's move (line 2); the log goes on (line 3)
        ("1,a,probe,noticed; 1,b,idle", 3),
        # cooled holds for sure after 2,b,warn,heeded (heat 0, line 5); the log goes on (line 6)
        ("1,a,probe,quiet; 1,b,idle; 2,a,probe,quiet; 2,b,warn,heeded; 3,a,wait", 6),
    ],
)
def test_log_going_on_after_a_certain_end_alone(models, shorthand, line):
    """A one-episode log that goes on after the crisis surely ended names the first row after
    the end, as it does when another episode is still live."""
    lk, _ = lik_of(models["duel"], [rows_of(shorthand)])
    assert lk.likelihood[0] == 0.0
    assert lk.impossible_at == {0: line}


def test_log_going_on_after_a_certain_end_at_the_last_turn(models):
    """A log that goes on after the crisis surely ended at the step's last move names the first
    row after the end (another episode keeps the pass going)."""
    shorthand = "1,a,probe,quiet; 1,b,idle; 2,a,probe,quiet; 2,b,warn,heeded; 3,a,wait"
    lk, _ = lik_of(models["duel"], [rows_of(shorthand), rows_of(LIVE)])
    assert lk.likelihood[0] == 0.0 and lk.likelihood[1] > 0
    assert lk.impossible_at == {0: 6}


def test_impossible_at_does_not_depend_on_other_episodes(models):
    """Where an impossible move is located (mid-step end, the log going on) does not depend on
    the other episodes of the log, as long as one is still live."""
    lk, _ = lik_of(models["duel"], [rows_of("1,a,probe,noticed; 1,b,idle"), rows_of(LIVE)])
    assert lk.impossible_at == {0: 3}
    assert lk.likelihood[1] > 0


# --- 6. episodes never merge --------------------------------------------------------------------


def test_episodes_are_independent(case):
    """Several episodes in one log (identical ones included) give the sum of their separate
    log-likelihoods."""
    rng = random.Random(3)
    picked = [*rng.sample(case.keys, 5), case.keys[0], case.keys[0]]
    together, _ = lik_of(case.model, picked)
    alone = [lik_of(case.model, [k])[0].loglik for k in picked]
    np.testing.assert_allclose(together.per_episode, alone, rtol=0, atol=1e-12)
    assert together.loglik == pytest.approx(sum(alone), abs=1e-12)


# --- 5. the particle filter ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def tit_for_tat():
    model = prepare_model(load_scenario(SCENARIOS / "tit_for_tat.yaml"), {})
    sim = simulate_observations(model, 4, seed=11)
    obs = blanked(sim.observations, 0.6, seed=5)
    return model, obs


def test_particle_filter_agrees_with_exact(tit_for_tat):
    """The particle filter's likelihood estimates average to the exact likelihood within a few
    Monte Carlo standard errors, and are identical for the same seed."""
    model, obs = tit_for_tat
    exact = likelihood(model, obs)
    assert np.all(exact.likelihood > 0)
    assert exact.states > 50 * obs.episodes  # many states: the filter has to resample
    runs = np.array([likelihood(model, obs, particles=4, seed=s).likelihood for s in range(40)])
    assert not np.allclose(runs, exact.likelihood, rtol=1e-6)  # it did approximate
    mean = runs.mean(axis=0)
    se = runs.std(axis=0, ddof=1) / math.sqrt(len(runs))
    assert np.all(np.abs(mean - exact.likelihood) <= 4 * se)
    again = likelihood(model, obs, particles=4, seed=3)
    np.testing.assert_array_equal(again.likelihood, runs[3])
    twice = likelihood(model, obs, particles=4, seed=3)
    np.testing.assert_array_equal(twice.outcome, again.outcome)
    np.testing.assert_array_equal(twice.peak, again.peak)


def test_particle_filter_with_enough_particles_is_exact(tit_for_tat):
    """With more particles than states the filter never resamples: it is the exact pass."""
    model, obs = tit_for_tat
    exact = likelihood(model, obs)
    big = likelihood(model, obs, particles=10_000, seed=2)
    np.testing.assert_allclose(big.likelihood, exact.likelihood, rtol=1e-13)


def test_exact_likelihood_of_simulated_log_round_trips(tit_for_tat):
    """The likelihood of Observations equals that of the same moves written by to_log_text and
    read back (the log reader and `observations` code the same moves)."""
    model, obs = tit_for_tat
    text = to_log_text(model, obs)
    log = parse_episode_log(text, model.scenario, "sim.csv")
    again = likelihood(model, observations(model, log))
    np.testing.assert_allclose(again.likelihood, likelihood(model, obs).likelihood, rtol=1e-13)


# --- other policies and turn orders -------------------------------------------------------------

HIDDEN = """\
schema: 1
id: hidden
title: A move the other side does not see
horizon: 2
ladder: [calm, war]
actors: {a: {label: A}, b: {label: B}}
turn_order: [a, b]
options:
  a:
    - {id: hide, seen_as: {b: ~}}
    - {id: show}
  b:
    - {id: x}
    - {id: y, rung: war}
policies:
  a: {kind: logit, utilities: {hide: 1, show: 0}}
  b:
    kind: table
    respond_to: a
    table:
      show: {y: 1}
      default: {x: 0.5, y: 0.5}
outcomes:
  war: {when: rung >= 1}
"""


@pytest.mark.parametrize(
    ("shorthand", "expected"),
    [
        # hide (e / (e + 1) = 0.7310585786) is not seen by b, whose table falls back to the
        # default row: y 0.5, war: 0.3655292893.
        ("1,a,hide; 1,b,y", math.e / (math.e + 1) * 0.5),
        # show (1 / (e + 1)) is seen: the show row plays y for sure.
        ("1,a,show; 1,b,y", 1 / (math.e + 1)),
        # show, then x is impossible (the show row has no x).
        ("1,a,show; 1,b,x; 2,a,hide; 2,b,y", 0.0),
        # hide, x (default row), hide again: b still saw nothing, default row, y.
        ("1,a,hide; 1,b,x; 2,a,hide; 2,b,y", (math.e / (math.e + 1) * 0.5) ** 2),
    ],
)
def test_hidden_move_changes_the_table_row(shorthand, expected):
    """A move another actor does not see (seen_as ~) leaves its table on the row it saw."""
    model = prepare_model(load_text(HIDDEN, "hidden.yaml"), {})
    lk, _ = lik_of(model, [rows_of(shorthand)])
    assert lk.likelihood[0] == pytest.approx(expected, abs=1e-14)


TWICE = """\
schema: 1
id: twice
title: An actor that moves twice a step
horizon: 2
ladder: [calm, war]
actors: {a: {label: A}, b: {label: B}}
turn_order: [a, b, a]
options:
  a:
    - {id: p}
    - {id: q, requires: "step >= 2"}
  b:
    - {id: u, outcomes: [{id: boom, p: 0.25, rung: war}, {id: fizz}]}
    - {id: v}
policies:
  a: {kind: sequence, options: [q, p, q]}
  b:
    kind: logit
    utilities: {u: "where(last_a == 'q', 1, 0)", v: 0}
outcomes:
  war: {when: rung >= 1}
"""
# a's sequence: move 0 wants q, unavailable in step 1, so falls back to p; move 1 p; move 2 q
# (available in step 2); b's logit: utility of u is 1 only after q: step 1 u = 0.5, fizz 0.75;
# step 2 u = e / (e + 1) = 0.7310585786, boom 0.25 -> war.
TWICE_EXPECTED = 0.5 * 0.75 * math.e / (math.e + 1) * 0.25
TWICE_ROWS = "1,a,p; 1,b,u,fizz; 1,a,p; 2,a,q; 2,b,u,boom"


def test_actor_moving_twice_from_observations():
    """An actor twice in turn_order: the likelihood of Observations coded by (step, turn)
    equals the hand calculation 0.5 * 0.75 * e / (e + 1) * 0.25."""
    from sim.solvers.likelihood import UNSEEN, Observations

    model = prepare_model(load_text(TWICE, "twice.yaml"), {})
    option = np.full((2, 3, 1), UNSEEN, dtype=np.int64)
    branch = np.full((2, 3, 1), -1, dtype=np.int64)
    option[0, :, 0] = [0, 0, 0]  # p, u, p
    branch[0, 1, 0] = 1  # fizz
    option[1, :2, 0] = [1, 0]  # q, u
    branch[1, 1, 0] = 0  # boom
    obs = Observations(option, branch, np.array([2]), np.array([1]), {})
    assert likelihood(model, obs).likelihood[0] == pytest.approx(TWICE_EXPECTED, abs=1e-14)


def test_actor_moving_twice_from_a_log():
    """A log of a scenario with an actor twice in turn_order is read and has the hand-computed
    likelihood."""
    model = prepare_model(load_text(TWICE, "twice.yaml"), {})
    lk, _ = lik_of(model, [rows_of(TWICE_ROWS)])
    assert lk.likelihood[0] == pytest.approx(TWICE_EXPECTED, abs=1e-14)


def test_simulated_observations_of_an_actor_moving_twice():
    """simulate_observations records every move of an actor that is twice in turn_order."""
    model = prepare_model(load_text(TWICE, "twice.yaml"), {})
    obs = simulate_observations(model, 20, seed=1).observations
    # a moves first in every step every episode reaches: its first cell is always observed
    assert np.all(obs.option[0, 0, :] >= 0)
    # step 1: the fallback p at a's first turn
    assert np.all(obs.option[0, 0, :] == 0)

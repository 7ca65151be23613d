"""The order of a step, written once for every way of advancing a crisis.

DESIGN.md section 2: for each actor in `turn_order`, the available options, the policy's
choice, the option's payoffs and effects, one outcome branch (its payoffs, effects and rung), the
rung update and the terminal check; after the last actor `every_step` and the terminal check again;
runs that reach the horizon end as `end`.

Three things advance crises and differ only in how they realise chance:

- the Monte Carlo engine (sim/engine/batch.py) samples a choice and a branch for each run;
- the exact solver (sim/solvers/exact.py) splits weighted states by every choice, branch and
  enumerable draw;
- the game graph (sim/solvers/game_graph.py) expands every available option of every state.

Each is a `Driver` of `advance`, and each holds its states as `Part`s that `play_option` and
`payoffs_and_effects` change. The rules themselves (which expressions are read on which state, in
what order, how effects settle, which terminal wins) live here and in sim/model/semantics.py only.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from sim.model.compiled import (
    KEEP,
    PASS,
    CompiledEffects,
    CompiledOption,
    CompiledPolicy,
    Located,
    Model,
)
from sim.model.semantics import (
    checked_condition,
    checked_payoff,
    checked_utilities,
    settle_effects,
    settle_value,
    vector,
)

NO_EFFECTS = CompiledEffects()
"""The effects of a terminal condition (none): one object, so its plan is cached once."""


class Part(Protocol):
    """Some of a driver's states: the subject of payoffs, effects, branches and rungs."""

    model: Model
    step: int
    turn: int
    size: int

    def evaluate(self, exprs: Sequence[Located]) -> tuple[Part, list[Any]]:
        """The expressions' values, all read on the same states (a driver that enumerates
        random draws may return a part with more, weighted, rows)."""

    def columns(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """The rows' state variables, rung, peak rung and last moves (for look-ups)."""

    def state_value(self, var: int) -> Any:
        """The current value of a state variable in every row."""

    def add_payoff(self, actor: int, value: Any) -> None:
        """Add an already discounted payoff to every row."""

    def set_state(self, var: int, value: Any) -> None:
        """Store a settled new value of a state variable."""

    def set_rung(self, rung: int) -> None:
        """Move every row to a rung."""

    def branches(self, actor: int, option: CompiledOption) -> list[tuple[int, Part]]:
        """The rows of each outcome branch of `option` (sampled, split or expanded)."""


class Driver(Protocol):
    """What differs between the engine, the exact solver and the game graph."""

    model: Model

    def begin_turn(self, step: int, turn: int, actor: int, move_number: int) -> None:
        """Called before each move (`actor` -1: before `every_step`)."""

    def everyone(self) -> Part:
        """Every live state, as one part."""

    def policy(self, actor: int, move_number: int) -> CompiledPolicy | None:
        """The policy that chooses this move (None: the actor passes)."""

    def choose(
        self,
        part: Part,
        actor: int,
        policy: CompiledPolicy,
        available: np.ndarray | None,
        utilities: np.ndarray | None,
        move_number: int,
    ) -> list[tuple[int, Part]]:
        """The rows that play each option code (PASS = -1), in the order they are played."""

    def played(self, actor: int, code: int, parts: list[Part]) -> None:
        """The states after option `code` was played (its branches' parts)."""

    def moved(self, actor: int) -> None:
        """After every option of the move was played."""

    def stepped(self, part: Part) -> None:
        """After `every_step`."""

    def check_terminals(self, weight: float) -> bool:
        """Settle the runs whose terminal condition holds; False when none is left."""

    def end_step(self, step: int) -> None:
        """After the terminal check that follows `every_step`."""

    def finish_horizon(self, weight: float) -> None:
        """The live states reached the horizon: they end as the scenario's `end`."""


def advance(driver: Driver) -> None:
    """Play the whole crisis: every step, every actor in turn, then `every_step`."""
    m = driver.model
    moves_made = [0] * len(m.actors)
    for step in range(1, m.horizon + 1):
        weight = m.discount ** (step - 1)
        for turn, actor in enumerate(m.turn_order):
            driver.begin_turn(step, turn, actor, moves_made[actor])
            move(driver, actor, moves_made[actor], weight)
            moves_made[actor] += 1
            if not driver.check_terminals(weight):
                return
        driver.begin_turn(step, len(m.turn_order), -1, 0)
        driver.stepped(
            payoffs_and_effects(driver.everyone(), m.step_payoffs, m.step_effects, weight)
        )
        if not driver.check_terminals(weight):
            return
        driver.end_step(step)
    driver.finish_horizon(m.discount ** (m.horizon - 1))


def move(driver: Driver, actor: int, move_number: int, weight: float) -> None:
    """One actor's move: availability, the policy's choice, each chosen option played."""
    m = driver.model
    menu = m.options[actor]
    part = driver.everyone()
    policy = driver.policy(actor, move_number) if menu else None
    if policy is None:
        pieces = [(PASS, part)]
    else:
        part, available = availability(part, menu)
        part, utilities = policy_utilities(part, policy)
        pieces = driver.choose(part, actor, policy, available, utilities, move_number)
    for code, piece in pieces:
        played = play_option(piece, actor, menu[code], weight) if code >= 0 else [piece]
        driver.played(actor, code, played)
    driver.moved(actor)


def record_move(model: Model, last: np.ndarray, actor: int, chosen: Any, rows: Any = None) -> None:
    """Store a move in a driver's `last` matrix (rows: one per actor, then the view channels):
    the true move, and what each viewer saw of it (an unseen move leaves the viewer's row).

    `rows` selects the columns to change (default: all); `chosen` is one code or one per column.
    """
    where = slice(None) if rows is None else rows
    last[actor, where] = chosen
    for channel in model.channels:
        if channel.mover == actor:
            seen = channel.codes[np.asarray(chosen) + 2]
            if rows is None:
                last[channel.row] = np.where(seen == KEEP, last[channel.row], seen)
            else:
                last[channel.row, rows] = np.where(seen == KEEP, last[channel.row, rows], seen)


def acting_policy(model: Model, actor: int, move_number: int) -> CompiledPolicy | None:
    """The policy that chooses an actor's move: its own, but a forced first move (`compare
    --first-move`) is played as a fixed doctrine; None: the actor passes."""
    policy = model.policies[actor]
    if policy is not None and actor in model.forced_first and move_number == 0:
        return CompiledPolicy("fixed", option=model.forced_first[actor])
    return policy


def availability(part: Part, menu: Sequence[CompiledOption]) -> tuple[Part, np.ndarray | None]:
    """Which options' `requires` hold in each row: (options, rows), or None if all always do."""
    conditions = [o.requires for o in menu if o.requires is not None]
    if not conditions:
        return part, None
    part, values = part.evaluate(conditions)
    available = np.ones((len(menu), part.size), dtype=bool)
    rows = iter(values)
    for o in menu:
        if o.requires is not None:
            available[o.index] = checked_condition(o.requires, next(rows), part.size, part.step)
    return part, available


def policy_utilities(part: Part, policy: CompiledPolicy) -> tuple[Part, np.ndarray | None]:
    """What a policy reads besides availability: a logit policy's (options, rows) utilities,
    checked finite; a lookup policy's (1 + options, rows) probabilities; None for the others."""
    if policy.kind == "lookup":
        return part, policy.lookup.probabilities(part.step, part.turn, *part.columns())
    if policy.kind != "logit":
        return part, None
    part, values = part.evaluate(policy.utilities)
    return part, checked_utilities(policy.utilities, values, part.size, part.step)


def play_option(part: Part, actor: int, option: CompiledOption, weight: float) -> list[Part]:
    """The one routine that applies an option to a set of states: its payoffs and effects, then
    one outcome branch (its payoffs and effects, read after the option's), then the rung."""
    part = payoffs_and_effects(part, option.payoffs, option.effects, weight)
    if not option.branches:
        if option.rung is not None:
            part.set_rung(option.rung)
        return [part]
    out = []
    for j, sub in part.branches(actor, option):
        branch = option.branches[j]
        sub = payoffs_and_effects(sub, branch.payoffs, branch.effects, weight)
        rung = branch.rung if branch.rung is not None else option.rung
        if rung is not None:
            sub.set_rung(rung)
        out.append(sub)
    return out


@dataclass(frozen=True)
class _Plan:
    """What `payoffs_and_effects` reads of one (payoffs, effects) pair, worked out once."""

    payoffs: tuple[tuple[int, Located], ...]
    constants: tuple[Any, ...]
    """Each payoff's value if its expression is a constant (checked finite here), else None."""
    tallies: tuple[Any, ...]
    rates: tuple[tuple[int, int, Located], ...]
    exprs: tuple[Located, ...]
    """The expressions evaluated on the state before: the non-constant payoffs, the effects'
    right-hand sides (set, then add), the tallies' per-unit payoffs."""
    n_payoffs: int


_plans: dict[tuple[int, int, int], tuple[Any, Any, Any, _Plan]] = {}
_PLAN_LIMIT = 4096


def _plan(model: Model, payoffs: tuple[tuple[int, Located], ...], effects: Any) -> _Plan:
    """The pair's plan, cached by identity (the compiled model's tuples live as long as it)."""
    key = (id(model.tallies), id(payoffs), id(effects))
    entry = _plans.get(key)
    if entry and entry[0] is model.tallies and entry[1] is payoffs and entry[2] is effects:
        return entry[3]
    tallies = tuple(t for t in model.tallies if effects.changes(t.var)) if effects else ()
    rates = tuple((t.var, actor, e) for t in tallies for actor, e in t.payoffs)
    constants = tuple(_constant_payoff(e) for _, e in payoffs)
    evaluated = [e for (_, e), c in zip(payoffs, constants, strict=True) if c is None]
    exprs = (*evaluated, *(e for _, e in effects.set), *(e for _, e in effects.add))
    exprs += tuple(e for *_, e in rates)
    plan = _Plan(payoffs, constants, tallies, rates, exprs, len(evaluated))
    if len(_plans) >= _PLAN_LIMIT:
        _plans.clear()
    _plans[key] = (model.tallies, payoffs, effects, plan)
    return plan


def _constant_payoff(expr: Located) -> Any:
    """A constant payoff's value (what evaluating it returns), if it is finite; else None."""
    value = expr.expr.constant
    if value is None or not np.isscalar(value) or not np.isfinite(value):
        return None
    return value


def payoffs_and_effects(
    part: Part,
    payoffs: tuple[tuple[int, Located], ...],
    effects: CompiledEffects,
    weight: float,
) -> Part:
    """Discounted payoffs, then effects; every right-hand side reads the state before.

    A tallied variable's increase is added to its totals and charged its per-unit payoffs in the
    same call (read on the state before too), so a run that ends right after loses none of it."""
    if not payoffs and not effects:
        return part
    plan = _plan(part.model, payoffs, effects)
    if plan.exprs:
        part, values = part.evaluate(plan.exprs)
    else:
        values = []
    k = plan.n_payoffs
    evaluated = iter(values[:k])
    for (actor, expr), constant in zip(payoffs, plan.constants, strict=True):
        value = constant if constant is not None else checked_payoff(expr, next(evaluated))
        part.add_payoff(actor, discounted(weight, value))
    if effects:
        n_set = len(effects.set)
        n_fx = k + n_set + len(effects.add)
        new = [
            (var, _fresh(value, part.size), expr)
            for (var, expr), value in zip(effects.set, values[k : k + n_set], strict=True)
        ]
        new += [
            (var, part.state_value(var) + value, expr)
            for (var, expr), value in zip(effects.add, values[k + n_set : n_fx], strict=True)
        ]
        tallies = list(plan.tallies)
        before = {t.var: np.array(part.state_value(t.var), dtype=float) for t in tallies}
        for var, value in settle_effects(part.model, new, part.step):
            part.set_state(var, value)
        if tallies:
            settle_tallies(part, tallies, before, list(plan.rates), values[n_fx:], weight)
    return part


def _fresh(value: Any, n: int) -> np.ndarray:
    """A `set` effect's value as a float row of its own: a computed row that owns its memory is
    used as it is (settling reads it and writes new rows); a state row or a scalar is copied."""
    owned = type(value) is np.ndarray and value.flags.owndata and value.dtype == float
    if owned and value.shape == (n,):
        return value
    return np.array(vector(value, n), dtype=float)


def discounted(weight: float, value: Any) -> Any:
    """`weight * value`, without the pass over the rows when the weight is 1 (undiscounted
    steps): the product would be the value itself, bit for bit (it is checked finite)."""
    if weight != 1.0:
        return weight * value
    return float(value) if np.isscalar(value) else value


def settle_tallies(
    part: Part,
    tallies: list[Any],
    before: dict[int, np.ndarray],
    rates: list[tuple[int, int, Located]],
    rate_values: list[Any],
    weight: float,
) -> None:
    """Each tallied variable's increase (never a decrease) added to its totals, which are then
    rounded and clipped like any update, and charged its per-unit payoffs."""
    increase = {
        t.var: np.maximum(np.asarray(part.state_value(t.var), dtype=float) - before[t.var], 0)
        for t in tallies
    }
    totals: dict[int, Any] = {}
    for t in tallies:
        for target in t.into:
            totals[target] = totals.get(target, 0) + increase[t.var]
    for target, added in totals.items():
        part.set_state(target, settle_value(part.model, target, part.state_value(target) + added))
    for (var, actor, expr), value in zip(rates, rate_values, strict=True):
        part.add_payoff(actor, discounted(weight, checked_payoff(expr, value)) * increase[var])


def terminal_payoffs(part: Part, outcome: int, weight: float) -> Part:
    """The payoffs of the terminal condition `outcome` (if it has any) added to `part`."""
    for terminal in part.model.terminals:
        if terminal.outcome == outcome and terminal.payoffs:
            part = payoffs_and_effects(part, terminal.payoffs, NO_EFFECTS, weight)
    return part


def first_terminal(part: Part, terminals: Sequence[Any] | None = None) -> tuple[Part, np.ndarray]:
    """Each row's first matching terminal outcome (-1: none), conditions in file order.

    `terminals`: the conditions that may have become true (default: all of the model's)."""
    part, outcome = ended_rows(part, terminals)
    return part, np.full(part.size, -1, dtype=np.int64) if outcome is None else outcome


def ended_rows(part: Part, terminals: Sequence[Any] | None = None) -> tuple[Part, Any]:
    """`first_terminal`, with None for the outcomes when no row ends (most checks)."""
    terminals = part.model.terminals if terminals is None else terminals
    part, values = part.evaluate([t.when for t in terminals])
    outcome = None
    for terminal, value in zip(terminals, values, strict=True):
        hit = checked_condition(terminal.when, value, part.size, part.step)
        if not hit.any():  # nothing to write
            continue
        if outcome is None:
            outcome = np.full(part.size, -1, dtype=np.int64)
        else:
            hit = hit & (outcome < 0)
        outcome[hit] = terminal.outcome
    return part, outcome

"""Reference simulator: one run at a time, plain Python scalars, DESIGN.md section 2 read literally.

This is deliberately slow and simple. It shares nothing with `sim/engine.py` or `sim/policies.py`:
it only reuses the compiled `Model` (index tables and compiled expressions) and evaluates each
compiled expression on a size-1 context whose values are Python floats. Its own random numbers
come from one `numpy.random.Generator` per call, so it never reproduces the engine's draws; the
two are compared statistically (tests/engine/test_reference.py).

Step semantics implemented here (DESIGN.md section 2):

- actors move in `turn_order`; an option is available when its `requires` is true;
- the policy picks one available option (fixed / sequence with fallback to the first available
  option in menu order; table by the `respond_to` actor's latest move, else `default`, with the
  share of unavailable options spread over the row's available ones in proportion; logit softmax
  over available options); with nothing available the actor passes (code -1);
- the move: immediate payoffs (state before the move), then the option's effects (every right-hand
  side reads the state before; results clipped to [min, max], integer variables rounded), then one
  branch drawn with probabilities evaluated on the state after the option's effects (a branch
  without `p` takes the remainder), then the branch's payoffs and effects, then the rung (the
  branch's rung, else the option's, else unchanged) and the peak rung;
- `last_<actor>` becomes the move's code once the move is complete (during its own move an actor's
  `last_<actor>` is still its previous move); codes: -2 before the first move, -1 pass, else the
  menu index;
- a terminal check after every move (the first matching outcome in order wins and its payoffs are
  added); after the last actor, `every_step` payoffs (on the state before its effects) and then
  its effects, and the terminal check again; runs reaching the horizon end as `end`;
- a state variable with a `tally`: each increase an effect makes (never a decrease) is added to
  its `into` totals and charged its per-unit payoffs in that same effect;
- every payoff received in step t is multiplied by `discount ** (t - 1)`.

Usage: `python benchmarks/reference.py scenarios/camp_taji_2020.yaml --runs 2000`.
"""

from __future__ import annotations

import argparse
import math
import time
from collections.abc import Sequence
from typing import Any

import numpy as np

from sim.format.scenario import TablePolicy
from sim.model.compiled import Model

PASS = -1
NOT_YET = -2
BRANCH_TOLERANCE = 1e-9


def _scalar(value: Any) -> float:
    """A compiled expression's result on a size-1 context as a Python float."""
    if isinstance(value, float):
        return float(value)
    if isinstance(value, np.ndarray):
        return float(value.reshape(-1)[0])
    return float(value)


def _first(value: Any) -> float:
    return float(np.asarray(value, dtype=float).reshape(-1)[0])


class _Draws:
    """Random draws of expressions (`bernoulli(p)` ...), one value as a 1-element array."""

    __slots__ = ("gen",)

    def __init__(self, gen: np.random.Generator):
        self.gen = gen

    def draw(self, kind: str, *args: Any) -> np.ndarray:
        a = [_first(x) for x in args]
        g = self.gen
        if kind == "bernoulli":
            _check_p(a[0], kind)
            return np.array([g.random() < a[0]])
        if kind == "poisson":
            if not (a[0] >= 0 and math.isfinite(a[0])):
                raise ValueError(f"poisson(lam) needs a finite lam >= 0, got {a[0]}")
            return np.array([float(g.poisson(a[0]))])
        if kind == "binomial":
            _check_p(a[1], kind)
            return np.array([float(g.binomial(int(math.floor(a[0])), a[1]))])
        if kind == "uniform":
            return np.array([a[0] + (a[1] - a[0]) * g.random()])
        if kind == "normal":
            return np.array([a[0] + a[1] * g.standard_normal()])
        raise ValueError(f"unknown random draw {kind}")


def _check_p(p: float, kind: str) -> None:
    if not 0 <= p <= 1:
        raise ValueError(f"{kind}() needs p in [0, 1], got {p}")


class _Context:
    """The size-1 context compiled expressions read: `.size`, `.rng`, `.value(name)`."""

    __slots__ = ("size", "rng", "value")

    def __init__(self, env: dict[str, float], rng: _Draws):
        self.size = 1
        self.rng = rng
        self.value = env.__getitem__


class _Table:
    """A table policy's rows by the name of the `respond_to` actor's latest move."""

    def __init__(self, model: Model, actor: int):
        policy = model.policies[actor]
        self.respond_to = policy.respond_to
        other_menu = [o.id for o in model.options[policy.respond_to]]
        source = model.scenario.policies.get(model.actors[actor])
        rows = np.asarray(policy.rows, dtype=float)
        self.rows: dict[str, list[float]] = {}
        if isinstance(source, TablePolicy) and len(source.table) == len(rows):
            # Rows by their names in the scenario file, independently of the model's index table.
            for name, row in zip(source.table, rows):
                self.rows[name] = [float(x) for x in row]
            self.names = {code: other_menu[code] for code in range(len(other_menu))}
            self.names[PASS] = "pass"
            self.names[NOT_YET] = "none yet"
        else:  # a policy override: fall back to the compiled row lookup
            for code in range(NOT_YET, len(other_menu)):
                self.rows[str(code)] = [float(x) for x in rows[policy.row_of_code[code + 2]]]
            self.names = {code: str(code) for code in range(NOT_YET, len(other_menu))}
            self.rows["default"] = self.rows[str(NOT_YET)]

    def row(self, latest: int) -> list[float]:
        return self.rows.get(self.names[latest], self.rows["default"])


class _Run:
    """One run of the model, advanced with plain Python."""

    def __init__(self, model: Model, gen: np.random.Generator, tables: dict[int, _Table]):
        m = model
        self.m = m
        self.gen = gen
        self.tables = tables
        env: dict[str, float] = {k: float(v) for k, v in m.parameters.items()}
        for name, value in zip(m.state_names, m.state_initial):
            env[name] = float(value)
        env["step"] = 0.0
        env["rung"] = float(m.initial_rung)
        env["peak_rung"] = float(m.initial_rung)
        for a in m.actors:
            env[f"last_{a}"] = float(NOT_YET)
        self.env = env
        self.ctx = _Context(env, _Draws(gen))
        self.pay = [0.0] * len(m.actors)
        self.moves_made = [0] * len(m.actors)
        self.move_counts = [[0] * (len(menu) + 1) for menu in m.options]  # [0] counts passes

    def eval(self, expr: Any) -> float:
        return _scalar(expr(self.ctx))

    # --- one run ------------------------------------------------------------------------

    def play(self) -> tuple[int, int]:
        """(outcome index, step in which the run ended)."""
        m = self.m
        for step in range(1, m.horizon + 1):
            self.env["step"] = float(step)
            weight = self.weight = m.discount ** (step - 1)
            for actor in m.turn_order:
                self.move(actor, weight)
                outcome = self.terminal(weight)
                if outcome is not None:
                    return outcome, step
            for actor, expr in m.step_payoffs:
                self.pay[actor] += weight * self.eval(expr)
            self.effects(m.step_effects)
            outcome = self.terminal(weight)
            if outcome is not None:
                return outcome, step
        # The horizon: the `end` outcome (with its payoffs if it is also a named outcome).
        weight = m.discount ** (m.horizon - 1)
        for terminal in m.terminals:
            if terminal.outcome == m.end_outcome:
                for actor, expr in terminal.payoffs:
                    self.pay[actor] += weight * self.eval(expr)
        return m.end_outcome, m.horizon

    def move(self, actor: int, weight: float) -> None:
        m = self.m
        env = self.env
        menu = m.options[actor]
        policy = m.policies[actor]
        k = self.moves_made[actor]
        self.moves_made[actor] += 1
        code = PASS
        if menu and policy is not None:
            if actor in m.forced_first and k == 0:
                available = self.available(menu)
                code = self.preferred(m.forced_first[actor], available)
            else:
                code = self.choose(actor, policy, menu, k)
        self.move_counts[actor][code + 1] += 1
        if code != PASS:
            self.play_option(menu[code], weight)
        env[f"last_{m.actors[actor]}"] = float(code)
        if env["rung"] > env["peak_rung"]:
            env["peak_rung"] = env["rung"]

    def available(self, menu: Sequence[Any]) -> list[bool]:
        return [o.requires is None or self.eval(o.requires) != 0 for o in menu]

    def choose(self, actor: int, policy: Any, menu: Sequence[Any], k: int) -> int:
        available = self.available(menu)
        if policy.kind == "fixed":
            return self.preferred(policy.option, available)
        if policy.kind == "sequence":
            plan = policy.sequence
            return self.preferred(plan[min(k, len(plan) - 1)], available)
        if policy.kind == "table":
            table = self.tables[actor]
            latest = int(self.env[f"last_{self.m.actors[table.respond_to]}"])
            row = table.row(latest)
            weights = [p if ok else 0.0 for p, ok in zip(row, available)]
            return self.sample(weights)
        if policy.kind == "logit":
            z = [policy.rationality * self.eval(u) for u in policy.utilities]
            live = [zi for zi, ok in zip(z, available) if ok]
            if not live:
                return PASS
            top = max(live)
            weights = [math.exp(zi - top) if ok else 0.0 for zi, ok in zip(z, available)]
            return self.sample(weights)
        raise ValueError(f"policy kind {policy.kind} is not simulated by the reference")

    @staticmethod
    def preferred(option: int, available: list[bool]) -> int:
        if available[option]:
            return option
        for i, ok in enumerate(available):
            if ok:
                return i
        return PASS

    def sample(self, weights: list[float]) -> int:
        total = sum(weights)
        if total <= 0:
            return PASS
        x = self.gen.random() * total
        acc = 0.0
        last = PASS
        for i, w in enumerate(weights):
            if w <= 0:
                continue
            acc += w
            last = i
            if x < acc:
                return i
        return last

    def play_option(self, option: Any, weight: float) -> None:
        for actor, expr in option.payoffs:
            self.pay[actor] += weight * self.eval(expr)
        self.effects(option.effects)
        rung = option.rung
        if option.branches:
            branch = self.draw_branch(option)
            for actor, expr in branch.payoffs:
                self.pay[actor] += weight * self.eval(expr)
            self.effects(branch.effects)
            if branch.rung is not None:
                rung = branch.rung
        if rung is not None:
            self.env["rung"] = float(rung)

    def draw_branch(self, option: Any) -> Any:
        probs: list[float | None] = []
        for b in option.branches:
            if b.p is None:
                probs.append(None)
                continue
            p = self.eval(b.p)
            if not 0 <= p <= 1:
                raise ValueError(f"option {option.id}, branch {b.id}: probability {p} ")
            probs.append(p)
        known = sum(p for p in probs if p is not None)
        if None in probs:
            if known > 1 + BRANCH_TOLERANCE:
                raise ValueError(f"option {option.id}: branch probabilities sum to {known} > 1")
            probs = [max(0.0, 1.0 - known) if p is None else p for p in probs]
        elif abs(known - 1) > BRANCH_TOLERANCE:
            raise ValueError(f"option {option.id}: branch probabilities sum to {known}, not 1")
        u = self.gen.random()
        acc = 0.0
        chosen = None
        for b, p in zip(option.branches, probs):
            if p <= 0:
                continue
            acc += p
            chosen = b
            if u < acc:
                return b
        return chosen

    def effects(self, effects: Any) -> None:
        if not effects:
            return
        m = self.m
        env = self.env
        new: list[tuple[int, float]] = []
        for var, expr in effects.set:
            new.append((var, self.eval(expr)))
        for var, expr in effects.add:
            new.append((var, env[m.state_names[var]] + self.eval(expr)))
        rates = {
            t.var: [(actor, self.eval(expr)) for actor, expr in t.payoffs]
            for t in m.tallies
            if any(var == t.var for var, _ in new)
        }
        old = {var: env[m.state_names[var]] for var in rates}
        for var, value in new:
            if not math.isfinite(value):
                raise ValueError(f"effect on {m.state_names[var]} is {value}")
            self.store(var, value)
        # A tally: each increase of its counter (never a decrease) is added to its totals and
        # charged per unit at once, in this same effect.
        for tally in m.tallies:
            if tally.var not in rates:
                continue
            increase = max(env[m.state_names[tally.var]] - old[tally.var], 0.0)
            for target in tally.into:
                self.store(target, env[m.state_names[target]] + increase)
            for actor, rate in rates[tally.var]:
                self.pay[actor] += self.weight * rate * increase

    def store(self, var: int, value: float) -> None:
        m = self.m
        if m.state_integer[var]:
            value = float(round(value))
        self.env[m.state_names[var]] = min(
            max(value, float(m.state_min[var])), float(m.state_max[var])
        )

    def terminal(self, weight: float) -> int | None:
        for terminal in self.m.terminals:
            if self.eval(terminal.when) != 0:
                for actor, expr in terminal.payoffs:
                    self.pay[actor] += weight * self.eval(expr)
                return terminal.outcome
        return None


def reference_run(model: Model, runs: int, seed: int) -> dict[str, Any]:
    """Simulate `runs` runs one at a time; the summary the tests compare with the engine.

    Returns a dict with `runs`, `outcomes` (probability by outcome id), `outcome_counts`,
    `payoffs` (mean per actor), `payoff_sd`, `steps_mean`, `steps_sd`, `peak_rung` (probability by
    rung index), `moves` (per actor: count of each option id and of `pass`) and `run_moves` (the
    number of moves made, passes included, summed over runs and actors).
    """
    m = model
    gen = np.random.default_rng(seed)
    tables = {
        a: _Table(m, a) for a, p in enumerate(m.policies) if p is not None and p.kind == "table"
    }
    n_out = len(m.outcome_ids)
    counts = [0] * n_out
    pay_sum = [0.0] * len(m.actors)
    pay_sq = [0.0] * len(m.actors)
    steps_sum = 0.0
    steps_sq = 0.0
    peak = [0] * m.n_rungs
    moves = [[0] * (len(menu) + 1) for menu in m.options]
    with np.errstate(all="ignore"):
        for _ in range(runs):
            run = _Run(m, gen, tables)
            outcome, steps = run.play()
            counts[outcome] += 1
            steps_sum += steps
            steps_sq += steps * steps
            peak[int(run.env["peak_rung"])] += 1
            for a, value in enumerate(run.pay):
                pay_sum[a] += value
                pay_sq[a] += value * value
            for a, row in enumerate(run.move_counts):
                for k, c in enumerate(row):
                    moves[a][k] += c
    n = max(runs, 1)

    def sd(total: float, squares: float) -> float:
        if runs < 2:
            return 0.0
        return math.sqrt(max(0.0, (squares - total * total / runs) / (runs - 1)))

    return {
        "runs": runs,
        "seed": seed,
        "outcomes": {oid: counts[i] / n for i, oid in enumerate(m.outcome_ids)},
        "outcome_counts": {oid: counts[i] for i, oid in enumerate(m.outcome_ids)},
        "payoffs": {a: pay_sum[i] / n for i, a in enumerate(m.actors)},
        "payoff_sd": {a: sd(pay_sum[i], pay_sq[i]) for i, a in enumerate(m.actors)},
        "steps_mean": steps_sum / n,
        "steps_sd": sd(steps_sum, steps_sq),
        "peak_rung": {r: peak[r] / n for r in range(m.n_rungs)},
        "moves": {
            a: {name: moves[i][k] for k, name in enumerate(["pass"] + [o.id for o in m.options[i]])}
            for i, a in enumerate(m.actors)
        },
        "run_moves": sum(sum(row) for row in moves),
    }


def main(argv: list[str] | None = None) -> int:
    from sim.model.loading import load_scenario
    from sim.solvers.prepare import prepare_model

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("scenario")
    parser.add_argument("--runs", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)
    model = prepare_model(load_scenario(args.scenario))
    start = time.perf_counter()
    result = reference_run(model, args.runs, args.seed)
    elapsed = time.perf_counter() - start
    for oid, p in result["outcomes"].items():
        print(f"{oid:24s} {p:.4f}")
    for actor, mean in result["payoffs"].items():
        print(f"payoff {actor:17s} {mean:.3f}")
    print(
        f"mean steps {result['steps_mean']:.3f}; {result['run_moves']} run-moves in "
        f"{elapsed:.2f} s = {result['run_moves'] / elapsed:,.0f} run-moves/s"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

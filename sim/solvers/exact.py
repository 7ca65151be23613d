"""Exact outcome distribution by forward enumeration of the reachable states.

The probability distribution over states (state variables, rung, peak rung, each actor's last move)
is carried move by move to the horizon as arrays over distinct states, like an engine batch whose
runs are weighted: every policy choice, outcome branch and discrete random draw splits a state into
weighted copies, and identical states are merged after each move. Each state also carries the sums
of weight * payoff and weight * payoff**2 per actor, so merging keeps the expected payoff and its
variance exact. The step semantics are those of `sim/engine.py`, operation for operation, so the
numbers are what Monte Carlo converges to.

`bernoulli` and `binomial` draws are enumerated; `poisson` (unbounded), `uniform` and `normal`
(continuous) are refused with the file:line:col of the draw, as is a state space wider than
`max_states` distinct states at any point.
"""

from __future__ import annotations

import ast
import math
import time
from collections.abc import Sequence
from typing import Any

import numpy as np

from sim.errors import Problem, ScenarioError, SimulationError
from sim.model.compiled import (
    NOT_YET,
    CompiledEffects,
    CompiledOption,
    CompiledPolicy,
    Located,
    Model,
)
from sim.model.expr import RANDOM_DRAWS
from sim.model.policies import probabilities
from sim.model.semantics import checked_branch_probabilities, settle_effects
from sim.results import Results
from sim.solvers.exact_states import Dist, enumerate_draw, group_rows, merge, split

DEFAULT_MAX_STATES = 2_000_000
"""Most distinct states held at once before the solver refuses the scenario."""
ROW_FACTOR = 8
"""Enumerating a draw may create at most this many times the state limit in rows."""
MERGE_ROWS = 100_000
"""A move merges its pieces early once they hold 2 x max(state limit, this) rows."""
SUPPORTED_POLICIES = ("fixed", "sequence", "table", "logit", "strategic")
ENUMERABLE_DRAWS = ("bernoulli", "binomial")


class _NeedDraw(Exception):
    """Raised by a context when an expression asks for a random draw not yet enumerated."""

    def __init__(self, index: int, kind: str, args: tuple):
        super().__init__(kind)
        self.index, self.kind, self.args = index, kind, args


class _Ctx:
    """What expressions see: named values of every state, and scripted (enumerated) draws."""

    __slots__ = ("solver", "d", "size", "rng", "script", "count")

    def __init__(self, solver: _Solver, d: Dist, script: list[np.ndarray]):
        self.solver, self.d, self.size, self.rng = solver, d, d.n, self
        self.script, self.count = script, 0

    def value(self, name: str) -> Any:
        kind, where = self.solver.names[name]
        if kind == "param":
            return where
        if kind == "state":
            return self.d.x[where]
        if kind == "rung":
            return self.d.rung
        if kind == "peak":
            return self.d.peak
        if kind == "step":
            return self.solver.step
        return self.d.last[where]

    def draw_site(self, site: int, kind: str, *args: Any) -> np.ndarray:
        return self.draw(kind, *args)

    def draw(self, kind: str, *args: Any) -> np.ndarray:
        i = self.count
        self.count += 1
        if i < len(self.script):
            return self.script[i]
        raise _NeedDraw(i, kind, args)


def _vector(value: Any, n: int, dtype: Any = float) -> np.ndarray:
    return np.broadcast_to(np.asarray(value, dtype=dtype), (n,))


def _exprs(pairs: Sequence[tuple[int, Located]]) -> list[Located]:
    return [e for _, e in pairs]


class _Solver:
    def __init__(self, model: Model, max_states: int):
        m = self.m = model
        self.max_states = max_states
        self.step = 0
        self.names: dict[str, tuple[str, Any]] = {k: ("param", v) for k, v in m.parameters.items()}
        self.names.update({k: ("state", i) for i, k in enumerate(m.state_names)})
        self.names.update(
            {"rung": ("rung", None), "peak_rung": ("peak", None), "step": ("step", None)}
        )
        self.names.update({f"last_{a}": ("last", i) for i, a in enumerate(m.actors)})
        h, n_out, n_act = m.horizon, len(m.outcome_ids), len(m.actors)
        self.occupancy = np.zeros((h + 1, m.n_rungs))
        self.ended = np.zeros((h + 1, n_out))
        self.peak_hist = np.zeros(m.n_rungs)
        self.moves = np.zeros((n_act, m.max_options + 1))
        self.pay1 = np.zeros(n_act)
        self.pay2 = np.zeros(n_act)
        self.final_x: list[np.ndarray] = []
        self.final_w: list[np.ndarray] = []
        self.final_rows = 0
        self.total_states = 0
        self.widest = 0
        self.widest_at = ""
        integral = [
            bool(m.state_integer[i])
            and all(
                not math.isfinite(v) or float(v).is_integer()
                for v in (m.state_initial[i], m.state_min[i], m.state_max[i])
            )
            for i in range(len(m.state_names))
        ]
        self.integral = integral + [True] * (2 + n_act)
        """Key columns known to hold integers: integer variables with integer bounds, rungs,
        last moves."""

    # --- the game ------------------------------------------------------------------------

    def solve(self) -> None:
        m = self.m
        for a, policy in enumerate(m.policies):
            if policy is not None and policy.kind not in SUPPORTED_POLICIES and m.options[a]:
                raise self._refuse(
                    ("policies", m.actors[a]),
                    f"the exact solver does not support '{policy.kind}' policies "
                    f"(actor {m.actors[a]}); it solves "
                    f"{', '.join(SUPPORTED_POLICIES)}",
                )
        n_act = len(m.actors)
        d = Dist(
            m.state_initial[:, None].copy(),
            np.array([m.initial_rung]),
            np.array([m.initial_rung]),
            np.full((n_act, 1), NOT_YET, dtype=np.int64),
            np.ones(1),
            np.zeros((n_act, 1)),
            np.zeros((n_act, 1)),
        )
        self.occupancy[0, m.initial_rung] = 1.0
        self._count(d, "the start")
        moves_made = [0] * n_act
        for step in range(1, m.horizon + 1):
            self.step = step
            weight = m.discount ** (step - 1)
            for turn, actor in enumerate(m.turn_order):
                self.turn = turn
                d = self._move(d, actor, moves_made[actor], weight)
                moves_made[actor] += 1
                self._count(d, f"{m.actors[actor]}'s move in step {step}")
                d = self._terminals(d, weight)
                if not d.n:
                    return
            d = self._every_step(d, weight)
            self._count(d, f"every_step of step {step}")
            d = self._terminals(d, weight)
            if not d.n:
                return
            self.occupancy[step] = np.bincount(d.rung, weights=d.w, minlength=m.n_rungs)
        self._finish(d, m.end_outcome, m.discount ** (m.horizon - 1))

    def _move(self, d: Dist, actor: int, move_number: int, weight: float) -> Dist:
        m = self.m
        menu = m.options[actor]
        policy = m.policies[actor]
        if not menu or policy is None:
            probs = np.ones((1, d.n))
        else:
            if actor in m.forced_first and move_number == 0:
                policy = CompiledPolicy("fixed", option=m.forced_first[actor])
            requires = [o.requires for o in menu if o.requires is not None]
            utilities = list(policy.utilities) if policy.kind == "logit" else []
            d, values = self._evaluate(d, requires + utilities)
            available = None
            if requires:
                available = np.ones((len(menu), d.n), dtype=bool)
                rows = [o.index for o in menu if o.requires is not None]
                for r, v in zip(rows, values[: len(requires)], strict=True):
                    available[r] = _vector(v, d.n, bool)
            probs = self._choice(actor, policy, available, values[len(requires) :], d, move_number)
        pieces = []
        for k, piece in split(d, probs):
            code = k - 1
            self.moves[actor, k] += piece.w.sum()
            played = self._play(piece, actor, menu[code], weight) if code >= 0 else [piece]
            for p in played:
                p.last[actor] = code
                np.maximum(p.peak, p.rung, out=p.peak)
            pieces.extend(played)
            if sum(p.n for p in pieces) > 2 * max(self.max_states, MERGE_ROWS):
                pieces = [merge(pieces, self.integral)]  # bounds memory on wide menus
        return merge(pieces, self.integral)

    def _choice(
        self,
        actor: int,
        policy: CompiledPolicy,
        available: np.ndarray | None,
        utilities: list,
        d: Dist,
        move_number: int,
    ) -> np.ndarray:
        """Probability of each move per state: row 0 is `pass`, row 1 + k option k."""
        n, n_opt = d.n, len(self.m.options[actor])
        if policy.kind == "strategic":
            return self.m.strategic.probabilities(self.step, self.turn, d.x, d.rung, d.peak, d.last)
        matrix = None
        if policy.kind == "logit":
            matrix = np.stack([_vector(v, n) for v in utilities])
            if not np.isfinite(matrix).all():
                bad = policy.utilities[int(np.argmax(~np.isfinite(matrix).all(axis=1)))]
                raise SimulationError(
                    f"{bad.where}: utility of {self.m.actors[actor]} evaluated "
                    f"to {matrix[~np.isfinite(matrix)][0]} at step {self.step}"
                )
        latest = d.last[policy.respond_to] if policy.kind == "table" else None
        return probabilities(policy, available, n_opt, n, move_number, latest, lambda: matrix)

    def _play(self, d: Dist, actor: int, option: CompiledOption, weight: float) -> list[Dist]:
        """The move `option` in every state of `d`: payoffs, effects, branch, rung."""
        d = self._payoffs_and_effects(d, option.payoffs, option.effects, weight)
        if not option.branches:
            if option.rung is not None:
                d.rung[:] = option.rung
            return [d]
        # The engine draws branch j when cumulative[j-1] <= u < cumulative[j], u uniform in
        # [0, 1); the cumulative sums are non-decreasing (every p checked >= 0).
        if option.constant_cumulative is not None:
            edges = np.clip(option.constant_cumulative[:-1], 0, 1)
            probs = np.diff(np.concatenate([[0.0], edges, [1.0]]))[:, None]
            probs = np.broadcast_to(probs, (len(option.branches), d.n))
        else:
            d, cumulative = self._branch_cumulative(d, actor, option)
            edges = np.clip(cumulative, 0, 1)
            probs = np.diff(edges, axis=0, prepend=0.0, append=1.0)
        out = []
        for j, sub in split(d, probs):
            b = option.branches[j]
            sub = self._payoffs_and_effects(sub, b.payoffs, b.effects, weight)
            rung = b.rung if b.rung is not None else option.rung
            if rung is not None:
                sub.rung[:] = rung
            out.append(sub)
        return out

    def _branch_cumulative(self, d: Dist, actor: int, option: CompiledOption):
        """Cumulative branch probabilities per state, checked exactly as the engine does."""
        branches = option.branches
        d, values = self._evaluate(d, [b.p for b in branches if b.p is not None])
        probs = checked_branch_probabilities(self.m, actor, option, values, d.n, self.step)
        return d, np.cumsum(probs, axis=0)[:-1]

    def _every_step(self, d: Dist, weight: float) -> Dist:
        m = self.m
        if not m.step_payoffs and not m.step_effects:
            return d
        return merge(
            [self._payoffs_and_effects(d, m.step_payoffs, m.step_effects, weight)], self.integral
        )

    def _payoffs_and_effects(
        self, d: Dist, payoffs, effects: CompiledEffects, weight: float
    ) -> Dist:
        """Payoffs and effects, every right-hand side evaluated on the state before."""
        if not payoffs and not effects:
            return d
        exprs = _exprs(payoffs) + _exprs(effects.set) + _exprs(effects.add)
        d, values = self._evaluate(d, exprs)
        k = len(payoffs)
        for (actor, expr), value in zip(payoffs, values[:k], strict=True):
            self._add_payoff(d, actor, expr, value, weight)
        m = self.m
        new = []
        for (var, expr), value in zip(effects.set, values[k : k + len(effects.set)], strict=True):
            new.append((var, np.array(_vector(value, d.n), dtype=float), expr))
        for (var, expr), value in zip(effects.add, values[k + len(effects.set) :], strict=True):
            new.append((var, d.x[var] + value, expr))
        for var, value in settle_effects(m, new, self.step):
            d.x[var] = value
        return d

    def _add_payoff(self, d: Dist, actor: int, expr: Located, value: Any, weight: float) -> None:
        value = np.asarray(value, dtype=float)
        if not np.isfinite(value).all():
            raise SimulationError(
                f"{expr.where}: payoff evaluated to {value[~np.isfinite(value)].ravel()[0]}"
            )
        d.add_payoff(actor, weight * value)

    def _terminals(self, d: Dist, weight: float) -> Dist:
        m = self.m
        if not m.terminals or not d.n:
            return d
        d, hits = self._evaluate(d, [t.when for t in m.terminals])
        outcome = np.full(d.n, -1, dtype=np.int64)
        for terminal, hit in zip(m.terminals, hits, strict=True):
            outcome = np.where((outcome < 0) & _vector(hit, d.n, bool), terminal.outcome, outcome)
        done = outcome >= 0
        if not done.any():
            return d
        for o in np.unique(outcome[done]):
            self._finish(d.take(np.flatnonzero(outcome == o)), int(o), weight)
        return d.take(np.flatnonzero(~done))

    def _finish(self, d: Dist, outcome: int, weight: float) -> None:
        """Record states that ended in `outcome` at the current step, terminal payoffs added."""
        for terminal in self.m.terminals:
            if terminal.outcome == outcome and terminal.payoffs:
                d, values = self._evaluate(d, _exprs(terminal.payoffs))
                for (actor, expr), value in zip(terminal.payoffs, values, strict=True):
                    self._add_payoff(d, actor, expr, value, weight)
        mass = d.w.sum()
        self.ended[self.step, outcome] += mass
        self.peak_hist += np.bincount(d.peak, weights=d.w, minlength=self.m.n_rungs)
        self.pay1 += d.s1.sum(axis=1)
        self.pay2 += d.s2.sum(axis=1)
        self.final_x.append(d.x)
        self.final_w.append(d.w)
        self.final_rows += d.n
        if self.final_rows > max(self.max_states, 100_000):
            self._compact_final()

    def _compact_final(self) -> None:
        x, w = np.concatenate(self.final_x, axis=1), np.concatenate(self.final_w)
        if x.shape[0] and w.size > 1:
            first, inverse, count = group_rows([list(x)], self.integral[: x.shape[0]])
            x, w = x[:, first], np.bincount(inverse, weights=w, minlength=count)
        self.final_x, self.final_w, self.final_rows = [x], [w], w.size

    # --- expressions and enumerated draws ------------------------------------------------

    def _evaluate(self, d: Dist, exprs: list[Located]) -> tuple[Dist, list[Any]]:
        """Evaluate expressions on every state of `d`, all reading the same state.

        A random draw splits each state into one weighted copy per value the draw can take
        (the returned distribution then has more rows), and each copy sees its own value.
        Draws of different expressions (and different draws of one expression) are independent,
        as in the engine.
        """
        scripts: list[list[np.ndarray]] = [[] for _ in exprs]
        for i, e in enumerate(exprs):
            if not e.expr.uses_random:
                continue
            while True:
                try:
                    e(_Ctx(self, d, scripts[i]))
                    break
                except _NeedDraw as need:
                    src, values, probs = self._enumerate(e, need, d.n)
                    d = d.take(src, probs)
                    scripts = [[a[src] for a in s] for s in scripts]
                    scripts[i].append(values)
        out = []
        for e, script in zip(exprs, scripts, strict=True):
            out.append(e(_Ctx(self, d, script)))
        return d, out

    def _enumerate(self, e: Located, need: _NeedDraw, n: int):
        """Rows to repeat, the value each copy sees and its probability, for one draw."""
        if need.kind not in ENUMERABLE_DRAWS:
            raise self._continuous(e, need) from None
        args = [_vector(a, n) for a in need.args]
        p = args[-1]
        if np.any(p < 0) or np.any(p > 1) or np.any(np.isnan(p)):
            bad = p[(p < 0) | (p > 1) | np.isnan(p)][0]
            what = "bernoulli(p)" if need.kind == "bernoulli" else "binomial(n, p)"
            raise SimulationError(
                f"{e.where}: {what} needs p in [0, 1], got {float(bad):g} at step {self.step}"
            )
        rows = 2.0 * n
        if need.kind == "binomial":
            count = args[0]
            if np.any(count < 0) or not np.all(np.isfinite(count)):
                raise SimulationError(
                    f"{e.where}: binomial(n, p) needs a finite n >= 0 at step {self.step}"
                )
            rows = float(np.floor(count).sum() + n)
        if rows > ROW_FACTOR * self.max_states:
            file, line, col = self._draw_position(e, need)
            message = (
                f"not exactly solvable: enumerating this {need.kind}() draw at step "
                f"{self.step} takes {int(rows):,} weighted copies of {n:,} states, more than "
                f"{ROW_FACTOR} x the state limit of {self.max_states:,} (use `escalation run` "
                f"or a higher --max-states)"
            )
            raise ScenarioError([Problem(file, line, col, message)]) from None
        return enumerate_draw(need.kind, args, n)

    # --- refusals ------------------------------------------------------------------------

    def _count(self, d: Dist, where: str) -> None:
        self.total_states += d.n
        if d.n > self.widest:
            self.widest, self.widest_at = d.n, where
        if d.n > self.max_states:
            raise self._too_many(d.n, f"after {where}")

    def _too_many(self, n: int, where: str) -> ScenarioError:
        return self._refuse(
            ("horizon",),
            f"not exactly solvable: {n:,} distinct states {where} "
            f"exceed the limit of {self.max_states:,} (use `escalation run`, "
            f"a shorter horizon, or a higher --max-states)",
        )

    def _refuse(self, path: tuple, message: str) -> ScenarioError:
        src = self.m.scenario._source
        if src is None:
            return ScenarioError([Problem("<scenario>", 1, 1, message)])
        return ScenarioError([src.problem(path, message)])

    def _draw_position(self, e: Located, need: _NeedDraw) -> tuple[str, int, int]:
        """file:line:col of the draw `need` inside the expression `e`."""
        draws = draw_columns(e.expr.source)
        offset = e.expr.random_offset or 0
        if need.index < len(draws) and draws[need.index][0] == need.kind:
            offset = draws[need.index][1]
        return self._position(e.where, offset)

    def _continuous(self, e: Located, need: _NeedDraw) -> ScenarioError:
        file, line, col = self._draw_position(e, need)
        why = "an unbounded" if need.kind == "poisson" else "a continuous"
        enumerable = " and ".join(f"{d}()" for d in ENUMERABLE_DRAWS)
        message = (
            f"not exactly solvable: {need.kind}() is {why} random draw (reached at step "
            f"{self.step}); the exact solver enumerates only {enumerable} draws; "
            f"use `escalation run`"
        )
        return ScenarioError([Problem(file, line, col, message)])

    def _position(self, where: str, offset: int) -> tuple[str, int, int]:
        """file:line:col of a character inside an expression located at `where`."""
        file, line_text, col_text = where.rsplit(":", 2)
        line, col = int(line_text), int(col_text)
        src = self.m.scenario._source
        lines = src.lines if src is not None else ()
        if 0 < line <= len(lines):
            text = lines[line - 1]
            start = col - 1
            if start < len(text) and text[start] in "|>":
                return file, line, col
            if start < len(text) and text[start] in "'\"":
                col += 1
        return file, line, col + offset

    # --- results -------------------------------------------------------------------------

    def results(self, seconds: float) -> Results:
        m = self.m
        self._compact_final()
        total = self.ended.sum()
        mean = self.pay1 / total if total else self.pay1
        var = self.pay2 / total - mean * mean if total else self.pay2
        extra = {
            "exact": {
                "reachable_states": int(self.total_states),
                "max_states": int(self.widest),
                "widest_at": self.widest_at,
                "state_limit": int(self.max_states),
                "solve_seconds": round(seconds, 4),
            }
        }
        return Results.from_exact(
            model=m,
            outcome_p=self.ended.sum(axis=0),
            steps_hist=self.ended.sum(axis=1),
            peak_hist=self.peak_hist,
            occupancy=self.occupancy,
            ended=self.ended,
            payoff_mean=mean,
            payoff_sd=np.sqrt(np.maximum(var, 0.0)),
            moves=self.moves,
            final_state=self.final_x[0],
            final_weights=self.final_w[0],
            extra=extra,
        )


def draw_columns(source: str) -> list[tuple[str, int]]:
    """Random draws of an expression in evaluation order, with their 0-based columns."""
    text = source.replace("\r", " ").replace("\n", " ").replace("\t", " ")
    stripped = text.lstrip()
    lead = len(text) - len(stripped)
    try:
        tree = ast.parse(stripped, mode="eval")
    except SyntaxError:
        return []
    out: list[tuple[str, int]] = []

    def visit(node: ast.AST) -> None:
        for child in ast.iter_child_nodes(node):
            visit(child)
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name)
            and node.func.id in RANDOM_DRAWS
        ):
            col = len(stripped.encode()[: node.col_offset].decode(errors="ignore"))
            out.append((node.func.id, col + lead))

    visit(tree.body)
    return out


def solve(model: Model, max_states: int = DEFAULT_MAX_STATES) -> Results:
    """The exact outcome distribution of `model`, as a `Results` with probabilities, not counts.

    Raises ScenarioError (file:line:col) when the scenario cannot be solved exactly: a `poisson`,
    `uniform` or `normal` draw is reached, a policy kind is not supported, or more than
    `max_states` distinct states are reachable at one point of a step.
    """
    start = time.perf_counter()
    solver = _Solver(model, max_states)
    with np.errstate(all="ignore"):
        solver.solve()
    return solver.results(time.perf_counter() - start)


def exact_check(results: Results, exact: Results) -> dict[str, Any]:
    """Monte Carlo against the exact solution: per outcome and payoff, the z-score
    (Monte Carlo - exact) / standard error, the standard error taken from the exact values."""
    n = max(int(results.runs), 1)
    m = results.model

    def z_score(diff: float, se: float) -> float | None:
        if se > 0:
            return float(diff / se)
        return 0.0 if abs(diff) <= 1e-12 else None  # None: exact says impossible, MC saw it

    outcomes = {}
    for i, oid in enumerate(m.outcome_ids):
        p, q = float(results.probabilities[i]), float(exact.probabilities[i])
        se = math.sqrt(max(q * (1 - q), 0.0) / n)
        outcomes[oid] = {"p": p, "exact": q, "se": se, "z": z_score(p - q, se)}
    payoffs = {}
    for a, actor in enumerate(m.actors):
        mc, ex = float(results.payoff_mean[a]), float(exact.payoff_mean[a])
        se = float(exact.payoff_sd[a]) / math.sqrt(n)
        payoffs[actor] = {"mean": mc, "exact": ex, "se": se, "z": z_score(mc - ex, se)}
    zs = [v["z"] for part in (outcomes, payoffs) for v in part.values()]
    worst = math.inf if any(z is None for z in zs) else max((abs(z) for z in zs), default=0.0)
    return {
        "runs": n,
        "outcomes": outcomes,
        "payoffs": payoffs,
        "max_abs_z": None if math.isinf(worst) else worst,
        "reachable_states": exact.extra.get("exact", {}).get("reachable_states"),
    }

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
`max_states` distinct states at any point, or one whose states would need more than `max_memory`
bytes (estimated from the bytes a state takes, before the arrays are made).
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from typing import Any

import numpy as np

from sim.errors import Problem, ScenarioError, SimulationError
from sim.model.compiled import (
    NOT_YET,
    CompiledOption,
    CompiledPolicy,
    Located,
    Model,
)
from sim.model.draws import draw_offsets
from sim.model.policies import probabilities
from sim.model.semantics import checked_branch_probabilities
from sim.model.step import acting_policy, advance, first_terminal, record_move, terminal_payoffs
from sim.results import Results
from sim.solvers.exact_states import Dist, enumerate_draw, group_rows, merge, split
from sim.solvers.limits import check_solved_horizon

DEFAULT_MAX_STATES = 2_000_000
"""Most distinct states held at once before the solver refuses the scenario."""
ROW_FACTOR = 8
"""Enumerating a draw may create at most this many times the state limit in rows."""
MERGE_ROWS = 100_000
"""A move merges its pieces early once they hold 2 x max(state limit, this) rows."""
DEFAULT_MAX_MEMORY = 2 << 30
"""Most bytes the solver's states may take (2 GiB), estimated before they are made."""
PROBABILITY_COPIES = 6
"""Arrays of (options x states) alive while a policy's choice probabilities are computed (the
utilities, their scaled and shifted copies, the weights, the probabilities), measured."""
MERGE_BYTES = 40
"""Bytes a row takes while identical states are merged (keys, codes, groups), beside the row."""
SUPPORTED_POLICIES = ("fixed", "sequence", "table", "logit", "lookup")
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


class _DistPart:
    """Weighted states of the exact solver as a part of the step (sim/model/step.py)."""

    __slots__ = ("solver", "d")

    def __init__(self, solver: _Solver, d: Dist):
        self.solver, self.d = solver, d

    @property
    def model(self) -> Model:
        return self.solver.m

    @property
    def step(self) -> int:
        return self.solver.step

    @property
    def turn(self) -> int:
        return self.solver.turn

    @property
    def size(self) -> int:
        return self.d.n

    def evaluate(self, exprs: Any) -> tuple[_DistPart, list[Any]]:
        d, values = self.solver._evaluate(self.d, list(exprs))
        return (self if d is self.d else _DistPart(self.solver, d)), values

    def columns(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        return self.d.x, self.d.rung, self.d.peak, self.d.last

    def state_value(self, var: int) -> Any:
        return self.d.x[var]

    def add_payoff(self, actor: int, value: Any) -> None:
        self.d.add_payoff(actor, value)

    def set_state(self, var: int, value: Any) -> None:
        self.d.x[var] = value

    def set_rung(self, rung: int) -> None:
        self.d.rung[:] = rung

    def branches(self, actor: int, option: CompiledOption) -> list[tuple[int, _DistPart]]:
        return self.solver.branches(self, actor, option)


class _Solver:
    def __init__(self, model: Model, max_states: int, max_memory: int = DEFAULT_MAX_MEMORY):
        m = self.m = self.model = model
        self.max_states = max_states
        self.max_memory = max_memory
        self.row_bytes = 8 * (len(m.state_names) + 3 + 2 * len(m.actors) + m.n_last_rows)
        """Bytes of one weighted state: its variables, rung, peak, each actor's last move,
        weight and the two payoff sums per actor (sim/solvers/exact_states.Dist)."""
        self.step = 0
        self.names: dict[str, tuple[str, Any]] = {k: ("param", v) for k, v in m.parameters.items()}
        self.names.update({k: ("state", i) for i, k in enumerate(m.state_names)})
        self.names.update(
            {"rung": ("rung", None), "peak_rung": ("peak", None), "step": ("step", None)}
        )
        self.names.update({name: ("last", row) for name, row in m.last_names().items()})
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
        self.integral = integral + [True] * (2 + m.n_last_rows)
        """Key columns known to hold integers: integer variables with integer bounds, rungs,
        last moves."""

    # --- the game (sim/model/step.py drives; these are the weighted realisations) --------

    def solve(self) -> None:
        m = self.m
        check_solved_horizon(m, "the exact solver")
        for a, policy in enumerate(m.policies):
            if policy is not None and policy.kind not in SUPPORTED_POLICIES and m.options[a]:
                raise self._refuse(
                    ("policies", m.actors[a]),
                    f"the exact solver does not support '{policy.kind}' policies "
                    f"(actor {m.actors[a]}) until they are solved; it solves "
                    f"{', '.join(SUPPORTED_POLICIES)}",
                )
        n_act = len(m.actors)
        self.d = Dist(
            m.state_initial[:, None].copy(),
            np.array([m.initial_rung]),
            np.array([m.initial_rung]),
            np.full((m.n_last_rows, 1), NOT_YET, dtype=np.int64),
            np.ones(1),
            np.zeros((n_act, 1)),
            np.zeros((n_act, 1)),
        )
        self.occupancy[0, m.initial_rung] = 1.0
        self._count(self.d, "the start")
        advance(self)

    def begin_turn(self, step: int, turn: int, actor: int, move_number: int) -> None:
        self.step, self.turn = step, turn
        self.pieces: list[Dist] = []
        self.counted = False

    def everyone(self) -> _DistPart:
        return _DistPart(self, self.d)

    def policy(self, actor: int, move_number: int) -> CompiledPolicy | None:
        return acting_policy(self.m, actor, move_number)

    def choose(
        self,
        part: _DistPart,
        actor: int,
        policy: CompiledPolicy,
        available: np.ndarray | None,
        inputs: np.ndarray | None,
        move_number: int,
    ) -> list[tuple[int, _DistPart]]:
        """Probability of each move per state (row 0 `pass`), split into weighted pieces."""
        d = part.d
        latest = d.last[policy.respond_to] if policy.kind == "table" else None
        n_opt = len(self.m.options[actor])
        where = f"{self.m.actors[actor]}'s move in step {self.step}"
        matrix = 8 * (n_opt + 1) * d.n
        self._memory(
            d.n,
            where,
            PROBABILITY_COPIES * matrix,
            f"choosing among {n_opt + 1} moves in {d.n:,} states",
        )
        probs = probabilities(policy, available, n_opt, d.n, move_number, latest, inputs)
        copies = int(np.count_nonzero(probs > 0))
        held = probs.nbytes + (0 if inputs is None else np.asarray(inputs).nbytes)
        self._memory(d.n + copies, where, held, f"{copies:,} weighted copies of states")
        self.counted = True
        out = []
        for k, piece in split(d, probs):
            self.moves[actor, k] += piece.w.sum()
            out.append((k - 1, _DistPart(self, piece)))
        return out

    def played(self, actor: int, code: int, parts: list[_DistPart]) -> None:
        if not self.counted:  # no policy or no options: everyone passes
            self.moves[actor, 0] += parts[0].d.w.sum()
        for part in parts:
            p = part.d
            record_move(self.m, p.last, actor, code)
            np.maximum(p.peak, p.rung, out=p.peak)
            self.pieces.append(p)
        rows = sum(p.n for p in self.pieces)
        where = f"{self.m.actors[actor]}'s move in step {self.step}"
        self._memory(rows, where, MERGE_BYTES * rows, f"merging {rows:,} weighted states")
        if rows > 2 * max(self.max_states, MERGE_ROWS):
            self.pieces = [merge(self.pieces, self.integral)]  # bounds memory on wide menus

    def moved(self, actor: int) -> None:
        self.d = merge(self.pieces, self.integral)
        self._count(self.d, f"{self.m.actors[actor]}'s move in step {self.step}")

    def stepped(self, part: _DistPart) -> None:
        m = self.m
        self.d = part.d
        if m.step_payoffs or m.step_effects:
            self.d = merge([self.d], self.integral)
        self._count(self.d, f"every_step of step {self.step}")

    def check_terminals(self, weight: float) -> bool:
        if not self.m.terminals or not self.d.n:
            return self.d.n > 0
        part, outcome = first_terminal(self.everyone())
        d = part.d
        done = outcome >= 0
        if done.any():
            for o in np.unique(outcome[done]):
                self._finish(d.take(np.flatnonzero(outcome == o)), int(o), weight)
            d = d.take(np.flatnonzero(~done))
        self.d = d
        return d.n > 0

    def end_step(self, step: int) -> None:
        d = self.d
        self.occupancy[step] = np.bincount(d.rung, weights=d.w, minlength=self.m.n_rungs)

    def finish_horizon(self, weight: float) -> None:
        self._finish(self.d, self.m.end_outcome, weight)

    def branches(self, part: _DistPart, actor: int, option: CompiledOption):
        """Weighted pieces, one per outcome branch with some probability.

        The engine draws branch j when cumulative[j-1] <= u < cumulative[j], u uniform in
        [0, 1); the cumulative sums are non-decreasing (every p checked >= 0)."""
        d = part.d
        if option.constant_cumulative is not None:
            edges = np.clip(option.constant_cumulative[:-1], 0, 1)
            probs = np.diff(np.concatenate([[0.0], edges, [1.0]]))[:, None]
            probs = np.broadcast_to(probs, (len(option.branches), d.n))
        else:
            d, values = self._evaluate(d, [b.p for b in option.branches if b.p is not None])
            probs = checked_branch_probabilities(self.m, actor, option, values, d.n, self.step)
            edges = np.clip(np.cumsum(probs, axis=0)[:-1], 0, 1)
            probs = np.diff(edges, axis=0, prepend=0.0, append=1.0)
        return [(j, _DistPart(self, sub)) for j, sub in split(d, probs)]

    def _finish(self, d: Dist, outcome: int, weight: float) -> None:
        """Record states that ended in `outcome` at the current step, terminal payoffs added."""
        d = terminal_payoffs(_DistPart(self, d), outcome, weight).d
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
                    src, values, probs = self._enumerate(e, need, d)
                    d = d.take(src, probs)
                    scripts = [[a[src] for a in s] for s in scripts]
                    scripts[i].append(values)
        out = []
        for e, script in zip(exprs, scripts, strict=True):
            out.append(e(_Ctx(self, d, script)))
        return d, out

    def _enumerate(self, e: Located, need: _NeedDraw, d: Dist):
        """Rows of `d` to repeat, the value each copy sees and its probability, for one draw."""
        n = d.n
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
            message = (
                f"not exactly solvable: enumerating this {need.kind}() draw at step "
                f"{self.step} takes {int(rows):,} weighted copies of {n:,} states, more than "
                f"{ROW_FACTOR} x the state limit of {self.max_states:,} (use `escalation run` "
                f"or a higher --max-states)"
            )
            raise ScenarioError([self._draw_problem(e, need, message)]) from None
        need_bytes = int(rows + n) * self.row_bytes
        if need_bytes > self.max_memory:
            message = (
                f"not exactly solvable within memory: enumerating this {need.kind}() draw at "
                f"step {self.step} takes {int(rows):,} weighted copies of {n:,} states, about "
                f"{_gib(need_bytes)}, more than the limit of {_gib(self.max_memory)} (use "
                "`escalation run`)"
            )
            raise ScenarioError([self._draw_problem(e, need, message)]) from None
        return enumerate_draw(need.kind, args, n)

    # --- refusals ------------------------------------------------------------------------

    def _count(self, d: Dist, where: str) -> None:
        self.total_states += d.n
        if d.n > self.widest:
            self.widest, self.widest_at = d.n, where
        if d.n > self.max_states:
            raise self._too_many(d.n, f"after {where}")
        self._memory(2 * d.n, f"after {where}", 0, f"{d.n:,} distinct states")

    def _memory(self, rows: int, where: str, extra: int, what: str) -> None:
        """Refuse, before the arrays are made, a point of the solve whose states (`rows` of
        row_bytes each, and `extra` bytes) would take more than max_memory."""
        need = rows * self.row_bytes + extra
        if need <= self.max_memory:
            return
        raise self._refuse(
            ("horizon",),
            f"not exactly solvable within memory: {what} at {where} would take about "
            f"{_gib(need)} ({self.row_bytes} bytes a state), more than the limit of "
            f"{_gib(self.max_memory)} (use `escalation run`, a shorter horizon or fewer options)",
        )

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

    def _draw_problem(self, e: Located, need: _NeedDraw, message: str) -> Problem:
        """The problem placed on the draw `need` inside the expression `e`."""
        draws = draw_offsets(e.expr.source)
        offset = e.expr.random_offset or 0
        if need.index < len(draws) and draws[need.index][0] == need.kind:
            offset = draws[need.index][1]
        return e.where.problem_at(offset, message)

    def _continuous(self, e: Located, need: _NeedDraw) -> ScenarioError:
        why = "an unbounded" if need.kind == "poisson" else "a continuous"
        enumerable = " and ".join(f"{d}()" for d in ENUMERABLE_DRAWS)
        message = (
            f"not exactly solvable: {need.kind}() is {why} random draw (reached at step "
            f"{self.step}); the exact solver enumerates only {enumerable} draws; "
            f"use `escalation run`"
        )
        return ScenarioError([self._draw_problem(e, need, message)])

    # --- results -------------------------------------------------------------------------

    def results(self, seconds: float) -> Results:
        m = self.m
        self._compact_final()
        total = self.ended.sum()
        with np.errstate(all="ignore"):  # an overflow is refused below, without a warning
            mean = self.pay1 / total if total else self.pay1
            var = self.pay2 / total - mean * mean if total else self.pay2
        if not np.isfinite(mean).all():
            actor = m.actors[int(np.flatnonzero(~np.isfinite(mean))[0])]
            raise SimulationError(f"the payoffs of {actor} overflow (their mean is not finite)")
        if not np.isfinite(var).all():  # as Monte Carlo says, for payoffs beyond about 1e154
            raise SimulationError("payoffs are too large to average (their spread overflows)")
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


def _gib(size: float) -> str:
    return f"{size / (1 << 30):,.1f} GiB"


def solve(
    model: Model, max_states: int = DEFAULT_MAX_STATES, max_memory: int = DEFAULT_MAX_MEMORY
) -> Results:
    """The exact outcome distribution of `model`, as a `Results` with probabilities, not counts.

    Raises ScenarioError (file:line:col) when the scenario cannot be solved exactly: a `poisson`,
    `uniform` or `normal` draw is reached, a policy kind is not supported, or more than
    `max_states` distinct states are reachable at one point of a step, or its states would take
    more than `max_memory` bytes (estimated, and refused before they are made).
    """
    start = time.perf_counter()
    solver = _Solver(model, max_states, max_memory)
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

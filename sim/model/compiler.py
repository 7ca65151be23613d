"""Scenario + parameter values -> compiled model: index tables and compiled expressions.

This is the only stage that reads expression text; the engine sees integer indices, numpy
arrays and compiled callables.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
from collections.abc import Mapping
from typing import Any

import numpy as np

from sim.errors import ExpressionError, Problem, ScenarioError, did_you_mean
from sim.format import views
from sim.format.checks import BUILTIN_NAMES, PROBABILITY_TOLERANCE
from sim.format.scenario import (
    Effects,
    FixedPolicy,
    LogitPolicy,
    Scenario,
    SequencePolicy,
    StrategicPolicy,
    TablePolicy,
)
from sim.format.source import Path, SourceMap
from sim.model.compiled import (
    CHOICE_SITE,
    KEEP,
    NOT_YET,
    PASS,
    ActorView,
    CompiledBranch,
    CompiledEffects,
    CompiledOption,
    CompiledPolicy,
    CompiledTally,
    CompiledTerminal,
    Located,
    Location,
    Model,
    ViewChannel,
    scenario_sha256,
)
from sim.model.draws import refuse_random_draws
from sim.model.expr import Namespace, compile_expr, constant_expr, evaluate_constant


class _Compiler:
    def __init__(self, scenario: Scenario, parameters: dict[str, float]):
        self.s = scenario
        self.src: SourceMap = scenario._source or SourceMap("<scenario>")
        self.parameters = parameters
        self.problems: list[Problem] = []
        self.sites = itertools.count(CHOICE_SITE + 1)
        self.actors = tuple(scenario.actors)
        self.state_names = tuple(scenario.state)
        choices = {
            f"last_{a}": ("none", "pass", *[o.id for o in scenario.options.get(a, [])])
            for a in self.actors
        }
        self.ns = Namespace(
            parameters=frozenset(scenario.parameters),
            state=frozenset(scenario.state),
            builtins=frozenset(BUILTIN_NAMES),
            choices=choices,
        )
        self.channels = self.view_channels()
        self.view_ns = {a: self.viewer_namespace(a) for a in self.actors}
        self.param_ns = Namespace(
            parameters=frozenset(scenario.parameters),
            allow_random=False,
            purpose="policy number (parameters only)",
        )

    def view_channels(self) -> tuple[ViewChannel, ...]:
        """A channel per (viewer, mover) pair whose viewer does not see every move as it is."""
        out = []
        for m, mover in enumerate(self.actors):
            menu = self.s.options.get(mover, [])
            for v, viewer in enumerate(self.actors):
                if views.sees_moves_as_they_are(self.s, mover, viewer):
                    continue
                labels = views.labels(self.s, mover, viewer)
                codes = [NOT_YET, PASS]
                for option in menu:
                    label = views.label_of(option, viewer, mover)
                    codes.append(KEEP if label is None else labels.index(label))
                row = len(self.actors) + len(out)
                out.append(ViewChannel(v, m, row, labels, np.array(codes, dtype=np.int64)))
        return tuple(out)

    def channel(self, mover: str, viewer: str) -> ViewChannel | None:
        m, v = self.actors.index(mover), self.actors.index(viewer)
        return next((c for c in self.channels if (c.mover, c.viewer) == (m, v)), None)

    def viewer_namespace(self, viewer: str) -> Namespace:
        """What `viewer`'s policy may read: its view (DESIGN.md section 8.1)."""
        hidden = views.hidden_state(self.s, viewer)
        reasons = {
            name: f"'{name}' is hidden from {viewer} (visible_to: "
            f"{', '.join(self.s.state[name].visible_to or ())}): {viewer}'s policy cannot "
            "read it"
            for name in hidden
        }
        choices = dict(self.ns.choices)
        reads = {}
        for mover in self.actors:
            channel = self.channel(mover, viewer)
            if channel is not None:
                choices[f"last_{mover}"] = ("none", "pass", *channel.labels)
                reads[f"last_{mover}"] = f"last_{mover}@{viewer}"
        return dataclasses.replace(
            self.ns,
            state=self.ns.state - set(hidden),
            choices=choices,
            reads=reads,
            hidden=reasons,
        )

    def actor_views(self) -> tuple[ActorView, ...]:
        if not views.has_hidden_information(self.s):
            return ()
        out = []
        for viewer in self.actors:
            state = tuple(
                i for i, n in enumerate(self.state_names) if views.sees_state(self.s, viewer, n)
            )
            rows = []
            for m, mover in enumerate(self.actors):
                channel = self.channel(mover, viewer)
                rows.append(m if channel is None else channel.row)
            out.append(ActorView(state, tuple(rows)))
        return tuple(out)

    def expr(self, value: Any, path: Path, purpose: str, ns: Namespace | None = None):
        if isinstance(value, (bool, int, float)):
            return Located(constant_expr(value), self.where(path))
        namespace = dataclasses.replace(ns or self.ns, purpose=purpose)
        try:
            return Located(compile_expr(value, namespace, self.sites), self.where(path))
        except ExpressionError as exc:
            self.problems.append(self.src.expression_problem(path, exc.offset, str(exc)))
            return None

    def where(self, path: Path) -> Location:
        line, col = self.src.locate(path) if self.src.located else (0, 0)
        return Location(self.src.file, line, col, path, self.src)

    def payoffs(self, payoffs: Mapping[str, Any], path: Path):
        out = []
        for actor, value in payoffs.items():
            compiled = self.expr(value, path + (actor,), "payoff")
            if compiled is not None:
                out.append((self.actors.index(actor), compiled))
        return tuple(out)

    def effects(self, effects: Effects, path: Path) -> CompiledEffects:
        parts: dict[str, list] = {"add": [], "set": []}
        for kind in ("add", "set"):
            for name, value in getattr(effects, kind).items():
                compiled = self.expr(value, path + (kind, name), "effect")
                if compiled is not None:
                    parts[kind].append((self.state_names.index(name), compiled))
        both = set(effects.add) & set(effects.set)
        for name in sorted(both):
            self.problems.append(
                self.src.problem(
                    path + ("set", name), f"'{name}' is both added to and set", key=True
                )
            )
        return CompiledEffects(tuple(parts["add"]), tuple(parts["set"]))

    def tallies(self) -> tuple[CompiledTally, ...]:
        out = []
        for var, (name, v) in enumerate(self.s.state.items()):
            if v.tally is None:
                continue
            path: Path = ("state", name, "tally", "payoffs")
            payoffs = self.payoffs(v.tally.payoffs, path)
            for actor, located in payoffs:
                if located.expr.uses_random:
                    self.problems.append(
                        self.src.problem(
                            path + (self.actors[actor],),
                            "a payoff per unit of a tally cannot draw at random",
                        )
                    )
            into = tuple(self.state_names.index(t) for t in v.tally.into)
            out.append(CompiledTally(var, into, payoffs))
        return tuple(out)

    def rung(self, rung: Any) -> int | None:
        return None if rung is None else self.s.rung_index(rung)

    def number(self, value: Any, path: Path) -> float | None:
        if not isinstance(value, str):
            return float(value)
        compiled = self.expr(value, path, "policy number", self.param_ns)
        if compiled is None:
            return None
        return evaluate_constant(compiled.expr, self.parameters)

    def options(self, actor: str) -> tuple[CompiledOption, ...]:
        menu = []
        for i, option in enumerate(self.s.options.get(actor, [])):
            path = ("options", actor, i)
            requires = None
            if option.requires is not True:
                requires = self.expr(
                    option.requires, path + ("requires",), "requires condition", self.view_ns[actor]
                )
            branches = []
            for j, b in enumerate(option.outcomes):
                bpath = path + ("outcomes", j)
                p = None if b.p is None else self.expr(b.p, bpath + ("p",), "branch probability")
                branches.append(
                    CompiledBranch(
                        b.id,
                        b.label or b.id.replace("_", " "),
                        p,
                        self.rung(b.rung),
                        self.effects(b.effects, bpath + ("effects",)),
                        self.payoffs(b.payoffs, bpath + ("payoffs",)),
                    )
                )
            menu.append(
                CompiledOption(
                    i,
                    option.id,
                    option.label or option.id.replace("_", " "),
                    option.doc,
                    self.rung(option.rung),
                    requires,
                    self.payoffs(option.payoffs, path + ("payoffs",)),
                    self.effects(option.effects, path + ("effects",)),
                    tuple(branches),
                    next(self.sites),
                    self.constant_cumulative(option.id, actor, branches, path),
                )
            )
        return tuple(menu)

    def constant_cumulative(
        self, option: str, actor: str, branches: list[CompiledBranch], path: Path
    ) -> np.ndarray | None:
        """Cumulative branch probabilities when every p is a constant or depends on parameters
        alone (then checked here, once, instead of at every move)."""
        if not branches:
            return None
        ps: list[float | None] = []
        for b in branches:
            if b.p is None:
                ps.append(None)
            elif b.p.expr.constant is not None:
                ps.append(float(b.p.expr.constant))
            elif b.p.expr.uses_random or not b.p.expr.names <= set(self.parameters):
                return None
            else:
                ps.append(evaluate_constant(b.p.expr, self.parameters))
        where = ("outcomes",)
        for j, p in enumerate(ps):
            if p is not None and not 0 <= p <= 1:
                self.problems.append(
                    self.src.problem(
                        path + ("outcomes", j, "p"),
                        f"probability {p:g} of branch "
                        f"'{branches[j].id}' of {actor}'s option '{option}' is outside [0, 1] "
                        "with these parameter values",
                    )
                )
                return None
        known = sum(p for p in ps if p is not None)
        if None not in ps and abs(known - 1) > PROBABILITY_TOLERANCE:
            self.problems.append(
                self.src.problem(
                    path + where,
                    f"branch probabilities of {actor}'s option '{option}' sum to "
                    f"{known:.12g}, not 1, with these parameter values",
                )
            )
            return None
        if None in ps and known > 1 + PROBABILITY_TOLERANCE:
            self.problems.append(
                self.src.problem(
                    path + where,
                    f"branch probabilities of {actor}'s option '{option}' sum to "
                    f"{known:.12g} > 1 with these parameter values, leaving a negative remainder",
                )
            )
            return None
        return np.cumsum([max(0.0, 1.0 - known) if p is None else p for p in ps])

    def policy(self, actor: str, policy: Any, path: Path) -> CompiledPolicy | None:
        menu = [o.id for o in self.s.options.get(actor, [])]
        if isinstance(policy, FixedPolicy):
            return CompiledPolicy("fixed", option=menu.index(policy.option))
        if isinstance(policy, SequencePolicy):
            return CompiledPolicy("sequence", sequence=tuple(menu.index(o) for o in policy.options))
        if isinstance(policy, (LogitPolicy, StrategicPolicy)):
            rationality = self.number(policy.rationality, path + ("rationality",))
            if rationality is not None and not (math.isfinite(rationality) and rationality >= 0):
                self.problems.append(
                    self.src.problem(
                        path + ("rationality",), f"rationality must be >= 0, got {rationality:g}"
                    )
                )
            if isinstance(policy, StrategicPolicy):
                if rationality is None:
                    return None
                return CompiledPolicy(
                    "strategic", rationality=rationality, lookahead=policy.lookahead
                )
            view = self.view_ns[actor]
            utilities = tuple(
                self.expr(policy.utilities[o], path + ("utilities", o), "utility", view)
                for o in menu
            )
            if None in utilities or rationality is None:
                return None
            return CompiledPolicy("logit", rationality=rationality, utilities=utilities)
        assert isinstance(policy, TablePolicy)
        return self.table(actor, policy, menu, path)

    def table(
        self, actor: str, policy: TablePolicy, menu: list[str], path: Path
    ) -> CompiledPolicy | None:
        other = self.actors.index(policy.respond_to)
        other_menu = [o.id for o in self.s.options.get(policy.respond_to, [])]
        channel = self.channel(policy.respond_to, actor)
        if channel is not None:  # the table answers the move as this actor saw it
            other, other_menu = channel.row, list(channel.labels)
        row_names = list(policy.table)
        rows = np.zeros((len(row_names), len(menu)))
        ok = True
        for r, row in enumerate(row_names):
            for option, value in policy.table[row].items():
                cpath = path + ("table", row, option)
                p = self.number(value, cpath)
                if p is None:
                    ok = False
                elif not 0 <= p <= 1:
                    ok = False
                    self.problems.append(
                        self.src.problem(
                            cpath,
                            f"probability {p:g} is outside [0, 1] with these parameter values",
                        )
                    )
                else:
                    rows[r, menu.index(option)] = p
            total = rows[r].sum()
            if ok and abs(total - 1) > PROBABILITY_TOLERANCE:
                ok = False
                self.problems.append(
                    self.src.problem(
                        path + ("table", row), f"table row '{row}' sums to {total:g}, not 1"
                    )
                )
        default = row_names.index("default")
        codes = np.full(len(other_menu) + 2, default, dtype=np.int64)
        for r, row in enumerate(row_names):
            if row == "pass":
                codes[PASS + 2] = r
            elif row in other_menu:
                codes[other_menu.index(row) + 2] = r
        if not ok:
            return None
        return CompiledPolicy(
            "table",
            respond_to=other,
            row_of_code=codes,
            rows=rows,
            rows_by_option=np.ascontiguousarray(rows.T),
        )

    def terminals(self) -> tuple[CompiledTerminal, ...]:
        out = []
        ids = self.s.outcome_ids
        for oid, terminal in self.s.outcomes.items():
            path = ("outcomes", oid)
            when = self.expr(terminal.when, path + ("when",), "terminal condition")
            if when is not None:
                out.append(
                    CompiledTerminal(
                        ids.index(oid), when, self.payoffs(terminal.payoffs, path + ("payoffs",))
                    )
                )
        return tuple(out)


def resolve_parameters(
    scenario: Scenario, overrides: Mapping[str, float] | None
) -> dict[str, float]:
    """Parameter values with overrides applied; unknown names or out-of-range values are errors."""
    values = {name: p.value for name, p in scenario.parameters.items()}
    problems = []
    for name, value in (overrides or {}).items():
        param = scenario.parameters.get(name)
        if param is None:
            hint = did_you_mean(name, scenario.parameters)
            problems.append(f"unknown parameter '{name}'{hint}")
            continue
        if (param.min is not None and value < param.min) or (
            param.max is not None and value > param.max
        ):
            problems.append(f"{name}={value:g} is outside its range [{param.min}, {param.max}]")
            continue
        values[name] = float(value)
    if problems:
        raise ValueError("; ".join(problems))
    return values


def compile_model(
    scenario: Scenario,
    overrides: Mapping[str, float] | None = None,
    policies: Mapping[str, Any] | None = None,
) -> Model:
    """Compile a validated scenario with its parameter values (and optional policy overrides).

    Strategic policies compile to kind "strategic", which cannot choose until a solver has
    turned it into a lookup (sim.solvers.prepare.prepare_model)."""
    parameters = resolve_parameters(scenario, overrides)
    c = _Compiler(scenario, parameters)
    options = tuple(c.options(a) for a in c.actors)
    chosen = {**scenario.policies, **(policies or {})}
    compiled_policies = []
    for actor in c.actors:
        policy = chosen.get(actor)
        path: Path = ("policies", actor)
        if policies and actor in policies:
            path = ("alternatives", actor)
        compiled_policies.append(None if policy is None else c.policy(actor, policy, path))
    for actor, named in scenario.alternatives.items():
        for name, policy in named.items():
            c.policy(actor, policy, ("alternatives", actor, name))
    step_effects = c.effects(scenario.every_step.effects, ("every_step", "effects"))
    step_payoffs = c.payoffs(scenario.every_step.payoffs, ("every_step", "payoffs"))
    terminals = c.terminals()
    terminal_value = c.payoffs(scenario.terminal_value, ("terminal_value",))
    tallies = c.tallies()
    if c.problems:
        raise ScenarioError(c.problems)
    state = scenario.state.values()
    model = Model(
        scenario=scenario,
        parameters=parameters,
        sha256=scenario_sha256(scenario),
        state_names=c.state_names,
        state_initial=np.array([v.initial for v in state], dtype=float),
        state_min=np.array([-np.inf if v.min is None else v.min for v in state], dtype=float),
        state_max=np.array([np.inf if v.max is None else v.max for v in state], dtype=float),
        state_integer=np.array([v.integer for v in state], dtype=bool),
        actors=c.actors,
        turn_order=tuple(c.actors.index(a) for a in scenario.turn_order),
        options=options,
        policies=tuple(compiled_policies),
        step_effects=step_effects,
        step_payoffs=step_payoffs,
        terminals=terminals,
        outcome_ids=tuple(scenario.outcome_ids),
        end_outcome=scenario.outcome_ids.index(scenario.end),
        n_rungs=len(scenario.ladder),
        initial_rung=scenario.rung_index(scenario.initial_rung),
        horizon=scenario.horizon,
        discount=scenario.discount,
        terminal_value=terminal_value,
        channels=c.channels,
        tallies=tallies,
        views=c.actor_views(),
        policy_overrides=tuple(
            (actor, policy.model_dump_json()) for actor, policy in sorted((policies or {}).items())
        ),
    )
    if any(p is not None and p.kind == "strategic" for p in model.policies):
        refuse_random_draws(model, "the strategic policy")
    return model

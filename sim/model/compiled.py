"""The compiled model: index tables, compiled expressions and the constants of a step."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from sim.errors import Problem, SimulationError
from sim.format.digest import scenario_sha256 as scenario_sha256  # re-exported
from sim.format.scenario import (
    Scenario,
)
from sim.format.source import Path as SourcePath
from sim.format.source import SourceMap, dotted
from sim.model.expr import CompiledExpr

PASS = -1
"""Code of the no-op move of an actor whose options are all unavailable."""
NOT_YET = -2
"""Code of `last_<actor>` before that actor's first move."""
KEEP = -3
"""In a view channel's code map: the viewer does not see this move (it keeps what it saw)."""
CHOICE_SITE = 0
"""Random-number site of every policy choice; other sites are numbered at compile time."""


@dataclass(frozen=True)
class Location:
    """Where a compiled expression was written: recorded once by the compiler."""

    file: str
    line: int
    col: int
    path: SourcePath = ()
    """The expression's place in the scenario (keys and indices)."""
    source: SourceMap | None = field(default=None, compare=False, repr=False)

    def __str__(self) -> str:
        if self.line <= 0:
            return f"{self.file}: {dotted(self.path)}"
        return f"{self.file}:{self.line}:{self.col}"

    def problem_at(self, offset: int, message: str) -> Problem:
        """A problem at the `offset`-th character of the expression's text (YAML quoting, folding
        and block scalars followed)."""
        if self.source is None:
            return Problem(self.file, self.line, self.col + offset, message)
        return self.source.expression_problem(self.path, offset, message)


@dataclass(frozen=True)
class Located:
    """A compiled expression and where it came from, for run-time error messages."""

    expr: CompiledExpr
    where: Location

    def __call__(self, ctx: Any) -> Any:
        try:
            return self.expr(ctx)
        except SimulationError as exc:  # e.g. poisson(lam) with lam < 0: say where
            message = str(exc)
            if message.startswith(str(self.where)):
                raise
            step = getattr(ctx, "step", None)
            at = f" at step {step}" if step else ""
            raise SimulationError(f"{self.where}: {message}{at}") from None


@dataclass(frozen=True)
class CompiledEffects:
    add: tuple[tuple[int, Located], ...] = ()
    set: tuple[tuple[int, Located], ...] = ()

    def __bool__(self) -> bool:
        return bool(self.add or self.set)

    def changes(self, var: int) -> bool:
        """Whether this effect adds to or sets state variable `var`."""
        return any(v == var for v, _ in self.add + self.set)


@dataclass(frozen=True)
class CompiledTally:
    """A state variable whose increases settle at once: added to totals, charged per unit."""

    var: int
    into: tuple[int, ...]
    payoffs: tuple[tuple[int, Located], ...]


@dataclass(frozen=True)
class CompiledBranch:
    id: str
    label: str
    p: Located | None
    rung: int | None
    effects: CompiledEffects
    payoffs: tuple[tuple[int, Located], ...]


@dataclass(frozen=True)
class CompiledOption:
    index: int
    id: str
    label: str
    doc: str
    rung: int | None
    requires: Located | None
    payoffs: tuple[tuple[int, Located], ...]
    effects: CompiledEffects
    branches: tuple[CompiledBranch, ...]
    branch_site: int = 0
    """Random-number site of the branch draw (see sim/streams.py)."""
    constant_cumulative: np.ndarray | None = None
    """Cumulative branch probabilities when every p is a constant (no run-time check needed)."""


@dataclass(frozen=True)
class CompiledPolicy:
    kind: str
    option: int = 0
    sequence: tuple[int, ...] = ()
    respond_to: int = -1
    row_of_code: np.ndarray | None = None
    """Row of the table for each latest move code of `respond_to`, offset by 2 (NOT_YET -> 0)."""
    rows: np.ndarray | None = None
    rows_by_option: np.ndarray | None = None
    """The table transposed to (options, rows), contiguous: one gather per run, no copy."""
    rationality: float = 1.0
    utilities: tuple[Located, ...] = ()
    lookahead: int | None = None
    """Strategic policies: steps looked ahead (None: to the horizon)."""
    lookup: Any = None
    """Kind "lookup": the solved choices (sim.model.lookup.LookupTable)."""


@dataclass(frozen=True)
class ViewChannel:
    """What one actor saw of another's latest move, kept beside the true `last` rows.

    Only pairs whose viewer does not see every move under its own id get a channel; the others
    read the true `last_<mover>`."""

    viewer: int
    mover: int
    row: int
    """Row of the drivers' `last` matrix that holds it (after one row per actor)."""
    labels: tuple[str, ...]
    """The labels the viewer can see; codes 0.. index them (-2 none yet, -1 pass)."""
    codes: np.ndarray
    """Seen code of each true move code + 2 (NOT_YET, PASS, the options), KEEP if unseen."""


@dataclass(frozen=True)
class ActorView:
    """What an actor's policy reads: its information set, apart from step and turn."""

    state: tuple[int, ...]
    """Indices of the state variables it sees."""
    last_rows: tuple[int, ...]
    """For each actor, the row of `last` that holds that actor's move as this one saw it."""


@dataclass(frozen=True)
class CompiledTerminal:
    outcome: int
    when: Located
    payoffs: tuple[tuple[int, Located], ...]


@dataclass(frozen=True)
class Model:
    """A scenario compiled with one set of parameter values, ready for the engine."""

    scenario: Scenario
    parameters: dict[str, float]
    sha256: str
    state_names: tuple[str, ...]
    state_initial: np.ndarray
    state_min: np.ndarray
    state_max: np.ndarray
    state_integer: np.ndarray
    actors: tuple[str, ...]
    turn_order: tuple[int, ...]
    options: tuple[tuple[CompiledOption, ...], ...]
    policies: tuple[CompiledPolicy | None, ...]
    step_effects: CompiledEffects
    step_payoffs: tuple[tuple[int, Located], ...]
    terminals: tuple[CompiledTerminal, ...]
    outcome_ids: tuple[str, ...]
    end_outcome: int
    n_rungs: int
    initial_rung: int
    horizon: int
    discount: float
    terminal_value: tuple[tuple[int, Located], ...] = ()
    forced_first: dict[int, int] = field(default_factory=dict)
    policy_overrides: tuple[tuple[str, str], ...] = ()
    """(actor, policy as JSON) compiled in place of the scenario's own (for worker processes)."""
    strategic: Any = None
    """The strategic solver's record (values at the start, state count) once solved, for
    reports and tests; engines read only the lookup policies."""
    channels: tuple[ViewChannel, ...] = ()
    tallies: tuple[CompiledTally, ...] = ()
    """The state variables with a `tally`, in state order."""
    views: tuple[ActorView, ...] = ()
    """Each actor's view, in actor order (empty: every actor sees everything)."""

    @property
    def n_last_rows(self) -> int:
        """Rows of the drivers' `last` matrix: one per actor, then one per view channel."""
        return len(self.actors) + len(self.channels)

    @property
    def hidden_information(self) -> bool:
        return bool(self.channels) or any(len(v.state) < len(self.state_names) for v in self.views)

    def last_names(self) -> dict[str, int]:
        """Row of `last` behind each name a compiled expression reads: `last_<actor>`, and
        `last_<mover>@<viewer>` (a policy's view of a move, see ViewChannel)."""
        names = {f"last_{a}": i for i, a in enumerate(self.actors)}
        for ch in self.channels:
            names[f"last_{self.actors[ch.mover]}@{self.actors[ch.viewer]}"] = ch.row
        return names

    def view_of(self, actor: int) -> ActorView:
        """The actor's view (everything, when the scenario hides nothing)."""
        if self.views:
            return self.views[actor]
        return ActorView(tuple(range(len(self.state_names))), tuple(range(len(self.actors))))

    @property
    def max_options(self) -> int:
        return max((len(menu) for menu in self.options), default=0)

    def actor_index(self, actor: str) -> int:
        return self.actors.index(actor)

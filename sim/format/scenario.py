"""Pydantic models of the scenario format (DESIGN.md section 2) and its JSON Schema export."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any, Literal, Union, get_args, get_origin

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationInfo,
    model_validator,
)
from pydantic_core import PydanticCustomError

from sim.errors import ScenarioError, did_you_mean
from sim.format.digest import canonical_json
from sim.format.source import SourceMap

POLICY_KINDS = ("fixed", "sequence", "table", "logit", "strategic")
LATER_POLICY_KINDS = {
    "human": "the human policy is not a scenario policy: `escalation play --as ACTOR` asks the "
    "player at the keyboard",
}
RESERVED_OPTION_IDS = ("pass", "none")


def _expression(value: Any) -> Any:
    if isinstance(value, (bool, int, float, str)):
        return value
    raise PydanticCustomError(
        "expression_type",
        "expected a number, true/false or an expression string, got {got}",
        {"got": type(value).__name__},
    )


Expr = Annotated[
    Union[bool, float, str],
    BeforeValidator(_expression, json_schema_input_type=Union[bool, float, str]),
]
"""A number or an expression string (see docs/scenario-format.md)."""

ParamNumber = Union[float, str]
"""A number, or a parameter name / expression of parameters alone."""

Rung = Union[int, str]
"""A rung index (0 = lowest) or a ladder name."""

Slug = Annotated[str, Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")]
FileSlug = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9_-]*$")]


class Strict(BaseModel):
    """Base model: immutable, unknown keys and non-finite numbers rejected."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class Parameter(Strict):
    """A named knob: used in expressions, overridden by --set, swept."""

    value: float
    min: float | None = None
    max: float | None = None
    doc: str = ""
    label: str | None = None

    @model_validator(mode="after")
    def _in_range(self) -> Parameter:
        if self.min is not None and self.max is not None and self.min > self.max:
            raise PydanticCustomError(
                "range", "min {lo} is greater than max {hi}", {"lo": self.min, "hi": self.max}
            )
        return self


class StateVar(Strict):
    """A named numeric variable of the crisis."""

    initial: float
    min: float | None = None
    max: float | None = None
    integer: bool = False
    doc: str = ""
    label: str | None = None

    @model_validator(mode="after")
    def _in_range(self) -> StateVar:
        if self.min is not None and self.max is not None and self.min > self.max:
            raise PydanticCustomError(
                "range", "min {lo} is greater than max {hi}", {"lo": self.min, "hi": self.max}
            )
        return self


def _short_parameter(value: Any) -> Any:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return {"value": value}
    return value


def _short_state(value: Any) -> Any:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return {"initial": value}
    return value


ParameterField = Annotated[
    Parameter,
    BeforeValidator(_short_parameter, json_schema_input_type=Union[float, Parameter]),
]
StateField = Annotated[
    StateVar, BeforeValidator(_short_state, json_schema_input_type=Union[float, StateVar])
]


class Actor(Strict):
    label: str
    doc: str = ""


class Effects(Strict):
    """Deterministic state changes; all right-hand sides read the state before the change."""

    add: dict[str, Expr] = Field(default_factory=dict)
    set: dict[str, Expr] = Field(default_factory=dict)


class Branch(Strict):
    """A stochastic outcome branch of an option; one is drawn per move."""

    id: Slug
    label: str | None = None
    doc: str = ""
    p: Expr | None = None
    rung: Rung | None = None
    effects: Effects = Field(default_factory=Effects)
    payoffs: dict[str, Expr] = Field(default_factory=dict)


class Option(Strict):
    """One entry of an actor's menu."""

    id: Slug
    label: str | None = None
    doc: str = ""
    rung: Rung | None = None
    requires: Expr = True
    payoffs: dict[str, Expr] = Field(default_factory=dict)
    effects: Effects = Field(default_factory=Effects)
    outcomes: list[Branch] = Field(default_factory=list)


class FixedPolicy(Strict):
    kind: Literal["fixed"]
    option: str


class SequencePolicy(Strict):
    kind: Literal["sequence"]
    options: list[str] = Field(min_length=1)


class TablePolicy(Strict):
    kind: Literal["table"]
    respond_to: str
    table: dict[str, dict[str, ParamNumber]]


class LogitPolicy(Strict):
    kind: Literal["logit"]
    rationality: ParamNumber = 1.0
    utilities: dict[str, Expr]


class StrategicPolicy(Strict):
    """Quantal response over expected discounted payoffs, solved by backward induction."""

    kind: Literal["strategic"]
    rationality: ParamNumber = 1.0
    lookahead: int | None = Field(default=None, ge=1)


def _policy_kind(value: Any) -> Any:
    if isinstance(value, dict):
        kind = value.get("kind")
        if kind is not None and not isinstance(kind, str):
            raise PydanticCustomError(
                "policy_kind",
                "a policy's 'kind' must be one of {kinds}",
                {"kinds": ", ".join(POLICY_KINDS)},
            )
        if kind is None:
            raise PydanticCustomError(
                "policy_kind",
                "a policy needs a 'kind': one of {kinds}",
                {"kinds": ", ".join(POLICY_KINDS)},
            )
        if kind in LATER_POLICY_KINDS:
            raise PydanticCustomError(
                "policy_kind",
                "policy kind '{kind}': {why}; use one of {kinds}",
                {"kind": kind, "why": LATER_POLICY_KINDS[kind], "kinds": ", ".join(POLICY_KINDS)},
            )
        if kind not in POLICY_KINDS:
            raise PydanticCustomError(
                "policy_kind",
                "unknown policy kind '{kind}'{hint}; use one of {kinds}",
                {
                    "kind": str(kind),
                    "hint": did_you_mean(str(kind), POLICY_KINDS),
                    "kinds": ", ".join(POLICY_KINDS),
                },
            )
    return value


Policy = Annotated[
    Union[FixedPolicy, SequencePolicy, TablePolicy, LogitPolicy, StrategicPolicy],
    Field(discriminator="kind"),
    BeforeValidator(_policy_kind),
]


class EveryStep(Strict):
    """Applied after all actors moved in a step: running effects and payoffs."""

    effects: Effects = Field(default_factory=Effects)
    payoffs: dict[str, Expr] = Field(default_factory=dict)


class Terminal(Strict):
    """A terminal condition, checked after every move; the first match ends the run."""

    when: Expr
    label: str | None = None
    doc: str = ""
    payoffs: dict[str, Expr] = Field(default_factory=dict)


class Scenario(Strict):
    """A whole scenario file, validated and immutable."""

    # (The docstring above is the JSON Schema's description.) However a Scenario is made
    # (`load_scenario`, `Scenario(...)`, `Scenario.model_validate(...)`, `model_copy(update=)`),
    # its cross references are checked on construction; a problem raises ScenarioError, as
    # `file:line:col: message` for a file, `<scenario>: dotted.path: message` from Python.

    schema_version: Literal[1] = Field(alias="schema")
    id: FileSlug
    title: str
    summary: str = ""
    sources: list[str] = Field(default_factory=list)
    teaching_notes: str = ""
    horizon: int = Field(gt=0, le=100_000)
    step_label: str = "step"
    discount: float = Field(default=1.0, gt=0, le=1)
    ladder: list[str] = Field(min_length=1)
    initial_rung: Rung = 0
    parameters: dict[str, ParameterField] = Field(default_factory=dict)
    state: dict[str, StateField] = Field(default_factory=dict)
    actors: dict[str, Actor] = Field(min_length=1)
    turn_order: list[str] = Field(min_length=1)
    options: dict[str, list[Option]]
    policies: dict[str, Policy]
    alternatives: dict[str, dict[str, Policy]] = Field(default_factory=dict)
    every_step: EveryStep = Field(default_factory=EveryStep)
    outcomes: dict[str, Terminal] = Field(default_factory=dict)
    end: Slug = "ongoing"
    terminal_value: dict[str, Expr] = Field(default_factory=dict)
    """Value to each actor of the state where a strategic actor's lookahead stops (default 0)."""

    _source: SourceMap | None = PrivateAttr(default=None)
    """Positions in the file this exact content was loaded from; None if built or changed in
    Python (see sim/format/digest.py)."""

    @model_validator(mode="after")
    def _check_references(self, info: ValidationInfo) -> Scenario:
        """The cross-reference checks, located in the file when validated from one.

        The loader passes `context={"source": SourceMap}` with the file's positions; the map is
        kept (and records this content as the file's) only if it describes this very content.
        """
        from sim.format.checks import check_references  # checks.py imports this module

        source = (info.context or {}).get("source")
        canonical = None
        if isinstance(source, SourceMap) and source.located:
            canonical = canonical_json(self)
            if source.loaded is not None and source.loaded != canonical:
                source = None  # a changed copy or rebuild: it no longer describes the content
        else:
            source = None
        problems = check_references(self, source or SourceMap())
        if problems:
            raise ScenarioError(problems)
        if source is not None:
            if source.loaded is None:
                source.loaded = canonical  # first validation of the file's content
            self._source = source
        return self

    def model_copy(self, *, update: Mapping[str, Any] | None = None, deep: bool = False):
        """A copy; with `update` (field names or aliases, values may be plain dicts), a newly
        validated scenario that keeps the file's source map only if its content is unchanged."""
        if not update:
            return super().model_copy(deep=deep)
        data = self.model_dump(by_alias=True)
        fields = type(self).model_fields
        for name, value in update.items():
            field = fields.get(name)
            data[(field.alias or name) if field is not None else name] = value
        return type(self).model_validate(data, context={"source": self._source})

    @property
    def outcome_ids(self) -> list[str]:
        """Terminal outcomes in check order, then the horizon outcome `end` if it is new."""
        ids = list(self.outcomes)
        if self.end not in ids:
            ids.append(self.end)
        return ids

    def outcome_label(self, outcome: str) -> str:
        terminal = self.outcomes.get(outcome)
        if terminal is not None and terminal.label:
            return terminal.label
        return outcome.replace("_", " ").capitalize()

    def rung_index(self, rung: Rung) -> int:
        """A rung given as index or ladder name, as an index (validated on construction)."""
        if isinstance(rung, int):
            return rung
        return self.ladder.index(rung)


def allowed_keys(loc: tuple[Any, ...]) -> list[str]:
    """The keys a mapping at pydantic location `loc` may hold (for did-you-mean suggestions)."""
    tp: Any = Scenario
    parts = list(loc)
    while True:
        tp = _unwrap(tp)
        args = get_args(tp)
        if get_origin(tp) is Union:
            models = [a for a in args if isinstance(a, type) and issubclass(a, BaseModel)]
            tagged = {_kind_of(m): m for m in models if _kind_of(m)}
            if parts and parts[0] in tagged:
                tp = tagged[parts.pop(0)]
                continue
            if len(models) == 1:
                tp = models[0]
                continue
            return []
        if not parts:
            break
        part = parts.pop(0)
        if isinstance(tp, type) and issubclass(tp, BaseModel):
            fields = {f.alias or name: f for name, f in tp.model_fields.items()}
            if part not in fields:
                return []
            tp = fields[part].annotation
        elif get_origin(tp) is dict:
            tp = args[1]
        elif get_origin(tp) is list:
            tp = args[0]
        else:
            return []
    if isinstance(tp, type) and issubclass(tp, BaseModel):
        return [f.alias or name for name, f in tp.model_fields.items()]
    return []


def _unwrap(tp: Any) -> Any:
    while get_origin(tp) is Annotated:
        tp = get_args(tp)[0]
    return tp


def _kind_of(model: type[BaseModel]) -> str | None:
    field = model.model_fields.get("kind")
    if field is None or get_origin(field.annotation) is not Literal:
        return None
    return get_args(field.annotation)[0]


def json_schema() -> dict[str, Any]:
    """JSON Schema (draft 7) of the scenario format, for editor completion."""
    schema = Scenario.model_json_schema(by_alias=True, ref_template="#/definitions/{model}")
    schema["definitions"] = schema.pop("$defs", {})
    return {"$schema": "http://json-schema.org/draft-07/schema#", **schema}

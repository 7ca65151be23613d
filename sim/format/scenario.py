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
from sim.format.colours import check_colour
from sim.format.digest import canonical_json
from sim.format.source import SourceMap

POLICY_KINDS = ("fixed", "sequence", "table", "logit", "strategic")
LATER_POLICY_KINDS = {
    "human": "the human policy is not a scenario policy: `escalation play --as ACTOR` asks the "
    "player at the keyboard",
}
RESERVED_OPTION_IDS = ("pass", "none")
SCHEMA_ID = "urn:escalation-sim:scenario:1"
"""The JSON Schema's `$id`: the format and its version (`schema: 1`); the project has no web
address to give it, and editors find the schema through the file's modeline, not this id."""

# Field descriptions shared by two fields (the JSON Schema shows them in editors; the same text
# as the tables of docs/scenario-format.md, which tests/format/test_schema.py compares).
PARAMETER_RANGE = "the allowed range: `value`, `--set` and sweep ranges must lie inside it"
STATE_RANGE = "every update is clipped to this range"
RATIONALITY = (
    "λ, at least 0 (a policy number): 0 picks uniformly among the available options, large "
    "values pick the best one almost always"
)


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

    value: float = Field(description="the default value")
    min: float | None = Field(default=None, description=PARAMETER_RANGE)
    max: float | None = Field(default=None, description=PARAMETER_RANGE)
    doc: str = Field(
        default="",
        description="what it means, its source, whether it is a guess; shown in reports and `play`",
    )
    label: str | None = Field(
        default=None, description="a short display name for charts (e.g. a sweep's axis)"
    )

    @model_validator(mode="after")
    def _in_range(self) -> Parameter:
        if self.min is not None and self.max is not None and self.min > self.max:
            raise PydanticCustomError(
                "range", "min {lo} is greater than max {hi}", {"lo": self.min, "hi": self.max}
            )
        return self


class Tally(Strict):
    """What a counter's increases settle at once, so that a run ending mid-step loses nothing."""

    into: list[str] = Field(
        default_factory=list,
        description="state variables to which every increase of this variable is added in the "
        "same effect (decreases, such as a reset in `every_step`, are not)",
    )
    payoffs: dict[str, Expr] = Field(
        default_factory=dict,
        description="payoff per unit of increase, per actor, charged (discounted) in the same "
        "effect; read on the state before the effect",
    )


class StateVar(Strict):
    """A named numeric variable of the crisis."""

    initial: float = Field(description="value at the start of every run; must lie in `[min, max]`")
    min: float | None = Field(default=None, description=STATE_RANGE)
    max: float | None = Field(default=None, description=STATE_RANGE)
    integer: bool = Field(
        default=False,
        description="every update is rounded to the nearest integer (halves to even, as "
        "`numpy.rint`), then clipped",
    )
    doc: str = Field(default="", description="what it means; shown in reports, `trace` and `play`")
    label: str | None = Field(default=None, description="a short display name")
    visible_to: list[str] | None = Field(
        default=None,
        description="the actors who see this variable (their policies may read it); default: "
        "every actor. Payoffs, effects, branch probabilities and terminal conditions read it "
        "whatever this says",
    )
    tally: Tally | None = Field(
        default=None,
        description="a counter that settles at once: its increases are added to the `into` "
        "totals and charged the per-unit `payoffs` in the effect that makes them",
    )

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
    """Someone who takes part in the crisis."""

    label: str = Field(description="the name shown in output")
    doc: str = Field(default="", description="a description")


class Effects(Strict):
    """Deterministic state changes; all right-hand sides read the state before the change."""

    add: dict[str, Expr] = Field(
        default_factory=dict,
        description="adds each value to its state variable: `var = var + value`",
    )
    set: dict[str, Expr] = Field(
        default_factory=dict,
        description="sets each state variable to its value: `var = value` (a condition sets 1 "
        "or 0)",
    )


class Branch(Strict):
    """A stochastic outcome branch of an option; one is drawn per move."""

    id: Slug = Field(description="unique within the option")
    label: str | None = Field(default=None, description="shown in `trace` and `play`")
    doc: str = Field(default="", description="a description")
    p: Expr | None = Field(
        default=None,
        description="the branch's probability; at most one branch may omit it and take "
        "`1 - (sum of the others)`",
    )
    rung: Rung | None = Field(
        default=None, description="overrides the option's rung when this branch is drawn"
    )
    effects: Effects = Field(
        default_factory=Effects,
        description="further state changes, applied after the option's own effects",
    )
    payoffs: dict[str, Expr] = Field(default_factory=dict, description="further payoffs")


class Option(Strict):
    """One entry of an actor's menu."""

    id: Slug = Field(description="unique within the actor's menu; not `pass` or `none` (reserved)")
    label: str | None = Field(default=None, description="what students see")
    doc: str = Field(
        default="",
        description="a longer explanation (e.g. which article the option comes from)",
    )
    rung: Rung | None = Field(
        default=None,
        description="playing the option moves the crisis to this rung; none: the rung is unchanged",
    )
    requires: Expr = Field(
        default=True, description="the option is available only where this holds"
    )
    payoffs: dict[str, Expr] = Field(
        default_factory=dict, description="immediate payoffs of playing it"
    )
    effects: Effects = Field(default_factory=Effects, description="deterministic state changes")
    outcomes: list[Branch] = Field(
        default_factory=list, description="stochastic outcome branches, one drawn per play"
    )
    seen_as: dict[str, str | None] = Field(
        default_factory=dict,
        description="how other actors see this move: actor -> the label their `last_<actor>` "
        "takes (default: the option id), or `~` for a move they do not see (their `last_<actor>` "
        "keeps what they saw before)",
    )


class FixedPolicy(Strict):
    """A doctrine: always the same option."""

    kind: Literal["fixed"] = Field(
        description="`fixed`: that option whenever it is available, otherwise the first "
        "available option in menu order"
    )
    option: str = Field(description="the option it plays")


class SequencePolicy(Strict):
    """A plan: one option per move."""

    kind: Literal["sequence"] = Field(
        description="`sequence`: `options[k]` on the actor's k-th move (0-based), the last one "
        "repeating; the same fallback"
    )
    options: list[str] = Field(
        min_length=1, description="the plan, one option per move (at least one)"
    )


class TablePolicy(Strict):
    """An escalation table: a mixed response to another actor's latest move."""

    kind: Literal["table"] = Field(
        description="`table`: at random, from the row of the table picked by `respond_to`'s "
        "latest move"
    )
    respond_to: str = Field(
        description="the actor whose latest move picks the row (any actor, itself included)"
    )
    table: dict[str, dict[str, ParamNumber]] = Field(
        description="rows named after options of `respond_to`, plus `pass` and the required "
        "`default`; each maps options of the choosing actor to probabilities that sum to 1"
    )


class LogitPolicy(Strict):
    """A quantal (noisy best) response over tunable utilities."""

    kind: Literal["logit"] = Field(
        description="`logit`: at random, with probabilities proportional to "
        "`exp(rationality * utility)`"
    )
    rationality: ParamNumber = Field(default=1.0, description=RATIONALITY)
    utilities: dict[str, Expr] = Field(
        description="an expression for every option of the actor, evaluated at the start of "
        "the move"
    )


class StrategicPolicy(Strict):
    """Quantal response over expected discounted payoffs, solved by backward induction."""

    kind: Literal["strategic"] = Field(
        description="`strategic`: at random, with probabilities proportional to "
        "`exp(rationality * expected payoff of the option)`, looking ahead at everyone's answers"
    )
    rationality: ParamNumber = Field(default=1.0, description=RATIONALITY)
    lookahead: int | None = Field(
        default=None,
        ge=1,
        description="K: count the payoffs of this step and the next K - 1 steps only, then "
        "`terminal_value` (default: to the horizon)",
    )


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

    effects: Effects = Field(default_factory=Effects, description="per-step state changes")
    payoffs: dict[str, Expr] = Field(
        default_factory=dict,
        description="per-step payoffs, evaluated before the `every_step` effects",
    )


class Terminal(Strict):
    """A terminal condition, checked after every move; the first match ends the run."""

    when: Expr = Field(description="the run ends with this outcome when it holds")
    label: str | None = Field(default=None, description="shown in tables and charts")
    doc: str = Field(default="", description="a description")
    payoffs: dict[str, Expr] = Field(
        default_factory=dict, description="paid when the run ends this way"
    )
    colour: Annotated[str, BeforeValidator(check_colour)] | None = Field(
        default=None,
        description="its colour in charts: a CSS colour name (`firebrick`) or `#rrggbb`; "
        "default: the palette's colour for the kind of outcome",
    )


class Scenario(Strict):
    """A whole scenario file, validated and immutable."""

    # (The docstring above is the JSON Schema's description.) However a Scenario is made
    # (`load_scenario`, `Scenario(...)`, `Scenario.model_validate(...)`, `model_copy(update=)`),
    # its cross references are checked on construction; a problem raises ScenarioError, as
    # `file:line:col: message` for a file, `<scenario>: dotted.path: message` from Python.

    schema_version: Literal[1] = Field(
        alias="schema", description="format version; this program reads 1"
    )
    id: FileSlug = Field(
        description="names the scenario in JSON results and output folders (`reports/<id>/`)"
    )
    title: str = Field(description="one line, shown at the top of every table and chart")
    summary: str = Field(default="", description="the question the scenario answers")
    sources: list[str] = Field(
        default_factory=list,
        description="what it is grounded in: keys of the bibliography (docs/sources.md; the "
        "article file names are aliases), or a full citation or URL for any other source",
    )
    teaching_notes: str = Field(
        default="",
        description="what to try, what to look for, which numbers are guesses; shown by "
        "`report` and `play`",
    )
    horizon: int = Field(gt=0, le=100_000, description="the most steps a run lasts")
    step_label: str = Field(
        default="step", description="what a step is called in output (`week`, `round`)"
    )
    discount: float = Field(default=1.0, gt=0, le=1, description="per-step discount of payoffs")
    ladder: list[str] = Field(
        min_length=1, description="the rung names, lowest first; rung `i` is `ladder[i]`"
    )
    initial_rung: Rung = Field(default=0, description="the rung every run starts on")
    parameters: dict[str, ParameterField] = Field(
        default_factory=dict,
        description="named knobs: read by expressions, changed by `--set` and `sweep`",
    )
    state: dict[str, StateField] = Field(
        default_factory=dict, description="the numeric variables of the crisis"
    )
    actors: dict[str, Actor] = Field(min_length=1, description="who takes part")
    turn_order: list[str] = Field(min_length=1, description="who moves, in order, within each step")
    options: dict[str, list[Option]] = Field(description="each actor's menu")
    policies: dict[str, Policy] = Field(
        description="how each actor chooses; every actor in `turn_order` needs one"
    )
    alternatives: dict[str, dict[str, Policy]] = Field(
        default_factory=dict,
        description="named alternative policies, compared by `compare --policies`",
    )
    every_step: EveryStep = Field(
        default_factory=EveryStep, description="applied after all actors moved in a step"
    )
    outcomes: dict[str, Terminal] = Field(
        default_factory=dict,
        description="how a run can end before the horizon; first match wins",
    )
    end: Slug = Field(default="ongoing", description="the outcome of runs that reach the horizon")
    terminal_value: dict[str, Expr] = Field(
        default_factory=dict,
        description="the value of a state to each actor where a strategic actor's `lookahead` "
        "stops; read only by strategic policies",
    )
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
    return {"$schema": "http://json-schema.org/draft-07/schema#", "$id": SCHEMA_ID, **schema}

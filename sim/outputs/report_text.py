"""Numbers, shares and doctrines in plain words, shared by the HTML report and the `play` game."""

from __future__ import annotations

import math
import shlex
from collections.abc import Mapping
from typing import Any

from sim.format.scenario import Scenario
from sim.model.compiled import Model


def fmt(x: float) -> str:
    """A number as people write it: 2, 0.38, -25, 1.2e+06."""
    x = float(x)
    if not math.isfinite(x):
        return str(x)
    if abs(x) >= 1e6:
        return f"{x:.3g}"
    if abs(x - round(x)) < 1e-9:
        return str(int(round(x)))
    text = f"{x:.2f}".rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


def fmt_signed(x: float) -> str:
    """A number with its sign: +2, -0.5, 0."""
    text = fmt(x)
    return text if text.startswith("-") or text == "0" else f"+{text}"


def written(x: float) -> str:
    """A number of the scenario (or of --set) as it was written, not rounded: 0.005, 2, -25,
    1e-06, 0.333333333333333. For the model's inputs; results are rounded with `fmt`."""
    x = float(x)
    if not math.isfinite(x):
        return str(x)
    if x == 0:
        return "0"
    if x.is_integer() and abs(x) < 1e15:
        return str(int(x))
    return format(x, ".15g")


def written_signed(x: float) -> str:
    """`written` with its sign: +2, -0.005, 0."""
    text = written(x)
    return text if text.startswith("-") or text == "0" else f"+{text}"


def written_pct(p: float) -> str:
    """A probability of the scenario as a percentage, unrounded: 0.005 -> 0.5%, 0.0025 ->
    0.25%, 1/3 -> 33.3333333333%."""
    return f"{format(100 * float(p), '.12g')}%"


def settings_text(overrides: Mapping[str, float]) -> str:
    """The --set overrides that made an output, for its header: 'kh_autonomy=0.5, war_risk=0'
    or 'scenario defaults'."""
    return ", ".join(f"{k}={written(v)}" for k, v in overrides.items()) or "scenario defaults"


def model_overrides(model: Model) -> dict[str, float]:
    """The parameters of a compiled model that differ from the scenario's values."""
    defaults = model.scenario.parameters
    return {k: v for k, v in model.parameters.items() if v != defaults[k].value}


def pct(x: float) -> str:
    """A share as a percentage with one decimal: 0.381 -> 38.1%."""
    return f"{100 * x:.1f}%"


def describe_policy(
    scenario: Scenario,
    actor: str,
    policy: Any = None,
    parameters: Mapping[str, float] | None = None,
) -> str:
    """How an actor chooses, in words (with the values of parameter names, when given)."""
    policy = policy if policy is not None else scenario.policies.get(actor)
    if policy is None:
        return "no policy: it never moves"
    if policy.kind == "fixed":
        return f"always '{policy.option}' when available, else its first available option"
    if policy.kind == "sequence":
        return f"the plan {' → '.join(policy.options)}, the last move repeating"
    if policy.kind == "table":
        other = scenario.actors[policy.respond_to].label
        return f"a table of responses to {other}'s latest move"
    rationality = getattr(policy, "rationality", None)
    if isinstance(rationality, (int, float)):
        shown = written(rationality)
    elif parameters and rationality in parameters:
        shown = f"{rationality} = {written(parameters[rationality])}"
    else:
        shown = str(rationality)
    if policy.kind == "logit":
        return f"a quantal-response (logit) choice over its utilities, rationality {shown}"
    if policy.kind == "strategic":
        lookahead = getattr(policy, "lookahead", None)
        horizon = "to the horizon" if lookahead is None else f"{lookahead} steps ahead"
        return (
            f"a quantal-response choice over expected payoffs, looking {horizon}, "
            f"rationality {shown}"
        )
    return f"a '{policy.kind}' policy"


def overrides_text(model: Model) -> str:
    """` --set NAME=VALUE` for every parameter that differs from the scenario's value, quoted
    for a POSIX shell (a command printed for copying must run as shown, and only that)."""
    return "".join(
        f" --set {shlex.quote(f'{k}={v:.15g}')}" for k, v in model_overrides(model).items()
    )

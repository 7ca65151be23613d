"""Scenario -> a model every engine and solver can run: compiled, strategic actors solved once."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sim.format.scenario import Scenario
from sim.model.compiled import Model
from sim.model.compiler import compile_model
from sim.solvers.strategic import solve_strategic


def prepare_model(
    scenario: Scenario,
    overrides: Mapping[str, float] | None = None,
    policies: Mapping[str, Any] | None = None,
) -> Model:
    """Compile `scenario` with parameter `overrides` and policy overrides, then solve its
    strategic actors (if any) into lookup policies. Every command and the Python API call this."""
    return solve_strategic(compile_model(scenario, overrides, policies))

"""Scenario files and text, validated completely: format, references, expressions, numbers."""

from __future__ import annotations

from pathlib import Path

from sim.format.loader import parse_text, read_scenario_text
from sim.format.scenario import Scenario
from sim.model.compiler import compile_model


def load_text(text: str, file: str = "<string>") -> Scenario:
    """Validate scenario text completely (format, names, expressions) or raise ScenarioError."""
    scenario = parse_text(text, file)
    compile_model(scenario)
    return scenario


def load_scenario(path: str | Path) -> Scenario:
    """Read and validate a scenario file completely."""
    return load_text(read_scenario_text(path), str(path))

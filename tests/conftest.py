"""Shared fixtures: paths and a builder for small scenarios written inline."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from sim.model.compiled import Model
from sim.model.loading import load_text
from sim.solvers.prepare import prepare_model

ROOT = Path(__file__).resolve().parent.parent
SCENARIOS = ROOT / "scenarios"
CAMP_TAJI = SCENARIOS / "camp_taji_2020.yaml"


def scenario_text(body: str) -> str:
    """A scenario: the common header plus `body` (YAML, dedented)."""
    header = "schema: 1\nid: test\ntitle: Test scenario\n"
    return header + textwrap.dedent(body)


def build(body: str, overrides: dict | None = None) -> Model:
    """Load and compile an inline scenario."""
    return prepare_model(load_text(scenario_text(body), "inline.yaml"), overrides)


@pytest.fixture(scope="session")
def camp_taji() -> Model:
    from sim.model.loading import load_scenario

    return prepare_model(load_scenario(CAMP_TAJI))

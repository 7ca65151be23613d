"""Shared fixtures: paths and a builder for small scenarios written inline."""

from __future__ import annotations

import atexit
import gc
import os
import shutil
import sys
import tempfile
import textwrap
import threading
from pathlib import Path

import pytest

from sim.model.compiled import Model
from sim.model.loading import load_text
from sim.solvers.prepare import prepare_model

# The on-disk cache of scenario parses (sim/format/cache.py) goes to a folder of this test
# session, never to the user's own cache folder; set in os.environ, so the commands the tests
# run as subprocesses use it too. Removed when the session ends.
CACHE_DIR = tempfile.mkdtemp(prefix="escalation-test-cache-")
os.environ["ESCALATION_CACHE_DIR"] = CACHE_DIR
atexit.register(shutil.rmtree, CACHE_DIR, ignore_errors=True)

ROOT = Path(__file__).resolve().parent.parent
SCENARIOS = ROOT / "scenarios"
CAMP_TAJI = SCENARIOS / "camp_taji_2020.yaml"


def scenario_text(body: str) -> str:
    """A scenario: the common header plus `body` (YAML, dedented)."""
    header = "schema: 1\nid: test\ntitle: Test scenario\n"
    return header + textwrap.dedent(body)


BRANCH_LEAVES_RANGE_BODY = """
    horizon: 5
    ladder: [calm]
    state: {x: 0.5}
    actors: {a: {label: A}}
    turn_order: [a]
    options:
      a:
        - id: go
          effects: {add: {x: 0.3}}
          outcomes: [{id: up, p: "x"}, {id: stay}]
    policies: {a: {kind: fixed, option: go}}
    """
BRANCH_LEAVES_RANGE = scenario_text(BRANCH_LEAVES_RANGE_BODY)
"""Valid when loaded; its branch probability leaves [0, 1] in the second step (run time)."""


def build(body: str, overrides: dict | None = None) -> Model:
    """Load and compile an inline scenario."""
    return prepare_model(load_text(scenario_text(body), "inline.yaml"), overrides)


@pytest.fixture(scope="session")
def camp_taji() -> Model:
    from sim.model.loading import load_scenario

    return prepare_model(load_scenario(CAMP_TAJI))


THREADED_SOURCE = " + ".join(f"where(b > {i}, a{i} * 2, max(c, {i}))" for i in range(40))
"""An expression deep and wide enough that building its tree takes many allocations."""


class _Finalised:
    """Cyclic garbage whose finaliser runs Python code, so a collection can switch threads."""

    def __del__(self) -> None:
        total = 0
        for i in range(200):
            total += i


def assert_same_batch(a, b) -> None:
    """Two BatchOutputs equal below the summaries: every run's record, occupancy, endings, moves."""
    import numpy as np

    for field in ("outcome", "steps", "peak_rung", "final_rung", "payoffs", "state"):
        assert np.array_equal(getattr(a.records, field), getattr(b.records, field)), field
    for field in ("occupancy", "ended", "move_counts"):
        assert np.array_equal(getattr(a, field), getattr(b, field)), field


def parse_in_threads(parse, rounds: int, threads: int = 4) -> list[str]:
    """Parse THREADED_SOURCE from several threads under collection pressure; the errors met."""
    errors: list[str] = []

    def work() -> None:
        for _ in range(rounds):
            for _ in range(20):
                junk = _Finalised()
                junk.me = junk
            try:
                parse(THREADED_SOURCE)
            except Exception as exc:
                errors.append(f"{type(exc).__name__}: {exc}")
                return

    interval, thresholds = sys.getswitchinterval(), gc.get_threshold()
    sys.setswitchinterval(1e-6)
    gc.set_threshold(50, 1, 1)
    try:
        pool = [threading.Thread(target=work) for _ in range(threads)]
        for t in pool:
            t.start()
        for t in pool:
            t.join()
    finally:
        sys.setswitchinterval(interval)
        gc.set_threshold(*thresholds)
    return errors

"""The benchmark scripts still run and the specialised simulation still matches the engine.

No timing assertions: figures depend on the machine (see benchmarks/README.md).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BENCHMARKS = ROOT / "benchmarks"
sys.path.insert(0, str(BENCHMARKS))

import specialised  # noqa: E402


def test_specialised_matches_engine_at_small_size():
    assert specialised.check_against_engine(runs=8_000, engine_runs=20_000, seed=3) == []


def test_specialised_matches_engine_with_other_parameters():
    overrides = {"retaliation": 0.4, "quiet_needed": 3, "spiral_risk": 0.1}
    assert (
        specialised.check_against_engine(
            runs=8_000, engine_runs=20_000, seed=4, overrides=overrides
        )
        == []
    )


def test_engine_benchmark_quick_mode_runs():
    out = subprocess.run(
        [sys.executable, str(BENCHMARKS / "engine.py"), "--quick"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=300,
    )
    assert out.returncode == 0, out.stderr
    for label in (
        "(a) engine run-moves/s",
        "(b) engine / reference",
        "(c) peak RSS",
        "(d) engine / specialised",
    ):
        assert label in out.stdout


def test_information_sets_benchmark_runs():
    out = subprocess.run(
        [sys.executable, str(BENCHMARKS / "information_sets.py"), "--horizons", "2", "3"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=300,
    )
    assert out.returncode == 0, out.stderr
    assert "Largest solved: 95 information sets (547 states)" in out.stdout


def test_memory_benchmark_quick_mode_runs():
    out = subprocess.run(
        [sys.executable, str(BENCHMARKS / "memory.py"), "--quick"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=300,
    )
    assert out.returncode == 0, out.stderr
    assert "largest peak" in out.stdout and "met" in out.stdout


def test_fit_benchmark_quick_mode_runs():
    out = subprocess.run(
        [sys.executable, str(BENCHMARKS / "fit.py"), "--quick"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=300,
    )
    assert out.returncode == 0, out.stderr
    assert "target < 30 s" in out.stdout

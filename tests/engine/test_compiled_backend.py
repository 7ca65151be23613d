"""The compiled backend (DESIGN.md section 8.5) gives results identical to the numpy engine's.

Identical means equal: `Results.to_dict()` compared with ==, never within a tolerance. The bundled
scenarios are read at test time (sim.format.library), so edits to them are covered as they land.
"""

from __future__ import annotations

import sys

import numpy as np
import pytest

pytest.importorskip("numba")

from sim.engine import compiled  # noqa: E402
from sim.engine.batch import simulate_batch  # noqa: E402
from sim.engine.executors import ExecutorSpec, open_executor  # noqa: E402
from sim.engine.runner import run_monte_carlo, run_with_records  # noqa: E402
from sim.errors import SimulationError  # noqa: E402
from sim.format.library import bundled_names, resolve_scenario_path  # noqa: E402
from sim.model.loading import load_scenario  # noqa: E402
from sim.solvers.prepare import prepare_model  # noqa: E402
from tests.conftest import assert_same_batch, build  # noqa: E402

NAMES = bundled_names()
RUNS = 5_000  # two blocks, the second one partial


def bundled(name: str):
    return prepare_model(load_scenario(resolve_scenario_path(name)), {})


@pytest.fixture(scope="module")
def pool():
    """One pool of two workers for the whole module (each worker loads the cached kernel)."""
    with open_executor(ExecutorSpec(workers=2)) as executor:
        yield executor


@pytest.mark.parametrize("name", NAMES)
def test_bundled_scenario_identical_on_both_backends(name, pool):
    """Every bundled scenario: the same Results for several seeds, batch sizes and workers, and
    the kernel ran every batch (no fallback: a fallback would make the test vacuous)."""
    model = bundled(name)
    assert compiled.fallback_reason(model) is None
    before = sum(compiled.fallbacks.values())
    for seed, batch_blocks in ((1, 16), (7, 1), (2026, 2)):
        want = run_monte_carlo(model, RUNS, seed, batch_blocks=batch_blocks).to_dict()
        got = run_monte_carlo(
            model, RUNS, seed, batch_blocks=batch_blocks, backend="compiled"
        ).to_dict()
        assert got == want
    on_workers = run_monte_carlo(model, 9_000, 3, executor=pool, backend="compiled").to_dict()
    assert on_workers == run_monte_carlo(model, 9_000, 3).to_dict()
    assert sum(compiled.fallbacks.values()) == before


@pytest.mark.parametrize("name", ["camp_taji_2020", "tit_for_tat"])
def test_batch_records_identical(name):
    """Below the summaries: every run's record, the occupancy, endings and move counts."""
    model = bundled(name)
    a = simulate_batch(model, 11, 1, 2, 3 * 4096 + 17, stream=(4,), record_moves=False)
    b = compiled.simulate_batch_compiled(model, 11, 1, 2, 3 * 4096 + 17, stream=(4,))
    assert_same_batch(a, b)


def test_paired_records_identical():
    """`compare` keeps per-run records: the same on both backends."""
    model = bundled("camp_taji_2020")
    ra, ta = run_with_records(model, 6_000, 5)
    rb, tb = run_with_records(model, 6_000, 5, backend="compiled")
    assert ra.to_dict() == rb.to_dict()
    assert np.array_equal(ta.outcome, tb.outcome)
    assert np.array_equal(ta.payoffs, tb.payoffs)


MATH = """
horizon: 12
ladder: [low, mid, high, top]
parameters: {k: 0.7, big: 3}
state:
  x: {initial: 1.5, min: -50, max: 50}
  n: {initial: 0, min: 0, max: 40, integer: true, tally: {into: [total], payoffs: {a: -0.1}}}
  total: {initial: 0}
  y: 0
actors: {a: {label: A}, b: {label: B}}
turn_order: [a, b]
options:
  a:
    - id: push
      rung: 1
      requires: "x // 2 > -20 and not (x % 3 == 1.25)"
      payoffs: {a: "exp(-abs(x)) + log(1 + x ** 2) - sqrt(abs(x)) * k", b: "min(x, y, 2)"}
      effects:
        add: {x: "uniform(-1, 1.5) + where(rung > 1, -0.5, 0.25)", n: "poisson(1.2)"}
        set: {y: "clip(x * big, -3, 3) + floor(x) - ceil(y) + round(x / 3)"}
      outcomes:
        - {id: up, p: "clip(0.2 + 0.05 * x, 0, 0.6)", rung: 2}
        - {id: down, p: "0.1 + 0.1 * bernoulli(0.5)", rung: 0}
        - {id: stay}
    - id: wait
      effects: {add: {x: "-0.3 * (1 < x < 4)"}}
  b:
    - {id: hit, rung: 3, requires: "rung >= 2 or max(x, 0) > 9"}
    - {id: calm, effects: {add: {x: "-x / 7 + (last_a == 'push') * 0.1"}}}
policies:
  a: {kind: logit, rationality: 1.3, utilities: {push: "abs(x) ** 0.5 - step / 5", wait: "y % 2"}}
  b: {kind: table, respond_to: a, table: {push: {hit: 0.3, calm: 0.7}, default: {calm: 1}}}
every_step:
  payoffs: {a: "-0.05 * rung", b: "0.1 * peak_rung - exp(x / 20)"}
  effects: {add: {x: "0.1 * normal(0, 0) + 0.05"}}
outcomes:
  war: {when: "rung >= 3", payoffs: {a: -10, b: "-5 - x"}}
  drift: {when: "x > 12 or total > 30"}
end: ongoing
"""


def test_every_operation_identical():
    """An inline scenario using every function, operator and draw the kernel evaluates
    (normal(0, 0) included: the kernel leaves normal draws to numpy, so this one falls back)."""
    text = MATH.replace("0.1 * normal(0, 0) + 0.05", "0.05")
    model = build(text)
    assert compiled.fallback_reason(model) is None
    before = sum(compiled.fallbacks.values())
    for seed in (1, 2, 3):
        want = run_monte_carlo(model, 6_000, seed).to_dict()
        assert run_monte_carlo(model, 6_000, seed, backend="compiled").to_dict() == want
    assert sum(compiled.fallbacks.values()) == before


def test_unsupported_draw_falls_back_to_identical_numbers(caplog):
    model = build(MATH)
    before = sum(compiled.fallbacks.values())
    want = run_monte_carlo(model, 5_000, 4).to_dict()
    with caplog.at_level("DEBUG", logger="sim.engine.compiled"):
        got = run_monte_carlo(model, 5_000, 4, backend="compiled").to_dict()
    assert got == want
    assert sum(compiled.fallbacks.values()) > before
    assert "run on the numpy engine" in caplog.text


def test_integer_floor_division_falls_back():
    """numpy's integer // (rung // peak_rung) is not float division: left to numpy, same numbers."""
    model = build("""
horizon: 4
ladder: [low, mid, high]
actors: {a: {label: A}}
turn_order: [a]
state: {x: 0}
options:
  a:
    - {id: go, rung: 1, effects: {add: {x: "rung // peak_rung + step % 2"}},
       outcomes: [{id: up, p: 0.4, rung: 2}, {id: stay}]}
policies: {a: {kind: fixed, option: go}}
outcomes: {far: {when: "x > 3"}}
""")
    assert compiled.fallback_reason(model) is not None
    want = run_monte_carlo(model, 4_100, 9).to_dict()
    assert run_monte_carlo(model, 4_100, 9, backend="compiled").to_dict() == want


def test_run_time_error_message_identical():
    """A branch probability that leaves [0, 1] at run time: the same error on both backends."""
    model = build("""
horizon: 6
ladder: [low, mid, high]
actors: {a: {label: A}}
turn_order: [a]
state: {x: 0.5}
options:
  a:
    - id: go
      effects: {add: {x: "uniform(0, 0.3)"}}
      outcomes: [{id: up, p: "x", rung: 2}, {id: stay}]
policies: {a: {kind: fixed, option: go}}
""")
    with pytest.raises(SimulationError) as numpy_error:
        run_monte_carlo(model, 5_000, 1)
    with pytest.raises(SimulationError) as compiled_error:
        run_monte_carlo(model, 5_000, 1, backend="compiled")
    assert "outside [0, 1]" in str(numpy_error.value)
    assert str(compiled_error.value) == str(numpy_error.value)


def test_api_and_cli_without_numba(monkeypatch, capsys):
    """Without numba: the API raises ImportError with the pip line; the CLI says it in one line
    and exits with status 2."""
    import sim
    from sim.cli.main import main

    monkeypatch.setitem(sys.modules, "numba", None)  # `import numba` raises ImportError
    monkeypatch.setattr(compiled, "_KERNEL", [])
    with pytest.raises(ImportError, match=r"needs numba: pip install 'escalation-sim\[compiled\]'"):
        sim.run("chicken", runs=100, backend="compiled")
    for argv in (
        ["run", "chicken", "--runs", "100", "--no-charts", "--backend", "compiled"],
        ["compare", "chicken", "--actor", "us", "--no-charts", "--backend", "compiled"],
        ["sweep", "chicken", "--vary", "prize=0:1:2", "--backend", "compiled", "--no-charts"],
    ):
        capsys.readouterr()
        assert main(argv) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert err == [
            f"escalation {argv[0]}: error: needs numba: pip install 'escalation-sim[compiled]'"
        ]


def test_unknown_backend_is_a_value_error():
    import sim

    with pytest.raises(ValueError, match="backend must be one of numpy, compiled"):
        sim.run("chicken", runs=100, backend="fortran")


def test_api_compare_and_sweep_identical(tmp_path):
    import sim

    a = sim.compare("chicken", "us", runs=5_000, seed=3).to_json()
    b = sim.compare("chicken", "us", runs=5_000, seed=3, backend="compiled").to_json()
    assert a == b
    vary = {"prize": (0, 2, 3)}
    sa = sim.sweep("chicken", vary, runs=4_200, seed=2)
    sb = sim.sweep("chicken", vary, runs=4_200, seed=2, backend="compiled")
    assert np.array_equal(sa.table, sb.table)


def test_cli_json_identical(capsys):
    from sim.cli.main import main

    argv = ["run", "credibility", "--runs", "6000", "--seed", "4", "--json", "--quiet"]
    assert main(argv) == 0
    want = capsys.readouterr().out
    assert main([*argv, "--backend", "compiled"]) == 0
    assert capsys.readouterr().out == want


def test_worker_without_numba_is_a_cluster_error():
    """A pool or Dask worker that cannot import numba fails the command with a message."""
    from concurrent.futures import Future

    from sim.engine.executors import ClusterError, result

    future: Future = Future()
    future.set_exception(ImportError(compiled.NEEDS_NUMBA))
    with pytest.raises(ClusterError, match=r"cannot run --backend compiled: it needs numba"):
        result(future)


def test_numba_yardstick_plays_the_engines_game():
    """benchmarks/numba_yardstick.py (the limit the compiled backend is measured against)."""
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
    import numba_yardstick

    numba_yardstick.check_against_engine(runs=20_000, seed=5)


def test_precision_identical():
    """`--precision`: the same rounds, run count and figures on both backends."""
    from sim.engine.runner import run_to_precision

    model = bundled("proxy_control")
    a = run_to_precision(model, 0.01, 2, 4_096, cap=40_000)
    b = run_to_precision(model, 0.01, 2, 4_096, cap=40_000, backend="compiled")
    assert a.to_dict() == b.to_dict()
    assert a.precision == b.precision


def test_nan_condition_error_identical():
    """A `requires` that is NaN at run time: the numpy engine's message, from either backend."""
    model = build("""
horizon: 5
ladder: [low, mid, high]
actors: {a: {label: A}}
turn_order: [a]
state: {x: 1}
options:
  a:
    - {id: go, requires: "log(x) + 1", effects: {add: {x: "-uniform(0, 0.8)"}}}
    - {id: stay}
policies: {a: {kind: fixed, option: go}}
""")
    with pytest.raises(SimulationError) as numpy_error:
        run_monte_carlo(model, 4_096, 3)
    with pytest.raises(SimulationError) as compiled_error:
        run_monte_carlo(model, 4_096, 3, backend="compiled")
    assert "condition evaluated to nan" in str(numpy_error.value)
    assert str(compiled_error.value) == str(numpy_error.value)


SPECIAL = np.array([0.0, -0.0, 1.0, -1.0, 2.5, -7.25, 3.0, np.nan, np.inf, -np.inf, 1e-310, 1e308])


def _bits(x: np.ndarray) -> np.ndarray:
    """Bits of each value, every NaN alike (a NaN's payload never reaches a result)."""
    x = np.asarray(x, dtype=float)
    return np.where(np.isnan(x), 0, x.view(np.uint64))


def test_numpy_rules_on_special_values():
    """The kernel's //, %, min, max, clip and power agree with numpy's loops bit for bit on signed
    zeros, infinities and NaN (clip and power as numpy computes them for scalar operands)."""
    k = compiled.kernel()
    a, b = np.repeat(SPECIAL, SPECIAL.size), np.tile(SPECIAL, SPECIAL.size)
    with np.errstate(all="ignore"):
        pairs = [
            (np.floor_divide, k.np_floor_divide),
            (np.remainder, k.np_remainder),
            (np.minimum, k.np_minimum),
            (np.maximum, k.np_maximum),
        ]
        for ufunc, mine in pairs:
            got = np.array([mine(x, y) for x, y in zip(a, b, strict=True)])
            assert np.array_equal(_bits(got), _bits(ufunc(a, b))), ufunc.__name__
        for x in SPECIAL:
            want = np.clip(np.full(a.size, x), a, b)
            got = np.array([k.np_clip(x, lo, hi) for lo, hi in zip(a, b, strict=True)])
            assert np.array_equal(_bits(got), _bits(want)), ("clip", x)
        for lo, hi in zip(a, b, strict=True):
            want = np.clip(SPECIAL, lo, hi)
            got = np.array([k.np_clip_scalar(x, lo, hi) for x in SPECIAL])
            assert np.array_equal(_bits(got), _bits(want)), ("clip with scalar bounds", lo, hi)
        for e in (2.0, 0.5, -1.0, 3.0, 0.0, 1.0, -2.0, 1.5):
            want = np.power(np.abs(SPECIAL), e)
            got = np.array([k.scalar_power(x, e) for x in np.abs(SPECIAL)])
            assert np.array_equal(_bits(got), _bits(want)), ("power", e)

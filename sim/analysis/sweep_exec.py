"""Computing a sweep's points: one point's metrics, worker tasks, and the executors to run them."""

from __future__ import annotations

import os
from collections.abc import Iterator
from concurrent.futures import Executor, as_completed
from contextlib import contextmanager
from functools import lru_cache

from sim.analysis.sweep_design import SweepSpec
from sim.engine import executors
from sim.engine.executors import DEFAULT_CLUSTER_TIMEOUT, ExecutorSpec
from sim.engine.runner import run_monte_carlo
from sim.errors import ScenarioError, SimulationError
from sim.format.scenario import Scenario
from sim.model.compiled import Model
from sim.solvers.prepare import prepare_model

MAX_CHUNK = 16

Rows = list[tuple[int, list[float]]]
"""(point index, metrics) pairs, as workers return them and the journal records them."""


# --- one point's numbers ------------------------------------------------------------------------


def metric_columns(model: Model) -> list[str]:
    """Columns of points.csv after the parameters: per outcome p and interval, payoffs, etc."""
    cols = []
    for o in model.outcome_ids:
        cols += [f"p_{o}", f"p_{o}_lo", f"p_{o}_hi"]
    cols += [f"payoff_{a}" for a in model.actors]
    return cols + ["steps_mean", "peak_rung_mean"]


def point_metrics(
    model: Model, runs: int, seed: int, index: int, backend: str = "numpy"
) -> list[float]:
    """The numbers of one point, from its own random streams (seed, index)."""
    results = run_monte_carlo(model, runs, seed, workers=1, stream=(index,), backend=backend)
    lo, hi = results.intervals()
    values: list[float] = []
    for i in range(len(model.outcome_ids)):
        values += [results.probabilities[i], lo[i], hi[i]]
    values += list(results.payoff_mean)
    values += [results.steps_summary()["mean"], results.peak_mean()]
    return [float(v) for v in values]


@lru_cache(maxsize=4)
def _scenario(text: str, file: str) -> Scenario:
    from sim.model.loading import load_text

    return load_text(text, file)


def evaluate_chunk(
    text: str,
    file: str,
    fixed: tuple[tuple[str, float], ...],
    names: tuple[str, ...],
    runs: int,
    seed: int,
    items: tuple[tuple[int, tuple[float, ...]], ...],
    backend: str = "numpy",
) -> Rows:
    """Worker task: the metrics of some points (picklable arguments; the scenario is cached)."""
    executors.tune_worker_memory()
    scenario = _scenario(text, file)
    out = []
    for index, values in items:
        overrides = {**dict(fixed), **dict(zip(names, values, strict=True))}
        try:
            model = prepare_model(scenario, overrides)
            out.append((index, point_metrics(model, runs, seed, index, backend)))
        except (ScenarioError, SimulationError, ValueError) as exc:
            where = ", ".join(f"{k}={v:g}" for k, v in zip(names, values, strict=True))
            raise SimulationError(f"point {index} ({where}): {exc}") from None
    return out


# --- executors ----------------------------------------------------------------------------------


@contextmanager
def open_executor(
    workers: int,
    kind: str = "process",
    scheduler: str | None = None,
    scheduler_file: str | None = None,
    timeout: float = DEFAULT_CLUSTER_TIMEOUT,
) -> Iterator[Executor | None]:
    """None (in-process) for one local worker, a spawn process pool, or a Dask executor: the
    executor every heavy command shares (sim.engine.executors), opened from its arguments."""
    spec = ExecutorSpec(kind, workers, scheduler, scheduler_file, timeout)
    with executors.open_executor(spec) as executor:
        yield executor


def default_workers() -> int:
    """The number of cores this process may use."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


# --- running the pending points -----------------------------------------------------------------


def _chunks(pending: list[int], workers: int) -> list[list[int]]:
    """Guided chunks: big while much is left (little overhead), shrinking to single points at the
    end (so no worker idles while another finishes a long chunk)."""
    out, k = [], 0
    while k < len(pending):
        size = max(1, min(MAX_CHUNK, (len(pending) - k) // (4 * max(workers, 1))))
        out.append(pending[k : k + size])
        k += size
    return out


def execute_points(
    spec: SweepSpec,
    pending: list[int],
    executor: Executor | None,
    workers: int,
    backend: str = "numpy",
) -> Iterator[Rows]:
    """Metrics of the pending points, chunk by chunk, in completion order."""
    points = spec.design.points
    chunks = [tuple((i, points[i]) for i in part) for part in _chunks(pending, workers)]
    names = spec.design.names
    args = (spec.text, spec.file, spec.fixed, names, spec.runs, spec.seed)
    if executor is None:
        for chunk in chunks:
            yield evaluate_chunk(*args, chunk, backend)
        return
    futures = [executor.submit(evaluate_chunk, *args, chunk, backend) for chunk in chunks]
    try:
        for future in as_completed(futures):
            yield executors.result(future)
    finally:
        for future in futures:
            future.cancel()

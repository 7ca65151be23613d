"""Computing a sweep's points: one point's metrics, worker tasks, and the executors to run them."""

from __future__ import annotations

import multiprocessing
import os
import signal
from collections.abc import Iterator
from concurrent.futures import Executor, ProcessPoolExecutor, as_completed
from contextlib import contextmanager
from functools import lru_cache

from sim.analysis.sweep_design import SweepError, SweepSpec
from sim.engine.runner import run_monte_carlo
from sim.engine.workers import spawn_context
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


def point_metrics(model: Model, runs: int, seed: int, index: int) -> list[float]:
    """The numbers of one point, from its own random streams (seed, index)."""
    results = run_monte_carlo(model, runs, seed, workers=1, stream=(index,))
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
) -> Rows:
    """Worker task: the metrics of some points (picklable arguments; the scenario is cached)."""
    scenario = _scenario(text, file)
    out = []
    for index, values in items:
        overrides = {**dict(fixed), **dict(zip(names, values, strict=True))}
        try:
            model = prepare_model(scenario, overrides)
            out.append((index, point_metrics(model, runs, seed, index)))
        except (ScenarioError, SimulationError, ValueError) as exc:
            where = ", ".join(f"{k}={v:g}" for k, v in zip(names, values, strict=True))
            raise SimulationError(f"point {index} ({where}): {exc}") from None
    return out


# --- executors ----------------------------------------------------------------------------------


def _init_worker() -> None:
    """Pool workers leave Ctrl-C to the parent, and exit when the parent dies (even by kill -9)."""
    import threading
    from multiprocessing.connection import wait

    signal.signal(signal.SIGINT, signal.SIG_IGN)
    parent = multiprocessing.parent_process()
    if parent is not None:

        def watch() -> None:
            wait([parent.sentinel])
            os._exit(1)

        threading.Thread(target=watch, daemon=True).start()


@contextmanager
def open_executor(
    workers: int, kind: str = "process", scheduler: str | None = None
) -> Iterator[Executor | None]:
    """None (in-process) for one local worker, a spawn process pool, or a Dask executor."""
    if scheduler or kind == "dask":
        with _dask_executor(workers, scheduler) as executor:
            yield executor
    elif workers <= 1:
        yield None
    else:
        pool = ProcessPoolExecutor(workers, mp_context=spawn_context(), initializer=_init_worker)
        try:
            yield pool
        finally:
            pool.shutdown(wait=True, cancel_futures=True)


@contextmanager
def _dask_executor(workers: int, scheduler: str | None) -> Iterator[Executor]:
    """An executor on the Dask cluster at `scheduler`, or on a new LocalCluster of `workers`."""
    try:
        from dask.distributed import Client, LocalCluster
    except ImportError:
        raise SweepError(
            "the Dask executor needs dask: pip install 'escalation-sim[dask]'"
        ) from None
    cluster = None
    try:
        if scheduler:
            client = Client(scheduler, timeout="10s")
        else:
            import logging

            cluster = LocalCluster(
                n_workers=workers,
                threads_per_worker=1,
                processes=True,
                dashboard_address=None,
                silence_logs=logging.ERROR,
            )
            client = Client(cluster)
    except (OSError, TimeoutError) as exc:
        raise SweepError(f"cannot reach the Dask scheduler {scheduler}: {exc}") from None
    try:
        yield client.get_executor()
    finally:
        client.close()
        if cluster is not None:
            cluster.close()


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
    spec: SweepSpec, pending: list[int], executor: Executor | None, workers: int
) -> Iterator[Rows]:
    """Metrics of the pending points, chunk by chunk, in completion order."""
    points = spec.design.points
    chunks = [tuple((i, points[i]) for i in part) for part in _chunks(pending, workers)]
    names = spec.design.names
    args = (spec.text, spec.file, spec.fixed, names, spec.runs, spec.seed)
    if executor is None:
        for chunk in chunks:
            yield evaluate_chunk(*args, chunk)
        return
    futures = [executor.submit(evaluate_chunk, *args, chunk) for chunk in chunks]
    try:
        for future in as_completed(futures):
            yield future.result()
    finally:
        for future in futures:
            future.cancel()

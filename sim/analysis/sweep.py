"""Parameter sweeps: the entry point that runs a design, journals its points and writes outputs.

Point i is simulated with the stream key (i,), so its numbers depend on (seed, point index) alone,
never on workers, chunking or resumption. Finished points are committed to a SQLite journal
before they are reported done; the outputs are written from the journal, atomically, at the end.

The parts live beside this module, each with one job: `sweep_design` (what is varied, the design
points, the spec), `sweep_exec` (one point's metrics, worker tasks, executors), `sweep_journal`
(the crash-safe journal) and `sweep_output` (the result table and its files). Their public names
are importable from here.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import Executor
from pathlib import Path

import numpy as np

from sim import __version__
from sim.analysis.sweep_design import (
    DEFAULT_SAMPLES,
    MAX_POINTS,
    METHODS,
    Design,
    SweepError,
    SweepSpec,
    Vary,
    check_varies,
    make_design,
)
from sim.analysis.sweep_exec import (
    MAX_CHUNK,
    default_workers,
    evaluate_chunk,
    execute_points,
    metric_columns,
    open_executor,
    point_metrics,
)
from sim.analysis.sweep_journal import JOURNAL, Journal, JournalDamaged, open_journal
from sim.analysis.sweep_output import (
    SOBOL_RESAMPLES,
    STALE,
    SweepResult,
    points_csv,
    remove_stale,
    sobol_indices,
    write_outputs,
)
from sim.engine.runner import MEMORY_LIMIT, check_runs
from sim.model.compiled import Model
from sim.model.loading import load_text
from sim.solvers.prepare import prepare_model

__all__ = [
    "DEFAULT_SAMPLES",
    "JOURNAL",
    "MAX_CHUNK",
    "MAX_POINTS",
    "METHODS",
    "SOBOL_RESAMPLES",
    "STALE",
    "Design",
    "Journal",
    "JournalDamaged",
    "Progress",
    "SweepError",
    "SweepResult",
    "SweepSpec",
    "Vary",
    "check_varies",
    "default_workers",
    "evaluate_chunk",
    "make_design",
    "metric_columns",
    "open_executor",
    "open_journal",
    "point_metrics",
    "points_csv",
    "run_sweep",
    "sobol_indices",
    "write_outputs",
]

Progress = Callable[[int], None]
"""Called with the number of points just recorded."""


def run_sweep(
    spec: SweepSpec,
    out_dir: Path,
    executor: Executor | None = None,
    workers: int = 1,
    resume: bool = False,
    progress: Progress | None = None,
    command: str = "",
    notify: Callable[[str], None] | None = None,
    restart: bool = False,
    backend: str = "numpy",
) -> SweepResult:
    """Run (or finish) a sweep into `out_dir`: journal, points.csv, sweep.json, Sobol indices.

    `resume` finishes the sweep journalled in `out_dir`; `restart` discards that journal (even a
    damaged one) and starts again. A damaged journal is otherwise refused (SweepError).
    `backend` ("numpy" or "compiled") computes the points: identical numbers either way."""
    start = time.perf_counter()
    model = prepare_model(load_text(spec.text, spec.file), dict(spec.fixed))
    design = spec.design
    check_runs(model, spec.runs)
    check_sweep_memory(model, design)
    clash = sorted(set(design.names) & set(metric_columns(model)))
    if clash:
        raise SweepError(f"parameter {clash[0]} has the name of a points.csv column; rename it")
    out_dir.mkdir(parents=True, exist_ok=True)
    journal, note = open_journal(out_dir / JOURNAL, _header(spec, model), resume, restart)
    if note and notify:
        notify(note)
    try:
        done = journal.rows()
        if not done:
            remove_stale(out_dir)
        pending = [i for i in range(len(design.points)) if i not in done]
        if progress and done:
            progress(len(done))
        for rows in execute_points(spec, pending, executor, workers, backend):
            journal.record(rows)
            if progress:
                progress(len(rows))
        rows = journal.rows()
    finally:
        journal.close()
    result = SweepResult(
        spec=spec,
        model=model,
        columns=[*design.names, *metric_columns(model)],
        table=_table(design, rows),
        computed=len(pending),
        seconds=time.perf_counter() - start,
        workers=workers,
    )
    if design.method == "sobol":
        result.sobol = sobol_indices(result)
    result.files = write_outputs(result, out_dir, command)
    return result


def _header(spec: SweepSpec, model: Model) -> dict[str, str]:
    """The journal header: everything a resumed sweep must share with the one it finishes."""
    return {
        "scenario_sha256": model.sha256,
        "seed": str(spec.seed),
        "runs": str(spec.runs),
        "method": spec.design.method,
        "design_sha256": spec.design_sha256(),
        "version": __version__,
        "points": str(len(spec.design.points)),
        "columns": str(len(metric_columns(model))),
    }


BYTES_PER_NUMBER = 100
"""What a sweep holds in memory per number of points.csv, measured with margin: the design's
point, the journal's rows as text and as Python floats, the table, the CSV being written."""


def check_sweep_memory(model: Model, design: Design) -> None:
    """Refuse a design whose points and metrics would need more than the memory limit (the
    same 2 GiB as for runs), before any point is computed."""
    numbers = len(design.points) * (len(design.names) + len(metric_columns(model)))
    need = numbers * BYTES_PER_NUMBER
    if need > MEMORY_LIMIT:
        most = MEMORY_LIMIT // (BYTES_PER_NUMBER * (len(design.names) + len(metric_columns(model))))
        raise SweepError(
            f"the sweep has {len(design.points):,} points of {len(metric_columns(model))} "
            f"metrics each, about {need / (1 << 30):,.1f} GiB in memory, more than the limit "
            f"of {MEMORY_LIMIT / (1 << 30):,.0f} GiB: use at most {most:,} points"
        )


def _table(design: Design, rows: dict[int, list[float]]) -> np.ndarray:
    """Parameters, then metrics: one row per point, in point order."""
    n = len(design.points)
    params = np.array(design.points, dtype=float).reshape(n, len(design.names))
    metrics = np.array([rows[i] for i in range(n)], dtype=float)
    return np.hstack([params, metrics.reshape(n, -1)])

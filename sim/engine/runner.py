"""Runs a Monte Carlo experiment as batches of whole blocks, serially or on an executor."""

from __future__ import annotations

import dataclasses
import math
import pickle
import re
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING

import numpy as np

from sim.engine.batch import BatchOutput, simulate_batch
from sim.engine.executors import result, slots, tune_worker_memory
from sim.engine.streams import BLOCK_SIZE, block_count
from sim.errors import SimulationError
from sim.format.digest import canonical_json, file_source
from sim.model.compiled import CompiledPolicy, Model
from sim.model.compiler import compile_model
from sim.results import (
    KEEP_FINAL_RUNS,
    Z95,
    Aggregate,
    BlockSummary,
    Results,
    StateStream,
    summarise_batch,
)

if TYPE_CHECKING:  # a process pool is imported only where one is made (`process_pool`)
    from concurrent.futures import Executor, ProcessPoolExecutor

DEFAULT_BATCH_BLOCKS = 16
PRECISION_CAP = 4_000_000
"""Most runs `--precision` will add before it stops and says the target was not reached."""
MAX_RUNS = 100_000_000
"""Most runs of one experiment (docs/scenario-format.md, Limits)."""
MEMORY_LIMIT = 2 << 30
"""Most bytes an experiment that keeps a record of every run (`run_with_records`: compare, the
debrief of a game) sets aside for them (2 GiB): checked before anything is allocated, so a huge
run count is refused with a message, not a MemoryError. Plain Monte Carlo keeps no per-run
record (its memory does not grow with the number of runs), so only MAX_RUNS bounds it."""

Progress = Callable[[int], None]
"""Called with the number of runs just finished."""


@dataclass(frozen=True)
class ModelSpec:
    """A picklable recipe for a compiled model, so worker processes can rebuild it.

    It carries the validated scenario itself (its canonical JSON), never the file's text: a
    scenario changed in Python after loading runs as changed on every worker. `source` is the
    pickled source map when the content is still exactly the file's, so that workers place
    run-time errors at file:line:col and hash the scenario as the parent does.
    """

    scenario_json: str
    source: bytes | None
    overrides: tuple[tuple[str, float], ...]
    policies: tuple[tuple[str, str], ...] = ()
    forced_first: tuple[tuple[int, int], ...] = ()

    @classmethod
    def of(cls, model: Model) -> ModelSpec:
        scenario_json = canonical_json(model.scenario)
        source = file_source(model.scenario, scenario_json)
        return cls(
            scenario_json,
            None if source is None else pickle.dumps(source, protocol=pickle.HIGHEST_PROTOCOL),
            tuple(sorted(model.parameters.items())),
            model.policy_overrides,
            tuple(sorted(model.forced_first.items())),
        )


@lru_cache(maxsize=8)
def _model_from_spec(spec: ModelSpec) -> Model:
    from pydantic import TypeAdapter

    from sim.format.scenario import Policy, Scenario

    source = None if spec.source is None else pickle.loads(spec.source)
    scenario = Scenario.model_validate_json(spec.scenario_json, context={"source": source})
    adapter = TypeAdapter(Policy)
    policies = {actor: adapter.validate_json(text) for actor, text in spec.policies}
    model = compile_model(scenario, dict(spec.overrides), policies or None)
    if spec.forced_first:
        model = dataclasses.replace(model, forced_first=dict(spec.forced_first))
    return model


def solved_policies(model: Model) -> tuple[tuple[int, CompiledPolicy], ...]:
    """The policies a solver filled in (lookups), to hand to workers with the spec."""
    return tuple((i, p) for i, p in enumerate(model.policies) if p is not None and p.lookup)


def with_solved(model: Model, solved: tuple[tuple[int, CompiledPolicy], ...]) -> Model:
    """`model` with the solved policies put back in place."""
    if not solved:
        return model
    policies = list(model.policies)
    for i, policy in solved:
        policies[i] = policy
    return dataclasses.replace(model, policies=tuple(policies))


def _simulate(
    model: Model,
    seed: int,
    first: int,
    count: int,
    runs: int,
    stream: tuple[int, ...] = (),
    backend: str = "numpy",
) -> BatchOutput:
    """One batch on the chosen backend (the same numbers on both: DESIGN.md section 8.5)."""
    if backend == "compiled":
        from sim.engine.compiled import simulate_batch_compiled

        return simulate_batch_compiled(model, seed, first, count, runs, stream)
    return simulate_batch(model, seed, first, count, runs, stream=stream, record_moves=False)


def _batch_task(
    spec: ModelSpec,
    solved,
    seed: int,
    first: int,
    count: int,
    runs: int,
    stream=(),
    backend: str = "numpy",
):
    tune_worker_memory()
    model = with_solved(_model_from_spec(spec), solved)
    out = _simulate(model, seed, first, count, runs, stream, backend)
    return summarise_batch(model, out)


def _records_task(
    spec: ModelSpec,
    solved,
    seed: int,
    first: int,
    count: int,
    runs: int,
    backend: str = "numpy",
):
    """A batch's summaries and the per-run records a comparison pairs (outcome, steps, payoffs)."""
    tune_worker_memory()
    model = with_solved(_model_from_spec(spec), solved)
    out = _simulate(model, seed, first, count, runs, (), backend)
    kept = _Kept(out.records.outcome, out.records.steps, out.records.payoffs)
    return summarise_batch(model, out), kept


@dataclass
class _Kept:
    """The per-run records a worker sends back for `run_with_records`."""

    outcome: np.ndarray
    steps: np.ndarray
    payoffs: np.ndarray


def _batches(first_block: int, last_block: int, per_batch: int) -> list[tuple[int, int]]:
    return [(b, min(per_batch, last_block - b)) for b in range(first_block, last_block, per_batch)]


def simulate_blocks(
    model: Model,
    runs: int,
    seed: int,
    blocks: range,
    batch_blocks: int = DEFAULT_BATCH_BLOCKS,
    executor: Executor | None = None,
    progress: Progress | None = None,
    stream: tuple[int, ...] = (),
    records: list | None = None,
    sink: Callable[[BlockSummary], None] | None = None,
    backend: str = "numpy",
) -> list[BlockSummary]:
    """Summaries of the given blocks of a `runs`-run experiment, in block order.

    With `sink`, each summary is handed to it (in block order) as soon as it is done and none is
    kept (the list returned is empty): memory does not grow with the number of blocks. With
    `records`, each batch's per-run records (outcome, steps, payoffs) are appended to it, in
    block order. On an executor, batches are made small enough that every worker gets some
    (results do not depend on the batch size). `backend` "compiled" steps each batch with the
    compiled kernel (sim/engine/compiled.py), on every worker too: the same numbers.
    """
    per_batch = max(1, batch_blocks)
    if executor is not None:
        share = math.ceil(len(blocks) / (2 * slots(executor)))
        per_batch = max(1, min(per_batch, share))
    plan = _batches(blocks.start, blocks.stop, per_batch)
    summaries: list[BlockSummary] = []

    def keep(part: list[BlockSummary]) -> None:
        for summary in part:
            if sink is not None:
                sink(summary)
            else:
                summaries.append(summary)
        if progress:
            progress(sum(s.runs for s in part))

    if executor is None:
        for first, count in plan:
            out = _simulate(model, seed, first, count, runs, stream, backend)
            keep(summarise_batch(model, out))
            if records is not None:
                records.append(out.records)
        return summaries
    spec = ModelSpec.of(model)
    solved = solved_policies(model)
    # a bounded window of batches in flight: finished ones are taken in order and let go, so
    # results waiting to be taken in do not pile up either
    window = 2 * slots(executor) + 2
    pending: deque = deque()

    def take() -> None:
        done = result(pending.popleft())
        if records is None:
            keep(done)
        else:
            keep(done[0])
            records.append(done[1])

    try:
        for first, count in plan:
            if records is None:
                args = (_batch_task, spec, solved, seed, first, count, runs, stream, backend)
            elif stream:
                raise ValueError("per-run records are kept only for the main stream")
            else:
                args = (_records_task, spec, solved, seed, first, count, runs, backend)
            pending.append(executor.submit(*args))
            if len(pending) >= window:
                take()
        while pending:
            take()
    finally:
        for future in pending:
            future.cancel()
    return summaries


@dataclass
class RunTable:
    """Per-run records kept beside the aggregates (in run order)."""

    outcome: np.ndarray
    """Index into model.outcome_ids."""
    steps: np.ndarray
    payoffs: np.ndarray
    """(actors, runs): each run's discounted payoff sums."""


def run_with_records(
    model: Model,
    runs: int,
    seed: int,
    batch_blocks: int = DEFAULT_BATCH_BLOCKS,
    executor: Executor | None = None,
    backend: str = "numpy",
) -> tuple[Results, RunTable]:
    """`run_monte_carlo(model, runs, seed)` (the same runs and numbers), keeping each run's
    outcome, steps and payoffs: for paired comparisons and the debrief of a game. On
    `executor` (sim.engine.executors), the blocks run there and come back in order."""
    # kept per run: the final state twice over (the batches' records, their block summaries),
    # the payoffs twice, outcome, steps and rungs
    per_run = 16 * len(model.state_names) + 16 * len(model.actors) + 16
    check_runs(model, runs, per_run, "keep each run's outcome, steps, payoffs and final state")
    check_backend(backend)
    records: list = []
    blocks = range(block_count(runs))
    pool = executor if len(blocks) > 1 else None
    summaries = simulate_blocks(
        model, runs, seed, blocks, batch_blocks, pool, records=records, backend=backend
    )
    table = RunTable(
        np.concatenate([r.outcome for r in records]),
        np.concatenate([r.steps for r in records]),
        np.concatenate([r.payoffs for r in records], axis=1),
    )
    return Results.from_blocks(model, seed, summaries), table


def process_pool(workers: int) -> ProcessPoolExecutor:
    """A spawn-based process pool (safe from Jupyter and on every OS; see sim.engine.workers)."""
    from concurrent.futures import ProcessPoolExecutor

    from sim.engine.workers import spawn_context

    return ProcessPoolExecutor(max_workers=workers, mp_context=spawn_context())


def run_monte_carlo(
    model: Model,
    runs: int,
    seed: int,
    workers: int = 1,
    batch_blocks: int = DEFAULT_BATCH_BLOCKS,
    progress: Progress | None = None,
    stream: tuple[int, ...] = (),
    executor: Executor | None = None,
    backend: str = "numpy",
) -> Results:
    """Simulate `runs` runs; identical results for any `workers`, `batch_blocks`, executor and
    backend ("numpy" or "compiled": sim/engine/compiled.py).

    With `executor` (sim.engine.executors.open_executor: a process pool or a Dask cluster), the
    blocks run there and `workers` is not used; otherwise `workers` > 1 starts a process pool.

    Memory does not grow with `runs`: each block is folded into fixed-size totals as it is done
    (sim/results.py `Aggregate`, `StateStream`); final states are kept only up to
    KEEP_FINAL_RUNS runs."""
    check_runs(model, runs)
    check_backend(backend)
    if block_count(runs) <= 1:
        return _simulate_all(model, runs, seed, batch_blocks, None, progress, stream, backend)
    if executor is not None:
        return _simulate_all(model, runs, seed, batch_blocks, executor, progress, stream, backend)
    pool = process_pool(workers) if workers > 1 else None
    try:
        return _simulate_all(model, runs, seed, batch_blocks, pool, progress, stream, backend)
    finally:
        if pool is not None:
            pool.shutdown()


def _simulate_all(
    model: Model,
    runs: int,
    seed: int,
    batch_blocks: int,
    pool: Executor | None,
    progress: Progress | None,
    stream: tuple[int, ...] = (),
    backend: str = "numpy",
) -> Results:
    total = Aggregate(model, runs)
    blocks = range(block_count(runs))
    simulate_blocks(
        model,
        runs,
        seed,
        blocks,
        batch_blocks,
        pool,
        progress,
        stream,
        sink=total.add,
        backend=backend,
    )
    return total.results(seed)


def run_to_precision(
    model: Model,
    half_width: float,
    seed: int,
    start_runs: int,
    cap: int = PRECISION_CAP,
    workers: int = 1,
    batch_blocks: int = DEFAULT_BATCH_BLOCKS,
    progress: Progress | None = None,
    executor: Executor | None = None,
    backend: str = "numpy",
) -> Results:
    """Add whole blocks until every outcome's 95% half-width is at most `half_width`, or the cap.

    Run counts are whole blocks, so the result equals `run_monte_carlo` with the final count.
    The state figures need the final count in advance (the mean is numpy's pairwise sum): the
    final states are kept up to KEEP_FINAL_RUNS runs and summarised at the end; beyond that the
    runs are simulated a second time (the same runs: random numbers are addressed by run).
    """
    check_runs(model, max(1, cap // BLOCK_SIZE) * BLOCK_SIZE)
    check_backend(backend)
    cap_blocks = max(1, cap // BLOCK_SIZE)
    done = min(cap_blocks, max(1, block_count(start_runs)))
    total = Aggregate(model, None)
    own = executor is None and workers > 1
    pool = process_pool(workers) if own else executor
    try:
        start = 0
        while True:
            runs = done * BLOCK_SIZE
            simulate_blocks(
                model,
                runs,
                seed,
                range(start, done),
                batch_blocks,
                pool,
                progress,
                sink=total.add,
                backend=backend,
            )
            results = total.results(seed)
            widest = float(results.half_widths().max())
            if widest <= half_width or done >= cap_blocks:
                break
            start = done
            done = min(cap_blocks, max(done * 2, _blocks_needed(results, half_width)))
        kept = total.final_states()
        if kept is not None:
            results.state_stream = StateStream(model, results.runs)
            results.state_stream.add(kept)
            results.final_state = kept if results.runs <= KEEP_FINAL_RUNS else None
        else:
            results = _simulate_all(
                model, results.runs, seed, batch_blocks, pool, None, backend=backend
            )
        results.precision = {
            "target": half_width,
            "reached": widest <= half_width,
            "widest_half_width": widest,
            "cap": cap_blocks * BLOCK_SIZE,
        }
        return results
    finally:
        if own and pool is not None:
            pool.shutdown()


def check_backend(backend: str) -> None:
    """ValueError for an unknown backend, ImportError (with the pip line) without numba."""
    if backend == "numpy":  # the default: sim.engine.compiled is not imported for it
        return
    from sim.engine.compiled import check_backend as check

    check(backend)


def check_runs(model: Model, runs: int, per_run: int | None = None, why: str = "") -> None:
    """Refuse (SimulationError: exit status 2) an experiment beyond MAX_RUNS, or one that keeps
    per-run records (`per_run` bytes a run) needing more than MEMORY_LIMIT, before anything is
    allocated. Without `per_run` (plain Monte Carlo, whose memory does not grow with the number
    of runs), only MAX_RUNS applies."""
    if runs > MAX_RUNS:
        raise SimulationError(
            f"{runs:,} runs are more than the limit of {MAX_RUNS:,} runs of one experiment"
        )
    if per_run is None:
        return
    need = per_run * runs
    if need > MEMORY_LIMIT:
        most = MEMORY_LIMIT // max(per_run, 1)
        raise SimulationError(
            f"{runs:,} runs need {_gib(need)} to {why}, more than the memory limit of "
            f"{_gib(MEMORY_LIMIT)}: use at most {most:,} runs for this scenario"
        )


def _gib(size: int) -> str:
    return f"{size / (1 << 30):,.1f} GiB"


def _blocks_needed(results: Results, half_width: float) -> int:
    p = results.probabilities
    worst = float(max(p * (1 - p))) if p.size else 0.25
    worst = max(worst, 1.0 / max(results.runs, 1))
    needed = math.ceil(Z95 * Z95 * worst / (half_width * half_width) * 1.1)
    return block_count(needed)


_NUMBER = re.compile(r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
MAX_NUMBER_DIGITS = 300
"""Most digits a number typed on the command line may have (as for scenario files)."""


def parse_number(text: str, what: str) -> float:
    """A decimal number as typed: ASCII digits, an optional sign, point and exponent only.

    Python's float() also reads '0_5' (as 5), full-width or Arabic-Indic digits, 'nan' and
    'infinity': none of them is what a person typing a parameter value means."""
    stripped = text.strip()
    shown = stripped if len(stripped) <= 40 else stripped[:40] + "..."
    if sum(c.isdigit() for c in stripped) > MAX_NUMBER_DIGITS:
        raise ValueError(f"{what}: '{shown}' has more than {MAX_NUMBER_DIGITS} digits")
    if not _NUMBER.fullmatch(stripped):
        raise ValueError(
            f"{what}: '{shown}' is not a number (write ASCII digits, an optional '.' and "
            "exponent, e.g. 0.5 or 2e-3)"
        )
    return float(stripped)


def parse_overrides(items: list[str] | None) -> Mapping[str, float]:
    """`NAME=VALUE` strings from --set as a mapping; raises ValueError with a clear message."""
    values: dict[str, float] = {}
    for item in items or []:
        name, sep, text = item.partition("=")
        if not sep or not name.strip():
            raise ValueError(f"--set expects NAME=VALUE, got '{item}'")
        value = parse_number(text, f"--set {name}")
        if not math.isfinite(value):
            raise ValueError(f"--set {name}: value must be finite")
        values[name.strip()] = value
    return values

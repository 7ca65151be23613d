"""Parameter sweeps: designs (grid, Latin hypercube, Sobol), parallel execution, a crash-safe
journal, and the tidy table of results.

Point i is simulated with the stream key (i,), so its numbers depend on (seed, point index) alone,
never on workers, chunking or resumption. Finished points are committed to a SQLite journal
before they are reported done; the outputs are written from the journal, atomically, at the end.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import math
import multiprocessing
import os
import signal
import sqlite3
import tempfile
import warnings
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Executor, ProcessPoolExecutor, as_completed
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from sim import __version__
from sim.errors import ScenarioError, SimulationError, did_you_mean
from sim.model import Model, compile_model
from sim.runner import run_monte_carlo
from sim.scenario import Scenario

METHODS = ("grid", "lhs", "sobol")
DEFAULT_SAMPLES = 64
MAX_POINTS = 1_000_000
MAX_CHUNK = 16
JOURNAL = "sweep-journal.sqlite"
SOBOL_RESAMPLES = 1000

Progress = Callable[[int], None]
"""Called with the number of points just recorded."""


class SweepError(ValueError):
    """A sweep that cannot run as asked (a journal mismatch, a missing executor): exit status 2."""


# --- what is varied -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Vary:
    """One `--vary NAME=LO:HI[:N]` (N is the number of grid levels; lhs and sobol ignore it)."""

    name: str
    lo: float
    hi: float
    n: int | None = None

    @classmethod
    def parse(cls, text: str) -> Vary:
        name, sep, rest = text.partition("=")
        name, parts = name.strip(), rest.split(":")
        if not sep or not name or len(parts) not in (2, 3):
            raise ValueError(f"--vary expects NAME=LO:HI:N, got '{text}'")
        try:
            lo, hi = float(parts[0]), float(parts[1])
        except ValueError:
            raise ValueError(f"--vary {name}: LO and HI must be numbers, got '{rest}'") from None
        if not (math.isfinite(lo) and math.isfinite(hi)):
            raise ValueError(f"--vary {name}: LO and HI must be finite")
        if lo > hi:
            raise ValueError(f"--vary {name}: LO ({lo:g}) is above HI ({hi:g})")
        n = None
        if len(parts) == 3:
            try:
                n = int(parts[2])
            except ValueError:
                raise ValueError(
                    f"--vary {name}: N must be a whole number, got '{parts[2]}'"
                ) from None
            if n < 1:
                raise ValueError(f"--vary {name}: N must be at least 1, got {n}")
            if (n == 1) != (lo == hi):
                raise ValueError(f"--vary {name}: use N=1 exactly when LO equals HI")
        return cls(name, lo, hi, n)

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "lo": self.lo, "hi": self.hi, "n": self.n}


def check_varies(
    scenario: Scenario, varies: Sequence[Vary], method: str, fixed: dict[str, float]
) -> None:
    """Raise ValueError (one line) unless every varied name is a parameter, within its range."""
    problems, seen = [], set()
    for v in varies:
        param = scenario.parameters.get(v.name)
        if param is None:
            hint = did_you_mean(v.name, scenario.parameters)
            problems.append(f"--vary: unknown parameter '{v.name}'{hint}")
            continue
        if v.name in seen:
            problems.append(f"--vary {v.name}: given twice")
        if v.name in fixed:
            problems.append(f"{v.name}: given both to --vary and to --set")
        seen.add(v.name)
        if (param.min is not None and v.lo < param.min) or (
            param.max is not None and v.hi > param.max
        ):
            problems.append(
                f"--vary {v.name}={v.lo:g}:{v.hi:g} is outside the parameter's declared range "
                f"[{_bound(param.min)}, {_bound(param.max)}]"
            )
        if method == "grid" and v.n is None:
            problems.append(f"--vary {v.name}: a grid needs the number of levels, NAME=LO:HI:N")
        if method != "grid" and v.lo == v.hi:
            problems.append(f"--vary {v.name}: --method {method} needs LO below HI")
    if not varies:
        problems.append("give at least one --vary NAME=LO:HI:N")
    if problems:
        raise ValueError("; ".join(problems))


def _bound(value: float | None) -> str:
    return "unbounded" if value is None else f"{value:g}"


# --- the design ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Design:
    """The points of a sweep: one tuple of values per point, in `names` order."""

    method: str
    varies: tuple[Vary, ...]
    points: tuple[tuple[float, ...], ...]
    samples: int | None = None

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(v.name for v in self.varies)

    def to_json(self) -> dict[str, Any]:
        return {
            "method": self.method,
            "samples": self.samples,
            "vary": [v.to_json() for v in self.varies],
            "names": list(self.names),
            "points": [list(p) for p in self.points],
        }


def make_design(varies: Sequence[Vary], method: str, samples: int | None, seed: int) -> Design:
    """The full factorial grid, a scrambled Latin hypercube, or a Saltelli (Sobol) design."""
    varies = tuple(varies)
    if method == "grid":
        total = math.prod(v.n or 1 for v in varies)
        if total > MAX_POINTS:
            raise ValueError(f"the grid has {total:,} points, more than {MAX_POINTS:,}")
        levels = [_levels(v) for v in varies]
        return Design(method, varies, tuple(itertools.product(*levels)))
    varies = tuple(Vary(v.name, v.lo, v.hi) for v in varies)  # N means nothing here
    samples = samples or DEFAULT_SAMPLES
    lo = np.array([v.lo for v in varies])
    hi = np.array([v.hi for v in varies])
    if method == "lhs":
        from scipy.stats import qmc

        try:
            sampler = qmc.LatinHypercube(len(varies), scramble=True, rng=seed)
        except TypeError:  # scipy < 1.15 calls it `seed`
            sampler = qmc.LatinHypercube(len(varies), scramble=True, seed=seed)
        unit = sampler.random(samples)
        values = qmc.scale(unit, lo, hi)
    elif method == "sobol":
        if samples & (samples - 1):
            raise ValueError(f"--samples for sobol must be a power of 2 (e.g. 64), got {samples}")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            from SALib.sample import sobol as saltelli

            values = saltelli.sample(
                _problem(varies), samples, calc_second_order=False, scramble=True, seed=seed
            )
        if len(values) > MAX_POINTS:
            raise ValueError(f"the design has {len(values):,} points, more than {MAX_POINTS:,}")
    else:
        raise ValueError(f"unknown method '{method}' (choose from {', '.join(METHODS)})")
    values = np.clip(values, lo, hi)
    points = tuple(tuple(float(x) for x in row) for row in values)
    return Design(method, varies, points, samples)


def _levels(v: Vary) -> list[float]:
    """Evenly spaced grid levels, without binary noise (0.30000000000000004 -> 0.3)."""
    n = v.n or 1
    if n == 1:
        return [v.lo]
    out = []
    for k in range(n):
        x = v.lo + (v.hi - v.lo) * k / (n - 1)
        short = float(f"{x:.15g}")
        out.append(short if abs(short - x) <= 2 * math.ulp(x) else x)
    return [min(max(x, v.lo), v.hi) for x in out]


def _problem(varies: Sequence[Vary]) -> dict[str, Any]:
    return {
        "num_vars": len(varies),
        "names": [v.name for v in varies],
        "bounds": [[v.lo, v.hi] for v in varies],
    }


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
    from sim.loader import load_text

    return load_text(text, file)


def evaluate_chunk(
    text: str,
    file: str,
    fixed: tuple[tuple[str, float], ...],
    names: tuple[str, ...],
    runs: int,
    seed: int,
    items: tuple[tuple[int, tuple[float, ...]], ...],
) -> list[tuple[int, list[float]]]:
    """Worker task: the metrics of some points (picklable arguments; the scenario is cached)."""
    scenario = _scenario(text, file)
    out = []
    for index, values in items:
        overrides = {**dict(fixed), **dict(zip(names, values, strict=True))}
        try:
            model = compile_model(scenario, overrides)
            out.append((index, point_metrics(model, runs, seed, index)))
        except (ScenarioError, SimulationError, ValueError) as exc:
            where = ", ".join(f"{k}={v:g}" for k, v in zip(names, values, strict=True))
            raise SimulationError(f"point {index} ({where}): {exc}") from None
    return out


# --- the journal --------------------------------------------------------------------------------

_CHECKED = {
    "scenario_sha256": "scenario file (sha256)",
    "seed": "--seed",
    "runs": "--runs",
    "method": "--method",
    "design_sha256": "design (--vary, --samples or --set)",
    "version": "escalation-sim version",
}


class Journal:
    """A SQLite journal: a header of what determines the numbers, and one row per finished point."""

    def __init__(self, path: Path):
        self.path = path
        self.db = sqlite3.connect(path, timeout=30)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=FULL")
        with self.db:
            self.db.execute("CREATE TABLE IF NOT EXISTS header (key TEXT PRIMARY KEY, value TEXT)")
            self.db.execute("CREATE TABLE IF NOT EXISTS points (idx INTEGER PRIMARY KEY, row TEXT)")

    def header(self) -> dict[str, str]:
        return dict(self.db.execute("SELECT key, value FROM header"))

    def write_header(self, header: dict[str, str]) -> None:
        with self.db:
            self.db.executemany("INSERT OR REPLACE INTO header VALUES (?, ?)", header.items())

    def record(self, rows: list[tuple[int, list[float]]]) -> None:
        """Commit finished points durably (one transaction)."""
        with self.db:
            self.db.executemany(
                "INSERT OR REPLACE INTO points VALUES (?, ?)",
                [(i, json.dumps(values)) for i, values in rows],
            )

    def rows(self) -> dict[int, list[float]]:
        return {i: json.loads(r) for i, r in self.db.execute("SELECT idx, row FROM points")}

    def close(self) -> None:
        self.db.close()


def _remove_journal(path: Path) -> None:
    for p in (path, Path(f"{path}-wal"), Path(f"{path}-shm")):
        p.unlink(missing_ok=True)


def open_journal(path: Path, header: dict[str, str], resume: bool) -> tuple[Journal, str]:
    """The journal to record into, and a note for the user; refuses a mismatched resume."""
    note = ""
    if path.exists():
        try:
            old = Journal(path)
            old_header, done = old.header(), len(old.rows())
            old.close()
        except sqlite3.DatabaseError as exc:
            raise SweepError(f"{path} is not a readable sweep journal ({exc})") from None
        total = int(old_header.get("points", 0))
        if not old_header:  # died while being created: it holds nothing
            _remove_journal(path)
            return open_journal(path, header, resume)
        if resume:
            for key, what in _CHECKED.items():
                if old_header.get(key) != header[key]:
                    was, now = _short(old_header.get(key)), _short(header[key])
                    raise SweepError(
                        f"cannot resume: {path.parent} holds a sweep with a different {what} "
                        f"({was}, now {now}); rerun with the original settings or use another --out"
                    )
            journal = Journal(path)
            return journal, f"resuming: {done} of {total} points already done"
        if done < total:
            raise SweepError(
                f"{path.parent} holds an unfinished sweep ({done} of {total} points done): add "
                f"--resume to finish it, or delete {path} to start afresh"
            )
        _remove_journal(path)
    elif resume:
        note = f"nothing to resume in {path.parent}: starting a new sweep"
    journal = Journal(path)
    journal.write_header(header)
    return journal, note


def _short(value: str | None) -> str:
    if value is None:
        return "none recorded"
    return value[:12] if len(value) == 64 else value


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
    elif workers <= 1:
        yield None
    else:
        spawn = multiprocessing.get_context("spawn")
        pool = ProcessPoolExecutor(workers, mp_context=spawn, initializer=_init_worker)
        try:
            yield pool
        finally:
            pool.shutdown(wait=True, cancel_futures=True)


def default_workers() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


# --- a sweep ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SweepSpec:
    """Everything that determines a sweep's numbers."""

    text: str
    file: str
    design: Design
    runs: int
    seed: int
    fixed: tuple[tuple[str, float], ...] = ()

    def design_sha256(self) -> str:
        data = {**self.design.to_json(), "fixed": [list(kv) for kv in self.fixed]}
        return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()


@dataclass
class SweepResult:
    """A finished sweep: its table (parameters, then metrics; one row per point) and its files."""

    spec: SweepSpec
    model: Model
    columns: list[str]
    table: np.ndarray
    computed: int
    seconds: float
    workers: int
    sobol: list[dict[str, Any]] | None = None
    files: list[Path] = field(default_factory=list)

    @property
    def scenario(self) -> Scenario:
        return self.model.scenario

    def column(self, name: str) -> np.ndarray:
        return self.table[:, self.columns.index(name)]

    def metrics(self) -> list[str]:
        """Columns that are point estimates (not interval ends, not parameters)."""
        names = set(self.spec.design.names)
        return [c for c in self.columns if c not in names and not c.endswith(("_lo", "_hi"))]


STALE = ("points.csv", "points.parquet", "sweep.json", "sobol_indices.csv")


def run_sweep(
    spec: SweepSpec,
    out_dir: Path,
    executor: Executor | None = None,
    workers: int = 1,
    resume: bool = False,
    progress: Progress | None = None,
    command: str = "",
    notify: Callable[[str], None] | None = None,
) -> SweepResult:
    """Run (or finish) a sweep into `out_dir`: journal, points.csv, sweep.json, Sobol indices."""
    import time

    from sim.loader import load_text

    start = time.perf_counter()
    model = compile_model(load_text(spec.text, spec.file), dict(spec.fixed))
    design = spec.design
    clash = sorted(set(design.names) & set(metric_columns(model)))
    if clash:
        raise SweepError(f"parameter {clash[0]} has the name of a points.csv column; rename it")
    out_dir.mkdir(parents=True, exist_ok=True)
    header = {
        "scenario_sha256": model.sha256,
        "seed": str(spec.seed),
        "runs": str(spec.runs),
        "method": design.method,
        "design_sha256": spec.design_sha256(),
        "version": __version__,
        "points": str(len(design.points)),
    }
    journal, note = open_journal(out_dir / JOURNAL, header, resume)
    if note and notify:
        notify(note)
    try:
        done = journal.rows()
        if not done:
            _remove_stale(out_dir)
        pending = [i for i in range(len(design.points)) if i not in done]
        if progress and done:
            progress(len(done))
        for rows in _execute(spec, pending, executor, workers):
            journal.record(rows)
            if progress:
                progress(len(rows))
        rows = journal.rows()
    finally:
        journal.close()
    params = np.array(design.points, dtype=float).reshape(len(design.points), len(design.names))
    metrics = np.array([rows[i] for i in range(len(design.points))], dtype=float)
    result = SweepResult(
        spec=spec,
        model=model,
        columns=[*design.names, *metric_columns(model)],
        table=np.hstack([params, metrics.reshape(len(design.points), -1)]),
        computed=len(pending),
        seconds=time.perf_counter() - start,
        workers=workers,
    )
    if design.method == "sobol":
        result.sobol = sobol_indices(result)
    result.files = write_outputs(result, out_dir, command)
    return result


def _remove_stale(out_dir: Path) -> None:
    """A new sweep removes the outputs of an earlier one, so none is mistaken for its own."""
    for name in STALE:
        (out_dir / name).unlink(missing_ok=True)
    for chart in out_dir.glob("sweep_*.png"):
        chart.unlink()


def _chunks(pending: list[int], workers: int) -> list[list[int]]:
    """Guided chunks: big while much is left (little overhead), shrinking to single points at the
    end (so no worker idles while another finishes a long chunk)."""
    out, k = [], 0
    while k < len(pending):
        size = max(1, min(MAX_CHUNK, (len(pending) - k) // (4 * max(workers, 1))))
        out.append(pending[k : k + size])
        k += size
    return out


def _execute(
    spec: SweepSpec, pending: list[int], executor: Executor | None, workers: int
) -> Iterator[list[tuple[int, list[float]]]]:
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


# --- outputs ------------------------------------------------------------------------------------


def sobol_indices(result: SweepResult) -> list[dict[str, Any]]:
    """First- and total-order Sobol indices (SALib, 95% bootstrap intervals) of every metric."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from SALib.analyze import sobol

    design = result.spec.design
    problem = _problem(design.varies)
    out = []
    for metric in result.metrics():
        y = result.column(metric)
        if np.ptp(y) == 0:  # a constant metric has no variance to share out
            r = {k: np.full(len(design.names), np.nan) for k in ("S1", "S1_conf", "ST", "ST_conf")}
        else:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                r = sobol.analyze(
                    problem,
                    y,
                    calc_second_order=False,
                    num_resamples=SOBOL_RESAMPLES,
                    conf_level=0.95,
                    seed=result.spec.seed,
                )
        for j, name in enumerate(design.names):
            row = {"metric": metric, "parameter": name}
            row.update({k: float(r[k][j]) for k in ("S1", "S1_conf", "ST", "ST_conf")})
            out.append(row)
    return out


def readable(tmp: str | Path) -> None:
    """Give a temporary file (mkstemp makes them 0600) the permissions of a normal new file."""
    mask = os.umask(0o022)
    os.umask(mask)
    os.chmod(tmp, 0o666 & ~mask)


def _atomic_write(path: Path, data: bytes) -> Path:
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}-", dir=path.parent)
    readable(tmp)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return path


def points_csv(result: SweepResult) -> bytes:
    """The tidy table, rows in point order, floats as repr (byte-identical when numbers are)."""
    lines = [",".join(["point", *result.columns])]
    for i, row in enumerate(result.table):
        lines.append(",".join([str(i), *(repr(float(x)) for x in row)]))
    return ("\n".join(lines) + "\n").encode()


def _table_csv(rows: list[dict[str, Any]]) -> bytes:
    keys = list(rows[0]) if rows else []
    lines = [",".join(keys)]
    lines += [
        ",".join(v if isinstance(v, str) else repr(float(v)) for v in r.values()) for r in rows
    ]
    return ("\n".join(lines) + "\n").encode()


def write_outputs(result: SweepResult, out_dir: Path, command: str) -> list[Path]:
    """points.csv (+ points.parquet with pyarrow), sobol_indices.csv, and sweep.json last."""
    files = [_atomic_write(out_dir / "points.csv", points_csv(result))]
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError:
        pass
    else:
        columns = {
            "point": np.arange(len(result.table)),
            **{c: result.table[:, k] for k, c in enumerate(result.columns)},
        }
        tmp = out_dir / ".points.parquet.tmp"
        pq.write_table(pa.table(columns), tmp)
        os.replace(tmp, out_dir / "points.parquet")
        files.append(out_dir / "points.parquet")
    if result.sobol is not None:
        files.append(_atomic_write(out_dir / "sobol_indices.csv", _table_csv(result.sobol)))
    spec, model = result.spec, result.model
    meta = {
        "scenario": model.scenario.id,
        "scenario_file": spec.file,
        "scenario_sha256": model.sha256,
        "version": __version__,
        "seed": spec.seed,
        "runs": spec.runs,
        "command": command,
        "parameters": model.parameters,
        "fixed": dict(spec.fixed),
        "design": spec.design.to_json(),
        "design_sha256": spec.design_sha256(),
        "columns": ["point", *result.columns],
        "outcomes": list(model.outcome_ids),
        "sobol": _without_nan(result.sobol),
    }
    text = json.dumps(meta, indent=2, allow_nan=False) + "\n"
    files.append(_atomic_write(out_dir / "sweep.json", text.encode()))
    return files


def _without_nan(rows: list[dict[str, Any]] | None) -> list[dict[str, Any]] | None:
    """JSON has no NaN: an undefined index (a constant metric) is written as null."""
    if rows is None:
        return None
    return [
        {k: None if isinstance(v, float) and math.isnan(v) else v for k, v in r.items()}
        for r in rows
    ]

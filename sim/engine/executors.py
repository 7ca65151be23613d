"""Where the blocks of an experiment run: this process, a local process pool, or a Dask cluster.

One way to open an executor for every heavy command (`run`, `compare`, `report`, `sweep`): an
`ExecutorSpec` (what `--workers`, `--executor`, `--scheduler`, `--scheduler-file` and
`--cluster-timeout` say) opened with `open_executor`. Results do not depend on the executor:
random numbers are addressed by position (docs/model.md#reproducibility), so a block gives the
same numbers wherever it runs, and blocks are folded in block order.

A cluster fails loud (docs/cluster.md): no worker within the timeout, a worker without the
package, or one whose `sim` differs (version, the code that decides the numbers, numpy) is a
`ClusterError` (exit status 2) naming the worker, never a silent hang or different numbers.
dask is imported only when a Dask executor is opened.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sim.errors import SimulationError

if TYPE_CHECKING:
    from concurrent.futures import Executor, Future

# multiprocessing and the process pool are imported only when a pool is opened: one worker runs
# in this process, and `escalation run` starts faster without them (tests/cli/test_startup.py).

EXECUTORS = ("process", "dask")
DEFAULT_CLUSTER_TIMEOUT = 30.0
"""Seconds to wait for the scheduler and for the first worker to join (`--cluster-timeout`)."""

CODE_PARTS = ("__init__.py", "engine", "model", "format", "results.py", "solvers", "analysis")
"""The parts of the package whose code decides the numbers: hashed on every worker and here."""


class ClusterError(SimulationError):
    """A cluster that cannot run the experiment: unreachable, no worker, or a differing one."""


@dataclass(frozen=True)
class ExecutorSpec:
    """Where to run: `kind` "process" (a local pool of `workers`, or this process for one) or
    "dask" (a LocalCluster of `workers`, or the cluster at `scheduler` / `scheduler_file`)."""

    kind: str = "process"
    workers: int = 1
    scheduler: str | None = None
    scheduler_file: str | None = None
    timeout: float = DEFAULT_CLUSTER_TIMEOUT

    def __post_init__(self) -> None:
        if self.kind not in EXECUTORS:
            raise ValueError(f"executor must be one of {', '.join(EXECUTORS)}, got {self.kind!r}")
        if self.scheduler and self.scheduler_file:
            raise ValueError("give a scheduler address or a scheduler file, not both")
        if self.timeout <= 0:
            raise ValueError(f"the cluster timeout must be positive, got {self.timeout:g}")

    @property
    def dask(self) -> bool:
        return self.kind == "dask" or bool(self.scheduler or self.scheduler_file)

    @property
    def local(self) -> bool:
        """True when nothing leaves this process (one worker, no Dask)."""
        return not self.dask and self.workers <= 1

    def command_flags(self) -> list[str]:
        """The flags that reproduce this choice (after `--workers`), for a recorded command."""
        if self.scheduler:
            return ["--scheduler", self.scheduler]
        if self.scheduler_file:
            return ["--scheduler-file", self.scheduler_file]
        return ["--executor", self.kind] if self.kind != "process" else []


def _init_worker() -> None:
    """Pool workers leave Ctrl-C to the parent, and exit when the parent dies (even by kill -9)."""
    import multiprocessing
    import signal
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
def open_executor(spec: ExecutorSpec) -> Iterator[Executor | None]:
    """None (in this process) for one local worker, a spawn process pool, or a Dask executor
    whose workers have been checked (`check_workers`)."""
    if spec.dask:
        with _dask_executor(spec) as executor:
            yield executor
    elif spec.workers <= 1:
        yield None
    else:
        from concurrent.futures import ProcessPoolExecutor

        from sim.engine.workers import spawn_context

        pool = ProcessPoolExecutor(
            spec.workers, mp_context=spawn_context(), initializer=_init_worker
        )
        try:
            yield pool
        finally:
            pool.shutdown(wait=True, cancel_futures=True)


@contextmanager
def _dask_executor(spec: ExecutorSpec) -> Iterator[Executor]:
    try:
        from dask.distributed import Client, LocalCluster
    except ImportError:
        raise ClusterError(
            "the Dask executor needs dask.distributed: pip install 'escalation-sim[dask]'"
        ) from None
    timeout = spec.timeout
    where = spec.scheduler or (f"in {spec.scheduler_file}" if spec.scheduler_file else None)
    cluster = None
    try:
        if spec.scheduler:
            client = Client(spec.scheduler, timeout=f"{timeout}s")
        elif spec.scheduler_file:
            if not os.path.exists(spec.scheduler_file):
                raise ClusterError(
                    f"no Dask scheduler file at {spec.scheduler_file} (start the scheduler "
                    "with --scheduler-file first: docs/cluster.md)"
                )
            client = Client(scheduler_file=spec.scheduler_file, timeout=f"{timeout}s")
            where = f"{client.scheduler.address} (from {spec.scheduler_file})"
        else:
            cluster = _local_cluster(LocalCluster, spec.workers)
            client = Client(cluster)
    except (OSError, TimeoutError) as exc:
        if cluster is not None:
            cluster.close()
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ClusterError(f"cannot reach the Dask scheduler {where}: {reason}") from None
    try:
        wait_for_workers(client, 1 if cluster is None else spec.workers, timeout, where)
        check_workers(client)
        yield _dask_executor_class()(client)
    finally:
        client.close()
        if cluster is not None:
            cluster.close()


def _local_cluster(local_cluster: Any, workers: int) -> Any:
    """A LocalCluster of `workers` one-thread processes, quiet, without a dashboard, and
    without Dask's MALLOC_TRIM_THRESHOLD_: that setting turns off glibc's adaptive mmap
    threshold, so every large numpy temporary is mapped and unmapped afresh, which made the
    engine 3x slower on a worker (docs/cluster.md, "Speed")."""
    import logging

    import dask

    with dask.config.set({"distributed.nanny.pre-spawn-environ.MALLOC_TRIM_THRESHOLD_": None}):
        return local_cluster(
            n_workers=workers,
            threads_per_worker=1,
            processes=True,
            scheduler_kwargs={"dashboard": False},
            dashboard_address=":0",  # its HTTP server (health checks) on any free port
            silence_logs=logging.ERROR,
        )


def wait_for_workers(client: Any, n: int, timeout: float, where: str | None = None) -> None:
    """Wait until `n` workers have joined, or raise ClusterError after `timeout` seconds."""
    try:
        client.wait_for_workers(n, timeout=timeout)
    except TimeoutError:
        joined = len(client.scheduler_info().get("workers", {}))
        at = f"the Dask scheduler {where}" if where else "the local Dask cluster"
        raise ClusterError(
            f"no worker joined {at} within {timeout:g} s ({joined} of {n} needed): start "
            "workers (dask worker ADDRESS) or raise --cluster-timeout"
        ) from None


def _probe_function():
    """The identity probe, made as a nested function: cloudpickle cannot find it by name, so it
    sends its code by value, and it runs even on a worker that lacks the package (and says so).
    It uses no global of this module, only what it imports itself."""

    def probe(parts):
        import hashlib
        import importlib
        import os
        import socket
        import sys

        out = {"host": socket.gethostname(), "python": sys.executable}
        try:
            sim = importlib.import_module("sim")
            numpy = importlib.import_module("numpy")
        except Exception as exc:
            out["error"] = f"{type(exc).__name__}: {exc}"
            return out
        root = os.path.dirname(os.path.abspath(sim.__file__))
        digest = hashlib.sha256()
        for part in parts:
            top = os.path.join(root, part)
            if os.path.isfile(top):
                files = [top]
            else:
                files = []
                for folder, dirs, names in os.walk(top):
                    dirs[:] = sorted(d for d in dirs if d != "__pycache__")
                    files += [os.path.join(folder, n) for n in sorted(names) if n.endswith(".py")]
            for path in files:
                digest.update(os.path.relpath(path, root).replace(os.sep, "/").encode() + b"\0")
                with open(path, "rb") as f:
                    digest.update(f.read() + b"\0")
        out.update(
            version=getattr(sim, "__version__", None),
            code=digest.hexdigest()[:16],
            numpy=numpy.__version__,
            path=root,
        )
        return out

    return probe


def identity() -> dict[str, Any]:
    """This process's `sim`: version, a digest of the code that decides the numbers, numpy."""
    return _probe_function()(CODE_PARTS)


def check_workers(client: Any, expected: dict[str, Any] | None = None) -> None:
    """Every worker imports `sim` with the same version, code digest and numpy as this process;
    otherwise a ClusterError naming the first worker that differs (or lacks the package)."""
    expected = identity() if expected is None else expected
    try:
        found = client.run(_probe_function(), CODE_PARTS)
    except Exception as exc:  # a worker that cannot even run the probe
        raise ClusterError(f"cannot check the Dask workers: {type(exc).__name__}: {exc}") from None
    names = {a: w.get("name", a) for a, w in client.scheduler_info().get("workers", {}).items()}
    for address in sorted(found):
        got = found[address]
        who = _worker_name(address, names.get(address), got.get("host"))
        if "error" in got:
            raise ClusterError(
                f"Dask worker {who} cannot import the package sim ({got['error']}; Python "
                f"{got['python']}): install escalation-sim {expected['version']} on every worker"
            )
        for key, what in (("version", "sim"), ("code", "sim code digest"), ("numpy", "numpy")):
            if got.get(key) != expected[key]:
                paths = ""
                if got.get("path") != expected["path"]:
                    paths = f" (there {got.get('path')}, here {expected['path']})"
                raise ClusterError(
                    f"Dask worker {who} runs {what} {got.get(key)}, this process {expected[key]}"
                    f"{paths}: install the same escalation-sim on every worker, or the results "
                    "would differ"
                )


def _worker_name(address: str, name: Any, host: str | None) -> str:
    parts = [address]
    if name is not None and str(name) != address:
        parts.append(f"name {name}")
    if host:
        parts.append(f"host {host}")
    return parts[0] + (f" ({', '.join(parts[1:])})" if len(parts) > 1 else "")


_tuned: list[bool] = []


def tune_worker_memory() -> None:
    """Undo, in a process that runs blocks, what MALLOC_TRIM_THRESHOLD_ costs the engine.

    Dask's nanny starts every worker with MALLOC_TRIM_THRESHOLD_=65536. Setting it turns off
    glibc's adaptive mmap threshold, so each numpy temporary above 128 KiB is mapped, zeroed
    and unmapped afresh: a batch ran 3x slower on a Dask worker than here. Raising the mmap
    threshold to 32 MiB and the trim threshold to 64 MiB (glibc's own adaptive ceiling) gives
    the speed back; memory is still returned to the system. Once per process; a no-op where
    the variable is not set or the C library is not glibc. It changes no number."""
    if _tuned or "MALLOC_TRIM_THRESHOLD_" not in os.environ:
        return
    _tuned.append(True)
    try:
        import ctypes

        libc = ctypes.CDLL("libc.so.6")
        libc.mallopt(-3, 32 << 20)  # M_MMAP_THRESHOLD
        libc.mallopt(-1, 64 << 20)  # M_TRIM_THRESHOLD
    except (OSError, AttributeError):  # not glibc
        pass


_MARK = "escalation cluster: "


def _task_function(mark: str):
    """The wrapper every Dask task runs, nested for the same reason as `_probe_function`: a
    worker that cannot import `sim` still runs it, and fails the task with a message that
    starts with `mark` instead of failing to read the task."""

    def run_task(payload):
        import pickle

        try:
            function, args = pickle.loads(payload)
        except ModuleNotFoundError as exc:
            import socket
            import sys

            try:
                from distributed import get_worker

                where = get_worker().address
            except Exception:
                where = "?"
            raise RuntimeError(
                f"{mark}Dask worker {where} (host {socket.gethostname()}) cannot import the "
                f"package sim ({type(exc).__name__}: {exc}; Python {sys.executable}): install "
                "escalation-sim on every worker"
            ) from None
        return function(*args)

    return run_task


@functools.cache
def _dask_executor_class() -> type:
    """DaskExecutor, defined on first use: its base class comes from concurrent.futures, which
    (with the logging it imports) a `run` on one worker never needs at start-up."""
    from concurrent.futures import Executor

    class DaskExecutor(Executor):
        """A concurrent.futures executor on a Dask client whose tasks reach the workers as bytes.

        Each task is `run_task(pickle of (function, args))`, with `run_task` sent by value: a worker
        that cannot import the package (one that joined after `check_workers`) fails the task with
        a message naming it, instead of failing to read the task (which left the computation
        waiting for ever)."""

        def __init__(self, client: Any) -> None:
            self._client = client
            self._inner = client.get_executor(pure=False)
            self._run_task = _task_function(_MARK)

        def submit(self, fn, /, *args, **kwargs):  # type: ignore[override]
            import pickle

            if kwargs:
                raise TypeError("DaskExecutor.submit takes positional arguments only")
            payload = pickle.dumps((fn, args), protocol=pickle.HIGHEST_PROTOCOL)
            return self._inner.submit(self._run_task, payload)

        def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
            self._inner.shutdown(wait=wait)

    return DaskExecutor


def __getattr__(name: str) -> Any:
    """`sim.engine.executors.DaskExecutor`, made on first access (see `_dask_executor_class`)."""
    if name == "DaskExecutor":
        return _dask_executor_class()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def slots(executor: Executor | None) -> int:
    """How many tasks `executor` runs at once (its workers' threads for Dask)."""
    if executor is None:
        return 1
    if hasattr(executor, "_max_workers"):
        return max(1, int(executor._max_workers))
    client = getattr(executor, "_client", None)
    if client is not None:
        try:
            return max(1, sum(client.nthreads().values()))
        except Exception:  # noqa: BLE001 - a lost scheduler shows up at the next result
            return 1
    return 1


def result(future: Future) -> Any:
    """`future.result()`, with a worker that lacks the package (one that joined after the check),
    or numba for `--backend compiled`, reported as a ClusterError instead of a traceback."""
    try:
        return future.result()
    except RuntimeError as exc:
        if str(exc).startswith(_MARK):
            raise ClusterError(str(exc)[len(_MARK) :]) from None
        raise
    except ModuleNotFoundError as exc:
        if exc.name == "sim" or str(exc).startswith("No module named 'sim"):
            raise ClusterError(
                f"a Dask worker cannot import the package sim ({exc}): install escalation-sim "
                "on every worker"
            ) from None
        raise
    except ImportError as exc:
        if str(exc).startswith("needs numba"):  # sim.engine.compiled.NEEDS_NUMBA, on a worker
            raise ClusterError(f"a worker cannot run --backend compiled: it {exc}") from None
        raise

"""`run`'s charts, drawn by a process forked before the runs: it imports matplotlib meanwhile."""

from __future__ import annotations

import contextlib
import io
import os
import pickle
import signal
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from sim.outputs.charts import (
    RUN_CHARTS,
    ChartOptions,
    _pickled_exception,
    _unpickled_exception,
    can_fork,
    write_run_charts,
)
from sim.results import Results


class EarlyCharts:
    """The four `run` charts of results still to come: the files of
    `write_run_charts(results, out_dir, options, parallel=True)`, byte for byte.

    Entering the block forks a copy of this process (where `can_fork`), which imports
    matplotlib while this one simulates and prints, then waits for the results; `write`
    pickles them to it and waits for its charts (its failure is raised here, as
    `write_run_charts` raises it). `shared`: objects the results refer to that exist already
    (the model, whose compiled expressions cannot be pickled): they are not sent, the copy uses
    its own. Leaving the block without `write` (an error, a signal) ends the copy, which has
    written nothing then; where it cannot fork, `write` draws them in this process."""

    def __init__(self, out_dir: str | Path, options: ChartOptions, shared: Iterable[Any] = ()):
        self.out_dir, self.options, self.shared = Path(out_dir), options, tuple(shared)
        self.pid = -1
        self.to_child: int | None = None
        self.from_child: int | None = None

    def __enter__(self) -> EarlyCharts:
        if can_fork():
            self._fork()
        return self

    def __exit__(self, *exc: object) -> None:
        self._end()

    def _fork(self) -> None:
        results_r, results_w = os.pipe()
        report_r, report_w = os.pipe()
        blocked = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM})
        try:
            pid = os.fork()
        except OSError:  # no process to spare: `write` draws them here
            signal.pthread_sigmask(signal.SIG_SETMASK, blocked)
            for fd in (results_r, results_w, report_r, report_w):
                os.close(fd)
            return
        if pid == 0:  # the copy: it never leaves this block
            status = 1
            try:
                os.close(results_w)
                os.close(report_r)
                signal.pthread_sigmask(signal.SIG_SETMASK, blocked)
                status = self._child(results_r, report_w)
            finally:
                os._exit(status)
        os.close(results_r)
        os.close(report_w)
        self.pid, self.to_child, self.from_child = pid, results_w, report_r
        signal.pthread_sigmask(signal.SIG_SETMASK, blocked)

    def _child(self, results_r: int, report_w: int) -> int:
        """In the copy: import matplotlib, wait for the results, write the charts; a failure
        goes to the parent through `report_w`. Returns the exit status."""
        try:
            with contextlib.suppress(Exception):  # a failing import fails again in the charts
                import matplotlib.backends.backend_agg  # noqa: F401
                import matplotlib.figure  # noqa: F401
            with os.fdopen(results_r, "rb") as pipe:
                data = pipe.read()
            if data:  # nothing: the parent gave up before its results
                results = _Unpickler(io.BytesIO(data), self.shared).load()
                write_run_charts(results, self.out_dir, self.options, parallel=True)
            return 0
        except BaseException as exc:  # noqa: BLE001 - handed to the parent
            with contextlib.suppress(OSError), os.fdopen(report_w, "wb") as pipe:
                pipe.write(_pickled_exception(exc))
            return 1

    def write(self, results: Results) -> list[Path]:
        """Write the charts of `results` (through the copy, if there is one) and name them."""
        data = None
        if self.pid > 0:
            buffer = io.BytesIO()
            try:
                _Pickler(buffer, self.shared).dump(results)
                data = buffer.getvalue()
            except (pickle.PicklingError, TypeError, AttributeError):
                self._end()  # results it cannot be sent: drawn here
        if data is None:
            return write_run_charts(results, self.out_dir, self.options, parallel=True)
        try:
            with contextlib.suppress(BrokenPipeError), os.fdopen(self.to_child, "wb") as pipe:
                self.to_child = None
                pipe.write(data)
            with os.fdopen(self.from_child, "rb") as pipe:
                self.from_child = None
                report = pipe.read()
            code = os.waitpid(self.pid, 0)[1]
            self.pid = -1
        finally:
            self._end()
        if report:
            raise _unpickled_exception(report)
        if code != 0:
            raise RuntimeError(
                f"the process writing charts beside this one ended with status {code}"
            )
        return [self.out_dir / self.options.name(name) for name in RUN_CHARTS]

    def _end(self) -> None:
        """Close the pipes; a copy still running is ended (its temporary file removed:
        sim.files) and waited for."""
        for fd in (self.to_child, self.from_child):
            if fd is not None:
                with contextlib.suppress(OSError):
                    os.close(fd)
        self.to_child = self.from_child = None
        if self.pid > 0:
            with contextlib.suppress(OSError):
                os.kill(self.pid, signal.SIGTERM)
                os.waitpid(self.pid, 0)
            self.pid = -1


class _Pickler(pickle.Pickler):
    """Pickles the results, each of the shared objects as its index (`persistent_id`)."""

    def __init__(self, file: io.BytesIO, shared: tuple[Any, ...]):
        super().__init__(file, protocol=pickle.HIGHEST_PROTOCOL)
        self.indices = {id(obj): i for i, obj in enumerate(shared)}

    def persistent_id(self, obj: Any) -> int | None:
        return self.indices.get(id(obj))


class _Unpickler(pickle.Unpickler):
    """Reads what `_Pickler` wrote (in the forked copy), with its own copies of the shared."""

    def __init__(self, file: io.BytesIO, shared: tuple[Any, ...]):
        super().__init__(file)
        self.shared = shared

    def persistent_load(self, pid: Any) -> Any:
        return self.shared[pid]

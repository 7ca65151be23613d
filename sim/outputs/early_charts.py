"""`run`'s charts, drawn by a process forked as `run` starts, which imports matplotlib meanwhile."""

from __future__ import annotations

import contextlib
import fcntl
import io
import os
import pickle
import signal
import sys
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any

PIPE_SIZE = 1 << 20
"""Bytes the pipe to the copy holds (Linux's default maximum): the scenario is sent without
waiting for the copy to read it, if its pickle fits (camp_taji: 124 KB)."""


def can_fork() -> bool:
    """True where a chart writer may fork: POSIX with fork, and this the only Python thread (a
    notebook's kernel has others: it writes the charts one after another)."""
    return (
        hasattr(os, "fork")
        and sys.platform.startswith("linux")
        and threading.active_count() == 1
        and threading.current_thread() is threading.main_thread()
    )


class EarlyCharts:
    """The four `run` charts of results still to come: the files of
    `write_run_charts(results, out_dir, options, parallel=True)`, byte for byte.

    Entering the block forks a copy of this process (where `can_fork`; nothing heavy imported
    yet, so the fork is cheap), which imports matplotlib and the model's machinery while this
    one imports, loads and simulates. `scenario` sends it the loaded scenario and its
    overrides, from which it prepares a model of its own (the same: `prepare_model` is
    deterministic; the compiled expressions of a model cannot be pickled); `write` sends it the
    results (their model as a reference to its own) and waits for its charts, its failure
    raised here as `write_run_charts` raises it. Leaving the block without `write` (an error,
    a signal) ends the copy, which has written nothing then; without a copy (no fork, or a
    scenario too big for the pipe), `write` draws the charts in this process."""

    def __init__(self) -> None:
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
        with contextlib.suppress(OSError):  # a pipe of the default size does, only slower
            fcntl.fcntl(results_w, fcntl.F_SETPIPE_SZ, PIPE_SIZE)
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
                status = _child(results_r, report_w)
            finally:
                os._exit(status)
        os.close(results_r)
        os.close(report_w)
        self.pid, self.to_child, self.from_child = pid, results_w, report_r
        signal.pthread_sigmask(signal.SIG_SETMASK, blocked)

    def scenario(self, scenario: Any, overrides: Mapping[str, float]) -> None:
        """Send the copy the scenario and overrides the results will come from."""
        if self.pid <= 0:
            return
        try:
            data = pickle.dumps((scenario, dict(overrides)), protocol=pickle.HIGHEST_PROTOCOL)
            room = fcntl.fcntl(self.to_child, fcntl.F_GETPIPE_SZ)
        except (pickle.PicklingError, TypeError, AttributeError, OSError):
            data, room = b"", 0
        if not data or len(data) > room:  # it would wait for the copy: drawn here instead
            self._end()
            return
        view = memoryview(data)
        with contextlib.suppress(OSError):  # the copy has died: its status tells why, at `write`
            while view:  # it fits in the pipe: written at once, without waiting for the copy
                view = view[os.write(self.to_child, view) :]

    def write(self, results: Any, out_dir: str | Path, options: Any) -> list[Path]:
        """Write the charts of `results` into `out_dir` (through the copy, if there is one) and
        name them, as `write_run_charts` does."""
        from sim.outputs.charts import RUN_CHARTS, _unpickled_exception, write_run_charts

        data = None
        if self.pid > 0:
            try:
                buffer = io.BytesIO()
                _Pickler(buffer, results.model).dump(results)
                data = pickle.dumps(
                    (Path(out_dir), options, buffer.getvalue()), protocol=pickle.HIGHEST_PROTOCOL
                )
            except (pickle.PicklingError, TypeError, AttributeError):
                self._end()  # results it cannot be sent: drawn here
        if data is None:
            return write_run_charts(results, out_dir, options, parallel=True)
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
            raise RuntimeError(f"the process writing charts beside this one ended with {code}")
        return [Path(out_dir) / options.name(name) for name in RUN_CHARTS]

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


def _child(results_r: int, report_w: int) -> int:
    """In the copy: import, prepare the model of the scenario sent, wait for the results,
    write the charts; a failure goes to the parent through `report_w`. The exit status."""
    try:
        with contextlib.suppress(Exception):  # a failing import fails again where it is used
            import matplotlib.backends.backend_agg  # noqa: F401
            import matplotlib.figure  # noqa: F401

            import sim.outputs.charts  # noqa: F401
            import sim.solvers.prepare  # noqa: F401
        with os.fdopen(results_r, "rb") as pipe:
            try:
                scenario, overrides = pickle.load(pipe)
            except EOFError:  # the parent gave up before
                return 0
            model = failure = None
            try:
                from sim.solvers.prepare import prepare_model

                model = prepare_model(scenario, overrides)
            except Exception as exc:  # noqa: BLE001 - raised if the results come all the same
                failure = exc
            try:
                out_dir, options, results = pickle.load(pipe)
            except EOFError:
                return 0
        if failure is not None:
            raise failure
        from sim.outputs.charts import write_run_charts

        results = _Unpickler(io.BytesIO(results), model).load()
        write_run_charts(results, out_dir, options, parallel=True)
        return 0
    except BaseException as exc:  # noqa: BLE001 - handed to the parent
        with contextlib.suppress(Exception), os.fdopen(report_w, "wb") as pipe:
            from sim.outputs.charts import _pickled_exception

            pipe.write(_pickled_exception(exc))
        return 1


class _Pickler(pickle.Pickler):
    """Pickles the results, their model as a reference (`persistent_id`)."""

    def __init__(self, file: io.BytesIO, model: Any):
        super().__init__(file, protocol=pickle.HIGHEST_PROTOCOL)
        self.model = model

    def persistent_id(self, obj: Any) -> str | None:
        return "model" if obj is self.model else None


class _Unpickler(pickle.Unpickler):
    """Reads what `_Pickler` wrote, with the copy's own model."""

    def __init__(self, file: io.BytesIO, model: Any):
        super().__init__(file)
        self.model = model

    def persistent_load(self, pid: Any) -> Any:
        if pid != "model":
            raise pickle.UnpicklingError(f"unknown reference {pid!r}")
        return self.model

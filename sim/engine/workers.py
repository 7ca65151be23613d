"""The processes that work for the program: spawned, and quiet on Ctrl-C from their start."""

from __future__ import annotations

import multiprocessing
import multiprocessing.context
import signal


class _BlockedStartProcess(multiprocessing.context.SpawnProcess):
    """A spawned process that starts with SIGINT blocked (the mask is inherited through exec)."""

    def start(self) -> None:
        previous = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
        try:
            super().start()
        finally:  # a Ctrl-C that came meanwhile is raised here, once the process is recorded
            signal.pthread_sigmask(signal.SIG_SETMASK, previous)


class _BlockedStartContext(multiprocessing.context.SpawnContext):
    Process = _BlockedStartProcess


def spawn_context() -> multiprocessing.context.BaseContext:
    """The "spawn" context of worker processes (safe from Jupyter and on every OS).

    In the program (`escalation`, `python -m sim`) on POSIX, workers start with SIGINT blocked:
    a Ctrl-C at the terminal goes to every process of the group, and one that reached a worker
    while its interpreter started (before any code of sim could run) printed a KeyboardInterrupt
    traceback. Blocked, it stays pending until sim/__init__.py has made the worker's SIGINT
    quiet (exit at once, status 130) and unblocks it. A library's workers are left as they are.
    """
    import sim

    if hasattr(signal, "pthread_sigmask") and sim._program():
        return _BlockedStartContext()
    return multiprocessing.get_context("spawn")

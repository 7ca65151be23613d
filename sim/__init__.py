"""escalation-sim: an escalation-ladder decision simulator.

The Python API (docs/python.md) is importable from here: `sim.load`, `sim.run`, `sim.exact`,
`sim.compare`, `sim.sweep`, `sim.trace`, `sim.fit`, `sim.check` and `sim.Results`. They live in
`sim.api` and are imported on first use, so `import sim` (and the `escalation` command's
start-up) stays fast.

When the running program is `escalation` or `python -m sim` (or one of their worker
processes), the first statement below makes Ctrl-C (SIGINT) and SIGTERM end the process at
once, quietly, with status 130 or 143, until `sim.cli.main.main` installs the handlers that
unwind the stack (so temporary files are removed) for the time a command runs. This package is
the first code of the program either way (the console script imports `sim.cli.main`, and
`python -m sim` imports `sim` before it runs `sim/__main__.py`), so a Ctrl-C during the imports
never prints a traceback. Only the interpreter's own start-up comes before it: a signal then is
handled by CPython (see docs/hardening.md). Imported as a library (tests, notebooks), nothing
changes.
"""


def _quiet_signals_if_program() -> None:
    """SIGINT and SIGTERM leave quietly (130, 143) if the program is `escalation` or `python -m
    sim`; called here, as early as possible, and again by `sim.cli` (sys.argv[0] is final then).

    They are unblocked too: the program's worker processes start with SIGINT blocked (see
    sim.engine.workers.spawn_context), so that a Ctrl-C while their interpreter starts waits,
    pending, for this handler."""
    import os

    if not _program():
        return
    try:
        import _signal as signal  # the C module: no Python module (enum) to import first
    except ImportError:  # another implementation of Python
        import signal

    def quiet_exit(signum: int, frame: object = None) -> None:
        os._exit(128 + signum)

    for signum in (signal.SIGINT, signal.SIGTERM):
        try:  # noqa: SIM105 (contextlib is not imported yet, and need not be)
            signal.signal(signum, quiet_exit)
        except (ValueError, OSError):  # not the main thread
            pass
    if hasattr(signal, "pthread_sigmask"):  # POSIX
        signal.pthread_sigmask(signal.SIG_UNBLOCK, (signal.SIGINT, signal.SIGTERM))


def _program() -> bool:
    """True in `escalation` and `python -m sim` and in their worker processes."""
    import sys

    return _is_program(sys.argv[0] if sys.argv else "", getattr(sys, "orig_argv", ()))


def _is_program(argv0: str, orig_argv) -> bool:
    """True for `escalation ...` and `python -m sim ...`, given sys.argv[0] and sys.orig_argv.

    While `python -m NAME` imports NAME's package, sys.argv[0] is "-m" and NAME is read from
    sys.orig_argv (its first -m); later sys.argv[0] is the path of sim/__main__.py. Worker
    processes are given the program's sys.argv, so they are recognised too."""
    import os

    if argv0 == "-m":
        args = list(orig_argv)
        for i, arg in enumerate(args[1:], 1):
            if arg == "-m":
                return args[i + 1 : i + 2] == ["sim"]
            if arg.startswith("-m"):
                return arg == "-msim"
        return False
    name = os.path.basename(argv0)
    if name.removesuffix(".exe") == "escalation":
        return True
    return name == "__main__.py" and os.path.basename(os.path.dirname(argv0)) == "sim"


_quiet_signals_if_program()

__version__ = "0.1.0"

__all__ = [
    "Results",
    "__version__",
    "check",
    "compare",
    "exact",
    "fit",
    "load",
    "run",
    "sweep",
    "trace",
]

_API = frozenset(__all__) - {"__version__"}


def __getattr__(name: str):
    """The API names, imported from `sim.api` when first used (PEP 562)."""
    if name in _API:
        import importlib

        value = getattr(importlib.import_module("sim.api"), name)
        globals()[name] = value  # later look-ups skip this function
        return value
    raise AttributeError(f"module 'sim' has no attribute '{name}'")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))

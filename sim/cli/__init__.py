"""The `escalation` command line: `main` parses, then imports only the chosen command.

When this package is imported by the program itself (the `escalation` script or `python -m
sim`), Ctrl-C (SIGINT) and SIGTERM end the process at once, quietly, with status 130 or 143,
until `sim.cli.main.main` installs the handlers that unwind the stack (so temporary files are
removed) for the time a command runs. Without this, a Ctrl-C during the imports of the first
fraction of a second prints a traceback. Imported as a library (tests, notebooks), nothing
changes.
"""

import contextlib
import os
import signal
import sys


def quiet_exit(signum: int, frame: object = None) -> None:
    """A signal handler: leave now with 128 + the signal number, printing nothing."""
    os._exit(128 + signum)


def is_program() -> bool:
    """True when the running program is `escalation` or `python -m sim`."""
    name = os.path.basename(sys.argv[0]) if sys.argv and sys.argv[0] else ""
    if name.removesuffix(".exe") == "escalation":
        return True
    return name == "__main__.py" and os.path.basename(os.path.dirname(sys.argv[0])) == "sim"


def install_quiet_exit() -> None:
    """SIGINT and SIGTERM leave quietly (130, 143): for the imports and for the shutdown."""
    for signum in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(ValueError, OSError):  # not the main thread
            signal.signal(signum, quiet_exit)


if is_program():
    install_quiet_exit()

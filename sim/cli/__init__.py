"""The `escalation` command line: `main` parses, then imports only the chosen command.

When the program itself (the `escalation` script or `python -m sim`) imports this package,
Ctrl-C (SIGINT) and SIGTERM end the process at once, quietly, with status 130 or 143, until
`sim.cli.main.main` installs the handlers that unwind the stack (so temporary files are removed)
for the time a command runs. `sim/__init__.py` did so already, as its first statement; it is
done again here, where sys.argv[0] has its final value. Imported as a library (tests,
notebooks), nothing changes.
"""

from sim import _quiet_signals_if_program

_quiet_signals_if_program()

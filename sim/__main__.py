"""Allow `python -m sim` as an alias of the `escalation` command."""

from sim.cli import entry_point

entry_point()

"""Allow `python -m sim` as an alias of the `escalation` command."""

from sim.cli.main import entry_point

entry_point()

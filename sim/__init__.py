"""escalation-sim: an escalation-ladder decision simulator."""

__version__ = "0.1.0"

"""escalation-sim: an escalation-ladder decision simulator.

The Python API (docs/python.md) is importable from here: `sim.load`, `sim.run`, `sim.exact`,
`sim.compare`, `sim.sweep`, `sim.trace` and `sim.Results`. They live in `sim.api` and are
imported on first use, so `import sim` (and the `escalation` command's start-up) stays fast.
"""

__version__ = "0.1.0"

__all__ = ["Results", "__version__", "compare", "exact", "load", "run", "sweep", "trace"]

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

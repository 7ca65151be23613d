"""The bundled scenario library: where it is, and a name (id, file stem or path) -> its file.

Shared by the command line (`escalation run camp_taji_2020`) and the Python API
(`sim.load("camp_taji_2020")`), so both resolve a name the same way.
"""

from __future__ import annotations

import difflib
import os
from importlib import resources
from pathlib import Path

from sim.errors import Problem, ScenarioError

SUFFIXES = (".yaml", ".yml")
NEAREST = 3
"""How many nearest bundled names an unknown-name error suggests."""


def bundled_scenarios_dir() -> Path:
    """The scenario library: $ESCALATION_SCENARIOS, else the package data `sim/scenarios/`
    (found through importlib.resources, so it works from any install)."""
    env = os.environ.get("ESCALATION_SCENARIOS")
    if env:
        return Path(env)
    return Path(str(resources.files("sim") / "scenarios"))


def bundled_names() -> list[str]:
    """The file stems of the bundled scenarios (an id is its stem with '_' for '-')."""
    library = bundled_scenarios_dir()
    try:
        return sorted(p.stem for p in library.glob("*.yaml"))
    except OSError:
        return []


def nearest_bundled(name: str, n: int = NEAREST) -> list[str]:
    """The bundled stems closest to `name`: stems it is part of first, then close spellings."""
    stems = bundled_names()
    key = Path(name).stem.replace("-", "_").lower()
    containing = [s for s in stems if key and key in s.lower()]
    close = difflib.get_close_matches(key, stems, n=n, cutoff=0.5)
    return list(dict.fromkeys(containing + close))[:n]


def resolve_scenario_path(name: str | os.PathLike[str]) -> Path:
    """A path as given (an existing file, or any name ending in .yaml / .yml), or the file of
    the bundled scenario with that id or file stem.

    Any other name raises ScenarioError (`NAME:1:1: ...`, exit status 2 on the command line)
    naming the nearest bundled scenarios.
    """
    path = Path(name)
    if path.exists() or path.suffix in SUFFIXES:
        return path
    library = bundled_scenarios_dir()
    text = str(name)
    for candidate in (library / f"{text}.yaml", library / f"{text.replace('-', '_')}.yaml"):
        if candidate.exists():
            return candidate
    raise ScenarioError([Problem(text, 1, 1, _unknown_message(text))])


def _unknown_message(name: str) -> str:
    near = nearest_bundled(name)
    if near:
        quoted = ", ".join(f"'{s}'" for s in near)
        return f"no such file or bundled scenario (did you mean {quoted}?)"
    names = bundled_names()
    if names:
        return f"no such file or bundled scenario; bundled scenarios: {', '.join(names)}"
    return f"no such file or bundled scenario (no scenarios in {bundled_scenarios_dir()})"

"""A scenario's identity: its canonical JSON and its sha256 (printed with every result).

A scenario whose content is exactly what was loaded from its file hashes that file's text (so
the sha256 of a bundled scenario never changes); one built or changed in Python hashes its
canonical JSON, so a changed scenario never shares its file's hash.
"""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from sim.format.scenario import Scenario
    from sim.format.source import SourceMap


def canonical_json(scenario: Scenario) -> str:
    """The validated content as JSON (by alias, every field): `Scenario.model_validate_json`
    of it gives back an equal scenario with the same canonical JSON."""
    return scenario.model_dump_json(by_alias=True)


def file_source(scenario: Scenario, canonical: str | None = None) -> SourceMap | None:
    """The source map of the file the scenario was loaded from, if its content is unchanged."""
    source: SourceMap | None = scenario._source
    if source is None or not source.located or source.loaded is None:
        return None
    if (canonical if canonical is not None else canonical_json(scenario)) != source.loaded:
        return None
    return source


def scenario_sha256(scenario: Scenario) -> str:
    """sha256 of the file text when the content is the file's, else of the canonical JSON."""
    canonical = canonical_json(scenario)
    source = file_source(scenario, canonical)
    text = "\n".join(source.lines) if source is not None and source.lines else canonical
    return hashlib.sha256(text.encode()).hexdigest()

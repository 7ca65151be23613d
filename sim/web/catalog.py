"""Which scenarios the server offers: the bundled ones and those uploaded into the database.

A request names a scenario by id only; never by path, so no request can make the server read a
file of its choosing. Scenarios and prepared models are cached in memory.
"""

from __future__ import annotations

import functools
import threading
from collections import OrderedDict
from pathlib import Path
from typing import Any

from sim.errors import ScenarioError, did_you_mean
from sim.format.library import bundled_scenarios_dir
from sim.format.scenario import Scenario
from sim.model.compiled import Model
from sim.model.compiler import resolve_parameters
from sim.model.loading import load_scenario, load_text
from sim.solvers.prepare import prepare_model
from sim.web.errors import BadRequest
from sim.web.store import Store

MAX_UPLOAD = 256 * 1024
"""Largest scenario text accepted (the bundled ones are under 40 kB)."""
MODEL_CACHE = 64


class Catalog:
    """Scenarios by id, with their files' names for the command lines shown in the pages."""

    def __init__(self, store: Store):
        self.store = store
        self.lock = threading.Lock()
        self.bundled: dict[str, tuple[Scenario, str]] = {}
        self.stems: dict[str, str] = {}
        self.uploaded: dict[str, tuple[Scenario, str]] = {}
        self.models: OrderedDict[tuple, Model] = OrderedDict()
        for stem, scenario, file in _bundled(str(bundled_scenarios_dir())):
            self.bundled[scenario.id] = (scenario, file)
            self.stems[stem] = scenario.id

    def ids(self) -> list[str]:
        """Every scenario id the server offers, the bundled ones first."""
        return list(self.bundled) + [uid for uid, _ in self.store.uploads()]

    def get(self, ref: Any) -> tuple[Scenario, str]:
        """The scenario `ref` names and the file name to show; BadRequest if there is none."""
        if not isinstance(ref, str) or not ref or len(ref) > 200:
            raise BadRequest("scenario must be the id of a scenario (a string)")
        ref = self.stems.get(ref, ref)
        if ref in self.bundled:
            return self.bundled[ref]
        with self.lock:
            if ref in self.uploaded:
                return self.uploaded[ref]
        found = self.store.upload(ref) if ref.startswith("upload-") else None
        if found is None:
            raise BadRequest(f"unknown scenario '{ref}'{did_you_mean(ref, self.ids())}")
        name, text = found
        entry = (load_text(text, name), name)
        with self.lock:
            self.uploaded[ref] = entry
        return entry

    def upload(self, name: Any, text: Any) -> str:
        """Validate an uploaded scenario with the same loader as the command line and keep it;
        ScenarioError (file:line:col lines) if it is refused."""
        if not isinstance(text, str) or not text.strip():
            raise BadRequest("text must be the scenario's YAML text")
        if len(text.encode("utf-8", "replace")) > MAX_UPLOAD:
            raise BadRequest(f"a scenario is at most {MAX_UPLOAD // 1024} KiB")
        name = _file_name(name)
        scenario = load_text(text, name)
        uid = self.store.add_upload(name, text)
        with self.lock:
            self.uploaded[uid] = (scenario, name)
        return uid

    def model(self, ref: str, overrides: dict[str, float]) -> Model:
        """The prepared model of a scenario with overrides (cached: strategic solves are slow)."""
        scenario, _ = self.get(ref)
        key = (scenario.id if ref in self.bundled else ref, tuple(sorted(overrides.items())))
        with self.lock:
            if key in self.models:
                self.models.move_to_end(key)
                return self.models[key]
        model = prepare_model(scenario, overrides)
        with self.lock:
            self.models[key] = model
            while len(self.models) > MODEL_CACHE:
                self.models.popitem(last=False)
        return model


@functools.lru_cache(maxsize=4)
def _bundled(folder: str) -> tuple[tuple[str, Scenario, str], ...]:
    """The valid scenarios of the bundled folder, read once per process, each with the name
    the command line takes for it from any installation (its file stem)."""
    found = []
    for path in sorted(Path(folder).glob("*.yaml")):
        try:
            found.append((path.stem, load_scenario(path), path.stem))
        except ScenarioError:
            continue
    return tuple(found)


def _file_name(name: Any) -> str:
    """The name an upload is reported under: its base name, printable, short."""
    if not isinstance(name, str) or not name.strip():
        return "upload.yaml"
    base = name.replace("\\", "/").rsplit("/", 1)[-1]
    clean = "".join(c for c in base if c.isprintable() and c not in "<>\"'`")[:80]
    return clean or "upload.yaml"


def overrides_of(scenario: Scenario, values: Any) -> dict[str, float]:
    """`set` of a request as checked {NAME: VALUE} (BadRequest naming the problem)."""
    if values is None:
        return {}
    if not isinstance(values, dict):
        raise BadRequest("set must be an object {NAME: VALUE}")
    out: dict[str, float] = {}
    for name, value in values.items():
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise BadRequest(f"set: {name} must be a number, got {value!r:.40}")
        if name not in scenario.parameters:
            raise BadRequest(
                f"set: unknown parameter '{name:.60}'{did_you_mean(name, scenario.parameters)}"
            )
        out[name] = float(value)
    try:
        resolve_parameters(scenario, out)
    except ValueError as exc:
        raise BadRequest(str(exc)) from None
    return out


def describe(scenario: Scenario, file: str, uploaded: bool = False) -> dict[str, Any]:
    """What the pages show of a scenario: its text, parameters, actors and citations."""
    from sim.format.bibliography import lookup

    sources = []
    for source in scenario.sources:
        entry = lookup(source)
        sources.append(entry.citation() if entry is not None else source)
    return {
        "id": scenario.id,
        "file": file,
        "uploaded": uploaded,
        "title": scenario.title,
        "summary": scenario.summary,
        "teaching_notes": scenario.teaching_notes,
        "sources": sources,
        "horizon": scenario.horizon,
        "step_label": scenario.step_label,
        "ladder": list(scenario.ladder),
        "parameters": parameters(scenario),
        "actors": [
            {
                "id": a,
                "label": info.label,
                "playable": a in scenario.turn_order and bool(scenario.options.get(a)),
                "alternatives": list(scenario.alternatives.get(a, {})),
            }
            for a, info in scenario.actors.items()
        ],
        "outcomes": [
            {"id": oid, "label": scenario.outcome_label(oid)} for oid in scenario.outcome_ids
        ],
    }


def parameters(scenario: Scenario) -> list[dict[str, Any]]:
    """Each parameter with its value, range and doc (DESIGN.md 8.4)."""
    return [
        {
            "name": name,
            "label": p.label or name,
            "value": p.value,
            "min": p.min,
            "max": p.max,
            "doc": p.doc,
        }
        for name, p in scenario.parameters.items()
    ]

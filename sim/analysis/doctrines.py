"""Doctrines by name: a scenario's `alternatives` played in place of actors' policies, as
`check --doctrine` and `fit --doctrine` ask (an `as_it_happened` doctrine, say)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sim.errors import did_you_mean
from sim.format.scenario import Scenario


def alternative_policies(scenario: Scenario, doctrines: Mapping[str, str]) -> dict[str, Any]:
    """{actor: policy} for {actor: alternative name}; ValueError naming the nearest choices."""
    policies = {}
    for actor, name in doctrines.items():
        if actor not in scenario.actors:
            raise ValueError(
                f"--doctrine: unknown actor '{actor}'{did_you_mean(actor, list(scenario.actors))}"
            )
        named = scenario.alternatives.get(actor, {})
        if name not in named:
            choices = ", ".join(named) or "none"
            raise ValueError(
                f"--doctrine: {actor} has no alternative '{name}'{did_you_mean(name, list(named))}"
                f" (the scenario's alternatives for {actor}: {choices})"
            )
        policies[actor] = named[name]
    return policies

"""The end of a class game: the class's outcomes beside the Monte Carlo distribution of the
scenario's own doctrines, actor by actor, with the class's seed and parameters."""

from __future__ import annotations

from typing import Any

from sim.format.scenario import Scenario
from sim.web.commands import run_command
from sim.web.store import ClassRow, GameRow


def class_debrief(
    scenario: Scenario, file: str, klass: ClassRow, games: list[GameRow], runs: int
) -> dict[str, Any]:
    """For each actor the teams played: how the class's crises ended, and how they end under
    each of the scenario's alternative policies for that actor (`compare --policies`), or under
    the scenario's own policy where it names none (`run`)."""
    from sim.api import compare, run

    by_actor: dict[str, list[GameRow]] = {}
    for row in games:
        by_actor.setdefault(row.actor, []).append(row)
    actors = []
    for actor, played in by_actor.items():
        finished = [g for g in played if g.status == "finished" and g.summary]
        counts = {oid: 0 for oid in scenario.outcome_ids}
        for g in finished:
            counts[g.summary["outcome"]] += 1
        doctrines: dict[str, Any] = {}
        if scenario.alternatives.get(actor):
            compared = compare(
                scenario, actor, "policies", runs=runs, seed=klass.seed, set=klass.overrides
            )
            for column in compared.columns:
                doctrines[column.name] = _shares(column.results.to_dict())
        else:
            result = run(scenario, runs=runs, seed=klass.seed, set=klass.overrides)
            doctrines["the scenario's policy"] = _shares(result.to_dict())
        actors.append(
            {
                "actor": actor,
                "actor_label": scenario.actors[actor].label,
                "teams": [
                    {"team": g.team, "status": g.status, "result": g.summary} for g in played
                ],
                "finished": len(finished),
                "class": {
                    oid: {"count": n, "p": n / len(finished) if finished else None}
                    for oid, n in counts.items()
                },
                "doctrines": doctrines,
            }
        )
    return {
        "code": klass.code,
        "scenario": scenario.id,
        "title": scenario.title,
        "runs": runs,
        "seed": klass.seed,
        "outcomes": [{"id": o, "label": scenario.outcome_label(o)} for o in scenario.outcome_ids],
        "actors": actors,
        "command": run_command(file, klass.seed, runs, klass.overrides),
    }


def _shares(result: dict[str, Any]) -> dict[str, Any]:
    """Each outcome's probability and 95% interval, from a result of DESIGN.md section 6."""
    return {oid: {"p": o["p"], "ci95": o["ci95"]} for oid, o in result["outcomes"].items()}

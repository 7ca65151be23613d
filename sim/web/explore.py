"""The explorer's API: scenarios, Monte Carlo runs, exact answers, doctrines compared.

`POST /api/run` answers with exactly the object `escalation run ID --json` prints for the same
runs, seed and `--set` values (DESIGN.md 8.4): it calls the same `sim.api.run`. `POST /api/explore`
answers with that object and, from the same `Results`, the rung occupancy step by step (the
numbers of the `rung_occupancy.png` chart of `escalation run`), which the run's JSON lacks.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from sim.web.catalog import Catalog, describe, overrides_of, parameters
from sim.web.errors import BadRequest
from sim.web.requests import json_body, whole

if TYPE_CHECKING:
    from sim.results import Results

MAX_RUNS = 200_000
"""Most runs one request may ask for (10,000 take a tenth of a second on a laptop)."""
MAX_COMPARE_RUNS = 50_000
MAX_SEED = 2**63 - 1


def _catalog(request: Request) -> Catalog:
    return request.app.state.catalog


async def list_scenarios(request: Request) -> JSONResponse:
    """The bundled and uploaded scenarios, with their parameters."""
    catalog = _catalog(request)
    out = []
    for sid in catalog.ids():
        scenario, file = catalog.get(sid)
        out.append(
            {
                "id": sid,
                "title": scenario.title,
                "file": file,
                "uploaded": sid.startswith("upload-"),
                "parameters": parameters(scenario),
            }
        )
    return JSONResponse(out)


async def one_scenario(request: Request) -> JSONResponse:
    """A scenario's page data: summary, notes, sources, parameters, actors, outcomes."""
    sid = request.path_params["sid"]
    scenario, file = _catalog(request).get(sid)
    return JSONResponse(describe(scenario, file, sid.startswith("upload-")))


async def upload(request: Request) -> JSONResponse:
    """A scenario's YAML text, validated by the command line's loader and kept in the database."""
    body = await json_body(request)
    catalog = _catalog(request)
    uid = await run_in_threadpool(catalog.upload, body.get("name"), body.get("text"))
    scenario, file = catalog.get(uid)
    return JSONResponse({"id": uid, "title": scenario.title, "file": file})


def _common(request: Request, body: dict):
    scenario, file = _catalog(request).get(body.get("scenario"))
    return scenario, overrides_of(scenario, body.get("set"))


async def _run_results(request: Request) -> Results:
    """The `Results` of `sim.api.run` for the body's scenario, runs, seed and `set`."""
    from sim.api import run as run_api

    body = await json_body(request)
    scenario, overrides = _common(request, body)
    runs = whole(body, "runs", 10_000, 1, MAX_RUNS)
    seed = whole(body, "seed", 1, 0, MAX_SEED)
    return await run_in_threadpool(run_api, scenario, runs, seed, 1, overrides)


async def run(request: Request) -> JSONResponse:
    """`escalation run ID --json --runs N --seed S --set ...`, as JSON."""
    results = await _run_results(request)
    return JSONResponse(results.to_dict())


def occupancy(results: Results) -> dict[str, Any]:
    """Where the runs are at the end of each step, as shares of all runs: `shares[s][r]` still
    going at rung r, `ended[s]` already ended (by outcome in `ended_by_outcome`), so each step's
    shares and `ended` add up to 1: `Results.occupancy_shares`, the numbers of
    `sim.outputs.charts.occupancy_chart`."""
    from sim.outputs.palette import outcome_colours

    m = results.model
    active, ended = results.occupancy_shares()
    return {
        "steps": list(range(m.horizon + 1)),
        "rungs": list(m.scenario.ladder),
        "shares": active.tolist(),
        "ended": ended.sum(axis=1).tolist(),
        "ended_by_outcome": {o: ended[:, k].tolist() for k, o in enumerate(m.outcome_ids)},
        "colours": outcome_colours(m.scenario, m.outcome_ids),
    }


async def explore(request: Request) -> JSONResponse:
    """The explorer's numbers from one Monte Carlo run: `{"run": <the JSON of /api/run>,
    "occupancy": occupancy(results)}`."""
    results = await _run_results(request)
    return JSONResponse({"run": results.to_dict(), "occupancy": occupancy(results)})


async def exact(request: Request) -> JSONResponse:
    """`escalation exact ID --json`; 400 naming the cause where the scenario is not finite (200
    with `{"exact": null, "error": ...}` when the body says `"probe": true`)."""
    from sim.api import exact as exact_api
    from sim.errors import ScenarioError

    body = await json_body(request)
    scenario, overrides = _common(request, body)
    try:
        results = await run_in_threadpool(exact_api, scenario, None, overrides)
    except ScenarioError as exc:
        if body.get("probe") is not True:
            raise
        # the explorer asks whether an answer exists: no failed request in the browser's console
        return JSONResponse(
            {"exact": None, "error": str(exc).replace(_bundled_dir(), "scenarios/")}
        )
    return JSONResponse(results.to_dict())


def _bundled_dir() -> str:
    import os

    from sim.format.library import bundled_scenarios_dir

    return str(bundled_scenarios_dir()) + os.sep


async def compare(request: Request) -> JSONResponse:
    """`escalation compare ID --actor A --policies --json`: the doctrines side by side."""
    from sim.api import compare as compare_api

    body = await json_body(request)
    scenario, overrides = _common(request, body)
    actor = body.get("actor")
    if not isinstance(actor, str):
        raise BadRequest("actor must be an actor's id")
    mode = body.get("mode", "policies")
    if mode not in ("policies", "first-move"):
        raise BadRequest("mode must be 'policies' or 'first-move'")
    runs = whole(body, "runs", 10_000, 1, MAX_COMPARE_RUNS)
    seed = whole(body, "seed", 1, 0, MAX_SEED)
    result = await run_in_threadpool(
        lambda: compare_api(scenario, actor, mode, runs=runs, seed=seed, set=overrides)
    )
    return JSONResponse(result.to_json())


routes = [
    Route("/api/scenarios", list_scenarios, methods=["GET"]),
    Route("/api/scenarios", upload, methods=["POST"]),
    Route("/api/scenarios/{sid}", one_scenario, methods=["GET"]),
    Route("/api/run", run, methods=["POST"]),
    Route("/api/explore", explore, methods=["POST"]),
    Route("/api/exact", exact, methods=["POST"]),
    Route("/api/compare", compare, methods=["POST"]),
]

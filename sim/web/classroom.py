"""The game's API: one student's game, and a class of teams with its live dashboard.

Every route about a game or a class checks a token: the game's own (`Authorization: Bearer`,
or `?token=` for the event stream), or the instructor's for the dashboard and the debrief.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from sim.web.catalog import overrides_of
from sim.web.errors import BadRequest, NotFound
from sim.web.hub import Hub, check_seed, playable
from sim.web.requests import json_body, token_of

MAX_TIMER = 3600
POLL = 0.25
"""Seconds between two looks at a class for the dashboard's event stream."""
MIN_INTERVAL = 0.5
"""Seconds between two dashboards sent: live, without recomputing it at every move of 60 teams."""
HEARTBEAT = 15.0


def _hub(request: Request) -> Hub:
    return request.app.state.hub


def join_url(request: Request, code: str) -> str:
    """The address a team opens: on the classroom network with --lan, else this server's."""
    base = request.app.state.public_url or str(request.base_url)
    return base.rstrip("/") + f"/team?code={code}"


# --- one game --------------------------------------------------------------------------------


async def new_game(request: Request) -> JSONResponse:
    """Start a game as one actor: its id, its token and the first situation."""
    body = await json_body(request)
    hub = _hub(request)
    scenario, _ = hub.catalog.get(body.get("scenario"))
    overrides = overrides_of(scenario, body.get("set"))
    seed = check_seed(body.get("seed"))
    gid, token = hub.new_game(body.get("scenario"), body.get("actor"), overrides, seed)
    view = await run_in_threadpool(hub.view, hub.row(gid, token))
    return JSONResponse({**view, "token": token})


async def game_view(request: Request) -> JSONResponse:
    """The game as its student sees it (its own token only)."""
    hub = _hub(request)
    row = hub.row(request.path_params["gid"], token_of(request))
    return JSONResponse(await run_in_threadpool(hub.view, row))


async def game_move(request: Request) -> JSONResponse:
    """Play the student's move: `{"turn": T, "option": N}`."""
    hub = _hub(request)
    row = hub.row(request.path_params["gid"], token_of(request))
    body = await json_body(request)
    view = await run_in_threadpool(hub.move, row, body.get("turn"), body.get("option"))
    return JSONResponse(view)


# --- a class ---------------------------------------------------------------------------------


async def new_class(request: Request) -> JSONResponse:
    """The instructor opens a session: its join code and the instructor's token."""
    body = await json_body(request)
    hub = _hub(request)
    ref = body.get("scenario")
    scenario, _ = hub.catalog.get(ref)
    overrides = overrides_of(scenario, body.get("set"))
    seed = check_seed(body.get("seed"))
    timer = body.get("timer")
    if timer is not None and (
        isinstance(timer, bool)
        or not isinstance(timer, (int, float))
        or not 5 <= timer <= MAX_TIMER
    ):
        raise BadRequest(f"timer must be a number of seconds from 5 to {MAX_TIMER}, or null")
    code, token = hub.new_class(ref, overrides, seed, timer)
    return JSONResponse({"code": code, "token": token, "join_url": join_url(request, code)})


async def class_info(request: Request) -> JSONResponse:
    """What a team sees before joining: the scenario and the actors it can play."""
    hub = _hub(request)
    klass = hub.klass(request.path_params["code"])
    scenario, _ = hub.catalog.get(klass.scenario)
    return JSONResponse(
        {
            "code": klass.code,
            "scenario": scenario.id,
            "title": scenario.title,
            "summary": scenario.summary,
            "timer": klass.timer,
            "join_url": join_url(request, klass.code),
            "actors": [{"id": a, "label": scenario.actors[a].label} for a in playable(scenario)],
        }
    )


async def join(request: Request) -> JSONResponse:
    """A team joins the class: its game, its token and its first situation."""
    hub = _hub(request)
    klass = hub.klass(request.path_params["code"])
    body = await json_body(request)
    gid, token = await run_in_threadpool(hub.join, klass, body.get("team"), body.get("actor"))
    view = await run_in_threadpool(hub.view, hub.row(gid, token))
    return JSONResponse({**view, "token": token})


async def qr(request: Request) -> Response:
    """The join page's address as a QR code (SVG), for the projector."""
    import io

    import segno

    hub = _hub(request)
    klass = hub.klass(request.path_params["code"])
    url = join_url(request, klass.code)
    out = io.BytesIO()
    segno.make(url, error="m").save(out, kind="svg", scale=6, border=2, xmldecl=False)
    return Response(out.getvalue(), media_type="image/svg+xml")


async def dashboard(request: Request) -> JSONResponse:
    """Every team's crisis, for the instructor's token only."""
    hub = _hub(request)
    klass = hub.instructor(request.path_params["code"], token_of(request))
    return JSONResponse(await run_in_threadpool(hub.dashboard, klass))


async def team_story(request: Request) -> JSONResponse:
    """One team's game as the team sees it, for its class's instructor only."""
    hub = _hub(request)
    klass = hub.instructor(request.path_params["code"], token_of(request))
    row = hub.store.game(str(request.path_params["gid"])[:40])
    if row is None or row.class_code != klass.code:
        raise NotFound("no such team in this class")
    return JSONResponse(await run_in_threadpool(hub.view, row))


async def debrief(request: Request) -> JSONResponse:
    """The class's outcomes beside the doctrines, for the instructor's token only."""
    hub = _hub(request)
    klass = hub.instructor(request.path_params["code"], token_of(request))
    return JSONResponse(await run_in_threadpool(hub.debrief, klass))


async def events(request: Request) -> StreamingResponse:
    """Server-sent events: the dashboard each time a team moves (and at the turn timer)."""
    hub = _hub(request)
    klass = hub.instructor(request.path_params["code"], token_of(request))

    async def stream() -> AsyncIterator[str]:
        """The dashboard each time it changes (at most every MIN_INTERVAL), and keep-alives."""
        seen, sent = -1, 0.0
        while not hub.closing and not await request.is_disconnected():
            now = time.monotonic()
            timed = klass.timer is not None and now - sent > 1.0  # the timer runs on its own
            if (hub.class_version(klass.code) != seen or timed) and now - sent >= MIN_INTERVAL:
                board = await run_in_threadpool(hub.dashboard, klass)
                seen, sent = board["version"], time.monotonic()
                yield f"event: dashboard\ndata: {json.dumps(board)}\n\n"
            elif now - sent > HEARTBEAT:
                sent = now
                yield ": keep-alive\n\n"
            await asyncio.sleep(POLL)

    headers = {"Cache-Control": "no-store", "X-Accel-Buffering": "no"}
    return StreamingResponse(stream(), media_type="text/event-stream", headers=headers)


routes = [
    Route("/api/games", new_game, methods=["POST"]),
    Route("/api/games/{gid}", game_view, methods=["GET"]),
    Route("/api/games/{gid}/move", game_move, methods=["POST"]),
    Route("/api/classes", new_class, methods=["POST"]),
    Route("/api/classes/{code}", class_info, methods=["GET"]),
    Route("/api/classes/{code}/join", join, methods=["POST"]),
    Route("/api/classes/{code}/qr.svg", qr, methods=["GET"]),
    Route("/api/classes/{code}/dashboard", dashboard, methods=["GET"]),
    Route("/api/classes/{code}/debrief", debrief, methods=["GET"]),
    Route("/api/classes/{code}/teams/{gid}", team_story, methods=["GET"]),
    Route("/api/classes/{code}/events", events, methods=["GET"]),
]

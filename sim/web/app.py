"""The ASGI application of `escalation serve`: pages, static assets and the JSON API."""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from sim.errors import ScenarioError
from sim.format.library import bundled_scenarios_dir
from sim.web import classroom, explore
from sim.web.catalog import Catalog
from sim.web.errors import BadRequest
from sim.web.hub import Hub
from sim.web.store import Store

STATIC = Path(__file__).parent / "static"
PAGES = ("index", "scenario", "play", "class", "team")
KEEP_ALIVE_SECONDS = 75
"""How long the server keeps an idle connection open (uvicorn's default is 5 s): longer than a
client keeps one (httpx 5 s; browsers retry on their own), so that the client, not the server,
closes it. With both at 5 s, a team that thought about 5 s sent its move on a connection the
server was closing that moment, and got "connection reset" (tests/web/test_load.py)."""
log = logging.getLogger("escalation.web")

SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
        "connect-src 'self'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}


def page(name: str) -> Callable[[Request], Awaitable[Response]]:
    """A page: one HTML file of sim/web/static; the script it loads reads the query string."""

    async def endpoint(request: Request) -> Response:
        """Serve the page with the security headers."""
        return FileResponse(STATIC / f"{name}.html", headers=SECURITY_HEADERS)

    return endpoint


async def bad_request(request: Request, exc: Exception) -> JSONResponse:
    """A refused request: its status (400, 403, 404, 409) and its message."""
    status = getattr(exc, "status", 400)
    return JSONResponse({"error": str(exc)}, status_code=status)


async def scenario_error(request: Request, exc: Exception) -> JSONResponse:
    """A scenario the loader refused: one file:line:col line per problem."""
    assert isinstance(exc, ScenarioError)
    bundled = str(bundled_scenarios_dir()) + os.sep
    problems = [str(p).replace(bundled, "scenarios/") for p in exc.problems]
    return JSONResponse({"error": "\n".join(problems), "problems": problems}, status_code=400)


async def value_error(request: Request, exc: Exception) -> JSONResponse:
    """A bad argument caught by sim.api: status 400 with its message."""
    return JSONResponse({"error": str(exc) or type(exc).__name__}, status_code=400)


async def http_error(request: Request, exc: Exception) -> JSONResponse:
    """Starlette's own errors (unknown route, wrong method), as JSON like every other."""
    assert isinstance(exc, HTTPException)
    return JSONResponse({"error": exc.detail}, status_code=exc.status_code)


async def internal_error(request: Request, exc: Exception) -> JSONResponse:
    """Anything unexpected: logged on the server, one line to the client, no traceback."""
    log.error("internal error on %s %s", request.method, request.url.path, exc_info=exc)
    return JSONResponse({"error": f"internal error ({type(exc).__name__})"}, status_code=500)


def create_app(
    db: str | Path = ":memory:",
    debrief_runs: int = 10_000,
    public_url: str | None = None,
    hosts: list[str] | None = None,
) -> Starlette:
    """The application with its database at `db` (a file path keeps games across restarts);
    `public_url` is the address the class's laptops use (`--lan`), for the join link and QR;
    `hosts`, the host names requests may name (others are refused: DNS rebinding)."""
    store = Store(db)
    catalog = Catalog(store)
    hub = Hub(store, catalog, compare_runs=debrief_runs)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        """At shutdown: stop the games' threads, then close the database."""
        yield
        hub.close()
        store.close()

    routes = [
        Route("/", page("index")),
        *(Route(f"/{name}", page(name)) for name in PAGES[1:]),
        *explore.routes,
        *classroom.routes,
        Mount("/static", StaticFiles(directory=STATIC), name="static"),
    ]
    middleware = []
    if hosts is not None:
        middleware.append(Middleware(TrustedHostMiddleware, allowed_hosts=hosts))
    app = Starlette(
        routes=routes,
        middleware=middleware,
        lifespan=lifespan,
        exception_handlers={
            BadRequest: bad_request,
            ScenarioError: scenario_error,
            ValueError: value_error,
            HTTPException: http_error,
            Exception: internal_error,
        },
    )
    app.state.store, app.state.catalog, app.state.hub = store, catalog, hub
    app.state.public_url = public_url
    return app

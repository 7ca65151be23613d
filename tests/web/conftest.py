"""Fixtures of the web tests: the ASGI test client, and a real server on a loopback port."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest


def _missing() -> list[str]:
    """The packages of the web tests that are not installed."""
    missing = []
    for name in ("starlette", "uvicorn", "segno", "httpx"):
        try:
            __import__(name)
        except ImportError:
            missing.append(name)
    return missing


MISSING = _missing()
HERE = Path(__file__).resolve().parent


def pytest_collection_modifyitems(config, items):
    """Without the [web] extra (and httpx), every web test is skipped, saying what is missing."""
    if not MISSING:
        return
    skip = pytest.mark.skip(reason=f"needs the [web] extra and httpx: {', '.join(MISSING)}")
    for item in items:
        if HERE in Path(str(item.fspath)).resolve().parents:
            item.add_marker(skip)


def pytest_configure(config):
    """Starlette 1.x prefers httpx2 for its test client; httpx still works."""
    config.addinivalue_line("filterwarnings", "ignore:Using `httpx` with `starlette.testclient`")


ROOT = Path(__file__).resolve().parents[2]
DEBRIEF_RUNS = 2000
"""Runs of the debrief's comparison in the tests (the server's default is 10,000)."""


@pytest.fixture
def client(tmp_path):
    from starlette.testclient import TestClient

    from sim.web.app import create_app

    with TestClient(create_app(tmp_path / "web.sqlite", DEBRIEF_RUNS)) as c:
        yield c


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """uvicorn serving the app in a thread, on a free loopback port."""

    def __init__(self, db: Path):
        import uvicorn

        from sim.web.app import KEEP_ALIVE_SECONDS, create_app

        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.app = create_app(db, DEBRIEF_RUNS)
        config = uvicorn.Config(
            self.app,
            host="127.0.0.1",
            port=self.port,
            log_level="warning",
            access_log=False,
            timeout_graceful_shutdown=2,
            timeout_keep_alive=KEEP_ALIVE_SECONDS,
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> Server:
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("the server did not start")
            time.sleep(0.02)
        return self

    def __exit__(self, *exc) -> None:
        self.app.state.hub.closing = True  # the event streams end, as in `escalation serve`
        self.server.should_exit = True
        self.thread.join(15)
        assert not self.thread.is_alive(), "the server did not stop"


@pytest.fixture(scope="module")
def live_server(tmp_path_factory) -> Iterator[Server]:
    with Server(tmp_path_factory.mktemp("web") / "web.sqlite") as server:
        yield server


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def play_to_end(client, game: dict, pick=None) -> dict:
    """Make moves (the first available option, or `pick(game)`) until the game ends."""
    while game["status"] == "waiting":
        option = pick(game) if pick else next(o["n"] for o in game["options"] if o["available"])
        r = client.post(
            f"/api/games/{game['id']}/move",
            json={"turn": game["turn"], "option": option},
            headers=auth(game["token"]),
        )
        assert r.status_code == 200, r.text
        game = {**r.json(), "token": game["token"]}
    for _ in range(600):  # the debrief is simulated after the last move is answered
        if game["status"] != "debriefing":
            break
        time.sleep(0.05)
        r = client.get(f"/api/games/{game['id']}", headers=auth(game["token"]))
        game = {**r.json(), "token": game["token"]}
    return game

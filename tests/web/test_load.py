"""Load on loopback: 60 students in one class game against `escalation serve` in a subprocess.

No move may be lost, whatever the machine; the latency bar (p95 under 200 ms) is a speed target,
checked only with ESCALATION_TIMING=1 (the engineering standards keep timing out of the default
suite: on a slower or loaded host the same code measured p95 from 171 to 281 ms)."""

from __future__ import annotations

import json
import os
import random
import re
import signal
import sqlite3
import statistics
import subprocess
import sys
import threading
import time

import pytest

from tests.web.conftest import ROOT

STUDENTS = 60
MOVES = 4
THINK = (2.0, 6.0)
"""Seconds a team thinks before each move (uniform; a class thinks longer): 60 teams then ask
for about 15 moves a second, each of which renders the terminal's tables of `play`."""


@pytest.fixture
def served(tmp_path):
    """`escalation serve` on a free port, stopped with Ctrl-C (SIGINT) at the end."""
    db = tmp_path / "load.sqlite"
    proc = subprocess.Popen(
        [sys.executable, "-m", "sim", "serve", "--port", "0", "--no-browser", "--db", str(db)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        line = proc.stdout.readline()
        found = re.search(r"http://127\.0\.0\.1:\d+", line)
        assert found, line + proc.stderr.read()
        yield found.group(0), db, proc
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
                raise


def test_sixty_students_move_fast_and_no_move_is_lost(served):
    url, db, proc = served
    with client(url) as c:
        klass = c.post("/api/classes", json={"scenario": "camp-taji-2020", "seed": 3}).json()
    code, token = klass["code"], klass["token"]
    latencies: list[float] = []
    made: dict[str, int] = {}
    failures: list[str] = []
    lock = threading.Lock()
    start = threading.Barrier(STUDENTS)

    def student(i: int) -> None:
        rng = random.Random(i)
        with client(url) as c:
            game = c.post(f"/api/classes/{code}/join", json={"team": f"team {i}"}).json()
            gid, headers = game["id"], {"Authorization": f"Bearer {game['token']}"}
            start.wait(timeout=60)
            moves = 0
            while moves < MOVES and game["status"] == "waiting":
                time.sleep(rng.uniform(*THINK))
                options = [o["n"] for o in game["options"] if o["available"]]
                began = time.perf_counter()
                r = c.post(
                    f"/api/games/{gid}/move",
                    json={"turn": game["turn"], "option": rng.choice(options)},
                    headers=headers,
                )
                took = time.perf_counter() - began
                if r.status_code != 200:
                    with lock:
                        failures.append(f"team {i}: {r.status_code} {r.text[:200]}")
                    return
                game = r.json()
                moves += 1
                with lock:
                    latencies.append(took)
            with lock:
                made[gid] = moves

    boards: list[int] = []

    def instructor() -> None:  # the dashboard stays open, through the server's shutdown
        with (
            client(url) as c,
            c.stream(
                "GET", f"/api/classes/{code}/events", params={"token": token}, timeout=None
            ) as events,
        ):
            for line in events.iter_lines():
                if line.startswith("data: "):
                    boards.append(len(json.loads(line[6:])["teams"]))

    watching = threading.Thread(target=instructor, daemon=True)
    watching.start()
    threads = [threading.Thread(target=student, args=(i,)) for i in range(STUDENTS)]
    began = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    wall = time.perf_counter() - began
    assert not failures, failures[:5]
    assert len(made) == STUDENTS
    p50 = statistics.median(latencies)
    p95 = statistics.quantiles(latencies, n=20)[-1]
    print(
        f"\n{len(latencies)} moves by {STUDENTS} students in {wall:.1f} s: "
        f"p50 {1000 * p50:.1f} ms, p95 {1000 * p95:.1f} ms, max {1000 * max(latencies):.1f} ms"
    )
    if os.environ.get("ESCALATION_TIMING") == "1":  # a speed target, not a property: opt-in
        assert p95 < 0.200
    with client(url) as c:
        board = c.get(
            f"/api/classes/{code}/dashboard", headers={"Authorization": f"Bearer {token}"}
        )
    assert len(board.json()["teams"]) == STUDENTS
    stored = sqlite3.connect(db).execute("SELECT id, choices FROM games").fetchall()
    assert {gid: len(json.loads(choices)) for gid, choices in stored} == made  # no lost move
    assert boards and boards[-1] == STUDENTS  # the dashboard followed every team live
    proc.send_signal(signal.SIGINT)
    began = time.perf_counter()
    assert proc.wait(timeout=20) in (0, 130)  # every game thread stopped: the process ended
    stopped = time.perf_counter() - began
    print(f"{len(boards)} dashboards streamed; the server stopped {stopped:.1f} s after Ctrl-C")
    watching.join(10)
    assert not watching.is_alive()


def test_an_idle_connection_outlives_a_teams_think_time(served):
    """A keep-alive connection idle for longer than a team thinks (THINK) still takes the next
    request: the server closes idle connections after KEEP_ALIVE_SECONDS, not uvicorn's 5 s, so
    a move is never sent on a connection the server is closing (a 'connection reset')."""
    import socket
    from urllib.parse import urlsplit

    from sim.web.app import KEEP_ALIVE_SECONDS

    assert THINK[1] < KEEP_ALIVE_SECONDS
    url = urlsplit(served[0])
    request = f"GET /api/scenarios HTTP/1.1\r\nHost: {url.netloc}\r\n\r\n".encode()
    with socket.create_connection((url.hostname, url.port), timeout=10) as sock:
        for pause in (0.0, THINK[1] + 0.5):
            time.sleep(pause)
            sock.sendall(request)
            head = sock.recv(65536)
            assert head.startswith(b"HTTP/1.1 200"), head[:200]
            length = int(re.search(rb"content-length: (\d+)", head, re.I).group(1))
            body = head.split(b"\r\n\r\n", 1)[1]
            while len(body) < length:
                body += sock.recv(65536)


def client(url: str):
    """An HTTP client that sends each request at once (TCP_NODELAY, as browsers do)."""
    import socket

    import httpx

    nodelay = [(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)]
    return httpx.Client(
        base_url=url, timeout=30, transport=httpx.HTTPTransport(socket_options=nodelay)
    )

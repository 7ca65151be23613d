"""Security of `escalation serve` (issue 17 item 6): tokens, bad requests, hostile uploads."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from tests.web.conftest import ROOT, auth

CHICKEN = (ROOT / "scenarios" / "chicken.yaml").read_text()


def two_teams(client):
    klass = client.post("/api/classes", json={"scenario": "chicken", "seed": 1}).json()
    a = client.post(f"/api/classes/{klass['code']}/join", json={"team": "A"}).json()
    b = client.post(f"/api/classes/{klass['code']}/join", json={"team": "B"}).json()
    assert (a["actor"], b["actor"]) == ("us", "iran")
    return klass, a, b


def test_a_team_token_opens_its_own_game_only(client):
    klass, a, b = two_teams(client)
    assert client.get(f"/api/games/{a['id']}", headers=auth(a["token"])).status_code == 200
    for headers in (auth(b["token"]), auth(klass["token"]), {}, auth("x" * 32)):
        r = client.get(f"/api/games/{a['id']}", headers=headers)
        assert r.status_code == 403 and "token" in r.json()["error"]
        assert "transcript" not in r.json()
        move = {"turn": 0, "option": 1}
        r = client.post(f"/api/games/{a['id']}/move", json=move, headers=headers)
        assert r.status_code == 403
    assert client.get(f"/api/games/{a['id']}", params={"token": b["token"]}).status_code == 403
    after = client.get(f"/api/games/{a['id']}", headers=auth(a["token"])).json()
    assert after["turn"] == 0  # no move was made


def test_a_team_token_cannot_read_the_dashboard_or_the_debrief(client):
    klass, a, _ = two_teams(client)
    code = klass["code"]
    for path in ("dashboard", "debrief", "events"):
        r = client.get(f"/api/classes/{code}/{path}", headers=auth(a["token"]))
        assert r.status_code == 403, path
        r = client.get(f"/api/classes/{code}/{path}", params={"token": a["token"]})
        assert r.status_code == 403, path


def test_a_student_sees_only_their_actors_view(client):
    """attribution-2020: Iran's order is hidden from the United States, and so are its moves."""
    r = client.post("/api/games", json={"scenario": "attribution-2020", "actor": "us", "seed": 2})
    assert r.status_code == 200, r.text
    game = r.json()
    assert game["status"] == "waiting"
    text = game["transcript"] + "".join(o["explain"] for o in game["options"])
    assert "unknown to you" in text
    assert "made a move you did not see" in text
    for secret in ("Order an attack", "Restrain its allies", "order_attack", "restrain"):
        assert secret not in text
    iran = client.post("/api/games", json={"scenario": "attribution-2020", "actor": "iran"})
    assert "unknown to you" not in iran.json()["transcript"]


BAD_RUNS = [
    (b"{not json", "not valid JSON"),
    (b"[1, 2]", "JSON object"),
    (b"", "JSON object"),
    (b"\xff\xfe", "not valid JSON"),
    (b'{"scenario": "chicken", "runs": NaN}', "not valid JSON"),
    (b'{"scenario": "chicken", "runs": "100"}', "runs must be"),
    (b'{"scenario": "chicken", "runs": true}', "runs must be"),
    (b'{"scenario": "chicken", "runs": 0}', "runs must be"),
    (b'{"scenario": "chicken", "runs": 10000000}', "runs must be"),
    (b'{"scenario": "chicken", "seed": -1}', "seed must be"),
    (b'{"scenario": "chicken", "seed": 1.5}', "seed must be"),
    (b'{"scenario": 3}', "scenario must be"),
    (b'{"scenario": "nowhere"}', "unknown scenario"),
    (b'{"scenario": "../../etc/passwd"}', "unknown scenario"),
    (b'{"scenario": "/etc/passwd"}', "unknown scenario"),
    (b'{"scenario": "chicken", "set": [1]}', "set must be"),
    (b'{"scenario": "chicken", "set": {"prize": "high"}}', "must be a number"),
    (b'{"scenario": "chicken", "set": {"prise": 1}}', "did you mean 'prize'"),
    (b'{"scenario": "chicken", "set": {"prize": 99}}', "prize"),
    (b'{"scenario": "chicken", "set": {"prize": 1e999}}', "prize"),
    (b"[" * 100_000 + b"]" * 100_000, "JSON"),
]


@pytest.mark.parametrize(("body", "message"), BAD_RUNS)
def test_bad_requests_get_400_with_a_message(client, body, message):
    r = client.post("/api/run", content=body, headers={"content-type": "application/json"})
    assert r.status_code == 400, r.text
    assert message in r.json()["error"]
    assert "Traceback" not in r.text


def test_an_oversized_body_is_refused_before_it_is_read(client):
    big = b'{"scenario": "chicken", "pad": "' + b"x" * (2 * 1024 * 1024) + b'"}'
    r = client.post("/api/run", content=big, headers={"content-type": "application/json"})
    assert r.status_code == 400 and "larger than" in r.json()["error"]

    def chunks():  # no Content-Length: the limit holds while streaming
        yield b'{"pad": "'
        for _ in range(40):
            yield b"x" * 65536
        yield b'"}'

    r = client.post(
        "/api/scenarios", content=chunks(), headers={"content-type": "application/json"}
    )
    assert r.status_code == 400 and "larger than" in r.json()["error"]


@pytest.mark.parametrize(
    ("path", "body", "message"),
    [
        ("/api/games", {"scenario": "chicken", "actor": "nobody"}, "cannot be played"),
        ("/api/games", {"scenario": "chicken", "actor": "us", "seed": "x"}, "seed"),
        ("/api/classes", {"scenario": "chicken", "timer": -3}, "timer"),
        ("/api/classes", {"scenario": "chicken", "timer": "soon"}, "timer"),
        ("/api/compare", {"scenario": "chicken", "actor": "nato"}, "unknown actor"),
        ("/api/compare", {"scenario": "chicken", "actor": "us", "mode": "x"}, "mode"),
        ("/api/scenarios", {"text": 12}, "YAML text"),
        ("/api/scenarios", {"text": "a: [unclosed"}, "upload.yaml:"),
        ("/api/classes/NOPE/join", {"team": "A"}, "no class"),
    ],
)
def test_other_bad_requests_get_4xx_with_a_message(client, path, body, message):
    r = client.post(path, json=body)
    assert 400 <= r.status_code < 500, r.text
    assert message in r.json()["error"]


def test_bad_moves_get_400_and_change_nothing(client):
    game = client.post("/api/games", json={"scenario": "chicken", "actor": "us"}).json()
    url, headers = f"/api/games/{game['id']}/move", auth(game["token"])
    for move in ({"turn": 0, "option": 3}, {"turn": 0, "option": "1"}, {"turn": "0"}, {}):
        r = client.post(url, json=move, headers=headers)
        assert r.status_code == 400 and r.json()["error"]
    assert client.get(f"/api/games/{game['id']}", headers=headers).json()["turn"] == 0
    assert client.get("/api/games/nope", headers=headers).status_code == 404


def test_unknown_routes_and_methods_answer_json(client):
    r = client.get("/api/nothing")
    assert r.status_code == 404 and r.json() == {"error": "Not Found"}
    r = client.get("/api/run")
    assert r.status_code == 405 and r.json()["error"]


def test_an_internal_failure_is_500_with_one_line_and_no_traceback(tmp_path):
    from starlette.testclient import TestClient

    from sim.web.app import create_app

    app = create_app(tmp_path / "x.sqlite")

    def broken(*args):
        raise RuntimeError("disk on fire")

    app.state.catalog.get = broken
    with TestClient(app, raise_server_exceptions=False) as c:
        r = c.post("/api/run", json={"scenario": "chicken"})
    assert r.status_code == 500
    assert r.json() == {"error": "internal error (RuntimeError)"}


HOSTILE = [
    "__import__('os').system('touch PWNED')",
    "().__class__.__bases__[0].__subclasses__()",
    "open('/etc/passwd').read() == 'x'",
    "(lambda: 1)() == 1",
    "us_stance.__class__ == 1",
]


@pytest.mark.parametrize("expression", HOSTILE)
def test_an_upload_with_hostile_expressions_is_refused_like_validate(
    client, tmp_path, monkeypatch, expression
):
    monkeypatch.chdir(tmp_path)
    text = CHICKEN.replace("when: us_stance == 1 and iran_stance == 1", f'when: "{expression}"')
    r = client.post("/api/scenarios", json={"name": "evil.yaml", "text": text})
    assert r.status_code == 400, r.text
    problems = r.json()["problems"]
    assert problems and all(p.startswith("evil.yaml:") for p in problems)
    line = next(i for i, t in enumerate(text.splitlines(), 1) if expression[:12] in t)
    assert any(p.startswith(f"evil.yaml:{line}:") for p in problems)
    assert not (tmp_path / "PWNED").exists()
    names = {s["id"] for s in client.get("/api/scenarios").json()}
    assert not any(n.startswith("upload-") for n in names)
    (tmp_path / "evil.yaml").write_text(text)
    validate = subprocess.run(
        [sys.executable, "-m", "sim", "validate", "evil.yaml"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert validate.returncode == 2
    printed = (validate.stdout + validate.stderr).strip().splitlines()
    assert problems == [line for line in printed if line.startswith("evil.yaml:")]


def test_nothing_reaches_the_file_system_but_the_database(tmp_path, monkeypatch):
    from starlette.testclient import TestClient

    from sim.web.app import create_app

    work, data = tmp_path / "cwd", tmp_path / "data"
    work.mkdir(), data.mkdir()
    monkeypatch.chdir(work)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("MPLCONFIGDIR", str(tmp_path / "mpl"))
    with TestClient(create_app(data / "web.sqlite", 500)) as c:
        text = CHICKEN.replace("id: chicken", "id: mine", 1)
        uid = c.post("/api/scenarios", json={"name": "../../x.yaml", "text": text}).json()["id"]
        c.post("/api/run", json={"scenario": uid, "runs": 100})
        klass = c.post("/api/classes", json={"scenario": uid}).json()
        team = c.post(f"/api/classes/{klass['code']}/join", json={"team": "A"}).json()
        c.post(
            f"/api/games/{team['id']}/move",
            json={"turn": 0, "option": 1},
            headers=auth(team["token"]),
        )
        c.get(f"/api/classes/{klass['code']}/debrief", headers=auth(klass["token"]))
    assert os.listdir(work) == []
    assert not (tmp_path / "home").exists()
    assert set(os.listdir(data)) <= {"web.sqlite", "web.sqlite-wal", "web.sqlite-shm"}


def test_a_body_that_is_not_declared_json_is_refused(client):
    """Another site's page may post a form or text/plain here unasked, never JSON."""
    body = b'{"scenario": "chicken", "runs": 100}'
    for kind in ("text/plain", "application/x-www-form-urlencoded", None):
        headers = {"content-type": kind} if kind else {}
        r = client.post("/api/run", content=body, headers=headers)
        assert r.status_code == 400 and "Content-Type: application/json" in r.json()["error"]
    text = CHICKEN.replace("id: chicken", "id: planted", 1)
    r = client.post(
        "/api/scenarios", content=json.dumps({"text": text}), headers={"content-type": "text/plain"}
    )
    assert r.status_code == 400
    assert not any(s["id"].startswith("upload-") for s in client.get("/api/scenarios").json())


def test_requests_naming_another_host_are_refused(tmp_path):
    """DNS rebinding: a page of evil.example whose name now points at 127.0.0.1."""
    from starlette.testclient import TestClient

    from sim.cli.serve import allowed_hosts
    from sim.web.app import create_app

    app = create_app(tmp_path / "x.sqlite", hosts=allowed_hosts("127.0.0.1"))
    for host, status in (("evil.example", 400), ("127.0.0.1", 200), ("localhost", 200)):
        c = TestClient(app, base_url=f"http://{host}:8000")  # no lifespan: one app, 3 hosts
        assert c.get("/api/scenarios").status_code == status, host
    assert allowed_hosts("0.0.0.0") == ["*"]  # --lan: any address of this machine


def test_the_instructor_reads_the_stories_of_its_own_class_only(client):
    klass, a, _ = two_teams(client)
    other = client.post("/api/classes", json={"scenario": "chicken"}).json()
    solo = client.post("/api/games", json={"scenario": "chicken", "actor": "us"}).json()
    url = f"/api/classes/{klass['code']}/teams"
    r = client.get(f"{url}/{a['id']}", headers=auth(klass["token"]))
    assert r.status_code == 200 and "You play United States" in r.json()["transcript"]
    assert client.get(f"{url}/{a['id']}", headers=auth(other["token"])).status_code == 403
    assert client.get(f"{url}/{a['id']}", headers=auth(a["token"])).status_code == 403
    assert client.get(f"{url}/{solo['id']}", headers=auth(klass["token"])).status_code == 404
    elsewhere = f"/api/classes/{other['code']}/teams/{a['id']}"
    assert client.get(elsewhere, headers=auth(other["token"])).status_code == 404

"""The JSON API of `escalation serve` (DESIGN.md 8.4), with the ASGI test client."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from tests.web.conftest import ROOT, auth, play_to_end


def cli_json(*argv: str) -> dict:
    """What `escalation ARGV --json` prints, parsed."""
    out = subprocess.run(
        [sys.executable, "-m", "sim", *argv, "--json"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return json.loads(out.stdout)


def canonical(obj: dict) -> str:
    """The numbers as text: equal only if every float has the same shortest repr."""
    return json.dumps(obj, sort_keys=True)


def test_scenarios_list_parameters_with_value_range_and_doc(client):
    r = client.get("/api/scenarios")
    assert r.status_code == 200
    by_id = {s["id"]: s for s in r.json()}
    assert {"chicken", "camp-taji-2020"} <= set(by_id)
    chicken = {p["name"]: p for p in by_id["chicken"]["parameters"]}
    assert chicken["us_firmness"] == {
        "name": "us_firmness",
        "label": "US firmness",
        "value": 0.4,
        "min": 0.0,
        "max": 1.0,
        "doc": "Probability that the United States stands firm (its mixed strategy; a guess)",
    }
    assert by_id["chicken"]["title"].startswith("Chicken")


@pytest.mark.parametrize(
    ("scenario", "runs", "seed", "sets"),
    [("chicken", 3000, 5, {"prize": 2.5}), ("camp_taji_2020", 2000, 11, {"kh_autonomy": 0.7})],
)
def test_run_is_the_json_of_run_dash_dash_json(client, scenario, runs, seed, sets):
    body = {"scenario": scenario, "runs": runs, "seed": seed, "set": sets}
    r = client.post("/api/run", json=body)
    assert r.status_code == 200, r.text
    flags = [f"--set={k}={v}" for k, v in sets.items()]
    expected = cli_json("run", scenario, "--runs", str(runs), "--seed", str(seed), *flags)
    assert canonical(r.json()) == canonical(expected)


def test_explore_is_the_run_json_and_the_rung_occupancy_of_the_same_results(client):
    import numpy as np

    from sim.api import run as run_api

    body = {"scenario": "camp-taji-2020", "runs": 2000, "seed": 7, "set": {"kh_autonomy": 0.8}}
    r = client.post("/api/explore", json=body)
    assert r.status_code == 200, r.text
    served = r.json()
    assert canonical(served["run"]) == canonical(client.post("/api/run", json=body).json())
    results = run_api("camp_taji_2020", 2000, 7, 1, {"kh_autonomy": 0.8})
    m = results.model
    occ = served["occupancy"]
    assert occ["steps"] == list(range(m.horizon + 1))
    assert occ["rungs"] == list(m.scenario.ladder)
    assert occ["shares"] == (results.occupancy / 2000).tolist()
    ended = np.cumsum(results.ended, axis=0)
    ended[:, m.end_outcome] -= np.where(
        np.arange(m.horizon + 1) == m.horizon, results.occupancy[m.horizon].sum(), 0
    )
    assert occ["ended_by_outcome"] == {
        o: (ended[:, k] / 2000).tolist() for k, o in enumerate(m.outcome_ids)
    }
    assert occ["ended"] == pytest.approx((ended.sum(axis=1) / 2000).tolist(), abs=1e-15)
    # every run is somewhere: at a rung or ended, at the end of every step
    totals = np.sum(occ["shares"], axis=1) + occ["ended"]
    assert totals == pytest.approx(np.ones(m.horizon + 1), abs=1e-12)
    assert 0 < occ["ended"][-1] < 1  # some runs end early, some are still going at the horizon
    assert set(occ["colours"]) == set(m.outcome_ids)


def test_exact_is_the_json_of_exact_and_refuses_infinite_scenarios(client):
    r = client.post("/api/exact", json={"scenario": "chicken", "set": {"us_firmness": 0.8}})
    assert r.status_code == 200
    served, printed = r.json(), cli_json("exact", "chicken", "--set=us_firmness=0.8")
    (
        served["exact"].pop("solve_seconds"),
        printed["exact"].pop("solve_seconds"),
    )  # time taken to solve
    assert canonical(served) == canonical(printed)
    r = client.post("/api/exact", json={"scenario": "camp-taji-2020"})
    assert r.status_code == 400
    assert "not exactly solvable" in r.json()["error"]
    assert r.json()["error"].startswith("scenarios/camp_taji_2020.yaml:")


def test_compare_puts_the_doctrines_side_by_side(client):
    r = client.post("/api/compare", json={"scenario": "chicken", "actor": "us", "runs": 2000})
    assert r.status_code == 200
    columns = r.json()["columns"]
    assert {"always_firm", "always_back_down", "equilibrium"} <= set(columns)
    assert columns["always_back_down"]["outcomes"]["us_prevails"]["p"] == 0


def test_one_scenario_has_teaching_notes_citations_and_actors(client):
    r = client.get("/api/scenarios/camp_taji_2020")
    assert r.status_code == 200
    data = r.json()
    assert data["id"] == "camp-taji-2020" and data["file"] == "camp_taji_2020"
    assert data["teaching_notes"] and data["sources"] and data["summary"]
    assert any(a["id"] == "us" and a["playable"] for a in data["actors"])


def test_upload_validates_with_the_loader_and_lists_the_scenario(client):
    text = (ROOT / "scenarios" / "chicken.yaml").read_text()
    mine = text.replace("id: chicken", "id: my-chicken", 1)
    r = client.post("/api/scenarios", json={"name": "my.yaml", "text": mine})
    assert r.status_code == 200, r.text
    uid = r.json()["id"]
    assert uid in {s["id"] for s in client.get("/api/scenarios").json()}
    r = client.post("/api/run", json={"scenario": uid, "runs": 500, "seed": 2})
    assert r.status_code == 200 and r.json()["scenario"] == "my-chicken"
    bad = mine.replace("horizon: 1", "horizon: lots")
    r = client.post("/api/scenarios", json={"name": "bad.yaml", "text": bad})
    assert r.status_code == 400
    assert r.json()["problems"] and r.json()["problems"][0].startswith("bad.yaml:")


def test_a_game_is_played_to_the_end_with_the_debrief_of_play(client):
    r = client.post("/api/games", json={"scenario": "chicken", "actor": "us", "seed": 4})
    assert r.status_code == 200, r.text
    game = r.json()
    assert game["status"] == "waiting" and game["turn"] == 0
    assert [o["id"] for o in game["options"]] == ["back_down", "stand_firm"]
    assert "You play United States" in game["transcript"]
    end = play_to_end(client, game, pick=lambda g: 2)
    assert end["status"] == "finished"
    assert end["result"]["moves"] == ["stand_firm"]
    assert "How your line of play compares" in end["transcript"]
    assert end["command"] == ("escalation play chicken --as us --seed 4 --compare-runs 2000")


def test_a_game_survives_a_restart_of_the_server(tmp_path):
    from starlette.testclient import TestClient

    from sim.web.app import create_app

    db = tmp_path / "games.sqlite"
    with TestClient(create_app(db, 1000)) as c:
        game = c.post("/api/games", json={"scenario": "camp_taji_2020", "actor": "us", "seed": 9})
        game = game.json()
        for _ in range(3):
            r = c.post(
                f"/api/games/{game['id']}/move",
                json={"turn": game["turn"], "option": 1},
                headers=auth(game["token"]),
            )
            game = {**r.json(), "token": game["token"]}
        before = game
    with TestClient(create_app(db, 1000)) as c:
        r = c.get(f"/api/games/{before['id']}", headers=auth(before["token"]))
        after = r.json()
    assert after["turn"] == before["turn"] == 3
    assert after["transcript"] == before["transcript"]
    assert after["options"] == before["options"]


def test_a_move_made_twice_is_refused_not_played_twice(client):
    game = client.post("/api/games", json={"scenario": "camp_taji_2020", "actor": "us"}).json()
    move = {"turn": 0, "option": 1}
    first = client.post(f"/api/games/{game['id']}/move", json=move, headers=auth(game["token"]))
    again = client.post(f"/api/games/{game['id']}/move", json=move, headers=auth(game["token"]))
    assert first.status_code == 200 and first.json()["turn"] == 1
    assert again.status_code == 409 and "move 1" in again.json()["error"]


def test_a_class_game_dashboard_and_debrief(client):
    r = client.post("/api/classes", json={"scenario": "chicken", "seed": 3})
    klass = r.json()
    code, token = klass["code"], klass["token"]
    info = client.get(f"/api/classes/{code}").json()
    assert [a["id"] for a in info["actors"]] == ["us", "iran"]
    teams = [
        client.post(f"/api/classes/{code}/join", json={"team": name}).json()
        for name in ("Red", "Blue", "Green")
    ]
    assert [t["actor"] for t in teams] == ["us", "iran", "us"]  # the actor fewest teams play
    for team in teams:
        play_to_end(client, team)
    board = client.get(f"/api/classes/{code}/dashboard", headers=auth(token)).json()
    assert [t["status"] for t in board["teams"]] == ["finished"] * 3
    debrief = client.get(f"/api/classes/{code}/debrief", headers=auth(token)).json()
    us = next(a for a in debrief["actors"] if a["actor"] == "us")
    assert us["finished"] == 2
    assert sum(o["count"] for o in us["class"].values()) == 2
    assert {"current", "equilibrium", "always_firm"} <= set(us["doctrines"])
    svg = client.get(f"/api/classes/{code}/qr.svg")
    assert svg.status_code == 200 and svg.text.startswith("<svg")


def test_pages_and_static_assets_are_served(client):
    for path in ("/", "/scenario?id=chicken", "/play", "/class", "/team?code=X"):
        r = client.get(path)
        assert r.status_code == 200 and "text/html" in r.headers["content-type"]
        assert "default-src 'self'" in r.headers["content-security-policy"]


def test_the_turn_timer_makes_a_late_team_pass(client):
    klass = client.post("/api/classes", json={"scenario": "camp-taji-2020", "timer": 30}).json()
    team = client.post(f"/api/classes/{klass['code']}/join", json={"team": "Slow"}).json()
    assert team["deadline"] > team["waiting_since"]
    live = client.app.state.hub.live[team["id"]]
    live.situation["since"] -= 31  # the timer ran out
    board = client.get(f"/api/classes/{klass['code']}/dashboard", headers=auth(klass["token"]))
    assert board.json()["teams"][0]["turn"] == 1
    game = client.get(f"/api/games/{team['id']}", headers=auth(team["token"])).json()
    assert "Time ran out: you pass this turn." in game["transcript"]


def test_the_dashboard_streams_server_sent_events(live_server):
    import httpx

    base = live_server.url
    klass = httpx.post(f"{base}/api/classes", json={"scenario": "chicken"}).json()
    code, token = klass["code"], klass["token"]
    url = f"{base}/api/classes/{code}/events"
    with httpx.stream("GET", url, params={"token": token}, timeout=20) as stream:
        assert stream.headers["content-type"].startswith("text/event-stream")
        lines = stream.iter_lines()
        boards = []

        def next_board() -> dict:
            for line in lines:
                if line.startswith("data: "):
                    return json.loads(line[6:])
            raise AssertionError("the stream ended")

        boards.append(next_board())
        team = httpx.post(f"{base}/api/classes/{code}/join", json={"team": "Red"}).json()
        boards.append(next_board())
        httpx.post(
            f"{base}/api/games/{team['id']}/move",
            json={"turn": 0, "option": 1},
            headers=auth(team["token"]),
        )
        while True:
            board = next_board()
            if board["teams"] and board["teams"][0]["status"] != "waiting":
                break
    assert boards[0]["teams"] == [] and boards[1]["teams"][0]["team"] == "Red"
    assert board["teams"][0]["result"]["moves"] == ["back_down"]


def test_a_late_team_passes_when_it_looks_at_its_own_game(client):
    klass = client.post("/api/classes", json={"scenario": "camp-taji-2020", "timer": 30}).json()
    team = client.post(f"/api/classes/{klass['code']}/join", json={"team": "Slow"}).json()
    client.app.state.hub.live[team["id"]].situation["since"] -= 31
    game = client.get(f"/api/games/{team['id']}", headers=auth(team["token"])).json()
    assert game["turn"] == 1 and "Time ran out" in game["transcript"]


def test_evicted_games_replay_and_no_game_thread_outlives_the_server(tmp_path, monkeypatch):
    import threading

    from starlette.testclient import TestClient

    from sim.web import hub
    from sim.web.app import create_app

    monkeypatch.setattr(hub, "MAX_LIVE", 2)
    with TestClient(create_app(tmp_path / "x.sqlite", 500)) as c:
        games = [
            c.post(
                "/api/games", json={"scenario": "camp-taji-2020", "actor": "us", "seed": s}
            ).json()
            for s in (1, 2, 3)
        ]
        assert len(c.app.state.hub.live) == 2  # the first was stopped
        first = games[0]
        r = c.post(
            f"/api/games/{first['id']}/move",
            json={"turn": 0, "option": 1},
            headers=auth(first["token"]),
        )
        assert r.status_code == 200 and r.json()["turn"] == 1
        assert r.json()["transcript"].startswith(first["transcript"])
    alive = [t for t in threading.enumerate() if t.name == "escalation-game" and t.is_alive()]
    assert alive == []


def test_the_browser_game_is_the_terminal_game_line_for_line(client):
    """Same seed, same answers: the page's story is what `escalation play` prints, debrief and
    teaching notes included (only the terminal's prompts are missing)."""
    game = client.post("/api/games", json={"scenario": "credibility", "actor": "us", "seed": 3})
    answers: list[int] = []

    def pick(g: dict) -> int:
        answers.append(2 if g["options"][1]["available"] else 1)
        return answers[-1]

    end = play_to_end(client, game.json(), pick)
    assert end["status"] == "finished" and len(answers) > 1
    out = subprocess.run(
        [sys.executable, "-m", "sim", *end["command"].split()[1:]],
        input="".join(f"{a}\n" for a in answers),
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "COLUMNS": "92"},
        check=True,
    ).stdout
    printed = [line.rstrip() for line in out.splitlines() if not line.startswith("Your move [")]
    assert [line.rstrip() for line in end["transcript"].splitlines()] == printed


def test_a_move_to_a_game_stopped_meanwhile_is_played_on_its_replay(client):
    """The game's thread is stopped (evicted) just as a move reaches it: the move, already
    stored, is played by the replay; nothing is lost or played twice."""
    hub = client.app.state.hub
    game = client.post("/api/games", json={"scenario": "camp-taji-2020", "actor": "us"}).json()
    live = hub.live[game["id"]]
    real_move = live.move

    def stopped_first(choice):
        live.close()
        return real_move(choice)

    live.move = stopped_first
    r = client.post(
        f"/api/games/{game['id']}/move",
        json={"turn": 0, "option": 2},
        headers=auth(game["token"]),
    )
    assert r.status_code == 200, r.text
    assert r.json()["turn"] == 1
    assert hub.live[game["id"]] is not live
    assert hub.store.game(game["id"]).choices == [1]
    again = client.get(f"/api/games/{game['id']}", headers=auth(game["token"])).json()
    assert again["turn"] == 1 and again["transcript"] == r.json()["transcript"]

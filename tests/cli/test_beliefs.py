"""`--beliefs` on `run`, `exact` and `trace`: the JSON gains a "beliefs" list, nothing else."""

from __future__ import annotations

import json

import pytest

from sim.cli.main import main


def output(capsys, *argv: str) -> dict:
    assert main(list(argv)) == 0
    return json.loads(capsys.readouterr().out)


@pytest.mark.parametrize(
    "argv",
    [
        ["run", "attribution_2020", "--runs", "2000", "--json", "--no-charts"],
        ["exact", "attribution_2020", "--json"],
    ],
    ids=["run", "exact"],
)
def test_beliefs_are_added_on_request_only(capsys, argv):
    plain = output(capsys, *argv)
    with_beliefs = output(capsys, *argv, "--beliefs")
    assert "beliefs" not in plain
    beliefs = with_beliefs.pop("beliefs")
    plain.get("exact", {}).pop("solve_seconds", None)
    with_beliefs.get("exact", {}).pop("solve_seconds", None)
    assert with_beliefs == plain
    us = [b for b in beliefs if b["actor"] == "us" and b["sees"]["attacked"] == 1]
    assert us and all(abs(sum(r["p"] for r in b["beliefs"]) - 1) < 1e-9 for b in us)
    assert all(abs(sum(b["choice"].values()) - 1) < 1e-9 for b in beliefs)


def test_beliefs_of_a_scenario_without_hidden_information_are_empty(capsys):
    data = output(capsys, "exact", "red_line_2020", "--json", "--beliefs")
    assert data["beliefs"] == []
    assert main(["exact", "red_line_2020", "--beliefs"]) == 0
    assert "No strategic actor is uncertain of anything" in capsys.readouterr().out


def test_trace_json_with_beliefs(capsys):
    data = output(capsys, "trace", "attribution_2020", "--seed", "4", "--json", "--beliefs")
    us = [m for m in data["moves"] if m["actor"] == "us" and m["sees"]["attacked"] == 1]
    assert us and us[0]["beliefs"]

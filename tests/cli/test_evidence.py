"""`escalation fit` and `escalation check` on the bundled logs: the JSON contract of DESIGN.md
8.2, identical to the Python API, and located errors with exit status 2 for bad input."""

from __future__ import annotations

import json

import pytest

import sim
from sim.cli.main import main
from tests.conftest import ROOT

LOGS = ROOT / "data" / "logs"
PRESSURE = ["maximum_pressure_2019", "--data", str(LOGS / "maximum_pressure_2019.csv")]


def _json(capsys, argv: list[str]) -> dict:
    status = main(argv)
    out = capsys.readouterr()
    assert status == 0, out.err
    return json.loads(out.out)


@pytest.fixture(scope="module")
def fitted() -> dict:
    result = sim.fit(
        "maximum_pressure_2019", LOGS / "maximum_pressure_2019.csv", ["iran_rationality"]
    )
    return result.to_dict()


def test_fit_json_keeps_the_contract_and_equals_the_api(capsys, fitted):
    """The keys DESIGN.md 8.2 fixes, a finite loglik, an estimate inside its interval and range;
    the command prints the API's result."""
    doc = _json(capsys, ["fit", *PRESSURE, "--free", "iran_rationality", "--json"])
    for key in ("scenario", "scenario_sha256", "version", "episodes", "loglik", "free"):
        assert key in doc
    assert doc["episodes"] == 1 and doc["free"] == ["iran_rationality"]
    est = doc["estimates"]["iran_rationality"]
    assert est["ci95"][0] < est["value"] < est["ci95"][1]
    assert est["ci95"][0] >= 0 and est["ci95"][1] <= 10
    assert doc["loglik"] >= doc["start_loglik"]
    assert "exact forward pass" in doc["method"]
    doc.pop("seconds"), fitted.pop("seconds")
    assert doc == fitted


def test_fit_table_names_the_estimate_and_the_method(capsys):
    """The text output: the parameter, its interval, the log-likelihood and the method."""
    assert main(["fit", *PRESSURE, "--free", "iran_rationality"]) == 0
    out = capsys.readouterr().out
    assert "iran_rationality" in out and "95% interval" in out
    assert "log-likelihood -18.9" in out
    assert "method: maximum likelihood, exact forward pass" in out


def test_check_json_has_a_verdict_per_episode_and_writes_its_chart(capsys, tmp_path):
    """check --json: statistics with percentiles and bands, a verdict; the chart is a PNG."""
    doc = _json(capsys, ["check", *PRESSURE, "--runs", "2000", "--json", "--out", str(tmp_path)])
    (episode,) = doc["episodes"]
    names = [s["name"] for s in episode["statistics"]]
    assert names[:3] == ["steps", "outcome", "peak rung"]
    assert any(n.startswith("iran: ") for n in names)
    for s in episode["statistics"]:
        assert set(s) >= {"name", "observed", "percentile", "band90", "inside"}
    assert episode["verdict"]
    assert (tmp_path / "check.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    api = sim.check("maximum_pressure_2019", LOGS / "maximum_pressure_2019.csv", runs=2000)
    assert api.to_dict() == doc


def test_check_without_charts_writes_nothing(capsys, tmp_path, monkeypatch):
    """--no-charts: the table and the verdict, and no file anywhere."""
    monkeypatch.chdir(tmp_path)
    assert main(["check", *PRESSURE, "--runs", "500", "--no-charts"]) == 0
    out = capsys.readouterr().out
    assert "Episode 1:" in out and "statistics inside the model's 90% bands" in out
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--free", "iran_rationalty"], "did you mean 'iran_rationality'"),
        (["--free", "iran_rationality", "--set", "iran_rationality=2"], "also fixed by --set"),
        (["--free", "iran_rationality", "--particles", "-1"], "--particles must be"),
    ],
)
def test_fit_usage_errors_exit_2_in_one_line(capsys, args, message):
    """Bad free parameters and options: one line naming the problem, exit status 2."""
    assert main(["fit", *PRESSURE, *args]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err and len(err.splitlines()) == 1


def test_a_bad_log_is_refused_at_its_cell(capsys, tmp_path):
    """A misspelt option in the log: FILE:LINE:COL with a suggestion, exit 2, for both commands."""
    bad = tmp_path / "bad.csv"
    bad.write_text("episode,step,actor,option,branch\n1,1,us,sanctionz,\n")
    for command in (["fit", "--free", "iran_rationality"], ["check", "--no-charts"]):
        status = main([command[0], "maximum_pressure_2019", "--data", str(bad), *command[1:]])
        err = capsys.readouterr().err
        assert status == 2
        assert err.startswith(f"{bad}:2:")
        assert "Traceback" not in err


def test_a_log_of_another_scenario_is_refused(capsys):
    """The camp_taji log given to maximum_pressure: its '# scenario:' line is refused, located."""
    log = LOGS / "camp_taji_2020.csv"
    assert main(["check", "maximum_pressure_2019", "--data", str(log), "--no-charts"]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"{log}:1:") and "camp-taji-2020" in err


def test_check_doctrine_plays_an_alternative_and_says_so(capsys):
    """--doctrine us=as_it_happened: the runs play the scenario's alternative (the US makes
    exactly the record's one strike), the JSON names it, and the API gives the same object."""
    argv = ["check", "camp_taji_2020", "--data", str(LOGS / "camp_taji_2020.csv")]
    argv += ["--doctrine", "us=as_it_happened", "--runs", "500", "--json", "--no-charts"]
    doc = _json(capsys, argv)
    assert doc["doctrines"] == {"us": "as_it_happened"}
    band = {s["name"]: s["band90"] for s in doc["episodes"][0]["statistics"]}
    assert band["us: strike_proxies"] == [1, 1]
    api = sim.check(
        "camp_taji_2020", LOGS / "camp_taji_2020.csv", runs=500, doctrine={"us": "as_it_happened"}
    )
    assert api.to_dict() == doc


@pytest.mark.parametrize(
    ("doctrine", "message"),
    [
        ("us=as_it_happend", "did you mean 'as_it_happened'"),
        ("usa=as_it_happened", "unknown actor 'usa'"),
        ("us", "expected ACTOR=NAME"),
    ],
)
def test_check_doctrine_errors_exit_2_in_one_line(capsys, doctrine, message):
    argv = ["check", "camp_taji_2020", "--data", str(LOGS / "camp_taji_2020.csv")]
    assert main([*argv, "--doctrine", doctrine, "--no-charts"]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err and len(err.splitlines()) == 1


def test_fit_doctrine_is_the_policy_the_log_is_judged_under(capsys):
    """fit --doctrine: the scenario's own US policy (tighten) gives the log the same likelihood
    as the alternative that plays it (and the JSON names the doctrine); an alternative that never
    plays the record's moves makes the log impossible, refused at its line, exit 2."""
    argv = ["fit", *PRESSURE, "--free", "iran_rationality", "--json"]
    default = _json(capsys, argv)
    same = _json(capsys, [*argv, "--doctrine", "us=maximum_pressure"])
    assert same["doctrines"] == {"us": "maximum_pressure"} and "doctrines" not in default
    assert same["loglik"] == default["loglik"]
    assert main([*argv, "--doctrine", "us=steady_pressure"]) == 2
    err = capsys.readouterr().err
    assert "maximum_pressure_2019.csv:" in err and "probability 0" in err
    api = sim.fit(
        "maximum_pressure_2019",
        LOGS / "maximum_pressure_2019.csv",
        ["iran_rationality"],
        doctrine={"us": "maximum_pressure"},
    )
    assert api.to_dict()["loglik"] == same["loglik"]

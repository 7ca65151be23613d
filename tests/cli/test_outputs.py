"""What the commands print and write: tables that never cut a number or id at any width, the
--set overrides named in every output and in the folders charts go to, the report's numbers as
the scenario wrote them, commands printed for copying quoted for the shell, CSV written with
the csv module, `params`, `list`, `run --json` without charts, and progress bars."""

from __future__ import annotations

import csv
import io
import json
import os
import re
import shlex
import subprocess
import sys
import threading
from types import SimpleNamespace

import numpy as np
import pytest

from sim.cli.main import main, overrides_folder
from tests.conftest import CAMP_TAJI, ROOT, SCENARIOS

ELLIPSIS = "…"


def printed(capsys, argv: list[str], status: int = 0) -> str:
    assert main(argv) == status
    return capsys.readouterr().out


def assert_never_cut(text: str, width: int, ids: list[str]) -> None:
    """No ellipsis, no line wider than the terminal, every id whole on one line."""
    assert ELLIPSIS not in text
    assert max(len(line) for line in text.splitlines()) <= width
    words = set(re.findall(r"[A-Za-z0-9_\-]+", text))
    missing = [i for i in ids if i not in words]
    assert not missing, f"cut or missing: {missing}"


# --- compare, run, list, params: never cut --------------------------------------------------


@pytest.fixture(scope="module")
def taji_compare_json() -> dict:
    proc = subprocess.run(
        [sys.executable, "-m", "sim", "compare", str(CAMP_TAJI), "--actor", "us"]
        + ["--runs", "1000", "--json", "--no-charts"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


@pytest.mark.parametrize("width", [60, 80, 120])
def test_compare_tables_never_cut_a_number_or_option_id(
    capsys, monkeypatch, width, taji_compare_json
):
    monkeypatch.setenv("COLUMNS", str(width))
    argv = ["compare", str(CAMP_TAJI), "--actor", "us", "--runs", "1000", "--no-charts"]
    text = printed(capsys, argv)
    options = list(taji_compare_json["columns"])
    assert_never_cut(text, width, options)
    flat = " ".join(text.split())
    for column in taji_compare_json["columns"].values():  # every probability, whole
        for outcome in column["outcomes"].values():
            assert f"{100 * outcome['p']:.1f}%" in flat
            lo, hi = outcome["ci95"]
            assert f"{100 * lo:.1f}%" in flat and f"{100 * hi:.1f}%" in flat
        for payoff in column["payoffs"].values():
            assert f"{payoff['mean']:.2f}" in flat


def test_compare_abbreviates_headers_with_a_legend_or_splits_the_table(capsys, monkeypatch):
    argv = ["compare", str(CAMP_TAJI), "--actor", "us", "--runs", "1000", "--no-charts"]
    monkeypatch.setenv("COLUMNS", "60")
    narrow = printed(capsys, argv)
    assert "A = sanctions" in " ".join(narrow.split()) or "columns 1-" in narrow
    monkeypatch.setenv("COLUMNS", "200")
    wide = printed(capsys, argv)
    assert "A = sanctions" not in wide and "columns 1-" not in wide


def test_compare_into_a_pipe_is_80_columns_and_never_cut(taji_compare_json):
    env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES")}
    proc = subprocess.run(
        [sys.executable, "-m", "sim", "compare", str(CAMP_TAJI), "--actor", "us"]
        + ["--runs", "1000", "--no-charts"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=env,
        timeout=120,
    )
    assert proc.returncode == 0 and proc.stderr == "", proc.stderr
    assert_never_cut(proc.stdout, 80, list(taji_compare_json["columns"]))


@pytest.mark.parametrize("width", [60, 80])
def test_run_tables_never_cut_an_option_id(capsys, monkeypatch, width):
    monkeypatch.setenv("COLUMNS", str(width))
    text = printed(capsys, ["run", str(CAMP_TAJI), "--runs", "500", "--no-charts"])
    ids = ["strike_proxies", "leadership_strike", "encourage_proxies", "restrain_proxies"]
    assert_never_cut(text, width, ids + ["deterrence_restored", "us_withdrawal"])


def test_a_table_narrower_than_its_longest_word_is_printed_whole():
    from rich.table import Table

    from sim.outputs.tables import print_table, terminal

    out = io.StringIO()
    console = terminal(file=out, width=20)
    table = Table()
    table.add_column("option")
    table.add_column("share", justify="right")
    table.add_row("a_very_long_option_identifier", "12.5%")
    print_table(console, table)
    assert ELLIPSIS not in out.getvalue() and "a_very_long_option_identifier" in out.getvalue()
    assert console.width == 20


def test_list_never_cuts_file_names_or_ids_at_80_columns(capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "80")
    text = printed(capsys, ["list"])
    names = [p.name for p in SCENARIOS.glob("*.yaml")]
    assert ELLIPSIS not in text
    for name in names:
        assert name in text, name


def test_params_prints_parameters_and_actors_with_options(capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "80")
    text = printed(capsys, ["params", str(CAMP_TAJI), "--set", "kh_autonomy=0.5"])
    assert ELLIPSIS not in text
    flat = " ".join(text.split())
    assert "kh_autonomy" in flat and "0.5 (default 0.2)" in flat and "0 to 1" in flat
    assert "Share of KH's" in text
    for actor in ("United States (us)", "Iran (iran)", "Kata'ib Hezbollah (kh)"):
        assert actor in flat
    for option in ("strike_proxies", "leadership_strike", "mass_salvo", "missile_salvo"):
        assert option in text
    assert printed(capsys, ["describe", str(CAMP_TAJI)]).startswith("Camp Taji")
    data = json.loads(printed(capsys, ["params", "camp_taji_2020", "--json"]))
    assert data["parameters"]["kh_autonomy"] == {
        "value": 0.2,
        "default": 0.2,
        "min": 0.0,
        "max": 1.0,
        "doc": data["parameters"]["kh_autonomy"]["doc"],
    }
    assert [o["id"] for o in data["actors"]["kh"]["options"]] == ["lie_low", "harass", "mass_salvo"]


def test_unknown_set_name_lists_the_valid_ones(capsys):
    for command in (["run"], ["params"], ["sweep", "--vary", "war_risk=0:1:2"]):
        argv = [command[0], str(CAMP_TAJI), *command[1:], "--set", "kh_autonmy=0.5"]
        assert main([*argv, "--no-charts"] if command[0] != "params" else argv) == 2
        err = capsys.readouterr().err
        assert "unknown parameter 'kh_autonmy'" in err and "did you mean 'kh_autonomy'" in err
        assert (
            "parameters: credibility_learning, resolve_reading, kh_autonomy, force_protection"
            in err
        )


def test_set_value_with_an_underscore_is_not_read_as_a_number(capsys):
    assert main(["run", str(CAMP_TAJI), "--set", "kh_autonomy=0_5", "--no-charts"]) == 2
    assert "'0_5' is not a number" in capsys.readouterr().err


# --- --set overrides: named in every output, and their own chart folder ---------------------


def test_overrides_folder_name():
    assert overrides_folder({}) is None
    assert overrides_folder({"war_risk": 0.2, "kh_autonomy": 0.5}) == (
        "set-kh_autonomy=0.5,war_risk=0.2"
    )
    assert overrides_folder({"a": 1.0, "b": 1e-06}) == "set-a=1,b=1e-06"
    long = overrides_folder({f"parameter_{i}": 0.123456789 for i in range(10)})
    assert long.startswith("set-10-overrides-") and len(long) < 40


def test_charts_under_set_go_to_their_own_folder(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    base = tmp_path / "reports" / "camp-taji-2020"
    assert main(["run", str(CAMP_TAJI), "--runs", "500"]) == 0
    default = {p.name: p.stat().st_mtime_ns for p in base.glob("*.png")}
    assert len(default) == 4
    out = printed(capsys, ["run", str(CAMP_TAJI), "--runs", "500", "--set", "kh_autonomy=0.5"])
    folder = base / "set-kh_autonomy=0.5"
    assert sorted(p.name for p in folder.glob("*.png")) == sorted(default)
    assert {p.name: p.stat().st_mtime_ns for p in base.glob("*.png")} == default
    assert "parameters: kh_autonomy=0.5" in out and str(folder.relative_to(tmp_path)) in out
    argv = ["compare", str(CAMP_TAJI), "--actor", "us", "--runs", "500"]
    text = printed(capsys, [*argv, "--set", "kh_autonomy=0.5"])
    assert sorted(p.name for p in folder.glob("compare_*")) and not list(base.glob("compare_*"))
    assert "parameters: kh_autonomy=0.5" in " ".join(text.split())


def test_headers_name_the_overrides(capsys, monkeypatch, tmp_path):
    monkeypatch.setenv("COLUMNS", "200")
    settings = ["--set", "kh_autonomy=0.5", "--set", "war_risk=0.25"]
    named = "kh_autonomy=0.5, war_risk=0.25"
    trace = printed(capsys, ["trace", str(CAMP_TAJI), *settings])
    assert f"parameters: {named}" in trace.splitlines()[0]
    story = json.loads(printed(capsys, ["trace", str(CAMP_TAJI), "--json", *settings]))
    assert story["parameters"]["kh_autonomy"] == 0.5
    compare = printed(capsys, ["compare", "chicken", "--actor", "us", "--runs", "300"])
    assert "parameters: scenario defaults" in compare
    argv = ["sweep", str(CAMP_TAJI), "--vary", "force_protection=0:0.5:2", "--runs", "200"]
    argv += ["--workers", "1", "--out", str(tmp_path / "s"), "--no-charts", "--quiet"]
    sweep = printed(capsys, [*argv, *settings])
    assert f"other parameters: {named}" in sweep
    exact = printed(capsys, ["exact", "chicken", "--set", "prize=5"])
    assert "parameters: prize=5" in exact


def test_run_json_writes_no_charts_unless_out_is_given(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    data = json.loads(printed(capsys, ["run", str(CAMP_TAJI), "--runs", "300", "--json"]))
    assert data["runs"] == 300 and not (tmp_path / "reports").exists()
    out = tmp_path / "charts"
    printed(capsys, ["run", str(CAMP_TAJI), "--runs", "300", "--json", "--out", str(out)])
    assert len(list(out.glob("*.png"))) == 4
    printed(capsys, ["compare", "chicken", "--actor", "us", "--runs", "300", "--json"])
    assert not (tmp_path / "reports").exists()


# --- the report: numbers as written, commands quoted ------------------------------------------

WRITTEN = """schema: 1
id: written
title: Numbers as written
horizon: 2
ladder: [low, high]
parameters:
  k: {value: 0.125, min: 0.005, max: 1}
state:
  x: {initial: 0.0625}
actors:
  us: {label: US}
  iran: {label: Iran}
turn_order: [us, iran]
options:
  us:
    - id: up
      rung: 1
      payoffs: {us: 0.004}
      outcomes:
        - {id: rare, p: 0.0025}
        - {id: usual}
    - {id: stay}
  iran:
    - {id: missile_salvo, rung: 1}
    - {id: wait}
policies:
  us: {kind: fixed, option: up}
  iran: {kind: table, respond_to: us,
         table: {default: {missile_salvo: 0.005, wait: 0.995}}}
outcomes:
  top: {when: rung >= 1}
"""


def test_report_shows_the_scenarios_numbers_as_written():
    from sim.model.loading import load_text
    from sim.outputs.report import make_report
    from sim.solvers.prepare import prepare_model

    model = prepare_model(load_text(WRITTEN, "written.yaml"))
    page = make_report(model, 200, 1, "written.yaml")
    for number in ("0.005", "0.995", "0.125", "0.0625", "+0.004", "0.25%"):
        assert f">{number}<" in page or f" {number}" in page or f"({number})" in page, number
    assert ">0.01<" not in page and ">0.99<" not in page and ">0.13<" not in page


def test_report_commands_are_shell_quoted():
    import html

    from sim.model.loading import load_text
    from sim.outputs.report import make_report
    from sim.solvers.prepare import prepare_model

    model = prepare_model(load_text(WRITTEN, "written.yaml"), {"k": 0.5})
    page = make_report(model, 200, 1, "my file;rm -rf.yaml")
    commands = [
        shlex.split(html.unescape(c))
        for c in re.findall(r"<pre><code>(escalation [^<]*)</code></pre>", page)
    ]
    assert ["escalation", "play", "my file;rm -rf.yaml", "--as", "us", "--set", "k=0.5"] in commands
    report = [c for c in commands if c[1] == "report"]
    assert report[0][:3] == ["escalation", "report", "my file;rm -rf.yaml"]
    assert report[0][-2:] == ["--set", "k=0.5"]


def test_the_play_command_quotes_the_actor_id():
    """Whatever an id may hold, the printed command is exactly one `escalation play`."""
    from sim.outputs.report import play_command

    scenario = SimpleNamespace(
        turn_order=["us;touch x"], parameters={"k": SimpleNamespace(value=1)}
    )
    model = SimpleNamespace(scenario=scenario, parameters={"k": 0.25})
    command = play_command("a b.yaml", model)
    assert shlex.split(command) == [
        *("escalation", "play", "a b.yaml", "--as", "us;touch x", "--set", "k=0.25")
    ]
    assert command == "escalation play 'a b.yaml' --as 'us;touch x' --set k=0.25"


# --- CSV through the csv module ---------------------------------------------------------------


def test_points_csv_quotes_a_name_with_a_comma_and_keeps_repr_floats():
    from sim.analysis.sweep_output import points_csv

    table = np.array([[0.1, 1 / 3, 2.0], [1e-300, -0.0, 123456.789]])
    result = SimpleNamespace(columns=["a", "p_war,big", 'p_"q"'], table=table)
    data = points_csv(result)
    rows = list(csv.reader(io.StringIO(data.decode())))
    assert rows[0] == ["point", "a", "p_war,big", 'p_"q"']
    assert rows[1] == ["0", "0.1", repr(1 / 3), "2.0"]
    assert rows[2] == ["1", "1e-300", "-0.0", "123456.789"]
    assert data.endswith(b"\n") and b"\r" not in data


def test_sweep_out_naming_a_file_exits_2(tmp_path, capsys):
    blocker = tmp_path / "file.txt"
    blocker.write_text("keep me")
    argv = ["sweep", str(CAMP_TAJI), "--vary", "war_risk=0:1:2", "--runs", "100"]
    assert main([*argv, "--out", str(blocker), "--workers", "1"]) == 2
    err = capsys.readouterr().err
    assert "cannot write the sweep to" in err and "is a file, not a folder" in err
    assert "internal error" not in err and blocker.read_text() == "keep me"


# --- progress bars: on a terminal only, never with --quiet -----------------------------------


class Recorder:
    made: list[tuple[bool, str]] = []

    def __init__(self, enabled, total, label, columns=None, delay=0.0):
        Recorder.made.append((enabled, label))

    def __enter__(self):
        return None

    def __exit__(self, *exc):
        return None


@pytest.mark.parametrize(
    "argv",
    [
        ["compare", "chicken", "--actor", "us", "--runs", "200", "--no-charts"],
        ["exact", "chicken"],
        ["report", "chicken", "--runs", "200"],
        ["play", "chicken", "--as", "us", "--seed", "1", "--compare-runs", "200"],
    ],
    ids=["compare", "exact", "report", "play-debrief"],
)
def test_long_commands_show_a_progress_bar_on_a_terminal_only(argv, tmp_path, monkeypatch, capsys):
    import sim.cli.main as cli

    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(cli, "ProgressBar", Recorder)
    monkeypatch.setattr(sys, "stdin", io.StringIO("1\n" * 20))
    for tty, quiet, shown in ((True, False, True), (True, True, False), (False, False, False)):
        Recorder.made = []
        monkeypatch.setattr(sys.stderr, "isatty", lambda tty=tty: tty, raising=False)
        assert main([*argv, *(["--quiet"] if quiet else [])]) == 0
        assert Recorder.made and all(enabled == shown for enabled, _ in Recorder.made)
    assert capsys.readouterr().err == ""


def test_a_delayed_progress_bar_never_shows_for_quick_work():
    from sim.cli.main import ProgressBar

    before = threading.active_count()
    with ProgressBar(True, None, "quick", delay=60) as bar:
        bar.stage("next")
        bar(1)
    assert bar is not None
    assert threading.active_count() == before  # its timer is gone, not left waiting

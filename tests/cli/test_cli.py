"""The command line: exit statuses, JSON output, overrides, charts, precision mode."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from sim.cli.main import main
from tests.conftest import CAMP_TAJI, ROOT


def run_json(capsys, *args: str) -> dict:
    assert main(["run", str(CAMP_TAJI), "--json", "--no-charts", *args]) == 0
    return json.loads(capsys.readouterr().out)


def test_run_json_is_reproducible(capsys):
    a = run_json(capsys, "--runs", "2000", "--seed", "7")
    b = run_json(capsys, "--runs", "2000", "--seed", "7")
    assert a == b
    assert a["runs"] == 2000 and a["seed"] == 7


def test_set_overrides_a_parameter_and_moves_the_result(capsys):
    base = run_json(capsys, "--runs", "8000")
    safe = run_json(capsys, "--runs", "8000", "--set", "force_protection=0.95")
    assert safe["parameters"]["force_protection"] == 0.95
    assert safe["state"]["us_killed"]["mean"] < base["state"]["us_killed"]["mean"]


@pytest.mark.parametrize(
    "setting,message",
    [
        ("nonsense=1", "unknown parameter 'nonsense'"),
        ("kh_autonmy=0.5", "did you mean 'kh_autonomy'"),
        ("kh_autonomy=7", "outside its range"),
        ("kh_autonomy=high", "is not a number"),
        ("kh_autonomy", "expects NAME=VALUE"),
    ],
)
def test_bad_set_exits_2_with_a_clear_message(capsys, setting, message):
    assert main(["run", str(CAMP_TAJI), "--set", setting, "--no-charts"]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_run_writes_the_four_charts(tmp_path, capsys):
    out = tmp_path / "charts"
    assert main(["run", str(CAMP_TAJI), "--runs", "2000", "--out", str(out)]) == 0
    names = sorted(p.name for p in out.iterdir())
    assert names == ["outcomes.png", "peak_rung.png", "rung_occupancy.png", "steps.png"]
    mask = os.umask(0o022)
    os.umask(mask)
    for p in out.iterdir():
        assert p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and p.stat().st_size > 10_000
        assert p.stat().st_mode & 0o777 == 0o666 & ~mask, "charts get normal file permissions"
    text = capsys.readouterr().out
    assert "Outcomes" in text and "Regional war" in text and "95% interval" in text


def test_bad_scenario_writes_nothing(tmp_path, capsys):
    bad = tmp_path / "bad.yaml"
    bad.write_text(CAMP_TAJI.read_text().replace("horizon: 26", "horizon: -1"))
    out = tmp_path / "out"
    assert main(["run", str(bad), "--out", str(out)]) == 2
    assert not out.exists()
    err = capsys.readouterr().err
    assert f"{bad}:" in err and "horizon" in err


def test_precision_adds_runs_until_the_target(capsys):
    result = run_json(capsys, "--precision", "0.01", "--runs", "4096")
    assert result["runs"] > 4096 and result["runs"] % 4096 == 0
    for o in result["outcomes"].values():
        assert (o["ci95"][1] - o["ci95"][0]) / 2 <= 0.01 + 1e-12
    same = run_json(capsys, "--runs", str(result["runs"]))
    assert same["outcomes"] == result["outcomes"]


def test_precision_cap_is_stated(capsys):
    assert (
        main(["run", str(CAMP_TAJI), "--precision", "0.0005", "--max-runs", "8192", "--no-charts"])
        == 0
    )
    out = capsys.readouterr().out
    assert "NOT reached (cap 8,192 runs)" in out


def test_list_shows_bundled_scenarios(capsys):
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    assert "camp-taji-2020" in out


def test_bundled_scenario_by_id(capsys):
    assert main(["run", "camp_taji_2020", "--runs", "500", "--json", "--no-charts"]) == 0
    assert json.loads(capsys.readouterr().out)["scenario"] == "camp-taji-2020"


def test_usage_errors_exit_2(capsys):
    assert main(["run", str(CAMP_TAJI), "--runs", "0"]) == 2
    assert main(["frobnicate"]) == 2
    assert main([]) == 2


def test_python_dash_m_sim_and_stdout_is_pure_json():
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "sim",
            "run",
            str(CAMP_TAJI),
            "--runs",
            "1000",
            "--json",
            "--no-charts",
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["runs"] == 1000
    assert proc.stderr == ""


def test_schema_command_matches_committed_schema(capsys):
    assert main(["schema"]) == 0
    printed = json.loads(capsys.readouterr().out)
    committed = json.loads((ROOT / "docs" / "scenario.schema.json").read_text())
    assert printed == committed, "run `escalation schema > docs/scenario.schema.json`"


class _ClosedPipe:
    """A stdout whose reader has gone away."""

    def __init__(self, fd: int):
        self.fd = fd

    def write(self, text: str) -> int:
        raise BrokenPipeError(32, "Broken pipe")

    def flush(self) -> None:
        pass

    def fileno(self) -> int:
        return self.fd


def test_closed_pipe_stops_quietly(tmp_path, monkeypatch, capsys):
    """`escalation run ... --json | head -1`: exit 141 as Unix tools do, no internal error."""
    with open(tmp_path / "sink", "w") as sink:
        monkeypatch.setattr(sys, "stdout", _ClosedPipe(sink.fileno()))
        status = main(["run", str(CAMP_TAJI), "--runs", "500", "--json", "--no-charts"])
    assert status == 141
    assert "internal error" not in capsys.readouterr().err


REVIEW_BASE = ROOT / "tests" / "scenarios" / "good" / "review_base.yaml"


def variant(tmp_path, old: str, new: str) -> str:
    text = REVIEW_BASE.read_text()
    assert old in text
    path = tmp_path / "variant.yaml"
    path.write_text(text.replace(old, new))
    return str(path)


@pytest.mark.parametrize(
    "old,new,message",
    [
        (
            "a: {kind: fixed, option: up}",
            "a: {kind: logit, utilities: {up: 'sqrt(x - 5)', down: 0}}",
            "utility evaluated to nan",
        ),
        ("add: {x: 1}", "add: {x: 'poisson(x - 3)'}", "poisson(lam) needs a finite lam >= 0"),
        ("payoffs: {a: 1}", "payoffs: {a: 1e308}", "overflow"),
        ("rung >= 2", "sqrt(x - 5)", "condition evaluated to nan"),
    ],
)
def test_run_time_failures_are_located_errors_with_exit_2(tmp_path, capsys, old, new, message):
    path = variant(tmp_path, old, new)
    assert main(["run", path, "--runs", "200", "--json", "--no-charts"]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    if "overflow" not in message:
        assert f"{path}:" in err


def test_scenario_text_is_printed_verbatim_and_charted(tmp_path, capsys):
    path = variant(tmp_path, "title: Base", "title: '[/] Budget [draft]: $10bn vs $20bn'")
    assert main(["run", path, "--runs", "500", "--out", str(tmp_path / "c")]) == 0
    assert "[/] Budget [draft]: $10bn vs $20bn" in capsys.readouterr().out
    assert main(["trace", path]) == 0 and "[draft]" in capsys.readouterr().out
    assert len(list((tmp_path / "c").glob("*.png"))) == 4


def test_unwritable_chart_folder_fails_before_simulating(tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("")
    assert main(["run", str(REVIEW_BASE), "--runs", "500", "--out", str(blocker / "x")]) == 2
    captured = capsys.readouterr()
    assert "cannot write charts" in captured.err and captured.out == ""


def test_precision_cap_below_one_block_and_precision_in_json(capsys):
    assert main(["run", str(REVIEW_BASE), "--precision", "0.01", "--max-runs", "1000"]) == 2
    assert "at least 4,096" in capsys.readouterr().err
    assert main(["run", str(REVIEW_BASE), "--precision", "0.02", "--json", "--no-charts"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["precision"]["reached"] is True and data["runs"] % 4096 == 0


def test_moves_list_every_actor_even_one_that_never_moved(tmp_path, capsys):
    path = variant(tmp_path, "when: rung >= 2", "when: rung >= 1")
    assert main(["run", path, "--runs", "300", "--json", "--no-charts"]) == 0
    assert json.loads(capsys.readouterr().out)["moves"]["b"] == {}


# --- every command reads FILE as `validate` does (issue 13: hangs and memory) ------------------

FILE_COMMANDS = {
    "validate": [],
    "run": ["--runs", "10", "--no-charts"],
    "exact": ["--out", "{out}"],
    "compare": ["--actor", "a", "--runs", "10", "--no-charts"],
    "sweep": ["--vary", "k=0:1:2", "--runs", "10", "--workers", "1", "--out", "{out}", "--quiet"],
    "trace": [],
    "play": ["--as", "a"],
    "report": ["--runs", "10", "--out", "{out}/r.html"],
    "params": [],
    "fit": ["--data", str(ROOT / "data" / "logs" / "tit_for_tat.csv"), "--free", "k"],
    "check": ["--data", str(ROOT / "data" / "logs" / "tit_for_tat.csv"), "--no-charts"],
}
"""Every command that reads a scenario FILE, with arguments that would otherwise run it."""


def file_argv(name: str, file, out) -> list[str]:
    return [name, str(file), *(a.replace("{out}", str(out)) for a in FILE_COMMANDS[name])]


def test_every_command_with_a_file_is_listed_here():
    from tests.cli.test_startup import COMMANDS

    assert set(COMMANDS) - {"list", "schema", "describe", "serve"} == set(FILE_COMMANDS)


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs here")
@pytest.mark.parametrize("name", list(FILE_COMMANDS))
def test_a_fifo_as_file_is_refused_at_once_by_every_command(name, tmp_path, capsys):
    """`sweep` read FILE itself (Path.read_text) and blocked on a FIFO for ever."""
    import threading

    fifo = tmp_path / "pipe.yaml"
    os.mkfifo(fifo)
    status: list[int] = []
    thread = threading.Thread(
        target=lambda: status.append(main(file_argv(name, fifo, tmp_path / "out"))), daemon=True
    )
    thread.start()
    thread.join(20)
    if thread.is_alive():  # blocked in open(): give it a writer, so that the thread can end
        os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
        thread.join(20)
        pytest.fail(f"{name} blocked on a FIFO")
    out, err = capsys.readouterr()
    assert status == [2], out + err
    assert f"{fifo}:1:1: cannot read a FIFO (named pipe)" in out + err


@pytest.mark.parametrize("name", list(FILE_COMMANDS))
def test_bytes_that_are_not_utf8_are_located_by_every_command(name, tmp_path, capsys):
    path = tmp_path / "bytes.yaml"
    path.write_bytes(b"schema: 1\ntitle: caf\xe9\n")
    assert main(file_argv(name, path, tmp_path / "out")) == 2
    out, err = capsys.readouterr()
    assert f"{path}:2:11: the file is not UTF-8 text (byte 0xe9 cannot be decoded)" in out + err


@pytest.mark.skipif(not os.path.exists("/dev/zero"), reason="no /dev/zero")
def test_sweep_refuses_dev_zero_without_reading_it():
    """`sweep /dev/zero` read without end: MemoryError, exit 1 (here under 1 GiB of memory)."""
    import resource

    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (1 << 30, 1 << 30))

    proc = subprocess.run(
        [sys.executable, "-m", "sim", *file_argv("sweep", "/dev/zero", ROOT / "nowhere")],
        capture_output=True,
        text=True,
        cwd=ROOT,
        preexec_fn=limit,
        timeout=60,
    )
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr == "/dev/zero:1:1: cannot read a device: a scenario must be a regular file\n"
    assert not (ROOT / "nowhere").exists()

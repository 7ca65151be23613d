"""Signals, streams and outputs that cannot be written: every command ends with a documented
status (0, 2, 130, 141, 143), one line of explanation at most, never a traceback, and leaves no
temporary or half-written file behind."""

from __future__ import annotations

import errno
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from sim.cli.main import main
from tests.conftest import CAMP_TAJI, ROOT

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals and devices")


def command(*args: str) -> list[str]:
    return [sys.executable, "-m", "sim", *args]


def env(**extra: str) -> dict[str, str]:
    return {**os.environ, "COLUMNS": "80", **extra}


def no_traceback(err: bytes | str) -> None:
    text = err.decode(errors="replace") if isinstance(err, bytes) else err
    assert "Traceback" not in text and "internal error" not in text, text


# --- signals ---------------------------------------------------------------------------------


def test_sigint_while_the_package_is_imported_exits_130_quietly():
    """The first moments of the program, before `main` runs: a Ctrl-C then leaves at once."""
    driver = (
        "import os, signal, sys, time\n"
        "sys.argv[0] = 'escalation'\n"
        "import sim.cli\n"
        "os.kill(os.getpid(), signal.SIGINT)\n"
        "time.sleep(30)\n"
        "print('not reached')\n"
    )
    proc = subprocess.run([sys.executable, "-c", driver], cwd=ROOT, capture_output=True, timeout=60)
    assert proc.returncode == 130 and proc.stdout == b"" and proc.stderr == b""


def test_importing_the_package_as_a_library_changes_no_signal_handler():
    driver = "import signal, sim.cli.main; print(signal.getsignal(signal.SIGINT).__name__)"
    proc = subprocess.run([sys.executable, "-c", driver], cwd=ROOT, capture_output=True)
    assert proc.stdout.strip() == b"default_int_handler"


@pytest.mark.parametrize("signum,status", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_a_signal_at_any_moment_of_a_command_exits_quietly(signum, status):
    """From just after Python's own start-up (about 0.05 s, which no program can intercept) to
    mid-simulation: the status of the signal, no traceback."""
    for delay in (0.12, 0.2, 0.3, 0.45, 0.7, 1.2):
        proc = subprocess.Popen(
            command("run", str(CAMP_TAJI), "--runs", "400000", "--no-charts"),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            cwd=ROOT,
            env=env(),
        )
        time.sleep(delay)
        proc.send_signal(signum)
        out, err = proc.communicate(timeout=60)
        assert proc.returncode in (status, -signum), (delay, err.decode())
        no_traceback(err)
        assert err.decode().strip() in ("", "interrupted"), (delay, err.decode())


@pytest.mark.parametrize("signum,status", [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_a_signal_while_charts_are_written_leaves_no_temporary_file(tmp_path, signum, status):
    out_dir = tmp_path / "charts"
    for delay in (0.0, 0.15, 0.4, 0.8):
        proc = subprocess.Popen(
            command("run", str(CAMP_TAJI), "--runs", "2000", "--out", str(out_dir)),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            cwd=ROOT,
            env=env(),
        )
        seen = b""
        while b"Payoffs and moves" not in seen:  # the table is out: the charts come next
            chunk = proc.stdout.read1(65536)
            assert chunk, "the run ended before its table"
            seen += chunk
        time.sleep(delay)
        proc.send_signal(signum)
        _, err = proc.communicate(timeout=60)
        no_traceback(err)
        assert proc.returncode in (status, 0), err.decode()  # 0: it had finished already
        leftovers = [p.name for p in out_dir.iterdir() if p.name.startswith(".")]
        assert leftovers == [], (delay, leftovers)
        for chart in out_dir.glob("*.png"):  # what is there is whole
            assert chart.read_bytes()[-8:] == b"IEND\xaeB`\x82"


# --- closed pipes ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "args",
    [
        ["run", str(CAMP_TAJI), "--runs", "500", "--no-charts"],
        ["run", str(CAMP_TAJI), "--runs", "500", "--json", "--no-charts"],
        ["trace", str(CAMP_TAJI)],
        ["exact", "chicken"],
        ["compare", "chicken", "--actor", "us", "--runs", "300", "--no-charts"],
        ["list"],
        ["params", str(CAMP_TAJI)],
        ["validate", *[str(p) for p in sorted((ROOT / "scenarios").glob("*.yaml"))] * 200],
    ],
    ids=["run", "run-json", "trace", "exact", "compare", "list", "params", "validate"],
)
def test_a_closed_pipe_ends_quietly_with_141_or_0(args):
    """`escalation ... | head -1`."""
    proc = subprocess.Popen(
        command(*args), stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=ROOT, env=env()
    )
    proc.stdout.readline()
    proc.stdout.close()
    err = proc.stderr.read()
    proc.wait(timeout=120)
    assert proc.returncode in (141, 0), err.decode()
    assert err == b"", err.decode()
    if args[0] == "validate":  # more than a pipe holds: the reader's leaving must show
        assert proc.returncode == 141


# --- play's streams --------------------------------------------------------------------------

PLAY = ["play", str(CAMP_TAJI), "--as", "us", "--seed", "1", "--compare-runs", "500"]


def play(stdin, stdout=subprocess.PIPE, preexec=None, timeout=120) -> subprocess.CompletedProcess:
    return subprocess.run(
        command(*PLAY),
        stdin=stdin,
        stdout=stdout,
        stderr=subprocess.PIPE,
        cwd=ROOT,
        env=env(),
        preexec_fn=preexec,
        timeout=timeout,
    )


def test_play_with_stdin_closed_ends_as_at_the_end_of_input():
    proc = play(None, preexec=lambda: os.close(0))
    assert proc.returncode == 0, proc.stderr.decode()
    assert b"Game over (end of input)" in proc.stdout
    no_traceback(proc.stderr)


def test_play_with_endless_input_from_dev_zero_stops_with_2():
    with open("/dev/zero", "rb") as zero:
        proc = play(zero, timeout=60)
    assert proc.returncode == 2, proc.stderr.decode()
    assert b"Game over (an answer longer than 1,000 characters)" in proc.stdout
    no_traceback(proc.stderr)


def test_play_with_random_bytes_stops_with_0_or_2(tmp_path):
    noise = tmp_path / "noise"
    noise.write_bytes(os.urandom(10_000))
    with open(noise, "rb") as f:
        proc = play(f, timeout=60)
    assert proc.returncode in (0, 2), proc.stderr.decode()
    no_traceback(proc.stderr)


def test_play_with_endless_wrong_answers_stops_with_2(tmp_path):
    answers = tmp_path / "answers"
    answers.write_text("x\n" * 5000)
    with open(answers, "rb") as f:
        proc = play(f, timeout=60)
    assert proc.returncode == 2 and b"100 answers in a row were not moves" in proc.stdout
    no_traceback(proc.stderr)


def test_play_into_a_closed_pipe_exits_141():
    proc = subprocess.Popen(
        command(*PLAY),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=ROOT,
        env=env(),
    )
    proc.stdout.readline()
    proc.stdout.close()
    try:
        proc.stdin.write(b"1\n" * 40)
        proc.stdin.close()
    except BrokenPipeError:
        pass
    err = proc.stderr.read()
    proc.wait(timeout=120)
    assert proc.returncode == 141 and err == b"", err.decode()


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="no /dev/full")
def test_play_and_run_into_a_full_disk_exit_2_with_one_line(tmp_path):
    answers = tmp_path / "answers"
    answers.write_text("1\n" * 40)
    with open(answers, "rb") as f, open("/dev/full", "w") as full:
        proc = play(f, stdout=full)
    assert proc.returncode == 2
    assert proc.stderr.decode() == (
        "escalation play: error: cannot write the output: No space left on device\n"
    )
    with open("/dev/full", "w") as full:
        proc = subprocess.run(
            command("run", "chicken", "--runs", "100", "--no-charts"),
            stdout=full,
            stderr=subprocess.PIPE,
            cwd=ROOT,
        )
    assert proc.returncode == 2 and proc.stderr.count(b"\n") == 1, proc.stderr.decode()


# --- outputs that cannot be written ------------------------------------------------------------

OUT_COMMANDS = {
    "exact": ["exact", "chicken", "--out", "{out}"],
    "report": ["report", "chicken", "--runs", "300", "--out", "{out}/report.html"],
    "sweep": ["sweep", "chicken", "--vary", "prize=0:1:2", "--runs", "100", "--workers", "1"]
    + ["--out", "{out}", "--quiet"],
    "compare": ["compare", "chicken", "--actor", "us", "--runs", "300", "--out", "{out}"],
    "run": ["run", "chicken", "--runs", "300", "--out", "{out}"],
}


def _argv(name: str, out: Path) -> list[str]:
    return [a.replace("{out}", str(out)) for a in OUT_COMMANDS[name]]


@pytest.mark.parametrize("name", list(OUT_COMMANDS))
def test_out_through_a_file_exits_2_before_any_work(name, tmp_path, capsys):
    blocker = tmp_path / "blocker"
    blocker.write_text("")
    assert main(_argv(name, blocker / "x")) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err.count("\n") == 1
    assert captured.err.startswith(f"escalation {name}: error: cannot write ")
    assert "Not a directory" in captured.err or "is a file" in captured.err
    assert [p.name for p in tmp_path.iterdir()] == ["blocker"]


def _unprivileged() -> list[str] | None:
    """A prefix that runs a command without the power to ignore file permissions."""
    if os.geteuid() != 0:
        return []
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        return None
    return [setpriv, "--bounding-set=-dac_override,-dac_read_search,-fowner"]


@pytest.mark.parametrize("name", list(OUT_COMMANDS))
def test_out_in_a_read_only_folder_exits_2_with_one_message(name, tmp_path):
    prefix = _unprivileged()
    if prefix is None:
        pytest.skip("running as root without setpriv: permissions cannot be enforced")
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o555)
    try:
        proc = subprocess.run(
            prefix + command(*_argv(name, locked / "out")),
            capture_output=True,
            text=True,
            cwd=ROOT,
            env=env(),
            timeout=120,
        )
    finally:
        locked.chmod(0o755)
    assert proc.returncode == 2, proc.stderr
    assert proc.stdout == "" and proc.stderr.count("\n") == 1, proc.stderr
    assert "cannot write" in proc.stderr and "Permission denied" in proc.stderr
    assert list(locked.iterdir()) == []


def _disk_full(monkeypatch) -> None:
    """Every file written from now on fails as on a full disk (at fsync, after the data)."""

    def full(fd: int) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, "fsync", full)


@pytest.mark.parametrize("name", ["report", "compare", "run", "exact", "sweep"])
def test_a_full_disk_exits_2_and_leaves_nothing_half_written(name, tmp_path, monkeypatch, capsys):
    out = tmp_path / "out"
    out.mkdir()
    _disk_full(monkeypatch)
    assert main(_argv(name, out)) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "No space left on device" in err, err
    assert f"escalation {name}: error: cannot write" in err
    names = [p.name for p in out.rglob("*")]
    assert not [n for n in names if n.startswith(".") and "journal" not in n], names
    if name == "report":
        assert names == []


def test_play_reads_a_huge_number_or_a_unicode_digit_as_a_wrong_answer():
    """int() of more than 4,300 digits raises, of '²' too: both are asked again, not a crash."""
    import io

    from sim.model.loading import load_scenario
    from sim.play.session import Game
    from sim.solvers.prepare import prepare_model

    model = prepare_model(load_scenario(ROOT / "scenarios" / "chicken.yaml"))
    answers = iter(["9" * 5000, "²", "?²", *["1"] * 5])  # as typed at a terminal (input())
    out = io.StringIO()
    status = Game(model, "us", 1, lambda prompt: next(answers), out, compare_runs=0).play()
    assert status == 0 and "The crisis is over" in out.getvalue()
    assert out.getvalue().count("Please type a number from 1 to 2") == 2

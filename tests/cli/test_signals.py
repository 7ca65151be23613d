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


SIM_STARTED = b"<the code of sim started>\n"
HOOKS = {
    # written to stderr when the first code of the package runs (sim/__init__.py is executed)
    "started": (
        "import os, sys\n"
        "def hook(event, args):\n"
        "    if event == 'exec' and getattr(args[0], 'co_filename', '').endswith(SUFFIX):\n"
        "        os.write(2, MARK)\n"
        "sys.addaudithook(hook)\n"
    ),
    # a SIGINT once sim/__init__.py has run, just before sim/cli/__init__.py does
    "sigint_before_sim_cli": (
        "import os, signal, sys\n"
        "CLI = os.path.join('sim', 'cli', '__init__.py')\n"
        "def hook(event, args):\n"
        "    if event == 'exec' and getattr(args[0], 'co_filename', '').endswith(CLI):\n"
        "        os.kill(os.getpid(), signal.SIGINT)\n"
        "sys.addaudithook(hook)\n"
    ),
    # in a worker process, while its interpreter starts (before any code of sim): a Ctrl-C at
    # the terminal, which goes to every process of the group
    "ctrl_c_while_a_worker_starts": (
        "import os, signal, sys\n"
        "def hook(event, args):\n"
        "    if event == 'import' and args[0] == 'multiprocessing.resource_tracker' and WORKER:\n"
        "        os.killpg(os.getpgid(0), signal.SIGINT)\n"
        "WORKER = '--multiprocessing-fork' in getattr(sys, 'orig_argv', ())\n"
        "sys.addaudithook(hook)\n"
    ),
}


def with_hook(tmp_path: Path, name: str) -> dict[str, str]:
    """An environment whose interpreter runs HOOKS[name] at start-up (as sitecustomize) and
    imports this checkout's `sim`."""
    folder = tmp_path / f"hook-{name}"
    folder.mkdir(exist_ok=True)
    suffix = os.path.join("sim", "__init__.py")
    code = f"SUFFIX = {suffix!r}\nMARK = {SIM_STARTED!r}\n" + HOOKS[name]
    (folder / "sitecustomize.py").write_text(code)
    return env(PYTHONPATH=os.pathsep.join([str(folder), str(ROOT)]))


SCRIPT = """import sys
from sim.cli.main import entry_point
if __name__ == '__main__':
    sys.argv[0] = sys.argv[0].removesuffix('.exe')
    sys.exit(entry_point())
"""


def program(entry: str, tmp_path: Path, *args: str) -> list[str]:
    """`escalation ARGS` (the console script pip made, or one written as pip writes it; the
    `escalation = "sim.cli.main:entry_point"` of pyproject.toml) or `python -m sim ARGS`."""
    if entry == "module":
        return command(*args)
    script = Path(sys.executable).with_name("escalation")
    if not script.is_file():
        script = tmp_path / "escalation"
        script.write_text(SCRIPT)
    return [sys.executable, str(script), *args]


def signalled(argv: list[str], environ: dict[str, str], delay: float, signum: int):
    """Run `argv` (under with_hook(..., "started")), send `signum` after `delay` seconds:
    (status, stderr before the code of sim started or all of it, stderr after, or None)."""
    proc = subprocess.Popen(
        argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=ROOT, env=environ
    )
    if delay:
        time.sleep(delay)
    proc.send_signal(signum)
    _, err = proc.communicate(timeout=60)
    before, started, after = err.partition(SIM_STARTED)
    text = before.decode(errors="replace")
    return proc.returncode, text, after.decode(errors="replace") if started else None


def check_quiet(status: int, before: str, after: str | None, signum: int, expected: int, delay):
    """Once the code of sim has started, a signal means `expected` (never death by the signal,
    -signum) and at most the line "interrupted" on stderr.

    Before, CPython itself is starting (the process, site and the .pth files of site-packages,
    the check of the script path): no program's code can run yet. The process then dies by
    the signal (-signum), or, for SIGINT once CPython has its own handler, CPython prints a
    KeyboardInterrupt of its own start-up (never from a frame of sim) and exits 1, or even
    prints it and goes on (pymain_get_importer), so the command runs. The test tells the two
    apart by what reached stderr before sim's first code ran."""
    assert f"{os.sep}sim{os.sep}" not in before, (delay, before)
    if after is None or before:  # the signal came while CPython started
        assert status in (-signum, 1, expected, 0), (delay, status, before)
        assert signum == signal.SIGINT or (status == -signum and not before), (delay, before)
        if after is not None:
            assert after.strip() in ("", "interrupted"), (delay, after)
        return
    assert status == expected, (delay, status, after)
    assert after.strip() in ("", "interrupted"), (delay, after)


ENTRIES = ["module", "script"]


@pytest.mark.parametrize("entry", ENTRIES)
def test_sigint_just_after_the_package_started_exits_130_quietly(entry, tmp_path):
    """The handler is in place from the package's first statement (sim/__init__.py), not only
    once the command line's package (sim.cli) is imported: the SIGINT comes in between."""
    argv = program(entry, tmp_path, "run", "chicken", "--runs", "100", "--no-charts")
    proc = subprocess.run(
        argv, capture_output=True, cwd=ROOT, env=with_hook(tmp_path, "sigint_before_sim_cli")
    )
    assert proc.returncode == 130, proc.stderr.decode()
    assert proc.stdout == b"" and proc.stderr == b""


@pytest.mark.parametrize("entry", ENTRIES)
@pytest.mark.parametrize("signum,status", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_a_signal_in_the_first_0_3_s_exits_quietly(entry, signum, status, tmp_path):
    """At 0 to 300 ms, while the interpreter starts and the imports run: see check_quiet."""
    argv = program(entry, tmp_path, "run", "chicken", "--runs", "4000000", "--no-charts")
    environ = with_hook(tmp_path, "started")
    late = None
    for delay in (0, 0.01, 0.03, 0.06, 0.15, 0.3):
        late = signalled(argv, environ, delay, signum)
        check_quiet(*late, signum, status, delay)
    assert late[2] is not None and not late[1], "sim had not started after 0.3 s: nothing tested"


@pytest.mark.parametrize("signum,status", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_a_signal_at_any_moment_of_a_command_exits_quietly(signum, status, tmp_path):
    """From the imports to mid-simulation: the status of the signal, no traceback."""
    argv = command("run", str(CAMP_TAJI), "--runs", "400000", "--no-charts")
    environ = with_hook(tmp_path, "started")
    for delay in (0.12, 0.2, 0.3, 0.45, 0.7, 1.2):
        check_quiet(*signalled(argv, environ, delay, signum), signum, status, delay)


@pytest.mark.parametrize("entry", ENTRIES)
@pytest.mark.parametrize("name", ["sweep", "run"])
def test_ctrl_c_while_the_workers_start_prints_no_traceback(name, entry, tmp_path):
    """`--workers 2` at a terminal: a worker whose interpreter was still starting printed a
    KeyboardInterrupt traceback of its own (the program still exited 130). Workers now start
    with SIGINT blocked, until sim's quiet handler is in place."""
    argv = ["sweep", "chicken", "--vary", "prize=0:5:40", "--runs", "20000", "--workers", "2"]
    argv += ["--out", str(tmp_path / "sweep")]
    if name == "run":
        argv = ["run", "chicken", "--runs", "400000", "--workers", "2"]
    proc = subprocess.run(
        program(entry, tmp_path, *argv, "--no-charts", "--quiet"),
        capture_output=True,
        cwd=ROOT,
        env=with_hook(tmp_path, "ctrl_c_while_a_worker_starts"),
        start_new_session=True,  # the group that the Ctrl-C goes to: this command only
        timeout=120,
    )
    err = proc.stderr.decode()
    assert proc.returncode == 130, err
    assert err.startswith("interrupted\n") and "Traceback" not in err, err


def test_a_library_s_workers_start_as_python_starts_them():
    """Only the program's workers start with SIGINT blocked (sim.engine.workers)."""
    from sim.engine.workers import spawn_context

    assert type(spawn_context()).__name__ == "SpawnContext"


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


CLOSED_STDOUT = {
    "sweep": ["sweep", "chicken", "--vary", "prize=0:1:2", "--runs", "100", "--workers", "1"]
    + ["--out", "{out}"],
    "run": ["run", "chicken", "--runs", "300", "--json", "--no-charts"],
    "play": ["play", "chicken", "--as", "us", "--seed", "1", "--compare-runs", "100"],
}


@pytest.mark.parametrize("name", list(CLOSED_STDOUT))
def test_a_command_with_stdout_closed_exits_0(name, tmp_path):
    """`escalation ... >&-`: Python has no sys.stdout then (None); `sweep` asked it isatty()
    and ended in an internal error, status 1. What the command writes to files is written."""
    proc = subprocess.run(
        command(*(a.replace("{out}", str(tmp_path)) for a in CLOSED_STDOUT[name])),
        stdin=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        cwd=ROOT,
        env=env(),
        preexec_fn=lambda: os.close(1),
        timeout=120,
    )
    err = proc.stderr.decode()
    assert proc.returncode == 0, err
    no_traceback(err)
    assert name != "sweep" or (tmp_path / "points.csv").is_file()


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

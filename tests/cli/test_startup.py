"""Start-up: building the parser imports no command's machinery (see sim/cli/main.py).

Each check runs in a fresh interpreter and reads its sys.modules; no timing is asserted."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SCENARIO = REPO / "scenarios" / "camp_taji_2020.yaml"
COMMANDS = (
    *("list", "validate", "run", "schema"),  # built into sim/cli/main.py
    *(
        "sweep",
        "compare",
        "trace",
        "exact",
        "play",
        "report",
        "params",
        "fit",
        "check",
        "serve",
    ),  # COMMAND_MODULES
    "describe",  # the alias of params
)
HEAVY = (
    "numpy",
    "scipy",
    "matplotlib",
    "rich",
    "pydantic",
    "ruamel",
    "SALib",
    "pandas",
    "dask",
    "starlette",
    "uvicorn",
    "numba",
)
MACHINERY = (  # sim.format is left out: sim.format.library finds scenarios, with no pydantic
    "sim.api",
    "sim.play",
    "sim.outputs",
    "sim.analysis",
    "sim.solvers",
    "sim.engine",
    "sim.results",
    "sim.model",
)
MARK = "--- sys.modules ---"
DRIVER = f"""
import sys
from sim.cli.main import main
status = main(sys.argv[1:])
print({MARK!r})
print(status)
print(*sorted(sys.modules), sep="\\n")
"""


def modules_after(*argv: str) -> tuple[int, set[str]]:
    """The exit status of `escalation ARGV...` and every module it left in sys.modules."""
    result = subprocess.run(
        [sys.executable, "-c", DRIVER, *argv],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert MARK in result.stdout, result.stdout + result.stderr
    status, *modules = result.stdout.split(MARK + "\n", 1)[1].split()
    return int(status), set(modules)


def loaded(modules: set[str], packages: tuple[str, ...]) -> list[str]:
    """The modules that are one of `packages` or inside one."""
    return sorted(
        m for m in modules if m in packages or m.startswith(tuple(f"{p}." for p in packages))
    )


@pytest.mark.parametrize("argv", [["--help"], ["--version"]])
def test_help_and_version_import_no_machinery(argv):
    status, modules = modules_after(*argv)
    assert status == 0
    assert loaded(modules, HEAVY) == []
    assert loaded(modules, MACHINERY) == []


@pytest.mark.parametrize("command", COMMANDS)
def test_each_commands_help_imports_no_machinery(command):
    status, modules = modules_after(command, "--help")
    assert status == 0
    assert loaded(modules, HEAVY) == []
    assert loaded(modules, MACHINERY) == []


def test_python_dash_m_sim_help_imports_no_machinery():
    """The `python -m sim` path: `-X importtime` names every module loaded by an import
    statement, the third-party ones included."""
    result = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "sim", "--help"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert "usage: escalation" in result.stdout
    names = {line.rsplit("|", 1)[-1].strip() for line in result.stderr.splitlines()}
    assert loaded(names, HEAVY) == []
    assert loaded(names, ("sim.engine", "sim.analysis", "sim.outputs")) == []


def test_validate_imports_no_charts_and_no_scipy():
    status, modules = modules_after("validate", str(SCENARIO))
    assert status == 0
    assert loaded(modules, ("matplotlib", "scipy")) == []
    assert loaded(modules, ("sim.analysis", "sim.outputs", "sim.play")) == []


def test_exact_max_states_default_matches_the_solver():
    from sim.cli.exact import MAX_STATES
    from sim.solvers.exact import DEFAULT_MAX_STATES

    assert MAX_STATES == DEFAULT_MAX_STATES


def test_every_command_is_checked_here():
    import importlib

    from sim.cli.main import COMMAND_MODULES

    further = {importlib.import_module(name).COMMAND for name in COMMAND_MODULES}
    assert further <= set(COMMANDS), "add the new command to COMMANDS"


def test_check_runs_default_matches_the_checker():
    from sim.analysis.check import DEFAULT_RUNS as CHECKER
    from sim.cli.check import DEFAULT_RUNS

    assert DEFAULT_RUNS == CHECKER


RUN_LAZY = (
    "matplotlib",  # charts: only when they are written
    "scipy",
    "dask",
    "numba",
    "multiprocessing",  # a process pool: only for more than one worker
    "concurrent.futures",  # executors: only for a pool or Dask (with the logging it imports)
    "sim.engine.workers",
    "sim.engine.compiled",  # the compiled backend: only for --backend compiled
    "sim.analysis",
    "sim.play",
)
"""What `escalation run FILE --no-charts` on one worker does without: its start-up is part of
its speed (issue 16; benchmarks/startup.py measures it)."""


@pytest.mark.parametrize("extra", [["--no-charts"], ["--json"]])
def test_run_without_charts_imports_no_charts_pool_or_compiled_backend(extra):
    status, modules = modules_after("run", str(SCENARIO), "--runs", "200", *extra)
    assert status == 0
    assert loaded(modules, RUN_LAZY) == []
    if "--json" in extra:  # JSON for a script: no table, so no rich
        assert loaded(modules, ("rich", "sim.outputs")) == []


def test_run_writes_its_charts_in_parallel_the_same_files(tmp_path):
    """`run` writes half of its charts in a forked process (sim.outputs.charts.in_parallel):
    the files are those written one after another, byte for byte."""
    from sim.cli.main import main
    from sim.engine.runner import run_monte_carlo
    from sim.model.loading import load_scenario
    from sim.outputs.charts import write_run_charts
    from sim.solvers.prepare import prepare_model

    argv = ["run", str(SCENARIO), "--runs", "300", "--seed", "2", "--quiet"]
    assert main([*argv, "--out", str(tmp_path / "cli")]) == 0
    results = run_monte_carlo(prepare_model(load_scenario(SCENARIO), {}), 300, 2)
    one_by_one = write_run_charts(results, tmp_path / "serial")
    assert sorted(p.name for p in (tmp_path / "cli").iterdir()) == sorted(
        p.name for p in one_by_one
    )  # and no temporary file left behind
    for path in one_by_one:
        assert (tmp_path / "cli" / path.name).read_bytes() == path.read_bytes(), path.name


def test_a_chart_the_forked_process_cannot_write_is_an_output_error(tmp_path, capsys):
    """rung_occupancy.png is written by the forked process: its failure is reported by the
    command as any other chart's (exit status 2, the folder and the reason)."""
    from sim.cli.main import main

    out = tmp_path / "charts"
    (out / "rung_occupancy.png").mkdir(parents=True)  # a folder where the chart goes
    status = main(["run", str(SCENARIO), "--runs", "300", "--quiet", "--out", str(out)])
    err = capsys.readouterr().err
    assert status == 2
    assert f"escalation run: error: cannot write charts to {out}: " in err
    assert [p.name for p in out.iterdir() if p.name.startswith(".")] == []


def test_a_console_without_colours_does_not_highlight():
    """Highlighting only adds styles: where none are written (a pipe, a file) it is skipped,
    and with it the compiling of rich's repr regexes; in colour it stays."""
    import io

    from sim.outputs.tables import terminal

    assert terminal(file=io.StringIO())._highlight is False
    coloured = terminal(file=io.StringIO(), force_terminal=True, color_system="standard")
    assert coloured._highlight is True
    assert terminal(file=io.StringIO(), highlight=True)._highlight is True


def test_run_from_the_cache_imports_no_yaml_parser(tmp_path, monkeypatch):
    """The second run of a scenario takes its parse from the cache (sim/format/cache.py):
    ruamel's pure-Python parser is not even imported, and the bibliography is not read."""
    monkeypatch.setenv("ESCALATION_CACHE_DIR", str(tmp_path))
    argv = ("run", str(SCENARIO), "--runs", "200", "--json")
    status, first = modules_after(*argv)
    assert status == 0
    assert "ruamel.yaml" in first
    status, second = modules_after(*argv)
    assert status == 0
    assert loaded(second, ("ruamel.yaml",)) == []


def _full_parse(argv: list[str], capsys) -> tuple[int, str, str]:
    """Exit status, stdout and stderr of parsing `argv` with every command filled in."""
    from sim.cli.main import _parser

    try:
        _parser().parse_args(argv)
        status = 0
    except SystemExit as exc:
        status = int(exc.code or 0)
    out, err = capsys.readouterr()
    return status, out, err


@pytest.mark.parametrize("command", COMMANDS)
@pytest.mark.parametrize("extra", [["--help"], ["--no-such-option"], []])
def test_the_parser_of_one_command_helps_and_refuses_as_the_full_one(command, extra, capsys):
    """`escalation CMD ...` fills in only CMD's subparser (sim.cli.main._parser): its help and
    its refusals (an unknown option, a missing argument) are those of the parser with every
    command, character for character."""
    from sim.cli.main import _command_named, _parser

    argv = [command, *extra]
    expected = _full_parse(argv, capsys)
    if expected[0] == 0 and not extra:  # a command that runs without arguments: parse only
        _parser(_command_named(argv)).parse_args(argv)
        return
    try:
        _parser(_command_named(argv)).parse_args(argv)
        status = 0
    except SystemExit as exc:
        status = int(exc.code or 0)
    out, err = capsys.readouterr()
    assert (status, out, err) == expected
    assert status in (0, 2) and (out or err)


@pytest.mark.parametrize("argv", [[], ["--help"], ["bogus"], ["--version"], ["--", "run"]])
def test_the_top_level_help_and_errors_are_the_full_parsers(argv, capsys):
    from sim.cli.main import _command_named, _parser

    expected = _full_parse(argv, capsys)
    try:
        _parser(_command_named(argv)).parse_args(argv)
        status = 0
    except SystemExit as exc:
        status = int(exc.code or 0)
    assert (status, *capsys.readouterr()) == expected

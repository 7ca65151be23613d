"""`run`'s charts from a process forked before the runs (sim/outputs/early_charts.py)."""

from __future__ import annotations

import os
import threading

from sim.engine.runner import run_monte_carlo
from sim.outputs.charts import ChartOptions, write_run_charts
from sim.outputs.early_charts import EarlyCharts
from tests.conftest import BRANCH_LEAVES_RANGE, CAMP_TAJI


def gone(pid: int) -> bool:
    """The process was waited for already (no zombie left, no process running)."""
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        return True
    return False


def test_the_forked_copy_writes_the_files_written_in_one_process(tmp_path):
    """The copy prepares its own model from the scenario sent (the same model: the same
    charts, byte for byte, as in this process)."""
    from sim.model.loading import load_scenario
    from sim.solvers.prepare import prepare_model

    options = ChartOptions(dpi=60)
    overrides = {"kh_rationality": 1.5}
    with EarlyCharts() as writer:
        pid = writer.pid
        assert pid > 0
        scenario = load_scenario(CAMP_TAJI)  # after the fork, as in `run`
        writer.scenario(scenario, overrides)
        model = prepare_model(scenario, overrides)
        results = run_monte_carlo(model, 400, 3)
        early = writer.write(results, tmp_path / "early", options)
    assert gone(pid)
    here = write_run_charts(results, tmp_path / "here", options)
    assert [p.name for p in early] == [p.name for p in here]
    assert sorted(p.name for p in (tmp_path / "early").iterdir()) == sorted(p.name for p in here)
    for a, b in zip(early, here):
        assert a.read_bytes() == b.read_bytes(), a.name


def test_left_without_results_the_copy_ends_and_writes_nothing(tmp_path):
    for send in (False, True):
        with EarlyCharts() as writer:
            pid = writer.pid
            assert pid > 0
            if send:
                from sim.model.loading import load_scenario

                writer.scenario(load_scenario(CAMP_TAJI), {})
        assert writer.pid == -1 and gone(pid)
    assert list(tmp_path.iterdir()) == []


def test_an_error_in_the_runs_ends_the_copy(tmp_path, capsys, monkeypatch):
    """A run-time error after the fork (a branch probability out of range): exit 2 as ever,
    no chart, no process left."""
    from sim.cli.main import main

    forked = []
    fork = os.fork

    def recorded() -> int:
        pid = fork()
        forked.append(pid)
        return pid

    monkeypatch.setattr(os, "fork", recorded)
    path = tmp_path / "bad.yaml"
    path.write_text(BRANCH_LEAVES_RANGE)
    out = tmp_path / "charts"
    assert main(["run", str(path), "--runs", "100", "--quiet", "--out", str(out)]) == 2
    assert "error: " in capsys.readouterr().err
    assert list(out.iterdir()) == []
    assert len(forked) == 1 and gone(forked[0])


def test_where_it_cannot_fork_the_charts_are_drawn_here(camp_taji, tmp_path):
    """Another thread running (a notebook's kernel): no fork; the same files."""
    results = run_monte_carlo(camp_taji, 300, 1)
    stop = threading.Event()
    other = threading.Thread(target=stop.wait)
    other.start()
    try:
        with EarlyCharts() as writer:
            assert writer.pid == -1
            writer.scenario(camp_taji.scenario, {})
            paths = writer.write(results, tmp_path / "a", ChartOptions(dpi=50))
    finally:
        stop.set()
        other.join()
    here = write_run_charts(results, tmp_path / "b", ChartOptions(dpi=50))
    for a, b in zip(paths, here):
        assert a.read_bytes() == b.read_bytes(), a.name


def test_a_scenario_too_big_for_the_pipe_is_drawn_here(camp_taji, tmp_path, monkeypatch):
    """The scenario is sent only if it fits in the pipe (the run must not wait for the copy
    to read it): otherwise the copy is ended and the charts are drawn in this process."""
    from sim.outputs import early_charts

    monkeypatch.setattr(early_charts.fcntl, "fcntl", lambda fd, op, *a: 1000)  # a tiny pipe
    results = run_monte_carlo(camp_taji, 300, 1)
    with EarlyCharts() as writer:
        pid = writer.pid
        writer.scenario(camp_taji.scenario, {})
        assert writer.pid == -1 and gone(pid)
        paths = writer.write(results, tmp_path / "a", ChartOptions(dpi=50))
    here = write_run_charts(results, tmp_path / "b", ChartOptions(dpi=50))
    for a, b in zip(paths, here):
        assert a.read_bytes() == b.read_bytes(), a.name

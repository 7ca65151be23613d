"""`run`'s and `exact`'s charts from a process forked before the runs or the solve
(sim/outputs/early_charts.py)."""

from __future__ import annotations

import os
import threading

import pytest

from sim.engine.runner import run_monte_carlo
from sim.outputs.charts import ChartOptions, write_run_charts
from sim.outputs.early_charts import EarlyCharts
from tests.conftest import BRANCH_LEAVES_RANGE, ROOT


@pytest.fixture
def forking(monkeypatch):
    """A fork even if an earlier test of the session left a thread running (as `run` forks,
    the only thread of its process)."""
    from sim.outputs import early_charts

    monkeypatch.setattr(early_charts, "can_fork", lambda: True)


def gone(pid: int) -> bool:
    """The process was waited for already (no zombie left, no process running)."""
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        return True
    return False


def test_the_forked_copy_writes_the_files_written_in_one_process(camp_taji, tmp_path, forking):
    options = ChartOptions(dpi=60)
    with EarlyCharts(tmp_path / "early", options, shared=(camp_taji,)) as writer:
        pid = writer.pid
        assert pid > 0
        results = run_monte_carlo(camp_taji, 400, 3)  # after the fork, as in `run`
        early = writer.write(results)
    assert gone(pid)
    here = write_run_charts(results, tmp_path / "here", options)
    assert [p.name for p in early] == [p.name for p in here]
    assert sorted(p.name for p in (tmp_path / "early").iterdir()) == sorted(p.name for p in here)
    for a, b in zip(early, here):
        assert a.read_bytes() == b.read_bytes(), a.name


def test_left_without_results_the_copy_ends_and_writes_nothing(tmp_path, forking):
    with EarlyCharts(tmp_path / "none", ChartOptions()) as writer:
        pid = writer.pid
        assert pid > 0
    assert writer.pid == -1 and gone(pid)
    assert not (tmp_path / "none").exists()


def test_an_error_in_the_runs_ends_the_copy(tmp_path, capsys, forks, forking):
    """A run-time error after the fork (a branch probability out of range): exit 2 as ever,
    no chart, no process left."""
    from sim.cli.main import main

    path = tmp_path / "bad.yaml"
    path.write_text(BRANCH_LEAVES_RANGE)
    out = tmp_path / "charts"
    assert main(["run", str(path), "--runs", "100", "--quiet", "--out", str(out)]) == 2
    assert "error: " in capsys.readouterr().err
    assert list(out.iterdir()) == []
    assert len(forks) == 1 and gone(forks[0])


def test_where_it_cannot_fork_the_charts_are_drawn_here(camp_taji, tmp_path):
    """Another thread running (a notebook's kernel): no fork; the same files."""
    results = run_monte_carlo(camp_taji, 300, 1)
    stop = threading.Event()
    other = threading.Thread(target=stop.wait)
    other.start()
    try:
        with EarlyCharts(tmp_path / "a", ChartOptions(dpi=50), shared=(camp_taji,)) as writer:
            assert writer.pid == -1
            paths = writer.write(results)
    finally:
        stop.set()
        other.join()
    here = write_run_charts(results, tmp_path / "b", ChartOptions(dpi=50))
    for a, b in zip(paths, here):
        assert a.read_bytes() == b.read_bytes(), a.name


def test_exact_writes_its_charts_through_the_copy_as_it_would_alone(
    tmp_path, monkeypatch, forks, forking
):
    """`exact --out`: forked once, before the solve; the files of an in-process write."""
    import sim.solvers.exact as exact
    from sim.cli.main import main
    from sim.model.loading import load_scenario
    from sim.solvers.prepare import prepare_model

    forks_at_solve = []
    solve = exact.solve

    def solving(*args, **kwargs):
        forks_at_solve.append(len(forks))
        return solve(*args, **kwargs)

    monkeypatch.setattr(exact, "solve", solving)
    path = ROOT / "scenarios" / "chicken.yaml"
    out = tmp_path / "early"
    assert main(["exact", str(path), "--quiet", "--dpi", "40", "--out", str(out)]) == 0
    assert forks_at_solve == [1] and len(forks) == 1 and gone(forks[0])
    results = solve(prepare_model(load_scenario(path)))  # (not recorded: the real solver)
    here = write_run_charts(results, tmp_path / "here", ChartOptions(dpi=40))
    assert sorted(p.name for p in out.iterdir()) == sorted(p.name for p in here)
    for b in here:
        assert (out / b.name).read_bytes() == b.read_bytes(), b.name


def test_a_scenario_exact_cannot_solve_leaves_no_chart_and_no_process(
    tmp_path, capsys, forks, forking
):
    from sim.cli.main import main

    out = tmp_path / "charts"
    camp = ROOT / "scenarios" / "camp_taji_2020.yaml"
    assert main(["exact", str(camp), "--quiet", "--out", str(out)]) == 2
    assert "not exactly solvable" in capsys.readouterr().err
    assert not out.exists() or list(out.iterdir()) == []
    assert len(forks) == 1 and gone(forks[0])

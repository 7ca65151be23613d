"""Every heavy command on any executor: identical output, and clusters that fail loud.

`run`, `compare`, `report` and `sweep` give byte-identical output on this process, a process
pool and a Dask cluster (local, by address, by scheduler file). A cluster with no worker, a
worker whose `sim` differs and one without the package are one-line errors (exit status 2).
"""

from __future__ import annotations

import importlib.util
import json
import time

import numpy as np
import pytest

from sim.cli.main import main
from sim.engine.executors import ClusterError, ExecutorSpec, identity, open_executor, slots
from sim.engine.runner import run_monte_carlo, run_with_records
from sim.model.loading import load_scenario
from sim.solvers.prepare import prepare_model
from tests.conftest import SCENARIOS

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("distributed") is None,
    reason="dask.distributed not installed (extra [dask])",
)

CHICKEN = str(SCENARIOS / "chicken.yaml")
RUNS = "9000"  # three blocks of 4,096: enough to spread over workers


def _cluster(n_workers: int):
    """The LocalCluster `--executor dask` makes (no dashboard on port 8787: one there already
    made every later cluster warn that the port was taken)."""
    from dask.distributed import LocalCluster

    from sim.engine.executors import _local_cluster

    return _local_cluster(LocalCluster, n_workers)


@pytest.fixture(scope="module")
def cluster():
    """A two-worker Dask cluster shared by the identical-output tests."""
    with _cluster(2) as c:
        yield c


def scheduler_file(cluster, path) -> None:
    """What `dask scheduler --scheduler-file PATH` writes, as far as a client reads it (the
    client's own write_scheduler_file sometimes fails on its worker metrics)."""
    path.write_text(json.dumps({"type": "Scheduler", "address": cluster.scheduler_address}))


def output(capsys, *argv: str) -> str:
    capsys.readouterr()
    assert main([*argv, "--quiet"]) == 0
    return capsys.readouterr().out


def test_run_json_is_identical_for_every_executor(cluster, capsys, tmp_path):
    argv = ["run", CHICKEN, "--runs", RUNS, "--json", "--no-charts"]
    serial = output(capsys, *argv)
    assert output(capsys, *argv, "--workers", "2") == serial
    assert output(capsys, *argv, "--scheduler", cluster.scheduler_address) == serial
    scheduler_file(cluster, tmp_path / "scheduler.json")
    assert output(capsys, *argv, "--scheduler-file", str(tmp_path / "scheduler.json")) == serial
    precision = [*argv, "--precision", "0.02"]
    assert output(capsys, *precision, "--scheduler", cluster.scheduler_address) == output(
        capsys, *precision
    )


def test_run_on_a_local_dask_cluster_of_k_workers(capsys):
    argv = ["run", CHICKEN, "--runs", RUNS, "--json", "--no-charts"]
    assert output(capsys, *argv, "--executor", "dask", "--workers", "2") == output(capsys, *argv)


def test_compare_json_is_identical_for_every_executor(cluster, capsys):
    for mode in ("--first-move", "--policies"):
        argv = ["compare", CHICKEN, "--actor", "us", mode, "--runs", RUNS, "--json", "--no-charts"]
        serial = output(capsys, *argv)
        assert output(capsys, *argv, "--scheduler", cluster.scheduler_address) == serial
    assert output(capsys, *argv, "--workers", "2") == serial


def test_report_is_identical_for_every_executor(cluster, capsys, tmp_path):
    argv = ["report", CHICKEN, "--runs", RUNS]
    output(capsys, *argv, "--out", str(tmp_path / "serial.html"))
    output(
        capsys,
        *argv,
        "--out",
        str(tmp_path / "dask.html"),
        "--scheduler",
        cluster.scheduler_address,
    )
    page = (tmp_path / "serial.html").read_bytes()
    assert b"comparing" in page.lower() or b"doctrine" in page.lower()  # the compare section too
    assert (tmp_path / "dask.html").read_bytes() == page


def test_sweep_is_identical_on_a_scheduler_file(cluster, capsys, tmp_path):
    scheduler_file(cluster, tmp_path / "scheduler.json")
    argv = ["sweep", CHICKEN, "--vary", "prize=0:5:4", "--runs", "300", "--no-charts"]
    output(capsys, *argv, "--workers", "1", "--out", str(tmp_path / "one"))
    sched = ["--scheduler-file", str(tmp_path / "scheduler.json")]
    output(capsys, *argv, *sched, "--out", str(tmp_path / "dask"))
    points = (tmp_path / "one" / "points.csv").read_bytes()
    assert (tmp_path / "dask" / "points.csv").read_bytes() == points
    assert "--scheduler-file" in (tmp_path / "dask" / "sweep.json").read_text()


def test_the_engine_hands_its_blocks_to_the_executor(cluster):
    """Per-run records (what compare pairs) come back from the workers in run order."""
    model = prepare_model(load_scenario(CHICKEN))
    results, table = run_with_records(model, 9000, 3)
    spec = ExecutorSpec("dask", scheduler=cluster.scheduler_address)
    with open_executor(spec) as pool:
        assert slots(pool) == 2
        remote, remote_table = run_with_records(model, 9000, 3, executor=pool)
    assert remote.to_json() == results.to_json()
    for name in ("outcome", "steps", "payoffs"):
        assert np.array_equal(getattr(remote_table, name), getattr(table, name))


def test_the_python_api_takes_the_executor(cluster):
    import sim

    scenario = sim.load(CHICKEN)
    here = sim.run(scenario, runs=9000)
    there = sim.run(scenario, runs=9000, scheduler=cluster.scheduler_address)
    assert there.to_json() == here.to_json()
    both = sim.compare(
        scenario, "us", runs=9000, executor="dask", scheduler=cluster.scheduler_address
    )
    assert both.to_json() == sim.compare(scenario, "us", runs=9000).to_json()


# --- failing loud --------------------------------------------------------------------------


def test_a_scheduler_without_workers_times_out_with_a_message(capsys):
    with _cluster(0) as empty:
        start = time.perf_counter()
        argv = ["run", CHICKEN, "--runs", RUNS, "--no-charts", "--quiet"]
        status = main([*argv, "--scheduler", empty.scheduler_address, "--cluster-timeout", "1"])
        took = time.perf_counter() - start
    err = capsys.readouterr().err
    assert status == 2
    assert took < 10
    assert err.count("\n") == 1
    assert f"no worker joined the Dask scheduler {empty.scheduler_address} within 1 s" in err


def test_an_unreachable_scheduler_and_a_missing_scheduler_file(capsys, tmp_path):
    argv = ["run", CHICKEN, "--no-charts", "--quiet", "--cluster-timeout", "1"]
    assert main([*argv, "--scheduler", "tcp://127.0.0.1:9"]) == 2
    assert "cannot reach the Dask scheduler tcp://127.0.0.1:9" in capsys.readouterr().err
    assert main([*argv, "--scheduler-file", str(tmp_path / "none.json")]) == 2
    assert "no Dask scheduler file at" in capsys.readouterr().err


def test_a_worker_that_differs_or_lacks_the_package_is_named(capsys):
    from dask.distributed import Client

    # defined here (not at module level) so that they are sent by value: a worker cannot import
    # this test module
    def _set_version(version="0.0.0-other"):
        import sim

        sim.__version__ = version

    def _hide_sim():
        import sys

        class Hide:
            def find_spec(self, name, path=None, target=None):
                if name == "sim" or name.startswith("sim."):
                    raise ModuleNotFoundError(f"No module named '{name}'", name=name)
                return None

        for name in [n for n in sys.modules if n == "sim" or n.startswith("sim.")]:
            del sys.modules[name]
        sys.meta_path.insert(0, Hide())

    argv = ["run", CHICKEN, "--runs", RUNS, "--no-charts", "--quiet", "--cluster-timeout", "5"]
    with _cluster(1) as c, Client(c) as client:
        (worker,) = client.scheduler_info()["workers"]
        client.run(_set_version)
        assert main([*argv, "--scheduler", c.scheduler_address]) == 2
        err = capsys.readouterr().err
        assert f"Dask worker {worker}" in err
        assert f"runs sim 0.0.0-other, this process {identity()['version']}" in err
        client.run(_set_version, identity()["version"])
        model = prepare_model(load_scenario(CHICKEN))
        with open_executor(ExecutorSpec(scheduler=c.scheduler_address, timeout=5)) as pool:
            # the worker passed the check, then lost the package (as one that joins later
            # without it): its task fails with a message, the computation does not hang
            client.run(_hide_sim)
            with pytest.raises(ClusterError, match=f"Dask worker {worker} .*cannot import"):
                run_monte_carlo(model, 9000, 1, executor=pool)
        assert main([*argv, "--scheduler", c.scheduler_address]) == 2
        err = capsys.readouterr().err
        assert f"Dask worker {worker}" in err and "cannot import the package sim" in err
        assert err.count("\n") == 1


def test_the_executor_flags_are_on_every_heavy_command(capsys):
    for command in ("run", "compare", "report", "sweep"):
        assert main([command, "--help"]) == 0
        text = capsys.readouterr().out
        for flag in (
            "--workers",
            "--executor",
            "--scheduler",
            "--scheduler-file",
            "--cluster-timeout",
        ):
            assert flag in text, (command, flag)


def test_executor_spec_records_how_to_reproduce_it():
    assert ExecutorSpec().command_flags() == []
    assert ExecutorSpec("dask").command_flags() == ["--executor", "dask"]
    assert ExecutorSpec(scheduler="tcp://a:1").command_flags() == ["--scheduler", "tcp://a:1"]
    assert ExecutorSpec(scheduler_file="s.json").dask
    with pytest.raises(ValueError):
        ExecutorSpec(scheduler="tcp://a:1", scheduler_file="s.json")


def test_a_worker_with_other_code_is_named():
    """Same version, other code that decides the numbers (an edited checkout): refused."""
    from sim.engine.executors import check_workers

    here = identity()
    assert here["version"] and len(here["code"]) == 16

    class Client:
        def run(self, function, parts):
            there = function(parts)
            assert there == here  # the probe, sent by value, finds the same package
            return {"tcp://10.0.0.7:4000": {**there, "code": "0" * 16, "path": "/other/sim"}}

        def scheduler_info(self):
            return {"workers": {"tcp://10.0.0.7:4000": {"name": "node-7"}}}

    with pytest.raises(ClusterError) as caught:
        check_workers(Client())
    message = str(caught.value)
    assert message.startswith("Dask worker tcp://10.0.0.7:4000 (name node-7")
    assert f"runs sim code digest {'0' * 16}, this process {here['code']}" in message
    assert "there /other/sim" in message

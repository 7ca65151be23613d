"""`escalation sweep`: designs, identical bytes for any workers, kill -9 and resume, SALib, Dask."""

from __future__ import annotations

import csv
import importlib.util
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time

import numpy as np
import pytest

from sim.analysis.sweep import JOURNAL, Vary, make_design, point_metrics
from sim.cli.main import main
from sim.model.loading import load_scenario
from sim.solvers.prepare import prepare_model
from tests.conftest import CAMP_TAJI, ROOT

ONE_KNOB = ROOT / "tests" / "scenarios" / "sweep" / "one_knob.yaml"
GRID = ["--vary", "iran_resolve=0:1:3", "--vary", "kh_autonomy=0:1:4"]


def sweep(out, *args: str, scenario=CAMP_TAJI, workers: int = 1) -> int:
    command = ["sweep", str(scenario), *args, "--out", str(out), "--workers", str(workers)]
    return main([*command, "--quiet"])


def argv(text: str) -> list[str]:
    return text.split()


def read_csv(path) -> list[dict[str, str]]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def journal_count(path) -> int:
    try:
        db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5)
        try:
            return db.execute("SELECT COUNT(*) FROM points").fetchone()[0]
        finally:
            db.close()
    except sqlite3.Error:  # not created yet
        return 0


def test_points_csv_is_identical_to_the_byte_for_1_2_and_4_workers(tmp_path, capsys):
    outputs = []
    for workers in (1, 2, 4):
        out = tmp_path / f"w{workers}"
        assert sweep(out, *GRID, "--runs", "300", "--no-charts", workers=workers) == 0
        outputs.append((out / "points.csv").read_bytes())
    assert outputs[0] == outputs[1] == outputs[2]
    rows = read_csv(tmp_path / "w1" / "points.csv")
    assert len(rows) == 12 and [r["point"] for r in rows] == [str(i) for i in range(12)]
    assert [float(r["iran_resolve"]) for r in rows[::4]] == [0.0, 0.5, 1.0]
    assert [float(r["kh_autonomy"]) for r in rows[:4]] == [0.0, 1 / 3, 2 / 3, 1.0]
    for r in rows:
        total = sum(
            float(v) for k, v in r.items() if k.startswith("p_") and k[-3:] not in ("_lo", "_hi")
        )
        assert total == pytest.approx(1.0)
        assert float(r["p_war_lo"]) <= float(r["p_war"]) <= float(r["p_war_hi"])
    assert {"payoff_us", "payoff_iran", "payoff_kh", "steps_mean", "peak_rung_mean"} <= set(rows[0])


def test_every_point_depends_on_seed_and_point_index_alone(tmp_path, capsys):
    out = tmp_path / "s"
    assert (
        sweep(
            out, "--vary", "iran_resolve=0.2:0.8:2", "--runs", "300", "--seed", "5", "--no-charts"
        )
        == 0
    )
    rows = read_csv(out / "points.csv")
    scenario = load_scenario(CAMP_TAJI)
    for i, value in enumerate((0.2, 0.8)):
        model = prepare_model(scenario, {"iran_resolve": value})
        expected = point_metrics(model, 300, 5, i)
        assert [float(x) for x in list(rows[i].values())[2:]] == expected


def test_sweep_json_records_how_to_reproduce_the_sweep(tmp_path, capsys):
    out = tmp_path / "s"
    assert (
        sweep(
            out,
            "--vary",
            "kh_autonomy=0:1:3",
            "--runs",
            "200",
            "--seed",
            "3",
            "--set",
            "iran_resolve=0.9",
            "--no-charts",
        )
        == 0
    )
    meta = json.loads((out / "sweep.json").read_text())
    model = prepare_model(load_scenario(CAMP_TAJI))
    assert meta["scenario_sha256"] == model.sha256 and meta["seed"] == 3 and meta["runs"] == 200
    assert meta["version"] and meta["command"].startswith("escalation sweep ")
    assert (
        "--vary kh_autonomy=0:1:3" in meta["command"]
        and "--set iran_resolve=0.9" in meta["command"]
    )
    assert meta["design"]["points"] == [[0.0], [0.5], [1.0]]
    assert meta["fixed"] == {"iran_resolve": 0.9} and meta["parameters"]["iran_resolve"] == 0.9
    assert meta["columns"][0] == "point"


def test_kill_9_mid_sweep_then_resume_gives_the_uninterrupted_bytes(tmp_path, capsys):
    args = argv(
        "--vary iran_resolve=0:1:6 --vary kh_autonomy=0:1:5 --runs 2000 --seed 11 --no-charts"
    )
    killed = tmp_path / "killed"
    cmd = [
        sys.executable,
        "-m",
        "sim",
        "sweep",
        str(CAMP_TAJI),
        *args,
        "--out",
        str(killed),
        "--workers",
        "2",
        "--quiet",
    ]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(
        cmd,
        cwd=ROOT,
        env=env,
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + 60
    try:
        while journal_count(killed / JOURNAL) < 3:
            assert proc.poll() is None, proc.stderr.read().decode()
            assert time.monotonic() < deadline, "the sweep recorded no points in 60 s"
            time.sleep(0.01)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)  # the sweep and its pool workers, mid-sweep
        proc.wait()
    assert proc.returncode == -signal.SIGKILL
    done = journal_count(killed / JOURNAL)
    assert 3 <= done < 30, f"the sweep was not interrupted mid-way ({done} of 30 points)"
    assert not (killed / "points.csv").exists()

    capsys.readouterr()
    assert sweep(killed, *args, workers=2) == 2  # an unfinished sweep is not silently discarded
    assert "unfinished sweep" in capsys.readouterr().err
    assert sweep(killed, *args, "--resume", workers=2) == 0
    text = capsys.readouterr().out
    assert f"computed {30 - done} points" in text and f"{done} from the journal" in text

    whole = tmp_path / "whole"
    assert sweep(whole, *args, workers=1) == 0
    assert (killed / "points.csv").read_bytes() == (whole / "points.csv").read_bytes()


def test_resume_refuses_a_different_seed_design_or_scenario(tmp_path, capsys):
    out = tmp_path / "s"
    args = ["--vary", "iran_resolve=0:1:3", "--runs", "200", "--no-charts"]
    assert sweep(out, *args, "--seed", "1") == 0
    capsys.readouterr()
    assert sweep(out, *args, "--seed", "2", "--resume") == 2
    err = capsys.readouterr().err
    assert "cannot resume" in err and "different --seed (1, now 2)" in err
    assert "Traceback" not in err and err.count("\n") == 1

    other = ["--vary", "iran_resolve=0:1:4", "--runs", "200", "--no-charts", "--resume"]
    assert sweep(out, *other) == 2
    assert "different design" in capsys.readouterr().err

    edited = tmp_path / "edited.yaml"
    edited.write_text(CAMP_TAJI.read_text() + "\n# an edit\n")
    assert sweep(out, *args, "--resume", scenario=edited) == 2
    assert "different scenario file" in capsys.readouterr().err

    assert sweep(out, *args, "--resume") == 0  # the original settings still resume
    assert "computed 0 points" in capsys.readouterr().out


@pytest.mark.parametrize(
    "vary,message",
    [
        ("nonsense=0:1:3", "unknown parameter 'nonsense'"),
        ("kh_autonmy=0:1:3", "did you mean 'kh_autonomy'"),
        ("kh_autonomy=0:2:3", "outside the parameter's declared range [0, 1]"),
        ("kh_autonomy=-0.5:1:3", "outside the parameter's declared range"),
        ("kh_autonomy=0:1", "a grid needs the number of levels"),
        ("kh_autonomy=low:1:3", "LO and HI must be numbers"),
        ("kh_autonomy=0:1:many", "N must be a whole number"),
        ("kh_autonomy=1:0:3", "LO (1) is above HI (0)"),
        ("kh_autonomy", "expects NAME=LO:HI:N"),
    ],
)
def test_bad_vary_exits_2_with_one_clear_line(tmp_path, capsys, vary, message):
    assert sweep(tmp_path / "s", "--vary", vary) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err and err.count("\n") == 1
    assert not (tmp_path / "s").exists()


def test_other_bad_sweep_input_exits_2(tmp_path, capsys):
    out = tmp_path / "s"
    assert sweep(out) == 2
    assert "at least one --vary" in capsys.readouterr().err
    assert sweep(out, "--vary", "kh_autonomy=0:1:3", "--metric", "nope") == 2
    assert "unknown metric 'nope'" in capsys.readouterr().err
    assert sweep(out, "--vary", "kh_autonomy=0:1", "--method", "sobol", "--samples", "10") == 2
    assert "power of 2" in capsys.readouterr().err
    assert sweep(out, "--vary", "kh_autonomy=0:1:2", "--set", "kh_autonomy=0.5") == 2
    assert "both to --vary and to --set" in capsys.readouterr().err


def test_latin_hypercube_is_seeded_stratified_and_in_range():
    varies = [Vary.parse("a=0:1"), Vary.parse("b=2:4")]
    design = make_design(varies, "lhs", 20, seed=7)
    assert design == make_design(varies, "lhs", 20, seed=7)
    assert design != make_design(varies, "lhs", 20, seed=8)
    x = np.array(design.points)
    assert x.shape == (20, 2)
    assert sorted(np.floor(x[:, 0] * 20).astype(int)) == list(range(20))
    assert sorted(np.floor((x[:, 1] - 2) / 2 * 20).astype(int)) == list(range(20))


def test_sobol_indices_find_the_one_parameter_that_matters(tmp_path, capsys):
    out = tmp_path / "s"
    args = argv(
        "--vary hawkishness=0:1 --vary noise_a=0:1 --vary noise_b=0:1 --method sobol "
        "--samples 64 --runs 500"
    )
    assert sweep(out, *args, scenario=ONE_KNOB) == 0
    assert len(read_csv(out / "points.csv")) == 64 * (3 + 2)
    idx = {(r["metric"], r["parameter"]): r for r in read_csv(out / "sobol_indices.csv")}
    st = {p: float(idx["p_war", p]["ST"]) for p in ("hawkishness", "noise_a", "noise_b")}
    assert st["hawkishness"] == pytest.approx(1, abs=0.1)
    assert st["noise_a"] < 0.03 and st["noise_b"] < 0.03
    assert float(idx["p_war", "hawkishness"]["S1"]) == pytest.approx(1, abs=0.15)
    assert float(idx["p_war", "hawkishness"]["ST_conf"]) > 0
    payoff = {p: float(idx["payoff_a", p]["ST"]) for p in ("hawkishness", "noise_a", "noise_b")}
    assert payoff["hawkishness"] < 0.01
    assert payoff["noise_a"] == pytest.approx(0.5, abs=0.1)
    assert payoff["noise_b"] == pytest.approx(0.5, abs=0.1)
    assert (out / "sweep_sobol_p_war.png").read_bytes()[:4] == b"\x89PNG"
    assert (out / "sweep_marginals.png").exists()
    assert "Sobol indices of p_war" in capsys.readouterr().out


@pytest.mark.parametrize(
    "varies,chart",
    [
        (["hawkishness=0:1:5"], "sweep_lines.png"),
        (["hawkishness=0:1:4", "noise_a=0:1:3"], "sweep_heatmap_p_war.png"),
        (["hawkishness=0:1:3", "noise_a=0:1:2", "noise_b=0:1:2"], "sweep_marginals.png"),
    ],
)
def test_charts_for_one_two_and_more_parameters(tmp_path, capsys, varies, chart):
    args = [a for v in varies for a in ("--vary", v)]
    assert sweep(tmp_path, *args, "--runs", "200", "--metric", "war", scenario=ONE_KNOB) == 0
    pngs = sorted(p.name for p in tmp_path.glob("sweep_*.png"))
    assert pngs == [chart]
    assert (tmp_path / chart).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_lhs_heatmap_of_a_payoff(tmp_path, capsys):
    args = argv(
        "--vary hawkishness=0:1 --vary noise_a=0:1 --method lhs --samples 16 --runs 100 "
        "--metric payoff_a"
    )
    assert sweep(tmp_path, *args, scenario=ONE_KNOB) == 0
    assert (tmp_path / "sweep_heatmap_payoff_a.png").exists()
    assert len(read_csv(tmp_path / "points.csv")) == 16


@pytest.mark.skipif(importlib.util.find_spec("pyarrow") is None, reason="pyarrow not installed")
def test_parquet_holds_the_same_table(tmp_path, capsys):
    import pyarrow.parquet as pq

    assert (
        sweep(
            tmp_path,
            "--vary",
            "hawkishness=0:1:3",
            "--runs",
            "100",
            "--no-charts",
            scenario=ONE_KNOB,
        )
        == 0
    )
    table = pq.read_table(tmp_path / "points.parquet").to_pydict()
    rows = read_csv(tmp_path / "points.csv")
    assert table["point"] == [0, 1, 2]
    assert table["p_war"] == [float(r["p_war"]) for r in rows]


@pytest.mark.skipif(
    importlib.util.find_spec("distributed") is None,
    reason="dask.distributed not installed (extra [dask])",
)
def test_dask_local_cluster_equals_the_process_pool(tmp_path, capsys):
    args = [*GRID, "--runs", "300", "--no-charts"]
    assert sweep(tmp_path / "pool", *args, workers=2) == 0
    assert sweep(tmp_path / "dask", *args, "--executor", "dask", workers=2) == 0
    pool = (tmp_path / "pool" / "points.csv").read_bytes()
    assert (tmp_path / "dask" / "points.csv").read_bytes() == pool
    meta = json.loads((tmp_path / "dask" / "sweep.json").read_text())
    assert "--executor dask" in meta["command"]


@pytest.mark.skipif(
    importlib.util.find_spec("distributed") is None,
    reason="dask.distributed not installed (extra [dask])",
)
def test_scheduler_address_runs_on_an_existing_dask_cluster(tmp_path, capsys):
    from dask.distributed import LocalCluster

    args = argv("--vary hawkishness=0:1:5 --vary noise_a=0:1:3 --runs 200 --no-charts")
    assert sweep(tmp_path / "local", *args, scenario=ONE_KNOB) == 0
    with LocalCluster(n_workers=1, threads_per_worker=1, dashboard_address=None) as cluster:
        address = cluster.scheduler_address
        assert sweep(tmp_path / "remote", *args, "--scheduler", address, scenario=ONE_KNOB) == 0
    local = (tmp_path / "local" / "points.csv").read_bytes()
    assert (tmp_path / "remote" / "points.csv").read_bytes() == local

"""The Python API (sim.api, DESIGN.md 8.3): the same numbers as the command line, lazy import,
notebook-friendly results, bundled-scenario resolution."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

import sim
from sim.cli.main import main
from sim.errors import ScenarioError
from sim.results import Results
from tests.conftest import CAMP_TAJI, ROOT

RUNS = 2000


@pytest.fixture(scope="module")
def camp() -> Results:
    return sim.run(sim.load("camp_taji_2020"), runs=RUNS, seed=1)


@pytest.fixture(scope="module")
def plain():
    return sim.load("camp_taji_2020")


def cli_json(capsys, *argv: str) -> dict:
    assert main(list(argv)) == 0
    return json.loads(capsys.readouterr().out)


def without_timing(data):
    """The JSON without wall-clock figures (the exact solver reports its solve time)."""
    if isinstance(data, dict):
        return {k: without_timing(v) for k, v in data.items() if not k.endswith("_seconds")}
    return data


# --- the same numbers as the command line ------------------------------------------------------


def test_run_equals_the_cli_json(capsys, camp):
    expected = cli_json(
        capsys, "run", str(CAMP_TAJI), "--json", "--runs", str(RUNS), "--seed", "1", "--no-charts"
    )
    assert camp.to_dict() == expected
    assert sim.run(str(CAMP_TAJI), runs=RUNS, seed=1).to_dict() == expected  # a path


def test_run_with_set_equals_the_cli_set(capsys):
    argv = ["run", "camp_taji_2020", "--json", "--runs", "3000", "--seed", "7", "--no-charts"]
    expected = cli_json(capsys, *argv, "--set", "force_protection=0.9")
    scenario = sim.load("camp_taji_2020")
    assert sim.run(scenario, runs=3000, seed=7, set={"force_protection": 0.9}).to_dict() == expected
    assert sim.run(scenario, 3000, 7, set=["force_protection=0.9"]).to_dict() == expected


def test_load_overrides_give_the_numbers_of_set(capsys):
    """`load(..., NAME=VALUE)` returns a changed copy: the numbers are those of `--set`; only
    the scenario's digest may differ (a changed scenario hashes its content, not the file)."""
    argv = ["run", "camp_taji_2020", "--json", "--runs", "3000", "--seed", "7", "--no-charts"]
    expected = cli_json(capsys, *argv, "--set", "force_protection=0.9")
    got = sim.run(sim.load("camp_taji_2020", force_protection=0.9), runs=3000, seed=7).to_dict()
    expected.pop("scenario_sha256"), got.pop("scenario_sha256")
    assert got == expected


def test_workers_do_not_change_the_numbers(camp):
    # two blocks of runs, so two workers really run
    one = sim.run("camp_taji_2020", runs=5000, seed=3)
    two = sim.run("camp_taji_2020", runs=5000, seed=3, workers=2)
    assert one.to_dict() == two.to_dict()


def test_exact_equals_the_cli_json(capsys):
    expected = cli_json(capsys, "exact", "chicken", "--json")
    results = sim.exact(sim.load("chicken"))
    assert without_timing(results.to_dict()) == without_timing(expected)
    assert results.to_dict()["runs"] is None and results.exact


def test_precision_equals_the_cli(capsys):
    expected = cli_json(
        capsys, "run", "chicken", "--json", "--precision", "0.02", "--no-charts", "--seed", "2"
    )
    got = sim.run("chicken", seed=2, precision=0.02).to_dict()
    assert got == expected and "precision" in got


def test_compare_equals_the_cli_json(capsys):
    expected = cli_json(
        capsys,
        *["compare", "camp_taji_2020", "--actor", "us", "--policies", "--runs", "1500"],
        *["--max-risk", "war=0.05", "--json", "--no-charts"],
    )
    comparison = sim.compare(
        "camp_taji_2020", "us", mode="policies", runs=1500, max_risk=("war", 0.05)
    )
    assert comparison.to_json() == expected
    first = sim.compare("camp_taji_2020", "us", runs=1500, max_risk="war=0.05")
    assert first.mode == "first-move" and len(first.columns) >= 2


def test_trace_equals_the_cli_json(capsys):
    expected = cli_json(capsys, "trace", "camp_taji_2020", "--seed", "3", "--run", "5", "--json")
    assert sim.trace("camp_taji_2020", seed=3, run=5).to_json() == expected


def test_sweep_equals_the_cli_points(tmp_path, capsys):
    argv = ["sweep", "camp_taji_2020", "--vary", "war_risk=0:1:3", "--runs", "400"]
    argv += ["--set", "force_protection=0.9", "--workers", "1", "--quiet", "--no-charts"]
    assert main([*argv, "--out", str(tmp_path / "cli")]) == 0
    capsys.readouterr()
    result = sim.sweep(
        "camp_taji_2020",
        {"war_risk": (0, 1, 3)},
        runs=400,
        set={"force_protection": 0.9},
        out=tmp_path / "api",
    )
    cli = (tmp_path / "cli" / "points.csv").read_bytes()
    assert (tmp_path / "api" / "points.csv").read_bytes() == cli
    meta = json.loads((tmp_path / "api" / "sweep.json").read_text())
    assert "--set force_protection=0.9" in meta["command"]
    # parameters overridden in load are held fixed in the same way; no files without out=
    again = sim.sweep(sim.load("camp_taji_2020", force_protection=0.9), "war_risk=0:1:3", runs=400)
    assert (again.table == result.table).all() and again.files == []


# --- import sim stays light ----------------------------------------------------------------


def run_python(code: str) -> str:
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_the_one_liner_of_the_docs_works():
    out = run_python(
        "import sim; r = sim.run(sim.load('camp_taji_2020'), runs=2000, seed=1); "
        "print(r.to_frame().head())"
    )
    assert "outcome" in out and "war" in out and "deterrence_restored" in out


def test_import_sim_is_light_until_an_api_name_is_used():
    out = run_python(
        "import sys, sim\n"
        "heavy = ('numpy', 'pydantic', 'matplotlib', 'pandas', 'sim.api', 'sim.engine', "
        "'sim.results', 'sim.model', 'sim.solvers')\n"
        "def loaded(): return sorted(m for m in heavy if m in sys.modules)\n"
        "print(loaded())\n"
        "print('run' in dir(sim), sorted(sim.__all__))\n"
        "sim.run\n"
        "print(loaded())\n"
    )
    before, names, after = out.splitlines()
    assert before == "[]"
    assert names.startswith("True") and "'load'" in names and "'Results'" in names
    assert "sim.api" in after and "numpy" in after and "matplotlib" not in after


def test_unknown_attributes_still_raise():
    with pytest.raises(AttributeError, match="no attribute 'nonsense'"):
        sim.nonsense  # noqa: B018
    assert sim.__version__ == "0.1.0" and sim.Results is Results


# --- notebook-friendly results ---------------------------------------------------------------


def test_repr_names_the_scenario_runs_and_top_outcomes(camp):
    text = repr(camp)
    first = text.splitlines()[0]
    assert first == f"<Results camp-taji-2020, {RUNS:,} runs, seed 1>"
    top = max(camp.to_dict()["outcomes"].items(), key=lambda kv: kv[1]["p"])
    assert top[0] in text.splitlines()[1] and "95%" in text
    assert len(text.splitlines()) <= 5
    exact = repr(sim.exact("chicken"))
    assert exact.startswith("<Results chicken, exact>") and "45.0000%" in exact


def test_repr_html_is_a_table_with_escaped_text(tmp_path):
    text = CAMP_TAJI.read_text(encoding="utf-8")
    text = text.replace("title: Camp Taji rocket attack, March 2020", "title: '<b>Tom & Jerry'")
    text = text.replace("label: Regional war", "label: '<script>war</script>'")
    path = tmp_path / "odd.yaml"
    path.write_text(text, encoding="utf-8")
    page = sim.run(sim.load(path), runs=500, seed=1)._repr_html_()
    assert page.startswith("<table") and page.endswith("</table>")
    assert "&lt;b&gt;Tom &amp; Jerry" in page and "&lt;script&gt;war&lt;/script&gt;" in page
    assert "<script>" not in page and "<b>Tom" not in page
    assert page.count("<tr>") == 1 + len(sim.load(path).outcome_ids)


def test_to_dict_is_the_old_to_json(camp):
    assert camp.to_dict() == camp.to_json()
    data = camp.to_dict()
    assert json.loads(json.dumps(data)) == data


def test_to_frame_is_tidy_and_matches_to_dict(camp):
    frame = camp.to_frame()
    data = camp.to_dict()
    assert list(frame.columns) == [
        "metric",
        "actor",
        "key",
        "label",
        "value",
        "ci_low",
        "ci_high",
        "count",
    ]
    outcomes = frame[frame.metric == "outcome"]
    assert list(outcomes.key) == list(data["outcomes"])
    assert outcomes.value.sum() == pytest.approx(1.0)
    war = outcomes.set_index("key").loc["war"]
    assert war.value == data["outcomes"]["war"]["p"]
    assert [war.ci_low, war.ci_high] == data["outcomes"]["war"]["ci95"]
    assert war["count"] == data["outcomes"]["war"]["count"]
    assert war.label == "Regional war"
    payoffs = frame[frame.metric == "payoff"].set_index("actor")
    assert payoffs.loc["us", "value"] == data["payoffs"]["us"]["mean"]
    moves = frame[(frame.metric == "move") & (frame.actor == "us")].set_index("key")
    assert moves.value.to_dict() == data["moves"]["us"]
    peak = frame[frame.metric == "peak_rung"]
    assert dict(zip(peak.key, peak.value)) == data["peak_rung"]["distribution"]
    assert frame.attrs["seed"] == 1 and frame.attrs["runs"] == RUNS


def test_to_frame_without_pandas_says_how_to_get_it(camp, monkeypatch):
    monkeypatch.setitem(sys.modules, "pandas", None)  # `import pandas` now fails
    with pytest.raises(ImportError, match="pip install pandas"):
        camp.to_frame()


# --- loading and arguments -----------------------------------------------------------------


def test_load_by_id_stem_and_path():
    by_stem = sim.load("camp_taji_2020")
    assert sim.load("camp-taji-2020").id == by_stem.id == "camp-taji-2020"
    assert sim.load(CAMP_TAJI).model_dump() == by_stem.model_dump()


def test_an_unknown_name_suggests_the_nearest_bundled_scenario():
    with pytest.raises(ScenarioError, match="did you mean 'camp_taji_2020'"):
        sim.load("camp_taji")
    with pytest.raises(ScenarioError, match="bundled scenarios: .*chicken"):
        sim.load("zzzzqqqq")


def test_the_cli_suggests_the_nearest_bundled_scenario_too(capsys):
    assert main(["run", "camp_taji", "--no-charts"]) == 2
    assert "camp_taji:1:1: no such file or bundled scenario (did you mean 'camp_taji_2020'" in (
        capsys.readouterr().err
    )


def test_missing_yaml_paths_keep_their_message(tmp_path):
    with pytest.raises(ScenarioError, match="no such file$"):
        sim.load(tmp_path / "missing.yaml")


def test_load_overrides_are_checked_and_copy_the_scenario():
    plain = sim.load("camp_taji_2020")
    changed = sim.load("camp_taji_2020", force_protection=0.9)
    assert changed.parameters["force_protection"].value == 0.9
    assert plain.parameters["force_protection"].value != 0.9  # a copy, not a mutation
    assert sim.load(changed, kh_autonomy=0.5).parameters["force_protection"].value == 0.9
    with pytest.raises(ValueError, match="did you mean 'kh_autonomy'"):
        sim.load("camp_taji_2020", kh_autonmy=0.5)
    with pytest.raises(ValueError, match="outside its range"):
        sim.load("camp_taji_2020", kh_autonomy=7)
    with pytest.raises(ValueError, match="not a number"):
        sim.run(plain, runs=100, set={"kh_autonomy": "high"})


@pytest.mark.parametrize(
    "call,message",
    [
        (lambda s: sim.run(s, runs=0), "runs must be"),
        (lambda s: sim.run(s, seed=-1), "seed must be"),
        (lambda s: sim.run(s, precision=0.7), "precision"),
        (lambda s: sim.compare(s, "usa"), "did you mean 'us'"),
        (lambda s: sim.compare(s, "us", mode="doctrines"), "mode must be"),
        (lambda s: sim.compare(s, "us", max_risk=("wat", 0.1)), "did you mean 'war'"),
        (lambda s: sim.compare(s, "us", max_risk="war=2"), "not a probability"),
        (lambda s: sim.trace(s, run=-1), "run must be"),
        (lambda s: sim.sweep(s, "war_risk=0:1:3", resume=True), "needs out="),
        (lambda s: sim.sweep(s, {"war_rsk": (0, 1, 3)}), "did you mean 'war_risk'"),
    ],
)
def test_bad_arguments_raise_value_errors(call, message, plain):
    with pytest.raises(ValueError, match=message):
        call(plain)


def test_docs_python_md_shows_the_real_output():
    """docs/python.md pastes a real session: its first result is what the code prints today."""
    doc = (ROOT / "docs" / "python.md").read_text(encoding="utf-8")
    code = "results = sim.run(scenario, runs=20_000, seed=1)\nresults\n```\n\n```text\n"
    assert code in doc
    shown = doc.split(code, 1)[1].split("\n```", 1)[0]
    assert shown == repr(sim.run("camp_taji_2020", runs=20_000, seed=1))

"""Charts for notebooks: Figures built without pyplot, drawn into a caller's Axes with `ax=`,
and matplotlib's global state (backend, rcParams) left as it was."""

from __future__ import annotations

import struct
import subprocess
import sys

import matplotlib
import pytest
from matplotlib.figure import Figure

import sim
from sim.outputs import charts, compare_charts, sweep_charts
from tests.conftest import CAMP_TAJI, ROOT

RUN_CHART_FUNCTIONS = [
    charts.outcome_chart,
    charts.occupancy_chart,
    charts.steps_chart,
    charts.peak_chart,
]


@pytest.fixture(scope="module")
def camp():
    return sim.run("camp_taji_2020", runs=1000, seed=1)


@pytest.fixture(scope="module")
def comparison():
    return sim.compare("camp_taji_2020", "us", mode="policies", runs=500, max_risk=("war", 0.05))


@pytest.fixture(scope="module")
def grid():
    return sim.sweep(
        "camp_taji_2020", {"war_risk": (0, 0.5, 2), "leader_availability": (0, 1, 2)}, runs=200
    )


def png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    return struct.unpack(">II", data[16:24])


@pytest.mark.parametrize("draw", RUN_CHART_FUNCTIONS, ids=lambda f: f.__name__)
def test_a_run_chart_draws_into_the_given_axes(camp, draw):
    fig = Figure()
    left, right = fig.subplots(1, 2)
    assert draw(camp, ax=right) is fig
    assert right.get_title() and not left.get_title()
    assert right.has_data() and not left.has_data()
    assert not fig.texts  # no footer, no layout change: the figure is the caller's


@pytest.mark.parametrize("draw", RUN_CHART_FUNCTIONS, ids=lambda f: f.__name__)
def test_without_ax_a_chart_is_a_figure_of_its_own_with_a_footer(camp, draw):
    fig = draw(camp)
    assert isinstance(fig, Figure) and len(fig.axes) == 1
    assert [t.get_text() for t in fig.texts] == [charts.footer(camp)]


def test_compare_and_sweep_charts_take_ax_too(comparison, grid):
    for draw, what in [
        (compare_charts.outcome_bars, comparison),
        (compare_charts.risk_reward, comparison),
        (sweep_charts.line_chart, grid),
        (sweep_charts.heatmap_chart, grid),
    ]:
        fig = Figure()
        ax = fig.subplots()
        assert draw(what, ax=ax) is fig and ax.get_title(), draw.__name__
        assert isinstance(draw(what), Figure)
    fig = Figure()
    sweep_charts.heatmap_chart(grid, "payoff_us", ax=fig.subplots())
    assert "payoff of United States" in fig.axes[-1].get_ylabel()  # the colour bar
    assert "P(Regional war)" in sweep_charts.heatmap_chart(grid, "war").axes[-1].get_ylabel()


def test_marginals_draw_into_a_given_figure():
    result = sim.sweep(
        "camp_taji_2020",
        {"war_risk": (0, 0.5, 2), "leader_availability": (0, 1, 2), "kh_autonomy": (0, 1, 2)},
        runs=150,
    )
    fig = Figure(figsize=(12, 4))
    assert sweep_charts.marginals_chart(result, fig=fig) is fig
    assert len([ax for ax in fig.axes if ax.has_data()]) == 3


def test_matplotlib_global_state_is_untouched(camp, comparison, grid, tmp_path):
    backend = matplotlib.get_backend()
    rc = dict(matplotlib.rcParams)
    for draw in RUN_CHART_FUNCTIONS:
        draw(camp)
    charts.write_run_charts(camp, tmp_path / "run")
    compare_charts.write_compare_charts(comparison, tmp_path / "cmp")
    sweep_charts.write_sweep_charts(grid, tmp_path / "sweep", "war")
    assert matplotlib.get_backend() == backend
    assert dict(matplotlib.rcParams) == rc


def test_no_pyplot_and_a_users_pyplot_figures_are_left_alone():
    """In a fresh interpreter: writing charts imports no pyplot; a user's pyplot figure drawn
    into with ax= stays the only pyplot figure."""
    code = (
        "import sys, sim\n"
        "from sim.outputs.charts import outcome_chart, write_run_charts\n"
        "import tempfile\n"
        "r = sim.run('chicken', runs=300, seed=1)\n"
        "write_run_charts(r, tempfile.mkdtemp())\n"
        "print('matplotlib.pyplot' in sys.modules)\n"
        "import matplotlib\n"
        "matplotlib.use('Agg')\n"
        "import matplotlib.pyplot as plt\n"
        "fig, ax = plt.subplots()\n"
        "assert outcome_chart(r, ax=ax) is fig\n"
        "outcome_chart(r)\n"
        "print(plt.get_fignums(), matplotlib.get_backend().lower())\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split("\n")[:2] == ["False", "[1] agg"]


def test_written_pngs_keep_their_sizes_and_dpi(camp, tmp_path):
    paths = charts.write_run_charts(camp, tmp_path)
    assert [p.name for p in paths] == list(charts.RUN_CHARTS)
    n = len(camp.model.outcome_ids)
    expected = {
        "outcomes.png": (8, 0.6 * n + 1.8),
        "rung_occupancy.png": (9, 5),
        "steps.png": (9, 4.5),
        "peak_rung.png": (9, 4.5),
    }
    for path in paths:
        w, h = expected[path.name]
        dpi = charts.RUN_DPI  # 150 since issue 12 (sharp on slides), was 110
        assert png_size(path.read_bytes()) == (round(w * dpi), round(h * dpi)), path.name
    assert not list(tmp_path.glob(".*"))  # no temporary file left behind


def test_scenario_text_with_dollars_is_not_mathtext(tmp_path):
    text = CAMP_TAJI.read_text(encoding="utf-8")
    text = text.replace("title: Camp Taji rocket attack, March 2020", "title: 'Cost $10bn vs $2^x'")
    text = text.replace("label: Regional war", "label: 'War: $5 {bad} $'")
    path = tmp_path / "dollars.yaml"
    path.write_text(text, encoding="utf-8")
    results = sim.run(sim.load(path), runs=300, seed=1)
    fig = Figure()
    ax = fig.subplots()
    charts.outcome_chart(results, ax=ax)
    assert ax.title.get_text().startswith("Cost $10bn") and not ax.title.get_parse_math()
    assert not any(t.get_parse_math() for t in ax.get_yticklabels())
    paths = charts.write_run_charts(results, tmp_path / "c")  # would raise on bad mathtext
    assert len(paths) == 4

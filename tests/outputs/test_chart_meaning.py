"""Charts that mean something (issue 12, items 7 and 8, and the chart friction):

- outcome colours follow what an outcome is, the same in every scenario and chart, from one
  colour-blind-safe palette, and a scenario's own `colour` wins;
- ticks are whole numbers where the axis counts steps, legends sit outside the data, the horizon
  spike of the steps chart does not flatten the other steps, a chart with little to show says so;
- `--format png|svg|pdf` and `--dpi` on every command that writes charts; the suffix decides the
  format; footers are readable and name the `--set` overrides.
"""

from __future__ import annotations

import base64
import re
import struct
from dataclasses import replace

import numpy as np
import pytest
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.colors import to_hex
from matplotlib.container import BarContainer
from matplotlib.figure import Figure

import sim
from sim.cli.chart_args import DEFAULT_DPI
from sim.cli.main import main
from sim.outputs import charts, compare_charts, palette, sweep_charts
from tests.conftest import CAMP_TAJI, ROOT

ONE_KNOB = ROOT / "tests" / "scenarios" / "sweep" / "one_knob.yaml"


@pytest.fixture(scope="module")
def camp():
    return sim.run("camp_taji_2020", runs=2000, seed=1)


@pytest.fixture(scope="module")
def chicken():
    return sim.run("chicken", runs=2000, seed=1)


@pytest.fixture(scope="module")
def comparison():
    return sim.compare("camp_taji_2020", "us", mode="policies", runs=500, max_risk=("war", 0.05))


@pytest.fixture(scope="module")
def line_sweep():
    return sim.sweep("camp_taji_2020", {"war_fear": (0, 100, 3)}, runs=200, seed=1)


def png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    return struct.unpack(">II", data[16:24])


def bar_colours(fig: Figure) -> list[str]:
    """The face colours of the outcome chart's bars, top to bottom (the scenario's order)."""
    ax = fig.axes[0]
    bars = sorted(ax.patches, key=lambda p: -p.get_y())
    return [to_hex(p.get_facecolor(), keep_alpha=False).upper() for p in bars]


def colour_of(results, outcome: str) -> str:
    return bar_colours(charts.outcome_chart(results))[results.model.outcome_ids.index(outcome)]


def drawn(fig: Figure) -> Figure:
    FigureCanvasAgg(fig).draw()
    return fig


# --- item 7: colours follow meaning --------------------------------------------------------------


@pytest.mark.parametrize(
    "outcome,label,is_end,kind",
    [
        ("war", "Regional war", False, "war"),
        ("collision", "Collision (both stand firm, war)", False, "war"),
        ("spiral", "Spiral into open conflict", False, "war"),
        ("out_of_control", "Escalation out of control", False, "war"),
        ("unintended_escalation", "US strikes Iran", False, "war"),
        ("us_expelled", "Iraq expels US forces", False, "retreat"),
        ("us_withdrawal", "US withdraws from Iraq", False, "retreat"),
        ("deterrence_restored", "Deterrence restored (8 quiet weeks)", False, "deterrence"),
        ("deterred", "Deterrence restored (quiet weeks)", False, "deterrence"),
        ("contained", "Contained", True, "deterrence"),
        ("off_ramp", "Iran seeks an off-ramp", False, "deterrence"),
        ("de_escalation", None, False, "deterrence"),
        ("ongoing", "Ongoing", True, "ongoing"),
        ("attacks_continue", "Attacks continue", True, "ongoing"),
        ("tit_for_tat", "Tit for tat", True, "ongoing"),
        ("us_prevails", "US prevails (Iran backs down)", False, "other"),
        ("warning_shot", "A warning shot", False, "other"),  # "war" is a word, not a prefix
    ],
)
def test_outcomes_are_classified_by_the_words_of_their_id_and_label(outcome, label, is_end, kind):
    assert palette.outcome_kind(outcome, label, is_end=is_end) == kind


def test_the_same_kind_of_outcome_has_the_same_colour_in_every_scenario(camp):
    credibility = sim.run("credibility", runs=500, seed=1)
    al_asad = sim.run("al_asad_2024", runs=500, seed=1)
    # at different positions in their lists (war first, deterrence 4th vs 2nd, ongoing 5th vs 3rd)
    assert colour_of(camp, "war") == colour_of(credibility, "spiral") == palette.VERMILLION
    assert colour_of(camp, "deterrence_restored") == colour_of(credibility, "deterred")
    assert colour_of(camp, "deterrence_restored") == colour_of(al_asad, "contained")
    assert colour_of(camp, "ongoing") == colour_of(al_asad, "ongoing") == palette.GREY
    assert colour_of(camp, "us_expelled") == palette.ORANGE


def test_colours_are_the_palettes_and_distinct_within_a_chart():
    safe = {*palette.OKABE_ITO, palette.GREY}
    for path in sorted((ROOT / "sim" / "scenarios").glob("*.yaml")):
        colours = palette.outcome_colours(sim.load(path))
        assert set(colours.values()) <= safe, path.name
        assert len(set(colours.values())) == len(colours), path.name


def test_every_chart_uses_the_same_colour_for_an_outcome(camp, comparison, line_sweep):
    war = palette.VERMILLION
    assert colour_of(camp, "war") == war
    bars = compare_charts.outcome_bars(comparison).axes[0].containers
    first = next(c for c in bars if isinstance(c, BarContainer))
    assert first.get_label() == "Regional war"
    assert to_hex(first.patches[0].get_facecolor()).upper() == war
    columns = charts.steps_chart(camp).axes[0].collections[0]  # one collection per outcome
    assert columns.get_label() == "Regional war"
    assert {to_hex(c).upper() for c in columns.get_facecolor()} == {war}
    lines = sweep_charts.line_chart(line_sweep).axes[0].get_lines()
    assert to_hex(next(ln for ln in lines if ln.get_label() == "Regional war").get_color()) == (
        war.lower()
    )


def test_a_scenarios_own_colour_wins(tmp_path):
    text = CAMP_TAJI.read_text(encoding="utf-8")
    assert "    label: Regional war\n" in text
    text = text.replace(
        "    label: Regional war\n", "    label: Regional war\n    colour: '#123456'\n"
    )
    path = tmp_path / "coloured.yaml"
    path.write_text(text, encoding="utf-8")
    results = sim.run(sim.load(path), runs=300, seed=1)
    assert colour_of(results, "war") == "#123456"
    assert colour_of(results, "deterrence_restored") == palette.BLUISH_GREEN


def test_an_explicit_colour_is_never_given_to_another_outcome():
    class Terminal:
        def __init__(self, colour=None):
            self.colour, self.label = colour, None

    class Scenario:
        outcomes = {"war": Terminal(), "calm": Terminal(palette.VERMILLION)}
        outcome_ids = ["war", "calm"]
        end = "calm"

        def outcome_label(self, oid):
            return oid

    colours = palette.outcome_colours(Scenario())
    assert colours["calm"] == palette.VERMILLION and colours["war"] != palette.VERMILLION


# --- item 8: charts that say something -----------------------------------------------------------


def visible_ticks(axis, lim) -> np.ndarray:
    ticks = np.asarray(axis.get_ticklocs(), dtype=float)
    return ticks[(ticks >= lim[0] - 1e-9) & (ticks <= lim[1] + 1e-9)]


@pytest.mark.parametrize("draw", [charts.occupancy_chart, charts.steps_chart, charts.peak_chart])
def test_step_and_rung_axes_have_whole_number_ticks(chicken, camp, draw):
    for results in (chicken, camp):
        ax = drawn(draw(results)).axes[0]
        ticks = visible_ticks(ax.xaxis, ax.get_xlim())
        assert len(ticks), draw.__name__
        assert np.allclose(ticks, np.round(ticks)), (draw.__name__, ticks)


def test_the_occupancy_chart_shows_the_horizon_step(chicken):
    """Chicken has one round: the chart must show round 1 (where every run has ended or is
    still at the horizon), not only round 0 with everyone on rung 0."""
    ax = charts.occupancy_chart(chicken).axes[0]
    assert ax.get_xlim()[1] >= chicken.model.horizon + 0.5
    assert list(visible_ticks(ax.xaxis, ax.get_xlim())) == [0, 1]


def test_a_one_rung_ladder_gets_whole_ticks_and_says_every_run_peaks_there(tmp_path):
    text = ONE_KNOB.read_text(encoding="utf-8")
    text = text.replace("hawkishness: {value: 0.5", "hawkishness: {value: 0", 1)  # never war
    path = tmp_path / "calm.yaml"
    path.write_text(text, encoding="utf-8")
    results = sim.run(sim.load(path), runs=300, seed=1)
    peak = drawn(charts.peak_chart(results)).axes[0]
    assert "every run peaks at rung 0" in peak.get_title()
    for draw in (charts.occupancy_chart, charts.steps_chart):
        ax = drawn(draw(results)).axes[0]
        ticks = visible_ticks(ax.xaxis, ax.get_xlim())
        assert np.allclose(ticks, np.round(ticks)), ticks
        labels = [t.get_text() for t in ax.get_yticklabels()]
        assert len(set(labels)) == len(labels), labels  # no 0%, 0%, 1%


def legend_boxes(fig: Figure):
    drawn(fig)
    renderer = fig.canvas.get_renderer()
    for ax in fig.axes:
        legend = ax.get_legend()
        if legend is not None:
            yield ax.get_window_extent(renderer), legend.get_window_extent(renderer)


@pytest.mark.parametrize(
    "make",
    [
        lambda f: charts.occupancy_chart(f["chicken"]),
        lambda f: charts.steps_chart(f["chicken"]),
        lambda f: charts.steps_chart(f["camp"]),
        lambda f: compare_charts.outcome_bars(f["comparison"]),
        lambda f: compare_charts.risk_reward(f["comparison"]),
        lambda f: sweep_charts.line_chart(f["line_sweep"]),
    ],
    ids=["occupancy", "steps-chicken", "steps-camp", "outcome-bars", "risk-reward", "lines"],
)
def test_legends_do_not_cover_the_data(make, chicken, camp, comparison, line_sweep):
    fig = make(
        {"chicken": chicken, "camp": camp, "comparison": comparison, "line_sweep": line_sweep}
    )
    boxes = list(legend_boxes(fig))
    assert boxes, "the chart has a legend"
    for axes_box, legend_box in boxes:
        assert not axes_box.overlaps(legend_box), (axes_box, legend_box)
        fig_box = fig.bbox
        assert legend_box.x1 <= fig_box.x1 + 1 and legend_box.y0 >= fig_box.y0 - 1  # on the page


def test_the_horizon_spike_does_not_flatten_the_steps_chart():
    """Under article 003's reading (`resolve_reading` 0) most camp_taji runs are still going at
    the horizon (at the default 0.5 the spike is too small to need cutting)."""
    spiky = sim.run("camp_taji_2020", runs=2000, seed=1, set={"resolve_reading": 0.0})
    ax = charts.steps_chart(spiky).axes[0]
    m = spiky.model
    share = spiky.ended.sum(axis=1) / spiky.runs
    spike, rest = share[m.horizon], share[: m.horizon].max()
    assert spike > 3 * rest  # the situation of the issue: ongoing runs pile up at the horizon
    top = ax.get_ylim()[1]
    assert top < spike and rest > 0.6 * top  # the other steps fill most of the axis
    notes = " ".join(t.get_text() for t in ax.texts)
    assert f"{spike:.1%}" in notes and "still going at the horizon" in notes


def test_the_steps_columns_stack_each_outcomes_share_of_the_runs_ending_in_each_step(camp):
    ax = charts.steps_chart(camp).axes[0]
    m = camp.model
    shares = camp.ended / camp.runs
    drawn_outcomes = [o for o in range(len(m.outcome_ids)) if np.any(shares[:, o] > 1e-12)]
    assert [c.get_label() for c in ax.collections] == [
        m.scenario.outcome_label(m.outcome_ids[o]) for o in drawn_outcomes
    ]
    below = np.zeros(m.horizon + 1)
    for o, columns in zip(drawn_outcomes, ax.collections, strict=True):
        corners = np.array([path.vertices[:4] for path in columns.get_paths()])
        lefts, rights = corners[:, 0, 0], corners[:, 2, 0]
        assert np.allclose((lefts + rights) / 2, np.arange(m.horizon + 1))
        assert np.allclose(rights - lefts, 0.85)
        assert np.allclose(corners[:, 0, 1], below)  # on top of the outcomes before it
        assert np.allclose(corners[:, 1, 1] - corners[:, 0, 1], shares[:, o])
        below = corners[:, 1, 1]
    assert np.allclose(below, shares.sum(axis=1))


def test_a_single_step_steps_chart_says_so(chicken):
    ax = charts.steps_chart(chicken).axes[0]
    assert "every run ends in round 1" in ax.get_title()


def test_sweep_charts_say_when_there_is_nothing_to_show(line_sweep):
    grid = sim.sweep(
        "camp_taji_2020", {"war_risk": (0, 0.5, 2), "leader_availability": (0, 1, 2)}, runs=100
    )
    for result in (line_sweep, grid):
        table = result.table.copy()
        for suffix in ("", "_lo", "_hi"):
            table[:, result.columns.index(f"p_war{suffix}")] = 0.0
        never = replace(result, table=table)
        if result is line_sweep:
            ax = sweep_charts.line_chart(never).axes[0]
            assert "Regional war" not in [ln.get_label() for ln in ax.get_lines()]
            assert "never at any point: Regional war" in ax.get_legend().get_title().get_text()
        else:
            ax = sweep_charts.heatmap_chart(never, "war").axes[0]
            assert any("0.0% at every point" in t.get_text() for t in ax.texts)


def test_heatmap_ticks_sit_on_the_grid_levels():
    grid = sim.sweep(
        "camp_taji_2020", {"war_risk": (0, 1, 4), "leader_availability": (0, 1, 3)}, runs=50
    )
    ax = drawn(sweep_charts.heatmap_chart(grid, "war")).axes[0]
    assert np.allclose(ax.get_xticks(), [0, 0.5, 1])
    assert np.allclose(ax.get_yticks(), [0, 1 / 3, 2 / 3, 1])


# --- footers --------------------------------------------------------------------------------------


def test_footers_name_the_overrides_and_only_those(camp):
    assert "--set" not in charts.footer(camp)
    safer = sim.run("camp_taji_2020", runs=300, seed=1, set={"force_protection": 0.9})
    default = sim.load("camp_taji_2020").parameters["kh_autonomy"].value
    same = sim.run("camp_taji_2020", runs=300, seed=1, set={"kh_autonomy": default})
    assert charts.footer(safer).endswith("--set force_protection=0.9")
    assert "--set" not in charts.footer(same)  # a value equal to the scenario's is no override
    fig = charts.outcome_chart(safer)
    assert fig.texts[0].get_text() == charts.footer(safer)
    assert fig.texts[0].get_fontsize() >= 9  # readable on a slide
    cmp = sim.compare(
        "camp_taji_2020", "us", mode="policies", runs=200, set={"force_protection": 0.9}
    )
    assert "--set force_protection=0.9" in compare_charts.outcome_bars(cmp).texts[0].get_text()
    sweep = sim.sweep(
        "camp_taji_2020", {"war_risk": (0, 1, 2)}, runs=100, set={"force_protection": 0.9}
    )
    assert "--set force_protection=0.9" in sweep_charts.line_chart(sweep).texts[0].get_text()


# --- formats and resolution -----------------------------------------------------------------------


def test_the_suffix_decides_the_format(camp, tmp_path):
    fig = charts.outcome_chart(camp)
    assert charts.save_figure(fig, tmp_path / "a.svg").read_bytes().lstrip()[:5] in (
        b"<?xml",
        b"<svg ",
    )
    assert charts.save_figure(fig, tmp_path / "a.pdf").read_bytes()[:5] == b"%PDF-"
    assert charts.save_figure(fig, tmp_path / "a.png").read_bytes()[:4] == b"\x89PNG"
    with pytest.raises(ValueError, match="must end in"):
        charts.save_figure(fig, tmp_path / "a.jpg")


def test_chart_options_choose_format_and_dpi(camp, tmp_path):
    assert charts.RUN_DPI == DEFAULT_DPI >= 150
    svg = charts.write_run_charts(camp, tmp_path / "svg", charts.ChartOptions(format="svg"))
    assert [p.name for p in svg] == [
        "outcomes.svg",
        "rung_occupancy.svg",
        "steps.svg",
        "peak_rung.svg",
    ]
    assert all(p.read_bytes().lstrip()[:5] in (b"<?xml", b"<svg ") for p in svg)
    big = charts.write_run_charts(camp, tmp_path / "big", charts.ChartOptions(dpi=200))
    assert png_size(big[1].read_bytes()) == (9 * 200, 5 * 200)
    with charts.using_chart_options(charts.ChartOptions(format="pdf", dpi=80)):
        inner = charts.write_run_charts(camp, tmp_path / "ctx")
    assert all(p.suffix == ".pdf" for p in inner)
    assert charts.current_chart_options() == charts.ChartOptions()
    with pytest.raises(ValueError):
        charts.ChartOptions(format="gif")


def test_svg_and_pdf_files_are_reproducible(camp, tmp_path):
    for fmt in ("svg", "pdf"):
        a = charts.write_run_charts(camp, tmp_path / "a", charts.ChartOptions(format=fmt))[0]
        b = charts.write_run_charts(camp, tmp_path / "b", charts.ChartOptions(format=fmt))[0]
        if fmt == "pdf":
            assert a.read_bytes() == b.read_bytes()
        else:  # SVG clip-path ids are random unless rcParams say otherwise: no Date at least
            assert b"<dc:date>" not in a.read_bytes()


def test_cli_run_format_and_dpi(tmp_path, capsys):
    out = tmp_path / "svg"
    assert main(["run", "chicken", "--runs", "300", "--out", str(out), "--format", "svg"]) == 0
    assert sorted(p.suffix for p in out.iterdir()) == [".svg"] * 4
    assert (out / "outcomes.svg").read_bytes().lstrip()[:5] in (b"<?xml", b"<svg ")
    low = tmp_path / "low"
    assert main(["run", "chicken", "--runs", "300", "--out", str(low), "--dpi", "60"]) == 0
    assert png_size((low / "steps.png").read_bytes()) == (9 * 60, round(4.5 * 60))
    default = tmp_path / "default"
    assert main(["run", "chicken", "--runs", "300", "--out", str(default)]) == 0
    assert png_size((default / "steps.png").read_bytes()) == (9 * 150, round(4.5 * 150))
    assert main(["run", "chicken", "--format", "gif"]) == 2
    assert main(["run", "chicken", "--dpi", "0"]) == 2
    capsys.readouterr()


def test_cli_compare_exact_and_sweep_take_format_and_dpi(tmp_path, capsys):
    out = tmp_path / "cmp"
    argv = ["compare", "chicken", "--actor", "us", "--runs", "300", "--out", str(out)]
    assert main([*argv, "--format", "pdf"]) == 0
    assert sorted(p.suffix for p in out.iterdir()) == [".pdf", ".pdf"]
    out = tmp_path / "exact"
    assert main(["exact", "chicken", "--out", str(out), "--format", "svg"]) == 0
    assert sorted(p.suffix for p in out.iterdir()) == [".svg"] * 4
    out = tmp_path / "sweep"
    argv = ["sweep", str(ONE_KNOB), "--vary", "hawkishness=0:1:3", "--runs", "100"]
    assert main([*argv, "--workers", "1", "--out", str(out), "--dpi", "50", "--quiet"]) == 0
    chart = out / "sweep_lines.png"
    assert png_size(chart.read_bytes()) == (9 * 50, 5 * 50)
    capsys.readouterr()


def test_cli_report_dpi_sets_the_embedded_charts(tmp_path, capsys):
    page = tmp_path / "r.html"
    assert main(["report", str(ONE_KNOB), "--runs", "200", "--out", str(page), "--dpi", "50"]) == 0
    html = page.read_text(encoding="utf-8")
    uris = re.findall(r'src="data:image/png;base64,([^"]+)"', html)
    assert uris
    assert png_size(base64.b64decode(uris[0])) == (8 * 50, round((0.6 * 2 + 1.8) * 50))
    capsys.readouterr()

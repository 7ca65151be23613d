"""The exact solver: hand-derived answers, refusals, and Monte Carlo checked against it."""

from __future__ import annotations

import dataclasses
import json
import math
import re
from pathlib import Path

import numpy as np
import pytest

from sim.cli.main import main
from sim.engine.runner import run_monte_carlo
from sim.errors import ScenarioError, SimulationError
from sim.model.compiled import Model
from sim.model.loading import load_scenario, load_text
from sim.results import Results
from sim.solvers.exact import exact_check, solve
from sim.solvers.exact_states import binomial_pmf, row_keys
from sim.solvers.prepare import prepare_model
from tests.conftest import BRANCH_LEAVES_RANGE_BODY, CAMP_TAJI, ROOT, SCENARIOS, build

TINY = ROOT / "tests" / "scenarios" / "exact"
TOL = 1e-12
MC_RUNS = 200_000


def model_of(path: Path, overrides: dict | None = None, horizon: int | None = None) -> Model:
    text = path.read_text()
    if horizon is not None:
        text = re.sub(r"^horizon: \d+", f"horizon: {horizon}", text, flags=re.M)
    return prepare_model(load_text(text, str(path)), overrides)


def outcome(results: Results, oid: str) -> float:
    return float(results.probabilities[results.model.outcome_ids.index(oid)])


# --- hand-derived answers ----------------------------------------------------------------------


@pytest.mark.parametrize("p", [0.6, 0.5, 0.3])
@pytest.mark.parametrize("name", ["gamblers_ruin.yaml", "gamblers_ruin_bernoulli.yaml"])
def test_gamblers_ruin_matches_the_classic_formulas(name, p):
    """A walk from level k = 2 that climbs with probability p, else falls, absorbed at 0 and
    N = 5. With r = q / p (q = 1 - p), the classic gambler's ruin gives
        P(war) = (1 - r**k) / (1 - r**N),  E[T] = k / (q - p) - N / (q - p) * P(war),
    and for p = 1/2: P(war) = k / N, E[T] = k (N - k). The horizon (400 weeks) leaves a mass
    below 1e-40 unresolved. Each week costs 1 and war 10 more: E[payoff] = -E[T] - 10 P(war)."""
    r = solve(model_of(TINY / name, {"p_up": p}))
    k, n, q = 2, 5, 1 - p
    if p == 0.5:
        war, duration = k / n, k * (n - k)
    else:
        ratio = q / p
        war = (1 - ratio**k) / (1 - ratio**n)
        duration = k / (q - p) - n / (q - p) * war
    assert outcome(r, "war") == pytest.approx(war, abs=TOL)
    assert outcome(r, "settled") == pytest.approx(1 - war, abs=TOL)
    assert outcome(r, "unresolved") < 1e-30
    assert r.steps_summary()["mean"] == pytest.approx(duration, abs=1e-10)
    assert r.payoff_mean[0] == pytest.approx(-duration - 10 * war, abs=1e-10)
    assert r.state_summary()["level"]["mean"] == pytest.approx(5 * war, abs=TOL)


def test_gamblers_ruin_over_three_weeks():
    """Three weeks from level 2 (p = 0.6, q = 0.4): war needs three climbs (p**3 = 0.216, in
    week 3), settlement two falls (q**2 = 0.16, in week 2); the rest is unresolved, at level 3
    (paths up-up-down, up-down-up, down-up-up: 3 p**2 q = 0.432) or level 1 (up-down-down,
    down-up-down: 2 p q**2 = 0.192)."""
    p, q = 0.6, 0.4
    r = solve(model_of(TINY / "gamblers_ruin.yaml", horizon=3))
    assert outcome(r, "war") == pytest.approx(p**3, abs=TOL)
    assert outcome(r, "settled") == pytest.approx(q**2, abs=TOL)
    assert outcome(r, "unresolved") == pytest.approx(3 * p**2 * q + 2 * p * q**2, abs=TOL)
    assert r.steps_hist[2] == pytest.approx(q**2, abs=TOL)
    assert r.steps_hist[3] == pytest.approx(1 - q**2, abs=TOL)
    mean_level = 5 * p**3 + 3 * 3 * p**2 * q + 1 * 2 * p * q**2
    assert r.state_summary()["level"]["mean"] == pytest.approx(mean_level, abs=TOL)
    # weeks cost 1 each: 2 for settled runs, 3 for the others; war costs 10 more
    assert r.payoff_mean[0] == pytest.approx(-2 * q**2 - 3 * (1 - q**2) - 10 * p**3, abs=TOL)


def test_two_move_crisis_with_logit_and_table():
    """The US strikes with logit probability e**(ln 3) / (1 + e**(ln 3)) = 3/4, else sanctions.
    Iran answers from its table. After a strike, talks (0.2) need zero tension and are
    unavailable, so their share goes to retaliate 0.5/0.8 = 0.625 and absorb 0.3/0.8 = 0.375;
    after sanctions the default row holds: talks 0.5, absorb 0.4, retaliate 0.1.
      P(retaliate) = 3/4 * 0.625 + 1/4 * 0.1 = 0.49375, half of which spirals into war:
      P(war) = 0.246875;  P(settled) = P(talks) = 1/4 * 0.5 = 0.125;  P(ongoing) = 0.628125.
      E[us]   = 3/4 * (-1) + 0.49375 * (-2) + 0.246875 * (-10) = -4.20625
      E[iran] = 0.49375 * 1 + 0.246875 * (-20) = -4.44375
    Peak rung: war 3 (0.246875); a strike or a retaliation without war 2 (0.75 - 0.75 * 0.625 / 2
    + 1/4 * 0.1 / 2 = 0.528125); sanctions then talks or absorb 1 (1/4 * 0.9 = 0.225)."""
    r = solve(model_of(TINY / "two_move_crisis.yaml"))
    assert outcome(r, "war") == pytest.approx(0.246875, abs=TOL)
    assert outcome(r, "settled") == pytest.approx(0.125, abs=TOL)
    assert outcome(r, "ongoing") == pytest.approx(0.628125, abs=TOL)
    assert r.payoff_mean == pytest.approx([-4.20625, -4.44375], abs=TOL)
    assert r.peak_hist == pytest.approx([0, 0.225, 0.528125, 0.246875], abs=TOL)
    moves = r.move_shares()
    assert moves["us"]["strike"] == pytest.approx(0.75, abs=TOL)
    assert moves["iran"] == pytest.approx(
        {"talks": 0.125, "absorb": 0.38125, "retaliate": 0.49375}, abs=TOL
    )
    assert r.payoff_sd[0] > 0


def test_missile_race_sequence_fallback_binomial_and_discount():
    """Iran's missiles M grow by binomial(2, 1/2) (0, 1, 2 with 1/4, 1/2, 1/4) after each week,
    at most 3. The US plan is watch, strike, strike; a strike needs M >= 2, else it watches.
      Week 1: watch (-1). M1 = 0, 1, 2 with 1/4, 1/2, 1/4.
      Week 2: strike iff M1 = 2: war with 1/4 (payoff -8 * 0.5). Else watch (-1 * 0.5).
      Week 3: M2 >= 2 with 1/4 from M1 = 0 and 3/4 from M1 = 1: war with
              1/4 * 1/4 + 1/2 * 3/4 = 7/16 (-8 * 0.25); else watch (-1 * 0.25), ongoing 5/16.
      P(war) = 11/16; E[steps] = 2 * 1/4 + 3 * 3/4 = 2.75;
      E[us] = -1 - 4/4 - 0.5 * 3/4 - 2 * 7/16 - 0.25 * 5/16 = -3.328125.
    Final M: war in week 2 leaves M = 2 (16/64); war in week 3 M = 2 (20/64) or 3 (8/64);
    ongoing runs add one more draw to M2 in {0 (1/16), 1 (1/4)}: 0 (1/64), 1 (6/64), 2 (9/64),
    3 (4/64). So P(M = 0, 1, 2, 3) = 1/64, 6/64, 45/64, 12/64, mean 132/64, quantiles 1 / 2 / 3.
    The US moved 2.75 times on average, striking 11/16 of a time: a strike share of 1/4."""
    r = solve(model_of(TINY / "missile_race.yaml"))
    assert outcome(r, "war") == pytest.approx(11 / 16, abs=TOL)
    assert r.steps_summary()["mean"] == pytest.approx(2.75, abs=TOL)
    assert r.payoff_mean[0] == pytest.approx(-3.328125, abs=TOL)
    assert r.state_summary()["missiles"] == pytest.approx(
        {"mean": 132 / 64, "p05": 1, "p50": 2, "p95": 3}, abs=TOL
    )
    assert r.move_shares()["us"]["strike"] == pytest.approx(0.25, abs=TOL)
    assert r.moves[0].sum() == pytest.approx(2.75, abs=TOL)


# --- output ------------------------------------------------------------------------------------


def test_json_has_the_run_shape_with_null_runs_and_point_intervals(capsys):
    path = str(SCENARIOS / "chicken.yaml") if (SCENARIOS / "chicken.yaml").exists() else None
    path = path or str(TINY / "two_move_crisis.yaml")
    assert main(["run", path, "--json", "--no-charts", "--runs", "4096"]) == 0
    mc = json.loads(capsys.readouterr().out)
    assert main(["exact", path, "--json"]) == 0
    ex = json.loads(capsys.readouterr().out)
    assert set(mc) <= set(ex) and set(ex) - set(mc) == {"exact"}
    assert ex["runs"] is None and ex["seed"] is None
    assert set(ex["outcomes"]) == set(mc["outcomes"])
    for row in ex["outcomes"].values():
        assert row["count"] is None and row["ci95"] == [row["p"], row["p"]]
    assert sum(row["p"] for row in ex["outcomes"].values()) == pytest.approx(1, abs=1e-12)
    for actor, row in ex["payoffs"].items():
        assert row["ci95"] == [row["mean"], row["mean"]]
        assert set(row) == set(mc["payoffs"][actor])
    for key in ("steps", "peak_rung"):
        assert set(ex[key]) == set(mc[key])
    assert set(ex["state"]) == set(mc["state"]) and set(ex["moves"]) == set(mc["moves"])
    info = ex["exact"]
    assert info["reachable_states"] >= info["max_states"] > 0 and info["solve_seconds"] >= 0


def test_table_output_names_states_and_solve_time(capsys, tmp_path):
    out = tmp_path / "charts"
    assert main(["exact", str(TINY / "two_move_crisis.yaml"), "--out", str(out)]) == 0
    text = " ".join(capsys.readouterr().out.split())  # rich wraps at the terminal width
    assert "exact solution" in text and "reachable states: 14 in all" in text
    assert "solve time" in text and "24.6875%" in text
    assert sorted(p.name for p in out.iterdir()) == [
        "outcomes.png",
        "peak_rung.png",
        "rung_occupancy.png",
        "steps.png",
    ]


def test_run_exact_check_reports_z_scores(capsys):
    args = ["run", str(TINY / "standoff.yaml"), "--runs", "50000", "--no-charts", "--quiet"]
    assert main([*args, "--json", "--exact-check"]) == 0
    check = json.loads(capsys.readouterr().out)["exact_check"]
    assert check["runs"] == 50000 and check["reachable_states"] > 1000
    assert set(check["outcomes"]) == {"war", "peace", "truce", "standoff"}
    assert all(abs(row["z"]) < 5 for row in check["outcomes"].values())
    assert all(abs(row["z"]) < 5 for row in check["payoffs"].values())
    assert check["max_abs_z"] < 5
    assert main([*args, "--exact-check"]) == 0
    text = " ".join(capsys.readouterr().out.split())
    assert "Exact check" in text and "largest |z|" in text


# --- refusals ----------------------------------------------------------------------------------


def located(stderr: str) -> tuple[str, int, int, str]:
    line = stderr.strip().splitlines()[0]
    match = re.match(r"^(.+?):(\d+):(\d+): (.*)$", line)
    assert match, line
    return match[1], int(match[2]), int(match[3]), match[4]


def test_camp_taji_is_refused_at_its_poisson_draw(capsys):
    assert main(["exact", str(CAMP_TAJI)]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    file, line, col, message = located(err)
    assert file == str(CAMP_TAJI)
    assert CAMP_TAJI.read_text().splitlines()[line - 1][col - 1 :].startswith("poisson(")
    assert "not exactly solvable: poisson() is an unbounded random draw" in message


@pytest.mark.parametrize("draw", ["normal(0, 1)", "uniform(0, 2)", "poisson(1)"])
def test_continuous_draws_are_refused_with_the_column_of_the_draw(tmp_path, capsys, draw):
    text = (
        (TINY / "gamblers_ruin.yaml")
        .read_text()
        .replace(
            "payoffs: {crisis: -1}", f'payoffs: {{crisis: "-1 + 0 * bernoulli(0.5) + {draw}"}}'
        )
    )
    path = tmp_path / "walk.yaml"
    path.write_text(text)
    assert main(["exact", str(path)]) == 2
    file, line, col, message = located(capsys.readouterr().err)
    assert file == str(path)
    assert text.splitlines()[line - 1][col - 1 :].startswith(draw)
    kind = draw.split("(")[0]
    assert f"{kind}() is" in message and "step 1" in message


def test_an_unreachable_continuous_draw_is_no_obstacle():
    model = build("""
horizon: 3
ladder: [low, high]
state: {x: 0}
actors: {a: {label: A}}
turn_order: [a]
options:
  a:
    - {id: calm}
    - {id: wild, effects: {add: {x: "normal(0, 1)"}}}
policies: {a: {kind: fixed, option: calm}}
""")
    assert solve(model).probabilities[0] == 1.0


def test_too_many_states_are_refused_with_the_count_and_the_step(capsys):
    path = TINY / "standoff.yaml"
    assert main(["exact", str(path), "--max-states", "1000"]) == 2
    file, line, col, message = located(capsys.readouterr().err)
    assert file == str(path) and path.read_text().splitlines()[line - 1].startswith("horizon:")
    match = re.search(
        r"([\d,]+) distinct states after (\w+)'s move in step (\d+) exceed the "
        r"limit of 1,000",
        message,
    )
    assert match and int(match[1].replace(",", "")) > 1000


def test_a_draw_too_wide_to_enumerate_is_refused_at_the_draw(tmp_path, capsys):
    text = (
        (TINY / "missile_race.yaml").read_text().replace("binomial(2, 0.5)", "binomial(1000, 0.5)")
    )
    path = tmp_path / "race.yaml"
    path.write_text(text)
    assert main(["exact", str(path), "--max-states", "100"]) == 2
    file, line, col, message = located(capsys.readouterr().err)
    assert text.splitlines()[line - 1][col - 1 :].startswith("binomial(1000")
    assert "enumerating this binomial() draw at step 1" in message and "1,001" in message


def test_early_merging_of_wide_moves_changes_nothing(monkeypatch):
    import sim.solvers.exact

    model = model_of(TINY / "standoff.yaml")
    normal = solve(model)
    monkeypatch.setattr(sim.solvers.exact, "MERGE_ROWS", 1)
    early = solve(model, max_states=3000)
    assert early.probabilities == pytest.approx(normal.probabilities, abs=1e-14)
    assert early.payoff_mean == pytest.approx(normal.payoff_mean, abs=1e-12)
    assert early.extra["exact"]["reachable_states"] == normal.extra["exact"]["reachable_states"]


def test_branch_probability_violations_are_reported_as_by_the_engine():
    model = build(BRANCH_LEAVES_RANGE_BODY)
    with pytest.raises(SimulationError) as err:
        solve(model)
    message = str(err.value)
    assert message.startswith("inline.yaml:") and "branch 'up'" in message
    assert "1.1" in message and "outside [0, 1]" in message and "step 2" in message


# --- Monte Carlo against the exact solution ----------------------------------------------------


def assert_monte_carlo_agrees(model: Model, exact: Results, seed: int = 2024) -> None:
    """Every outcome, mean payoff, mean step count, peak rung share and final state mean of a
    200,000-run Monte Carlo experiment lies within 5 standard errors of the exact value."""
    mc = run_monte_carlo(model, MC_RUNS, seed)
    check = exact_check(mc, exact)
    for part in ("outcomes", "payoffs"):
        for name, row in check[part].items():
            assert row["z"] is not None and abs(row["z"]) < 5, (part, name, row)
    n = mc.runs
    t = np.arange(len(exact.steps_hist))
    mean_t = (t * exact.steps_hist).sum()
    sd_t = math.sqrt(max((t * t * exact.steps_hist).sum() - mean_t**2, 0))
    assert abs(mc.steps_summary()["mean"] - mean_t) <= 5 * sd_t / math.sqrt(n) + 1e-12
    for r, p in enumerate(exact.peak_hist):
        assert abs(mc.peak_hist[r] / n - p) <= 5 * math.sqrt(p * (1 - p) / n) + 1e-12
    w = exact.final_weights
    for i, name in enumerate(model.state_names):
        v = exact.final_state[i]
        mean = (v * w).sum()
        sd = math.sqrt(max((v * v * w).sum() - mean**2, 0))
        assert abs(mc.final_state[i].mean() - mean) <= 5 * sd / math.sqrt(n) + 1e-9, name


BUNDLED = sorted(SCENARIOS.glob("*.yaml"))


@pytest.mark.parametrize("path", BUNDLED, ids=[p.stem for p in BUNDLED])
def test_every_solvable_bundled_scenario_agrees_with_monte_carlo(path):
    model = prepare_model(load_scenario(path))
    try:
        exact = solve(model)
    except ScenarioError as exc:  # refused: it must say why, at a place in the file
        assert "not exactly solvable" in str(exc) and str(path) in str(exc)
        return
    assert_monte_carlo_agrees(model, exact)


TINY_FILES = sorted(TINY.glob("*.yaml"))


@pytest.mark.parametrize("path", TINY_FILES, ids=[p.stem for p in TINY_FILES])
def test_tiny_scenarios_agree_with_monte_carlo(path):
    model = model_of(path)
    assert_monte_carlo_agrees(model, solve(model), seed=7)


@pytest.mark.parametrize(
    "overrides",
    [
        {"hawkishness": 1.5, "talk_chance": 0.8},
        {"clash_risk": 0.05, "rationality": 0},
        {"hawkishness": 0, "clash_risk": 0.3, "rationality": 4},
    ],
)
def test_exact_and_monte_carlo_agree_under_overrides(overrides):
    model = model_of(TINY / "standoff.yaml", overrides)
    exact = solve(model)
    assert exact.model.parameters == {**model_of(TINY / "standoff.yaml").parameters, **overrides}
    assert_monte_carlo_agrees(model, exact, seed=11)


def test_forced_first_move_of_compare_is_honoured():
    model = model_of(TINY / "standoff.yaml")
    forced = dataclasses.replace(model, forced_first={0: 1})  # Alpha strikes first
    exact = solve(forced)
    assert exact.moves[0, 2] > solve(model).moves[0, 2]
    assert_monte_carlo_agrees(forced, exact, seed=5)


# --- building blocks ---------------------------------------------------------------------------


def test_row_keys_group_equal_rows_whatever_the_columns():
    rng = np.random.default_rng(0)
    n = 5000
    base = np.stack(
        [
            rng.integers(0, 3, n).astype(float),  # small integers: coded directly
            rng.choice([0.1, 0.30000000000000004, 0.3, -0.0, 0.0], n),  # floats: sorted
            rng.choice([0.0, 1e15], n),  # integral but a wide span: sorted
            *[rng.integers(0, 40_000, n) * 1e9 for _ in range(6)],  # radix overflows 2**62
        ]
    )
    rows = np.concatenate([base, base[:, : n // 2]], axis=1)
    first, inverse, count = row_keys(list(rows))
    expected = np.unique(rows.T + 0.0, axis=0)  # + 0.0 folds -0.0 into 0.0
    assert count == len(expected) == len(first)
    assert np.array_equal(rows[:, first][:, inverse], rows)


def test_binomial_pmf_is_exact_for_small_and_large_n():
    from scipy.stats import binom

    k = np.arange(0, 121)
    for n, p in [(2, 0.5), (7, 0.0), (7, 1.0), (30, 0.3), (120, 0.45), (120, 1.0)]:
        kk = k[k <= n]
        got = binomial_pmf(kk, np.full(kk.shape, n), np.full(kk.shape, p))
        assert got == pytest.approx(binom.pmf(kk, n, p), rel=1e-12, abs=1e-300)
        assert got.sum() == pytest.approx(1, abs=1e-12)


@pytest.mark.filterwarnings("error::RuntimeWarning")
@pytest.mark.parametrize(
    "payoff,message",
    [
        ("-1e308 * (step == 2)", "payoffs are too large to average (their spread overflows)"),
        ("1e200", "payoffs are too large to average (their spread overflows)"),
        ("1e308", "the payoffs of a overflow (their mean is not finite)"),
    ],
)
def test_payoffs_whose_square_or_sum_overflows_are_refused_without_a_warning(payoff, message):
    """The exact variance is E[X^2] - E[X]^2: beyond about 1e154 it overflowed with a NumPy
    RuntimeWarning on stderr and a NaN spread (exit 0). Now the refusal of Monte Carlo."""
    model = build(
        "horizon: 3\nladder: [low, high]\nactors: {a: {label: A}}\nturn_order: [a]\n"
        f'options: {{a: [{{id: go, payoffs: {{a: "{payoff}"}}}}]}}\n'
        "policies: {a: {kind: fixed, option: go}}\n"
    )
    with pytest.raises(SimulationError, match=re.escape(message)):
        solve(model)
    with pytest.raises(SimulationError):
        run_monte_carlo(model, 100, 1)

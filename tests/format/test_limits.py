"""Limits (docs/scenario-format.md, Limits): every bad input answered in bounded time and memory,
with a located message and exit status 2 (issue 13). One test per failure the campaign found."""

from __future__ import annotations

import json
import math
import os
import re
import threading
import time

import numpy as np
import pytest

from sim.analysis import sweep_design
from sim.cli.main import main
from sim.engine import runner
from sim.errors import ScenarioError, SimulationError
from sim.format import loader
from sim.format.checks import MAX_ID_LENGTH
from sim.model import expr
from sim.model.loading import load_scenario, load_text
from sim.solvers import exact
from sim.solvers.prepare import prepare_model
from tests.conftest import CAMP_TAJI, ROOT, SCENARIOS, scenario_text

TINY = """\
horizon: 3
ladder: [low, high]
parameters: {k: 2}
state: {x: 0}
actors: {a: {label: A}}
turn_order: [a]
options: {a: [{id: go, payoffs: {a: "PAYOFF"}}]}
policies: {a: {kind: fixed, option: go}}
"""


def tiny(payoff: str = "1", extra: str = "") -> str:
    return scenario_text(TINY.replace("PAYOFF", payoff) + extra)


def problem(text: str):
    with pytest.raises(ScenarioError) as err:
        load_text(text, "x.yaml")
    (found, *_) = err.value.problems
    return found


def run_error(text: str, runs: int = 100) -> str:
    model = prepare_model(load_text(text, "x.yaml"))
    with pytest.raises(SimulationError) as err:
        runner.run_monte_carlo(model, runs, 1)
    return str(err.value)


def cli(capsys, *argv: str) -> tuple[int, str, str]:
    status = main(list(argv))
    out, err = capsys.readouterr()
    assert "Traceback" not in err
    return status, out, err


def write(tmp_path, text: str, name: str = "s.yaml"):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


# --- 1. hangs: large draw parameters, FIFOs and devices, big files ------------------------------


@pytest.mark.parametrize(
    "payoff,message",
    [
        ("binomial(1e18, 0.5)", "binomial() n = 1e+18 is above the limit of 1,000,000"),
        ("poisson(1e30)", "poisson() lam = 1e+30 is above the limit of 1,000,000"),
        ("poisson(2 * 1e6)", "above the limit"),
    ],
)
def test_a_constant_draw_argument_beyond_its_limit_is_a_load_error(payoff, message):
    found = problem(tiny(payoff))
    assert message in found.message
    line = tiny(payoff).splitlines()[found.line - 1]
    assert line[found.col - 1 :].startswith(payoff.split("(", 1)[1][:3])  # on the argument


@pytest.mark.parametrize(
    "payoff,message",
    [
        ("binomial(k * 1e17, 0.5)", "binomial(n, p) needs n <= 1,000,000 (the limit)"),
        ("poisson(k * 1e6)", "poisson(lam) needs lam <= 1,000,000 (the limit)"),
    ],
)
def test_a_draw_argument_beyond_its_limit_at_run_time_stops_quickly_and_located(payoff, message):
    start = time.perf_counter()
    error = run_error(tiny(payoff))
    assert time.perf_counter() - start < 10
    assert message in error and re.match(r"x\.yaml:\d+:\d+: ", error)


def test_draws_at_their_limits_are_fast():
    from sim.engine.streams import invert

    u = np.random.default_rng(1).random(4096)
    invert("binomial", u, [np.asarray(5.0), np.asarray(0.5)])  # scipy imported
    for kind, args in (("binomial", [expr.MAX_BINOMIAL_N, 0.5]), ("poisson", [1e6])):
        start = time.perf_counter()
        out = invert(kind, u, [np.asarray(a) for a in args])
        assert np.isfinite(out).all()
        assert time.perf_counter() - start < 10


def _read_in_thread(path) -> tuple[bool, str]:
    result: list[str] = []

    def target() -> None:
        try:
            loader.read_scenario_text(path)
            result.append("read")
        except ScenarioError as exc:
            result.append(str(exc))

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join(5)
    return (not thread.is_alive()), (result[0] if result else "")


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs here")
def test_a_fifo_is_refused_at_once(tmp_path, capsys):
    fifo = tmp_path / "pipe.yaml"
    os.mkfifo(fifo)
    finished, message = _read_in_thread(fifo)
    assert finished, "reading a FIFO blocked"
    assert "FIFO" in message and "regular file" in message
    status, out, _ = cli(capsys, "validate", str(fifo))
    assert status == 2 and f"{fifo}:1:1: cannot read a FIFO" in out


@pytest.mark.parametrize("device", ["/dev/zero", "/dev/urandom"])
def test_a_device_is_refused_without_reading_it(device):
    if not os.path.exists(device):
        pytest.skip(f"no {device}")
    finished, message = _read_in_thread(device)
    assert finished and "cannot read a device" in message


def test_a_directory_is_refused(tmp_path):
    assert "cannot read a directory" in _read_in_thread(tmp_path)[1]


def test_a_file_over_the_size_limit_is_refused_by_its_size(tmp_path):
    big = tmp_path / "big.yaml"
    with open(big, "wb") as f:  # sparse: 4 GiB that were never written, so never read
        f.truncate(4 << 30)
    start = time.perf_counter()
    finished, message = _read_in_thread(big)
    assert finished and time.perf_counter() - start < 2
    assert f"more than the limit of {loader.MAX_FILE_BYTES:,} bytes" in message


def test_a_file_that_is_not_utf8_is_located_at_its_bad_byte(tmp_path):
    path = tmp_path / "bytes.yaml"
    path.write_bytes(b"schema: 1\ntitle: caf\xe9\n")
    with pytest.raises(ScenarioError) as err:
        loader.read_scenario_text(path)
    (found,) = err.value.problems
    assert (found.line, found.col) == (2, 11) and "not UTF-8" in found.message


# --- 2. memory: alias bombs, nesting, runs, samples, exact --------------------------------------


def _bomb(levels: int, prefix: str = "b") -> list[str]:
    lines = [f"{prefix}0: &{prefix}0 [1, 1, 1, 1, 1, 1, 1, 1, 1, 1]"]
    for i in range(1, levels):
        refs = ", ".join([f"*{prefix}{i - 1}"] * 10)
        lines.append(f"{prefix}{i}: &{prefix}{i} [{refs}]")
    return lines


def test_an_alias_bomb_under_a_duplicate_key_is_refused_while_composing():
    text = "\n".join([*_bomb(9), "b8: *b8"]) + "\n"  # 10**9 values, and a duplicate key
    assert len(text.encode()) < 1000
    start = time.perf_counter()
    found = problem(text)
    assert time.perf_counter() - start < 2
    assert f"expands to more than {loader.MAX_NODES:,} values" in found.message


def test_a_duplicate_key_message_never_expands_its_value():
    text = "\n".join([*_bomb(4), "b3: *b3"]) + "\n"  # 10,000 values: under the limit
    found = problem(text)
    assert 'duplicate key "b3" (first given at line 4)' in found.message
    assert len(found.message) < 200


def test_a_deeply_nested_alias_bomb_is_refused_before_it_expands():
    lines = ["a0: &a0 [[[[[[[[[[1]]]]]]]]]]"]
    lines += [f"a{i}: &a{i} [[[[*a{i - 1}, *a{i - 1}]]]]" for i in range(1, 40)]
    start = time.perf_counter()
    found = problem("\n".join(lines) + "\n")
    assert time.perf_counter() - start < 2
    assert "expands to more than" in found.message


def test_a_recursive_alias_is_refused():
    found = problem(tiny(extra="loop: &r [1, *r]\n"))
    assert "recursive" in found.message


@pytest.mark.parametrize("depth", [65, 250, 5000])
def test_deep_nesting_is_a_located_error_not_a_recursion_error(depth):
    found = problem(tiny(extra="deep: " + "[" * depth + "]" * depth + "\n"))
    assert f"nested more than {loader.MAX_DEPTH} levels deep" in found.message
    assert found.line > 1


def test_nesting_within_the_limit_reads():
    data, _ = loader.read_yaml("deep: " + "[" * 60 + "]" * 60 + "\n", "x.yaml")
    assert isinstance(data["deep"], list)


def test_merge_keys_beside_own_keys_read():
    data, _ = loader.read_yaml("a: &A {x: 1}\nb:\n  <<: *A\n  y: 2\n", "x.yaml")
    assert data["b"] == {"x": 1, "y": 2}


@pytest.mark.parametrize("runs", ["1000000000", "100000001"])
def test_runs_beyond_the_limit_exit_2_with_the_limit(capsys, runs):
    status, _, err = cli(capsys, "run", str(CAMP_TAJI), "--runs", runs, "--no-charts", "--quiet")
    assert status == 2
    assert "limit" in err and "runs" in err


def test_plain_monte_carlo_is_bounded_by_the_run_limit_only():
    """Its memory does not grow with the runs (tests/engine/test_streaming.py), so 100,000,000
    runs pass the check; per-run records (compare, debrief) are still held to MEMORY_LIMIT."""
    model = prepare_model(load_scenario(CAMP_TAJI))
    runner.check_runs(model, runner.MAX_RUNS)
    with pytest.raises(SimulationError, match="limit of 100,000,000 runs"):
        runner.check_runs(model, runner.MAX_RUNS + 1)


def test_the_runs_check_names_the_most_runs_that_fit():
    model = prepare_model(load_scenario(CAMP_TAJI))
    per_run = 16 * len(model.state_names)
    most = runner.MEMORY_LIMIT // per_run
    with pytest.raises(SimulationError, match=f"use at most {most:,} runs"):
        runner.check_runs(model, most + 1, per_run, "keep them")
    runner.check_runs(model, most, per_run, "keep them")


@pytest.mark.parametrize("method,samples", [("lhs", "1000000000"), ("sobol", "1073741824")])
def test_samples_beyond_the_point_limit_exit_2_before_any_point_is_drawn(
    capsys, tmp_path, method, samples
):
    argv = ["sweep", str(CAMP_TAJI), "--vary", "kh_autonomy=0:1", "--method", method]
    argv += ["--samples", samples, "--out", str(tmp_path / "s"), "--quiet", "--workers", "1"]
    start = time.perf_counter()
    status, _, err = cli(capsys, *argv)
    assert status == 2 and time.perf_counter() - start < 30
    assert f"more than the limit of {sweep_design.MAX_POINTS:,}" in err


def _many_options(n: int, horizon: int) -> str:
    options = "\n".join(f"    - {{id: o{i}, effects: {{add: {{x: {i}}}}}}}" for i in range(n))
    utilities = ", ".join(f"o{i}: {(i % 5) / 5}" for i in range(n))
    return scenario_text(
        f"horizon: {horizon}\nladder: [low, high]\nstate: {{x: {{initial: 0, integer: true}}}}\n"
        "actors: {a: {label: A}}\nturn_order: [a]\n"
        f"options:\n  a:\n{options}\n"
        f"policies: {{a: {{kind: logit, rationality: 1, utilities: {{{utilities}}}}}}}\n"
    )


def test_exact_refuses_a_state_space_that_would_exceed_its_memory_limit():
    model = prepare_model(load_text(_many_options(60, 4), "wide.yaml"))
    with pytest.raises(ScenarioError) as err:
        exact.solve(model, max_memory=16 << 20)
    (found,) = err.value.problems
    assert found.file == "wide.yaml" and found.line > 0
    assert "not exactly solvable within memory" in found.message
    assert "more than the limit of 0.0 GiB" in found.message or "limit of" in found.message


def test_exact_default_memory_limit_stops_the_300_option_bomb_before_2_gib():
    model = prepare_model(load_text(_many_options(300, 5), "wide.yaml"))
    row = exact._Solver(model, exact.DEFAULT_MAX_STATES).row_bytes
    assert row == 8 * (1 + 3 + 3)
    with pytest.raises(ScenarioError, match="within memory"):
        exact.solve(model, max_memory=256 << 20)  # the same check, at a tenth of the size


# --- 3. exit 1 where 2 is promised: huge integers, surrogates -----------------------------------


def test_an_integer_of_more_than_4300_digits_is_located():
    found = problem(tiny(extra="discount: " + "9" * 5000 + "\n"))
    assert "an integer of 5,000 digits is too large" in found.message
    assert found.line > 1 and found.col == len("discount: ") + 1


def test_a_hexadecimal_integer_beyond_float_range_is_located():
    found = problem(tiny(extra="discount: 0x" + "f" * 290 + "\n"))
    assert "too large" in found.message


@pytest.mark.parametrize(
    "value,message",
    [
        ("9" * 5000, "more than 300 digits"),
        ("0_5", "is not a number"),
        ("\u0661", "is not a number"),  # an Arabic-Indic one: float() reads it
        ("\uff15", "is not a number"),  # a full-width 5
        ("nan", "is not a number"),
        ("infinity", "is not a number"),
        ("1e999", "must be finite"),
        ("0x10", "is not a number"),
    ],
)
def test_set_values_are_plain_ascii_decimals(capsys, value, message):
    status, _, err = cli(
        capsys,
        "run",
        str(CAMP_TAJI),
        "--set",
        f"kh_autonomy={value}",
        "--runs",
        "50",
        "--no-charts",
    )
    assert status == 2 and message in err


@pytest.mark.parametrize("text", ["0.5", "-1", "+2.5e-1", ".5", "5.", "1E3", " 0.25 "])
def test_set_reads_ordinary_numbers(text):
    assert runner.parse_number(text, "--set x") == float(text)


@pytest.mark.parametrize(
    "where",
    ['title: "crisis \\udcff"', 'summary: "\\ud800"', 'actors: {"a\\udcff": {label: A}}'],
)
def test_a_lone_surrogate_is_refused_at_load(where):
    text = tiny()
    key = where.split(":")[0]
    text = "\n".join(line for line in text.splitlines() if not line.startswith(key)) + "\n"
    found = problem(text + where + "\n")
    assert "lone surrogate" in found.message and found.line > 1


# --- 4. silent garbage: infinities, NaN, strict JSON --------------------------------------------


def test_a_huge_state_gives_a_finite_mean_and_strict_json(tmp_path, capsys):
    path = write(tmp_path, tiny(extra="").replace("state: {x: 0}", "state: {x: 1e308}"))
    status, out, err = cli(capsys, "run", str(path), "--runs", "5000", "--json", "--no-charts")
    assert status == 0, err
    result = json.loads(out, parse_constant=lambda c: pytest.fail(f"{c} in the JSON"))
    assert result["state"]["x"]["mean"] == 1e308
    assert "Warning" not in err


def test_an_overflowing_effect_names_the_expression_and_variable():
    text = tiny().replace("state: {x: 0}", "state: {x: 1e308}")
    text = text.replace('payoffs: {a: "1"}', 'payoffs: {a: "1"}, effects: {add: {x: 1e308}}')
    error = run_error(text)
    assert re.match(r"x\.yaml:\d+:\d+: effect on 'x' evaluated to inf", error)


def test_a_non_finite_result_is_refused_naming_the_state_variable():
    model = prepare_model(load_text(tiny(), "x.yaml"))
    results = runner.run_monte_carlo(model, 10, 1)
    results.state_stream.sums.total[0] = math.inf  # as if a run had ended at inf
    results.state_stream.all_finite[0] = False
    with pytest.raises(SimulationError) as err:
        results.to_dict()
    assert "state variable 'x'" in str(err.value) and "x.yaml:" in str(err.value)


@pytest.mark.parametrize(
    "payoff,message",
    [
        ("normal(0, k * 1e308)", "normal(mu, sd) needs finite arguments, got inf"),
        ("normal(0, 1e308)", "normal(mu, sd) drew"),
        ("uniform(-1e308, 1e308)", "uniform(a, b) drew"),
    ],
)
def test_draws_that_overflow_are_located_errors_not_nan(payoff, message):
    error = run_error(tiny(payoff), runs=4096)
    assert message in error and re.match(r"x\.yaml:\d+:\d+: ", error)


# --- 7. quietly accepted --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "payoff,message",
    [
        ("ｓｔｅｐ", "non-ASCII character 'ｓ' (U+FF53 FULLWIDTH LATIN SMALL LETTER S)"),
        ("ｍｉｎ(1, 2)", "non-ASCII character"),
        ("step ａｎｄ 1", "non-ASCII character"),
        ("True + step", "'True' is not a name: write 'true'"),
        ("step > 1 and False", "'False' is not a name: write 'false'"),
    ],
)
def test_expressions_are_not_normalised_nor_python(payoff, message):
    found = problem(tiny(payoff))
    assert message in found.message
    at = tiny(payoff).splitlines()[found.line - 1][found.col - 1]
    assert at in "TF" if "not a name" in message else ord(at) > 127


@pytest.mark.filterwarnings("error::RuntimeWarning")  # pytest would catch it before stderr
def test_no_numpy_warning_reaches_stderr(tmp_path, capsys):
    """A RuntimeWarning is an error here, so the command would end with status 1, not 0 or 2:
    pytest's own capture of warnings keeps them from the stderr capsys reads, so checking that
    alone could never fail. (tests/test_results.py checks run, compare and exact likewise.)"""
    payoffs = '{a: "where(sqrt(step - 2) > 0, log(step - 1), exp(700) / exp(700))"}'
    path = write(tmp_path, tiny().replace('payoffs: {a: "1"}', f"payoffs: {payoffs}"))
    status, _, err = cli(capsys, "run", str(path), "--runs", "200", "--no-charts")
    assert status in (0, 2) and "Warning" not in err
    path = write(tmp_path, tiny("exp(step * 1000)"), "overflow.yaml")
    status, _, err = cli(capsys, "run", str(path), "--runs", "200", "--no-charts")
    assert status == 2 and "Warning" not in err and "payoff evaluated to inf" in err
    # finite payoffs whose average overflows (fuzz case 233 of seed 202): refused, no warning
    path = write(tmp_path, tiny("-1e308 * (step == 2)"), "huge.yaml")
    status, _, err = cli(capsys, "run", str(path), "--runs", "200", "--no-charts")
    assert status == 2 and "Warning" not in err and "too large" in err


@pytest.mark.parametrize(
    "yaml,message",
    [
        ("actors: {'us;touch x': {label: X}}", "actor id 'us;touch x' is not valid"),
        ("outcomes: {'a b': {when: 'false'}}", "outcome id 'a b' is not valid"),
        ("parameters: {é: 1}", "name 'é' is not valid: use ASCII"),
        ("parameters: {ｋ: 1}", "would be read as 'k'"),
        ("actors: {" + "a" * (MAX_ID_LENGTH + 1) + ": {label: X}}", "longer than 100"),
    ],
)
def test_identifiers_are_ascii_slugs(yaml, message):
    text = tiny()
    key = yaml.split(":")[0]
    text = "\n".join(line for line in text.splitlines() if not line.startswith(key)) + "\n"
    text = text.replace("actors: {a: {label: A}}", "actors: {a: {label: A}}")
    with pytest.raises(ScenarioError) as err:
        load_text(text + yaml + "\n", "x.yaml")
    assert any(message in p.message for p in err.value.problems), err.value.problems


def test_every_bundled_and_test_scenario_still_validates():
    files = sorted(SCENARIOS.glob("*.yaml"))
    files += sorted((ROOT / "tests" / "scenarios" / "good").glob("*.yaml"))
    files += sorted((ROOT / "tests" / "scenarios" / "exact").glob("*.yaml"))
    for path in files:
        load_scenario(path)


# --- the limits are documented, with the values the code enforces --------------------------------


def test_the_limits_section_states_every_enforced_value():
    doc = (ROOT / "docs" / "scenario-format.md").read_text(encoding="utf-8")
    assert "## Limits" in doc
    section = doc.split("## Limits", 1)[1].split("\n## ", 1)[0]
    for value in (
        loader.MAX_FILE_BYTES,
        loader.MAX_NODES,
        loader.MAX_DEPTH,
        loader.MAX_INT_DIGITS,
        expr.MAX_BINOMIAL_N,
        expr.MAX_POISSON_LAMBDA,
        expr.MAX_LENGTH,
        runner.MAX_RUNS,
        sweep_design.MAX_POINTS,
        MAX_ID_LENGTH,
    ):
        assert f"{value:,}" in section, f"{value:,} is not in the Limits section"
    assert "2 GiB" in section

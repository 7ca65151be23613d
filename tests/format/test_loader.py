"""The loader's errors: every bad input reported as `FILE:LINE:COL: message`, exit status 2.

Each file in tests/scenarios/bad/ holds exactly one problem and states, on its first line,
`# expect: LINE:COL: <part of the message>`: the expectation lives next to the input.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from sim.cli.main import main
from sim.errors import ScenarioError
from sim.format.loader import read_yaml
from sim.format.scenario import json_schema
from sim.model.loading import load_scenario, load_text
from tests.conftest import CAMP_TAJI, ROOT, SCENARIOS, scenario_text

TEST_SCENARIOS = ROOT / "tests" / "scenarios"
BAD = TEST_SCENARIOS / "bad"
BAD_FILES = sorted(BAD.glob("*.yaml"))
MULTI_FILES = sorted(TEST_SCENARIOS.glob("multi_problem*.yaml"))
GOOD_FILES = sorted(SCENARIOS.glob("*.yaml")) + sorted((TEST_SCENARIOS / "good").glob("*.yaml"))
EXPECT = re.compile(r"# expect: (\d+):(\d+): (.+)")

REQUIRED_CASES = [
    "yaml_syntax",
    "unknown_key",
    "unknown_key_nested",
    "wrong_type_horizon",
    "horizon_zero",
    "horizon_negative",
    "duplicate_key",
    "duplicate_option_id",
    "duplicate_branch_id",
    "undefined_name",
    "unsafe_expression",
    "unknown_option_in_fixed_policy",
    "unknown_option_in_sequence",
    "unknown_actor_in_turn_order",
    "unknown_respond_to",
    "table_row_unknown_option",
    "table_row_sum",
    "table_missing_default",
    "table_probability_out_of_range",
    "branch_probability_out_of_range",
    "branch_probabilities_sum",
    "two_remainder_branches",
    "rung_out_of_range",
    "rung_unknown_name",
    "initial_rung_out_of_range",
    "logit_missing_utility",
    "policy_kind_unknown",
    "policy_kind_human",
    "unknown_state_in_effect",
    "unknown_actor_in_payoffs",
    "parameter_out_of_range",
    "missing_required_key",
    "schema_version",
    "not_a_mapping",
    "string_in_arithmetic",
    "last_actor_unknown_option",
    "policy_number_uses_state",
    "reserved_option_id",
    "name_clash",
    "turn_order_actor_without_policy",
]


def expectations(path: Path) -> list[tuple[int, int, str]]:
    """The `# expect: LINE:COL: message` lines at the top of a test scenario."""
    found = []
    for line in path.read_text(encoding="utf-8").splitlines():
        match = EXPECT.fullmatch(line.strip())
        if not match:
            break
        found.append((int(match[1]), int(match[2]), match[3]))
    assert found, f"{path.name} must start with '# expect: LINE:COL: message'"
    return found


def problems_of(path: Path) -> list:
    with pytest.raises(ScenarioError) as info:
        load_scenario(path)
    return info.value.problems


def test_every_case_has_a_bad_file():
    names = {p.stem for p in BAD_FILES}
    assert not set(REQUIRED_CASES) - names


@pytest.mark.parametrize("path", BAD_FILES, ids=lambda p: p.stem)
def test_bad_file_reports_its_one_problem_at_line_and_column(path):
    [(line, col, text)] = expectations(path)
    problems = problems_of(path)
    first = problems[0]
    assert (first.file, first.line, first.col) == (str(path), line, col), str(first)
    assert text in first.message
    assert len(problems) == 1, "a bad file holds one problem:\n" + "\n".join(map(str, problems))


@pytest.mark.parametrize("path", BAD_FILES, ids=lambda p: p.stem)
def test_validate_prints_file_line_col_and_exits_2(path, capsys):
    [(line, col, text)] = expectations(path)
    assert main(["validate", str(path)]) == 2
    out = capsys.readouterr().out
    assert out.startswith(f"{path}:{line}:{col}: "), out
    assert text in out.splitlines()[0]


@pytest.mark.parametrize("path", MULTI_FILES, ids=lambda p: p.stem)
def test_independent_problems_are_all_reported(path, capsys):
    expected = expectations(path)
    assert len(expected) > 1
    problems = problems_of(path)
    assert [(p.line, p.col) for p in problems] == [(line, col) for line, col, _ in expected]
    for problem, (_, _, text) in zip(problems, expected, strict=True):
        assert text in problem.message
    assert main(["validate", str(path)]) == 2
    lines = capsys.readouterr().out.splitlines()
    assert [ln.split(": ", 1)[0] for ln in lines] == [f"{path}:{a}:{b}" for a, b, _ in expected]


def test_validate_reports_every_file(capsys):
    files = [
        BAD / "horizon_zero.yaml",
        CAMP_TAJI,
        BAD / "yaml_syntax.yaml",
        TEST_SCENARIOS / "multi_problem.yaml",
    ]
    assert main(["validate", *map(str, files)]) == 2
    out = capsys.readouterr().out
    assert f"{files[0]}:5:10: horizon:" in out
    assert f"{CAMP_TAJI}: ok" in out
    assert f"{files[2]}:4:11: YAML error" in out
    assert out.count(f"{files[3]}:") == 3


@pytest.mark.parametrize("path", GOOD_FILES, ids=lambda p: p.stem)
def test_good_scenarios_validate(path, capsys):
    assert main(["validate", str(path)]) == 0
    assert capsys.readouterr().out == f"{path}: ok\n"


def test_missing_file(tmp_path, capsys):
    missing = tmp_path / "no_such_scenario.yaml"
    assert main(["validate", str(missing)]) == 2
    assert capsys.readouterr().out == f"{missing}:1:1: no such file\n"
    assert [str(p) for p in problems_of(missing)] == [f"{missing}:1:1: no such file"]


def test_validate_in_a_real_process_never_shows_a_traceback():
    files = [str(p) for p in BAD_FILES]
    done = subprocess.run(
        [sys.executable, "-m", "sim", "validate", *files],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
    )
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stdout + done.stderr
    assert done.stderr == ""
    for path in BAD_FILES:
        [(line, col, _)] = expectations(path)
        assert f"{path}:{line}:{col}: " in done.stdout


def test_one_bad_file_in_a_real_process():
    path = BAD / "unsafe_expression.yaml"
    done = subprocess.run(
        [sys.executable, "-m", "sim", "validate", str(path)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
    )
    assert done.returncode == 2
    assert "Traceback" not in done.stdout + done.stderr
    assert done.stdout.startswith(f"{path}:15:18: ")


MINIMAL = """\
horizon: 5
ladder: [calm, crisis, war]
actors:
  us: {label: United States}
turn_order: [us]
policies:
  us: {kind: fixed, option: wait}
"""


def test_shorthand_parameters_and_state_load():
    text = scenario_text(
        MINIMAL
        + """\
parameters:
  casualty_aversion: 5
state:
  quiet: 0
options:
  us:
    - id: wait
      payoffs: {us: "-casualty_aversion * quiet"}
      effects: {add: {quiet: 1}}
"""
    )
    scenario = load_text(text, "shorthand.yaml")
    assert scenario.parameters["casualty_aversion"].value == 5
    assert scenario.state["quiet"].initial == 0
    assert scenario.state["quiet"].min is None and scenario.state["quiet"].max is None


def test_yaml_1_2_keeps_no_and_yes_as_strings():
    text = scenario_text(
        MINIMAL.replace("[calm, crisis, war]", "[calm, no, war]")
        + """\
options:
  us:
    - id: wait
      label: no
      rung: no
    - {id: strike, label: yes, rung: war}
"""
    )
    scenario = load_text(text, "yaml12.yaml")
    wait, strike = scenario.options["us"]
    assert (wait.label, strike.label) == ("no", "yes")
    assert scenario.ladder[1] == "no" and scenario.rung_index(wait.rung) == 1


def test_json_schema_accepts_a_valid_file_and_rejects_unknown_keys():
    jsonschema = pytest.importorskip("jsonschema", reason="the jsonschema package is not installed")
    schema = json_schema()
    jsonschema.Draft7Validator.check_schema(schema)
    validator = jsonschema.Draft7Validator(schema)
    for path in GOOD_FILES:
        data, _ = read_yaml(path.read_text(encoding="utf-8"), str(path))
        assert not list(validator.iter_errors(data)), path.name
    for name, key in [("unknown_key", "step_lable"), ("unknown_key_nested", "requirs")]:
        path = BAD / f"{name}.yaml"
        data, _ = read_yaml(path.read_text(encoding="utf-8"), str(path))
        errors = list(validator.iter_errors(data))
        assert errors and key in errors[0].message


def test_schema_command_prints_json(capsys):
    assert main(["schema"]) == 0
    schema = json.loads(capsys.readouterr().out)
    assert schema["$schema"] == "http://json-schema.org/draft-07/schema#"
    assert schema == json_schema()


def test_published_schema_is_up_to_date():
    published = ROOT / "docs" / "scenario.schema.json"
    if not published.exists():
        pytest.skip("docs/scenario.schema.json is not published")
    assert json.loads(published.read_text(encoding="utf-8")) == json_schema(), (
        "regenerate it: escalation schema > docs/scenario.schema.json"
    )


TINY = """\
horizon: 3
ladder: [low, high]
actors: {a: {label: A}}
turn_order: [a]
options: {a: [{id: go}]}
policies: {a: {kind: fixed, option: go}}
"""


def problems_in(text: str) -> list:
    with pytest.raises(ScenarioError) as err:
        load_text(scenario_text(text), "x.yaml")
    return err.value.problems


def test_every_unknown_key_at_a_level_is_reported_with_other_problems():
    found = problems_in(
        TINY + "horizn: 4\ntitel: x\nladder_x: []\n".replace("ladder_x: []\n", "") + "discount: 7\n"
    )
    messages = [p.message for p in found]
    assert any("unknown key 'horizn' (did you mean 'horizon'?)" in m for m in messages)
    assert any("unknown key 'titel' (did you mean 'title'?)" in m for m in messages)
    assert any(m.startswith("discount:") for m in messages)


def test_unknown_key_inside_a_policy_suggests_that_policys_keys():
    text = TINY.replace("{kind: fixed, option: go}", "{kind: fixed, opton: go}")
    missing, unknown = problems_in(text)
    assert "missing required key 'option'" in missing.message
    assert "unknown key 'opton' (did you mean 'option'?)" in unknown.message
    assert "allowed here: kind, option" in unknown.message


def test_policy_kind_that_is_not_a_string_is_a_clear_error():
    text = TINY.replace("{kind: fixed, option: go}", "{kind: {a: 1}, option: go}")
    (problem,) = problems_in(text)
    assert "'kind' must be one of fixed, sequence, table, logit" in problem.message


@pytest.mark.parametrize("value", [".nan", ".inf", "-.inf"])
def test_non_finite_numbers_are_rejected(value):
    found = problems_in(TINY + f"parameters: {{k: {value}}}\n")
    assert "finite" in found[0].message


def test_syntax_error_at_the_end_points_at_the_end():
    text = TINY.replace("[{id: go}]", "[{id: go, requires: 'step >'}]")
    (problem,) = problems_in(text)
    line = scenario_text(text).splitlines()[problem.line - 1]
    assert "syntax error" in problem.message
    assert line[problem.col - 1] == "'"


def test_yaml_merge_keys_load():
    text = TINY.replace("actors: {a: {label: A}}", "actors:\n  a: &A {label: A}\n  b:\n    <<: *A")
    scenario = load_text(scenario_text(text), "merge.yaml")
    assert scenario.actors["b"].label == "A"


def test_alias_bomb_is_refused_quickly():
    bomb = ["x0: &x0 [1, 1, 1, 1, 1, 1, 1, 1, 1, 1]"]
    for i in range(1, 8):
        bomb.append(f"x{i}: &x{i} [" + ", ".join([f"*x{i - 1}"] * 10) + "]")
    text = TINY + "bomb:\n" + "\n".join("  " + line for line in bomb) + "\n"
    found = problems_in(text)
    assert "expands to more than" in found[0].message


@pytest.mark.parametrize(
    "name,message",
    [("True", "Python keyword"), ("if", "Python keyword"), ("\u00b5", "would be read as")],
)
def test_names_python_would_misread_are_rejected(name, message):
    found = problems_in(TINY + f'parameters: {{"{name}": 1}}\n')
    assert message in found[0].message


def test_strategic_policy_errors_point_at_the_field():
    text = TINY.replace("{kind: fixed, option: go}", "{kind: strategic, rationality: [1]}")
    (problem,) = problems_in(text)
    assert problem.message.startswith("policies.a.rationality")

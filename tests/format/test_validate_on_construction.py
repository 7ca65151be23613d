"""A Scenario built or changed in Python is checked like a file, and runs as what it is.

Regression: a loaded scenario changed with `model_copy(update=...)` used to run as the original
file on worker processes (they were sent the file's text) under the file's sha256.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import time

import pytest
from pydantic import ValidationError

from sim.engine.runner import ModelSpec, _model_from_spec, run_monte_carlo
from sim.errors import ScenarioError, SimulationError
from sim.format import checks
from sim.format.digest import canonical_json, scenario_sha256
from sim.format.loader import read_yaml
from sim.format.scenario import FixedPolicy, Scenario
from sim.model.compiler import compile_model
from sim.model.loading import load_scenario, load_text
from tests.conftest import BRANCH_LEAVES_RANGE, CAMP_TAJI, ROOT, SCENARIOS, scenario_text

RUNS = 2 * 4096 + 1
"""Three blocks: more than one, so that two workers really share the work."""
BUNDLED = sorted(SCENARIOS.glob("*.yaml"))


def file_sha256(path) -> str:
    """The hash printed for a scenario loaded unchanged from `path` (as before this change)."""
    text = path.read_text(encoding="utf-8")
    return hashlib.sha256("\n".join(text.splitlines()).encode()).hexdigest()


def camp_taji_data() -> dict:
    data, _ = read_yaml(CAMP_TAJI.read_text(encoding="utf-8"), "x.yaml")
    return data


# --- checks on construction ---------------------------------------------------------------


def test_unknown_option_in_a_policy_built_in_python_is_a_scenario_error():
    data = camp_taji_data()
    data["policies"]["us"] = {"kind": "fixed", "option": "gox"}
    for build in (lambda: Scenario.model_validate(data), lambda: Scenario(**data)):
        with pytest.raises(ScenarioError) as err:
            build()
        assert not isinstance(err.value, ValueError)
        assert str(err.value) == "<scenario>: policies.us.option: unknown option 'gox' of us"


def test_every_problem_of_a_python_scenario_names_its_dotted_path():
    data = camp_taji_data()
    data["turn_order"] = ["us", "kh", "irn"]
    data["options"]["us"][1]["outcomes"][0]["rung"] = "nowhere"
    data["every_step"]["effects"]["add"]["quite"] = 1
    with pytest.raises(ScenarioError) as err:
        Scenario.model_validate(data)
    lines = str(err.value).splitlines()
    assert all(line.startswith("<scenario>: ") for line in lines)
    text = "\n".join(lines)
    assert "<scenario>: turn_order[2]: unknown actor 'irn' (did you mean 'iran'?)" in text
    assert "options.us[1].outcomes[0].rung: unknown rung 'nowhere'" in text
    assert "every_step.effects.add.quite: unknown state variable 'quite'" in text
    assert {p.line for p in err.value.problems} == {0}


def test_model_copy_introducing_a_bad_reference_is_a_scenario_error():
    scenario = load_scenario(CAMP_TAJI)
    policies = {**scenario.policies, "us": {"kind": "fixed", "option": "gox"}}
    with pytest.raises(ScenarioError) as err:
        scenario.model_copy(update={"policies": policies})
    assert str(err.value) == "<scenario>: policies.us.option: unknown option 'gox' of us"
    with pytest.raises(ScenarioError, match=r"^<scenario>: initial_rung: rung 9 is outside"):
        scenario.model_copy(update={"initial_rung": 9})
    with pytest.raises(ValidationError, match="horizn"):  # unknown keys are not set silently
        scenario.model_copy(update={"horizn": 4})
    with pytest.raises(ValidationError, match="horizon"):
        scenario.model_copy(update={"horizon": 0})


def test_valid_model_copy_gives_a_validated_scenario():
    scenario = load_scenario(CAMP_TAJI)
    policies = {**scenario.policies, "us": {"kind": "fixed", "option": "strike_iran"}}
    changed = scenario.model_copy(update={"horizon": 4, "policies": policies})
    assert changed.horizon == 4 and scenario.horizon == 26
    assert changed.policies["us"] == FixedPolicy(kind="fixed", option="strike_iran")
    assert changed.policies["kh"] == scenario.policies["kh"]
    assert changed._source is None  # no longer the file's content
    model = compile_model(changed)
    assert model.horizon == 4
    assert run_monte_carlo(model, 4096, 1).move_shares()["us"]["strike_iran"] > 0.5
    # field names and aliases both work; copies without update are plain copies
    assert scenario.model_copy(update={"schema_version": 1}) == scenario
    assert scenario.model_copy(update={"schema": 1}) == scenario
    assert scenario.model_copy()._source is scenario._source


def test_expression_errors_of_a_python_scenario_name_their_dotted_path():
    """Expressions are compiled (sim.model), not checked on construction: same message style."""
    data = camp_taji_data()
    data["every_step"]["payoffs"]["us"] = "-0.2 * rungg"
    scenario = Scenario.model_validate(data)
    with pytest.raises(ScenarioError) as err:
        compile_model(scenario)
    message = "<scenario>: every_step.payoffs.us: undefined name 'rungg' in payoff"
    assert str(err.value).startswith(message)


def test_a_file_runs_the_checks_once(monkeypatch):
    calls = []
    real = checks.check_references

    def counting(scenario, source):
        calls.append(source.file)
        return real(scenario, source)

    monkeypatch.setattr(checks, "check_references", counting)
    load_scenario(CAMP_TAJI)
    assert calls == [str(CAMP_TAJI)]


def test_file_errors_keep_their_positions():
    text = scenario_text("""
        horizon: 3
        ladder: [calm]
        actors: {us: {label: US}}
        turn_order: [us]
        options:
          us:
            - id: go
        policies:
          us: {kind: fixed, option: gox}
        """)
    with pytest.raises(ScenarioError) as err:
        load_text(text, "inline.yaml")
    assert str(err.value) == "inline.yaml:13:29: unknown option 'gox' of us (did you mean 'go'?)"


def test_format_checks_import_nothing_above_the_format():
    code = (
        "import sys\n"
        "from sim.format.loader import read_yaml\n"
        "from sim.format.scenario import Scenario\n"
        "from sim.format.digest import scenario_sha256\n"
        f"data, _ = read_yaml(open({str(CAMP_TAJI)!r}).read(), 'x')\n"
        "scenario_sha256(Scenario.model_validate(data))\n"
        "above = sorted(m for m in sys.modules if m.startswith('sim.')\n"
        "               and not m.startswith(('sim.format', 'sim.errors')))\n"
        "assert not above, above\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT)


def test_reserved_function_names_match_the_expression_language():
    from sim.model import expr

    assert sorted(checks.FUNCTIONS) == sorted(expr.FUNCTIONS)
    assert checks.MAX_LENGTH == expr.MAX_LENGTH


def test_validating_the_bundled_scenarios_stays_fast():
    texts = [canonical_json(load_scenario(path)) for path in BUNDLED]
    start = time.perf_counter()
    for _ in range(20):
        for text in texts:
            Scenario.model_validate_json(text)
    per_scenario = (time.perf_counter() - start) / (20 * len(texts))
    assert per_scenario < 0.02  # about 1.5 ms today


# --- the scenario hash --------------------------------------------------------------------


@pytest.mark.parametrize("path", BUNDLED, ids=lambda p: p.stem)
def test_an_unchanged_loaded_scenario_hashes_its_file_text(path):
    scenario = load_scenario(path)
    assert scenario_sha256(scenario) == file_sha256(path)
    assert compile_model(scenario).sha256 == file_sha256(path)
    # an update that changes nothing keeps the file (and its hash)
    same = scenario.model_copy(update={"horizon": scenario.horizon})
    assert same._source is scenario._source and scenario_sha256(same) == file_sha256(path)
    # the canonical JSON rebuilds exactly the same scenario
    again = Scenario.model_validate_json(canonical_json(scenario))
    assert again.model_dump() == scenario.model_dump()
    assert canonical_json(again) == canonical_json(scenario) and again._source is None
    assert scenario_sha256(again) != file_sha256(path)  # built in Python, not from the file


def test_a_changed_scenario_never_shares_the_files_hash():
    scenario = load_scenario(CAMP_TAJI)
    changed = scenario.model_copy(update={"horizon": 4})
    assert scenario_sha256(changed) != file_sha256(CAMP_TAJI)
    assert scenario_sha256(changed) == hashlib.sha256(canonical_json(changed).encode()).hexdigest()
    assert compile_model(changed).sha256 == scenario_sha256(changed)
    # built in Python from the very same data: its canonical JSON, as before
    built = Scenario.model_validate(camp_taji_data())
    assert built._source is None
    assert scenario_sha256(built) == hashlib.sha256(canonical_json(built).encode()).hexdigest()


def test_the_old_import_of_the_hash_still_works():
    from sim.model.compiled import scenario_sha256 as old

    assert old is scenario_sha256


# --- worker processes ---------------------------------------------------------------------


def test_changed_scenario_gives_the_same_results_on_one_and_two_workers():
    """The regression: one worker ran horizon 4, two workers ran the file's 26 weeks."""
    scenario = load_scenario(CAMP_TAJI)
    full = run_monte_carlo(compile_model(scenario), RUNS, seed=1).to_json()
    model = compile_model(scenario.model_copy(update={"horizon": 4}))
    one = run_monte_carlo(model, RUNS, seed=1, workers=1).to_json()
    two = run_monte_carlo(model, RUNS, seed=1, workers=2).to_json()
    assert json.dumps(one) == json.dumps(two)
    assert one["scenario_sha256"] != full["scenario_sha256"] == file_sha256(CAMP_TAJI)
    assert one["steps"]["p95"] <= 4
    ongoing, full_ongoing = one["outcomes"]["ongoing"]["p"], full["outcomes"]["ongoing"]["p"]
    assert ongoing > 0.9 and full_ongoing < 0.5  # about 0.99 and 0.31


def test_spec_carries_the_validated_scenario_not_the_file_text():
    scenario = load_scenario(CAMP_TAJI)
    model = compile_model(scenario)
    spec = ModelSpec.of(model)
    assert spec.source is not None  # unchanged: positions travel with it
    rebuilt = _model_from_spec(spec)
    assert rebuilt.scenario == scenario and rebuilt.sha256 == model.sha256
    assert rebuilt.scenario._source.file == str(CAMP_TAJI)
    assert wheres(rebuilt) == wheres(model) and wheres(model)[0].startswith(str(CAMP_TAJI))

    changed = compile_model(scenario.model_copy(update={"horizon": 4}), {"kh_autonomy": 0.7})
    spec = ModelSpec.of(changed)
    assert spec.source is None
    assert json.loads(spec.scenario_json)["horizon"] == 4
    assert "\n".join(scenario._source.lines) not in spec.scenario_json
    rebuilt = _model_from_spec(spec)
    assert rebuilt.scenario == changed.scenario and rebuilt.horizon == 4
    assert rebuilt.sha256 == changed.sha256 and rebuilt.parameters == changed.parameters


def wheres(model) -> list[str]:
    return [str(located.where) for menu in model.options for o in menu for _, located in o.payoffs]


def test_run_time_errors_on_workers_still_name_the_file_position():
    model = compile_model(load_text(BRANCH_LEAVES_RANGE, "inline.yaml"))
    with pytest.raises(SimulationError) as err:
        run_monte_carlo(model, RUNS, seed=1, workers=2)
    assert str(err.value).startswith("inline.yaml:") and "branch 'up'" in str(err.value)

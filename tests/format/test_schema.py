"""The JSON Schema: a description on every field (the text of docs/scenario-format.md), an `$id`,
and a copy in the package equal to docs/scenario.schema.json and to `escalation schema`.

Also the outcome's optional `colour` (a CSS colour name or #rrggbb), validated on load.
"""

from __future__ import annotations

import json
import re
from importlib import resources

import pytest

from sim.cli.main import main
from sim.errors import ScenarioError
from sim.format import scenario as fmt
from sim.format.scenario import SCHEMA_ID, json_schema
from sim.model.loading import load_text
from tests.conftest import ROOT, SCENARIOS

DOC = ROOT / "docs" / "scenario-format.md"

TABLES = {
    # heading of docs/scenario-format.md -> the model whose fields its (first) table describes
    "## Top-level fields": fmt.Scenario,
    "## Parameters": fmt.Parameter,
    "## State": fmt.StateVar,
    "### Counters that settle at once: `tally`": fmt.Tally,
    "## Actors and turn_order": fmt.Actor,
    "## Options": fmt.Option,
    "## Branches (an option's `outcomes`)": fmt.Branch,
    "## Effects": fmt.Effects,
    "## every_step": fmt.EveryStep,
    "## Outcomes and end": fmt.Terminal,
}
POLICY_KINDS = {
    "fixed": fmt.FixedPolicy,
    "sequence": fmt.SequencePolicy,
    "table": fmt.TablePolicy,
    "logit": fmt.LogitPolicy,
    "strategic": fmt.StrategicPolicy,
}


def all_properties(schema: dict) -> list[tuple[str, str, dict]]:
    """(definition, property, its schema) for the top level and every definition."""
    found = [("Scenario", name, p) for name, p in schema["properties"].items()]
    for definition, body in schema["definitions"].items():
        found += [(definition, name, p) for name, p in body.get("properties", {}).items()]
    return found


def first_table(heading: str) -> list[list[str]]:
    """The rows (cells) of the first markdown table after `heading`."""
    text = DOC.read_text(encoding="utf-8")
    start = text.index(f"\n{heading}\n")
    rows, seen = [], False
    for line in text[start:].splitlines()[1:]:
        if line.startswith("|"):
            seen = True
            cells = [c.strip() for c in line.strip().strip("|").split(" | ")]
            if not set(cells[0]) <= set("- ") and cells[0] not in ("field", "actor field", "kind"):
                rows.append(cells)
        elif seen:
            break
    assert rows, f"no table under {heading}"
    return rows


def plain(cell: str) -> str:
    """A docs table cell as a description: `([text](#anchor))` dropped, other links as text."""
    cell = re.sub(r" \(\[[^\]]*\]\(#[^)]*\)\)", "", cell)
    return re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", cell)


def field_names(cell: str) -> list[str]:
    return re.findall(r"`([^`]+)`", cell)


def test_every_property_has_a_description():
    properties = all_properties(json_schema())
    assert len(properties) >= 72
    missing = [f"{d}.{p}" for d, p, body in properties if not str(body.get("description", ""))]
    assert not missing, f"fields without a description: {missing}"


def test_the_schema_has_an_id():
    schema = json_schema()
    assert schema["$id"] == SCHEMA_ID == "urn:escalation-sim:scenario:1"
    assert list(schema)[:2] == ["$schema", "$id"]


@pytest.mark.parametrize("heading", TABLES, ids=lambda h: h.strip("# ").split()[0])
def test_descriptions_are_the_text_of_the_format_docs(heading):
    model = TABLES[heading]
    fields = {(f.alias or name): f for name, f in model.model_fields.items()}
    documented = set()
    for cells in first_table(heading):
        for name in field_names(cells[0]):
            documented.add(name)
            assert name in fields, f"{heading}: the docs describe an unknown field {name}"
            assert fields[name].description == plain(cells[-1]), f"{model.__name__}.{name}"
    assert set(fields) == documented, f"{heading}: undocumented {set(fields) - documented}"


def test_policy_kinds_are_described_as_in_the_docs():
    for cells in first_table("## Policies"):
        [kind] = field_names(cells[0])
        described = POLICY_KINDS[kind].model_fields["kind"].description
        assert described == f"`{kind}`: {plain(cells[-1])}", kind


def test_the_package_ships_the_schema_the_docs_publish(capsys):
    shipped = resources.files("sim") / "docs" / "scenario.schema.json"
    published = ROOT / "docs" / "scenario.schema.json"
    assert main(["schema"]) == 0
    printed = capsys.readouterr().out
    assert (
        shipped.read_text(encoding="utf-8") == published.read_text(encoding="utf-8") == printed
    ), (
        "regenerate both: escalation schema > docs/scenario.schema.json && "
        "cp docs/scenario.schema.json sim/docs/"
    )
    assert json.loads(printed) == json_schema()


def test_the_bundled_modeline_finds_the_packaged_schema():
    for path in sorted(SCENARIOS.glob("*.yaml")):
        first = path.read_text(encoding="utf-8").splitlines()[0]
        target = first.split("$schema=", 1)[1]
        assert (resources.files("sim") / "scenarios" / target).is_file(), (path.name, target)


# --- colour -------------------------------------------------------------------------------------

COLOURED = """schema: 1
id: coloured
title: Outcomes with colours
horizon: 3
ladder: [calm, war]
actors:
  us: {{label: United States}}
turn_order: [us]
options:
  us:
    - {{id: strike, rung: war}}
policies:
  us: {{kind: fixed, option: strike}}
outcomes:
  war: {{when: rung >= 1, colour: {colour}}}
  quiet: {{when: "step > 2"}}
"""


@pytest.mark.parametrize("colour", ["firebrick", "SteelBlue", "'#1f77b4'", "'#A0B0C0'", "grey"])
def test_an_outcome_may_have_a_colour(colour):
    scenario = load_text(COLOURED.format(colour=colour), "coloured.yaml")
    assert scenario.outcomes["war"].colour == colour.strip("'")
    assert scenario.outcomes["quiet"].colour is None


@pytest.mark.parametrize(
    "colour, message",
    [
        ("firebrik", "unknown colour 'firebrik' (did you mean 'firebrick'?)"),
        ("'#12345'", "colour '#12345' is not of the form #rrggbb"),
        ("'#12345g'", "colour '#12345g' is not of the form #rrggbb"),
        ("tab:blue", "unknown colour 'tab:blue'"),
        ("3", "Input should be a valid string"),
    ],
)
def test_a_bad_colour_is_located(colour, message):
    with pytest.raises(ScenarioError) as info:
        load_text(COLOURED.format(colour=colour), "coloured.yaml")
    [problem] = info.value.problems
    assert (problem.file, problem.line) == ("coloured.yaml", 15)
    assert message in problem.message


def test_the_css_colours_are_matplotlibs():
    colors = pytest.importorskip("matplotlib.colors")
    from sim.format.colours import CSS_COLOURS

    assert set(colors.CSS4_COLORS) == CSS_COLOURS

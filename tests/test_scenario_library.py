"""Every bundled scenario meets the library's standard: documented, sourced, and listed."""

from __future__ import annotations

from pathlib import Path

import pytest

from sim.format import bibliography
from sim.model.loading import load_scenario
from tests.conftest import ROOT, SCENARIOS

ARTICLES = {p.name for p in (ROOT.parent / "shared" / "articles").glob("*.txt")}
FILES = sorted(SCENARIOS.glob("*.yaml"))


@pytest.mark.skipif(not ARTICLES, reason="the shared articles are not beside this clone")
def test_every_article_has_one_bibliography_entry_aliased_by_its_file_name():
    aliases = [alias for entry in bibliography.entries() for alias in entry.aliases]
    assert sorted(aliases) == sorted(ARTICLES)


@pytest.mark.parametrize("path", FILES, ids=[p.stem for p in FILES])
def test_scenario_is_documented_and_sourced(path: Path):
    scenario = load_scenario(path)
    assert path.read_text().startswith(
        "# yaml-language-server: $schema=../docs/scenario.schema.json"
    )
    assert scenario.title.strip() and scenario.summary.strip() and scenario.teaching_notes.strip()
    assert scenario.sources, "cite the articles the scenario is grounded in"
    assert set(scenario.sources) <= set(bibliography.keys()), "cite bibliography keys, not aliases"
    for name, parameter in scenario.parameters.items():
        assert parameter.doc and parameter.min is not None and parameter.max is not None, name
    for name, variable in scenario.state.items():
        assert variable.doc, name
    for actor, menu in scenario.options.items():
        for option in menu:
            assert option.label, f"{actor}.{option.id}"


def test_every_scenario_is_listed_in_the_library_readme():
    readme = (SCENARIOS / "README.md").read_text()
    for path in FILES:
        assert f"]({path.name})" in readme, path.name

"""The report's Sources section prints each source's full citation from the bibliography."""

from __future__ import annotations

from sim.format.bibliography import lookup
from sim.model.loading import load_scenario, load_text
from sim.outputs.report_html import esc
from sim.outputs.report_scenario import sources_section
from tests.conftest import CAMP_TAJI

SOURCED = """schema: 1
id: sourced
title: Sources
sources: [vox-2024-al-asad, 004_90628b156741915b.txt, "<b>A. Writer</b>, Elsewhere, 2022"]
horizon: 2
ladder: [calm, war]
actors:
  us: {label: United States}
turn_order: [us]
options:
  us:
    - {id: strike, rung: war}
policies:
  us: {kind: fixed, option: strike}
"""


def test_keys_aliases_and_other_sources_are_cited_in_full():
    html = sources_section(load_text(SOURCED, "sourced.yaml"))
    assert html.startswith('<section id="sources"><h2>Sources</h2>')
    vox, hill = lookup("vox-2024-al-asad"), lookup("ben-taleblu-2020-trumps-patience")
    assert esc(vox.citation()) in html and esc(hill.citation()) in html
    assert "“The attack on US troops in Iraq, explained”. Vox, August 2024." in html
    assert "Behnam Ben Taleblu" in html and "The Hill, January 2020" in html
    assert "(article 001: <code>vox-2024-al-asad</code>)" in html
    assert (
        "(article 004: <code>ben-taleblu-2020-trumps-patience</code>, cited as "
        "<code>004_90628b156741915b.txt</code>)"
    ) in html
    assert "<li>&lt;b&gt;A. Writer&lt;/b&gt;, Elsewhere, 2022</li>" in html  # as written, escaped
    assert "docs/sources.md" in html


def test_the_bundled_camp_taji_report_cites_its_four_articles():
    scenario = load_scenario(CAMP_TAJI)
    html = sources_section(scenario)
    assert html.count("<li>") == len(scenario.sources) == 4
    for source in scenario.sources:
        assert source in html and esc(lookup(source).citation()) in html
    assert "Asfandyar Mir and Ramzy Mardini" in html


def test_no_sources_no_section():
    text = "".join(line for line in SOURCED.splitlines(True) if not line.startswith("sources:"))
    assert sources_section(load_text(text, "sourced.yaml")) is None

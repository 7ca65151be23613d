"""The bibliography (sim/format/bibliography.yaml): keys and aliases for `sources:`, what each
article's text says of itself, summaries in our words, brief verbatim quotations, docs/sources.md.

Where the articles themselves are at hand (shared/articles/ beside the repository, as on the
project's machines; a user's clone has no such folder) the quotations are checked against them,
and the summaries are checked not to copy them.
"""

from __future__ import annotations

import re

import pytest

from sim.errors import ScenarioError
from sim.format import bibliography
from sim.format.bibliography import KEY, cite, entries, is_free_citation, lookup
from sim.format.scenario import Scenario
from sim.model.loading import load_scenario, load_text
from tests.conftest import ROOT, SCENARIOS

ARTICLES = ROOT.parent / "shared" / "articles"
BUNDLED = {p.stem for p in SCENARIOS.glob("*.yaml")}


def words(text: str) -> list[str]:
    text = text.replace("’", "'").replace("“", '"').replace("”", '"')
    return re.findall(r"[a-z0-9']+", text.lower())


def article_text(entry) -> str:
    path = ARTICLES / entry.aliases[0]
    if not path.exists():
        pytest.skip("the articles are not beside this checkout (shared/articles/)")
    return path.read_text(encoding="utf-8")


def test_five_entries_numbered_000_to_004_with_unique_keys_and_aliases():
    found = entries()
    assert [e.number for e in found] == ["000", "001", "002", "003", "004"]
    names = [n for e in found for n in (e.key, *e.aliases)]
    assert len(names) == len(set(names))
    for e in found:
        assert KEY.match(e.key) and re.search(r"-(19|20)\d\d-", e.key), e.key
        assert e.aliases and all(a.startswith(f"{e.number}_") for a in e.aliases)


def test_every_entry_says_what_its_text_says_of_itself():
    for e in entries():
        assert e.date and e.date_basis.startswith("No date is printed"), e.key
        assert e.event and e.topic
        assert (e.outlet is None) or e.outlet in ("Vox", "The Hill"), e.key
        assert len(e.affiliations) == len(e.authors)
        citation = e.citation()
        assert e.date in citation and e.event in citation
        assert (e.outlet or "Outlet not named in the text") in citation
        for author in e.authors:
            assert author in citation


def test_summaries_are_two_paragraphs():
    for e in entries():
        paragraphs = [p for p in e.summary.split("\n\n") if p.strip()]
        assert len(paragraphs) == 2, e.key
        assert all(len(words(p)) >= 60 for p in paragraphs), e.key


def test_quotations_are_brief_and_name_bundled_scenarios():
    for e in entries():
        assert e.quotations, e.key
        for q in e.quotations:
            assert len(q.text) <= 300, q.text
            assert not re.search(r"[a-z)][.!?]\s+[A-Z]", q.text), f"more than a sentence: {q.text}"
            assert q.used_in and set(q.used_in) <= BUNDLED, q.used_in


@pytest.mark.parametrize("number", ["000", "001", "002", "003", "004"])
def test_quotations_are_verbatim(number):
    [entry] = [e for e in entries() if e.number == number]
    text = " ".join(article_text(entry).split())
    for q in entry.quotations:
        assert " ".join(q.text.split()) in text, q.text


@pytest.mark.parametrize("number", ["000", "001", "002", "003", "004"])
def test_summaries_and_notes_do_not_copy_the_article(number):
    """No run of 9 words of the article appears in what we wrote about it, quotations aside."""
    [entry] = [e for e in entries() if e.number == number]
    article = words(article_text(entry))
    runs = {tuple(article[i : i + 9]) for i in range(len(article) - 8)}
    for text in (entry.summary, entry.date_basis, entry.event, entry.topic):
        ours = words(text)
        copied = [
            " ".join(ours[i : i + 9])
            for i in range(len(ours) - 8)
            if tuple(ours[i : i + 9]) in runs
        ]
        assert not copied, copied


def test_docs_sources_md_is_made_from_the_bibliography():
    published = (ROOT / "docs" / "sources.md").read_text(encoding="utf-8")
    assert published == bibliography.markdown(), (
        "regenerate it: python -m sim.format.bibliography > docs/sources.md"
    )


@pytest.mark.parametrize("path", sorted(SCENARIOS.glob("*.yaml")), ids=lambda p: p.stem)
def test_every_bundled_source_is_in_the_bibliography(path):
    for source in load_scenario(path).sources:
        assert lookup(source) is not None, source


# --- sources: in scenarios ----------------------------------------------------------------------

SOURCED = """schema: 1
id: sourced
title: Sources
sources: {sources}
horizon: 2
ladder: [calm, war]
actors:
  us: {{label: United States}}
turn_order: [us]
options:
  us:
    - {{id: strike, rung: war}}
policies:
  us: {{kind: fixed, option: strike}}
"""


@pytest.mark.parametrize(
    "sources",
    [
        "[vox-2024-al-asad]",
        "[001_74a24966ff1a162a.txt, ben-taleblu-2020-trumps-patience]",
        "['J. Doe, \"Rockets over Erbil\", Example Times, 2023', https://example.org/article]",
        "[]",
    ],
)
def test_keys_aliases_and_written_out_citations_are_accepted(sources):
    scenario = load_text(SOURCED.format(sources=sources), "sourced.yaml")
    for source in scenario.sources:
        assert lookup(source) is not None or is_free_citation(source)


def test_an_alias_cites_as_its_key():
    assert cite("003_9208ec3c198840b0.txt") == cite("unsigned-2020-high-road-low-road")
    assert cite("A. Writer, Elsewhere, 2022") == "A. Writer, Elsewhere, 2022"


def test_an_unknown_key_is_rejected_at_file_line_col():
    text = SOURCED.format(sources="[vox-2024-al-asad, ben-taleblu-2020-trump-patience]")
    with pytest.raises(ScenarioError) as info:
        load_text(text, "sourced.yaml")
    [problem] = info.value.problems
    assert (problem.file, problem.line, problem.col) == ("sourced.yaml", 4, 29)
    assert "unknown source 'ben-taleblu-2020-trump-patience'" in problem.message
    assert "(did you mean 'ben-taleblu-2020-trumps-patience'?)" in problem.message
    assert "docs/sources.md" in problem.message


def test_an_unknown_key_is_rejected_from_python_too():
    good = load_text(SOURCED.format(sources="[vox-2024-al-asad]"), "sourced.yaml")
    with pytest.raises(ScenarioError) as info:
        good.model_copy(update={"sources": ["vox-2024-al-asad", "not-a-key.txt"]})
    assert "sources[1]: unknown source 'not-a-key.txt'" in str(info.value)
    data = good.model_dump(by_alias=True) | {"sources": ["mir-mardini-2020-camp-taji"]}
    assert Scenario.model_validate(data).sources == ["mir-mardini-2020-camp-taji"]

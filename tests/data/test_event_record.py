"""The event record (data/events.csv) against its codebook (data/README.md).

The column, actor, target, action and rung tables are read from the codebook itself, so the
test fails if the file and the codebook drift apart in either direction.
"""

from __future__ import annotations

import csv
import datetime as dt
import re

import pytest

from sim.format import bibliography
from tests.conftest import ROOT

DATA = ROOT / "data"
EVENTS = DATA / "events.csv"
CODEBOOK = DATA / "README.md"
FIRST, LAST = dt.date(2019, 5, 1), dt.date(2020, 12, 31)
SEPARATOR = " ; "


def section(title: str) -> list[str]:
    """The lines of a `## title` section of the codebook."""
    lines = CODEBOOK.read_text(encoding="utf-8").splitlines()
    start = lines.index(f"## {title}") + 1
    end = next((i for i in range(start, len(lines)) if lines[i].startswith("## ")), len(lines))
    return lines[start:end]


def table(title: str) -> list[list[str]]:
    """The body rows of the first Markdown table in a section, cells stripped of backticks."""
    rows, seen = [], False
    for line in section(title):
        if line.startswith("|"):
            seen = True
            cells = [c.strip().strip("`") for c in line.strip().strip("|").split("|")]
            rows.append(cells)
        elif seen:
            break
    assert len(rows) > 2, f"no table in section {title!r}"
    return rows[2:]  # skip the header and the --- line


def first_column(title: str) -> list[str]:
    return [row[0] for row in table(title)]


COLUMNS = first_column("Columns")
ACTORS = set(first_column("Actors and attribution"))
TARGETS = set(first_column("Targets"))
ACTIONS = set(first_column("Actions"))
RUNGS = {int(r) for r in first_column("Rungs")}
CLAIMED = {"yes", "no", "unknown"}


@pytest.fixture(scope="module")
def rows() -> list[dict[str, str]]:
    with open(EVENTS, encoding="utf-8", newline="") as f:
        reader = csv.reader(f, strict=True)
        header = next(reader)
        assert header == COLUMNS, "the header must be the codebook's columns, in order"
        body = list(reader)
    assert body, "the record has no rows"
    for i, cells in enumerate(body, start=2):
        assert len(cells) == len(COLUMNS), f"line {i}: {len(cells)} cells, not {len(COLUMNS)}"
    return [dict(zip(COLUMNS, cells, strict=True)) for cells in body]


def where(i: int, row: dict[str, str]) -> str:
    return f"line {i + 2} ({row['date']} {row['action']})"


def test_codebook_tables_are_read():
    assert COLUMNS[:4] == ["date", "actor", "target", "action"]
    assert COLUMNS[-1] == "sources" and len(COLUMNS) == 11
    assert set(range(8)) == RUNGS
    assert {"rocket_attack", "airstrike", "leadership_strike", "missile_strike"} <= ACTIONS


def test_dates_are_iso_in_range_and_sorted(rows):
    dates = []
    for i, row in enumerate(rows):
        assert re.fullmatch(r"\d{4}-\d{2}-\d{2}", row["date"]), where(i, row)
        day = dt.date.fromisoformat(row["date"])
        assert FIRST <= day <= LAST, f"{where(i, row)}: outside May 2019 - December 2020"
        dates.append(day)
    assert dates == sorted(dates), "rows are in date order"


def test_no_event_after_2020(rows):
    assert max(dt.date.fromisoformat(r["date"]) for r in rows) <= dt.date(2020, 12, 31)


def test_names_are_in_the_codebook(rows):
    for i, row in enumerate(rows):
        assert row["actor"] in ACTORS, f"{where(i, row)}: actor {row['actor']!r}"
        assert row["target"] in TARGETS, f"{where(i, row)}: target {row['target']!r}"
        assert row["action"] in ACTIONS, f"{where(i, row)}: action {row['action']!r}"
        assert row["claimed"] in CLAIMED, f"{where(i, row)}: claimed {row['claimed']!r}"


def test_every_codebook_action_is_used(rows):
    used = {r["action"] for r in rows}
    assert used <= ACTIONS
    assert ACTIONS - used == set(), f"actions defined but never used: {sorted(ACTIONS - used)}"


def test_rungs_are_integers_on_the_ladder(rows):
    for i, row in enumerate(rows):
        assert re.fullmatch(r"\d", row["rung"]), where(i, row)
        assert int(row["rung"]) in RUNGS, where(i, row)


def test_casualties_are_counts_or_unknown(rows):
    for i, row in enumerate(rows):
        for column in ("us_killed", "us_wounded"):
            value = row[column]
            assert value == "unknown" or re.fullmatch(r"0|[1-9]\d*", value), (
                f"{where(i, row)}: {column} {value!r} is not a count or 'unknown'"
            )


def test_a_death_puts_the_row_at_lethal_exchange_or_above(rows):
    for i, row in enumerate(rows):
        if row["us_killed"] not in ("0", "unknown"):
            assert int(row["rung"]) >= 3, where(i, row)


def test_descriptions_are_short_and_present(rows):
    for i, row in enumerate(rows):
        text = row["description"]
        assert text.strip() == text and text, f"{where(i, row)}: empty or padded description"
        assert len(text) <= 200, f"{where(i, row)}: description of {len(text)} characters"


def test_locations_are_short(rows):
    for i, row in enumerate(rows):
        assert 0 < len(row["location"]) <= 80, where(i, row)


def test_every_source_is_a_key_or_an_https_url(rows):
    keys = set(bibliography.keys())
    for i, row in enumerate(rows):
        sources = row["sources"].split(SEPARATOR)
        assert sources and all(sources), f"{where(i, row)}: empty source"
        assert len(set(sources)) == len(sources), f"{where(i, row)}: a source twice"
        for source in sources:
            assert source in keys or re.fullmatch(r"https://[^\s;]+", source), (
                f"{where(i, row)}: {source!r} is neither a bibliography key nor an https URL"
            )


def test_the_articles_events_are_in_the_record(rows):
    """The events the articles are about are rows, each citing its article."""

    def cited(date: str, action: str, key: str) -> bool:
        return any(
            r["date"] == date and r["action"] == action and key in r["sources"].split(SEPARATOR)
            for r in rows
        )

    assert cited("2019-12-27", "rocket_attack", "ben-taleblu-2020-trumps-patience")  # K-1
    assert cited("2019-12-29", "airstrike", "ben-taleblu-2020-trumps-patience")
    assert cited("2020-03-11", "rocket_attack", "mir-mardini-2020-camp-taji")  # Camp Taji
    assert cited("2020-03-13", "airstrike", "unsigned-2020-high-road-low-road")


def test_known_casualty_anchors(rows):
    """The figures the scenarios are anchored on."""
    by = {(r["date"], r["action"]): r for r in rows}
    assert by[("2019-12-27", "rocket_attack")]["us_killed"] == "1"
    assert by[("2020-01-08", "missile_strike")]["us_killed"] == "0"
    assert int(by[("2020-01-08", "missile_strike")]["us_wounded"]) > 100
    killed = sum(int(r["us_killed"]) for r in rows if r["us_killed"] != "unknown")
    assert killed == 3  # the K-1 contractor and the two at Camp Taji

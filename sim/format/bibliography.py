"""The bibliography the bundled scenarios cite (package data `sim/format/bibliography.yaml`).

A scenario's `sources:` entry is a bibliography key (`vox-2024-al-asad`), one of its aliases (the
article file names first cited, `001_74a24966ff1a162a.txt`), or a citation of some other source
written out in full (it contains a space) or a URL. `validate` rejects anything else, so a
misspelt key never passes silently (sim/format/checks.py).

`python -m sim.format.bibliography` prints docs/sources.md (a test keeps the two equal).
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources

KEY = re.compile(r"^[a-z0-9][a-z0-9-]*$")


@dataclass(frozen=True)
class Quotation:
    """A short passage of an article (a sentence or less, verbatim) that scenarios rely on."""

    text: str
    used_in: tuple[str, ...]
    """The bundled scenarios (file stems) whose notes, docs or claims rest on it."""


@dataclass(frozen=True)
class Entry:
    """One article: what its own text says of it, a summary in our words, its quotations."""

    key: str
    number: str
    """The article's number in the teaching notes ("article 004")."""
    aliases: tuple[str, ...]
    title: str | None
    """The headline, where the text carries one."""
    topic: str
    outlet: str | None
    authors: tuple[str, ...]
    affiliations: tuple[str, ...]
    date: str
    date_basis: str
    """How the text dates itself (none prints a date)."""
    event: str
    summary: str
    quotations: tuple[Quotation, ...]

    def citation(self) -> str:
        """The full citation, one line: authors, title, outlet, date, and the event."""
        authors = " and ".join(self.authors) if self.authors else "Unsigned"
        title = f"“{self.title}”" if self.title else f"[untitled: {self.topic}]"
        outlet = self.outlet or "Outlet not named in the text"
        return f"{authors}, {title}. {outlet}, {self.date}. Reacts to {self.event}"


def _unfold(text: str) -> str:
    return " ".join(text.split())


def is_free_citation(source: str) -> bool:
    """A source outside the bibliography, written out: a citation with spaces, or a URL."""
    return "://" in source or any(ch.isspace() for ch in source.strip())


@lru_cache(maxsize=1)
def _file_bytes() -> bytes:
    """The bytes of bibliography.yaml, read once."""
    return (resources.files("sim.format") / "bibliography.yaml").read_bytes()


@lru_cache(maxsize=1)
def entries() -> tuple[Entry, ...]:
    """Every entry, in the file's order (article 000 first)."""
    from ruamel.yaml import YAML

    data = YAML(typ="safe", pure=True).load(_file_bytes().decode("utf-8"))
    out = []
    for raw in data["entries"]:
        quotations = tuple(
            Quotation(q["text"], tuple(q.get("used_in") or ())) for q in raw["quotations"]
        )
        out.append(
            Entry(
                key=raw["key"],
                number=str(raw["number"]),
                aliases=tuple(raw.get("aliases") or ()),
                title=raw.get("title"),
                topic=raw["topic"],
                outlet=raw.get("outlet"),
                authors=tuple(raw.get("authors") or ()),
                affiliations=tuple(_unfold(a) for a in raw.get("affiliations") or ()),
                date=str(raw["date"]),
                date_basis=_unfold(raw["date_basis"]),
                event=_unfold(raw["event"]),
                summary=raw["summary"].strip(),
                quotations=quotations,
            )
        )
    return tuple(out)


@lru_cache(maxsize=1)
def _by_name() -> dict[str, Entry]:
    table: dict[str, Entry] = {}
    for entry in entries():
        for name in (entry.key, *entry.aliases):
            table[name] = entry
    return table


@lru_cache(maxsize=1)
def _name_set() -> frozenset[str]:
    """Every key and alias: what checking a scenario's `sources:` needs. From the on-disk cache
    (sim/format/cache.py) when the bibliography's bytes and this module's code are those it was
    made from, so a scenario check does not parse the whole bibliography (pure-Python YAML)."""
    from sim.format import cache

    key = cache.make_key(
        "bibliography-names",
        hashlib.sha256(_file_bytes()).hexdigest(),
        cache.source_digest("bibliography.py"),
    )
    found = cache.load("bibliography-names", key)
    if isinstance(found, list) and all(isinstance(name, str) for name in found):
        return frozenset(found)
    found = names()
    cache.store("bibliography-names", key, found)
    return frozenset(found)


def is_name(source: str) -> bool:
    """Whether a `sources:` entry names an entry of the bibliography (`lookup` is not None)."""
    return source.strip() in _name_set()


def keys() -> list[str]:
    """The bibliography keys, in order."""
    return [e.key for e in entries()]


def names() -> list[str]:
    """Every name a `sources:` entry may use for an entry: keys and aliases."""
    return list(_by_name())


def lookup(source: str) -> Entry | None:
    """The entry a key or alias names, else None."""
    return _by_name().get(source.strip())


def cite(source: str) -> str:
    """What a report prints for a `sources:` entry: its full citation, or the entry as written."""
    entry = lookup(source)
    return entry.citation() if entry is not None else source


def markdown() -> str:
    """docs/sources.md, made from the bibliography."""
    lines = [
        "# Sources: the bibliography of the bundled scenarios",
        "",
        "<!-- Generated from sim/format/bibliography.yaml by "
        "`python -m sim.format.bibliography > docs/sources.md`; edit the YAML, not this page. -->",
        "",
        "Every bundled scenario is grounded in five news and opinion pieces on the US–Iran",
        "confrontation in Iraq (2019–2024). The articles are not part of the project: they are",
        "other people's writing, so this page gives for each one what its own text says of its",
        "outlet, author, date and the event it reacts to, a summary in our words, and the short",
        "quotations the scenarios rely on (a sentence or less each). None of the texts prints a",
        "date; the dates below are read from the events they describe.",
        "",
        "A scenario's `sources:` entry names an article by its **key** (or by its old file name,",
        'an alias); the teaching notes call them by **number** ("article 004"). The same data',
        "ships with the package (`sim/format/bibliography.yaml`, read by",
        "`sim.format.bibliography`), and `escalation report` prints each source's full citation.",
        "A source outside this bibliography is written out in full (it contains a space) or as a",
        "URL; `escalation validate` rejects any other name, as a misspelt key. The bundled",
        "scenarios still cite the articles by their aliases: a bundled scenario's sha256, printed",
        "with every result, is the hash of its file, and a new `sources:` line would change it.",
        "",
        "| number | key | aliases | citation |",
        "| --- | --- | --- | --- |",
    ]
    for e in entries():
        aliases = ", ".join(f"`{a}`" for a in e.aliases)
        lines.append(f"| {e.number} | `{e.key}` | {aliases} | {e.citation()} |")
    for e in entries():
        lines += ["", f"## {e.number}: `{e.key}`", ""]
        lines.append(f"- **Title**: {e.title or f'none in the text ({e.topic})'}")
        lines.append(f"- **Outlet**: {e.outlet or 'not named in the text'}")
        if e.authors:
            lines.append(f"- **Author**: {'; '.join(e.affiliations) or ', '.join(e.authors)}")
        else:
            lines.append("- **Author**: not named in the text")
        lines.append(f"- **Date**: {e.date}. {e.date_basis}")
        lines.append(f"- **Reacts to**: {e.event}")
        lines.append(f"- **Aliases**: {', '.join(f'`{a}`' for a in e.aliases)}")
        lines += ["", "**Summary** (ours).", "", e.summary, ""]
        lines += ["**Quotations the scenarios use.**", ""]
        for q in e.quotations:
            used = ", ".join(f"`{s}`" for s in q.used_in)
            lines.append(f"- “{q.text}” ({used})")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    print(markdown(), end="")

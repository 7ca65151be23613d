"""Chart colours that follow what an outcome means, not where it sits in the scenario's list.

One palette for every chart (`run`, `exact`, `compare`, `sweep` and the HTML report): the
Okabe-Ito colours (Okabe & Ito, "Color Universal Design", 2008), which stay distinct for the
common forms of colour blindness, and a neutral grey. An outcome's colour is, in this order:

1. the scenario's own `colour` for it (`outcomes.<id>.colour`), if it gives one that matplotlib
   understands;
2. otherwise the colour of its kind (`outcome_kind`): war, expulsion or withdrawal, deterrence
   or settlement, ongoing, or other. The first outcome of a kind in a scenario gets the kind's
   first colour, so war is vermillion and "deterrence restored" bluish green in every scenario;
   a second outcome of the same kind gets the kind's second colour, and no two outcomes of one
   chart share a colour while the palette lasts.

Nothing here imports matplotlib at module level (the command line's start-up stays light).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from typing import Any

# The Okabe-Ito palette, and a neutral grey for "nothing decided yet".
VERMILLION = "#D55E00"
ORANGE = "#E69F00"
REDDISH_PURPLE = "#CC79A7"
BLUISH_GREEN = "#009E73"
SKY_BLUE = "#56B4E9"
BLUE = "#0072B2"
YELLOW = "#F0E442"
BLACK = "#000000"
GREY = "#999999"

OKABE_ITO = (ORANGE, SKY_BLUE, BLUISH_GREEN, YELLOW, BLUE, VERMILLION, REDDISH_PURPLE, BLACK)
"""The eight Okabe-Ito colours, in their published order."""

KINDS = ("war", "retreat", "deterrence", "ongoing", "other")
"""The kinds of outcome `outcome_kind` tells apart."""

KIND_COLOURS: dict[str, tuple[str, ...]] = {
    "war": (VERMILLION,),
    "retreat": (ORANGE, REDDISH_PURPLE),
    "deterrence": (BLUISH_GREEN, SKY_BLUE),
    "ongoing": (GREY, BLACK),
    "other": (BLUE, REDDISH_PURPLE, SKY_BLUE, YELLOW, BLACK),
}
"""Each kind's colours: its first outcome in a scenario gets the first, the next the second."""

KIND_NAMES = {
    "war": "war or open conflict",
    "retreat": "expulsion or withdrawal",
    "deterrence": "deterrence, containment or settlement",
    "ongoing": "ongoing at the horizon",
    "other": "other",
}

KEYWORDS: dict[str, tuple[str, ...]] = {
    "war": ("war", "wars", "collision", "collide", "spiral*", "conflict*", "escalat*"),
    "retreat": ("expel*", "expuls*", "withdr*", "retreat*", "evict*", "evacuat*"),
    "deterrence": (
        "deter*",
        "restor*",
        "settle*",
        "contain*",
        "ceasefire",
        "truce",
        "peace*",
        "deal",
        "agreement",
        "status quo",
        "off ramp",
        "quiet",
    ),
    "ongoing": ("ongoing", "continu*", "unresolved", "stalemate", "undecided"),
}
"""The words that name each kind (`*`: any ending), matched against the words of an outcome's
id and then of its label, case-insensitively. "de-escalation" counts as deterrence, not war."""

_DE_ESCALATION = re.compile(r"\bde[\s_-]?escalat", re.IGNORECASE)


def _words(text: str) -> str:
    """Lower-case words separated by single spaces (ids: `_` and `-` split words)."""
    return " ".join(re.findall(r"[a-z0-9]+", text.lower()))


def _matches(words: str, keyword: str) -> bool:
    stem = keyword.rstrip("*")
    tail = r"[a-z0-9]*" if keyword.endswith("*") else ""
    return re.search(rf"(?:^| ){re.escape(stem)}{tail}(?: |$)", words) is not None


def _kind_of_text(text: str) -> str | None:
    if _DE_ESCALATION.search(text.replace("_", " ")):
        return "deterrence"
    words = _words(text)
    for kind, keywords in KEYWORDS.items():
        if any(_matches(words, k) for k in keywords):
            return kind
    return None


def outcome_kind(outcome: str, label: str | None = None, *, is_end: bool = False) -> str:
    """What an outcome is, from the words of its id, then of its label (`KEYWORDS`, checked in
    the order war, retreat, deterrence, ongoing); an outcome that matches none is "ongoing" if
    it is the scenario's horizon outcome (`end`), else "other".

    >>> outcome_kind("war"), outcome_kind("us_expelled"), outcome_kind("deterred")
    ('war', 'retreat', 'deterrence')
    >>> outcome_kind("tit_for_tat", "Tit for tat", is_end=True), outcome_kind("us_prevails")
    ('ongoing', 'other')
    """
    for text in (outcome, label or ""):
        kind = _kind_of_text(text)
        if kind is not None:
            return kind
    return "ongoing" if is_end else "other"


def _explicit(colour: Any) -> str | None:
    """A scenario's colour as a hex string, or None if absent or not a colour."""
    if not colour:
        return None
    from matplotlib.colors import to_hex

    try:
        return to_hex(colour, keep_alpha=False).upper()
    except ValueError:
        return None


def outcome_colours(scenario: Any, outcomes: Sequence[str] | None = None) -> dict[str, str]:
    """Each outcome id (default: every outcome of the scenario) -> its colour (see the module)."""
    ids = list(outcomes if outcomes is not None else scenario.outcome_ids)
    terminals = getattr(scenario, "outcomes", {}) or {}
    colours: dict[str, str] = {}
    for oid in ids:  # the scenario's own colours win, and are never given to another outcome
        colour = _explicit(getattr(terminals.get(oid), "colour", None))
        if colour is not None:
            colours[oid] = colour
    used = set(colours.values())
    seen = dict.fromkeys(KINDS, 0)
    for oid in ids:
        if oid in colours:
            continue
        kind = outcome_kind(oid, scenario.outcome_label(oid), is_end=oid == scenario.end)
        candidates = [*KIND_COLOURS[kind][seen[kind] :], *KIND_COLOURS["other"], *OKABE_ITO, GREY]
        seen[kind] += 1
        free = [c for c in candidates if c not in used]
        colours[oid] = free[0] if free else candidates[0]
        used.add(colours[oid])
    return colours


def outcome_kinds(scenario: Any) -> dict[str, str]:
    """Each outcome id -> its kind (for docs, tests and curious users)."""
    return {
        oid: outcome_kind(oid, scenario.outcome_label(oid), is_end=oid == scenario.end)
        for oid in scenario.outcome_ids
    }


SERIES_COLOURS = (BLUE, ORANGE, BLUISH_GREEN, REDDISH_PURPLE, SKY_BLUE, VERMILLION, YELLOW, BLACK)
"""Colours for series that are not outcomes (the columns of a comparison), in order."""


def series_colours(names: Iterable[Any]) -> list[str]:
    """One colour per series, cycling through `SERIES_COLOURS`."""
    return [SERIES_COLOURS[i % len(SERIES_COLOURS)] for i, _ in enumerate(names)]

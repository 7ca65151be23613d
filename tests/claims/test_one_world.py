"""One world, several windows (issue 18, item 4): the four 2019-2020 scenarios give a number
that means the same thing in each file the same value, or this file states why it differs
(the window's date, or a different mechanism under the same name). A new shared parameter, or a
value edited in one file only, fails here until the others follow or a reason is written."""

from __future__ import annotations

import pytest

from sim.model.loading import load_scenario
from tests.conftest import SCENARIOS

WINDOWS = ["kh_december_2019", "maximum_pressure_2019", "camp_taji_2020", "direct_response_2020"]

STATED = {
    ("force_protection", "kh_december_2019"): "December 2019: C-RAM and bunkers only; the "
    "Patriot batteries the other windows count arrived in Iraq in spring 2020",
    ("war_risk", "maximum_pressure_2019"): "a different mechanism under the same name: the "
    "chance that a US strike on Iranian soil spirals, not an Iranian missile salvo",
    ("rocket_lethality", "maximum_pressure_2019"): "a different quantity: the chance that a "
    "week of rocket fire kills an American, not the dead per salvo that gets through",
    ("strike_hit", "kh_december_2019"): "December 2019: the strikes caught some 25 fighters; by "
    "2020 KH evacuated the sites it expected to be hit (article 003)",
}
"""(parameter, window) -> why that window's value differs from the others'."""


def _parameters() -> dict[str, dict[str, float]]:
    values: dict[str, dict[str, float]] = {}
    for window in WINDOWS:
        for name, p in load_scenario(SCENARIOS / f"{window}.yaml").parameters.items():
            values.setdefault(name, {})[window] = p.value
    return {name: found for name, found in values.items() if len(found) > 1}


SHARED = _parameters()


def test_the_windows_share_the_mechanisms_they_name_alike():
    """There are shared parameters at all (the test would pass vacuously otherwise)."""
    assert {"war_risk", "force_protection", "casualty_aversion", "kh_autonomy"} <= set(SHARED)


@pytest.mark.parametrize("name", sorted(SHARED))
def test_a_shared_number_has_one_value_or_a_stated_reason(name):
    values = {w: v for w, v in SHARED[name].items() if (name, w) not in STATED}
    assert len(set(values.values())) == 1, (
        f"{name} differs between windows without a stated reason: {values} "
        "(make them agree, or state why in STATED)"
    )


def test_every_stated_reason_is_still_needed():
    """A stated difference whose values have since agreed is stale: remove it."""
    for (name, window), _ in STATED.items():
        others = {v for w, v in SHARED.get(name, {}).items() if w != window}
        assert name in SHARED and SHARED[name][window] not in others, (name, window)

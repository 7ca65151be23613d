"""The record under the doctrines that played it (issue 18, item 3): `escalation check` of each
article-derived scenario's `as_it_happened` doctrines against its episode log in data/logs/ puts
the observed episode inside the model's 90% bands, or fails only where the notes say why
(docs/scenario-notes.md)."""

from __future__ import annotations

import pytest

import sim
from tests.conftest import ROOT

LOGS = ROOT / "data" / "logs"
RUNS = 4000

CASES = {
    "camp_taji_2020": ({"us": "as_it_happened"}, set()),
    # The record's path (a siege of the embassy in the first round, Soleimani in sight in the
    # second, the salvo in the third) has about a 2% chance in the model, so the salvo's timing
    # falls outside its band: docs/scenario-notes.md, kh_december_2019.
    "kh_december_2019": (
        {"us": "as_it_happened", "iran": "as_it_happened"},
        {"iran: missile_salvo"},
    ),
    # Only the US doctrine: Iran is the actor under test, and its moves are what the check
    # compares (coding them would test nothing). Inside every band since `supersession` (a rung
    # Iran has climbed past loses appeal); without it, Iran's two tanker attacks fell at
    # percentile 0.6: docs/scenario-notes.md, maximum_pressure_2019.
    "maximum_pressure_2019": ({"us": "as_it_happened"}, set()),
    # Only the US doctrine: Iran's moves are covert and empty in the log, Iraq's political class
    # has one coded week (Kadhimi's government), and KH is the actor under test.
    "direct_response_2020": ({"us": "as_it_happened"}, set()),
}


@pytest.mark.parametrize("name", list(CASES))
def test_the_record_is_typical_of_its_as_it_happened_doctrines(name):
    doctrines, stated = CASES[name]
    result = sim.check(name, LOGS / f"{name}.csv", runs=RUNS, seed=18, doctrine=doctrines)
    (episode,) = result.episodes
    outside = {s.name for s in episode.statistics if not s.inside}
    print(f"  {name}: {episode.verdict}")
    assert outside == stated


def test_the_default_doctrine_of_camp_taji_does_not_fit_the_record():
    """The control: Camp Taji's default US policy strikes in most weeks, the record in one, so
    the same check flags the US move counts; the as_it_happened doctrine is what fits."""
    result = sim.check("camp_taji_2020", LOGS / "camp_taji_2020.csv", runs=RUNS, seed=18)
    outside = {s.name for s in result.episodes[0].statistics if not s.inside}
    assert {"us: sanctions", "us: strike_proxies"} <= outside


def test_without_supersession_maximum_pressure_attacks_tankers_too_often():
    """The control for maximum_pressure's fix: with `supersession` 0 (every rung keeps its appeal
    once a higher one is used) the model's Iran keeps attacking tankers after Abqaiq, and the
    record's two tanker attacks fall below the band."""
    result = sim.check(
        "maximum_pressure_2019",
        LOGS / "maximum_pressure_2019.csv",
        runs=RUNS,
        seed=18,
        set={"supersession": 0},
        doctrine={"us": "as_it_happened"},
    )
    outside = {s.name for s in result.episodes[0].statistics if not s.inside}
    assert outside == {"iran: tanker_attacks"}

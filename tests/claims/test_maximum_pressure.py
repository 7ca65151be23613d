"""Articles 004, 000 on sim/scenarios/maximum_pressure_2019.yaml: claims with knock-out arms.

Each claim is checked with the scenario as it is and with the mechanism it names switched off:

- `asphyxiation=0`: economic pain no longer raises the utility of Iran's attacks;
- `kinetic_gain=0`: US strikes no longer raise Iran's expectation that escalation meets force
  (`kinetic_cost`), the expectation that deters each rung and opens the off-ramp;
- `war_risk=0`: a US strike on Iranian soil no longer spirals into war.

Rewritten: "holding force in reserve invites escalation" compared Iran's highest rung and the
chance that an American is killed, and survived `kinetic_gain=0` (z = 46.7 and 14.2): with strikes
that teach Tehran nothing, 42% of the kinetic-cost runs end in war after a strike spirals, and a
run that ended in war can climb no higher and kill no American. The "less escalation" was war
runs cut short. War now counts as the top of the climb: the highest rung with a war above militia
rockets, and the chance of an American killed or war.
"""

from __future__ import annotations

import numpy as np

from tests.claims.harness import MAXIMUM_PRESSURE, Arm, arm, claim, z_score

ATTACKS = ("tanker_attacks", "oil_strike", "militia_rockets")
WAR_RUNG = 4
"""A war counts one rung above militia rockets (`escalation` 3) in the highest Iranian rung."""


def _climb(a: Arm) -> np.ndarray:
    """Iran's highest rung, a war counted above militia rockets."""
    return np.where(a.outcome("war") > 0, WAR_RUNG, a.state("escalation"))


def _red_line_or_war(a: Arm) -> np.ndarray:
    """1 where the run ended with an American killed, or in war."""
    return np.maximum(a.outcome("red_line_crossed"), a.outcome("war"))


def test_maximum_pressure_asphyxiation_makes_iran_flail():
    """004_90628b156741915b.txt: "the greater the asphyxiation, the more flagrant the
    hand-waving (read ... regional and other escalation) and flailing". Mechanism: each week of new
    designations adds `sanctions_bite` to `pain`, and pain raises the utility of every Iranian
    attack, `asphyxiation` times as much. Harder sanctions (`sanctions_bite` 0.06 against 0.01):
    more Iranian attacks, and an American killed more often. Knock-out: `asphyxiation=0`."""

    def attack_rate(**o):
        light = arm(MAXIMUM_PRESSURE, sanctions_bite=0.01, **o)
        heavy = arm(MAXIMUM_PRESSURE, sanctions_bite=0.06, **o)
        return z_score(heavy.share("iran", *ATTACKS), light.share("iran", *ATTACKS))

    def red_line(**o):
        light = arm(MAXIMUM_PRESSURE, sanctions_bite=0.01, **o)
        heavy = arm(MAXIMUM_PRESSURE, sanctions_bite=0.06, **o)
        return z_score(heavy.outcome("red_line_crossed"), light.outcome("red_line_crossed"))

    claim(
        "Iranian attack rate: heavy sanctions > light sanctions",
        attack_rate,
        MAXIMUM_PRESSURE,
        "asphyxiation",
    )
    claim(
        "P(American killed): heavy sanctions > light sanctions",
        red_line,
        MAXIMUM_PRESSURE,
        "asphyxiation",
    )


def _doctrines(**overrides):
    return arm(MAXIMUM_PRESSURE, "us=alt:maximum_pressure", **overrides), arm(
        MAXIMUM_PRESSURE, "us=alt:kinetic_cost", **overrides
    )


def test_maximum_pressure_without_kinetic_cost_no_off_ramp():
    """004_90628b156741915b.txt: with no "kinetic retribution against a regime asset or interest
    ... outside of Iranian territory ... at no point did Tehran look for an off-ramp". Mechanism:
    each strike on an Iranian asset abroad raises `kinetic_cost` by `kinetic_gain`, and
    `kinetic_cost` makes seeking talks attractive. Iran takes the off-ramp far more often when its
    attacks meet such strikes. Knock-out: `kinetic_gain=0`."""

    def off_ramp(**o):
        sanctions, kinetic = _doctrines(**o)
        return z_score(kinetic.outcome("off_ramp"), sanctions.outcome("off_ramp"))

    claim("P(off-ramp): kinetic cost > sanctions only", off_ramp, MAXIMUM_PRESSURE, "kinetic_gain")


def test_maximum_pressure_holding_force_in_reserve_invites_escalation():
    """004_90628b156741915b.txt: "By keeping hard power in reserve until the loss of an American
    life", Washington signalled that everything short of it was "a tier-two policy priority";
    Tehran climbed from tankers to Abqaiq to militia rockets. Mechanism: `kinetic_cost` (raised by
    `kinetic_gain` per strike) lowers the utility of each rung, the higher rungs most. Sanctions
    only, Iran climbs higher (a war counted as the top) and an American is killed, or war comes,
    more often than when each attack carries a kinetic cost. Knock-out: `kinetic_gain=0`."""

    def climb(**o):
        sanctions, kinetic = _doctrines(**o)
        return z_score(_climb(sanctions), _climb(kinetic))

    def red_line(**o):
        sanctions, kinetic = _doctrines(**o)
        return z_score(_red_line_or_war(sanctions), _red_line_or_war(kinetic))

    claim(
        "highest Iranian rung, war on top: sanctions only > kinetic cost",
        climb,
        MAXIMUM_PRESSURE,
        "kinetic_gain",
    )
    claim(
        "P(American killed or war): sanctions only > kinetic cost",
        red_line,
        MAXIMUM_PRESSURE,
        "kinetic_gain",
    )


def test_maximum_pressure_strikes_on_iranian_soil_risk_war():
    """000_901de9d5be86587a.txt: airstrikes on Iranian soil "may well bring Iranian retaliation
    and push the situation toward war". Mechanism: each strike on Iranian soil spirals into war
    with chance `war_risk`. Strikes on Iran carry a higher probability of war than sanctions only.
    Knock-out: `war_risk=0`."""

    def war(**o):
        sanctions = arm(MAXIMUM_PRESSURE, "us=alt:maximum_pressure", **o)
        strikes = arm(MAXIMUM_PRESSURE, "us=alt:strike_iran", **o)
        return z_score(strikes.outcome("war"), sanctions.outcome("war"))

    claim("P(war): strikes on Iran > sanctions only", war, MAXIMUM_PRESSURE, "war_risk")

"""Articles 004, 000 on sim/scenarios/maximum_pressure_2019.yaml: claims with knock-out arms."""

from __future__ import annotations

from tests.claims.harness import MAXIMUM_PRESSURE, arm, beyond_doubt, z_score


def test_maximum_pressure_asphyxiation_makes_iran_flail():
    """004_90628b156741915b.txt: sanctions are "akin to asphyxiation ... the greater the
    asphyxiation, the more flagrant the hand-waving (read ... regional and other escalation) and
    flailing is to be expected". Harder sanctions, more Iranian attacks and more often an American
    killed."""
    light = arm(MAXIMUM_PRESSURE, sanctions_bite=0.01)
    heavy = arm(MAXIMUM_PRESSURE, sanctions_bite=0.06)
    attacks = ("tanker_attacks", "oil_strike", "militia_rockets")
    beyond_doubt(
        z_score(heavy.share("iran", *attacks), light.share("iran", *attacks)),
        "Iranian attack rate: heavy sanctions > light sanctions",
    )
    beyond_doubt(
        z_score(heavy.outcome("red_line_crossed"), light.outcome("red_line_crossed")),
        "P(American killed): heavy sanctions > light sanctions",
    )


def test_maximum_pressure_without_kinetic_cost_no_off_ramp():
    """004_90628b156741915b.txt: with no "kinetic retribution against a regime asset or interest
    ... outside of Iranian territory ... at no point did Tehran look for an off-ramp". Iran seeks
    talks far more often when its attacks meet strikes on its assets abroad."""
    sanctions = arm(MAXIMUM_PRESSURE, "us=alt:maximum_pressure")
    kinetic = arm(MAXIMUM_PRESSURE, "us=alt:kinetic_cost")
    beyond_doubt(
        z_score(kinetic.outcome("off_ramp"), sanctions.outcome("off_ramp")),
        "P(off-ramp): kinetic cost > sanctions only",
    )


def test_maximum_pressure_holding_force_in_reserve_invites_escalation():
    """004_90628b156741915b.txt: "By keeping hard power in reserve until the loss of an American
    life", Washington signalled that everything short of it was tier two; Tehran climbed from
    tankers to Abqaiq to militia rockets. Sanctions only, Iran climbs higher and kills an American
    more often than when each attack carries a kinetic cost."""
    sanctions = arm(MAXIMUM_PRESSURE, "us=alt:maximum_pressure")
    kinetic = arm(MAXIMUM_PRESSURE, "us=alt:kinetic_cost")
    beyond_doubt(
        z_score(sanctions.state("escalation"), kinetic.state("escalation")),
        "highest Iranian rung: sanctions only > kinetic cost",
    )
    beyond_doubt(
        z_score(sanctions.outcome("red_line_crossed"), kinetic.outcome("red_line_crossed")),
        "P(American killed): sanctions only > kinetic cost",
    )


def test_maximum_pressure_strikes_on_iranian_soil_risk_war():
    """000_901de9d5be86587a.txt: airstrikes on Iranian soil "may well bring Iranian retaliation
    and push the situation toward war". Strikes on Iran carry a higher probability of war than
    sanctions only."""
    sanctions = arm(MAXIMUM_PRESSURE, "us=alt:maximum_pressure")
    strikes = arm(MAXIMUM_PRESSURE, "us=alt:strike_iran")
    beyond_doubt(
        z_score(strikes.outcome("war"), sanctions.outcome("war")),
        "P(war): strikes on Iran > sanctions only",
    )

"""Articles 002, 000 on sim/scenarios/direct_response_2020.yaml: claims with knock-out arms."""

from __future__ import annotations

from tests.claims.harness import DIRECT_RESPONSE, arm, beyond_doubt, z_score


def test_direct_response_restrains_the_guard_and_the_militia():
    """002_6879370bef8a4866.txt: "If we want to significantly reduce Iranian attacks on U.S.
    interests in Iraq, we will need to respond directly to Iran": a strike on an IRGC base "would
    likely lead Ayatollah Ali Khamenei to restrain the Guard". Direct strikes lower KH's attack
    rate more than strikes on KH inside Iraq."""
    direct = arm(DIRECT_RESPONSE, "us=alt:direct")
    in_iraq = arm(DIRECT_RESPONSE, "us=alt:in_iraq")
    beyond_doubt(
        z_score(direct.share("iran", "restrain_guard"), in_iraq.share("iran", "restrain_guard")),
        "Iran restrains the Guard: direct > in Iraq",
    )
    beyond_doubt(
        z_score(in_iraq.share("kh", "rocket_attack"), direct.share("kh", "rocket_attack")),
        "KH attack rate: in Iraq > direct",
    )


def test_direct_response_strikes_in_iraq_risk_expulsion():
    """002_6879370bef8a4866.txt: responding directly "mitigates new damage to our interests in
    Iraq", while acting precipitously in Iraq jeopardizes the relationship. Strikes inside Iraq
    end in Iraq expelling US forces more often than strikes on Iran."""
    direct = arm(DIRECT_RESPONSE, "us=alt:direct")
    in_iraq = arm(DIRECT_RESPONSE, "us=alt:in_iraq")
    beyond_doubt(
        z_score(in_iraq.outcome("us_expelled"), direct.outcome("us_expelled")),
        "P(expelled): in Iraq > direct",
    )


def test_direct_response_strikes_in_iraq_push_sadr_toward_iran():
    """002_6879370bef8a4866.txt: "Where America is seen to be trampling on Iraqi sovereignty, we
    foster a political realignment in favor of Iran", as Sadr "has now returned to the Iranian
    fold". Strikes in Iraq leave Sadr closer to Iran than strikes on Iran do."""
    direct = arm(DIRECT_RESPONSE, "us=alt:direct")
    in_iraq = arm(DIRECT_RESPONSE, "us=alt:in_iraq")
    beyond_doubt(
        z_score(in_iraq.state("sadr_alignment"), direct.state("sadr_alignment")),
        "Sadr's alignment with Iran at the end: in Iraq > direct",
    )
    beyond_doubt(
        z_score(
            in_iraq.share("iraq", "nationalist_turn"), direct.share("iraq", "nationalist_turn")
        ),
        "nationalist turns per week: in Iraq > direct",
    )


def test_direct_response_risks_war():
    """000_901de9d5be86587a.txt (the other side of article 002's argument): strikes on Iranian
    soil "may well bring Iranian retaliation and push the situation toward war". The direct
    response carries a higher probability of war than strikes inside Iraq."""
    direct = arm(DIRECT_RESPONSE, "us=alt:direct")
    in_iraq = arm(DIRECT_RESPONSE, "us=alt:in_iraq")
    beyond_doubt(z_score(direct.outcome("war"), in_iraq.outcome("war")), "P(war): direct > in Iraq")

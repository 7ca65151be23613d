"""Articles 004, 003 on sim/scenarios/kh_december_2019.yaml: claims with knock-out arms."""

from __future__ import annotations

from tests.claims.harness import KH_DECEMBER, arm, beyond_doubt, z_score


def test_kh_december_sustained_response_deters_more_than_a_one_off():
    """004_90628b156741915b.txt: for strikes to "create a deterrence dividend", Iran and its
    proxies must "read a U.S. show of force as a signal of resolve, rather than a one-off, which
    would in fact signal weakness". A sustained response lowers the attack rate more than a
    one-off strike."""
    one_off = arm(KH_DECEMBER, "us=alt:one_off")
    sustained = arm(KH_DECEMBER, "us=alt:sustained")
    beyond_doubt(
        z_score(one_off.share("kh", "rocket_attack"), sustained.share("kh", "rocket_attack")),
        "attack rate: one-off > sustained",
    )


def test_kh_december_absorbing_leaves_tehran_no_off_ramp():
    """004_90628b156741915b.txt: "At no point was there any kinetic retribution ... And because
    of that, at no point did Tehran look for an off-ramp." Absorbing every attack restores
    deterrence far less often than a sustained response."""
    absorb = arm(KH_DECEMBER, "us=alt:absorb_only")
    sustained = arm(KH_DECEMBER, "us=alt:sustained")
    beyond_doubt(
        z_score(sustained.outcome("deterrence_restored"), absorb.outcome("deterrence_restored")),
        "P(deterrence restored): sustained > absorb only",
    )


def test_kh_december_strikes_in_iraq_bring_embassy_protests():
    """004_90628b156741915b.txt: after the US strikes on KH, "the attacks and embassy protests
    can be read as a response by Iran-backed groups against Washington's brandishing of hard
    power". Striking KH in Iraq makes a siege of the embassy more likely than absorbing."""
    absorb = arm(KH_DECEMBER, "us=alt:absorb_only")
    sustained = arm(KH_DECEMBER, "us=alt:sustained")
    beyond_doubt(
        z_score(sustained.state("embassy_sieges") > 0, absorb.state("embassy_sieges") > 0),
        "P(embassy besieged): strikes on KH > absorb only",
    )


def test_kh_december_killing_soleimani_brings_irans_missile_salvo():
    """003_9208ec3c198840b0.txt and 000_901de9d5be86587a.txt: Iran's "reprisal in early January
    after the U.S. killed Qassem Soleimani" was a ballistic missile attack on US positions. Killing
    Soleimani draws Iran's own missiles far more often than strikes on KH alone."""
    decapitation = arm(KH_DECEMBER, "us=alt:decapitation")
    sustained = arm(KH_DECEMBER, "us=alt:sustained")
    beyond_doubt(
        z_score(
            decapitation.moves("iran", "missile_salvo") > 0,
            sustained.moves("iran", "missile_salvo") > 0,
        ),
        "P(Iranian missile salvo): leadership strike > strikes on KH only",
    )

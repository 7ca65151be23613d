"""Articles 004, 003 on sim/scenarios/kh_december_2019.yaml: claims with knock-out arms.

The two credibility claims are tested with attrition held off in every arm (`strike_hit` 0: US
strikes hit only empty sites). Without that control, issue 18's audit found "a sustained response
beats a one-off" survived removing credibility, carried by the fighters sustained strikes kill;
here the effect must come from the credibility KH learns from what the US does
(`credibility_learning`: each answer moves its belief toward what the answer showed, each absorbed
attack toward "attacks cost nothing").
"""

from __future__ import annotations

from tests.claims.harness import KH_DECEMBER, arm, claim, z_score

NO_ATTRITION = {"strike_hit": 0.0}


def test_kh_december_sustained_response_deters_more_than_a_one_off():
    """004_90628b156741915b.txt: for a "deterrence dividend", Iran and its proxies must "read a
    U.S. show of force as a signal of resolve, rather than a one-off". Mechanism: each answered
    attack moves the credibility KH learns up, each absorbed attack moves it down
    (`credibility_learning`), so a one-off is soon unlearnt.
    A sustained response lowers the attack rate more than a one-off, attrition held off."""

    def attack_rate(**o):
        one_off = arm(KH_DECEMBER, "us=alt:one_off", **NO_ATTRITION, **o)
        sustained = arm(KH_DECEMBER, "us=alt:sustained", **NO_ATTRITION, **o)
        return z_score(one_off.share("kh", "rocket_attack"), sustained.share("kh", "rocket_attack"))

    claim("attack rate: one-off > sustained", attack_rate, KH_DECEMBER, "credibility_learning")


def test_kh_december_absorbing_leaves_tehran_no_off_ramp():
    """004_90628b156741915b.txt: "At no point was there any kinetic retribution ... And because
    of that, at no point did Tehran look for an off-ramp." Mechanism: the credibility KH and Iran
    learn from answered attacks (`credibility_learning`), which turns Iran to restraining its
    proxies. Absorbing every
    attack restores deterrence far less often than a sustained response, attrition held off."""

    def deterrence(**o):
        sustained = arm(KH_DECEMBER, "us=alt:sustained", **NO_ATTRITION, **o)
        absorb = arm(KH_DECEMBER, "us=alt:absorb_only", **NO_ATTRITION, **o)
        return z_score(
            sustained.outcome("deterrence_restored"), absorb.outcome("deterrence_restored")
        )

    claim(
        "P(deterrence restored): sustained > absorb",
        deterrence,
        KH_DECEMBER,
        "credibility_learning",
    )


def test_kh_december_strikes_in_iraq_bring_embassy_protests():
    """004_90628b156741915b.txt: "the attacks and embassy protests can be read as a response by
    Iran-backed groups against Washington's brandishing of hard power". Mechanism: the grievance
    US strikes on Iraqi soil leave behind (`strike_grievance`). Striking KH in Iraq makes a siege
    of the embassy more likely than absorbing."""

    def sieges(**o):
        sustained = arm(KH_DECEMBER, "us=alt:sustained", **o)
        absorb = arm(KH_DECEMBER, "us=alt:absorb_only", **o)
        return z_score(sustained.state("embassy_sieges") > 0, absorb.state("embassy_sieges") > 0)

    claim("P(embassy besieged): strikes on KH > absorb", sieges, KH_DECEMBER, "strike_grievance")


def test_kh_december_killing_soleimani_brings_irans_missile_salvo():
    """003_9208ec3c198840b0.txt and 000_901de9d5be86587a.txt: Iran's "reprisal in early January
    after the U.S. killed Qassem Soleimani" was a ballistic missile attack. Mechanism: the windows'
    Iran answers the blow it owes (`revenge_ready`: 10 for Soleimani and al-Muhandis, ready a
    round later) at `iran_resolve` per unit, less the war it fears (`war_fear` x `war_risk`).
    Killing Soleimani draws Iran's missiles far more often than strikes on KH alone, which deal
    Iran no blow."""

    def salvo(**o):
        decapitation = arm(KH_DECEMBER, "us=alt:decapitation", **o)
        sustained = arm(KH_DECEMBER, "us=alt:sustained", **o)
        return z_score(
            decapitation.moves("iran", "missile_salvo") > 0,
            sustained.moves("iran", "missile_salvo") > 0,
        )

    claim(
        "P(Iranian missile salvo): leadership strike > strikes on KH",
        salvo,
        KH_DECEMBER,
        "iran_resolve",
    )

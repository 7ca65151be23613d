"""Articles 000, 003 on sim/scenarios/camp_taji_2020.yaml: claims with knock-out arms."""

from __future__ import annotations

from tests.claims.harness import CAMP_TAJI, arm, beyond_doubt, z_score


def test_camp_taji_strikes_on_iranian_soil_risk_war_more_than_sanctions():
    """000_901de9d5be86587a.txt: of the four US options, airstrikes on Iranian soil "may well
    bring Iranian retaliation and push the situation toward war", unlike sanctions only."""
    iran = arm(CAMP_TAJI, "us=respond:strike_iran")
    sanctions = arm(CAMP_TAJI, "us=fixed:sanctions")
    beyond_doubt(
        z_score(iran.outcome("war"), sanctions.outcome("war")),
        "P(war): strikes on Iran after each attack > sanctions only",
    )
    beyond_doubt(
        z_score(iran.moves("iran", "missile_salvo"), sanctions.moves("iran", "missile_salvo")),
        "Iranian missile salvos: strikes on Iran > sanctions only",
    )


def test_camp_taji_border_strikes_hurt_kh_while_minimising_escalation():
    """000_901de9d5be86587a.txt: airstrikes on proxies in peripheral regions such as the
    Iraq-Syria border "may hurt Iran but minimize the risk of escalation": they cost the militia
    more than sanctions do, and risk war far less than strikes on Iranian soil."""
    border = arm(CAMP_TAJI, "us=respond:strike_proxies")
    sanctions = arm(CAMP_TAJI, "us=fixed:sanctions")
    iran = arm(CAMP_TAJI, "us=respond:strike_iran")
    beyond_doubt(
        z_score(sanctions.payoff("kh"), border.payoff("kh")),
        "KH's payoff: sanctions only > border strikes",
    )
    beyond_doubt(
        z_score(iran.outcome("war"), border.outcome("war")),
        "P(war): strikes on Iran > border strikes",
    )


def test_camp_taji_force_protection_lowers_us_deaths():
    """000_901de9d5be86587a.txt and 003_9208ec3c198840b0.txt: Patriot and anti-rocket defences
    would make US personnel "less vulnerable"; bring them in. More force protection, fewer
    Americans killed."""
    exposed = arm(CAMP_TAJI, force_protection=0.0)
    protected = arm(CAMP_TAJI, force_protection=0.8)
    beyond_doubt(
        z_score(exposed.state("us_killed"), protected.state("us_killed")),
        "Americans killed: no force protection > 80% interception",
    )


def test_camp_taji_strikes_on_evacuated_sites_do_not_lower_the_attack_rate():
    """003_9208ec3c198840b0.txt: the high road's strikes hit sites KH "had evacuated ... long
    before"; the militias "can trade empty buildings ... for three Anglo-American fatalities all
    day, every day. This a game we will lose." Strikes on evacuated sites leave the attack rate
    where no military response leaves it; the same strikes on occupied sites would lower it."""
    attacks = ("kh", "harass", "mass_salvo")
    sanctions = arm(CAMP_TAJI, "us=fixed:sanctions").share(*attacks)
    empty = arm(CAMP_TAJI, "us=alt:high_road", evacuation=1.0).share(*attacks)
    occupied = arm(CAMP_TAJI, "us=alt:high_road", evacuation=0.0).share(*attacks)
    reduction = sanctions.mean() - empty.mean()
    print(
        f"  attack rate: sanctions {sanctions.mean():.3f}, high road on empty sites "
        f"{empty.mean():.3f}, on occupied sites {occupied.mean():.3f}"
    )
    assert reduction < 0.03, f"strikes on empty sites cut the weekly attack rate by {reduction:.3f}"
    assert reduction < 0.1 * (sanctions.mean() - occupied.mean())
    beyond_doubt(z_score(empty, occupied), "attack rate: strikes on empty > on occupied sites")


def test_camp_taji_delinked_leadership_strikes_beat_prompt_ones():
    """003_9208ec3c198840b0.txt: leadership targets "are generally not available to hit the day
    after Americans are killed: they are keeping their heads down", so the US should "delink the
    timing of deterrent strikes, so that we can strike the right targets when they become
    available". Delinked, more leaders are hit, attacks fall and deterrence holds more often."""
    delinked = arm(CAMP_TAJI, "us=alt:delinked")
    prompt = arm(CAMP_TAJI, "us=alt:prompt_leadership")
    beyond_doubt(
        z_score(delinked.moves("us", "leadership_strike"), prompt.moves("us", "leadership_strike")),
        "leadership strikes per run: delinked > prompt",
    )
    beyond_doubt(
        z_score(
            prompt.share("kh", "harass", "mass_salvo"), delinked.share("kh", "harass", "mass_salvo")
        ),
        "attack rate: prompt > delinked",
    )
    beyond_doubt(
        z_score(delinked.outcome("deterrence_restored"), prompt.outcome("deterrence_restored")),
        "P(deterrence restored): delinked > prompt",
    )


def test_camp_taji_low_road_risks_an_anti_american_backlash():
    """003_9208ec3c198840b0.txt: the low road, "a rolling campaign of elimination", risks that
    it "galvanizes anti-Americanism"; the high road limits retaliation to strikes "largely outside
    Iraq to reduce the risk of Iraqi nationalist responses". The low road ends in expulsion from
    Iraq more often than the high road."""
    low = arm(CAMP_TAJI, "us=alt:low_road")
    high = arm(CAMP_TAJI, "us=alt:high_road")
    beyond_doubt(
        z_score(low.outcome("us_expelled"), high.outcome("us_expelled")),
        "P(expelled): low road > high road",
    )


def test_camp_taji_low_road_cuts_the_militia_down():
    """003_9208ec3c198840b0.txt: killing "a lot more of them in a rolling campaign of
    elimination ... might result in a dramatic and long-lasting reduction of Iran's influence in
    Iraq". The low road leaves KH weaker and attacking less than the high road."""
    low = arm(CAMP_TAJI, "us=alt:low_road")
    high = arm(CAMP_TAJI, "us=alt:high_road")
    beyond_doubt(
        z_score(high.state("kh_capability"), low.state("kh_capability")),
        "KH capability at the end: high road > low road",
    )
    beyond_doubt(
        z_score(high.share("kh", "harass", "mass_salvo"), low.share("kh", "harass", "mass_salvo")),
        "attack rate: high road > low road",
    )

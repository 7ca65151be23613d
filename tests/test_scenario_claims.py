"""The article-derived scenarios say what the articles argue.

Each test is one directional claim of a source article (cited by file name in the docstring,
with a paraphrase), checked on the scenario that models it: two arms (policies or parameter
values) are simulated with a fixed seed, and the difference must lie beyond Z_MIN standard
errors. A claim that a difference is absent is checked against a stated margin instead. If a
test fails after a change to a scenario, fix the scenario, not the test.

Run `pytest tests/test_scenario_claims.py -s` to see every z-score.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cache

import numpy as np

from sim.engine.batch import RunRecords, simulate_batch
from sim.engine.streams import block_count
from sim.format.scenario import FixedPolicy, LogitPolicy
from sim.model.compiled import Model
from sim.model.loading import load_scenario
from sim.solvers.prepare import prepare_model
from tests.conftest import SCENARIOS

SEED = 2020
RUNS = 20_000
Z_MIN = 4.0

CAMP_TAJI = "camp_taji_2020.yaml"
KH_DECEMBER = "kh_december_2019.yaml"
MAXIMUM_PRESSURE = "maximum_pressure_2019.yaml"
DIRECT_RESPONSE = "direct_response_2020.yaml"
AL_ASAD = "al_asad_2024.yaml"


@dataclass(frozen=True)
class Arm:
    """Per-run records of one simulated arm."""

    model: Model
    rec: RunRecords

    @property
    def runs(self) -> int:
        return int(self.rec.outcome.size)

    def outcome(self, name: str) -> np.ndarray:
        """1 where the run ended in outcome `name`, else 0."""
        return (self.rec.outcome == self.model.outcome_ids.index(name)).astype(float)

    def state(self, name: str) -> np.ndarray:
        """The final value of a state variable in each run."""
        return self.rec.state[self.model.state_names.index(name)]

    def payoff(self, actor: str) -> np.ndarray:
        """The total payoff of `actor` in each run."""
        return self.rec.payoffs[self.model.actor_index(actor)]

    def moves(self, actor: str, *options: str) -> np.ndarray:
        """How many times `actor` played any of `options` in each run."""
        a = self.model.actor_index(actor)
        ids = [o.id for o in self.model.options[a]]
        return sum(self.rec.moves[a, ids.index(o) + 1].astype(float) for o in options)

    def share(self, actor: str, *options: str) -> np.ndarray:
        """The share of `actor`'s moves in each run that were any of `options` (a rate per step)."""
        total = self.rec.moves[self.model.actor_index(actor)].sum(axis=0)
        return self.moves(actor, *options) / np.maximum(total, 1)


def _policy(scenario, spec: str):
    """'actor=alt:NAME', 'actor=fixed:OPTION' or 'actor=respond:OPTION' as {actor: policy}.

    `respond:OPTION` plays OPTION in the step after US forces were attacked (state `attacked`)
    and the actor's first menu option otherwise.
    """
    actor, _, rest = spec.partition("=")
    kind, _, name = rest.partition(":")
    if kind == "alt":
        return {actor: scenario.alternatives[actor][name]}
    if kind == "fixed":
        return {actor: FixedPolicy(kind="fixed", option=name)}
    assert kind == "respond", spec
    menu = [o.id for o in scenario.options[actor]]
    utilities = {o: -5 for o in menu}
    utilities[menu[0]] = 0
    utilities[name] = "where(attacked > 0, 1, -1)"
    return {actor: LogitPolicy(kind="logit", rationality=20, utilities=utilities)}


@cache
def _arm(file: str, policy: str | None, overrides: tuple, runs: int) -> Arm:
    scenario = load_scenario(SCENARIOS / file)
    policies = _policy(scenario, policy) if policy else None
    model = prepare_model(scenario, dict(overrides), policies)
    return Arm(model, simulate_batch(model, SEED, 0, block_count(runs), runs).records)


def arm(file: str, policy: str | None = None, runs: int = RUNS, **overrides: float) -> Arm:
    """One arm: the scenario with a policy override and parameter values, simulated once."""
    return _arm(file, policy, tuple(sorted(overrides.items())), runs)


def z_score(x: np.ndarray, y: np.ndarray) -> float:
    """Two-sample z statistic of mean(x) - mean(y) (per-run values, independent arms)."""
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    se = math.sqrt(x.var(ddof=1) / x.size + y.var(ddof=1) / y.size)
    diff = float(x.mean() - y.mean())
    if se == 0:
        return math.copysign(math.inf, diff) if diff else 0.0
    return diff / se


def ratio_z(num_x, den_x, num_y, den_y) -> float:
    """z statistic of sum(num_x)/sum(den_x) - sum(num_y)/sum(den_y) (delta method)."""

    def ratio_and_var(num, den):
        r = num.sum() / den.sum()
        resid = num - r * den
        return r, resid.var(ddof=1) / (num.size * den.mean() ** 2)

    rx, vx = ratio_and_var(num_x, den_x)
    ry, vy = ratio_and_var(num_y, den_y)
    return float((rx - ry) / math.sqrt(vx + vy))


def beyond_doubt(z: float, what: str) -> None:
    print(f"  z = {z:7.1f}  {what}")
    assert z > Z_MIN, f"{what}: z = {z:.2f}, not beyond {Z_MIN} standard errors"


# --- camp_taji_2020.yaml (articles 000, 003) ------------------------------------------------


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


# --- kh_december_2019.yaml (articles 004, 003) ----------------------------------------------


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


# --- maximum_pressure_2019.yaml (articles 004, 000) -----------------------------------------


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


# --- direct_response_2020.yaml (articles 002, 000) ------------------------------------------


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


# --- al_asad_2024.yaml (article 001) --------------------------------------------------------


def test_al_asad_too_strong_a_response_draws_in_israel_and_the_us():
    """001_74a24966ff1a162a.txt: "Too strong a response could provoke further violence from
    Israel, and potentially the US, putting the world in danger of an even larger war." A massive
    barrage brings Israeli counterstrikes and regional war more often than a calibrated one."""
    calibrated = arm(AL_ASAD, "iran=alt:calibrated")
    massive = arm(AL_ASAD, "iran=alt:massive")
    beyond_doubt(
        z_score(
            massive.moves("israel", "major_counterstrike"),
            calibrated.moves("israel", "major_counterstrike"),
        ),
        "major Israeli counterstrikes: massive > calibrated",
    )
    beyond_doubt(
        z_score(massive.outcome("war"), calibrated.outcome("war")), "P(war): massive > calibrated"
    )


def test_al_asad_too_weak_a_response_looks_impotent():
    """001_74a24966ff1a162a.txt: Iran must not respond in a way that proves "completely impotent
    and reveal[s] them as weak"; "without inflicting pain, there is no gain deterrence-wise". A
    symbolic strike leaves Iran's standing lower and Israel striking more than a calibrated one."""
    calibrated = arm(AL_ASAD, "iran=alt:calibrated")
    symbolic = arm(AL_ASAD, "iran=alt:symbolic")
    beyond_doubt(
        z_score(calibrated.state("iran_standing"), symbolic.state("iran_standing")),
        "Iran's standing: calibrated > symbolic",
    )
    beyond_doubt(
        z_score(
            symbolic.share("israel", "targeted_strikes"),
            calibrated.share("israel", "targeted_strikes"),
        ),
        "Israeli targeted-strike rate: symbolic > calibrated",
    )


def test_al_asad_proxy_autonomy_raises_unintended_escalation():
    """001_74a24966ff1a162a.txt: "Iran's allies in Iraq sometimes act without explicit
    instruction", and the al-Asad attack shows how easily the conflict "could escalate - and
    spiral out of control". With Iran on a calibrated line, more autonomous militias kill more
    Americans and bring a regional war more often."""
    obedient = arm(AL_ASAD, "iran=alt:calibrated", proxy_autonomy=0.1)
    autonomous = arm(AL_ASAD, "iran=alt:calibrated", proxy_autonomy=0.8)
    beyond_doubt(
        z_score(autonomous.state("us_killed"), obedient.state("us_killed")),
        "Americans killed: autonomous militias > obedient ones",
    )
    beyond_doubt(
        z_score(autonomous.outcome("war"), obedient.outcome("war")),
        "P(war): autonomous militias > obedient ones",
    )


def test_al_asad_saturated_air_defences_let_more_through():
    """001_74a24966ff1a162a.txt: an Iranian response "would probably rely on Iran's regional
    partners overwhelming Israel's Iron Dome defense system with rocket fire, so that at least
    some munitions get through", killing people "if the Iron Dome is overwhelmed". Defences
    saturate: a barrage beyond their capacity kills more per munition fired than one within it."""
    calibrated = arm(AL_ASAD, "iran=alt:calibrated")
    massive = arm(AL_ASAD, "iran=alt:massive")
    beyond_doubt(
        ratio_z(
            massive.state("israeli_killed"),
            massive.state("munitions_fired"),
            calibrated.state("israeli_killed"),
            calibrated.state("munitions_fired"),
        ),
        "Israelis killed per munition fired: massive > calibrated",
    )

"""Articles 002, 000 on sim/scenarios/direct_response_2020.yaml: claims with knock-out arms.

Each claim compares the US alternatives `direct` (an IRGC base after each attack) and `in_iraq`
(KH inside Iraq after each attack), with the scenario as it is and with the mechanism the claim
names switched off by its knock-out parameter:

- `red_line_fear=0`: Iran's learnt belief in the red line (`red_line`, up with each strike on
  Iran by the windows' rule) no longer makes restraining the Guard worth anything to it;
- `iraqi_sensitivity=0`: strikes on Iraqi soil no longer feed Iraqi `grievance` (Sadr's drift
  toward Iran, the nationalist turns, the expulsion vote) or cost `iraqi_tolerance`;
- `iran_resolve=0`: a strike on Iranian soil (`iran_blow`) no longer makes Iran want to answer
  with missiles;
- `attribution` is a rival switch, not a knock-out: 0 (the default, article 001 and the
  record, where every attack went unclaimed) hides from the US whether an attack defied
  Tehran's covert order to hold fire (`iran_restraint` is visible only to Iran and KH, and
  Iran's orders are unseen moves); 1 (article 002's "all know full well") tells it. The claim
  on it knocks out `red_line_fear` (no restraint, so no defiance to tell). Dropped: "Iran
  restrains more when the US can tell": it held (z 40) only while Iran's restraint utility
  carried a typed `1 - kh_autonomy * (1 - attribution)`; without it, z 1.5;
- `provocation=0`: KH no longer attacks to draw US strikes on Iraqi soil (article 000). The claim
  that a direct response lowers KH's attack rate through Iran's restraint holds provocation off
  in both arms, since strikes in Iraq also invite attacks meant to provoke them.
"""

from __future__ import annotations

import pytest

from sim.errors import ScenarioError
from sim.model.loading import load_text
from tests.claims.harness import DIRECT_RESPONSE, arm, claim, ratio_z, z_score
from tests.conftest import SCENARIOS


def _arms(**overrides):
    return arm(DIRECT_RESPONSE, "us=alt:direct", **overrides), arm(
        DIRECT_RESPONSE, "us=alt:in_iraq", **overrides
    )


def test_direct_response_restrains_the_guard_and_the_militia():
    """002_6879370bef8a4866.txt: "respond directly to Iran"; a strike on an IRGC base "would
    likely lead Ayatollah Ali Khamenei to restrain the Guard". Mechanism: each strike on Iranian
    soil moves Iran's belief that the red line is real (`red_line`) toward 1, by the windows'
    learning rule; Iran weighs restraint by the blow it then expects if its militias keep firing
    (`red_line_fear` x 8 x `red_line`), and the restraint stops KH. Knock-out:
    `red_line_fear=0`."""

    def restraint(**o):
        direct, in_iraq = _arms(**o)
        return z_score(
            direct.share("iran", "restrain_guard"), in_iraq.share("iran", "restrain_guard")
        )

    def kh_attacks(**o):
        direct, in_iraq = _arms(provocation=0.0, **o)
        return z_score(in_iraq.share("kh", "rocket_attack"), direct.share("kh", "rocket_attack"))

    claim("Iran restrains the Guard: direct > in Iraq", restraint, DIRECT_RESPONSE, "red_line_fear")
    claim("KH attack rate: in Iraq > direct", kh_attacks, DIRECT_RESPONSE, "red_line_fear")


def test_direct_response_strikes_in_iraq_risk_expulsion():
    """002_6879370bef8a4866.txt: responding directly "mitigates new damage to our interests in
    Iraq", while acting "precipitously in Iraq" jeopardizes the reformers. Mechanism: each strike
    on Iraqi soil adds to Iraqi `grievance` and costs `iraqi_tolerance` (both scaled by
    `iraqi_sensitivity`), and grievance brings nationalist turns and the expulsion vote. Knock-out:
    `iraqi_sensitivity=0`."""

    def expelled(**o):
        direct, in_iraq = _arms(**o)
        return z_score(in_iraq.outcome("us_expelled"), direct.outcome("us_expelled"))

    claim("P(expelled): in Iraq > direct", expelled, DIRECT_RESPONSE, "iraqi_sensitivity")


def test_direct_response_strikes_in_iraq_push_sadr_toward_iran():
    """002_6879370bef8a4866.txt: "Where America is seen to be trampling on Iraqi sovereignty, we
    foster a political realignment in favor of Iran". Mechanism: strikes on Iraqi soil feed
    `grievance` (by `iraqi_sensitivity`), which makes the nationalist turn Iraq's likelier move and
    moves `sadr_alignment` toward Iran. Knock-out: `iraqi_sensitivity=0`."""

    def sadr(**o):
        direct, in_iraq = _arms(**o)
        return z_score(in_iraq.state("sadr_alignment"), direct.state("sadr_alignment"))

    def turns(**o):
        direct, in_iraq = _arms(**o)
        return z_score(
            in_iraq.share("iraq", "nationalist_turn"), direct.share("iraq", "nationalist_turn")
        )

    claim(
        "Sadr's alignment with Iran at the end: in Iraq > direct",
        sadr,
        DIRECT_RESPONSE,
        "iraqi_sensitivity",
    )
    claim(
        "nationalist turns per week: in Iraq > direct", turns, DIRECT_RESPONSE, "iraqi_sensitivity"
    )


def test_direct_response_risks_war():
    """000_901de9d5be86587a.txt (the other side of article 002's argument): strikes on Iranian
    soil "may well bring Iranian retaliation and push the situation toward war". Mechanism: after a
    strike on its soil Iran wants to answer the blow (`iran_resolve` x `iran_blow`) with a
    missile salvo, weighed against the war it fears (`war_fear` x `war_risk`), and a salvo can
    spiral. Knock-out: `iran_resolve=0`."""

    def war(**o):
        direct, in_iraq = _arms(**o)
        return z_score(direct.outcome("war"), in_iraq.outcome("war"))

    claim("P(war): direct > in Iraq", war, DIRECT_RESPONSE, "iran_resolve")


def test_direct_response_kh_attacks_to_provoke_strikes_on_iraqi_soil():
    """000_901de9d5be86587a.txt: Iran's aims include to "compel" a US withdrawal, and strikes on
    Iraqi soil are what erode the Iraqi government's tolerance. Mechanism: KH attacks partly to
    draw such strikes, valuing each by the step it brings an expulsion closer (the tolerance it
    costs, which `iraqi_sensitivity` scales, over the tolerance left) times its learnt belief that
    an attack will draw one (`provocation`). Where the US answers every attack inside Iraq, KH
    attacks more when the strikes cost Iraqi tolerance more: per KH move, sensitivity 1.5 against
    0.5."""

    def kh_attack_rate(**o):
        touchy = arm(DIRECT_RESPONSE, "us=alt:in_iraq", iraqi_sensitivity=1.5, **o)
        calm = arm(DIRECT_RESPONSE, "us=alt:in_iraq", iraqi_sensitivity=0.5, **o)
        return ratio_z(
            touchy.moves("kh", "rocket_attack"),
            touchy.turns("kh"),
            calm.moves("kh", "rocket_attack"),
            calm.turns("kh"),
        )

    claim(
        "KH attacks per move, US striking in Iraq: touchy Iraq > calm Iraq",
        kh_attack_rate,
        DIRECT_RESPONSE,
        "provocation",
    )


def test_direct_response_hidden_orders_bring_strikes_on_iran_for_attacks_it_tried_to_stop():
    """001_74a24966ff1a162a.txt: "It's unclear if Iran had anything to do with the attack", and
    Iran's allies "sometimes act without explicit instruction"; 002_6879370bef8a4866.txt holds
    that all "know full well" the attacks are Iran's. Mechanism (hidden information, DESIGN.md
    8.1): Khamenei's order to hold fire is covert, so a US that answers every attack on Iranian
    soil also strikes Iran for attacks that defied that order, and Iran answers those blows. With
    `attribution` 1 the US learns of the defiance and holds back. Knock-out `red_line_fear=0`:
    Iran never has reason to order restraint, so there is no defiance to tell."""

    def war(**o):
        hidden = arm(DIRECT_RESPONSE, "us=alt:direct", attribution=0.0, **o)
        seen = arm(DIRECT_RESPONSE, "us=alt:direct", attribution=1.0, **o)
        return z_score(hidden.outcome("war"), seen.outcome("war"))

    def strikes(**o):
        hidden = arm(DIRECT_RESPONSE, "us=alt:direct", attribution=0.0, **o)
        seen = arm(DIRECT_RESPONSE, "us=alt:direct", attribution=1.0, **o)
        return z_score(hidden.share("us", "strike_irgc"), seen.share("us", "strike_irgc"))

    claim(
        "strikes on Iran per week, direct: orders hidden > seen",
        strikes,
        DIRECT_RESPONSE,
        "red_line_fear",
    )
    claim("P(war), direct: orders hidden > seen", war, DIRECT_RESPONSE, "red_line_fear")


def test_direct_response_no_us_doctrine_can_read_tehrans_order():
    """The hidden order is enforced, not a convention: a US doctrine that conditions on Iran's
    restraint (the state the US cannot see) is refused at load time, at its place in the file."""
    text = (SCENARIOS / DIRECT_RESPONSE).read_text(encoding="utf-8")
    seen = '"where(attacked > 0, 1, -1) - 2 * defiance_known"'
    assert seen in text
    peeking = text.replace(seen, '"where(attacked > 0, 1, -1) - 2 * iran_restraint"')
    with pytest.raises(ScenarioError) as info:
        load_text(peeking, DIRECT_RESPONSE)
    line = 1 + text[: text.index(seen)].count("\n")
    assert f"{DIRECT_RESPONSE}:{line}:" in str(info.value)
    assert "'iran_restraint' is hidden from us" in str(info.value)

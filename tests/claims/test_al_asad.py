"""Article 001 on sim/scenarios/al_asad_2024.yaml: claims with knock-out arms."""

from __future__ import annotations

from tests.claims.harness import AL_ASAD, arm, beyond_doubt, ratio_z, z_score


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

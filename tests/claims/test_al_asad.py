"""Article 001 on sim/scenarios/al_asad_2024.yaml: claims with knock-out arms.

Each claim is checked with the scenario as it is and with the mechanism it names switched off:

- `provocation=0`: Israeli deaths no longer raise Israel's utility of a major counterstrike or
  the US utility of striking Iran;
- `pain_standing=0`: Iran's standing no longer reads the pain its strike inflicts;
- `iran_restrains_militias=0`: Iran no longer asks the militias to hold fire;
- `us_killed_pull=0`: dead Americans no longer raise the US utility of striking Iran;
- `saturation=0`: air defences stop munitions beyond their capacity like the rest.
- `war_fear=0`: Iran's own policy no longer weighs the war a salvo may provoke.

Rewritten (issue 18 audit of this file):
- "Too weak a response looks impotent" held because the file typed the verdict in: each option
  moved `iran_standing` by its own constant (symbolic -0.1, calibrated +0.15, massive +0.3). Now
  every strike costs the same 0.25 of standing and earns up to `pain_standing` back from the
  Israelis it kills, so the difference follows from the pain inflicted.
- "Too strong a response draws in Israel" survived `provocation=0` (z = 4.6 for major
  counterstrikes) when Iran's standing deterred only Israel's targeted strikes: with that option
  made less likely, the logit handed its share to the counterstrikes. Standing now deters every
  Israeli strike, the counterstrikes 1.5 less per unit than the targeted campaign.
- "Autonomous militias bring regional war more often" measured P(war), which also rose through
  longer, more violent runs with no American killed at all (z = 3.4 with `militia_lethality=0`
  before the rewrite). It now measures the war the militias are claimed to cause: the United
  States striking Iran.
"""

from __future__ import annotations

from tests.claims.harness import AL_ASAD, arm, claim, ratio_z, z_score


def _iran(alternative: str, **overrides):
    return arm(AL_ASAD, f"iran=alt:{alternative}", **overrides)


def test_al_asad_too_strong_a_response_draws_in_israel_and_the_us():
    """001_74a24966ff1a162a.txt: "Too strong a response could provoke further violence from
    Israel, and potentially the US". Mechanism: each Israeli death raises Israel's utility of a
    major counterstrike (`israel_response`) and the US utility of striking Iran (`us_pull`); a
    major counterstrike can spiral into regional war. A massive barrage brings major Israeli
    counterstrikes and regional war more often than a calibrated one. Knock-out:
    `provocation=0`."""

    def counterstrikes(**o):
        massive, calibrated = _iran("massive", **o), _iran("calibrated", **o)
        return z_score(
            massive.moves("israel", "major_counterstrike"),
            calibrated.moves("israel", "major_counterstrike"),
        )

    def war(**o):
        massive, calibrated = _iran("massive", **o), _iran("calibrated", **o)
        return z_score(massive.outcome("war"), calibrated.outcome("war"))

    claim(
        "major Israeli counterstrikes: massive > calibrated", counterstrikes, AL_ASAD, "provocation"
    )
    claim("P(war): massive > calibrated", war, AL_ASAD, "provocation")


def test_al_asad_too_weak_a_response_looks_impotent():
    """001_74a24966ff1a162a.txt: Iran must not respond in a way that proves "completely impotent
    and reveal[s] them as weak"; "without inflicting pain, there is no gain deterrence-wise".
    Mechanism: every strike costs Iran 0.25 of standing and earns up to `pain_standing` back from
    the Israelis it kills; the lower Iran's standing, the more Israel strikes. A symbolic strike
    leaves Iran's standing lower, and Israel striking more often, than a calibrated one.
    Knock-out: `pain_standing=0`."""

    def standing(**o):
        calibrated, symbolic = _iran("calibrated", **o), _iran("symbolic", **o)
        return z_score(calibrated.state("iran_standing"), symbolic.state("iran_standing"))

    def strike_rate(**o):
        calibrated, symbolic = _iran("calibrated", **o), _iran("symbolic", **o)
        return z_score(
            symbolic.share("israel", "targeted_strikes"),
            calibrated.share("israel", "targeted_strikes"),
        )

    claim("Iran's standing: calibrated > symbolic", standing, AL_ASAD, "pain_standing")
    claim(
        "Israeli targeted-strike rate: symbolic > calibrated", strike_rate, AL_ASAD, "pain_standing"
    )


def test_al_asad_proxy_autonomy_raises_unintended_escalation():
    """001_74a24966ff1a162a.txt: "Iran's allies in Iraq sometimes act without explicit
    instruction", and the conflict "could escalate - and spiral out of control". Mechanisms: the
    militias weigh Iran's order to hold fire against their own zeal by `proxy_autonomy`, so more
    autonomous militias attack US bases more and kill more Americans (knock-out:
    `iran_restrains_militias=0`); and each American killed raises the US utility of striking Iran,
    the regional war nobody in Tehran chose (knock-out: `us_killed_pull=0`). With Iran on a
    calibrated line, autonomous militias (0.8) against obedient ones (0.1)."""

    def arms(**o):
        return _iran("calibrated", proxy_autonomy=0.8, **o), _iran(
            "calibrated", proxy_autonomy=0.1, **o
        )

    def us_killed(**o):
        autonomous, obedient = arms(**o)
        return z_score(autonomous.state("us_killed"), obedient.state("us_killed"))

    def us_strikes_iran(**o):
        autonomous, obedient = arms(**o)
        return z_score(
            autonomous.moves("us", "strike_iran") > 0, obedient.moves("us", "strike_iran") > 0
        )

    claim(
        "Americans killed: autonomous militias > obedient ones",
        us_killed,
        AL_ASAD,
        "iran_restrains_militias",
    )
    claim(
        "P(the US strikes Iran, a regional war): autonomous militias > obedient ones",
        us_strikes_iran,
        AL_ASAD,
        "us_killed_pull",
    )


def test_al_asad_saturated_air_defences_let_more_through():
    """001_74a24966ff1a162a.txt: a response "would probably rely on Iran's regional partners
    overwhelming Israel's Iron Dome defense system with rocket fire, so that at least some
    munitions get through". Mechanism: interceptors stop all but `base_leak` of a salvo up to
    `defence_capacity` and nothing beyond it. A barrage beyond capacity kills more Israelis per
    munition fired than one within it. Knock-out: `saturation=0`."""

    def per_munition(**o):
        massive, calibrated = _iran("massive", **o), _iran("calibrated", **o)
        return ratio_z(
            massive.state("israeli_killed"),
            massive.state("munitions_fired"),
            calibrated.state("israeli_killed"),
            calibrated.state("munitions_fired"),
        )

    claim(
        "Israelis killed per munition fired: massive > calibrated",
        per_munition,
        AL_ASAD,
        "saturation",
    )


def test_al_asad_iran_threads_the_needle_by_weighing_the_war_it_may_provoke():
    """001_74a24966ff1a162a.txt: Iran must respond "in a way that doesn't prove to be completely
    impotent ... but they also don't want to go overboard". Mechanism: Iran's own choice weighs
    each salvo's expected standing against the war it expects the salvo to provoke, read off
    Israel's and the US's responses to the Israelis it expects to kill (`war_fear`). Left to its
    own policy, Iran fires calibrated salvos far more often than massive ones; knocked out, an
    Iran that fears no war goes overboard."""

    def needle(**o):
        iran = arm(AL_ASAD, **o)
        return z_score(iran.moves("iran", "calibrated"), iran.moves("iran", "massive"))

    claim("Iran's own salvos: calibrated > massive", needle, AL_ASAD, "war_fear")

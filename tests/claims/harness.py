"""What the claim tests share: arms simulated once, z statistics, and the knock-out rule.

Each test is one directional claim of a source article (quoted in its docstring, which also
names the mechanism that is meant to produce the effect), checked on the scenario that models it
in three arms (issue 18):

1. the scenario: the claimed difference between two arms (policies or parameter values) must lie
   beyond Z_MIN standard errors;
2. the knock-out: the same two arms with the named mechanism switched off (a parameter that the
   scenario exposes for the purpose, documented in the file as a knock-out). The difference must
   then be gone or reversed: below Z_GONE standard errors in the claimed direction. A claim that
   survives its own knock-out was typed in, not derived, and is rewritten or dropped;
3. where the claim compares options, both options are simulated in both arms.

`claim(...)` is the one assertion: it takes the statistic as a function of the overrides, so it
cannot be called without the knock-out. Run `pytest tests/claims -s` to see every z-score.
"""

from __future__ import annotations

import math
from collections.abc import Callable
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
Z_GONE = 2.0
"""With the mechanism off the claimed direction must fall below this (one-sided 2.3%)."""

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

    def per_step(self, name: str) -> np.ndarray:
        """The change of a state variable per step the run lasted: a rate that runs ended early
        (by war, expulsion or deterrence) cannot fake by having had less time to change."""
        var = self.model.state_names.index(name)
        return (self.rec.state[var] - self.model.state_initial[var]) / self.rec.steps

    def payoff(self, actor: str) -> np.ndarray:
        """The total payoff of `actor` in each run."""
        return self.rec.payoffs[self.model.actor_index(actor)]

    def moves(self, actor: str, *options: str) -> np.ndarray:
        """How many times `actor` played any of `options` in each run."""
        a = self.model.actor_index(actor)
        ids = [o.id for o in self.model.options[a]]
        return sum(self.rec.moves[a, ids.index(o) + 1].astype(float) for o in options)

    def turns(self, actor: str) -> np.ndarray:
        """How many turns `actor` had in each run (every option and pass)."""
        return self.rec.moves[self.model.actor_index(actor)].sum(axis=0).astype(float)

    def share(self, actor: str, *options: str) -> np.ndarray:
        """The share of `actor`'s moves in each run that were any of `options` (a rate per step)."""
        return self.moves(actor, *options) / np.maximum(self.turns(actor), 1)


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


def knockout_parameter(file: str, name: str) -> None:
    """The parameter exists, defaults to on, and its doc says it is a knock-out switch."""
    scenario = load_scenario(SCENARIOS / file)
    assert name in scenario.parameters, f"{file} has no knock-out parameter {name}"
    doc = scenario.parameters[name].doc or ""
    assert "knock-out" in doc.lower(), f"{file}: parameter {name}'s doc does not say knock-out"


def claim(
    what: str,
    statistic: Callable[..., float],
    file: str,
    mechanism: str,
    off: float = 0.0,
) -> tuple[float, float]:
    """Assert `statistic(**overrides)` (a z score in the claimed direction) beyond Z_MIN with
    the scenario's mechanism on and below Z_GONE with `mechanism` set to `off`; returns both."""
    knockout_parameter(file, mechanism)
    z_on = statistic()
    z_off = statistic(**{mechanism: off})
    print(f"  z = {z_on:7.1f} | knocked out ({mechanism}={off:g}): {z_off:7.1f}  {what}")
    assert z_on > Z_MIN, f"{what}: z = {z_on:.2f}, not beyond {Z_MIN} standard errors"
    assert z_off < Z_GONE, (
        f"{what}: survives its knock-out {mechanism}={off:g} (z = {z_off:.2f} >= {Z_GONE}): the "
        "effect does not come from the mechanism the claim names"
    )
    return z_on, z_off

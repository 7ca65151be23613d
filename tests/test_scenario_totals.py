"""No lost bookkeeping in the bundled scenarios (issue 18, item 5): in every run, each total a
tally adds to has grown by exactly the per-move increases of its counters, including the runs
that end in the middle of a step, before `every_step` could settle anything."""

from __future__ import annotations

import re

import numpy as np
import pytest

from sim.engine.batch import Observer, simulate_batch
from sim.engine.streams import block_count
from sim.model.compiled import Model
from sim.model.loading import load_scenario, load_text
from sim.solvers.prepare import prepare_model
from tests.conftest import SCENARIOS

RUNS = 3000
FILES = sorted(SCENARIOS.glob("*.yaml"))
TALLIED = ["al_asad_2024", "camp_taji_2020", "kh_december_2019"]


class _Increases(Observer):
    """Each run's summed positive per-move change of every state variable."""

    def __init__(self, model: Model, runs: int):
        self.added = np.zeros((len(model.state_names), runs))

    def moved(self, step, actor, runs, before, after, rung, payoffs):
        self.added[:, runs] += np.maximum(after - before, 0)

    def stepped(self, step, runs, before, after, rung, payoffs):
        self.added[:, runs] += np.maximum(after - before, 0)


def _short_totals(model: Model, runs: int = RUNS, seed: int = 18) -> dict[str, int]:
    """For each tally target, the number of runs whose final total falls short of its initial
    value plus the increases of the counters that tally into it."""
    observer = _Increases(model, runs)
    rec = simulate_batch(model, seed, 0, block_count(runs), runs, observer=observer).records
    short = {}
    for target in {t for tally in model.tallies for t in tally.into}:
        counted = sum(observer.added[t.var] for t in model.tallies if target in t.into)
        grown = rec.state[target] - model.state_initial[target]
        short[model.state_names[target]] = int(np.sum(grown < counted - 1e-9))
    return short


@pytest.mark.parametrize("path", FILES, ids=[p.stem for p in FILES])
def test_no_total_is_settled_only_by_every_step(path):
    """Totals are kept by tallies, never by an every_step `add` of a counter it resets."""
    model = prepare_model(load_scenario(path))
    step_sets = {model.state_names[v] for v, _ in model.step_effects.set}
    lost = [
        f"{model.state_names[v]}: {sorted(e.expr.names & step_sets)}"
        for v, e in model.step_effects.add
        if e.expr.names & step_sets and model.state_integer[v]
    ]
    assert not lost, f"every_step adds counters it also resets (lost on an early end): {lost}"


@pytest.mark.parametrize("name", TALLIED)
def test_totals_match_the_per_move_sums_in_every_run(name):
    model = prepare_model(load_scenario(SCENARIOS / f"{name}.yaml"))
    assert model.tallies, f"{name} keeps its casualty totals with a tally"
    short = _short_totals(model)
    assert short == dict.fromkeys(short, 0)


def test_the_old_every_step_settlement_fails_this_test():
    """The control: camp_taji settling its dead in every_step (as before issue 18) loses them
    in the runs that end mid-step (here in war, Iran's salvo answering KH's week), and the
    per-run comparison finds them."""
    text = (SCENARIOS / "camp_taji_2020.yaml").read_text()
    text = re.sub(r"    tally:\n      into: \[us_killed\]\n.*\n", "    tally: {into: []}\n", text)
    settle = "      kh_capability: 0.01\n"
    text = text.replace(settle, settle + "      us_killed: killed_this_week\n")
    # An Iran that fears no war fires often, so runs end in war after KH's move of the week.
    fearless = "  war_fear:\n    value: 0\n"
    text = text.replace("  war_fear:\n    value: 50\n", fearless)
    assert fearless in text
    model = prepare_model(load_text(text, "old_camp_taji.yaml"))
    observer = _Increases(model, RUNS)
    rec = simulate_batch(model, 18, 0, block_count(RUNS), RUNS, observer=observer).records
    killed, week = model.state_names.index("us_killed"), model.state_names.index("killed_this_week")
    grown = rec.state[killed] - model.state_initial[killed]
    assert np.sum(grown < observer.added[week]) > 0

"""`escalation fit`: maximum-likelihood estimates from an episode log (no model logic here)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from sim.cli.main import (
    EXIT_OK,
    _seed,
    add_quiet_argument,
    add_scenario_argument,
    add_set_argument,
)

COMMAND = "fit"
HELP = "estimate parameters from an episode log by maximum likelihood (DESIGN.md 8.2)"
MAX_BOOTSTRAP = 10_000
"""Most bootstrap refits asked for at once."""


def add_data_argument(parser: argparse.ArgumentParser) -> None:
    """`--data LOG.csv`, shared with `check`."""
    parser.add_argument(
        "--data",
        type=Path,
        required=True,
        metavar="LOG.csv",
        help="the episode log (header episode,step,actor,option,branch; data/logs/ has the "
        "bundled scenarios' logs)",
    )


def add_doctrine_argument(parser: argparse.ArgumentParser) -> None:
    """`--doctrine ACTOR=NAME`, shared with `check`."""
    parser.add_argument(
        "--doctrine",
        action="append",
        default=[],
        metavar="ACTOR=NAME",
        help="play the scenario's alternative NAME for ACTOR instead of its policy, e.g. "
        "us=as_it_happened (repeatable)",
    )


def parse_doctrines(specs: list[str]) -> dict[str, str]:
    """{actor: alternative} from `--doctrine ACTOR=NAME` arguments."""
    from sim.cli.main import UsageError

    doctrines = {}
    for spec in specs:
        actor, sep, name = spec.partition("=")
        if not sep or not actor.strip() or not name.strip():
            raise UsageError(f"--doctrine {spec!r}: expected ACTOR=NAME, e.g. us=as_it_happened")
        doctrines[actor.strip()] = name.strip()
    return doctrines


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.description = (
        "Maximise the likelihood of an episode log over the free parameters, each within its "
        "declared [min, max]. Unobserved (empty) cells are summed over. The likelihood is exact "
        "(a forward pass over the reachable states) where the scenario's states are few enough, "
        "else a particle filter's estimate with its Monte Carlo error stated. Intervals: profile "
        "likelihood, or the observed information where it is regular and there are several "
        "free parameters. docs/evidence.md explains the output."
    )
    add_scenario_argument(parser)
    add_data_argument(parser)
    parser.add_argument(
        "--free",
        action="append",
        required=True,
        metavar="NAME",
        help="a parameter to estimate (repeat for several); it needs a declared min and max",
    )
    add_set_argument(parser)
    add_doctrine_argument(parser)
    parser.add_argument("--json", action="store_true", help="print the JSON result on stdout")
    parser.add_argument(
        "--particles",
        type=int,
        default=None,
        metavar="N",
        help="use a particle filter with N states per episode (0: insist on the exact pass; "
        "default: exact where the pass stays under 250,000 states, else 5,000 particles)",
    )
    parser.add_argument(
        "--bootstrap",
        type=int,
        default=0,
        metavar="B",
        help="also fit B logs simulated from the estimates (parametric bootstrap intervals)",
    )
    parser.add_argument(
        "--profile",
        action="store_true",
        help="profile-likelihood intervals for every parameter (slower with several)",
    )
    parser.add_argument(
        "--seed", type=_seed, default=1, help="seed of the particle filter and the bootstrap"
    )
    add_quiet_argument(parser)


def run(args: argparse.Namespace) -> int:
    from sim.analysis.fit import fit
    from sim.cli.main import ProgressBar, UsageError, load_with_overrides, show_progress
    from sim.format.episode_log import read_episode_log

    if args.particles is not None and args.particles < 0:
        raise UsageError("--particles must be 0 (exact) or a positive number of states")
    if not 0 <= args.bootstrap <= MAX_BOOTSTRAP:
        raise UsageError(f"--bootstrap must be between 0 and {MAX_BOOTSTRAP:,}")
    scenario, overrides = load_with_overrides(args.file, args.overrides)
    doctrines = parse_doctrines(args.doctrine)
    log = read_episode_log(args.data, scenario)
    with ProgressBar(show_progress(args), None, f"{scenario.id}: fitting", delay=1.0) as bar:
        stage = None if bar is None else (lambda what: bar.stage(f"{scenario.id}: fitting, {what}"))
        try:
            result = fit(
                scenario,
                log,
                args.free,
                overrides,
                particles=args.particles,
                seed=args.seed,
                bootstrap=args.bootstrap,
                profiled=args.profile,
                progress=stage,
                doctrines=doctrines,
            )
        except ValueError as exc:
            raise UsageError(str(exc)) from None
    if args.json:
        print(json.dumps(result.to_dict(), indent=2, allow_nan=False))
    else:
        from sim.outputs.evidence import print_fit

        print_fit(result)
    return EXIT_OK

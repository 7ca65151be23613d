"""`escalation trace`: one run told as a story, move by move."""

from __future__ import annotations

import argparse
import json

COMMAND = "trace"
MAX_RUN = 2**53
"""Run indices must stay exact in the engine's arithmetic."""
HELP = "one run told as a story, move by move"


def add_arguments(p: argparse.ArgumentParser) -> None:
    from sim.cli.main import _seed, add_scenario_argument, add_set_argument

    add_scenario_argument(p)
    p.add_argument("--seed", type=_seed, default=1)
    p.add_argument(
        "--run",
        type=int,
        default=0,
        help="index of the run (default 0): the same run as in `escalation run`",
    )
    add_set_argument(p)
    p.add_argument("--json", action="store_true", help="print the story as JSON")
    p.add_argument(
        "--beliefs",
        action="store_true",
        help="show each strategic actor's beliefs about what it does not see when it moves",
    )


def run(args: argparse.Namespace) -> int:
    from sim.cli.main import UsageError, load_with_overrides
    from sim.play.trace import story_lines, trace_run
    from sim.solvers.prepare import prepare_model

    scenario, overrides = load_with_overrides(args.file, args.overrides)
    if not 0 <= args.run < MAX_RUN:
        raise UsageError(f"--run must be between 0 and {MAX_RUN - 1:,}, got {args.run}")
    story = trace_run(prepare_model(scenario, overrides), args.seed, args.run, args.beliefs)
    if args.json:
        print(json.dumps(story.to_json(), indent=2, allow_nan=False))
        return 0
    from sim.outputs.tables import terminal

    console = terminal(highlight=False)
    for line in story_lines(story):
        console.print(line)
    return 0

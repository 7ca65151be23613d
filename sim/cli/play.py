"""`escalation play FILE --as ACTOR`: the interactive classroom game (logic in sim/play.py)."""

from __future__ import annotations

import argparse
import contextlib
import os
import sys

from sim.errors import did_you_mean

COMMAND = "play"
HELP = "interactive classroom mode: play one crisis as an actor"


def _runs_or_zero(text: str) -> int:
    from sim.cli.main import _positive_int

    if text.strip() == "0":
        return 0
    return _positive_int(text)


def add_arguments(p: argparse.ArgumentParser) -> None:
    from sim.cli.main import _seed, add_quiet_argument, add_scenario_argument, add_set_argument

    add_scenario_argument(p)
    p.add_argument(
        "--as",
        dest="actor",
        required=True,
        metavar="ACTOR",
        help="the actor you play (its id or label)",
    )
    p.add_argument(
        "--seed",
        type=_seed,
        default=None,
        help="random seed: the same seed and answers replay the same crisis "
        "(default: a new one, printed at the start)",
    )
    add_set_argument(p)
    p.add_argument(
        "--compare-runs",
        type=_runs_or_zero,
        default=20_000,
        metavar="N",
        help="Monte Carlo runs of the actor's own policy to compare your play with "
        "(default 20000; 0 skips the comparison)",
    )
    add_quiet_argument(p)


def resolve_actor(scenario, name: str) -> str:
    """An actor id from its id or label (case-insensitive); UsageError if unknown or idle."""
    from sim.cli.main import UsageError

    wanted = name.strip().lower()
    for actor, info in scenario.actors.items():
        if wanted in (actor.lower(), info.label.lower()):
            break
    else:
        raise UsageError(
            f"unknown actor '{name}'{did_you_mean(name, scenario.actors)}; actors: "
            + ", ".join(f"{a} ({i.label})" for a, i in scenario.actors.items())
        )
    if actor not in scenario.turn_order:
        raise UsageError(f"actor '{actor}' never moves (not in turn_order)")
    if not scenario.options.get(actor):
        raise UsageError(f"actor '{actor}' has no options to choose from")
    return actor


def _no_input(prompt: str) -> str:
    """The reader when stdin is closed (`<&-`): the input has already ended."""
    raise EOFError


def run(args: argparse.Namespace) -> int:
    """Exit status: 0 when the game ends or the student leaves (q, Ctrl-D, end of input), 2 when
    the input is not answers (binary, endless), 130 after Ctrl-C; a closed output pipe (141) or a
    full disk (2) are handled by sim.cli.main like every command's."""
    from sim.cli.main import EXIT_SIGINT, ProgressBar, load_with_overrides, show_progress
    from sim.play.session import Game, stream_reader
    from sim.solvers.prepare import prepare_model

    try:
        scenario, overrides = load_with_overrides(args.file, args.overrides)
        actor = resolve_actor(scenario, args.actor)
        model = prepare_model(scenario, overrides)
    except KeyboardInterrupt:
        print("Game over (interrupted) before it began.")
        return EXIT_SIGINT
    import secrets

    seed = args.seed if args.seed is not None else secrets.randbelow(1_000_000)
    output = sys.stdout if sys.stdout is not None else open(os.devnull, "w")  # noqa: SIM115
    if sys.stdin is None:
        reader = _no_input
    elif sys.stdin.isatty():
        with contextlib.suppress(ImportError):
            import readline  # noqa: F401  (line editing for input())
        reader = input
    else:
        reader = stream_reader(sys.stdin, echo=output)
    show = show_progress(args)
    game = Game(
        model,
        actor,
        seed,
        reader,
        output,
        compare_runs=args.compare_runs,
        file=args.file,
        busy=lambda label: ProgressBar(show, None, label),
    )
    return game.play()

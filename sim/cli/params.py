"""`escalation params FILE` (alias `describe`): a scenario's knobs and menus, before running it.

Prints every parameter with its value, range and meaning (the names `--set` and `sweep --vary`
accept), then every actor with its doctrine and its options. Printing only: the text comes from
the validated scenario.
"""

from __future__ import annotations

import argparse
import json

COMMAND = "params"
ALIASES = ("describe",)
HELP = "the parameters (value, range, meaning) and the actors with their options"


def add_arguments(p: argparse.ArgumentParser) -> None:
    from sim.cli.main import add_scenario_argument, add_set_argument

    p.description = (
        "Describe a scenario: its parameters with value, range and meaning (what --set and "
        "sweep --vary take), and its actors with their doctrines and options."
    )
    add_scenario_argument(p)
    add_set_argument(p, help="show the values with this override (repeatable)")
    p.add_argument("--json", action="store_true", help="print the description as JSON")


def run(args: argparse.Namespace) -> int:
    from sim.cli.main import load_with_overrides
    from sim.model.compiler import resolve_parameters

    scenario, overrides = load_with_overrides(args.file, args.overrides)
    values = resolve_parameters(scenario, overrides)
    if args.json:
        print(json.dumps(describe_json(scenario, values), indent=2, allow_nan=False))
    else:
        print_description(scenario, values, overrides)
    return 0


def _rung(scenario, rung) -> str:
    if rung is None:
        return "-"
    r = scenario.rung_index(rung)
    return f"{r} {scenario.ladder[r]}"


def _requires(option) -> str:
    return "always" if option.requires is True else str(option.requires)


def describe_json(scenario, values: dict[str, float]) -> dict:
    """The description as JSON: parameters, then actors with their options."""
    return {
        "scenario": scenario.id,
        "title": scenario.title,
        "parameters": {
            name: {
                "value": values[name],
                "default": p.value,
                "min": p.min,
                "max": p.max,
                "doc": p.doc or p.label or "",
            }
            for name, p in scenario.parameters.items()
        },
        "actors": {
            actor: {
                "label": info.label,
                "moves": actor in scenario.turn_order,
                "options": [
                    {
                        "id": o.id,
                        "label": o.label or o.id,
                        "rung": None if o.rung is None else scenario.rung_index(o.rung),
                        "requires": _requires(o),
                    }
                    for o in scenario.options.get(actor, [])
                ],
                "alternatives": list(scenario.alternatives.get(actor, {})),
            }
            for actor, info in scenario.actors.items()
        },
    }


def print_description(scenario, values: dict[str, float], overrides) -> None:
    """The parameters table, then one table of options per actor."""
    from rich.markup import escape as esc
    from rich.table import Table
    from rich.text import Text

    from sim.outputs.report_text import describe_policy, settings_text, written
    from sim.outputs.tables import print_table, terminal

    console = terminal(highlight=False)
    s = scenario
    console.print(f"[bold]{esc(s.title)}[/bold]  ({s.id})")
    console.print(
        Text(
            f"At most {s.horizon} {s.step_label}{'s' if s.horizon != 1 else ''}; a ladder of "
            f"{len(s.ladder)} rungs from "
            f"{_rung(s, 0)} to {_rung(s, len(s.ladder) - 1)}, starting on "
            f"{_rung(s, s.initial_rung)}; parameters: {settings_text(overrides)}"
        )
    )
    if s.parameters:
        table = Table(
            title="Parameters (change with --set NAME=VALUE, sweep with --vary NAME=LO:HI:N)",
            title_justify="left",
        )
        table.add_column("parameter", no_wrap=True)
        table.add_column("value", justify="right", no_wrap=True)
        table.add_column("range", no_wrap=True)
        table.add_column("meaning")
        for name, p in s.parameters.items():
            value = written(values[name])
            if values[name] != p.value:
                value = f"{value} (default {written(p.value)})"
            low = "-inf" if p.min is None else written(p.min)
            high = "inf" if p.max is None else written(p.max)
            table.add_row(name, value, f"{low} to {high}", Text(p.doc or p.label or ""))
        print_table(console, table)
    else:
        console.print("This scenario has no parameters.")
    for actor, info in s.actors.items():
        moves = "moves" if actor in s.turn_order else "never moves"
        console.print()
        console.print(
            Text.assemble(
                (info.label, "bold"),
                f" ({actor}), {moves}; doctrine: {describe_policy(s, actor, parameters=values)}",
            )
        )
        options = s.options.get(actor, [])
        if options:
            table = Table(title_justify="left")
            table.add_column("option", no_wrap=True)
            table.add_column("label")
            table.add_column("rung")
            table.add_column("requires")
            for o in options:
                table.add_row(o.id, Text(o.label or o.id), Text(_rung(s, o.rung)), _requires(o))
            print_table(console, table)
        alternatives = list(s.alternatives.get(actor, {}))
        if alternatives:
            console.print(
                Text(f"Alternative doctrines (compare --policies): {', '.join(alternatives)}")
            )

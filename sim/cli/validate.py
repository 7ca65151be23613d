"""`escalation validate`: check scenario files, folders or standard input, for people and tools.

`--format text` prints `FILE:LINE:COL: message` per problem (and `FILE: ok`); `json` prints one
strict JSON document for editors; `github` prints GitHub Actions error annotations, so a CI job
marks the offending line in a pull request.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterator
from pathlib import Path

from sim.errors import Problem, ScenarioError

COMMAND = "validate"
HELP = "check scenario files; FILE:LINE:COL: message per problem"
FORMATS = ("text", "json", "github")
SUFFIXES = (".yaml", ".yml")
STDIN = "-"
STDIN_NAME = "<stdin>"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "files",
        nargs="+",
        metavar="FILE",
        help="a scenario file, a bundled id, a folder (every .yaml/.yml in it, recursively) "
        "or - for standard input",
    )
    p.add_argument(
        "--format",
        choices=FORMATS,
        default="text",
        help="text (default), json (one document for editors) or github (Actions annotations)",
    )


def run(args: argparse.Namespace) -> int:
    """Check each file in turn; text and GitHub lines are printed as each file is checked."""
    from sim.cli.main import EXIT_INPUT, EXIT_OK

    checked = []
    for name in _targets(args.files):
        problems = _problems(name)
        checked.append((name, problems))
        if args.format != "json":
            for line in _lines(args.format, name, problems):
                print(line)
    if args.format == "json":
        print(json.dumps(_document(checked), indent=2, allow_nan=False, ensure_ascii=False))
    elif args.format == "github":
        bad = sum(1 for _, problems in checked if problems)
        print(f"{len(checked) - bad} of {len(checked)} scenario files valid")
    return EXIT_INPUT if any(problems for _, problems in checked) else EXIT_OK


def _targets(names: list[str]) -> Iterator[str]:
    """Each name as given; a folder becomes its scenario files, sorted, found recursively."""
    stdin_seen = False
    for name in names:
        if name == STDIN:
            if not stdin_seen:
                stdin_seen = True
                yield STDIN
            continue
        path = Path(name)
        if path.is_dir():
            found = sorted(p for p in path.rglob("*") if p.suffix in SUFFIXES and p.is_file())
            yield from (str(p) for p in found) if found else (name,)
        else:
            yield name


def _problems(name: str) -> list[Problem]:
    from sim.format.library import resolve_scenario_path
    from sim.format.loader import read_scenario_stream
    from sim.model.loading import load_scenario, load_text

    try:
        if name == STDIN:
            load_text(read_scenario_stream(sys.stdin.buffer, STDIN_NAME), STDIN_NAME)
        elif Path(name).is_dir():
            return [Problem(name, 0, 0, "no .yaml or .yml files in this folder")]
        else:
            load_scenario(resolve_scenario_path(name))
    except ScenarioError as exc:
        return list(exc.problems)
    return []


def _shown(name: str) -> str:
    return STDIN_NAME if name == STDIN else name


def _lines(style: str, name: str, problems: list[Problem]) -> list[str]:
    if style == "github":
        return [_annotation(p) for p in problems]
    return [str(p) for p in problems] if problems else [f"{_shown(name)}: ok"]


def _document(checked: list[tuple[str, list[Problem]]]) -> dict:
    files = [
        {
            "file": _shown(name),
            "valid": not problems,
            "problems": [
                {"file": p.file, "line": p.line, "col": p.col, "message": p.message}
                for p in problems
            ],
        }
        for name, problems in checked
    ]
    valid = sum(1 for f in files if f["valid"])
    return {"valid": valid, "invalid": len(files) - valid, "files": files}


def _annotation(problem: Problem) -> str:
    """A GitHub Actions `::error` workflow command, escaped as the runner expects."""
    where = f"file={_property(problem.file)}"
    if problem.line > 0:
        where += f",line={problem.line},col={problem.col}"
    return f"::error {where}::{_data(problem.message)}"


def _data(text: str) -> str:
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _property(text: str) -> str:
    return _data(text).replace(":", "%3A").replace(",", "%2C")

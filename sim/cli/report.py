"""`escalation report FILE`: one self-contained HTML report (built by sim/report.py)."""

from __future__ import annotations

import argparse
from pathlib import Path

COMMAND = "report"
HELP = "one self-contained HTML report with every chart"


def add_arguments(p: argparse.ArgumentParser) -> None:
    from sim.cli.main import _positive_int, _seed, add_scenario_argument, add_set_argument

    add_scenario_argument(p)
    p.add_argument("--runs", type=_positive_int, default=20_000, help="runs (default 20000)")
    p.add_argument("--seed", type=_seed, default=1, help="random seed (default 1)")
    add_set_argument(p)
    p.add_argument(
        "--out",
        type=Path,
        metavar="PATH",
        help="the HTML file to write (default reports/<id>/report.html)",
    )
    p.add_argument(
        "--workers",
        type=_positive_int,
        default=1,
        help="worker processes (results are identical for any number)",
    )


def run(args: argparse.Namespace) -> int:
    from sim.cli.main import UsageError, load_with_overrides
    from sim.outputs.report import make_report, write_atomic
    from sim.solvers.prepare import prepare_model

    scenario, overrides = load_with_overrides(args.file, args.overrides)
    out = args.out or Path("reports") / scenario.id / "report.html"
    if out.is_dir():
        raise UsageError(f"--out {out} is a folder; give the HTML file's path")
    model = prepare_model(scenario, overrides)
    page = make_report(model, args.runs, args.seed, args.file, args.workers)
    path = write_atomic(out, page)
    print(
        f"Report written to {path} ({path.stat().st_size / 1024:,.0f} KiB): open it in any "
        "browser, no network needed."
    )
    return 0

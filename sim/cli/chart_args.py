"""`--format` and `--dpi`: the chart options of every command that writes charts.

Building the parser imports nothing heavy (tests/cli/test_startup.py): the options object is
made by `chart_options(args)`, which a command calls when it runs.
"""

from __future__ import annotations

import argparse
from typing import Any

CHART_FORMATS = ("png", "svg", "pdf")
"""As sim.outputs.charts.CHART_FORMATS (spelt out so the parser imports no matplotlib)."""
DEFAULT_DPI = 150
"""As sim.outputs.charts.RUN_DPI (tests/outputs/test_chart_meaning.py checks they agree)."""


def _dpi(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not a whole number") from None
    if not 10 <= value <= 2400:
        raise argparse.ArgumentTypeError(f"the dpi must be between 10 and 2400, got {value}")
    return value


def add_chart_arguments(parser: argparse.ArgumentParser, *, formats: bool = True) -> None:
    """`--format png|svg|pdf` (unless `formats` is False: the HTML report embeds PNGs) and
    `--dpi N` (default 150, sharp on a slide)."""
    if formats:
        parser.add_argument(
            "--format",
            choices=CHART_FORMATS,
            default="png",
            dest="chart_format",
            help="chart file format (default png; the suffix of each chart's name follows it)",
        )
    parser.add_argument(
        "--dpi",
        type=_dpi,
        default=DEFAULT_DPI,
        metavar="N",
        help=f"chart resolution in dots per inch (default {DEFAULT_DPI}; PNG size, and images "
        "inside SVG and PDF)",
    )


def chart_options(args: argparse.Namespace) -> Any:
    """The `sim.outputs.charts.ChartOptions` that `--format` and `--dpi` ask for."""
    from sim.outputs.charts import ChartOptions

    return ChartOptions(
        format=getattr(args, "chart_format", "png"), dpi=getattr(args, "dpi", DEFAULT_DPI)
    )

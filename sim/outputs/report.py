"""`escalation report`: one self-contained HTML file with the scenario, its results and charts.

Charts are PNGs embedded as data URIs, the stylesheet is inline (with a print stylesheet) and a
Content-Security-Policy forbids every fetch, so the page opens offline and never touches the
network. Every piece of scenario text is escaped; teaching notes are rendered by markdown-it (a
dependency of rich) with raw HTML and images switched off. The page has no timestamp: the same
scenario, parameters, runs and seed give the same bytes.
"""

from __future__ import annotations

import shlex
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sim import __version__
from sim.files import write_atomic
from sim.format.scenario import Scenario
from sim.model.compiled import Model
from sim.outputs.report_html import CSP, CSS, esc, figure_html, markdown_html, section
from sim.outputs.report_results import comparison_html, outcomes_section, results_detail
from sim.outputs.report_scenario import (
    actors_section,
    ladder_section,
    parameters_section,
    sources_section,
    state_section,
)
from sim.outputs.report_text import (
    describe_policy,
    fmt,
    fmt_signed,
    model_overrides,
    overrides_text,
    settings_text,
)
from sim.results import Results

if TYPE_CHECKING:
    from concurrent.futures import Executor

__all__ = [
    "CHART_CAPTIONS",
    "CSP",
    "CSS",
    "build_report",
    "compare_section",
    "describe_policy",
    "fmt",
    "fmt_signed",
    "make_report",
    "markdown_html",
    "overrides_text",
    "play_command",
    "render_charts",
    "write_atomic",
]

CHART_CAPTIONS = {
    "outcomes.png": "How the crisis ends: probability of each outcome, bars show 95% Wilson "
    "intervals.",
    "rung_occupancy.png": "Where the runs are, step by step: the rung of the runs still going and "
    "the outcomes of those that ended.",
    "steps.png": "When the runs end, by outcome.",
    "peak_rung.png": "The highest rung each run reached.",
}


def render_charts(draw: Any, *args: Any) -> dict[str, bytes]:
    """Run a chart writer (`write_run_charts`-like: args..., out_dir -> paths) in a temporary
    folder; returns each chart's file name and PNG bytes."""
    with tempfile.TemporaryDirectory(prefix="escalation-report-") as tmp:
        paths = draw(*args, Path(tmp))
        return {Path(p).name: Path(p).read_bytes() for p in paths}


def compare_section(
    scenario: Scenario, model: Model, runs: int, seed: int, executor: Executor | None = None
) -> str | None:
    """HOOK for `escalation compare`: the doctrines of every actor that has `alternatives`, side
    by side (common random numbers), their blocks on `executor` if given. Returns None when
    `sim.analysis.compare` is not importable or no actor has alternatives."""
    try:
        from sim.analysis.compare import compare_policies
    except ImportError:
        return None
    actors = [a for a in scenario.actors if scenario.alternatives.get(a)]
    if not actors:
        return None
    try:
        from sim.outputs.compare_charts import write_compare_charts
    except ImportError:
        write_compare_charts = None
    parts = []
    for actor in actors:
        comparison = compare_policies(
            scenario, actor, runs, seed, dict(model.parameters), executor=executor
        )
        figures = ""
        if write_compare_charts is not None:
            charts = render_charts(write_compare_charts, comparison)
            caption = f"{scenario.actors[actor].label}: doctrines compared"
            figures = "".join(figure_html(data, name, caption) for name, data in charts.items())
        parts.append(comparison_html(scenario, model, actor, comparison, runs, seed, figures))
    return "".join(parts)


# --- the page ----------------------------------------------------------------------------------


def play_command(file: str, model: Model) -> str:
    """The "play it yourself" command: the scenario as given, its first actor and the overrides,
    each quoted for a POSIX shell, so that it runs as shown and does nothing else."""
    actor = model.scenario.turn_order[0]
    return f"escalation play {shlex.quote(file)} --as {shlex.quote(actor)}{overrides_text(model)}"


def build_report(
    results: Results, charts: Mapping[str, bytes], file: str, compare_html: str | None = None
) -> str:
    """The whole page as a string (no I/O); `file` is the scenario as given on the command line."""
    m, s = results.model, results.model.scenario
    quoted = shlex.quote(file)
    command = (
        f"escalation report {quoted} --runs {results.runs} --seed {results.seed}{overrides_text(m)}"
    )
    sections = []
    sources = sources_section(s)
    if sources:
        sections.append(sources)
    if s.teaching_notes.strip():
        sections.append(
            section(
                "notes",
                "Teaching notes",
                f'<div class="notes">{markdown_html(s.teaching_notes)}</div>',
            )
        )
    sections.append(outcomes_section(results))
    figures = "".join(
        figure_html(charts[name], name, CHART_CAPTIONS.get(name, name)) for name in charts
    )
    sections.append(section("charts", "Charts", figures + results_detail(results)))
    if compare_html:
        sections.append(section("compare", "Doctrines compared", compare_html))
    sections.append(ladder_section(results))
    sections.append(actors_section(s, m.parameters))
    sections.append(parameters_section(m))
    sections.append(state_section(s))
    play = play_command(file, m)
    sections.append(
        section(
            "reproduce",
            "Reproduce",
            (
                f"<p>This page was made by</p><pre><code>{esc(command)}</code></pre>"
                f"<p>Seed {results.seed}, {results.runs:,} runs, scenario sha256 "
                f"<code>{m.sha256}</code>, escalation-sim {esc(__version__)}. The same scenario, "
                "parameters, runs and seed give the same numbers on any machine, whatever the "
                "number of workers. Play the crisis "
                f"yourself:</p><pre><code>{esc(play)}</code></pre>"
            ),
        )
    )
    toc = "".join(
        f'<li><a href="#{anchor}">{esc(title)}</a></li>'
        for anchor, title in (
            ("sources", "Sources"),
            ("notes", "Teaching notes"),
            ("outcomes", "Outcomes"),
            ("charts", "Charts"),
            ("compare", "Doctrines compared"),
            ("ladder", "Ladder"),
            ("actors", "Actors and options"),
            ("parameters", "Parameters"),
            ("state", "State"),
            ("reproduce", "Reproduce"),
        )
        if f'id="{anchor}"' in "".join(sections)
    )
    header = (
        f"<header><h1>{esc(s.title)}</h1>"
        f'<p class="summary">{esc(s.summary)}</p>'
        f'<p class="meta">Scenario <code>{esc(s.id)}</code> · {results.runs:,} runs · seed '
        f"{results.seed} · parameters: {esc(settings_text(model_overrides(m)))} · "
        f"escalation-sim {esc(__version__)}</p></header>"
    )
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        f'<meta http-equiv="Content-Security-Policy" content="{CSP}">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f'<meta name="generator" content="escalation-sim {esc(__version__)}">'
        '<link rel="icon" href="data:,">'
        f"<title>{esc(s.title)} – escalation-sim report</title><style>{CSS}</style></head>\n"
        f'<body><main>{header}<nav class="toc"><strong>Contents</strong><ol>{toc}</ol></nav>\n'
        + "\n".join(sections)
        + "\n</main></body></html>\n"
    )


def make_report(
    model: Model,
    runs: int,
    seed: int,
    file: str,
    workers: int = 1,
    progress: Callable[[int], None] | None = None,
    stage: Callable[[str], None] | None = None,
    executor: Executor | None = None,
) -> str:
    """Simulate, draw every `run` chart, add the comparison section, and build the page.
    `progress` is told the runs done; `stage` the name of each later stage of the work. With
    `executor` (sim.engine.executors), every run goes there and `workers` is not used.

    Where it can fork (`can_fork`: no other thread, such as a progress bar's or an executor's),
    a forked copy draws the `run` charts while this process compares the doctrines and draws
    theirs (`beside`): the same page, sooner."""
    from sim.engine.runner import run_monte_carlo
    from sim.outputs.charts import beside, can_fork, write_run_charts

    results = run_monte_carlo(model, runs, seed, workers, progress=progress, executor=executor)

    def run_charts() -> dict[str, bytes]:
        return render_charts(write_run_charts, results)

    def comparison() -> str | None:
        return compare_section(model.scenario, model, runs, seed, executor)

    alternatives = any(model.scenario.alternatives.values())
    if can_fork():
        if stage is not None:
            both = " and comparing the doctrines" if alternatives else ""
            stage(f"{model.scenario.id}: drawing the charts{both}")
        charts, compare_html = beside(run_charts, comparison)
    else:
        if stage is not None:
            stage(f"{model.scenario.id}: drawing the charts")
        charts = run_charts()
        if stage is not None and alternatives:
            stage(f"{model.scenario.id}: comparing the doctrines")
        compare_html = comparison()
    return build_report(results, charts, file, compare_html)

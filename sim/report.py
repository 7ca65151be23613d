"""`escalation report`: one self-contained HTML file with the scenario, its results and charts.

Charts are PNGs embedded as data URIs, the stylesheet is inline (with a print stylesheet) and a
Content-Security-Policy forbids every fetch, so the page opens offline and never touches the
network. Every piece of scenario text is escaped; teaching notes are rendered by markdown-it (a
dependency of rich) with raw HTML and images switched off. The page has no timestamp: the same
scenario, parameters, runs and seed give the same bytes.
"""

from __future__ import annotations

import base64
import html
import math
import os
import shlex
import struct
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from sim import __version__
from sim.model import Model
from sim.results import Results
from sim.scenario import Effects, Option, Scenario

CSP = "default-src 'none'; img-src data:; style-src 'unsafe-inline'"

CHART_CAPTIONS = {
    "outcomes.png": "How the crisis ends: probability of each outcome, bars show 95% Wilson "
    "intervals.",
    "rung_occupancy.png": "Where the runs are, step by step: the rung of the runs still going and "
    "the outcomes of those that ended.",
    "steps.png": "When the runs end, by outcome.",
    "peak_rung.png": "The highest rung each run reached.",
}

CSS = """
:root { --ink: #1d1f23; --muted: #5c6370; --rule: #d8dbe0; --soft: #f4f5f7; --accent: #9c2f1a; }
* { box-sizing: border-box; }
html { -webkit-text-size-adjust: 100%; }
body { margin: 0; color: var(--ink); background: #fff;
  font: 16px/1.55 system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial,
  sans-serif; }
main { max-width: 62rem; margin: 0 auto; padding: 2rem 1.25rem 4rem; }
h1 { font-size: 1.9rem; line-height: 1.2; margin: 0 0 .4rem; }
h2 { font-size: 1.35rem; margin: 2.6rem 0 .8rem; padding-bottom: .25rem;
  border-bottom: 2px solid var(--rule); }
h3 { font-size: 1.1rem; margin: 1.8rem 0 .5rem; }
p, ul, ol { margin: .5rem 0 .9rem; }
a { color: var(--accent); }
.summary { font-size: 1.08rem; }
.meta, .muted, figcaption { color: var(--muted); font-size: .9rem; }
nav.toc { background: var(--soft); border-radius: 6px; padding: .6rem 1rem; margin: 1.4rem 0; }
nav.toc ol { margin: .2rem 0; padding-left: 1.4rem; columns: 2; }
div.table { overflow-x: auto; margin: .6rem 0 1.2rem; }
table { border-collapse: collapse; width: 100%; font-size: .92rem; }
th, td { text-align: left; vertical-align: top; padding: .35rem .55rem;
  border-bottom: 1px solid var(--rule); }
thead th { background: var(--soft); border-bottom: 2px solid #b9bec7; }
.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
tr.current td { font-weight: 600; background: #fff4e5; }
code { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; font-size: .86em;
  background: var(--soft); padding: .05em .3em; border-radius: 3px; overflow-wrap: break-word; }
td:first-child code { white-space: nowrap; }
pre { background: var(--soft); padding: .7rem 1rem; border-radius: 6px; overflow-x: auto;
  white-space: pre-wrap; }
pre code { background: none; padding: 0; }
ul.branches { margin: .3rem 0 0; padding-left: 1.1rem; }
.doc { color: var(--muted); font-size: .88rem; display: block; }
figure { margin: 1.4rem 0; }
figure img { display: block; max-width: 100%; height: auto; border: 1px solid var(--rule); }
.notes { border-left: 4px solid var(--rule); padding-left: 1rem; }
@media print {
  @page { margin: 15mm 13mm; }
  body { font-size: 10pt; }
  main { max-width: none; padding: 0; }
  nav.toc { display: none; }
  h2, h3 { break-after: avoid; page-break-after: avoid; }
  figure, tr, pre, .keep { break-inside: avoid; page-break-inside: avoid; }
  figure img { border: none; max-height: 120mm; width: auto; }
  thead { display: table-header-group; }
  div.table { overflow: visible; }
  table { font-size: 8.5pt; }
  th, td { padding: .25rem .35rem; }
  .num, td:first-child code { white-space: normal; }
  thead th, code, pre, tr.current td { background: none; }
  a { color: inherit; text-decoration: none; }
}
"""


# --- text helpers shared with `play` ----------------------------------------------------------


def fmt(x: float) -> str:
    """A number as people write it: 2, 0.38, -25, 1.2e+06."""
    x = float(x)
    if not math.isfinite(x):
        return str(x)
    if abs(x) >= 1e6:
        return f"{x:.3g}"
    if abs(x - round(x)) < 1e-9:
        return str(int(round(x)))
    text = f"{x:.2f}".rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


def fmt_signed(x: float) -> str:
    text = fmt(x)
    return text if text.startswith("-") or text == "0" else f"+{text}"


def describe_policy(
    scenario: Scenario,
    actor: str,
    policy: Any = None,
    parameters: Mapping[str, float] | None = None,
) -> str:
    """How an actor chooses, in words (with the values of parameter names, when given)."""
    policy = policy if policy is not None else scenario.policies.get(actor)
    if policy is None:
        return "no policy: it never moves"
    if policy.kind == "fixed":
        return f"always '{policy.option}' when available, else its first available option"
    if policy.kind == "sequence":
        return f"the plan {' → '.join(policy.options)}, the last move repeating"
    if policy.kind == "table":
        other = scenario.actors[policy.respond_to].label
        return f"a table of responses to {other}'s latest move"
    rationality = getattr(policy, "rationality", None)
    if isinstance(rationality, (int, float)):
        shown = fmt(rationality)
    elif parameters and rationality in parameters:
        shown = f"{rationality} = {fmt(parameters[rationality])}"
    else:
        shown = str(rationality)
    if policy.kind == "logit":
        return f"a quantal-response (logit) choice over its utilities, rationality {shown}"
    if policy.kind == "strategic":
        lookahead = getattr(policy, "lookahead", None)
        horizon = "to the horizon" if lookahead is None else f"{lookahead} steps ahead"
        return (
            f"a quantal-response choice over expected payoffs, looking {horizon}, "
            f"rationality {shown}"
        )
    return f"a '{policy.kind}' policy"


# --- HTML pieces -------------------------------------------------------------------------------


def esc(text: Any) -> str:
    return html.escape(str(text), quote=True)


def expr_html(value: Any, signed: bool = False) -> str:
    """A number, true/false, or an expression in <code>."""
    if isinstance(value, bool):
        return f"<code>{str(value).lower()}</code>"
    if isinstance(value, (int, float)):
        return esc(fmt_signed(value) if signed else fmt(value))
    return f"<code>{esc(value)}</code>"


def markdown_html(text: str) -> str:
    """Teaching notes as HTML: CommonMark without raw HTML or images; headings start at h3."""
    from markdown_it import MarkdownIt

    md = MarkdownIt("commonmark", {"html": False}).disable("image")
    tokens = md.parse(text)
    for token in tokens:
        if token.type in ("heading_open", "heading_close"):
            token.tag = f"h{min(6, int(token.tag[1]) + 2)}"
    return md.renderer.render(tokens, md.options, {})


def _table(
    head: Sequence[str],
    rows: Sequence[Sequence[str]],
    num: Sequence[int] = (),
    classes: Sequence[str] | None = None,
) -> str:
    """An HTML table; cells are already HTML; columns in `num` are right-aligned numbers."""

    def cells(tag: str, values: Sequence[str]) -> str:
        return "".join(
            f"<{tag}{' class=num' if i in num else ''}>{v}</{tag}>" for i, v in enumerate(values)
        )

    body = []
    for r, row in enumerate(rows):
        cls = f' class="{classes[r]}"' if classes and classes[r] else ""
        body.append(f"<tr{cls}>{cells('td', row)}</tr>")
    return (
        f'<div class="table"><table><thead><tr>{cells("th", head)}</tr></thead>'
        f"<tbody>{''.join(body)}</tbody></table></div>"
    )


def _range(lo: float | None, hi: float | None) -> str:
    if lo is None and hi is None:
        return "any"
    if hi is None:
        return f"≥ {fmt(lo)}"
    if lo is None:
        return f"≤ {fmt(hi)}"
    return f"{fmt(lo)} – {fmt(hi)}"


def _pct(x: float) -> str:
    return f"{100 * x:.1f}%"


def _png_size(data: bytes) -> tuple[int, int]:
    return struct.unpack(">II", data[16:24])


def figure_html(data: bytes, alt: str, caption: str) -> str:
    width, height = _png_size(data)
    uri = "data:image/png;base64," + base64.b64encode(data).decode("ascii")
    return (
        f'<figure><img src="{uri}" alt="{esc(alt)}" width="{width}" height="{height}">'
        f"<figcaption>{esc(caption)}</figcaption></figure>"
    )


def render_charts(draw: Any, *args: Any) -> dict[str, bytes]:
    """Run a chart writer (`write_run_charts`-like: args..., out_dir -> paths) in a temporary
    folder; returns each chart's file name and PNG bytes."""
    with tempfile.TemporaryDirectory(prefix="escalation-report-") as tmp:
        paths = draw(*args, Path(tmp))
        return {Path(p).name: Path(p).read_bytes() for p in paths}


def _payoff_parts(payoffs: Mapping[str, Any]) -> list[str]:
    return [f"{esc(a)} {expr_html(v, signed=True)}" for a, v in payoffs.items()]


def _payoffs_html(payoffs: Mapping[str, Any]) -> str:
    return "; ".join(_payoff_parts(payoffs))


def _effects_html(effects: Effects) -> str:
    return "; ".join(_effect_parts(effects))


def _effect_parts(effects: Effects) -> list[str]:
    parts = []
    for name, value in effects.add.items():
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            parts.append(f"{esc(name)} {esc(fmt_signed(value))}")
        else:
            parts.append(f"{esc(name)} += {expr_html(value)}")
    parts += [f"{esc(name)} = {expr_html(value)}" for name, value in effects.set.items()]
    return parts


def _rung_html(scenario: Scenario, rung: Any) -> str:
    if rung is None:
        return '<span class="muted">unchanged</span>'
    r = scenario.rung_index(rung)
    return f"{r} {esc(scenario.ladder[r])}"


def _option_row(scenario: Scenario, option: Option, utility: Any) -> list[str]:
    what = f"<strong>{esc(option.label or option.id)}</strong> <code>{esc(option.id)}</code>"
    if option.doc:
        what += f'<span class="doc">{esc(option.doc)}</span>'
    consequences = []
    if option.payoffs:
        consequences.append(f"payoffs: {_payoffs_html(option.payoffs)}")
    if option.effects.add or option.effects.set:
        consequences.append(f"effects: {_effects_html(option.effects)}")
    cell = "<br>".join(consequences)
    if option.outcomes:
        items = []
        for b in option.outcomes:
            p = (
                "the rest"
                if b.p is None
                else (_pct(b.p) if isinstance(b.p, (int, float)) else expr_html(b.p))
            )
            extra = []
            if b.rung is not None:
                extra.append(f"rung {_rung_html(scenario, b.rung)}")
            if b.payoffs:
                extra.append(_payoffs_html(b.payoffs))
            if b.effects.add or b.effects.set:
                extra.append(_effects_html(b.effects))
            tail = f": {'; '.join(extra)}" if extra else ""
            items.append(f"<li>{esc(b.label or b.id)} ({p}){tail}</li>")
        cell += f'<ul class="branches">{"".join(items)}</ul>'
    requires = "always" if option.requires is True else expr_html(option.requires)
    row = [what, _rung_html(scenario, option.rung), requires, cell or "-"]
    if utility is not None:
        row.append(expr_html(utility))
    return row


# --- sections ----------------------------------------------------------------------------------


def _section(anchor: str, title: str, body: str) -> str:
    return f'<section id="{anchor}"><h2>{esc(title)}</h2>{body}</section>'


def _outcomes_section(results: Results) -> str:
    m, s = results.model, results.model.scenario
    lo, hi = results.intervals()
    rows = []
    for i, oid in enumerate(m.outcome_ids):
        terminal = s.outcomes.get(oid)
        when = (
            expr_html(terminal.when)
            if terminal is not None
            else f"the horizon ({s.horizon} {esc(s.step_label)}s)"
        )
        pays = _payoffs_html(terminal.payoffs) if terminal is not None and terminal.payoffs else ""
        rows.append(
            [
                f"<strong>{esc(s.outcome_label(oid))}</strong> <code>{esc(oid)}</code>",
                when,
                pays,
                _pct(results.probabilities[i]),
                f"{_pct(lo[i])} – {_pct(hi[i])}",
                f"{int(results.outcome_counts[i]):,}",
            ]
        )
    table = _table(
        ["outcome", "when", "payoffs", "probability", "95% interval", "runs"], rows, num=(3, 4, 5)
    )
    steps = results.steps_summary()
    text = (
        f"<p>{results.runs:,} runs, seed {results.seed}. Conditions are checked after every "
        "move, in this order; the first that holds ends the run. "
        f"{esc(s.step_label.capitalize())}s to the end: mean {steps['mean']:.1f}, "
        f"median {steps['p50']}, 5%–95% {steps['p05']}–{steps['p95']} (horizon {s.horizon}).</p>"
    )
    return _section("outcomes", "Outcomes", text + table)


def _results_detail(results: Results) -> str:
    m, s = results.model, results.model.scenario
    plo, phi = results.payoff_interval()
    shares = results.move_shares()
    rows = []
    for a, actor in enumerate(m.actors):
        moves = ", ".join(f"{esc(k)} {_pct(v)}" for k, v in shares.get(actor, {}).items() if v)
        rows.append(
            [
                esc(s.actors[actor].label),
                fmt(results.payoff_mean[a]),
                f"{fmt(plo[a])} to {fmt(phi[a])}",
                moves,
            ]
        )
    body = "<h3>Payoffs and moves</h3>" + _table(
        ["actor", "mean payoff", "95% interval", "share of its moves"], rows, num=(1, 2)
    )
    if m.state_names:
        rows = [
            [
                f"<code>{esc(name)}</code>",
                fmt(q["mean"]),
                fmt(q["p05"]),
                fmt(q["p50"]),
                fmt(q["p95"]),
            ]
            for name, q in results.state_summary().items()
        ]
        body += "<h3>State at the end of the runs</h3>" + _table(
            ["variable", "mean", "5%", "median", "95%"], rows, num=(1, 2, 3, 4)
        )
    return body


def _parameters_section(model: Model) -> str:
    s = model.scenario
    if not s.parameters:
        return _section("parameters", "Parameters", "<p>This scenario has no parameters.</p>")
    rows = []
    for name, p in s.parameters.items():
        value = model.parameters[name]
        shown = fmt(value)
        if value != p.value:
            shown = f"<strong>{shown}</strong> (default {fmt(p.value)})"
        rows.append(
            [
                f"<code>{esc(name)}</code>",
                shown,
                _range(p.min, p.max),
                esc(p.doc or p.label or ""),
            ]
        )
    text = (
        "<p>The knobs of the model: change them with <code>--set NAME=VALUE</code>, sweep "
        "them with <code>escalation sweep</code>.</p>"
    )
    return _section(
        "parameters",
        "Parameters",
        text + _table(["parameter", "value", "range", "meaning"], rows, num=(1,)),
    )


def _state_section(scenario: Scenario) -> str:
    if not scenario.state:
        return ""
    rows = []
    for name, v in scenario.state.items():
        rng = _range(v.min, v.max)
        rows.append(
            [
                f"<code>{esc(name)}</code>",
                fmt(v.initial),
                rng + (", whole numbers" if v.integer else ""),
                esc(v.doc or v.label or ""),
            ]
        )
    text = _table(["variable", "initial", "range", "meaning"], rows, num=(1,))
    step = scenario.every_step
    after = [f"<li>{part}</li>" for part in _effect_parts(step.effects)]
    after += [f"<li>payoff {part}</li>" for part in _payoff_parts(step.payoffs)]
    if after:
        text += (
            f"<p>After every {esc(scenario.step_label)}, once all actors have moved (right-hand "
            f"sides read the state before the change):</p><ul>{''.join(after)}</ul>"
        )
    return _section("state", "State of the crisis", text)


def _ladder_section(results: Results) -> str:
    s = results.model.scenario
    initial = s.rung_index(s.initial_rung)
    on_rung: dict[int, list[str]] = {}
    for actor in s.turn_order:
        for option in s.options.get(actor, []):
            if option.rung is not None:
                on_rung.setdefault(s.rung_index(option.rung), []).append(
                    f"{esc(s.actors[actor].label)}: {esc(option.label or option.id)}"
                )
    peak = results.peak_hist / max(results.runs, 1)
    rows, classes = [], []
    for r in reversed(range(len(s.ladder))):
        name = esc(s.ladder[r]) + (" <em>(start)</em>" if r == initial else "")
        rows.append([str(r), name, "<br>".join(on_rung.get(r, [])), _pct(peak[r])])
        classes.append("current" if r == initial else "")
    text = (
        f"<p>Rungs from the highest down; the crisis starts on rung {initial}. A move sets the "
        "rung of the option (or of the branch drawn).</p>"
    )
    return _section(
        "ladder",
        "The escalation ladder",
        text
        + _table(
            ["rung", "name", "options that move here", "runs peaking here"],
            rows,
            num=(0, 3),
            classes=classes,
        ),
    )


def _actors_section(scenario: Scenario, parameters: Mapping[str, float]) -> str:
    parts = [
        f"<p>Each {esc(scenario.step_label)} the actors move in this order: "
        f"{esc(', '.join(scenario.actors[a].label for a in scenario.turn_order))}.</p>"
    ]
    for actor, info in scenario.actors.items():
        policy = scenario.policies.get(actor)
        utilities = policy.utilities if policy is not None and policy.kind == "logit" else None
        parts.append(
            f'<h3 id="actor-{esc(actor)}">{esc(info.label)} <code>{esc(actor)}</code></h3>'
        )
        if info.doc:
            parts.append(f"<p>{esc(info.doc)}</p>")
        policy_text = describe_policy(scenario, actor, parameters=parameters)
        parts.append(f"<p>Doctrine: {esc(policy_text)}.</p>")
        options = scenario.options.get(actor, [])
        if options:
            head = ["option", "rung", "requires", "consequences"]
            if utilities is not None:
                head.append("utility")
            rows = [
                _option_row(scenario, o, None if utilities is None else utilities.get(o.id))
                for o in options
            ]
            parts.append(_table(head, rows))
        if policy is not None and policy.kind == "table":
            menu = [o.id for o in options]
            rows = [
                [esc(row)] + [expr_html(policy.table[row].get(o, 0)) for o in menu]
                for row in policy.table
            ]
            parts.append(
                f"<p>Response table (rows: {esc(scenario.actors[policy.respond_to].label)}"
                "'s latest move):</p>" + _table(["after", *map(esc, menu)], rows)
            )
        for name, alt in scenario.alternatives.get(actor, {}).items():
            parts.append(
                f"<p>Alternative doctrine <code>{esc(name)}</code>: "
                f"{esc(describe_policy(scenario, actor, alt, parameters))}.</p>"
            )
    return _section("actors", "Actors and their options", "".join(parts))


def compare_section(scenario: Scenario, model: Model, runs: int, seed: int) -> str | None:
    """HOOK for `escalation compare`: the doctrines of every actor that has `alternatives`, side
    by side (common random numbers). Returns None when `sim.compare` is not importable or no
    actor has alternatives."""
    try:
        from sim.compare import compare_policies
    except ImportError:
        return None
    actors = [a for a in scenario.actors if scenario.alternatives.get(a)]
    if not actors:
        return None
    try:
        from sim.compare_charts import write_compare_charts
    except ImportError:
        write_compare_charts = None
    s, parts = scenario, []
    for actor in actors:
        comparison = compare_policies(scenario, actor, runs, seed, dict(model.parameters))
        a = model.actor_index(actor)
        cols = comparison.columns
        named = scenario.alternatives[actor]
        rows = []
        for o, oid in enumerate(model.outcome_ids):
            cells = []
            for col in cols:
                lo, hi = col.results.intervals()
                cells.append(
                    f"{_pct(col.results.probabilities[o])}<br><span class=muted>"
                    f"{_pct(lo[o])} – {_pct(hi[o])}</span>"
                )
            rows.append([esc(s.outcome_label(oid)), *cells])
        pay = []
        for col in cols:
            plo, phi = col.results.payoff_interval()
            pay.append(
                f"{fmt(col.results.payoff_mean[a])}<br><span class=muted>{fmt(plo[a])} "
                f"to {fmt(phi[a])}</span>"
            )
        rows.append([f"payoff of {esc(s.actors[actor].label)}", *pay])
        table = _table(
            ["", *[f"<code>{esc(c.name)}</code>" for c in cols]],
            rows,
            num=tuple(range(1, len(cols) + 1)),
        )
        rec = comparison.recommendation()
        doctrines = "".join(
            f"<li><code>{esc(c.name)}</code>: "
            + esc(describe_policy(s, actor, named.get(c.name), model.parameters))
            + "</li>"
            for c in cols
        )
        text = (
            f"<p>{runs:,} runs per doctrine, seed {seed}, common random numbers. The highest "
            f"expected payoff: <code>{esc(rec['best'])}</code> ({fmt(rec['expected_payoff'])})"
            + (
                ""
                if rec.get("separated", True)
                else f", not separable from <code>{esc(rec['runner_up'])}</code> at 95%"
            )
            + f".</p><ul>{doctrines}</ul>"
        )
        figures = ""
        if write_compare_charts is not None:
            charts = render_charts(write_compare_charts, comparison)
            figures = "".join(
                figure_html(data, name, f"{s.actors[actor].label}: doctrines compared")
                for name, data in charts.items()
            )
        parts.append(f"<h3>{esc(s.actors[actor].label)}</h3>{text}{table}{figures}")
    return "".join(parts)


# --- the page ----------------------------------------------------------------------------------


def overrides_text(model: Model) -> str:
    """` --set NAME=VALUE` for every parameter that differs from the scenario's value."""
    defaults = model.scenario.parameters
    return "".join(
        f" --set {k}={v:.15g}" for k, v in model.parameters.items() if v != defaults[k].value
    )


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
    if s.sources:
        items = "".join(f"<li><code>{esc(src)}</code></li>" for src in s.sources)
        sections.append(_section("sources", "Sources", f"<ul>{items}</ul>"))
    if s.teaching_notes.strip():
        sections.append(
            _section(
                "notes",
                "Teaching notes",
                f'<div class="notes">{markdown_html(s.teaching_notes)}</div>',
            )
        )
    sections.append(_outcomes_section(results))
    figures = "".join(
        figure_html(charts[name], name, CHART_CAPTIONS.get(name, name)) for name in charts
    )
    sections.append(_section("charts", "Charts", figures + _results_detail(results)))
    if compare_html:
        sections.append(_section("compare", "Doctrines compared", compare_html))
    sections.append(_ladder_section(results))
    sections.append(_actors_section(s, m.parameters))
    sections.append(_parameters_section(m))
    sections.append(_state_section(s))
    play = f"escalation play {quoted} --as {s.turn_order[0]}{overrides_text(m)}"
    sections.append(
        _section(
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
        f"{results.seed} · escalation-sim {esc(__version__)}</p></header>"
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


def make_report(model: Model, runs: int, seed: int, file: str, workers: int = 1) -> str:
    """Simulate, draw every `run` chart, add the comparison section, and build the page."""
    from sim.charts import write_run_charts
    from sim.runner import run_monte_carlo

    results = run_monte_carlo(model, runs, seed, workers)
    charts = render_charts(write_run_charts, results)
    compare_html = compare_section(model.scenario, model, runs, seed)
    return build_report(results, charts, file, compare_html)


def write_atomic(path: Path, text: str) -> Path:
    """Write through a temporary file in the same folder and rename it: never half a file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}-", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as f:
            f.write(text)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return path

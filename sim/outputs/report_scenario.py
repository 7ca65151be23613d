"""The report's sections on the scenario itself: sources, ladder, actors and options, parameters,
state."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sim.format import bibliography
from sim.format.scenario import Option, Scenario
from sim.model.compiled import Model
from sim.outputs.report_html import (
    effect_parts,
    effects_html,
    esc,
    expr_html,
    html_table,
    payoff_parts,
    payoffs_html,
    range_text,
    section,
)
from sim.outputs.report_text import describe_policy, pct, written, written_pct
from sim.results import Results


def sources_section(scenario: Scenario) -> str | None:
    """Each source's full citation (from the bibliography), with the key or name it is cited by;
    a source outside the bibliography as written. None without sources."""
    if not scenario.sources:
        return None
    items = []
    for source in scenario.sources:
        entry = bibliography.lookup(source)
        if entry is None:
            items.append(f"<li>{esc(source)}</li>")
            continue
        cited = f"<code>{esc(entry.key)}</code>"
        if source.strip() != entry.key:
            cited += f", cited as <code>{esc(source)}</code>"
        items.append(
            f"<li>{esc(entry.citation())} "
            f'<span class="muted">(article {esc(entry.number)}: {cited})</span></li>'
        )
    note = (
        '<p class="muted">Summaries of the articles and the quotations the scenarios use: '
        "docs/sources.md, or the bibliography shipped in the package "
        "(sim/format/bibliography.yaml).</p>"
    )
    return section("sources", "Sources", f"<ul>{''.join(items)}</ul>{note}")


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
        consequences.append(f"payoffs: {payoffs_html(option.payoffs)}")
    if option.effects.add or option.effects.set:
        consequences.append(f"effects: {effects_html(option.effects)}")
    cell = "<br>".join(consequences)
    if option.outcomes:
        items = []
        for b in option.outcomes:
            p = (
                "the rest"
                if b.p is None
                else (written_pct(b.p) if isinstance(b.p, (int, float)) else expr_html(b.p))
            )
            extra = []
            if b.rung is not None:
                extra.append(f"rung {_rung_html(scenario, b.rung)}")
            if b.payoffs:
                extra.append(payoffs_html(b.payoffs))
            if b.effects.add or b.effects.set:
                extra.append(effects_html(b.effects))
            tail = f": {'; '.join(extra)}" if extra else ""
            items.append(f"<li>{esc(b.label or b.id)} ({p}){tail}</li>")
        cell += f'<ul class="branches">{"".join(items)}</ul>'
    requires = "always" if option.requires is True else expr_html(option.requires)
    row = [what, _rung_html(scenario, option.rung), requires, cell or "-"]
    if utility is not None:
        row.append(expr_html(utility))
    return row


def ladder_section(results: Results) -> str:
    """The ladder from the top: the options moving to each rung, the share of runs peaking there."""
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
        rows.append([str(r), name, "<br>".join(on_rung.get(r, [])), pct(peak[r])])
        classes.append("current" if r == initial else "")
    text = (
        f"<p>Rungs from the highest down; the crisis starts on rung {initial}. A move sets the "
        "rung of the option (or of the branch drawn).</p>"
    )
    return section(
        "ladder",
        "The escalation ladder",
        text
        + html_table(
            ["rung", "name", "options that move here", "runs peaking here"],
            rows,
            num=(0, 3),
            classes=classes,
        ),
    )


def actors_section(scenario: Scenario, parameters: Mapping[str, float]) -> str:
    """Each actor: its doctrine in words, its options and their consequences, its alternatives."""
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
            parts.append(html_table(head, rows))
        if policy is not None and policy.kind == "table":
            menu = [o.id for o in options]
            rows = [
                [esc(row)] + [expr_html(policy.table[row].get(o, 0)) for o in menu]
                for row in policy.table
            ]
            parts.append(
                f"<p>Response table (rows: {esc(scenario.actors[policy.respond_to].label)}"
                "'s latest move):</p>" + html_table(["after", *map(esc, menu)], rows)
            )
        for name, alt in scenario.alternatives.get(actor, {}).items():
            parts.append(
                f"<p>Alternative doctrine <code>{esc(name)}</code>: "
                f"{esc(describe_policy(scenario, actor, alt, parameters))}.</p>"
            )
    return section("actors", "Actors and their options", "".join(parts))


def parameters_section(model: Model) -> str:
    """The parameters with their values (overrides in bold), ranges and meanings."""
    s = model.scenario
    if not s.parameters:
        return section("parameters", "Parameters", "<p>This scenario has no parameters.</p>")
    rows = []
    for name, p in s.parameters.items():
        value = model.parameters[name]
        shown = written(value)
        if value != p.value:
            shown = f"<strong>{shown}</strong> (default {written(p.value)})"
        rows.append(
            [
                f"<code>{esc(name)}</code>",
                shown,
                range_text(p.min, p.max),
                esc(p.doc or p.label or ""),
            ]
        )
    text = (
        "<p>The knobs of the model: change them with <code>--set NAME=VALUE</code>, sweep "
        "them with <code>escalation sweep</code>.</p>"
    )
    return section(
        "parameters",
        "Parameters",
        text + html_table(["parameter", "value", "range", "meaning"], rows, num=(1,)),
    )


def state_section(scenario: Scenario) -> str:
    """The state variables and what happens to them after every step; empty without state."""
    if not scenario.state:
        return ""
    rows = []
    for name, v in scenario.state.items():
        rng = range_text(v.min, v.max)
        rows.append(
            [
                f"<code>{esc(name)}</code>",
                written(v.initial),
                rng + (", whole numbers" if v.integer else ""),
                esc(v.doc or v.label or ""),
            ]
        )
    text = html_table(["variable", "initial", "range", "meaning"], rows, num=(1,))
    step = scenario.every_step
    after = [f"<li>{part}</li>" for part in effect_parts(step.effects)]
    after += [f"<li>payoff {part}</li>" for part in payoff_parts(step.payoffs)]
    if after:
        text += (
            f"<p>After every {esc(scenario.step_label)}, once all actors have moved (right-hand "
            f"sides read the state before the change):</p><ul>{''.join(after)}</ul>"
        )
    return section("state", "State of the crisis", text)

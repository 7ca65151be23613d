"""Beliefs at information sets, as lines of text (`exact --beliefs`, `run --beliefs`, `trace`)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence


def _value(v: object) -> str:
    if isinstance(v, float):
        return f"{v:g}"
    return str(v)


def facts_text(facts: Mapping[str, object]) -> str:
    """`ordered=1, last_kh=rockets`: a state of affairs, compactly."""
    return ", ".join(f"{k}={_value(v)}" for k, v in facts.items()) or "nothing"


def belief_text(rows: Sequence[Mapping]) -> str:
    """`ordered=1 (69.0%); ordered=0 (31.0%)`."""
    return "; ".join(f"{facts_text(r['hidden'])} ({r['p']:.1%})" for r in rows)


def belief_lines(entries: Sequence[Mapping], limit: int = 50) -> list[str]:
    """One paragraph per information set reached with positive probability, likeliest first."""
    uncertain = [e for e in entries if e["reach"] > 0 and any(r["hidden"] for r in e["beliefs"])]
    reached = sorted(uncertain, key=lambda e: -e["reach"])
    if not reached:
        return ["No strategic actor is uncertain of anything: there are no beliefs to show."]
    lines = [
        f"Beliefs at the {len(reached):,} information sets the equilibrium reaches where a "
        "strategic actor does not see everything (likeliest first):"
    ]
    for e in reached[:limit]:
        seen = {k: v for k, v in e["sees"].items() if v != "none"}
        choice = ", ".join(f"{o} {p:.1%}" for o, p in e["choice"].items())
        lines += [
            f"- {e['actor']}, step {e['step']} (reached {e['reach']:.1%}), seeing "
            f"{facts_text(seen)}",
            f"    believes: {belief_text(e['beliefs'])}",
            f"    chooses:  {choice}",
        ]
    if len(reached) > limit:
        lines.append(f"... and {len(reached) - limit:,} more (all of them in --json)")
    return lines

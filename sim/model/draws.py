"""Where a compiled model makes random draws: for solvers that need every outcome enumerated."""

from __future__ import annotations

import ast
from collections.abc import Iterator

from sim.errors import ScenarioError
from sim.format.syntax import one_line, parse_expression
from sim.model.compiled import Located, Model
from sim.model.expr import RANDOM_DRAWS


def expressions(model: Model) -> Iterator[Located]:
    """Every compiled expression of the model, in file order."""
    for menu in model.options:
        for o in menu:
            if o.requires is not None:
                yield o.requires
            yield from (e for _, e in o.payoffs)
            yield from (e for _, e in o.effects.set + o.effects.add)
            for b in o.branches:
                if b.p is not None:
                    yield b.p
                yield from (e for _, e in b.payoffs)
                yield from (e for _, e in b.effects.set + b.effects.add)
    yield from (e for _, e in model.step_payoffs)
    yield from (e for _, e in model.step_effects.set + model.step_effects.add)
    for t in model.terminals:
        yield t.when
        yield from (e for _, e in t.payoffs)
    yield from (e for _, e in model.terminal_value)
    for tally in model.tallies:
        yield from (e for _, e in tally.payoffs)
    for policy in model.policies:
        if policy is not None:
            yield from policy.utilities


def refuse_random_draws(model: Model, purpose: str) -> None:
    """ScenarioError at the first random draw of the model: `purpose` needs none."""
    for expr in expressions(model):
        if expr.expr.uses_random:
            message = (
                f"{purpose} needs every outcome enumerated, but this expression makes a random "
                "draw; use outcome branches instead"
            )
            raise ScenarioError([expr.where.problem_at(expr.expr.random_offset or 0, message)])


def draw_offsets(source: str) -> list[tuple[str, int]]:
    """Random draws of an expression in evaluation order, with their 0-based character offsets."""
    stripped, lead = one_line(source)
    try:
        tree = parse_expression(stripped)
    except SyntaxError:
        return []
    out: list[tuple[str, int]] = []

    def visit(node: ast.AST) -> None:
        for child in ast.iter_child_nodes(node):
            visit(child)
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name)
            and node.func.id in RANDOM_DRAWS
        ):
            col = len(stripped.encode()[: node.col_offset].decode(errors="ignore"))
            out.append((node.func.id, col + lead))

    visit(tree.body)
    return out

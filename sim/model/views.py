"""An actor's view of one state, in words and numbers: for beliefs, `trace` and `play`."""

from __future__ import annotations

import numpy as np

from sim.model.compiled import KEEP, Model


def move_name(model: Model, mover: int, code: int) -> str:
    """The id of a true move code (`none` before the first move, `pass`)."""
    return "none" if code < -1 else "pass" if code < 0 else model.options[mover][code].id


def seen_label(model: Model, mover: int, row: int, code: int) -> str:
    """What a `last` row's code means: a true move (row = mover) or a viewer's label."""
    if row == mover:
        return move_name(model, mover, code)
    channel = next(c for c in model.channels if c.row == row)
    return "none" if code < -1 else "pass" if code < 0 else channel.labels[code]


def seen(model: Model, actor: int, x: np.ndarray, rung: int, last: np.ndarray) -> dict:
    """What `actor` sees of one state (columns x and last): the variables it sees, the rung and
    every actor's latest move as it saw it."""
    view = model.view_of(actor)
    out: dict = {model.state_names[v]: float(x[v]) for v in view.state}
    out["rung"] = int(rung)
    for mover, row in enumerate(view.last_rows):
        out[f"last_{model.actors[mover]}"] = seen_label(model, mover, row, int(last[row]))
    return out


def hidden_facts(model: Model, actor: int, x: np.ndarray, last: np.ndarray) -> tuple:
    """What `actor` does not see of one state: hidden variables, and the true moves behind
    the moves it saw under another label or not at all."""
    view = model.view_of(actor)
    facts = [(model.state_names[v], float(x[v])) for v in range(len(x)) if v not in view.state]
    facts += [
        (f"last_{model.actors[m]}", move_name(model, m, int(last[m])))
        for m, row in enumerate(view.last_rows)
        if row != m
    ]
    return tuple(facts)


def seen_by(model: Model, actor: int, code: int) -> dict[str, str | None]:
    """The viewers who saw move `code` of `actor` under another label (None: not at all)."""
    out = {}
    for c in model.channels:
        if c.mover != actor:
            continue
        seen_code = int(c.codes[code + 2])
        label = None if seen_code == KEEP else c.labels[seen_code]
        if label != model.options[actor][code].id:
            out[model.actors[c.viewer]] = label
    return out

"""Who sees what (DESIGN.md section 8.1): each actor's view of the state and of others' moves.

One definition for the checks, the compiler and the solvers: the state variables an actor sees,
the label under which it sees each option of another actor (None: it does not see that move),
and the label space of its `last_<mover>`.
"""

from __future__ import annotations

from sim.format.scenario import Option, Scenario

UNSEEN = None
"""`seen_as` value of a move the viewer does not see."""


def sees_state(scenario: Scenario, viewer: str, name: str) -> bool:
    """Whether `viewer` sees state variable `name` (no `visible_to`: everyone does)."""
    visible = scenario.state[name].visible_to
    return visible is None or viewer in visible


def hidden_state(scenario: Scenario, viewer: str) -> list[str]:
    """The state variables `viewer` does not see, in file order."""
    return [name for name in scenario.state if not sees_state(scenario, viewer, name)]


def label_of(option: Option, viewer: str, mover: str) -> str | None:
    """The label `viewer` sees when `mover` plays `option` (an actor sees its own moves)."""
    if viewer == mover:
        return option.id
    return option.seen_as.get(viewer, option.id)


def labels(scenario: Scenario, mover: str, viewer: str) -> tuple[str, ...]:
    """The distinct labels `viewer` can see of `mover`'s moves, in menu order."""
    menu = scenario.options.get(mover, [])
    seen = (label_of(o, viewer, mover) for o in menu)
    return tuple(dict.fromkeys(label for label in seen if label is not UNSEEN))


def sees_moves_as_they_are(scenario: Scenario, mover: str, viewer: str) -> bool:
    """True when `viewer` sees every move of `mover` under its own id (the perfect view)."""
    return all(label_of(o, viewer, mover) == o.id for o in scenario.options.get(mover, []))


def has_hidden_information(scenario: Scenario) -> bool:
    """True when some actor does not see some state variable or some move as it is."""
    if any(
        v.visible_to is not None and set(v.visible_to) != set(scenario.actors)
        for v in scenario.state.values()
    ):
        return True
    return any(
        not sees_moves_as_they_are(scenario, mover, viewer)
        for mover in scenario.options
        for viewer in scenario.actors
    )

"""Choice probabilities looked up by state: how a solved (strategic) actor chooses at run time.

A solver fills a `LookupTable` once; the engine and the exact solver read it like any other
policy, without knowing how it was solved.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from sim.errors import SimulationError
from sim.model.compiled import ActorView


def state_keys(x: np.ndarray, rung: np.ndarray, peak: np.ndarray, last: np.ndarray) -> np.ndarray:
    """One opaque, sortable key per state (its exact bits), for merging and look-up."""
    rows = np.ascontiguousarray(
        np.vstack([x, rung[None].astype(float), peak[None].astype(float), last.astype(float)]).T
    )
    return rows.view(np.dtype((np.void, rows.dtype.itemsize * rows.shape[1]))).ravel()


@dataclass(frozen=True)
class LookupTable:
    """Choice probabilities of the actors it covers at every state where they move."""

    choices: dict[tuple[int, int], tuple[np.ndarray, np.ndarray]]
    """(step, turn) -> (sorted state keys, probabilities (states, 1 + options); column 0 PASS)."""
    views: dict[tuple[int, int], ActorView] = field(default_factory=dict)
    """(step, turn) -> the mover's view, where choices are keyed by information set (the view's
    columns) rather than by the whole state."""

    def probabilities(
        self,
        step: int,
        turn: int,
        x: np.ndarray,
        rung: np.ndarray,
        peak: np.ndarray,
        last: np.ndarray,
    ) -> np.ndarray:
        """(1 + options, rows) choice probabilities for rows in the given states."""
        keys, probs = self.choices[(step, turn)]
        view = self.views.get((step, turn))
        if view is not None:
            x, last = x[list(view.state)], last[list(view.last_rows)]
        row_keys = state_keys(x, rung, peak, last)
        idx = np.searchsorted(keys, row_keys)
        idx = np.minimum(idx, keys.shape[0] - 1)
        if not (keys[idx] == row_keys).all():
            raise SimulationError(
                f"a run reached a state outside the solved game at step {step};"
                " please report this scenario"
            )
        return probs[idx].T

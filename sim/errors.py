"""Error types that carry a source position, so users see `file:line:col: message`."""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True, order=True)
class Problem:
    """One problem in an input file, located for the user (line and column are 1-based).

    Line 0 means no position in a file (a scenario built in Python): the message names the place.
    """

    file: str
    line: int
    col: int
    message: str

    def __str__(self) -> str:
        if self.line <= 0:
            return f"{self.file}: {self.message}"
        return f"{self.file}:{self.line}:{self.col}: {self.message}"


class ScenarioError(Exception):
    """Bad input: one or more located problems; the CLI prints them and exits with status 2."""

    def __init__(self, problems: Iterable[Problem]):
        self.problems = sorted(set(problems))
        super().__init__("\n".join(str(p) for p in self.problems))


class SimulationError(Exception):
    """A run-time violation of the model (e.g. branch probabilities that do not sum to 1)."""


class ExpressionError(Exception):
    """A rejected expression; `offset` is the 0-based column inside the expression text."""

    def __init__(self, message: str, offset: int = 0):
        self.offset = offset
        super().__init__(message)


def did_you_mean(name: str, candidates: Iterable[str]) -> str:
    """A ` (did you mean 'x'?)` suffix for a misspelt name, or an empty string."""
    close = difflib.get_close_matches(name, list(candidates), n=1, cutoff=0.6)
    return f" (did you mean '{close[0]}'?)" if close else ""

"""Source positions of every key and value of a YAML file, to report `file:line:col`."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sim.errors import Problem

Path = tuple[Any, ...]


@dataclass
class SourceMap:
    """Where each value (and each mapping key) of a loaded document sits in its file, 1-based."""

    file: str
    lines: Sequence[str] = ()
    values: dict[Path, tuple[int, int]] = field(default_factory=dict)
    keys: dict[Path, tuple[int, int]] = field(default_factory=dict)

    def locate(self, path: Path, key: bool = False) -> tuple[int, int]:
        """Position of the value at `path` (or of its key), else of its nearest located parent."""
        path = tuple(path)
        if key and path in self.keys:
            return self.keys[path]
        while path:
            if path in self.values:
                return self.values[path]
            if path in self.keys:
                return self.keys[path]
            path = path[:-1]
        return self.values.get((), (1, 1))

    def problem(self, path: Path, message: str, key: bool = False) -> Problem:
        line, col = self.locate(path, key)
        return Problem(self.file, line, col, message)

    def expression_problem(self, path: Path, offset: int, message: str) -> Problem:
        """A problem inside an expression string: its column counts from the string's start."""
        line, col = self.locate(path)
        if path in self.values and 0 < line <= len(self.lines):
            text = self.lines[line - 1]
            start = col - 1
            if start < len(text) and text[start] in "'\"":
                col += 1
            elif start < len(text) and text[start] in "|>":
                return Problem(self.file, line, col, message)
            col += offset
        return Problem(self.file, line, col, message)

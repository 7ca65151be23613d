"""Source positions of every key and value of a YAML file, to report `file:line:col`."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from itertools import islice
from typing import Any

from sim.errors import Problem

Path = tuple[Any, ...]


NO_FILE = "<scenario>"
"""The file name in problems of a scenario built or changed in Python."""


def dotted(path: Path) -> str:
    """A location as a dotted path, e.g. `options.us[2].outcomes[0].p` (`scenario` for the root)."""
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text or "scenario"


@dataclass
class SourceMap:
    """Where each value (and each mapping key) of a loaded document sits in its file, 1-based.

    A map with no positions (a scenario built or changed in Python) places each problem by its
    dotted path instead: `<scenario>: policies.us.option: unknown option 'gox'`.
    """

    file: str = NO_FILE
    lines: Sequence[str] = ()
    values: dict[Path, tuple[int, int]] = field(default_factory=dict)
    keys: dict[Path, tuple[int, int]] = field(default_factory=dict)
    loaded: str | None = None
    """Canonical JSON of the scenario as validated from this file (see sim/format/digest.py):
    the map, and the file's text as the scenario's hash, hold only for exactly this content."""

    @property
    def located(self) -> bool:
        """Whether this map knows positions in a file (else problems name dotted paths)."""
        return bool(self.values or self.keys)

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
        if not self.located:
            return self._unlocated(path, message)
        line, col = self.locate(path, key)
        return Problem(self.file, line, col, message)

    def expression_problem(self, path: Path, offset: int, message: str) -> Problem:
        """A problem inside an expression string, at the character `offset` of its text."""
        if not self.located:
            return self._unlocated(path, message)
        line, col = self.locate(path)
        if path in self.values and 0 < line <= len(self.lines):
            line, col = self._inside_scalar(line, col, offset)
        return Problem(self.file, line, col, message)

    def _unlocated(self, path: Path, message: str) -> Problem:
        """A problem without a file position (line 0): the message starts with its place."""
        return Problem(self.file, 0, 0, f"{dotted(path)}: {message}" if path else message)

    def _inside_scalar(self, line: int, col: int, offset: int) -> tuple[int, int]:
        """Where the `offset`-th character of the scalar starting at (line, col) is written.

        Follows YAML's quoting, escapes and line folding, so that a problem in a long expression
        written over several lines, quoted or as a block scalar, is placed on its own token.
        """
        text = self.lines[line - 1]
        start = col - 1
        if start >= len(text):
            return line, col
        first = text[start]
        if first in "|>":
            chars = self._block_chars(line - 1)
        elif first in "'\"":
            chars = self._flow_chars(line - 1, start + 1, first)
        else:
            chars = self._flow_chars(line - 1, start, "")
        found = next(islice(chars, max(offset, 0), None), None)
        if found is None:
            return line, col
        return found[0] + 1, found[1] + 1

    def _flow_chars(self, row: int, i: int, quote: str) -> Iterator[tuple[int, int]]:
        """(row, index) of each character of a plain or quoted scalar's value, 0-based."""
        while row < len(self.lines):
            chars = self.lines[row]
            end = len(chars.rstrip())  # trailing blanks fold with the line break
            while i < end:
                c = chars[i]
                if quote and c == quote and not (quote == "'" and chars[i + 1 : i + 2] == "'"):
                    return  # the closing quote
                if quote == '"' and c == "\\":
                    if i + 1 >= end:  # an escaped line break: no character
                        break
                    yield row, i
                    i += 2 + {"x": 2, "u": 4, "U": 8}.get(chars[i + 1], 0)
                    continue
                yield row, i
                i += 2 if quote == "'" and c == "'" else 1
            else:
                yield row, end  # the line break, folded into one space
            row += 1
            while row < len(self.lines) and not self.lines[row].strip():
                row += 1
            if row < len(self.lines):
                i = len(self.lines[row]) - len(self.lines[row].lstrip())

    def _block_chars(self, header: int) -> Iterator[tuple[int, int]]:
        """(row, index) of each character of a literal (|) or folded (>) block scalar."""
        indent = None
        for row in range(header + 1, len(self.lines)):
            chars = self.lines[row]
            if not chars.strip():
                yield row, 0
                continue
            lead = len(chars) - len(chars.lstrip())
            indent = lead if indent is None else indent
            if lead < indent:
                return
            for i in range(indent, len(chars)):
                yield row, i
            yield row, len(chars)  # the line break (a newline, or a space when folded)

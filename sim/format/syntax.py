"""One thread-safe parse of expression text into Python's AST, shared by every layer."""

from __future__ import annotations

import ast
import threading

from sim.format.quiet import warnings_silenced

# CPython 3.11 keeps the AST constructor's recursion counter in state shared by every thread:
# two threads building trees at once (a garbage collection can switch threads midway) make
# ast.parse raise "SystemError: AST constructor recursion depth mismatch" (seen with 3.11.7; a
# stress test did not reproduce it with 3.10, 3.12 or 3.13). The web server compiles scenarios
# in a thread pool, so every parse of expression text goes through this lock.
_PARSE_LOCK = threading.RLock()


def one_line(text: str) -> tuple[str, int]:
    """The expression on one line (line breaks and tabs as spaces) without its leading blanks,
    and how many were cut: a column in the result plus that count is a column in `text`."""
    line = text.replace("\r", " ").replace("\n", " ").replace("\t", " ")
    stripped = line.lstrip()
    return stripped, len(line) - len(stripped)


def parse_expression(text: str) -> ast.Expression:
    """Parse `text` as one Python expression, one thread at a time, with warnings silenced."""
    with _PARSE_LOCK, warnings_silenced():
        return ast.parse(text, mode="eval")


def parse_source(text: str) -> ast.Module:
    """Parse `text` as a Python module (the package's own code), under the same lock."""
    with _PARSE_LOCK, warnings_silenced():
        return ast.parse(text)

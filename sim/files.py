"""The one atomic file writer: a reader never sees half a chart, CSV, JSON or HTML file."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO


def readable(tmp: str | Path) -> None:
    """Give a temporary file (mkstemp makes them 0600) the permissions of a normal new file."""
    mask = os.umask(0o022)
    os.umask(mask)
    os.chmod(tmp, 0o666 & ~mask)


def write_atomic(path: str | Path, content: bytes | str | Callable[[BinaryIO], None]) -> Path:
    """Write `content` (bytes, text as UTF-8, or a function that writes into a binary file) to a
    temporary file in the same folder, fsync it and rename it over `path`.

    On any failure (or a signal that unwinds the stack) the temporary file is removed and `path`
    keeps its old content, if it had one.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}-", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            if callable(content):
                content(f)
            else:
                f.write(content.encode("utf-8") if isinstance(content, str) else content)
            f.flush()
            os.fsync(f.fileno())
        readable(tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return path

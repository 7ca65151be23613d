"""Small helpers for files written atomically (temporary name, then rename)."""

from __future__ import annotations

import os
from pathlib import Path


def readable(tmp: str | Path) -> None:
    """Give a temporary file (mkstemp makes them 0600) the permissions of a normal new file."""
    mask = os.umask(0o022)
    os.umask(mask)
    os.chmod(tmp, 0o666 & ~mask)

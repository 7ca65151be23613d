"""Warnings silenced for a block, safely when several threads do it at once."""

from __future__ import annotations

import threading
import warnings
from collections.abc import Iterator
from contextlib import contextmanager

# `warnings.catch_warnings` saves the process-wide filter list on entry and puts it back on
# exit (before Python 3.14, and after it too unless the interpreter runs with context-aware
# warnings). Two threads interleaving (A enters, B enters, A leaves, B leaves) leave B's saved
# list, "ignore" included, installed for good: every later warning of the process is lost. The
# web server compiles and simulates in a thread pool, so every silenced block takes this lock.
# The filters are the process's, so while one thread's block is open, warnings raised by other
# threads are dropped too; and third-party code that calls catch_warnings itself is not
# serialised by this lock.
_LOCK = threading.RLock()


@contextmanager
def warnings_silenced() -> Iterator[None]:
    """Ignore warnings inside the block; one thread at a time, so the filters are restored."""
    with _LOCK, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield

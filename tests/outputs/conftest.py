"""Fixtures of the output tests."""

from __future__ import annotations

import os

import pytest


@pytest.fixture
def forks(monkeypatch) -> list[int]:
    """The pids of the processes this one forks from now on (`os.fork` recorded)."""
    pids: list[int] = []
    fork = os.fork

    def recorded() -> int:
        pid = fork()
        if pid:
            pids.append(pid)
        return pid

    monkeypatch.setattr(os, "fork", recorded)
    return pids

"""Silenced warnings stay silenced only inside their block, however many threads silence them."""

from __future__ import annotations

import ast
import threading
import time
import warnings
from pathlib import Path

import pytest

from sim.format.quiet import warnings_silenced

SIM = Path(__file__).resolve().parents[2] / "sim"


def _silence_in_threads(threads: int, hold: float) -> None:
    def work(delay: float) -> None:
        time.sleep(delay)
        with warnings_silenced():
            time.sleep(hold)

    pool = [threading.Thread(target=work, args=(i * hold / 3,)) for i in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()


def test_threads_silencing_at_once_leave_the_filters_as_they_were():
    # Staggered so that each block starts while another is open: with a bare
    # catch_warnings, the last one to leave puts back a list with "ignore" in it.
    before = list(warnings.filters)
    _silence_in_threads(threads=6, hold=0.03)
    assert warnings.filters == before
    with pytest.warns(UserWarning, match="still heard"):
        warnings.warn("still heard", UserWarning, stacklevel=1)


def test_a_warning_inside_the_block_is_not_raised_even_when_warnings_are_errors():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with warnings_silenced():
            warnings.warn("silenced", RuntimeWarning, stacklevel=1)
        with pytest.raises(RuntimeWarning):
            warnings.warn("heard again", RuntimeWarning, stacklevel=1)


def _catch_warnings_calls(path: Path) -> list[int]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    return [
        node.lineno
        for node in ast.walk(tree)
        if isinstance(node, ast.Call)
        and getattr(node.func, "attr", getattr(node.func, "id", None)) == "catch_warnings"
    ]


def test_the_package_silences_warnings_only_through_the_one_helper():
    found = {
        str(path.relative_to(SIM)): lines
        for path in SIM.rglob("*.py")
        if path.name != "quiet.py" and (lines := _catch_warnings_calls(path))
    }
    assert found == {}

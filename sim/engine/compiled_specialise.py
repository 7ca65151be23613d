"""The compiled kernel specialised to one model: its tables frozen into the machine code.

The kernel (sim/engine/compiled_kernel.py `run_batch`) reads a model from its arguments, so its
machine code is the same for every scenario and pays, at every step, for branches on table
entries whose values are fixed. Here the same source is compiled once per model with those
tables as module constants: numba freezes global arrays into the code, so LLVM knows the number
of actors, turns and options, each turn's actor and policy kind, and folds the branches that
cannot be taken. The operations left are exactly the generic kernel's, in the same order, so the
numbers are identical (tests/engine/test_compiled_specialised.py checks every bundled scenario).

A specialised kernel is written as a module of its own into the kernel's numba cache folder,
named by the sha256 of its tables and the kernel's source: `k_<digest>.py` (the source, with the
scalars as integer literals) beside `k_<digest>.npz` (the arrays, read with
`allow_pickle=False`). No text of the scenario reaches the source: only `int()` values and the
kernel's own body. numba caches the module's machine code beside it, so the compile (about ten
seconds) happens once per model and machine; each later process loads it in well under one.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import inspect
import logging
import os
import sys
import tempfile
import zipfile
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np

RUNTIME_ARGS = (
    "first_run", "n", "key", "ea", "fw", "ci", "f_scratch", "u_scratch", "i_scratch",
    "b_scratch", "tkeys", "out_outcome", "out_steps", "out_peak", "out_rung", "out_pay",
    "out_state", "occupancy", "ended", "move_counts",
)  # fmt: skip
"""Arguments that change from batch to batch (or process to process: `ea`, the address of
the model's expressions): the specialised kernel still takes these."""
SPECIALISE_RUNS = 5_000_000
"""From this many runs a Monte Carlo compiles the specialised kernel when none is cached: its
compile (about ten seconds) then costs less than the generic kernel's extra time (measured in
benchmarks/README.md). Below it, a cached one is still used."""
MAX_CONSTANT_BYTES = 1 << 20
"""Tables larger than this (a strategic scenario's long lookup tables) keep the generic kernel:
frozen into the code, they would make the compile slow and large (the bundled scenarios' tables
are 2 to 12 KB)."""
MAX_KERNELS = 64
"""Specialised kernels kept per kernel version (about 350 KB each with numba's cache of it);
beyond that the least recently used are removed when one is written."""
ENV = "ESCALATION_SPECIALISE"
"""`auto` (default: as above), `always` or `never`."""
_FORMAT = 1
log = logging.getLogger("sim.engine.compiled")
_LOADED: dict[str, Callable[..., Any]] = {}


def mode() -> str:
    """ESCALATION_SPECIALISE: auto, always or never (anything else is auto)."""
    value = os.environ.get(ENV, "auto").strip().lower()
    return value if value in ("always", "never") else "auto"


def specialised_run_batch(
    kernel: ModuleType, args: dict[str, Any], runs: int
) -> Callable[..., Any] | None:
    """A `run_batch` for this model's tables that takes only RUNTIME_ARGS, or None: the generic
    kernel should run (specialisation off, no cache folder, tables too large, or too few runs
    to pay a compile)."""
    how = mode()
    folder = _folder(kernel)
    if how == "never" or folder is None:
        return None
    constants = {k: v for k, v in args.items() if k not in RUNTIME_ARGS}
    if not all(isinstance(v, (np.ndarray, int, np.integer)) for v in constants.values()):
        return None  # a table this module cannot write as a literal: the generic kernel runs
    if sum(v.nbytes for v in constants.values() if isinstance(v, np.ndarray)) > MAX_CONSTANT_BYTES:
        return None
    name = "k_" + _digest(kernel, constants)
    if name in _LOADED:
        return _LOADED[name]
    source = folder / f"{name}.py"
    if not source.exists():
        if how == "auto" and runs < SPECIALISE_RUNS:
            return None
        _write(folder, name, kernel, constants)
        _prune(folder, keep=name)
    else:
        with contextlib.suppress(OSError):  # recently used, kept longest by _prune; not the
            os.utime(source.with_suffix(".npz"))  # .py, whose date older numba caches check
    try:
        _LOADED[name] = _import(name, source).run_batch
    except (OSError, ValueError, KeyError, zipfile.BadZipFile) as exc:  # a damaged pair
        log.warning("specialised kernel %s unreadable (%s): the generic kernel runs", name, exc)
        sys.modules.pop(f"sim_specialised_{name}", None)
        source.unlink(missing_ok=True)  # written again when next asked for
        return None
    return _LOADED[name]


def _folder(kernel: ModuleType) -> Path | None:
    if not kernel.CACHE:
        return None
    folder = Path(kernel._CACHE_DIR) / "specialised"
    try:
        folder.mkdir(exist_ok=True)
    except OSError:
        return None
    return folder if os.access(folder, os.W_OK) else None


def _digest(kernel: ModuleType, constants: dict[str, Any]) -> str:
    h = hashlib.sha256(f"format {_FORMAT}\n".encode())
    h.update(Path(kernel.__file__).read_bytes())
    h.update(Path(__file__).read_bytes())
    for key in sorted(constants):
        value = constants[key]
        if isinstance(value, np.ndarray):
            h.update(f"{key} {value.dtype.str} {value.shape}\n".encode())
            h.update(np.ascontiguousarray(value).tobytes())
        else:
            h.update(f"{key} int {int(value)}\n".encode())
    return h.hexdigest()[:32]


def module_source(kernel: ModuleType, constants: dict[str, Any]) -> str:
    """The specialised module's text: the kernel's helpers imported, the scalars as literals,
    the arrays read from the .npz beside it, and run_batch's body under a shorter signature."""
    function = kernel.run_batch.py_func
    text = inspect.getsource(function)
    head = "):  # fmt: skip\n"
    body = text[text.index(head) + len(head) :]
    used = sorted(n for n in function.__code__.co_names if n in vars(kernel) and n not in constants)
    arrays = sorted(k for k, v in constants.items() if isinstance(v, np.ndarray))
    scalars = sorted(k for k in constants if k not in arrays)
    lines = [
        '"""Generated by sim/engine/compiled_specialise.py: run_batch for one model."""',
        "import numpy as np",
        "from numba import njit",
        "",
        f"from {kernel.__name__} import {', '.join(used)}",
        "",
        "_tables = np.load(__file__[:-3] + '.npz', allow_pickle=False)",
        *(f"{k} = {int(constants[k])}" for k in scalars),
        *(f"{k} = _tables[{k!r}]" for k in arrays),
        "",
        "",
        '@njit(error_model="numpy", _nrt=False, cache=True)',
        f"def run_batch({', '.join(RUNTIME_ARGS)}):",
        body.rstrip() + "\n",
    ]
    return "\n".join(lines)


def _write(folder: Path, name: str, kernel: ModuleType, constants: dict[str, Any]) -> None:
    """The .npz, then the .py (its presence says the pair is whole), each renamed into place."""
    arrays = {k: v for k, v in constants.items() if isinstance(v, np.ndarray)}
    with tempfile.NamedTemporaryFile(dir=folder, suffix=".npz", delete=False) as f:
        np.savez(f, **arrays)
    os.replace(f.name, folder / f"{name}.npz")
    with tempfile.NamedTemporaryFile("w", dir=folder, suffix=".tmp", delete=False) as f:
        f.write(module_source(kernel, constants))
    os.replace(f.name, folder / f"{name}.py")


def _prune(folder: Path, keep: str) -> None:
    """Remove the least recently used kernels beyond MAX_KERNELS (never `keep`)."""

    def last_used(source: Path) -> float:
        try:
            return source.with_suffix(".npz").stat().st_mtime
        except OSError:
            return 0.0

    sources = sorted(folder.glob("k_*.py"), key=last_used, reverse=True)
    for old in sources[MAX_KERNELS:]:
        if old.stem == keep:
            continue
        for path in (old, old.with_suffix(".npz"), *folder.glob(f"__pycache__/{old.stem}.*")):
            with contextlib.suppress(OSError):
                path.unlink()


def _import(name: str, source: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"sim_specialised_{name}", source)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module

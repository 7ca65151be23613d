"""The compiled kernel specialised to one model: its tables frozen into the machine code.

The kernel (sim/engine/compiled_kernel.py `run_batch`) reads a model from its arguments, so its
machine code is the same for every scenario and pays, at every step, for branches on table
entries whose values are fixed. Here the same source is compiled once per model with those
tables as module constants: numba freezes global arrays into the code, so LLVM knows the number
of actors, turns and options, each turn's actor and policy kind, and folds the branches that
cannot be taken. The operations left are exactly the generic kernel's, in the same order, with
the same numba options, so the numbers are identical (tests/engine/test_compiled_specialised.py).

A specialised kernel is written as a module of its own into the kernel's numba cache folder,
named by the sha256 of its tables, the kernel's source, this module's, numba's version and the
Python's: `k_<digest>.py` (the source, with the scalars as integer literals) beside
`k_<digest>.npz` (the arrays, read with `allow_pickle=False`). No text of the scenario reaches
the source: only `int()` values, `import` lines and the kernel's own body. numba caches the
module's machine code (in `__pycache__` beside it, or under NUMBA_CACHE_DIR if that is set), so
the compile (9 to 15 s on the 2-CPU development machine) happens once per model and machine,
and `k_<digest>.ok` records that it did. Anything that goes wrong here (a damaged file, a full
disk, a compile error) is logged as a warning and the generic kernel runs: the same numbers.
"""

from __future__ import annotations

import ast
import contextlib
import hashlib
import importlib.util
import logging
import os
import sys
import time
from collections.abc import Callable
from functools import cache
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np

from sim.errors import did_you_mean
from sim.files import write_atomic
from sim.format.cache import STALE_TEMP_SECONDS
from sim.format.syntax import parse_source

RUNTIME_ARGS = (
    "first_run", "n", "key", "ea", "fw", "ci", "f_scratch", "u_scratch", "i_scratch",
    "b_scratch", "tkeys", "out_outcome", "out_steps", "out_peak", "out_rung", "out_pay",
    "out_state", "occupancy", "ended", "move_counts",
)  # fmt: skip
"""Arguments that change from batch to batch (or process to process: `ea`, the address of
the model's expressions): the specialised kernel still takes these."""
SPECIALISE_TURNS = 400_000_000
"""From this many turns to play (runs x horizon x turns a step, played or not) a Monte Carlo
compiles the specialised kernel when none has run yet: its compile (9 to 15 s) is then about
what it saves, some 0.02 us a turn on tit_for_tat (10,000,000 runs) and 0.044 us on
camp_taji_2020 (5,100,000 runs), measured in benchmarks/README.md. Below it, one that has run
before on this machine is still used."""
MAX_CONSTANT_BYTES = 1 << 20
"""Tables larger than this (a strategic scenario's long lookup tables) keep the generic kernel:
frozen into the code, they would make the compile slow and large (the bundled scenarios' tables
are 2 to 12 KB)."""
MAX_KERNELS = 64
"""Specialised kernels kept per kernel version (about 400 KB each with numba's cache of it);
beyond that the least recently used are removed when one is written."""
ENV = "ESCALATION_SPECIALISE"
MODES = {"auto": "auto", "always": "always", "never": "never"}
MODES.update(dict.fromkeys(("on", "1", "yes", "true"), "always"))
MODES.update(dict.fromkeys(("off", "0", "no", "false"), "never"))
"""Values of ESCALATION_SPECIALISE (any case) and what they mean; unset or empty is auto."""
_FORMAT = 2
_MAX_LOADED = 32
_OPTIONS = ("error_model", "_nrt", "boundscheck", "fastmath", "nogil", "parallel")
"""The numba options of the generic kernel copied onto the specialised one (never `cache`)."""
_LOADED: dict[str, Callable[..., Any]] = {}
_BROKEN: set[str] = set()
_CONFIRMED: set[str] = set()
_NAMES: dict[int, tuple[dict, str]] = {}
log = logging.getLogger("sim.engine.compiled")


def mode() -> str:
    """ESCALATION_SPECIALISE as auto, always or never; ValueError for any other value."""
    value = os.environ.get(ENV, "").strip().lower()
    if not value:
        return "auto"
    if value not in MODES:
        raise ValueError(
            f"{ENV} must be auto, always or never, got {value!r}{did_you_mean(value, MODES)}"
        )
    return MODES[value]


def specialised_run_batch(
    kernel: ModuleType, args: dict[str, Any], runs: int
) -> Callable[..., Any] | None:
    """A `run_batch` for this model's tables that takes only RUNTIME_ARGS, or None: the generic
    kernel should run (specialisation off, no private cache folder, tables too large or not
    literals, too few turns to pay a compile, or something went wrong: logged)."""
    how = mode()
    if how == "never":
        return None
    constants = {k: v for k, v in args.items() if k not in RUNTIME_ARGS}
    if not _writable_as_constants(constants):
        return None
    folder = _folder(kernel)
    if folder is None:
        return None
    name = _name_for(kernel, args, constants)
    if name is None or name in _BROKEN:
        return None
    if name in _LOADED:
        return _LOADED[name]
    turns = runs * int(constants["horizon"]) * len(constants["turn_actor"])
    if how == "auto" and turns < SPECIALISE_TURNS and not (folder / f"{name}.ok").exists():
        return None
    try:
        run_batch = _load(folder, name, kernel, constants)
    except Exception as exc:  # a damaged or foreign file, a full disk: the generic kernel runs
        _forget(name, folder, exc)
        return None
    if len(_LOADED) >= _MAX_LOADED:
        for old in _LOADED:
            sys.modules.pop(_module_name(old), None)
        _LOADED.clear()
    _LOADED[name] = run_batch
    return run_batch


def play(
    run_batch: Callable[..., Any], first_run: int, n: int, key: Any, ea: int, work: dict
) -> tuple[int, int] | None:
    """The specialised kernel's (status, run) for a batch, or None if it could not run (numba
    failed to compile or load it: logged, never tried again here; nothing of `work` written,
    since numba compiles before the first run starts)."""
    name = _name_of(run_batch)
    try:
        result = run_batch(first_run, n, key, ea=ea, **work)
    except Exception as exc:
        _forget(name, _folder_of(run_batch), exc)
        return None
    if name not in _CONFIRMED:  # it ran, so numba has it: auto mode may use it for any runs
        _CONFIRMED.add(name)
        with contextlib.suppress(OSError):
            (_folder_of(run_batch) / f"{name}.ok").touch()
    return result


def _forget(name: str, folder: Path, exc: BaseException) -> None:
    """Log why a specialised kernel cannot run, never try it again in this process, and remove
    its source so that the next process that wants it writes it afresh."""
    log.warning(
        "specialised kernel %s cannot run (%s: %s): the generic kernel runs",
        name,
        type(exc).__name__,
        exc,
    )
    _BROKEN.add(name)
    _LOADED.pop(name, None)
    sys.modules.pop(_module_name(name), None)
    for suffix in (".ok", ".py"):
        with contextlib.suppress(OSError):
            (folder / f"{name}{suffix}").unlink()


def _folder_of(run_batch: Callable[..., Any]) -> Path:
    return Path(run_batch.py_func.__globals__["__file__"]).parent


def _name_for(kernel: ModuleType, args: dict, constants: dict[str, Any]) -> str | None:
    """The kernel's name for these tables (hashed once per tables object), None if the
    kernel's source cannot be read."""
    known = _NAMES.get(id(args))
    if known is not None and known[0] is args:
        return known[1]
    try:
        name = "k_" + _digest(kernel, constants)
    except (OSError, ValueError, SyntaxError) as exc:
        log.warning("no specialised kernel (%s: %s)", type(exc).__name__, exc)
        return None
    if len(_NAMES) >= _MAX_LOADED:
        _NAMES.clear()
    _NAMES[id(args)] = (args, name)
    return name


def _name_of(run_batch: Callable[..., Any]) -> str:
    return Path(run_batch.py_func.__globals__["__file__"]).stem


def _module_name(name: str) -> str:
    return f"sim_specialised_{name}"


def _writable_as_constants(constants: dict[str, Any]) -> bool:
    """Every scalar a Python int (as the generic kernel is called with) and the arrays small."""
    arrays = [v for v in constants.values() if isinstance(v, np.ndarray)]
    if any(type(v) is not int for v in constants.values() if not isinstance(v, np.ndarray)):
        return False
    return sum(a.nbytes for a in arrays) <= MAX_CONSTANT_BYTES


def _folder(kernel: ModuleType) -> Path | None:
    """The kernel cache's `specialised` folder, private to this user; None if there is none."""
    if not kernel.CACHE:
        return None
    folder = Path(kernel._CACHE_DIR) / "specialised"
    try:
        folder.mkdir(mode=0o700, exist_ok=True)
        if hasattr(os, "getuid") and folder.stat().st_uid != os.getuid():
            return None  # someone else's folder: its modules would run as this user
    except OSError:
        return None
    return folder if os.access(folder, os.W_OK) else None


@cache
def _kernel_source(kernel: ModuleType) -> tuple[bytes, str]:
    """The kernel module's bytes and run_batch's body, read once per process (so that the
    helpers in memory and the body written out come from the same files)."""
    data = Path(kernel.__file__).read_bytes()
    tree = parse_source(data.decode("utf-8"))
    (node,) = (n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == "run_batch")
    lines = data.decode("utf-8").splitlines(keepends=True)
    body = "".join(lines[node.body[0].lineno - 1 : node.end_lineno])
    return data + Path(__file__).read_bytes(), body


def _digest(kernel: ModuleType, constants: dict[str, Any]) -> str:
    import numba

    h = hashlib.sha256(f"format {_FORMAT}\n".encode())
    h.update(f"numba {numba.__version__} python {sys.implementation.cache_tag}\n".encode())
    h.update(_kernel_source(kernel)[0])
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
    body = _kernel_source(kernel)[1]
    used = sorted(
        n
        for n in function.__code__.co_names
        if n in vars(kernel) and n not in constants and n not in ("np", "njit")
    )
    arrays = sorted(k for k, v in constants.items() if isinstance(v, np.ndarray))
    scalars = sorted(k for k in constants if k not in arrays)
    options = {k: v for k, v in kernel.run_batch.targetoptions.items() if k in _OPTIONS}
    if any(v is not None and not isinstance(v, (bool, int, str)) for v in options.values()):
        raise ValueError(f"a numba option that cannot be written out: {options}")
    lines = [
        '"""Generated by sim/engine/compiled_specialise.py: run_batch for one model."""',
        "import numpy as np",
        "from numba import njit",
        "",
        f"from {kernel.__name__} import {', '.join(used)}",
        "",
        *(f"{k} = {int(constants[k])}" for k in scalars),
        "with np.load(__file__[:-3] + '.npz', allow_pickle=False) as _tables:",
        *(f"    {k} = _tables[{k!r}]" for k in arrays),
        "",
        "",
        f"@njit({', '.join(f'{k}={v!r}' for k, v in sorted(options.items()))}, cache=True)",
        f"def run_batch({', '.join(RUNTIME_ARGS)}):",
        body.rstrip() + "\n",
    ]
    return "\n".join(lines)


def _load(folder: Path, name: str, kernel: ModuleType, constants: dict[str, Any]):
    """The module's run_batch, its files written first if they are missing or not this text."""
    source, arrays = folder / f"{name}.py", folder / f"{name}.npz"
    text = module_source(kernel, constants)
    if not (source.exists() and arrays.exists() and source.read_text("utf-8") == text):
        npz = {k: v for k, v in constants.items() if isinstance(v, np.ndarray)}
        write_atomic(arrays, lambda f: np.savez(f, **npz))
        write_atomic(source, text)  # last: a .py says its .npz is whole
        _prune(folder, keep=name)
    else:
        with contextlib.suppress(OSError):  # recently used, kept longest by _prune; not the
            os.utime(arrays)  # .py, whose date numba before PR 10659 checks
    spec = importlib.util.spec_from_file_location(_module_name(name), source)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot import {source}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        sys.modules.pop(spec.name, None)
        raise
    return module.run_batch


def _prune(folder: Path, keep: str) -> None:
    """Remove the least recently used kernels beyond MAX_KERNELS (never `keep`), the compiled
    code of kernels whose source is gone, and temporary files a dead writer left."""

    def last_used(source: Path) -> float:
        try:
            return source.with_suffix(".npz").stat().st_mtime
        except OSError:
            return 0.0

    sources = sorted(folder.glob("k_*.py"), key=last_used, reverse=True)
    for old in sources[MAX_KERNELS:]:
        if old.stem == keep:
            continue
        for suffix in (".py", ".npz", ".ok"):
            with contextlib.suppress(OSError):
                old.with_suffix(suffix).unlink()
    alive = {p.stem for p in folder.glob("k_*.py")} | {keep}
    for path in folder.glob("__pycache__/k_*"):
        if path.name.split(".")[0] not in alive:
            with contextlib.suppress(OSError):
                path.unlink()
    for path in folder.glob(".k_*.tmp"):
        with contextlib.suppress(OSError):
            if time.time() - path.stat().st_mtime > STALE_TEMP_SECONDS:
                path.unlink()

"""An on-disk cache of work that depends only on a file's bytes (a scenario's YAML parse, the
bibliography's names), so that a start-up skips the pure-Python YAML parser.

What is kept is plain JSON, read with `json.loads` (never pickle or eval): a scenario's YAML
parse is its plain data and its source map (the file:line:col of every key and value), and
everything built from it is validated again on every load (sim/format/loader.py `parse_text`),
so a hit gives the same Scenario and the same problems, located alike, as a miss. An entry is
named by the sha256 of everything it depends on: the text, this package's version, the code of
the modules that make it, the installed ruamel.yaml and the loader's limits. An entry that
cannot be read, is not JSON of the expected shape or names another key is ignored (and written
again); entries are written to a temporary file renamed into place, so a reader never sees half
of one, and the oldest are removed beyond `MAX_ENTRIES` per kind.

Where: `ESCALATION_CACHE_DIR` if set (`off`, `0`, `no`, `none`, `false` or `disabled` turn the
cache off), else the user's cache folder: `$XDG_CACHE_HOME/escalation-sim` (default
`~/.cache/escalation-sim`), `~/Library/Caches/escalation-sim` on macOS,
`%LOCALAPPDATA%\\escalation-sim\\Cache` on Windows. A folder that cannot be written only means
no cache: nothing fails because of it.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import sys
from functools import cache
from pathlib import Path
from typing import Any

from sim.format.source import SourceMap

ENV = "ESCALATION_CACHE_DIR"
OFF = frozenset({"off", "0", "no", "none", "false", "disabled"})
"""Values of ESCALATION_CACHE_DIR (any case) that turn the cache off."""
FORMAT = 1
"""The layout of an entry; a new layout changes every key."""
MAX_ENTRIES = 256
"""Entries kept per kind; beyond that the least recently used are removed."""
MAX_ENTRY_BYTES = 64 << 20
"""A larger file is not read (a scenario is at most 1 MiB; its parse a few times that)."""
STALE_TEMP_SECONDS = 3600
"""A temporary file older than this was left by a writer that died: removed when pruning."""
_YAML_MODULES = ("cache.py", "loader.py", "source.py", "yaml_reader.py")
"""The modules whose code decides what a scenario's YAML parse holds."""


def cache_dir() -> Path | None:
    """The cache folder, or None when the cache is off (ESCALATION_CACHE_DIR) or has no home."""
    value = os.environ.get(ENV, "").strip()
    if value:
        return None if value.lower() in OFF else Path(value).expanduser()
    try:
        if sys.platform == "win32":
            base = os.environ.get("LOCALAPPDATA") or str(Path.home() / "AppData" / "Local")
            return Path(base) / "escalation-sim" / "Cache"
        if sys.platform == "darwin":
            return Path.home() / "Library" / "Caches" / "escalation-sim"
        xdg = os.environ.get("XDG_CACHE_HOME", "")
        base = xdg if os.path.isabs(xdg) else str(Path.home() / ".cache")
    except (RuntimeError, KeyError, OSError):  # no home folder to find
        return None
    return Path(base) / "escalation-sim"


@cache
def source_digest(*modules: str) -> str | None:
    """sha256 of the code of these modules of sim.format (None if one cannot be read: then
    nothing is cached), so that changed code never reads entries made by the old one."""
    digest = hashlib.sha256()
    here = Path(__file__).resolve().parent
    try:
        for name in modules:
            digest.update(name.encode() + b"\0" + (here / name).read_bytes() + b"\0")
    except OSError:
        return None
    return digest.hexdigest()


def make_key(kind: str, *parts: object) -> str | None:
    """The name of an entry: sha256 of its kind, the layout, this package's version and
    `parts`; None when one part is None (something it depends on is unknown: no entry)."""
    if any(part is None for part in parts):
        return None
    from sim import __version__

    text = json.dumps([kind, FORMAT, __version__, *map(str, parts)])
    return hashlib.sha256(text.encode()).hexdigest()


def _entry_path(kind: str, key: str) -> Path | None:
    folder = cache_dir()
    return None if folder is None else folder / kind / f"{key}.json"


def load(kind: str, key: str | None) -> Any:
    """The value stored under `key`, or None: no cache, no entry, or one that cannot be read,
    is not an entry of this layout or names another key (corrupted, foreign: ignored)."""
    path = None if key is None else _entry_path(kind, key)
    if path is None:
        return None
    try:
        with open(path, "rb") as f:
            if os.fstat(f.fileno()).st_size > MAX_ENTRY_BYTES:
                return None
            entry = json.loads(f.read())
    except (OSError, ValueError, RecursionError):  # missing, unreadable, not JSON, too deep
        return None
    if not isinstance(entry, dict) or entry.get("format") != FORMAT or entry.get("key") != key:
        return None
    with contextlib.suppress(OSError):  # recently used: pruning removes the oldest first
        os.utime(path)
    return entry.get("value")


def store(kind: str, key: str | None, value: Any = None, *, encoded: str | None = None) -> None:
    """Keep `value` (or its JSON text, `encoded`) under `key`; any failure only means the entry
    is not kept. Written to a temporary file renamed into place: never seen half-written."""
    path = None if key is None else _entry_path(kind, key)
    if path is None:
        return
    body = encoded if encoded is not None else json.dumps(value, ensure_ascii=False)
    text = f'{{"format": {FORMAT}, "key": "{key}", "value": {body}}}'
    import tempfile

    tmp = None
    try:
        path.parent.parent.mkdir(mode=0o700, parents=True, exist_ok=True)  # private
        path.parent.mkdir(mode=0o700, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".", suffix=".tmp", dir=path.parent)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.replace(tmp, path)
        tmp = None
        _prune(path.parent)
    except (OSError, UnicodeError):
        pass
    finally:
        if tmp is not None:
            with contextlib.suppress(OSError):
                os.unlink(tmp)


def _prune(folder: Path) -> None:
    """Keep at most MAX_ENTRIES entries (least recently used removed first) and remove
    temporary files a dead writer left behind."""
    import time

    entries: list[tuple[float, str]] = []
    now = time.time()
    with os.scandir(folder) as found:
        for item in found:
            try:
                mtime = item.stat().st_mtime
            except OSError:
                continue
            if item.name.startswith("."):
                if item.name.endswith(".tmp") and now - mtime > STALE_TEMP_SECONDS:
                    _remove(item.path)
            elif item.name.endswith(".json"):
                entries.append((mtime, item.path))
    if len(entries) > MAX_ENTRIES:
        entries.sort()
        for _, name in entries[: len(entries) - MAX_ENTRIES * 3 // 4]:
            _remove(name)


def _remove(name: str) -> None:
    with contextlib.suppress(OSError):  # another process removed it first
        os.unlink(name)


# A scenario's YAML parse.


def _ruamel_stamp() -> str | None:
    """Which ruamel.yaml is installed (its file, size and time), without importing it."""
    from importlib.util import find_spec

    try:
        spec = find_spec("ruamel.yaml")
        origin = spec.origin if spec is not None else None
        if not origin:
            return None
        info = os.stat(origin)
    except (ImportError, ValueError, OSError):
        return None
    return f"{origin}:{info.st_size}:{info.st_mtime_ns}"


def yaml_key(text: str) -> str | None:
    """The key of a text's YAML parse: the text, the reader's code and limits, ruamel."""
    from sim.format import loader

    limits = (loader.MAX_NODES, loader.MAX_DEPTH, loader.MAX_INT_DIGITS, loader.MAX_INT)
    return make_key(
        "scenario-yaml",
        hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest(),
        source_digest(*_YAML_MODULES),
        _ruamel_stamp(),
        limits,
    )


def yaml_entry(data: Any, source: SourceMap) -> str | None:
    """The JSON of a YAML parse (plain data and positions), or None: no cache, or data that
    cannot be JSON."""
    if cache_dir() is None:
        return None
    try:
        return json.dumps(
            {
                "data": data,
                "values": [[list(p), *at] for p, at in source.values.items()],
                "keys": [[list(p), *at] for p, at in source.keys.items()],
            },
            ensure_ascii=False,
        )
    except (TypeError, ValueError, RecursionError):
        return None


def store_yaml(text: str, entry: str | None) -> None:
    """Keep a text's YAML parse (from `yaml_entry`) for the next load of the same text."""
    if entry is not None:
        store("scenario-yaml", yaml_key(text), encoded=entry)


def cached_yaml(text: str, file: str) -> tuple[Any, SourceMap] | None:
    """The YAML parse of `text` (plain data and its source map, named `file`) from the cache,
    exactly what sim.format.loader.read_yaml returns for it; None without a usable entry."""
    if cache_dir() is None:
        return None
    value = load("scenario-yaml", yaml_key(text))
    if not isinstance(value, dict) or not isinstance(value.get("data"), dict):
        return None
    try:
        values = _positions(value["values"])
        keys = _positions(value["keys"])
    except (KeyError, TypeError, ValueError):
        return None
    if () not in values:  # the read always places the document itself
        return None
    source = SourceMap(file, text.splitlines(), values, keys)
    return value["data"], source


def _positions(rows: Any) -> dict[tuple[Any, ...], tuple[int, int]]:
    """Positions as stored ([path, line, col] rows) back into a source map's dict; a row of any
    other shape raises ValueError."""
    if not isinstance(rows, list):
        raise ValueError("not a list")
    out: dict[tuple[Any, ...], tuple[int, int]] = {}
    for row in rows:
        path, line, col = row
        if not (
            isinstance(path, list)
            and all(type(p) is str or type(p) is int for p in path)
            and type(line) is int
            and type(col) is int
        ):
            raise ValueError("not a position")
        out[tuple(path)] = (line, col)
    return out

"""YAML -> Scenario, with every problem reported as `file:line:col: message`."""

from __future__ import annotations

import os
import stat
from pathlib import Path as FsPath
from typing import Any, BinaryIO

from pydantic import ValidationError

from sim.errors import Problem, ScenarioError, did_you_mean
from sim.format.scenario import Scenario, allowed_keys
from sim.format.source import Path, SourceMap, dotted

_UNION_TAGS = {"fixed", "sequence", "table", "logit", "strategic", "bool", "float", "str", "int"}


MAX_FILE_BYTES = 1 << 20
"""Largest scenario file read (1 MiB); a larger one is refused without being read."""
MAX_NODES = 100_000
"""Most values a document may hold, every YAML alias counted as the values it stands for
(counted while the document is composed, so an alias bomb is refused before it expands)."""
MAX_DEPTH = 64
"""Deepest nesting of mappings and lists in a document."""
MAX_INT_DIGITS = 300
"""Most digits of an integer literal (a number of the model is a float: at most about 1.8e308)."""
MAX_INT = 10**MAX_INT_DIGITS


def read_yaml(text: str, file: str) -> tuple[Any, SourceMap]:
    """Parse YAML 1.2 (duplicate keys rejected) into plain Python data and its source map.

    Bounded: at most MAX_NODES values (aliases counted as what they stand for, before they are
    expanded), MAX_DEPTH levels of nesting and MAX_INT_DIGITS digits per integer. (The reader,
    and ruamel with it, is imported on first use: sim/format/yaml_reader.py.)"""
    from sim.format.yaml_reader import read_yaml as read

    return read(text, file)


def parse_text(text: str, file: str = "<string>") -> Scenario:
    """Scenario text -> a Scenario with valid format and cross references, or ScenarioError.

    Expressions and parameter-dependent numbers are checked by compiling it:
    sim.model.loading.load_text does both, and is what commands and the API use.

    The YAML parse (plain data and source map) of a text seen before comes from the on-disk
    cache (sim/format/cache.py); the validation below runs either way, so the result, and every
    problem with its file:line:col, is the same."""
    from sim.format import cache

    parsed = cache.cached_yaml(text, file)
    entry = None
    if parsed is None:
        parsed = read_yaml(text, file)
        entry = cache.yaml_entry(*parsed)  # before validation: the data exactly as parsed
    data, source = parsed
    if not isinstance(data, dict):
        empty = "the file is empty; " if data is None else ""
        message = f"{empty}a scenario file must be a YAML mapping"
        raise ScenarioError([source.problem((), message)])
    try:  # the cross-reference checks run on construction, located by the source map
        scenario = Scenario.model_validate(data, context={"source": source})
    except ValidationError as exc:
        raise ScenarioError(_pydantic_problems(exc, data, source)) from None
    if entry is not None:  # only a text that makes a scenario is kept
        cache.store_yaml(text, entry)
    return scenario


def read_scenario_text(path: str | FsPath) -> str:
    """A scenario file's text; unreadable files are a located ScenarioError.

    Only a regular file is read (a FIFO, a device such as /dev/zero or a directory is refused
    before it is opened for reading), and only up to MAX_FILE_BYTES: a larger file is refused
    by its size, without reading it."""
    name = str(path)

    def refuse(message: str, line: int = 1, col: int = 1) -> ScenarioError:
        return ScenarioError([Problem(name, line, col, message)])

    try:
        kind = _file_kind(os.stat(path).st_mode)
        if kind is not None:
            raise refuse(f"cannot read {kind}: a scenario must be a regular file")
        flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0)
        fd = os.open(path, flags)  # never blocks, even if the file was swapped for a FIFO
        with os.fdopen(fd, "rb") as f:
            info = os.fstat(f.fileno())
            kind = _file_kind(info.st_mode)
            if kind is not None:
                raise refuse(f"cannot read {kind}: a scenario must be a regular file")
            if info.st_size > MAX_FILE_BYTES:
                raise refuse(_too_big(info.st_size))
            data = f.read(MAX_FILE_BYTES + 1)
    except FileNotFoundError:
        raise refuse("no such file") from None
    except OSError as exc:
        raise refuse(f"cannot read file: {exc.strerror or exc}") from None
    return decode_scenario_bytes(data, name)


def read_scenario_stream(stream: BinaryIO, name: str = "<stdin>") -> str:
    """A scenario's text from an open binary stream (standard input), read up to the limit."""
    try:
        data = stream.read(MAX_FILE_BYTES + 1)
    except OSError as exc:
        raise ScenarioError([Problem(name, 1, 1, f"cannot read: {exc.strerror or exc}")]) from None
    return decode_scenario_bytes(data, name)


def decode_scenario_bytes(data: bytes, name: str) -> str:
    """UTF-8 text within the size limit, or a ScenarioError located at the first bad byte."""
    if len(data) > MAX_FILE_BYTES:  # it grew while being read
        raise ScenarioError([Problem(name, 1, 1, _too_big(len(data)))])
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        start = data.rfind(b"\n", 0, exc.start) + 1
        col = len(data[start : exc.start].decode("utf-8", errors="replace")) + 1
        byte = data[exc.start : exc.start + 1].hex()
        message = f"the file is not UTF-8 text (byte 0x{byte} cannot be decoded)"
        raise ScenarioError([Problem(name, line, col, message)]) from None


def _file_kind(mode: int) -> str | None:
    """None for a regular file, else what it is."""
    if stat.S_ISREG(mode):
        return None
    if stat.S_ISDIR(mode):
        return "a directory"
    if stat.S_ISFIFO(mode):
        return "a FIFO (named pipe)"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "a file that is not a regular file"


def _too_big(size: int) -> str:
    return (
        f"the file is {size:,} bytes, more than the limit of {MAX_FILE_BYTES:,} bytes "
        f"({MAX_FILE_BYTES >> 20} MiB) for a scenario"
    )


def _pydantic_problems(exc: ValidationError, data: Any, source: SourceMap) -> list[Problem]:
    problems: dict[tuple[int, int], Problem] = {}
    for err in exc.errors(include_url=False):
        path, complete = _resolve(err["loc"], data)
        ctx = err.get("ctx") or {}
        if err["type"] == "extra_forbidden":
            key = str(err["loc"][-1])
            allowed = allowed_keys(tuple(err["loc"][:-1]))
            message = f"unknown key '{key}'{did_you_mean(key, allowed)}"
            if allowed:
                message += f"; allowed here: {', '.join(allowed)}"
            problem = source.problem(path if complete else path + (key,), message, key=True)
        elif err["type"] == "policy_kind":
            where = path + ("kind",) if complete and isinstance(ctx.get("kind"), str) else path
            problem = source.problem(where, f"{dotted(path)}: {err['msg']}")
        elif err["type"] == "literal_error" and tuple(err["loc"]) == ("schema",):
            version = err["input"]
            message = f"schema: unsupported format version {version!r} (this version reads 1)"
            problem = source.problem(path, message)
        elif err["type"] == "missing":
            message = f"missing required key '{err['loc'][-1]}'"
            problem = source.problem(path, f"{dotted(path)}: {message}" if path else message)
        else:
            shown = path if complete else path + tuple(err["loc"][len(path) :])
            problem = source.problem(path, f"{dotted(shown)}: {err['msg']}")
        problems.setdefault((problem.line, problem.col), problem)
    return list(problems.values())


def _resolve(loc: tuple, data: Any) -> tuple[Path, bool]:
    """The longest prefix of a pydantic error location that exists in the data."""
    path: list[Any] = []
    node = data
    for part in loc:
        if (isinstance(node, dict) and part in node) or (
            isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node)
        ):
            node = node[part]
            path.append(part)
        elif isinstance(part, str) and (part in _UNION_TAGS or "[" in part):
            continue
        else:
            return tuple(path), False
    return tuple(path), True

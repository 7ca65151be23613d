"""YAML -> Scenario, with every problem reported as `file:line:col: message`."""

from __future__ import annotations

import os
import re
import stat
from pathlib import Path as FsPath
from typing import Any, BinaryIO

from pydantic import ValidationError
from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.composer import Composer, MaxDepthExceededError
from ruamel.yaml.constructor import DuplicateKeyError, RoundTripConstructor
from ruamel.yaml.error import MarkedYAMLError, YAMLError
from ruamel.yaml.events import AliasEvent

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
_SURROGATE = re.compile("[\ud800-\udfff]")


class _Refused(MarkedYAMLError):
    """A limit of the format, found while reading the YAML: reported without 'YAML error:'."""


class _LimitedComposer(Composer):
    """Counts the values of the document while composing it, each alias as the values of the
    node it names, and refuses a document of more than MAX_NODES values or a recursive alias:
    the count is known before anything is expanded."""

    def __init__(self, loader: Any = None) -> None:
        super().__init__(loader)
        self.values = 0
        self.sizes: dict[int, int] = {}  # id(anchored node) -> the values it stands for

    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.parser.check_event(AliasEvent):
            event = self.parser.peek_event()
            node = self.anchors.get(event.anchor)
            if node is not None:
                size = self.sizes.get(id(node))
                if size is None:
                    raise _Refused(
                        None,
                        None,
                        f"alias *{event.anchor} is used inside the node it names "
                        "(a recursive structure)",
                        event.start_mark,
                    )
                self._grow(size, event.start_mark)
            return super().compose_node(parent, index)
        before = self.values
        mark = self.parser.peek_event().start_mark
        node = super().compose_node(parent, index)
        self._grow(1, mark)
        if node.anchor is not None:
            self.sizes[id(node)] = self.values - before
        return node

    def _grow(self, count: int, mark: Any) -> None:
        self.values += count
        if self.values > MAX_NODES:
            raise _Refused(
                None,
                None,
                f"the document expands to more than {MAX_NODES:,} values (YAML aliases?); "
                f"the limit is {MAX_NODES:,}",
                mark,
            )


class _LimitedConstructor(RoundTripConstructor):
    """Round-trip construction that never expands a value into a message and refuses integer
    literals too large to be numbers of the model."""

    def check_mapping_key(self, node: Any, key_node: Any, mapping: Any, key: Any, value: Any):
        if key not in mapping:
            return True
        first = ""
        lc = getattr(mapping, "lc", None)
        try:
            found = lc.key(key) if lc is not None else None
        except (KeyError, TypeError, AttributeError):
            found = None
        if found:
            first = f" (first given at line {found[0] + 1})"
        raise DuplicateKeyError(
            "while constructing a mapping",
            node.start_mark,
            f'found duplicate key "{_short_text(key)}"{first}',
            key_node.start_mark,
        )

    def construct_yaml_int(self, node: Any) -> Any:
        digits = sum(c.isalnum() for c in str(node.value)) - (
            2 if str(node.value).lstrip("+-")[:2].lower() in ("0x", "0o", "0b") else 0
        )
        if digits > MAX_INT_DIGITS:
            raise _Refused(
                None,
                None,
                f"an integer of {digits:,} digits is too large (at most {MAX_INT_DIGITS} "
                "digits: numbers of the model are floats, at most about 1.8e308)",
                node.start_mark,
            )
        value = super().construct_yaml_int(node)
        if abs(int(value)) >= MAX_INT:
            raise _Refused(
                None,
                None,
                f"integer {str(node.value)[:20]}... is too large (at most 1e{MAX_INT_DIGITS} "
                "in magnitude)",
                node.start_mark,
            )
        return value


_LimitedConstructor.add_constructor("tag:yaml.org,2002:int", _LimitedConstructor.construct_yaml_int)


def _short_text(value: Any, limit: int = 60) -> str:
    """A key as shown in a message: a short scalar, never an expanded collection."""
    if isinstance(value, (str, int, float, bool)) or value is None:
        text = str(value)
        return text if len(text) <= limit else text[:limit] + "..."
    return f"<a {type(value).__name__.removeprefix('Commented').lower()} key>"


def read_yaml(text: str, file: str) -> tuple[Any, SourceMap]:
    """Parse YAML 1.2 (duplicate keys rejected) into plain Python data and its source map.

    Bounded: at most MAX_NODES values (aliases counted as what they stand for, before they are
    expanded), MAX_DEPTH levels of nesting and MAX_INT_DIGITS digits per integer."""
    source = SourceMap(file, text.splitlines())
    yaml = YAML(typ="rt", pure=True)
    yaml.Composer = _LimitedComposer
    yaml.Constructor = _LimitedConstructor
    yaml.allow_duplicate_keys = False
    yaml.max_depth = MAX_DEPTH
    try:
        doc = yaml.load(text)
    except _Refused as exc:
        raise ScenarioError([_marked(file, exc, str(exc.problem))]) from None
    except MaxDepthExceededError as exc:
        message = f"the document is nested more than {MAX_DEPTH} levels deep (the limit)"
        raise ScenarioError([_marked(file, exc, message)]) from None
    except MarkedYAMLError as exc:
        what = " ".join(str(s) for s in (exc.context, exc.problem) if s)
        raise ScenarioError([_marked(file, exc, f"YAML error: {_one_line(what)}")]) from None
    except YAMLError as exc:
        raise ScenarioError([Problem(file, 1, 1, f"YAML error: {_one_line(str(exc))}")]) from None
    except RecursionError:  # a safety net: MAX_DEPTH stops nesting long before this
        message = f"the document is nested too deeply (at most {MAX_DEPTH} levels)"
        raise ScenarioError([Problem(file, 1, 1, message)]) from None
    lc = getattr(doc, "lc", None)  # where the document's top mapping (or list) starts
    has_start = lc is not None and lc.line is not None
    source.values[()] = (lc.line + 1, lc.col + 1) if has_start else (1, 1)
    return _plain(doc, (), source), source


def _marked(file: str, exc: MarkedYAMLError, message: str) -> Problem:
    mark = exc.problem_mark or exc.context_mark
    line, col = (mark.line + 1, mark.column + 1) if mark else (1, 1)
    return Problem(file, line, col, message)


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _position(found: Any, fallback: tuple[int, int]) -> tuple[int, int]:
    """A 1-based position from ruamel's 0-based one (merged `<<:` keys have none)."""
    if not found:
        return fallback
    return found[0] + 1, found[1] + 1


def _lc(lookup: Any, key: Any) -> Any:
    """ruamel's position of a key or value; None for a key merged in by `<<:` (it has none)."""
    try:
        return lookup(key)
    except (KeyError, IndexError, TypeError):
        return None


def _plain(node: Any, path: Path, source: SourceMap) -> Any:
    if len(source.values) > MAX_NODES:
        raise ScenarioError(
            [
                Problem(
                    source.file,
                    1,
                    1,
                    f"the document expands to more than {MAX_NODES:,} values (YAML aliases?)",
                )
            ]
        )
    here = source.values.get(path, (1, 1))
    if isinstance(node, CommentedMap):
        out = {}
        for key, value in node.items():
            name = str(key)
            source.keys[path + (name,)] = _position(_lc(node.lc.key, key), here)
            _check_text(name, path + (name,), source, key=True)
            source.values[path + (name,)] = _position(_lc(node.lc.value, key), here)
            out[name] = _plain(value, path + (name,), source)
        return out
    if isinstance(node, CommentedSeq):
        out_list = []
        for i, value in enumerate(node):
            source.values[path + (i,)] = _position(node.lc.item(i), here)
            out_list.append(_plain(value, path + (i,), source))
        return out_list
    if node is None or isinstance(node, bool):
        return node
    if isinstance(node, int):
        return int(node)
    if isinstance(node, float):
        return float(node)
    return _check_text(str(node), path, source)


def _check_text(text: str, path: Path, source: SourceMap, key: bool = False) -> str:
    """Text that can be written out (UTF-8): a lone surrogate, e.g. from the escape "\\udcff",
    is refused where it is written, not when a chart or the report cannot encode it."""
    found = _SURROGATE.search(text)
    if found is None:
        return text
    code = f"\\u{ord(found.group()):04x}"
    what = "key" if key else "text"
    message = f"{what} holds a lone surrogate {code}, which is not a character (not valid Unicode)"
    raise ScenarioError([source.problem(path, message, key=key)])


def parse_text(text: str, file: str = "<string>") -> Scenario:
    """Scenario text -> a Scenario with valid format and cross references, or ScenarioError.

    Expressions and parameter-dependent numbers are checked by compiling it:
    sim.model.loading.load_text does both, and is what commands and the API use."""
    data, source = read_yaml(text, file)
    if not isinstance(data, dict):
        empty = "the file is empty; " if data is None else ""
        message = f"{empty}a scenario file must be a YAML mapping"
        raise ScenarioError([source.problem((), message)])
    try:  # the cross-reference checks run on construction, located by the source map
        scenario = Scenario.model_validate(data, context={"source": source})
    except ValidationError as exc:
        raise ScenarioError(_pydantic_problems(exc, data, source)) from None
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

"""The YAML reader behind sim.format.loader: ruamel's round-trip parser with the format's limits.

A module of its own so that ruamel is imported only when a scenario's text is actually parsed:
a start-up whose parse comes from the cache (sim/format/cache.py) never imports it."""

from __future__ import annotations

import re
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.composer import Composer, MaxDepthExceededError
from ruamel.yaml.constructor import DuplicateKeyError, RoundTripConstructor
from ruamel.yaml.error import MarkedYAMLError, YAMLError
from ruamel.yaml.events import AliasEvent

from sim.errors import Problem, ScenarioError
from sim.format import loader as limits
from sim.format.source import Path, SourceMap

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
        if self.values > limits.MAX_NODES:
            raise _Refused(
                None,
                None,
                f"the document expands to more than {limits.MAX_NODES:,} values (YAML aliases?); "
                f"the limit is {limits.MAX_NODES:,}",
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
        if digits > limits.MAX_INT_DIGITS:
            raise _Refused(
                None,
                None,
                f"an integer of {digits:,} digits is too large (at most {limits.MAX_INT_DIGITS} "
                "digits: numbers of the model are floats, at most about 1.8e308)",
                node.start_mark,
            )
        value = super().construct_yaml_int(node)
        if abs(int(value)) >= limits.MAX_INT:
            raise _Refused(
                None,
                None,
                f"integer {str(node.value)[:20]}... is too large "
                f"(at most 1e{limits.MAX_INT_DIGITS} in magnitude)",
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
    yaml.max_depth = limits.MAX_DEPTH
    try:
        doc = yaml.load(text)
    except _Refused as exc:
        raise ScenarioError([_marked(file, exc, str(exc.problem))]) from None
    except MaxDepthExceededError as exc:
        message = f"the document is nested more than {limits.MAX_DEPTH} levels deep (the limit)"
        raise ScenarioError([_marked(file, exc, message)]) from None
    except MarkedYAMLError as exc:
        what = " ".join(str(s) for s in (exc.context, exc.problem) if s)
        raise ScenarioError([_marked(file, exc, f"YAML error: {_one_line(what)}")]) from None
    except YAMLError as exc:
        raise ScenarioError([Problem(file, 1, 1, f"YAML error: {_one_line(str(exc))}")]) from None
    except RecursionError:  # a safety net: MAX_DEPTH stops nesting long before this
        message = f"the document is nested too deeply (at most {limits.MAX_DEPTH} levels)"
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
    if len(source.values) > limits.MAX_NODES:
        raise ScenarioError(
            [
                Problem(
                    source.file,
                    1,
                    1,
                    f"the document expands to more than {limits.MAX_NODES:,} values "
                    "(YAML aliases?)",
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

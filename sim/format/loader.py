"""YAML -> Scenario, with every problem reported as `file:line:col: message`."""

from __future__ import annotations

from pathlib import Path as FsPath
from typing import Any

from pydantic import ValidationError
from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import MarkedYAMLError, YAMLError

from sim.errors import Problem, ScenarioError, did_you_mean
from sim.format.scenario import Scenario, allowed_keys
from sim.format.source import Path, SourceMap, dotted

_UNION_TAGS = {"fixed", "sequence", "table", "logit", "strategic", "bool", "float", "str", "int"}


def read_yaml(text: str, file: str) -> tuple[Any, SourceMap]:
    """Parse YAML 1.2 (duplicate keys rejected) into plain Python data and its source map."""
    source = SourceMap(file, text.splitlines())
    yaml = YAML(typ="rt", pure=True)
    yaml.allow_duplicate_keys = False
    try:
        doc = yaml.load(text)
    except MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line, col = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        what = " ".join(str(s) for s in (exc.context, exc.problem) if s)
        raise ScenarioError([Problem(file, line, col, f"YAML error: {_one_line(what)}")]) from None
    except YAMLError as exc:
        raise ScenarioError([Problem(file, 1, 1, f"YAML error: {_one_line(str(exc))}")]) from None
    lc = getattr(doc, "lc", None)  # where the document's top mapping (or list) starts
    has_start = lc is not None and lc.line is not None
    source.values[()] = (lc.line + 1, lc.col + 1) if has_start else (1, 1)
    return _plain(doc, (), source), source


def _one_line(text: str) -> str:
    return " ".join(text.split())


MAX_NODES = 1_000_000
"""Most values a document may expand to (YAML aliases can multiply a small file)."""


def _position(found: Any, fallback: tuple[int, int]) -> tuple[int, int]:
    """A 1-based position from ruamel's 0-based one (merged `<<:` keys have none)."""
    if not found:
        return fallback
    return found[0] + 1, found[1] + 1


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
            source.keys[path + (name,)] = _position(node.lc.key(key), here)
            source.values[path + (name,)] = _position(node.lc.value(key), here)
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
    return str(node)


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
    """A scenario file's text; unreadable files are a located ScenarioError."""
    name = str(path)
    try:
        text = FsPath(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ScenarioError([Problem(name, 1, 1, "no such file")]) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ScenarioError([Problem(name, 1, 1, f"cannot read file: {exc}")]) from None
    return text


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

"""Safe expression compiler: an allow-list over Python's `ast`, compiled once to numpy closures.

User text is never passed to `eval` or `exec`. Every node type, name and function is checked
against an allow-list at load time, and the result is a tree of small closures over numpy ufuncs
that evaluate a whole batch of runs at once.
"""

from __future__ import annotations

import ast
import math
import unicodedata
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from sim.errors import ExpressionError, SimulationError, did_you_mean
from sim.format.syntax import one_line, parse_expression

MAX_LENGTH = 2000
MAX_DEPTH = 100

NUM, BOOL, CHOICE = "number", "boolean", "choice"


class RandomSource(Protocol):
    """Per-run random draws for the runs an expression is evaluated on."""

    def draw(self, kind: str, *args: Any) -> np.ndarray: ...


class Context(Protocol):
    """What an expression reads: named values (scalars or per-run arrays) and random draws."""

    size: int
    rng: RandomSource

    def value(self, name: str) -> Any: ...


@dataclass(frozen=True)
class Namespace:
    """The names an expression may use, by kind, and the option ids of each `last_<actor>`."""

    parameters: frozenset[str] = frozenset()
    state: frozenset[str] = frozenset()
    builtins: frozenset[str] = frozenset()
    choices: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    allow_random: bool = True
    purpose: str = "expression"
    reads: Mapping[str, str] = field(default_factory=dict)
    """Names read under another name (a policy's `last_<mover>` is its view of that move)."""
    hidden: Mapping[str, str] = field(default_factory=dict)
    """Names that exist but lie outside this expression's view, with the reason."""

    def kind_of(self, name: str) -> str | None:
        if name in self.parameters:
            return "parameter"
        if name in self.state:
            return "state"
        if name in self.builtins:
            return "builtin"
        if name in self.choices:
            return "choice"
        return None

    def all_names(self) -> list[str]:
        return sorted(self.parameters | self.state | self.builtins | set(self.choices))


@dataclass(frozen=True)
class CompiledExpr:
    """A checked expression; call it on a `Context` to get one value per run (or a scalar)."""

    source: str
    fn: Callable[[Context], Any]
    names: frozenset[str]
    random_offset: int | None
    constant: float | bool | None

    def __call__(self, ctx: Context) -> Any:
        return self.fn(ctx)

    @property
    def uses_random(self) -> bool:
        return self.random_offset is not None


def constant_expr(value: float | bool) -> CompiledExpr:
    """Wrap a literal number from YAML as an expression."""
    return CompiledExpr(str(value), lambda ctx, v=value: v, frozenset(), None, value)


_BINOPS: dict[type, tuple[Callable[..., Any], Callable[[float, float], float]]] = {
    ast.Add: (np.add, lambda a, b: a + b),
    ast.Sub: (np.subtract, lambda a, b: a - b),
    ast.Mult: (np.multiply, lambda a, b: a * b),
    ast.Div: (np.true_divide, lambda a, b: a / b),
    ast.FloorDiv: (np.floor_divide, lambda a, b: a // b),
    ast.Mod: (np.mod, lambda a, b: a % b),
    ast.Pow: (np.power, lambda a, b: float(a) ** b),
}

_COMPARE: dict[type, Callable[..., Any]] = {
    ast.Lt: np.less,
    ast.LtE: np.less_equal,
    ast.Gt: np.greater,
    ast.GtE: np.greater_equal,
    ast.Eq: np.equal,
    ast.NotEq: np.not_equal,
}

_MATH1: dict[str, Callable[..., Any]] = {
    "abs": np.abs,
    "exp": np.exp,
    "log": np.log,
    "sqrt": np.sqrt,
    "floor": np.floor,
    "ceil": np.ceil,
    "round": np.rint,
}

# name -> number of arguments
RANDOM_DRAWS: dict[str, int] = {
    "bernoulli": 1,
    "poisson": 1,
    "binomial": 2,
    "uniform": 2,
    "normal": 2,
}

FUNCTIONS = sorted([*_MATH1, "min", "max", "clip", "where", *RANDOM_DRAWS])

MAX_BINOMIAL_N = 1_000_000
"""Largest `n` of `binomial(n, p)`: its inverse CDF costs a search that grows with n (scipy
needs about 0.3 s per 4,096 draws at 1e9, and at 1e17 its search does not end). A constant
beyond it is a load-time error; a value reached at run time stops the run with the
expression's file:line:col."""
MAX_POISSON_LAMBDA = 1_000_000
"""Largest `lam` of `poisson(lam)`, for the same reason (scipy needs seconds per thousand draws
at 1e9 and returns NaN beyond 1e12)."""
DRAW_LIMITS: dict[str, tuple[int, float, str]] = {
    "binomial": (0, MAX_BINOMIAL_N, "n"),
    "poisson": (0, MAX_POISSON_LAMBDA, "lam"),
}
"""Draws with a bounded argument: name -> (argument index, largest value, argument name)."""


@dataclass
class _Node:
    fn: Callable[[Context], Any]
    type: str
    const: Any = None  # a Python value when the node is a compile-time constant
    choice_actor: str | None = None


def _as_number(node: _Node) -> _Node:
    """Booleans take part in arithmetic as 0/1."""
    if node.type != BOOL:
        return node
    if node.const is not None:
        return _Node(lambda ctx, v=float(node.const): v, NUM, float(node.const))
    fn = node.fn
    return _Node(lambda ctx: np.asarray(fn(ctx), dtype=float), NUM)


def _truth(node: _Node) -> _Node:
    """Numbers used as conditions are true when non-zero."""
    if node.type == BOOL:
        return node
    if node.const is not None:
        return _Node(lambda ctx, v=bool(node.const): v, BOOL, bool(node.const))
    fn = node.fn
    return _Node(lambda ctx: np.not_equal(fn(ctx), 0), BOOL)


def _fold(value: Any, col: int) -> _Node:
    if isinstance(value, (bool, np.bool_)):
        v = bool(value)
        return _Node(lambda ctx: v, BOOL, v)
    if isinstance(value, complex):  # e.g. (-1) ** 0.5 in Python
        raise ExpressionError("constant sub-expression is undefined (complex result)", col)
    try:
        v = float(value)
    except (OverflowError, ValueError) as exc:
        raise ExpressionError("constant is too large", col) from exc
    if not math.isfinite(v):
        raise ExpressionError("constant sub-expression overflows or is undefined", col)
    return _Node(lambda ctx: v, NUM, v)


class _Compiler:
    def __init__(self, text: str, namespace: Namespace, sites: Iterator[int] | None = None):
        self.sites = sites
        self.text = text
        self.ns = namespace
        self.names: set[str] = set()
        self.random_offset: int | None = None

    def col(self, node: ast.AST) -> int:
        offset = getattr(node, "col_offset", 0)
        return len(self.text.encode()[:offset].decode(errors="ignore"))

    def fail(self, node: ast.AST, message: str) -> ExpressionError:
        return ExpressionError(message, self.col(node))

    def compile(self, node: ast.AST, depth: int = 0) -> _Node:
        if depth > MAX_DEPTH:
            raise self.fail(node, f"expression is nested too deeply (more than {MAX_DEPTH} levels)")
        method = getattr(self, "_" + type(node).__name__, None)
        if method is None:
            raise self.fail(node, f"{_describe(node)} is not allowed in an expression")
        return method(node, depth + 1)

    def _Constant(self, node: ast.Constant, depth: int) -> _Node:
        value = node.value
        if isinstance(value, bool):  # Python's True / False: the language writes true / false
            word = str(value).lower()
            raise self.fail(node, f"'{value}' is not a name: write '{word}' (lower case)")
        if isinstance(value, (int, float)) and not isinstance(value, complex):
            return _fold(value, self.col(node))
        if isinstance(value, str):
            return _Node(lambda ctx: value, "string", value)
        raise self.fail(node, f"constant {value!r} is not allowed (only numbers, true and false)")

    def _Name(self, node: ast.Name, depth: int) -> _Node:
        name = node.id
        if name in ("true", "false"):
            return _fold(name == "true", self.col(node))
        kind = self.ns.kind_of(name)
        if kind is None and name in self.ns.hidden:
            raise self.fail(node, self.ns.hidden[name])
        if kind is None:
            if name.startswith("__"):
                raise self.fail(node, f"name '{name}' is not allowed")
            if name in FUNCTIONS:
                raise self.fail(node, f"'{name}' is a function: call it, e.g. {name}(...)")
            hint = did_you_mean(name, self.ns.all_names())
            raise self.fail(node, f"undefined name '{name}' in {self.ns.purpose}{hint}")
        self.names.add(name)
        read = self.ns.reads.get(name, name)
        if kind == "choice":
            return _Node(lambda ctx: ctx.value(read), CHOICE, choice_actor=name)
        return _Node(lambda ctx: ctx.value(read), NUM)

    def _UnaryOp(self, node: ast.UnaryOp, depth: int) -> _Node:
        operand = self.compile(node.operand, depth)
        self._no_choice(operand, node)
        if isinstance(node.op, ast.Not):
            operand = _truth(operand)
            if operand.const is not None:
                return _fold(not operand.const, self.col(node))
            fn = operand.fn
            return _Node(lambda ctx: np.logical_not(fn(ctx)), BOOL)
        operand = _as_number(operand)
        if isinstance(node.op, ast.UAdd):
            return operand
        if isinstance(node.op, ast.USub):
            if operand.const is not None:
                return _fold(-operand.const, self.col(node))
            fn = operand.fn
            return _Node(lambda ctx: np.negative(fn(ctx)), NUM)
        raise self.fail(node, f"operator {type(node.op).__name__} is not allowed")

    def _BinOp(self, node: ast.BinOp, depth: int) -> _Node:
        ops = _BINOPS.get(type(node.op))
        if ops is None:
            raise self.fail(node, f"operator {type(node.op).__name__} is not allowed")
        left = _as_number(self._operand(node.left, depth))
        right = _as_number(self._operand(node.right, depth))
        ufunc, pyop = ops
        if left.const is not None and right.const is not None:
            try:
                return _fold(pyop(left.const, right.const), self.col(node))
            except OverflowError as exc:
                raise self.fail(node, "constant sub-expression overflows") from exc
            except (ZeroDivisionError, ValueError) as exc:
                raise self.fail(node, f"constant sub-expression is undefined ({exc})") from exc
        lf, rf = left.fn, right.fn
        return _Node(lambda ctx: ufunc(lf(ctx), rf(ctx)), NUM)

    def _BoolOp(self, node: ast.BoolOp, depth: int) -> _Node:
        parts = [_truth(self._operand(v, depth)) for v in node.values]
        combine = np.logical_and if isinstance(node.op, ast.And) else np.logical_or
        fns = [p.fn for p in parts]

        def run(ctx: Context) -> Any:
            result = fns[0](ctx)
            for f in fns[1:]:
                result = combine(result, f(ctx))
            return result

        return _Node(run, BOOL)

    def _Compare(self, node: ast.Compare, depth: int) -> _Node:
        operands = [node.left, *node.comparators]
        for op in node.ops:
            if type(op) not in _COMPARE:
                raise self.fail(node, f"comparison {type(op).__name__} is not allowed")
        nodes = [self.compile(a, depth) for a in operands]
        if len(nodes) == 2:
            return self._compare_pair(node, node.ops[0], nodes[0], nodes[1], *operands)
        # Chained (a < b < c): like Python, evaluate each operand once (a random draw in the
        # middle is drawn once), then compare neighbouring values.
        slots = [
            _Node(lambda vals, i=i: vals[i], n.type, n.const, n.choice_actor)
            for i, n in enumerate(nodes)
        ]
        pieces = [
            self._compare_pair(node, op, slots[i], slots[i + 1], *operands[i : i + 2])
            for i, op in enumerate(node.ops)
        ]
        fns = [n.fn for n in nodes]
        pfns = [p.fn for p in pieces]

        def run(ctx: Context) -> Any:
            vals = [f(ctx) for f in fns]
            result = pfns[0](vals)
            for f in pfns[1:]:
                result = np.logical_and(result, f(vals))
            return result

        return _Node(run, BOOL)

    def _compare_pair(self, node: ast.AST, op: ast.cmpop, left: _Node, right: _Node, a, b):
        ufunc = _COMPARE[type(op)]
        if CHOICE in (left.type, right.type) or "string" in (left.type, right.type):
            return self._compare_choice(node, op, left, right, a, b)
        left, right = _as_number(left), _as_number(right)
        if left.const is not None and right.const is not None:
            return _fold(bool(ufunc(left.const, right.const)), self.col(node))
        lf, rf = left.fn, right.fn
        return _Node(lambda ctx: ufunc(lf(ctx), rf(ctx)), BOOL)

    def _compare_choice(self, node, op, left: _Node, right: _Node, a, b) -> _Node:
        if left.type == "string":
            left, right, a, b = right, left, b, a
        if left.type != CHOICE or right.type != "string":
            raise self.fail(
                node,
                "an option id string can only be compared with last_<actor>, e.g. "
                "last_us == 'sanctions'",
            )
        if not isinstance(op, (ast.Eq, ast.NotEq)):
            raise self.fail(node, f"{left.choice_actor} can only be compared with == or !=")
        options = self.ns.choices[left.choice_actor]
        option = right.const
        if option not in options:
            hint = did_you_mean(option, options)
            if left.choice_actor in self.ns.reads:
                seen = ", ".join(options[2:]) or "none of its moves"
                mover, viewer = self.ns.reads[left.choice_actor][5:].split("@")
                raise self.fail(
                    b,
                    f"'{option}' is not a move of {mover} as {viewer} sees it "
                    f"({viewer} sees: {seen}; see seen_as){hint}",
                )
            raise self.fail(b, f"'{option}' is not an option of {left.choice_actor}{hint}")
        code = options.index(option) - 2  # codes: -2 none yet, -1 pass, 0.. menu order
        fn = left.fn
        if isinstance(op, ast.Eq):
            return _Node(lambda ctx: np.equal(fn(ctx), code), BOOL)
        return _Node(lambda ctx: np.not_equal(fn(ctx), code), BOOL)

    def _operand(self, node: ast.AST, depth: int) -> _Node:
        result = self.compile(node, depth)
        self._no_choice(result, node)
        return result

    def _no_choice(self, result: _Node, node: ast.AST) -> None:
        if result.type == CHOICE:
            raise self.fail(
                node,
                f"{result.choice_actor} can only be compared with an option id, "
                f"e.g. {result.choice_actor} == 'some_option'",
            )
        if result.type == "string":
            raise self.fail(node, "a string is only allowed in a comparison with last_<actor>")

    def _IfExp(self, node: ast.IfExp, depth: int) -> _Node:
        raise self.fail(node, "'x if c else y' is not allowed: use where(c, x, y)")

    def _Call(self, node: ast.Call, depth: int) -> _Node:
        if not isinstance(node.func, ast.Name):
            raise self.fail(node, "only calls of built-in functions by name are allowed")
        name = node.func.id
        if node.keywords:
            raise self.fail(node, f"{name}() takes positional arguments only")
        if any(isinstance(a, ast.Starred) for a in node.args):
            raise self.fail(node, "starred arguments are not allowed")
        if name not in FUNCTIONS:
            hint = did_you_mean(name, FUNCTIONS)
            allowed = ", ".join(FUNCTIONS)
            raise self.fail(node, f"unknown function '{name}'{hint}; allowed: {allowed}")
        args = [self._operand(a, depth) for a in node.args]
        if name in RANDOM_DRAWS:
            return self._random(node, name, args)
        if name in _MATH1:
            self._arity(node, name, args, 1)
            return self._apply(node, _MATH1[name], [_as_number(args[0])], NUM)
        if name in ("min", "max"):
            if len(args) < 2:
                raise self.fail(node, f"{name}() takes at least 2 arguments")
            ufunc = np.minimum if name == "min" else np.maximum
            nums = [_as_number(a) for a in args]
            result = nums[0]
            for nxt in nums[1:]:
                result = self._apply(node, ufunc, [result, nxt], NUM)
            return result
        if name == "clip":
            self._arity(node, name, args, 3)
            return self._apply(node, np.clip, [_as_number(a) for a in args], NUM)
        self._arity(node, name, args, 3)  # where
        cond, yes, no = _truth(args[0]), args[1], args[2]
        out_type = BOOL if yes.type == no.type == BOOL else NUM
        if out_type == NUM:
            yes, no = _as_number(yes), _as_number(no)
        return self._apply(node, np.where, [cond, yes, no], out_type)

    def _arity(self, node: ast.AST, name: str, args: list, count: int) -> None:
        if len(args) != count:
            plural = "s" if count != 1 else ""
            raise self.fail(node, f"{name}() takes {count} argument{plural}, got {len(args)}")

    def _apply(self, node: ast.AST, ufunc, args: list[_Node], out_type: str) -> _Node:
        if all(a.const is not None for a in args):
            with np.errstate(all="ignore"):
                value = ufunc(*[a.const for a in args])
            value = bool(value) if out_type == BOOL else float(value)
            return _fold(value, self.col(node))
        fns = [a.fn for a in args]
        if len(fns) == 1:
            f0 = fns[0]
            return _Node(lambda ctx: ufunc(f0(ctx)), out_type)
        if len(fns) == 2:
            f0, f1 = fns
            return _Node(lambda ctx: ufunc(f0(ctx), f1(ctx)), out_type)
        return _Node(lambda ctx: ufunc(*[f(ctx) for f in fns]), out_type)

    def _random(self, node: ast.Call, name: str, args: list[_Node]) -> _Node:
        if not self.ns.allow_random:
            raise self.fail(node, f"random draw {name}() is not allowed in {self.ns.purpose}")
        self._arity(node, name, args, RANDOM_DRAWS[name])
        if name in DRAW_LIMITS:
            index, limit, what = DRAW_LIMITS[name]
            value = _as_number(args[index]).const
            if value is not None and value > limit:
                raise self.fail(
                    node.args[index],
                    f"{name}() {what} = {value:g} is above the limit of {limit:,} "
                    f"(see Limits in docs/scenario-format.md)",
                )
        if self.random_offset is None:
            self.random_offset = self.col(node)
        fns = [_as_number(a).fn for a in args]
        out_type = BOOL if name == "bernoulli" else NUM
        site = next(self.sites) if self.sites is not None else None

        def run(ctx: Context) -> Any:
            rng = ctx.rng
            values = [f(ctx) for f in fns]
            if site is not None and hasattr(rng, "draw_site"):
                return rng.draw_site(site, name, *values)
            return rng.draw(name, *values)

        return _Node(run, out_type)


def _describe(node: ast.AST) -> str:
    labels = {
        "Attribute": "attribute access",
        "Subscript": "indexing",
        "Lambda": "a lambda",
        "ListComp": "a comprehension",
        "SetComp": "a comprehension",
        "DictComp": "a comprehension",
        "GeneratorExp": "a generator expression",
        "List": "a list",
        "Tuple": "a tuple",
        "Dict": "a dict",
        "Set": "a set",
        "NamedExpr": "assignment (:=)",
        "JoinedStr": "an f-string",
        "Await": "await",
        "Yield": "yield",
        "YieldFrom": "yield",
        "Starred": "a starred expression",
        "Slice": "a slice",
    }
    return labels.get(type(node).__name__, f"syntax '{type(node).__name__}'")


def compile_expr(
    text: str, namespace: Namespace, sites: Iterator[int] | None = None
) -> CompiledExpr:
    """Check `text` against the allow-list and compile it; raises ExpressionError with a column."""
    if len(text) > MAX_LENGTH:
        raise ExpressionError(f"expression is longer than {MAX_LENGTH} characters", 0)
    if not text.strip():
        raise ExpressionError("expression is empty", 0)
    stripped, lead = one_line(text)
    try:
        if "#" in stripped:
            raise ExpressionError("'#' is not allowed in an expression", lead + stripped.index("#"))
        _ascii_only(stripped, lead)
        tree = parse_expression(stripped)
    except SyntaxError as exc:
        offset = exc.offset or 0
        if offset <= 1 and exc.msg == "invalid syntax":
            offset = len(stripped.rstrip()) + 1
        column = max(offset, 1) - 1 + lead
        raise ExpressionError(f"syntax error: {exc.msg}", max(column, 0)) from None
    except (RecursionError, MemoryError, ValueError) as exc:
        raise ExpressionError(f"expression cannot be parsed ({type(exc).__name__})", 0) from None
    compiler = _Compiler(stripped, namespace, sites)
    try:
        node = compiler.compile(tree.body)
    except ExpressionError as exc:
        raise ExpressionError(str(exc), exc.offset + lead) from None
    except RecursionError:
        raise ExpressionError("expression is nested too deeply", 0) from None
    if node.type in (CHOICE, "string"):
        raise ExpressionError(
            "an option id or last_<actor> alone is not a value; compare them with ==", lead
        )
    const = node.const
    offset = None if compiler.random_offset is None else compiler.random_offset + lead
    return CompiledExpr(text, node.fn, frozenset(compiler.names), offset, const)


def _ascii_only(text: str, lead: int) -> None:
    """Refuse characters that Python would silently read as others: it normalises identifiers
    (NFKC), so the full-width `ｓｔｅｐ` would read `step` and `Ｔｒｕｅ` would read `True`.
    Names, numbers and operators are ASCII; text inside quotes is left alone."""
    quote = ""
    escaped = False
    for i, c in enumerate(text):
        if quote:
            if escaped:
                escaped = False
            elif c == "\\":
                escaped = True
            elif c == quote:
                quote = ""
            continue
        if c in "'\"":
            quote = c
            continue
        if ord(c) < 128 or unicodedata.normalize("NFKC", c) == c:
            continue  # ASCII, or a character Python reports itself (an undefined name, ...)
        name = unicodedata.name(c, "")
        shown = f"'{c}' " if c.isprintable() else ""
        what = f"U+{ord(c):04X}" + (f" {name}" if name else "")
        raise ExpressionError(
            f"non-ASCII character {shown}({what}) is not allowed in an expression (Python would "
            f"read it as '{unicodedata.normalize('NFKC', c)}'): write names, numbers and "
            "operators in plain ASCII",
            lead + i,
        )


def evaluate_constant(expr: CompiledExpr, parameters: Mapping[str, float]) -> float:
    """Evaluate an expression of parameters alone (policy numbers) to one float."""

    class _ParamContext:
        size = 1
        rng = None

        def value(self, name: str) -> float:
            return parameters[name]

    with np.errstate(all="ignore"):
        value = float(np.asarray(expr(_ParamContext())).reshape(-1)[0])
    return value


def check_finite(values: Any, what: str) -> None:
    """Stop a run with a clear error when an expression yields NaN or infinity."""
    arr = np.asarray(values)
    if arr.dtype.kind == "f" and not np.isfinite(arr).all():
        bad = arr[~np.isfinite(arr)].reshape(-1)[0]
        raise SimulationError(f"{what} evaluated to {bad}")

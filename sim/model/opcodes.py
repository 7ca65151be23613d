"""Compiled expressions lowered to a small stack machine, for the compiled backend.

The numpy engine evaluates an expression as the tree of closures `sim.model.expr` built. The
compiled backend (sim/engine/compiled.py) evaluates one run at a time, so it needs the same
expression as data: a list of (opcode, argument) pairs over a float64 stack. This module reads
the expression's text again with the rules of `sim.model.expr._Compiler` (constant folding with
the same Python and numpy operations, booleans as 0/1, no short circuits: every operand is
evaluated, as numpy does), and takes what the text alone does not say from the compiled
expression itself, by evaluating it once on a recording context: the names it reads (a policy
reads `last_<mover>` as its view of that move) and the random-number site of each draw.

Anything it cannot lower exactly raises `Unsupported`; the compiled backend then leaves that
model to the numpy engine (the same numbers, by definition).
"""

from __future__ import annotations

import ast
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from sim.format.quiet import warnings_silenced
from sim.format.syntax import one_line, parse_expression
from sim.model.compiled import Located, Model
from sim.model.expr import _BINOPS, _COMPARE, _MATH1

# opcodes (the kernel in sim/engine/compiled.py switches on these numbers)
CONST, STATE, RUNG, PEAK, STEP, LAST = 1, 2, 3, 4, 5, 6
ADD, SUB, MUL, DIV, FLOORDIV, MOD, POW, NEG = 10, 11, 12, 13, 14, 15, 16, 17
LT, LE, GT, GE, EQ, NE = 20, 21, 22, 23, 24, 25
AND, OR, NOT, TRUTH = 30, 31, 32, 33
ABS, EXP, LOG, SQRT, FLOOR, CEIL, RINT = 40, 41, 42, 43, 44, 45, 46
MIN, MAX, CLIP, WHERE = 50, 51, 52, 53
STORE, LOAD = 60, 61
POWS, CLIPS = 62, 63
"""A power whose exponent is the same in every run (numpy's loop then takes its fast paths:
x ** 2 is x * x, x ** 0.5 is sqrt(x), x ** -1 is 1 / x). CLIPS: a clip whose bounds are the same
in every run (numpy's loop for scalar bounds keeps x where it equals a bound)."""
BERNOULLI, POISSON, UNIFORM, NORMAL, BINOMIAL = 70, 71, 72, 73, 74
SITE = 75
"""Pushes nothing: sets the site of the draw that follows (its argument)."""

_BIN = {
    ast.Add: ADD,
    ast.Sub: SUB,
    ast.Mult: MUL,
    ast.Div: DIV,
    ast.FloorDiv: FLOORDIV,
    ast.Mod: MOD,
    ast.Pow: POW,
}
_CMP = {ast.Lt: LT, ast.LtE: LE, ast.Gt: GT, ast.GtE: GE, ast.Eq: EQ, ast.NotEq: NE}
_FN1 = {
    "abs": ABS,
    "exp": EXP,
    "log": LOG,
    "sqrt": SQRT,
    "floor": FLOOR,
    "ceil": CEIL,
    "round": RINT,
}
_DRAWS = {
    "bernoulli": BERNOULLI,
    "poisson": POISSON,
    "uniform": UNIFORM,
    "normal": NORMAL,
    "binomial": BINOMIAL,
}
NUM, BOOL, INT = 0, 1, 2
"""Result types: a float, a 0/1 truth value, an integer (rung, peak_rung, step and their sums)."""


class Unsupported(Exception):
    """An expression (or model) the compiled backend does not evaluate; numpy does instead."""


@dataclass
class Program:
    """One expression as (opcode, argument) pairs, its constants and its result type."""

    code: list[tuple[int, int]] = field(default_factory=list)
    consts: list[float] = field(default_factory=list)
    type: int = NUM
    registers: int = 0
    uses: set[int] = field(default_factory=set)
    """The opcodes it uses (the backend refuses a model whose math it cannot match)."""


@dataclass
class _Value:
    type: int
    const: Any = None  # a Python value when known at compile time (folded like expr.py)
    choice: str | None = None  # the name read, for `last_<actor>`
    text: str | None = None  # a string constant
    same: bool = False  # the same in every run (numpy holds it as a scalar): parameters, step

    @property
    def scalar(self) -> bool:
        return self.same or self.const is not None


class _Recorder:
    """A context that records what an expression reads and where it draws, evaluated once."""

    size = 1

    def __init__(self) -> None:
        self.names: list[str] = []
        self.sites: list[tuple[int, str]] = []

    @property
    def rng(self) -> _Recorder:
        return self

    def value(self, name: str) -> Any:
        self.names.append(name)
        return np.zeros(1)

    def draw_site(self, site: int, kind: str, *args: Any) -> np.ndarray:
        self.sites.append((site, kind))
        return np.zeros(1, dtype=bool) if kind == "bernoulli" else np.zeros(1)

    def draw(self, kind: str, *args: Any) -> np.ndarray:
        raise Unsupported("a draw without a site number")


class _Lowering:
    def __init__(self, model: Model, located: Located):
        self.model = model
        recorder = _Recorder()
        with np.errstate(all="ignore"), warnings_silenced():
            located.expr(recorder)
        self.reads = recorder.names
        self.sites = iter(recorder.sites)
        self.program = Program()
        self.state = {n: i for i, n in enumerate(model.state_names)}
        self.last_rows = model.last_names()

    def emit(self, op: int, arg: int = 0) -> None:
        self.program.code.append((op, arg))
        self.program.uses.add(op)

    def const(self, value: float) -> None:
        self.program.consts.append(float(value))
        self.emit(CONST, len(self.program.consts) - 1)

    def materialise(self, v: _Value) -> None:
        """Push a folded constant (lowered operands are pushed when they are lowered)."""
        if v.const is not None:
            self.const(float(v.const))

    def lower(self, node: ast.AST) -> _Value:
        method = getattr(self, "_" + type(node).__name__, None)
        if method is None:
            raise Unsupported(type(node).__name__)
        return method(node)

    # the nodes, as sim.model.expr._Compiler compiles them --------------------------------

    def _Constant(self, node: ast.Constant) -> _Value:
        value = node.value
        if isinstance(value, str):
            return _Value(NUM, text=value)
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise Unsupported("constant")
        return _Value(NUM, const=float(value))

    def _Name(self, node: ast.Name) -> _Value:
        name = node.id
        if name in ("true", "false"):
            return _Value(BOOL, const=name == "true")
        if name in self.model.parameters:  # read at run time in expr.py: never folded
            self.const(self.model.parameters[name])
            return _Value(NUM, same=True)
        if name in self.state:
            self.emit(STATE, self.state[name])
            return _Value(NUM)
        if name == "rung":
            self.emit(RUNG)
            return _Value(INT)
        if name == "peak_rung":
            self.emit(PEAK)
            return _Value(INT)
        if name == "step":
            self.emit(STEP)
            return _Value(INT, same=True)
        if name.startswith("last_"):
            read = next((r for r in self.reads if r == name or r.startswith(name + "@")), None)
            if read is None or read not in self.last_rows:
                raise Unsupported(f"name {name}")
            self.emit(LAST, self.last_rows[read])
            return _Value(INT, choice=read)
        raise Unsupported(f"name {name}")

    def _as_number(self, v: _Value) -> _Value:
        if v.type == BOOL and v.const is not None:
            return _Value(NUM, const=float(v.const))
        if v.type == BOOL:
            return _Value(NUM, same=v.same)
        return v

    def _truth(self, v: _Value) -> _Value:
        if v.type == BOOL:
            return v
        if v.const is not None:
            return _Value(BOOL, const=bool(v.const))
        self.emit(TRUTH)
        return _Value(BOOL)

    def operand(self, node: ast.AST) -> _Value:
        v = self.lower(node)
        if v.choice is not None or v.text is not None:
            raise Unsupported("choice or string outside a comparison")
        return v

    def _UnaryOp(self, node: ast.UnaryOp) -> _Value:
        v = self.operand(node.operand)
        if isinstance(node.op, ast.Not):
            v = self._truth(v)
            if v.const is not None:
                return _Value(BOOL, const=not v.const)
            self.emit(NOT)
            return _Value(BOOL)
        v = self._as_number(v)
        if isinstance(node.op, ast.UAdd):
            return v
        if isinstance(node.op, ast.USub):
            if v.const is not None:
                return _Value(NUM, const=-v.const)
            self.emit(NEG)
            return _Value(v.type, same=v.same)
        raise Unsupported("unary operator")

    def _pending(self, node: ast.AST) -> tuple[_Value, int]:
        """Lower an operand, remembering where its code starts (a constant is pushed later)."""
        start = len(self.program.code)
        return self.operand(node), start

    def _BinOp(self, node: ast.BinOp) -> _Value:
        op = _BIN.get(type(node.op))
        if op is None:
            raise Unsupported("binary operator")
        left, lstart = self._pending(node.left)
        left = self._as_number(left)
        right, rstart = self._pending(node.right)
        right = self._as_number(right)
        if left.const is not None and right.const is not None:
            return _Value(NUM, const=float(_BINOPS[type(node.op)][1](left.const, right.const)))
        self._push_pair(left, lstart, right)
        if left.type == INT and right.type == INT and op in (FLOORDIV, MOD, POW):
            raise Unsupported("integer //, % or ** (numpy's integer rules)")
        if op == POW:
            if not right.scalar:
                raise Unsupported("a power whose exponent differs from run to run")
            op = POWS
        self.emit(op)
        kind = INT if left.type == right.type == INT and op in (ADD, SUB, MUL) else NUM
        return _Value(kind, same=left.scalar and right.scalar)

    def _push_pair(self, left: _Value, lstart: int, right: _Value) -> None:
        """Constants are folded lazily: push a left constant before the right operand's code."""
        if left.const is not None:
            self.program.consts.append(float(left.const))
            self.program.code.insert(lstart, (CONST, len(self.program.consts) - 1))
            self.program.uses.add(CONST)
        self.materialise(right)

    def _BoolOp(self, node: ast.BoolOp) -> _Value:
        op = AND if isinstance(node.op, ast.And) else OR
        first = True
        for value in node.values:
            v = self._truth(self.operand(value))
            self.materialise(v)
            if not first:
                self.emit(op)
            first = False
        return _Value(BOOL)

    def _Compare(self, node: ast.Compare) -> _Value:
        operands = [node.left, *node.comparators]
        if len(operands) == 2:
            return self._pair(node.ops[0], operands[0], operands[1])
        # chained: each operand evaluated once, into a register, then neighbours compared
        values = []
        base = self.program.registers
        self.program.registers += len(operands)
        for i, a in enumerate(operands):
            v = self.lower(a)
            if v.choice is not None or v.text is not None:
                raise Unsupported("chained comparison with an option id")
            v = self._as_number(v)
            self.materialise(v)
            self.emit(STORE, base + i)
            values.append(v)
        for i, op in enumerate(node.ops):
            self.emit(LOAD, base + i)
            self.emit(LOAD, base + i + 1)
            self.emit(_CMP[type(op)])
            if i:
                self.emit(AND)
        return _Value(BOOL)

    def _pair(self, op: ast.cmpop, a: ast.AST, b: ast.AST) -> _Value:
        left, lstart = self._pending_any(a)
        right, _ = self._pending_any(b)
        if left.text is not None or right.text is not None or left.choice or right.choice:
            if left.text is not None:
                left, right = right, left
            if left.choice is None or right.text is None:
                raise Unsupported("comparison of an option id")
            self.const(self._code(left.choice, right.text))
            self.emit(_CMP[type(op)])
            return _Value(BOOL)
        left, right = self._as_number(left), self._as_number(right)
        if left.const is not None and right.const is not None:
            return _Value(BOOL, const=bool(_COMPARE[type(op)](left.const, right.const)))
        self._push_pair(left, lstart, right)
        self.emit(_CMP[type(op)])
        return _Value(BOOL)

    def _pending_any(self, node: ast.AST) -> tuple[_Value, int]:
        start = len(self.program.code)
        return self.lower(node), start

    def _code(self, read: str, option: str) -> int:
        """The move code of an option id for the name read (a view channel's labels)."""
        m = self.model
        if "@" in read:
            channel = next(c for c in m.channels if self.last_rows[read] == c.row)
            labels = ("none", "pass", *channel.labels)
        else:
            actor = m.actors.index(read[len("last_") :])
            labels = ("none", "pass", *[o.id for o in m.options[actor]])
        return labels.index(option) - 2

    def _Call(self, node: ast.Call) -> _Value:
        if not isinstance(node.func, ast.Name) or node.keywords:
            raise Unsupported("call")
        name = node.func.id
        if name in _DRAWS:
            return self._draw(node, name)
        starts = []
        args = []
        for a in node.args:
            v, s = self._pending(a)
            starts.append(s)
            args.append(v)
        if name in _FN1:
            (v,) = [self._as_number(a) for a in args]
            if v.const is not None:
                return _Value(NUM, const=self._fold(_MATH1[name], [v.const]))
            self.emit(_FN1[name])
            return _Value(INT if v.type == INT and name == "abs" else NUM)
        if name in ("min", "max"):
            ufunc = np.minimum if name == "min" else np.maximum
            nums = [self._as_number(a) for a in args]
            result, rstart = nums[0], starts[0]
            for nxt, _ in zip(nums[1:], starts[1:], strict=True):
                if result.const is not None and nxt.const is not None:
                    result = _Value(NUM, const=self._fold(ufunc, [result.const, nxt.const]))
                    continue
                self._push_pair(result, rstart, nxt)
                self.emit(MIN if name == "min" else MAX)
                result = _Value(INT if result.type == nxt.type == INT else NUM)
            return result
        if name == "clip":
            nums = [self._as_number(a) for a in args]
            if all(v.const is not None for v in nums):
                return _Value(NUM, const=self._fold(np.clip, [v.const for v in nums]))
            self._push_consts(nums, starts)
            self.emit(CLIPS if nums[1].scalar and nums[2].scalar else CLIP)
            return _Value(INT if all(v.type == INT for v in nums) else NUM)
        if name == "where":
            cond, yes, no = args
            cond = self._truth_at(cond, starts[0])
            both_bool = yes.type == no.type == BOOL
            if not both_bool:
                yes, no = self._as_number(yes), self._as_number(no)
            parts = [cond, yes, no]
            if all(v.const is not None for v in parts):
                value = self._fold(np.where, [v.const for v in parts])
                return _Value(BOOL if both_bool else NUM, const=value)
            self._push_consts(parts, starts)
            self.emit(WHERE)
            if both_bool:
                return _Value(BOOL)
            return _Value(INT if yes.type == no.type == INT else NUM)
        raise Unsupported(f"function {name}")

    def _truth_at(self, v: _Value, start: int) -> _Value:
        """`_truth` of an operand whose code ends where the next operand's begins."""
        if v.type == BOOL or v.const is not None:
            return self._truth(v)
        # emitted later than its operand: insert TRUTH right after the operand's code
        return _Value(BOOL, const=None, text="__truth__")

    def _push_consts(self, values: list[_Value], starts: list[int]) -> None:
        """Insert pushes for constant operands (and pending TRUTHs) at their places."""
        ends = starts[1:] + [len(self.program.code)]
        shift = 0
        for v, start, end in zip(values, starts, ends, strict=True):
            if v.const is not None:
                self.program.consts.append(float(v.const))
                self.program.code.insert(start + shift, (CONST, len(self.program.consts) - 1))
                self.program.uses.add(CONST)
                shift += 1
            elif v.text == "__truth__":
                self.program.code.insert(end + shift, (TRUTH, 0))
                self.program.uses.add(TRUTH)
                v.text = None
                shift += 1

    @staticmethod
    def _fold(ufunc: Any, values: list[Any]) -> Any:
        with np.errstate(all="ignore"):
            value = ufunc(*values)
        return bool(value) if isinstance(value, (bool, np.bool_)) else float(value)

    def _draw(self, node: ast.Call, name: str) -> _Value:
        args = []
        starts = []
        for a in node.args:
            v, s = self._pending(a)
            args.append(self._as_number(v))
            starts.append(s)
        self._push_consts(args, starts)
        site, kind = next(self.sites, (None, None))
        if kind != name:
            raise Unsupported("draw sites")
        self.emit(SITE, site)
        self.emit(_DRAWS[name])
        return _Value(BOOL if name == "bernoulli" else NUM)


def lower(model: Model, located: Located) -> Program:
    """The stack-machine program of one compiled expression (Unsupported if it has none)."""
    expr = located.expr
    if expr.constant is not None:
        program = Program()
        program.consts.append(float(expr.constant))
        program.code.append((CONST, 0))
        program.uses.add(CONST)
        program.type = BOOL if isinstance(expr.constant, bool) else NUM
        return program
    tree = parse_expression(one_line(expr.source)[0])
    lowering = _Lowering(model, located)
    value = lowering.lower(tree.body)
    if value.choice is not None or value.text is not None:
        raise Unsupported("expression value")
    lowering.materialise(value)
    if next(lowering.sites, None) is not None:
        raise Unsupported("draw sites")
    program = lowering.program
    program.type = value.type
    return program

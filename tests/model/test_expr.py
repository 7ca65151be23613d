"""The safe expression compiler (sim/expr.py): hostile input, error columns, semantics."""

from __future__ import annotations

import contextlib

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sim.errors import ExpressionError, ScenarioError
from sim.model.expr import (
    MAX_DEPTH,
    MAX_LENGTH,
    Namespace,
    compile_expr,
    constant_expr,
    evaluate_constant,
)
from sim.model.loading import load_text
from tests.conftest import parse_in_threads

NS = Namespace(
    parameters=frozenset({"x", "y", "c"}),
    state=frozenset({"s"}),
    builtins=frozenset({"step", "rung"}),
    choices={"last_us": ("none", "pass", "opt", "other")},
)

# (id, text, a word the message must contain (`a|b`: either), 0-based column of the offending
# token or None)
HOSTILE = [
    ("attribute", "x.__class__", "attribute", 0),
    ("attribute-chain", "().__class__.__bases__", "attribute", 0),
    ("attribute-after-lead", "  x.real", "attribute", 2),
    ("dunder-name", "1 + __class__", "__class__", 4),
    ("dunder-import", "__import__('os')", "unknown function", 0),
    ("import-statement", "import os", "syntax", None),
    ("lambda", "lambda: 1", "lambda", 0),
    ("list-comp", "[i for i in x]", "comprehension", 0),
    ("set-comp", "{i for i in x}", "comprehension", 0),
    ("dict-comp", "{i: 1 for i in x}", "comprehension", 0),
    ("genexp", "(i for i in x)", "generator", 0),
    ("walrus", "(x := 1)", ":=", 1),
    ("f-string", "f'{x}'", "f-string", 0),
    ("subscript", "x[0]", "indexing", 0),
    ("slice", "x[0:1]", "indexing", 0),
    ("starred", "min(*x)", "starred", 0),
    ("keyword-arg", "min(a=1)", "positional", 0),
    ("call-open", "2 * open('f')", "unknown function 'open'", 4),
    ("call-eval", "eval('1')", "unknown function 'eval'", 0),
    ("call-exec", "exec('1')", "unknown function 'exec'", 0),
    ("call-getattr", "getattr(x, 'y')", "unknown function 'getattr'", 0),
    ("call-globals", "globals()", "unknown function 'globals'", 0),
    ("call-print", "print(1)", "unknown function 'print'", 0),
    ("call-compile", "compile('1', '', 'eval')", "unknown function 'compile'", 0),
    ("call-lambda", "1 + (lambda: 1)()", "only calls", 4),
    ("call-method", "x.y()", "only calls", 0),
    ("function-uncalled", "sqrt + 1", "call it", 0),
    ("pow-tower", "10**10**10", "overflows", 0),
    ("pow-tower-inner", "9**9**9**9", "overflows", 3),
    ("pow-complex", "(-1) ** 0.5", "complex", 0),
    ("huge-int-5000", "1" * 5000, "longer", 0),
    ("huge-int-1999", "1" * 1999, "too large", 0),
    ("float-overflow", "1e309", "overflow", 0),
    ("division-by-zero", "x + 1 / 0", "undefined", 4),
    ("log-zero", "log(0)", "undefined", 0),
    ("parens-300", "(" * 300 + "1" + ")" * 300, "nested", None),
    ("unary-minus-5000", "-" * 5000 + "1", "longer", 0),
    ("unary-minus-deep", "-" * 1000 + "x", "nested too deeply", None),
    ("not-deep", "not " * 300 + "x", "nested too deeply", None),
    ("calls-deep", "abs(" * 150 + "x" + ")" * 150, "nested too deeply", None),
    ("too-long", "x + " * (MAX_LENGTH // 4) + "x", "longer", 0),
    ("string-value", "'abc' + 1", "string", 0),
    ("string-alone", "'abc'", "alone", 0),
    ("none", "None", "None", 0),
    ("ellipsis", "...", "Ellipsis", 0),
    ("bytes", "b'x'", "not allowed", 0),
    ("complex", "1j", "1j", 0),
    ("tuple", "(1, 2)", "tuple", 0),
    ("list", "[1]", "list", 0),
    ("dict", "{1: 2}", "dict", 0),
    ("set", "{1}", "set", 0),
    ("ifexp", "x if c else y", "where(", 0),
    ("string-vs-name", "x == 'opt'", "last_<actor>", 0),
    ("strings-compared", "'a' < 'b'", "last_<actor>", 0),
    ("choice-arithmetic", "last_us + 1", "last_us can only be compared", 0),
    ("choice-in-call", "min(x, last_us)", "last_us can only be compared", 7),
    ("choice-alone", "last_us", "alone", 0),
    ("choice-unknown-option", "last_us == 'unknown_option'", "not an option of last_us", 11),
    ("choice-misspelt", "'othr' == last_us", "did you mean 'other'", 0),
    ("choice-ordering", "last_us < 'x'", "== or !=", 0),
    ("in", "x in y", "In", 0),
    ("is", "x is y", "Is", 0),
    ("matmul", "x @ y", "MatMult", 0),
    ("bitand", "x & y", "BitAnd", 0),
    ("invert", "~x", "Invert", 0),
    ("arity-sqrt", "sqrt(1, 2)", "takes 1 argument, got 2", 0),
    ("arity-clip", "clip(1)", "takes 3 arguments, got 1", 0),
    ("arity-poisson", "poisson()", "takes 1 argument, got 0", 0),
    ("arity-min", "min(1)", "at least 2", 0),
    ("await", "await x", "await", 0),
    ("yield", "yield", "syntax", None),
    ("assignment", "x = 1", "syntax", 2),
    ("semicolon", "x; y", "syntax", 1),
    ("syntax-column", "x + $", "syntax", 4),
    ("null-byte", "x\x00", "syntax|cannot be parsed", None),
    ("undefined", "z + 1", "undefined name 'z'", 0),
    ("empty", "", "empty", 0),
    ("whitespace", " \t\n ", "empty", 0),
]


@pytest.mark.parametrize(
    ("text", "word", "offset"), [c[1:] for c in HOSTILE], ids=[c[0] for c in HOSTILE]
)
def test_hostile_input_is_rejected(text: str, word: str, offset: int | None) -> None:
    with pytest.raises(ExpressionError) as info:
        compile_expr(text, NS)
    assert any(w.lower() in str(info.value).lower() for w in word.split("|"))
    assert 0 <= info.value.offset <= len(text)
    if offset is not None:
        assert info.value.offset == offset


def test_hostile_list_is_large_and_ids_unique() -> None:
    assert len(HOSTILE) >= 35
    assert len({c[0] for c in HOSTILE}) == len(HOSTILE)


def test_depth_limit_is_an_exact_boundary() -> None:
    compile_expr("-" * MAX_DEPTH + "x", NS)
    with pytest.raises(ExpressionError, match="nested too deeply") as info:
        compile_expr("-" * (MAX_DEPTH + 1) + "x", NS)
    assert info.value.offset == MAX_DEPTH + 1  # the node past the limit (here: `x`)


def test_column_counts_characters_not_bytes() -> None:
    ns = Namespace(parameters=frozenset({"été", "x"}))
    with pytest.raises(ExpressionError) as info:
        compile_expr("été + x.y", ns)
    assert info.value.offset == 6


def test_random_draws_rejected_where_not_allowed() -> None:
    ns = Namespace(parameters=frozenset({"x"}), allow_random=False, purpose="policy number")
    with pytest.raises(
        ExpressionError, match=r"bernoulli\(\) is not allowed in policy number"
    ) as e:
        compile_expr("x + bernoulli(0.5)", ns)
    assert e.value.offset == 4
    assert compile_expr("2 * x", ns).random_offset is None


# --- at load time: file:line:col -----------------------------------------------------------

SCENARIO = """\
schema: 1
id: t
title: T
horizon: 3
ladder: [calm, war]
actors:
  us: {label: US}
  them: {label: Them}
turn_order: [us, them]
options:
  us:
    - id: wait
      requires: REQ
    - id: strike
      rung: war
  them:
    - id: wait
policies:
  us: {kind: fixed, option: wait}
  them: {kind: fixed, option: wait}
every_step:
  payoffs: {us: PAY}
outcomes:
  war:
    when: WHEN
end: ongoing
"""


def load(req: str = "rung < 1", pay: str = "-rung", when: str = "rung >= 1") -> None:
    text = SCENARIO.replace("REQ", req).replace("PAY", pay).replace("WHEN", when)
    load_text(text, "bad.yaml")


def test_valid_skeleton_loads() -> None:
    load()


@pytest.mark.parametrize(
    ("field", "value", "where", "word"),
    [
        # line 13 is `      requires: REQ`: the value starts at column 17
        ("req", "x.__class__", "bad.yaml:13:17:", "attribute"),
        ("req", "rung > 0 and x.y", "bad.yaml:13:30:", "attribute"),
        # a quoted value: the quote is column 17, the expression starts at 18
        ("req", "'rung > 0 and __import__(1)'", "bad.yaml:13:31:", "__import__"),
        ("req", "last_us == 'stirke'", "bad.yaml:13:28:", "did you mean 'strike'"),
        ("req", '"(lambda: 1)()"', "bad.yaml:13:18:", "only calls"),
        # line 22 is `  payoffs: {us: PAY}`: the value starts at column 17
        ("pay", '"-rung + open(1)"', "bad.yaml:22:26:", "unknown function 'open'"),
        ("pay", "rung ** 10**10**10", "bad.yaml:22:25:", "overflows"),
        ("pay", "last_us + 1", "bad.yaml:22:17:", "last_us can only be compared"),
        # line 25 is `    when: WHEN`: the value starts at column 11
        ("when", "'rung >= 1 and (x := 2)'", "bad.yaml:25:27:", ":="),
    ],
)
def test_load_time_error_has_file_line_col(field: str, value: str, where: str, word: str) -> None:
    with pytest.raises(ScenarioError) as info:
        load(**{field: value})
    message = str(info.value)
    assert message.startswith(where + " "), message
    assert word in message
    assert len(info.value.problems) == 1


def test_load_time_reports_every_bad_expression() -> None:
    with pytest.raises(ScenarioError) as info:
        load(req="x.y", pay='"1 + eval(1)"')
    assert [str(p).split(": ")[0] for p in info.value.problems] == [
        "bad.yaml:13:17",
        "bad.yaml:22:22",
    ]


# --- semantics on a fake context -------------------------------------------------------------


class FakeRng:
    def __init__(self, size: int):
        self.size = size
        self.calls: list[tuple[str, tuple]] = []

    def draw(self, kind: str, *args):
        self.calls.append((kind, args))
        return np.full(self.size, False if kind == "bernoulli" else 0.3)


class FakeCtx:
    def __init__(self, **values):
        self.values = {"last_us": np.array([-2, -1, 0, 1]), "step": 2, **values}
        self.size = 4
        self.rng = FakeRng(self.size)

    def value(self, name: str):
        return self.values[name]


X = np.array([-1.0, 0.0, 0.5, 2.0])
Y = np.array([3.0, 1.0, -2.0, 0.5])


def run(text: str, **values):
    ctx = FakeCtx(x=X, y=Y, c=np.array([1.0, 0.0, 2.0, 0.0]), s=4.0, **values)
    with np.errstate(all="ignore"):
        return np.broadcast_to(compile_expr(text, NS)(ctx), (4,))


T, F = True, False


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1 + 2 * 3", [7] * 4),
        ("(1 + 2) * 3", [9] * 4),
        ("2 ** 3 ** 2", [512] * 4),
        ("-2 ** 2", [-4] * 4),
        ("-7 % 3 + 7 // 2", [5] * 4),
        ("x + y * 2", X + Y * 2),
        ("x - y - 1", X - Y - 1),
        ("x / 2 / 2", X / 4),
        ("s * step", [8] * 4),
        ("x > 0 and y > 0", [F, F, F, T]),
        ("x > 0 or y > 0", [T, T, T, T]),
        ("not x > 0", [T, T, F, F]),
        ("c and x", [T, F, T, F]),
        ("not c", [F, T, F, T]),
        ("0 < x < 2", [F, F, T, F]),
        ("-1 <= x < 1 != y", [T, F, T, F]),
        ("x == y or x != x", [F, F, F, F]),
        ("where(x > 0, x, -x)", np.abs(X)),
        ("where(c, 1, 0)", [1, 0, 1, 0]),
        ("min(x, y, 0)", np.minimum(np.minimum(X, Y), 0)),
        ("max(x, y, 0)", np.maximum(np.maximum(X, Y), 0)),
        ("clip(x, 0, 1)", np.clip(X, 0, 1)),
        ("abs(x)", np.abs(X)),
        ("exp(x)", np.exp(X)),
        ("log(1 + abs(x))", np.log1p(np.abs(X))),
        ("sqrt(abs(y))", np.sqrt(np.abs(Y))),
        ("floor(x) + ceil(y) + round(x)", np.floor(X) + np.ceil(Y) + np.rint(X)),
        ("true + true", [2] * 4),
        ("(x > 0) + (y > 0)", [1, 1, 1, 2]),
        ("last_us == 'opt'", [F, F, T, F]),
        ("last_us == 'none'", [T, F, F, F]),
        ("last_us == 'pass'", [F, T, F, F]),
        ("last_us != 'other'", [T, T, T, F]),
        ("'other' == last_us", [F, F, F, T]),
        ("last_us == 'opt' or last_us == 'other'", [F, F, T, T]),
        ("0 < x < 2 and last_us != 'none'", [F, F, T, F]),
    ],
)
def test_semantics(text: str, expected) -> None:
    np.testing.assert_allclose(run(text).astype(float), np.asarray(expected, dtype=float))


@pytest.mark.parametrize(
    ("text", "constant"),
    [
        ("1 + 2", 3.0),
        ("-(2 * 3)", -6.0),
        ("1 < 2", True),
        ("not 0", True),
        ("true + true", 2.0),
        ("min(3, 1, 2)", 1.0),
        ("where(0, 2, 3)", 3.0),
        ("clip(5, 0, 1)", 1.0),
        ("sqrt(16)", 4.0),
        ("x + 1", None),
        ("step", None),
        ("last_us == 'opt'", None),
    ],
)
def test_constant_folding(text: str, constant) -> None:
    compiled = compile_expr(text, NS)
    assert compiled.constant == constant
    assert type(compiled.constant) is type(constant)


def test_names_and_literal_constants() -> None:
    compiled = compile_expr("x + y * step + (last_us == 'opt')", NS)
    assert compiled.names == {"x", "y", "step", "last_us"}
    assert compiled.source == "x + y * step + (last_us == 'opt')"
    assert constant_expr(2.5).constant == 2.5 and constant_expr(2.5)(None) == 2.5
    assert evaluate_constant(compile_expr("x * 2 + 1", NS), {"x": 3.0}) == 7.0


@pytest.mark.parametrize(
    ("text", "kind", "args", "offset"),
    [
        ("bernoulli(0.5)", "bernoulli", [0.5], 0),
        ("1 + poisson(2 * x)", "poisson", [2 * X], 4),
        ("  binomial(10, c > 0)", "binomial", [10.0, [1.0, 0.0, 1.0, 0.0]], 2),
        ("uniform(0, 1) + normal(x, 1)", "uniform", [0.0, 1.0], 0),
        ("x * normal(y, 2)", "normal", [Y, 2.0], 4),
    ],
)
def test_random_draws(text: str, kind: str, args: list, offset: int) -> None:
    compiled = compile_expr(text, NS)
    assert compiled.random_offset == offset and compiled.uses_random
    ctx = FakeCtx(x=X, y=Y, c=np.array([1.0, 0.0, 2.0, 0.0]))
    compiled(ctx)
    got_kind, got_args = ctx.rng.calls[0]
    assert got_kind == kind
    assert len(got_args) == len(args)
    for got, want in zip(got_args, args, strict=True):
        np.testing.assert_allclose(np.asarray(got, dtype=float), want)


def test_no_random_offset_without_draws() -> None:
    compiled = compile_expr("x + 1", NS)
    assert compiled.random_offset is None and not compiled.uses_random


def test_bernoulli_is_boolean_and_drawn_once_per_evaluation() -> None:
    ctx = FakeCtx(x=X)
    result = compile_expr("where(bernoulli(0.5), 1, 0) + 0.2 < uniform(0, 1) < 0.5", NS)(ctx)
    assert [kind for kind, _ in ctx.rng.calls] == ["bernoulli", "uniform"]
    np.testing.assert_array_equal(result, [True] * 4)  # 0 + 0.2 < 0.3 < 0.5 (fake draws)


# --- properties ------------------------------------------------------------------------------

LEAVES = st.sampled_from(
    [("x", lambda x, y: x), ("y", lambda x, y: y)]
    + [(repr(v), lambda x, y, v=v: np.full_like(x, v)) for v in (0, 1, 2, 3, 0.5, 2.5)]
)
BINARY = {
    "+": np.add,
    "-": np.subtract,
    "*": np.multiply,
    "/": np.true_divide,
    "//": np.floor_divide,
    "%": np.mod,
    "**": np.power,
}
CALLS = {"min": np.minimum, "max": np.maximum}


def _extend(children):
    def binary(op, a, b):
        return f"({a[0]} {op} {b[0]})", lambda x, y: BINARY[op](a[1](x, y), b[1](x, y))

    def call(name, a, b):
        return f"{name}({a[0]}, {b[0]})", lambda x, y: CALLS[name](a[1](x, y), b[1](x, y))

    def unary(name, a):
        if name == "-":
            return f"(-{a[0]})", lambda x, y: np.negative(a[1](x, y))
        return f"abs({a[0]})", lambda x, y: np.abs(a[1](x, y))

    return st.one_of(
        st.builds(binary, st.sampled_from(sorted(BINARY)), children, children),
        st.builds(call, st.sampled_from(sorted(CALLS)), children, children),
        st.builds(unary, st.sampled_from(["-", "abs"]), children),
    )


TREES = st.recursive(LEAVES, _extend, max_leaves=8)
XS = np.array([-2.0, -0.5, 0.0, 0.75, 1.0, 3.0])
YS = np.array([1.0, 0.0, -3.0, 2.0, 0.25, -1.0])


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(TREES)
def test_compiled_arithmetic_matches_numpy(tree) -> None:
    text, reference = tree
    try:
        compiled = compile_expr(text, NS)
    except ExpressionError as exc:  # only constant sub-expressions are checked at compile time
        assert "constant" in str(exc) or "nested too deeply" in str(exc), (text, exc)
        return
    ctx = FakeCtx(x=XS, y=YS)
    ctx.size = len(XS)
    with np.errstate(all="ignore"):
        got = np.broadcast_to(np.asarray(compiled(ctx), dtype=float), XS.shape)
        want = reference(XS, YS)
    np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-300, equal_nan=True, err_msg=text)


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=126), max_size=40))
def test_arbitrary_text_compiles_or_raises_expression_error(text: str) -> None:
    try:
        compiled = compile_expr(text, NS)
    except ExpressionError as exc:
        assert isinstance(exc.offset, int) and exc.offset >= 0
    else:
        assert compiled.source == text


TOKENS = st.sampled_from(
    [
        "x",
        "y",
        "last_us",
        "'opt'",
        "1",
        "0.5",
        "1e308",
        "(",
        ")",
        ",",
        " + ",
        " ** ",
        " < ",
        " == ",
        " and ",
        " not ",
        "-",
        "min(",
        "where(",
        "poisson(",
        "sqrt(",
        ".",
        "[",
        "lambda",
    ]
)


@settings(max_examples=300, deadline=None)
@given(st.lists(TOKENS, max_size=20).map("".join))
def test_token_soup_compiles_or_raises_expression_error(text: str) -> None:
    with contextlib.suppress(ExpressionError):
        compile_expr(text, NS)


def test_true_false_literals_as_in_yaml():
    assert compile_expr("true", NS).constant is True
    assert compile_expr("not false", NS).constant is True
    assert compile_expr("where(false, 1, 2)", NS).constant == 2.0


def test_comment_sign_is_rejected_with_its_column():
    with pytest.raises(ExpressionError, match="'#' is not allowed") as err:
        compile_expr("x + 1 # note", NS)
    assert err.value.offset == 6


def test_long_sums_are_not_mistaken_for_deep_nesting():
    text = " + ".join(["x"] * 60)
    assert compile_expr(text, NS).names == {"x"}


def test_expressions_compile_from_many_threads_at_once():
    # The web server compiles scenarios in a thread pool; every parse must survive that.
    names = frozenset({f"a{i}" for i in range(40)} | {"b", "c"})

    def compile_one(text: str) -> None:
        compile_expr(text, Namespace(parameters=names))

    assert parse_in_threads(compile_one, rounds=80) == []

"""Expression parses stay correct when the web server's threads parse at once."""

from __future__ import annotations

import ast

from sim.format.syntax import parse_expression
from tests.conftest import THREADED_SOURCE as SOURCE
from tests.conftest import parse_in_threads


def test_parses_from_many_threads_under_collection_pressure_all_succeed():
    # CPython 3.11.7's raw ast.parse fails this with "AST constructor recursion depth mismatch".
    assert parse_in_threads(parse_expression, rounds=200) == []


def test_the_parse_gives_the_same_tree_as_ast_parse():
    assert ast.dump(parse_expression(SOURCE)) == ast.dump(ast.parse(SOURCE, mode="eval"))

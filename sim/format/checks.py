"""Cross-reference checks of a validated scenario: every name it points to must exist."""

from __future__ import annotations

import ast
import keyword
import math
import re
import unicodedata
from collections.abc import Iterable, Mapping

from sim.errors import Problem, did_you_mean
from sim.format import bibliography, views
from sim.format.scenario import (
    RESERVED_OPTION_IDS,
    Effects,
    FixedPolicy,
    LogitPolicy,
    Option,
    Scenario,
    SequencePolicy,
    TablePolicy,
)
from sim.format.source import Path, SourceMap
from sim.format.syntax import one_line, parse_expression

BUILTIN_NAMES = ("step", "rung", "peak_rung")
FUNCTIONS = (
    *("abs", "exp", "log", "sqrt", "floor", "ceil", "round", "min", "max", "clip", "where"),
    *("bernoulli", "poisson", "binomial", "uniform", "normal"),
)
"""The expression language's functions (sim/model/expr.py implements exactly these; a test
keeps the two equal): reserved, so no parameter or state variable may take their names."""
MAX_LENGTH = 2000
"""The longest expression text (the same limit as sim/model/expr.py)."""
PROBABILITY_TOLERANCE = 1e-9
SLUG = re.compile(r"[A-Za-z0-9_-]+")
"""The alphabet of ids (actors, outcomes, alternative policies; option and branch ids and the
scenario id have stricter patterns of their own): ASCII letters, digits, `_` and `-`."""
NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]*")
"""Parameter and state variable names: ASCII identifiers, as expressions read them."""
MAX_ID_LENGTH = 100
"""Longest id or name (ids name output files and folders)."""


class _Checker:
    def __init__(self, scenario: Scenario, source: SourceMap):
        self.s = scenario
        self.src = source
        self.problems: list[Problem] = []

    def error(self, path: Path, message: str, key: bool = False) -> None:
        self.problems.append(self.src.problem(path, message, key))

    def known(
        self, path: Path, name: str, choices: Iterable[str], what: str, key=False, where=""
    ) -> bool:
        choices = list(choices)
        if name in choices:
            return True
        self.error(path, f"unknown {what} '{name}'{where}{did_you_mean(name, choices)}", key)
        return False

    def run(self) -> list[Problem]:
        self.sources()
        self.slugs()
        self.names()
        self.ladder()
        self.actors()
        self.options()
        self.views()
        for actor, policy in self.s.policies.items():
            if self.known(("policies", actor), actor, self.s.actors, "actor", key=True):
                self.policy(actor, policy, ("policies", actor))
        for actor, named in self.s.alternatives.items():
            if not self.known(("alternatives", actor), actor, self.s.actors, "actor", key=True):
                continue
            for name, policy in named.items():
                self.policy(actor, policy, ("alternatives", actor, name))
        self.payoffs(self.s.every_step.payoffs, ("every_step", "payoffs"))
        self.effects(self.s.every_step.effects, ("every_step", "effects"))
        for oid, terminal in self.s.outcomes.items():
            self.payoffs(terminal.payoffs, ("outcomes", oid, "payoffs"))
        self.payoffs(self.s.terminal_value, ("terminal_value",))
        return self.problems

    def sources(self) -> None:
        """Each source is a bibliography key or alias, or a citation written out (or a URL)."""
        for i, source in enumerate(self.s.sources):
            if bibliography.is_name(source) or bibliography.is_free_citation(source):
                continue
            keys = bibliography.keys()
            hint = did_you_mean(source, bibliography.names())
            self.error(
                ("sources", i),
                f"unknown source '{source}'{hint}: name a bibliography key ({', '.join(keys)}; "
                "see docs/sources.md), or write the citation out in full",
            )

    def slugs(self) -> None:
        """Ids are slugs: ASCII letters, digits, `_` and `-`, so that they are safe in file
        names, tables and the commands printed for copying."""
        groups = [
            ("actors", "actor id", self.s.actors),
            ("outcomes", "outcome id", self.s.outcomes),
        ]
        for group, what, ids in groups:
            for name in ids:
                if not SLUG.fullmatch(name) or len(name) > MAX_ID_LENGTH:
                    self.error((group, name), _bad_id(name, what, "letters, digits, _ and -"), True)
        for actor, named in self.s.alternatives.items():
            for name in named:
                if not SLUG.fullmatch(name) or len(name) > MAX_ID_LENGTH:
                    what = "alternative policy name"
                    self.error(
                        ("alternatives", actor, name),
                        _bad_id(name, what, "letters, digits, _ and -"),
                        True,
                    )

    def names(self) -> None:
        s = self.s
        reserved = set(BUILTIN_NAMES) | set(FUNCTIONS) | {"true", "false", "and", "or", "not"}
        for group in ("parameters", "state"):
            for name in getattr(s, group):
                path = (group, name)
                if not name.isidentifier() or name.startswith("_"):
                    self.error(path, f"'{name}' is not a valid name (letters, digits, _)", True)
                elif keyword.iskeyword(name) or name in ("True", "False", "None"):
                    self.error(path, f"'{name}' is a Python keyword; choose another name", True)
                elif unicodedata.normalize("NFKC", name) != name:
                    self.error(
                        path,
                        f"'{name}' would be read as "
                        f"'{unicodedata.normalize('NFKC', name)}'; write it that way",
                        True,
                    )
                elif not NAME.fullmatch(name) or len(name) > MAX_ID_LENGTH:
                    self.error(path, _bad_id(name, "name", "letters, digits and _"), True)
                elif name in reserved or name.startswith("last_"):
                    self.error(path, f"'{name}' is a built-in name; choose another", key=True)
        for name in set(s.parameters) & set(s.state):
            self.error(("state", name), f"'{name}' is both a parameter and a state variable", True)
        for name, p in s.parameters.items():
            self.bounds(("parameters", name, "value"), "value", p.value, p.min, p.max)
        for name, v in s.state.items():
            self.bounds(("state", name, "initial"), "initial", v.initial, v.min, v.max)
            for i, actor in enumerate(v.visible_to or ()):
                self.known(("state", name, "visible_to", i), actor, s.actors, "actor")
        self.tallies()

    def tallies(self) -> None:
        """A tally adds to other, untallied state variables and charges known actors."""
        for name, v in self.s.state.items():
            if v.tally is None:
                continue
            path = ("state", name, "tally")
            for i, target in enumerate(v.tally.into):
                where = path + ("into", i)
                if not self.known(where, target, self.s.state, "state variable"):
                    continue
                if target == name:
                    self.error(where, f"'{name}' cannot tally into itself")
                elif self.s.state[target].tally is not None:
                    self.error(
                        where,
                        f"'{target}' has a tally of its own: a tally adds only to plain totals",
                    )
            if len(set(v.tally.into)) < len(v.tally.into):
                self.error(path + ("into",), "a variable is named twice")
            self.payoffs(v.tally.payoffs, path + ("payoffs",))

    def views(self) -> None:
        """`seen_as` names other actors and slug labels that no table row can confuse."""
        for mover, menu in self.s.options.items():
            if mover not in self.s.actors:
                continue
            for i, option in enumerate(menu):
                for viewer, label in option.seen_as.items():
                    path = ("options", mover, i, "seen_as", viewer)
                    if not self.known(path, viewer, self.s.actors, "actor", True, " in seen_as"):
                        continue
                    if viewer == mover:
                        self.error(path, f"{mover} always sees its own moves: remove this", True)
                    elif label is not None:
                        self.label(mover, viewer, option, label, menu, path)

    def label(self, mover: str, viewer: str, option, label: str, menu, path: Path) -> None:
        if not SLUG.fullmatch(label) or len(label) > MAX_ID_LENGTH:
            self.error(path, _bad_id(label, "label", "letters, digits, _ and -"))
        elif label in (*RESERVED_OPTION_IDS, "default"):
            self.error(path, f"label '{label}' is reserved")
        else:
            other = next((o for o in menu if o.id == label and o is not option), None)
            if other is not None and views.label_of(other, viewer, mover) != label:
                shown = views.label_of(other, viewer, mover)
                seen = "does not see" if shown is None else f"sees as '{shown}'"
                self.error(
                    path,
                    f"label '{label}' is the id of {mover}'s option '{label}', which {viewer} "
                    f"{seen}: a table row or a test last_{mover} == '{label}' in {viewer}'s "
                    "policy would be ambiguous; choose another label",
                )

    def bounds(self, path: Path, what: str, value: float, lo: float | None, hi: float | None):
        if lo is not None and value < lo:
            self.error(path, f"{what} {value:g} is below min {lo:g}")
        elif hi is not None and value > hi:
            self.error(path, f"{what} {value:g} is above max {hi:g}")

    def ladder(self) -> None:
        seen: set[str] = set()
        for i, name in enumerate(self.s.ladder):
            if name in seen:
                self.error(("ladder", i), f"ladder rung '{name}' appears twice")
            seen.add(name)
        self.rung(self.s.initial_rung, ("initial_rung",))

    def rung(self, rung: int | str | None, path: Path) -> None:
        if rung is None:
            return
        n = len(self.s.ladder)
        if isinstance(rung, int):
            if not 0 <= rung < n:
                self.error(path, f"rung {rung} is outside the ladder (0 to {n - 1})")
        else:
            self.known(path, rung, self.s.ladder, "rung")

    def actors(self) -> None:
        for i, actor in enumerate(self.s.turn_order):
            if self.known(("turn_order", i), actor, self.s.actors, "actor") and (
                actor not in self.s.policies
            ):
                self.error(("turn_order", i), f"actor '{actor}' moves but has no policy")

    def options(self) -> None:
        for actor, menu in self.s.options.items():
            if not self.known(("options", actor), actor, self.s.actors, "actor", key=True):
                continue
            seen: set[str] = set()
            for i, option in enumerate(menu):
                path = ("options", actor, i)
                if option.id in seen:
                    self.error(path + ("id",), f"option id '{option.id}' is used twice by {actor}")
                if option.id in RESERVED_OPTION_IDS:
                    self.error(path + ("id",), f"option id '{option.id}' is reserved")
                seen.add(option.id)
                self.option(option, path)

    def option(self, option: Option, path: Path) -> None:
        self.rung(option.rung, path + ("rung",))
        self.payoffs(option.payoffs, path + ("payoffs",))
        self.effects(option.effects, path + ("effects",))
        seen: set[str] = set()
        remainder = None
        total = 0.0
        all_constant = True
        for j, branch in enumerate(option.outcomes):
            bpath = path + ("outcomes", j)
            if branch.id in seen:
                self.error(bpath + ("id",), f"branch id '{branch.id}' is used twice")
            seen.add(branch.id)
            self.rung(branch.rung, bpath + ("rung",))
            self.payoffs(branch.payoffs, bpath + ("payoffs",))
            self.effects(branch.effects, bpath + ("effects",))
            if branch.p is None:
                if remainder is not None:
                    self.error(bpath, f"only one branch may omit p ('{remainder}' already does)")
                remainder = branch.id
            elif isinstance(branch.p, str):
                all_constant = False
            else:
                p = float(branch.p)
                if not 0 <= p <= 1:
                    self.error(
                        bpath + ("p",),
                        f"probability {p:g} of branch '{branch.id}' is outside [0, 1]",
                    )
                total += p
        if not option.outcomes or not all_constant:
            return
        where = path + ("outcomes",)
        if remainder is None and abs(total - 1) > PROBABILITY_TOLERANCE:
            self.error(
                where,
                f"branch probabilities of option '{option.id}' sum to {total:g}, "
                "not 1 (or leave one branch without p to take the remainder)",
            )
        elif remainder is not None and total > 1 + PROBABILITY_TOLERANCE:
            self.error(
                where,
                f"branch probabilities of option '{option.id}' sum to {total:g} > 1,"
                f" leaving nothing for '{remainder}'",
            )

    def payoffs(self, payoffs: Mapping[str, object], path: Path) -> None:
        for actor in payoffs:
            self.known(path + (actor,), actor, self.s.actors, "actor", True, " in payoffs")

    def effects(self, effects: Effects, path: Path) -> None:
        for kind in ("add", "set"):
            for name in getattr(effects, kind):
                self.known(path + (kind, name), name, self.s.state, "state variable", key=True)

    def policy(self, actor: str, policy: object, path: Path) -> None:
        menu = [o.id for o in self.s.options.get(actor, [])]
        if isinstance(policy, FixedPolicy):
            self.known(path + ("option",), policy.option, menu, "option", where=f" of {actor}")
        elif isinstance(policy, SequencePolicy):
            for i, option in enumerate(policy.options):
                self.known(path + ("options", i), option, menu, "option", where=f" of {actor}")
        elif isinstance(policy, LogitPolicy):
            self.policy_number(policy.rationality, path + ("rationality",))
            for option in policy.utilities:
                upath = path + ("utilities", option)
                self.known(upath, option, menu, "option", True, f" of {actor}")
            missing = [o for o in menu if o not in policy.utilities]
            if missing:
                self.error(
                    path + ("utilities",),
                    f"logit policy of {actor} needs a utility for "
                    f"every option; missing: {', '.join(missing)}",
                )
        elif isinstance(policy, TablePolicy):
            self.table(actor, policy, menu, path)

    def table(self, actor: str, policy: TablePolicy, menu: list[str], path: Path) -> None:
        other = policy.respond_to
        if not self.known(path + ("respond_to",), other, self.s.actors, "actor"):
            return
        seen = views.labels(self.s, other, actor)
        rows_allowed = [*seen, "default", "pass"]
        if views.sees_moves_as_they_are(self.s, other, actor):
            where = f" (not an option of {other})"
        else:
            where = f" (not a move of {other} as {actor} sees it: {', '.join(seen) or 'none'})"
        if "default" not in policy.table:
            self.error(path + ("table",), "a table policy needs a 'default' row")
        for row, entries in policy.table.items():
            rpath = path + ("table", row)
            self.known(rpath, row, rows_allowed, "table row", True, where)
            total, constant = 0.0, True
            for option, p in entries.items():
                self.known(rpath + (option,), option, menu, "option", True, f" of {actor}")
                if isinstance(p, str):
                    constant = False
                    self.policy_number(p, rpath + (option,))
                    continue
                if not 0 <= p <= 1 or not math.isfinite(p):
                    self.error(rpath + (option,), f"probability {p:g} is outside [0, 1]")
                total += p
            if constant and abs(total - 1) > PROBABILITY_TOLERANCE:
                self.error(rpath, f"table row '{row}' sums to {total:g}, not 1")

    def policy_number(self, value: object, path: Path) -> None:
        """Policy numbers are resolved once from parameters: no state, built-ins or last moves."""
        if not isinstance(value, str) or len(value) > MAX_LENGTH:
            return
        stripped, lead = one_line(value)
        try:
            tree = parse_expression(stripped)
        except (SyntaxError, ValueError, RecursionError, MemoryError):
            return  # the expression compiler reports it, located
        for node in sorted(
            (n for n in ast.walk(tree) if isinstance(n, ast.Name)), key=lambda n: n.col_offset
        ):
            name = node.id
            if name in self.s.state:
                kind = "a state variable"
            elif name in BUILTIN_NAMES or (name.startswith("last_") and name[5:] in self.s.actors):
                kind = "a built-in that changes during a run"
            else:
                continue  # parameters, functions and undefined names: the compiler checks them
            column = len(stripped.encode()[: node.col_offset].decode(errors="ignore"))
            offset = lead + column
            message = f"policy numbers may only use parameters: '{name}' is {kind}"
            self.problems.append(self.src.expression_problem(path, offset, message))
            return


def _bad_id(name: str, what: str, alphabet: str) -> str:
    shown = name if name.isprintable() and len(name) <= 60 else ascii(name[:60])[1:-1]
    if len(name) > MAX_ID_LENGTH:
        return f"{what} '{shown}...' is longer than {MAX_ID_LENGTH} characters"
    return f"{what} '{shown}' is not valid: use ASCII {alphabet} only"


def check_references(scenario: Scenario, source: SourceMap) -> list[Problem]:
    """Every problem with names, ids, rungs and constant probabilities, located.

    Run by `Scenario` itself on construction; with a map of no positions (`SourceMap()`), each
    problem names its place as a dotted path.
    """
    return _Checker(scenario, source).run()

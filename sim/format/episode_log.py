"""Episode logs (DESIGN.md section 8.2): CSV of observed moves, validated against a scenario.

A log is CSV with the header `episode,step,actor,option,branch` and one row per move in play
order: every actor of the scenario's `turn_order` at every step, until the episode ends (at the
horizon, or earlier where a terminal outcome was reached; the last row may be any actor's).
`option` is an option id of that actor, `pass` (the actor had nothing available), or empty (the
move was not observed). `branch` is the outcome branch drawn for that option, or empty (not
observed, or an option without branches). The file may begin with comment lines starting with
`#`; `# scenario: ID` names the scenario the log codes (its id or file stem).

`read_episode_log` reads and checks a log against a `Scenario`. Every problem is a
`sim.errors.Problem` located at the offending cell (1-based line and column in the file), with a
did-you-mean suggestion for a misspelt name, raised together as one `ScenarioError`. Whether an
observed option was available in the state the episode had reached is not checked here: that
depends on the model's draws and is the likelihood's business (probability zero).
"""

from __future__ import annotations

import csv
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from sim.errors import Problem, ScenarioError, did_you_mean

if TYPE_CHECKING:
    from sim.format.scenario import Scenario

HEADER = ("episode", "step", "actor", "option", "branch")
PASS = "pass"
"""The option cell of a move where the actor had nothing available."""
MAX_LOG_BYTES = 10 * 1024 * 1024
"""Largest episode log read (10 MiB); a larger one is refused without being read."""
MAX_LOG_ROWS = 1_000_000
"""Most moves (data rows) an episode log may hold."""
MAX_PROBLEMS = 50
"""Most problems reported for one file (the rest are summarised in one line)."""
MAX_DIGITS = 9
"""Most digits of an episode or step number."""
_SCENARIO_LINE = re.compile(r"#\s*scenario\s*:(?P<id>.*)$")


@dataclass(frozen=True)
class Move:
    """One observed (or unobserved) move: `option` and `branch` are None where not observed;
    `option` is `pass` where the actor had nothing available. `actor` indexes the scenario's
    `actors` in their order (the compiled model's actor index); `turn` indexes `turn_order`."""

    step: int
    turn: int
    actor: int
    option: str | None
    branch: str | None
    line: int


@dataclass(frozen=True)
class Episode:
    """One episode's moves in play order, from step 1 to where the log stops."""

    number: int
    moves: tuple[Move, ...]

    @property
    def steps(self) -> int:
        """The number of steps the episode reached (its last move's step)."""
        return self.moves[-1].step if self.moves else 0


@dataclass(frozen=True)
class EpisodeLog:
    """A validated episode log: `scenario` is the id its `# scenario:` line names, if any."""

    file: str
    scenario: str | None
    actors: tuple[str, ...]
    episodes: tuple[Episode, ...]

    @property
    def moves(self) -> int:
        return sum(len(e.moves) for e in self.episodes)


def read_episode_log(path: str | os.PathLike[str], scenario: Scenario) -> EpisodeLog:
    """Read the log at `path` and check it against `scenario` (ScenarioError if it does not fit)."""
    name = str(path)
    return parse_episode_log(read_log_text(path), scenario, name)


def read_log_text(path: str | os.PathLike[str]) -> str:
    """A log file's text: refused (ScenarioError at line 1) if missing, not a regular file,
    larger than MAX_LOG_BYTES or not UTF-8."""
    name = str(path)
    p = Path(path)
    try:
        st = p.stat()
    except OSError as exc:
        raise ScenarioError([_unreadable(name, exc)]) from None
    if not p.is_file():
        raise ScenarioError([Problem(name, 1, 1, "an episode log must be a regular file")])
    if st.st_size > MAX_LOG_BYTES:
        raise ScenarioError([Problem(name, 1, 1, _too_big(st.st_size))])
    try:
        with open(p, "rb") as f:
            data = f.read(MAX_LOG_BYTES + 1)
    except OSError as exc:
        raise ScenarioError([_unreadable(name, exc)]) from None
    if len(data) > MAX_LOG_BYTES:  # the file grew after stat
        raise ScenarioError([Problem(name, 1, 1, _too_big(len(data)))])
    return decode_log_bytes(data, name)


def decode_log_bytes(data: bytes, name: str) -> str:
    """UTF-8 text (a leading byte-order mark dropped), or ScenarioError at the first bad byte."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        col = exc.start - (data.rfind(b"\n", 0, exc.start) + 1) + 1
        message = "the episode log is not UTF-8 text (a byte that is not UTF-8)"
        raise ScenarioError([Problem(name, line, col, message)]) from None
    return text[1:] if text.startswith("\ufeff") else text


def logged_scenario(text: str) -> str | None:
    """The id a log's `# scenario: ID` line names, or None (without checking anything else)."""
    for raw in _lines(text):
        if not raw.startswith("#"):
            if raw.strip():
                return None
            continue
        m = _SCENARIO_LINE.match(raw)
        if m and len(m["id"].split()) == 1:
            return m["id"].strip()
    return None


def same_scenario(named: str, scenario: Scenario) -> bool:
    """Whether a `# scenario:` name is the scenario's id or its file stem ('_' for '-')."""
    return _norm(named) == _norm(scenario.id)


def parse_episode_log(text: str, scenario: Scenario, file: str = "<string>") -> EpisodeLog:
    """Check the text of a log against `scenario`; every problem is located at its cell."""
    return _Reader(text, scenario, file).read()


def _norm(name: str) -> str:
    return name.strip().replace("_", "-").lower()


def _unreadable(name: str, exc: OSError) -> Problem:
    return Problem(name, 1, 1, f"cannot read the episode log: {exc.strerror or type(exc).__name__}")


def _too_big(size: int) -> str:
    return (
        f"the episode log is {size:,} bytes; an episode log may be at most "
        f"{MAX_LOG_BYTES:,} bytes (10 MiB): split it into several files"
    )


def _lines(text: str) -> list[str]:
    """The physical lines of a text, as an editor numbers them (only \n ends a line; a \r
    before it is dropped)."""
    return [line[:-1] if line.endswith("\r") else line for line in text.split("\n")]


def _cell_starts(line: str) -> list[int]:
    """The 0-based offset of each cell of a CSV line (a quote opens a quoted cell only at the
    start of a cell, as in the csv module)."""
    starts = [0]
    quoted = False
    i = 0
    while i < len(line):
        c = line[i]
        if quoted:
            if c == '"':
                if i + 1 < len(line) and line[i + 1] == '"':
                    i += 1
                else:
                    quoted = False
        elif c == '"' and i == starts[-1]:
            quoted = True
        elif c == ",":
            starts.append(i + 1)
        i += 1
    return starts


def _listing(names: list[str], limit: int = 12) -> str:
    shown = ", ".join(names[:limit])
    return shown + (f", ... ({len(names)} in all)" if len(names) > limit else "")


class _Reader:
    def __init__(self, text: str, scenario: Scenario, file: str):
        self.text = text
        self.sc = scenario
        self.file = file
        self.problems: list[Problem] = []
        self.actors = tuple(scenario.actors)
        self.order = list(scenario.turn_order)
        self.menus = {a: {o.id: o for o in scenario.options.get(a, [])} for a in self.actors}
        self.named: str | None = None

    def problem(self, line: int, col: int, message: str) -> None:
        self.problems.append(Problem(self.file, line, col, message))

    def read(self) -> EpisodeLog:
        rows = self.gather()
        episodes = self.validate(rows) if not self.problems else []
        if self.problems:
            problems = self.problems[:MAX_PROBLEMS]
            if len(self.problems) > MAX_PROBLEMS:
                p = self.problems[MAX_PROBLEMS]
                message = "further problems not listed; fix these first"
                problems.append(Problem(self.file, p.line, p.col, message))
            raise ScenarioError(problems)
        return EpisodeLog(self.file, self.named, self.actors, tuple(episodes))

    def gather(self) -> list[tuple[int, list[tuple[int, str]]]]:
        """The comment lines, the header and the data rows (line, cells) of the file."""
        named_at: tuple[int, int] | None = None
        header_line = last_line = 0
        rows: list[tuple[int, list[tuple[int, str]]]] = []
        for line_no, raw in enumerate(_lines(self.text), start=1):
            if len(self.problems) > MAX_PROBLEMS:
                break
            if raw.startswith("#"):
                if header_line:
                    message = "a comment line after the header: comments may only begin the file"
                    self.problem(line_no, 1, message)
                    continue
                m = _SCENARIO_LINE.match(raw)
                if m:
                    if self.named is not None:
                        self.problem(line_no, 1, "a second '# scenario:' line (one per log)")
                    elif not m["id"].strip():
                        self.problem(line_no, len(raw) + 1, "'# scenario:' names no scenario")
                    elif len(m["id"].split()) > 1:
                        col = m.start("id") + len(m["id"]) - len(m["id"].lstrip()) + 1
                        self.problem(line_no, col, "'# scenario:' takes one scenario id")
                    else:
                        lead = len(m["id"]) - len(m["id"].lstrip())
                        self.named = m["id"].strip()
                        named_at = (line_no, m.start("id") + lead + 1)
                continue
            if not raw.strip():
                continue
            last_line = line_no
            cells = self.cells(raw, line_no)
            if cells is None:
                continue
            if not header_line:
                header_line = line_no
                self.check_header(cells, line_no)
                if named_at is not None and not same_scenario(self.named or "", self.sc):
                    self.problem(
                        *named_at,
                        f"this log codes scenario '{self.named}', not '{self.sc.id}': check it "
                        "against the scenario it names",
                    )
                if self.problems:
                    return []  # without the right header and scenario the rows mean nothing
                continue
            if len(rows) == MAX_LOG_ROWS:
                self.problem(
                    line_no,
                    1,
                    f"more than {MAX_LOG_ROWS:,} moves: an episode log may hold at most "
                    f"{MAX_LOG_ROWS:,} rows; split it into several files",
                )
                return []
            if len(cells) != len(HEADER):
                col = cells[len(HEADER)][0] if len(cells) > len(HEADER) else len(raw) + 1
                message = f"expected {len(HEADER)} cells ({','.join(HEADER)}), found {len(cells)}"
                self.problem(line_no, col, message)
                continue
            rows.append((line_no, cells))
        if not header_line:
            self.problem(
                max(last_line, 1),
                1,
                f"no header line: an episode log starts with '{','.join(HEADER)}' (after any "
                "comment lines)",
            )
        elif not rows and not self.problems:
            self.problem(header_line, 1, "the log has no moves: no rows after the header")
        return rows

    def slot(self, cells: list[tuple[int, str]]) -> tuple[int | None, tuple[int, int] | None]:
        """A row's episode number and (step, turn), where they read well (no problems noted)."""
        ep, step, actor = cells[0][1], cells[1][1], cells[2][1]
        number = int(ep) if ep.isascii() and ep.isdigit() and len(ep) <= MAX_DIGITS else None
        ok = step.isascii() and step.isdigit() and len(step) <= MAX_DIGITS
        place = None
        if ok and 1 <= int(step) <= self.sc.horizon and actor in self.order:
            place = (int(step), self.turn(int(step), actor, None))
        return number, place

    def turn(self, step: int, actor: str, expected: tuple[int, int] | None) -> int:
        """The turn of `actor`'s row in `step`: the expected one if the actor moves then (an
        actor may appear more than once in turn_order), else its first turn of the step."""
        if expected is not None and expected[0] == step and self.order[expected[1]] == actor:
            return expected[1]
        return self.order.index(actor)

    def validate(self, rows: list[tuple[int, list[tuple[int, str]]]]) -> list[Episode]:
        episodes: list[Episode] = []
        moves: list[Move] = []
        number = 0
        prev: tuple[int, int] | None = None  # (step, turn) of the previous row of the episode
        for i, (line_no, cells) in enumerate(rows):
            if len(self.problems) > MAX_PROBLEMS:
                break
            (ep_col, ep), (step_col, step_s), (actor_col, actor), (opt_col, opt), (br_col, br) = (
                cells
            )
            following = self.slot(rows[i + 1][1]) if i + 1 < len(rows) else (None, None)
            ep_no = self.integer(ep, line_no, ep_col, "episode")
            if ep_no is None and following[0] in (number, number + 1):
                ep_no = following[0]  # the bad cell is reported; go on with the next row's
            elif ep_no is not None and ep_no not in (number, number + 1):
                self.problem(
                    line_no,
                    ep_col,
                    f"episode {ep_no} follows episode {number}: episodes are numbered 1, 2, 3, "
                    "... in order, each episode's rows together"
                    if number
                    else f"the first episode is numbered {ep_no}: episodes are numbered 1, 2, "
                    "3, ... in order",
                )
                # a typo if the next row goes on with the expected numbering
                ep_no = following[0] if following[0] in (number, number + 1) else ep_no
            if ep_no is not None and ep_no != number:
                if moves:
                    episodes.append(Episode(number, tuple(moves)))
                moves, prev, number = [], None, ep_no
            step = self.integer(step_s, line_no, step_col, "step")
            if step is not None and not 1 <= step <= self.sc.horizon:
                self.problem(
                    line_no,
                    step_col,
                    f"step {step} is outside 1..{self.sc.horizon} (the scenario's horizon is "
                    f"{self.sc.horizon} {self.sc.step_label}s)",
                )
                step = None
            actor_i = self.actor(actor, line_no, actor_col)
            expected = self.successor(prev)
            if step is not None and actor_i is not None:
                here = (step, self.turn(step, actor, expected))
                if here != expected:
                    self.order_problem(prev, expected, here, line_no, step_col, actor_col)
                    # a mistyped cell if the next row follows on from the expected place, not
                    # from this one (then rows are missing or extra): go on from there
                    nxt = following[1]
                    if nxt != self.successor(here) and nxt == self.successor(expected):
                        here = expected
                prev = here
            else:
                prev = expected  # the bad cell is reported; assume the row held its place
            option = branch = None
            if actor_i is not None:
                option = self.option(actor, opt, line_no, opt_col)
                if option is not None or not opt:  # a bad option cell is reported already
                    branch = self.branch(actor, option, br, line_no, br_col)
            if step is not None and actor_i is not None:
                moves.append(Move(step, prev[1], actor_i, option, branch, line_no))
        if moves:
            episodes.append(Episode(number, tuple(moves)))
        return episodes

    def successor(self, prev: tuple[int, int] | None) -> tuple[int, int]:
        """The (step, turn) of the move after `prev` (the first move if None)."""
        if prev is None:
            return (1, 0)
        if prev[1] + 1 < len(self.order):
            return (prev[0], prev[1] + 1)
        return (prev[0] + 1, 0)

    def cells(self, raw: str, line_no: int) -> list[tuple[int, str]] | None:
        """(1-based column, value stripped of surrounding blanks) of each cell of a line."""
        try:
            values = next(csv.reader([raw], strict=True))
        except csv.Error as exc:
            self.problem(line_no, 1, f"not a valid CSV line ({exc})")
            return None
        starts = _cell_starts(raw)
        if len(starts) != len(values):  # unbalanced quotes: the csv module saw another split
            self.problem(line_no, 1, "not a valid CSV line (unbalanced quotes)")
            return None
        out = []
        for start, value in zip(starts, values, strict=True):
            lead = len(raw[start:]) - len(raw[start:].lstrip(" \t"))
            out.append((start + lead + 1, value.strip()))
        return out

    def check_header(self, cells: list[tuple[int, str]], line_no: int) -> None:
        names = [v for _, v in cells]
        if tuple(names) == HEADER:
            return
        for i, (col, value) in enumerate(cells[: len(HEADER)]):
            if value != HEADER[i]:
                self.problem(
                    line_no,
                    col,
                    f"header cell {i + 1} is '{value}', expected '{HEADER[i]}'"
                    f"{did_you_mean(value, HEADER)}: the header is '{','.join(HEADER)}'",
                )
                return
        col = cells[len(HEADER)][0] if len(cells) > len(HEADER) else cells[-1][0]
        self.problem(
            line_no,
            col,
            f"the header has {len(cells)} cells; it is exactly '{','.join(HEADER)}'",
        )

    def integer(self, value: str, line_no: int, col: int, what: str) -> int | None:
        if value.isascii() and value.isdigit() and len(value) <= MAX_DIGITS:
            n = int(value)
            if n >= 1:
                return n
        shown = value if len(value) <= 40 else value[:40] + "..."
        self.problem(line_no, col, f"{what} '{shown}' is not a whole number from 1 up")
        return None

    def actor(self, name: str, line_no: int, col: int) -> int | None:
        if name in self.actors and name in self.order:
            return self.actors.index(name)
        if not name:
            self.problem(line_no, col, "the actor cell is empty: every row names the actor moving")
        elif name in self.actors:
            self.problem(line_no, col, f"actor '{name}' is not in the turn order, so never moves")
        else:
            self.problem(
                line_no,
                col,
                f"unknown actor '{name}'{did_you_mean(name, self.order)}; the turn order is "
                f"{', '.join(self.order)}",
            )
        return None

    def order_problem(
        self,
        prev: tuple[int, int] | None,
        expected: tuple[int, int],
        here: tuple[int, int],
        line_no: int,
        step_col: int,
        actor_col: int,
    ) -> None:
        who = self.order[expected[1]]
        where = "the episode's first move" if prev is None else "the next move in play order"
        if here[0] != expected[0]:
            col, cell = step_col, f"step {here[0]}"
        else:
            col, cell = actor_col, f"actor '{self.order[here[1]]}'"
        if expected[0] > self.sc.horizon:
            message = (
                f"{cell}: the episode already reached the horizon ({self.sc.horizon}); a new "
                "episode needs the next episode number"
            )
        else:
            message = (
                f"{cell} is out of play order: {where} is step {expected[0]}, actor '{who}' "
                f"(each step has one row per actor of the turn order: {', '.join(self.order)})"
            )
        self.problem(line_no, col, message)

    def option(self, actor: str, value: str, line_no: int, col: int) -> str | None:
        if not value:
            return None
        if value == PASS:
            return PASS
        menu = self.menus[actor]
        if value in menu:
            return value
        owners = [a for a in self.actors if value in self.menus[a]]
        if owners:
            hint = f": '{value}' is an option of {', '.join(owners)}, not of {actor}"
        else:
            hint = did_you_mean(value, [*menu, PASS])
        choices = _listing([*menu, PASS])
        self.problem(
            line_no,
            col,
            f"'{value}' is not an option of {actor}{hint}; {actor} may play {choices}, or leave "
            "the cell empty (not observed)",
        )
        return None

    def branch(
        self,
        actor: str,
        option: str | None,
        value: str,
        line_no: int,
        col: int,
    ) -> str | None:
        if not value:
            return None
        if option is None or option == PASS:
            what = "no option" if option is None else "'pass'"
            self.problem(
                line_no,
                col,
                f"branch '{value}' for {what}: a branch is the outcome of the option in the same "
                "row; leave it empty",
            )
            return None
        branches = [b.id for b in self.menus[actor][option].outcomes]
        if value in branches:
            return value
        if not branches:
            self.problem(
                line_no,
                col,
                f"option '{option}' of {actor} has no outcome branches; leave the branch empty",
            )
        else:
            self.problem(
                line_no,
                col,
                f"'{value}' is not a branch of {actor}'s option '{option}'"
                f"{did_you_mean(value, branches)}; its branches are {_listing(branches)}",
            )
        return None

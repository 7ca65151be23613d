"""The crash-safe SQLite journal of a sweep: finished points survive a crash, and --resume.

Every part of it is checksummed, so that damage is found rather than trusted:

- the header (what determines the numbers) carries the sha256 of its entries;
- each point's row carries the sha256 of (header checksum, point index, row text), so a
  hand-edited number, a row copied from another sweep or a short row is refused;
- a tally, updated in the same transaction as the rows, counts the rows recorded, so rows that
  went missing (a truncated file) are found too.

A new journal is written in full (tables and header) under a temporary name and renamed into
place, so a journal without a header is never a half-created one: it is damaged. Damage of any
kind is refused with a message that says how to go on (`--restart` discards the journal); it is
never silently started again from zero, nor accepted.

Where the journal is stored can fail too (a full disk, an I/O error, a read-only file): SQLite's
error is then raised as the OSError it stands for, so that the command reports it as an output
it cannot write (exit status 2), and a journal being created leaves no temporary file.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import math
import os
import sqlite3
from collections.abc import Iterator
from pathlib import Path

from sim.analysis.sweep_design import SweepError

JOURNAL = "sweep-journal.sqlite"

_CHECKED = {
    "scenario_sha256": "scenario file (sha256)",
    "seed": "--seed",
    "runs": "--runs",
    "method": "--method",
    "design_sha256": "design (--vary, --samples or --set)",
    "version": "escalation-sim version",
}
"""Header keys that must match for --resume, with what the user would have changed."""
_HEADER_SUM = "header_sha256"
"""The header entry holding the checksum of the others."""
_REQUIRED = (*_CHECKED, "points", "columns")
"""Header entries every journal has; `points` and `columns` are whole numbers."""


def header_checksum(header: dict[str, str]) -> str:
    """sha256 of a header's entries (its own checksum entry left out), in a canonical form."""
    entries = {k: v for k, v in header.items() if k != _HEADER_SUM}
    return hashlib.sha256(json.dumps(entries, sort_keys=True).encode()).hexdigest()


def row_checksum(header_sum: str, index: int, row: str) -> str:
    """sha256 that ties a row's text to its point and to this journal's header."""
    return hashlib.sha256(f"{header_sum}:{index}:{row}".encode()).hexdigest()


class JournalDamaged(SweepError):
    """A journal that cannot be trusted: exit status 2, with how to restart."""


_STORAGE = (  # SQLite's primary result code, its message (Python 3.10 has no code), errno
    (13, "database or disk is full", errno.ENOSPC),  # SQLITE_FULL
    (10, "disk I/O error", errno.EIO),  # SQLITE_IOERR
    (8, "attempt to write a readonly database", errno.EACCES),  # SQLITE_READONLY
    (14, "unable to open database file", errno.EACCES),  # SQLITE_CANTOPEN
)


def storage_error(exc: sqlite3.Error, path: Path) -> OSError | None:
    """The OSError that a SQLite error stands for if it comes from where the journal is stored
    (disk full, I/O error, read-only, cannot be opened), or None (the journal itself is bad)."""
    code = getattr(exc, "sqlite_errorcode", None)
    for primary, message, number in _STORAGE:
        if (code is not None and code & 0xFF == primary) or (code is None and message in str(exc)):
            reason = os.strerror(number) if number == errno.ENOSPC else message
            return OSError(number, reason, str(path))
    return None


@contextlib.contextmanager
def _stored(path: Path) -> Iterator[None]:
    """Raise a SQLite error about the storage of the journal at `path` as its OSError."""
    try:
        yield
    except sqlite3.Error as exc:
        error = storage_error(exc, path)
        if error is None:
            raise
        raise error from None


class Journal:
    """A SQLite journal: a checksummed header of what determines the numbers, one checksummed
    row per finished point, and a tally of the rows recorded."""

    def __init__(self, path: Path, create: bool = True):
        """Open (`create`: and make the tables of) the journal at `path`; with create=False
        an existing journal is opened to be checked, and nothing is added to it."""
        self.path = path
        self._sum: str | None = None
        self.db = sqlite3.connect(path, timeout=30)
        if not create:
            return
        try:
            with _stored(path):
                self._create_tables()
        except BaseException:
            self.db.close()
            raise

    def _create_tables(self) -> None:
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=FULL")
        with self.db:
            self.db.execute("CREATE TABLE IF NOT EXISTS header (key TEXT PRIMARY KEY, value TEXT)")
            self.db.execute(
                "CREATE TABLE IF NOT EXISTS points (idx INTEGER PRIMARY KEY, row TEXT, sum TEXT)"
            )
            self.db.execute(
                "CREATE TABLE IF NOT EXISTS tally (id INTEGER PRIMARY KEY, recorded INTEGER)"
            )

    def header(self) -> dict[str, str]:
        return dict(self.db.execute("SELECT key, value FROM header"))

    def write_header(self, header: dict[str, str]) -> None:
        header = {**header, _HEADER_SUM: header_checksum(header)}
        with _stored(self.path), self.db:
            self.db.executemany("INSERT OR REPLACE INTO header VALUES (?, ?)", header.items())
            self.db.execute("INSERT OR REPLACE INTO tally VALUES (0, 0)")
        self._sum = header[_HEADER_SUM]

    def _header_sum(self) -> str:
        if self._sum is None:
            self._sum = self.header().get(_HEADER_SUM, "")
        return self._sum

    def record(self, rows: list[tuple[int, list[float]]]) -> None:
        """Commit finished points durably, with their checksums and the tally (one transaction)."""
        key = self._header_sum()
        entries = []
        for i, values in rows:
            try:
                text = json.dumps(values, allow_nan=False)
            except ValueError:
                raise SweepError(f"point {i}: a metric is not a finite number") from None
            entries.append((i, text, row_checksum(key, i, text)))
        with _stored(self.path), self.db:
            self.db.executemany("INSERT OR REPLACE INTO points VALUES (?, ?, ?)", entries)
            self.db.execute(
                "INSERT OR REPLACE INTO tally VALUES (0, (SELECT COUNT(*) FROM points))"
            )

    def rows(self) -> dict[int, list[float]]:
        """The finished points, each checked against its checksum (JournalDamaged if not)."""
        return self.verified(self.header())[1]

    def verified(self, header: dict[str, str]) -> tuple[int, dict[int, list[float]]]:
        """(points in the design, finished points), after checking every checksum."""
        try:
            with _stored(self.path):
                return self._verified(header)
        except sqlite3.DatabaseError as exc:
            raise damaged(self.path, f"SQLite cannot read it: {exc}") from None

    def _verified(self, header: dict[str, str]) -> tuple[int, dict[int, list[float]]]:
        path = self.path
        if not header:
            raise damaged(path, "its header is missing")
        missing = [k for k in (*_REQUIRED, _HEADER_SUM) if k not in header]
        if missing:
            raise damaged(path, f"its header lacks {', '.join(missing)}")
        if header[_HEADER_SUM] != header_checksum(header):
            raise damaged(path, "its header does not match its checksum (edited?)")
        total, columns = _whole(path, header, "points"), _whole(path, header, "columns")
        key = header[_HEADER_SUM]
        out: dict[int, list[float]] = {}
        for i, text, stored in self.db.execute("SELECT idx, row, sum FROM points"):
            where = f"the row of point {i}"
            if not isinstance(i, int) or not 0 <= i < total:
                raise damaged(path, f"it holds a row for point {i!r}, outside 0 to {total - 1}")
            if not isinstance(text, str) or stored != row_checksum(key, i, text):
                raise damaged(path, f"{where} does not match its checksum (edited or damaged)")
            try:
                values = json.loads(text)
            except ValueError:
                raise damaged(path, f"{where} is not readable") from None
            if (
                not isinstance(values, list)
                or len(values) != columns
                or not all(_finite_number(v) for v in values)
            ):
                raise damaged(path, f"{where} does not hold {columns} finite numbers")
            out[i] = [float(v) for v in values]
        tally = self.db.execute("SELECT recorded FROM tally WHERE id = 0").fetchone()
        if tally is None or tally[0] != len(out):
            recorded = "no tally" if tally is None else f"{tally[0]} recorded"
            raise damaged(path, f"it holds {len(out)} rows but {recorded} (truncated?)")
        return total, out

    def close(self) -> None:
        self.db.close()


def _whole(path: Path, header: dict[str, str], key: str) -> int:
    value = header[key]
    if not value.isascii() or not value.isdigit():
        raise damaged(path, f"its header's {key} is not a whole number ({value[:20]!r})")
    return int(value)


def _finite_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def damaged(path: Path, what: str) -> JournalDamaged:
    return JournalDamaged(
        f"{path} is damaged: {what}. It cannot be trusted to finish the sweep: rerun with "
        f"--restart to discard it and start the sweep again (or use another --out)"
    )


def remove_journal(path: Path) -> None:
    """Delete a journal and SQLite's files beside it (-wal, -shm)."""
    for p in (path, Path(f"{path}-wal"), Path(f"{path}-shm")):
        p.unlink(missing_ok=True)


_remove_journal = remove_journal  # the old name


def _new_journal(path: Path, header: dict[str, str]) -> Journal:
    """A journal with its tables and header, created under a temporary name and renamed into
    place: a journal at `path` always has its header."""
    temp = path.with_name(f".{path.name}.new")
    remove_journal(temp)
    try:
        journal = Journal(temp)
        try:
            journal.write_header(header)
            with _stored(temp):  # folds the WAL in: one file to rename
                journal.db.execute("PRAGMA journal_mode=DELETE")
        finally:
            journal.close()
        os.replace(temp, path)
    finally:  # a full disk, a signal: no half-made journal is left behind
        remove_journal(temp)
    return Journal(path)


def open_journal(
    path: Path, header: dict[str, str], resume: bool, restart: bool = False
) -> tuple[Journal, str]:
    """The journal to record into, and a note for the user.

    An existing journal is checked in full first: a damaged one is refused (JournalDamaged),
    as is a mismatched --resume or an unfinished sweep without --resume. `restart` discards
    whatever journal is there, damaged or not, and starts afresh.
    """
    if resume and restart:
        raise SweepError("--resume and --restart contradict each other: give one of them")
    remove_journal(path.with_name(f".{path.name}.new"))  # left by a crash while creating one
    note = ""
    if restart:
        if path.exists():
            remove_journal(path)
            note = f"--restart: discarded the journal in {path.parent}; starting a new sweep"
        return _new_journal(path, header), note
    if path.exists():
        old = None
        try:
            old = Journal(path, create=False)
            old_header = old.header()
            total, done = old._verified(old_header)
        except sqlite3.Error as exc:
            raise (storage_error(exc, path) or _unreadable(path, exc)) from None
        finally:
            if old is not None:
                old.close()
        if resume:
            _check_resumable(path, old_header, header)
            return Journal(path), f"resuming: {len(done)} of {total} points already done"
        if len(done) < total:
            raise SweepError(
                f"{path.parent} holds an unfinished sweep ({len(done)} of {total} points "
                "done): add --resume to finish it, or --restart to discard it and start again"
            )
        remove_journal(path)  # a finished sweep: its outputs are written, run it again
    elif resume:
        note = f"nothing to resume in {path.parent}: starting a new sweep"
    return _new_journal(path, header), note


def _unreadable(path: Path, exc: sqlite3.Error) -> SweepError:
    if isinstance(exc, sqlite3.OperationalError) and "locked" in str(exc):
        return SweepError(
            f"{path} is in use by another sweep (the database is locked): wait for it to "
            "finish, or use another --out"
        )
    return damaged(path, f"SQLite cannot read it: {exc}")


def _check_resumable(path: Path, old: dict[str, str], new: dict[str, str]) -> None:
    """Raise SweepError at the first header value that differs from the journal's."""
    for key, what in _CHECKED.items():
        if old.get(key) != new[key]:
            was, now = _short(old.get(key)), _short(new[key])
            raise SweepError(
                f"cannot resume: {path.parent} holds a sweep with a different {what} "
                f"({was}, now {now}); rerun with the original settings, use --restart to "
                "discard it, or use another --out"
            )
    for key in ("points", "columns"):
        if old.get(key) != new.get(key, old.get(key)):
            raise SweepError(
                f"cannot resume: {path.parent} holds a sweep of a different design ({key} "
                f"{old.get(key)}, now {new.get(key)}); use --restart to discard it"
            )


def _short(value: str | None) -> str:
    if value is None:
        return "none recorded"
    return value[:12] if len(value) == 64 else value

"""The crash-safe SQLite journal of a sweep: finished points survive a crash, and --resume."""

from __future__ import annotations

import json
import sqlite3
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


class Journal:
    """A SQLite journal: a header of what determines the numbers, and one row per finished point."""

    def __init__(self, path: Path):
        self.path = path
        self.db = sqlite3.connect(path, timeout=30)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=FULL")
        with self.db:
            self.db.execute("CREATE TABLE IF NOT EXISTS header (key TEXT PRIMARY KEY, value TEXT)")
            self.db.execute("CREATE TABLE IF NOT EXISTS points (idx INTEGER PRIMARY KEY, row TEXT)")

    def header(self) -> dict[str, str]:
        return dict(self.db.execute("SELECT key, value FROM header"))

    def write_header(self, header: dict[str, str]) -> None:
        with self.db:
            self.db.executemany("INSERT OR REPLACE INTO header VALUES (?, ?)", header.items())

    def record(self, rows: list[tuple[int, list[float]]]) -> None:
        """Commit finished points durably (one transaction)."""
        with self.db:
            self.db.executemany(
                "INSERT OR REPLACE INTO points VALUES (?, ?)",
                [(i, json.dumps(values)) for i, values in rows],
            )

    def rows(self) -> dict[int, list[float]]:
        return {i: json.loads(r) for i, r in self.db.execute("SELECT idx, row FROM points")}

    def close(self) -> None:
        self.db.close()


def _remove_journal(path: Path) -> None:
    for p in (path, Path(f"{path}-wal"), Path(f"{path}-shm")):
        p.unlink(missing_ok=True)


def open_journal(path: Path, header: dict[str, str], resume: bool) -> tuple[Journal, str]:
    """The journal to record into, and a note for the user; refuses a mismatched resume."""
    note = ""
    if path.exists():
        try:
            old = Journal(path)
            old_header, done = old.header(), len(old.rows())
            old.close()
        except sqlite3.DatabaseError as exc:
            raise SweepError(f"{path} is not a readable sweep journal ({exc})") from None
        total = int(old_header.get("points", 0))
        if not old_header:  # died while being created: it holds nothing
            _remove_journal(path)
            return open_journal(path, header, resume)
        if resume:
            _check_resumable(path, old_header, header)
            journal = Journal(path)
            return journal, f"resuming: {done} of {total} points already done"
        if done < total:
            raise SweepError(
                f"{path.parent} holds an unfinished sweep ({done} of {total} points done): add "
                f"--resume to finish it, or delete {path} to start afresh"
            )
        _remove_journal(path)
    elif resume:
        note = f"nothing to resume in {path.parent}: starting a new sweep"
    journal = Journal(path)
    journal.write_header(header)
    return journal, note


def _check_resumable(path: Path, old: dict[str, str], new: dict[str, str]) -> None:
    """Raise SweepError at the first header value that differs from the journal's."""
    for key, what in _CHECKED.items():
        if old.get(key) != new[key]:
            was, now = _short(old.get(key)), _short(new[key])
            raise SweepError(
                f"cannot resume: {path.parent} holds a sweep with a different {what} "
                f"({was}, now {now}); rerun with the original settings or use another --out"
            )


def _short(value: str | None) -> str:
    if value is None:
        return "none recorded"
    return value[:12] if len(value) == 64 else value

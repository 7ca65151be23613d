"""The server's one SQLite file: uploaded scenarios, games (seed and moves) and class sessions.

A game is stored as its seed and the list of moves made, so it replays exactly after a restart;
tokens are stored as SHA-256 digests only. Nothing else the server does touches the disk.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

SCHEMA = """
CREATE TABLE IF NOT EXISTS uploads (
    id TEXT PRIMARY KEY, name TEXT NOT NULL, text TEXT NOT NULL, created REAL NOT NULL);
CREATE TABLE IF NOT EXISTS classes (
    code TEXT PRIMARY KEY, token TEXT NOT NULL, scenario TEXT NOT NULL, overrides TEXT NOT NULL,
    seed INTEGER NOT NULL, timer REAL, created REAL NOT NULL);
CREATE TABLE IF NOT EXISTS games (
    id TEXT PRIMARY KEY, token TEXT NOT NULL, scenario TEXT NOT NULL, overrides TEXT NOT NULL,
    actor TEXT NOT NULL, seed INTEGER NOT NULL, choices TEXT NOT NULL, status TEXT NOT NULL,
    transcript TEXT, summary TEXT, class_code TEXT, team TEXT, created REAL NOT NULL,
    updated REAL NOT NULL);
CREATE INDEX IF NOT EXISTS games_by_class ON games (class_code);
"""


def new_token() -> str:
    """A bearer token: 192 random bits, URL-safe."""
    return secrets.token_urlsafe(24)


def digest(token: str) -> str:
    """What the database keeps of a token."""
    return hashlib.sha256(token.encode("utf-8", "replace")).hexdigest()


def token_matches(token: str | None, stored: str) -> bool:
    """Constant-time check of a presented token against its stored digest."""
    return token is not None and hmac.compare_digest(digest(token), stored)


@dataclass
class GameRow:
    """One game as stored: enough to replay it move by move."""

    id: str
    token: str
    scenario: str
    overrides: dict[str, float]
    actor: str
    seed: int
    choices: list[int]
    status: str
    transcript: str | None = None
    summary: dict[str, Any] | None = None
    class_code: str | None = None
    team: str | None = None
    updated: float = field(default=0.0)


@dataclass
class ClassRow:
    """A class session: the scenario every team plays, its seed and the optional turn timer."""

    code: str
    token: str
    scenario: str
    overrides: dict[str, float]
    seed: int
    timer: float | None


class Store:
    """Thread-safe access to the database (one connection, one lock, WAL journal)."""

    def __init__(self, path: str | Path):
        self.path = str(path)
        self.lock = threading.Lock()
        self.db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        if self.path != ":memory:":
            self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=NORMAL")
        self.db.executescript(SCHEMA)

    def close(self) -> None:
        """Close the database (at the server's shutdown)."""
        with self.lock:
            self.db.close()

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        with self.lock:
            self.db.execute("BEGIN IMMEDIATE")
            try:
                yield self.db
            except BaseException:
                self.db.execute("ROLLBACK")
                raise
            self.db.execute("COMMIT")

    def _all(self, sql: str, *args: Any) -> list[tuple]:
        with self.lock:
            return self.db.execute(sql, args).fetchall()

    # --- uploads ---------------------------------------------------------------------------

    def add_upload(self, name: str, text: str) -> str:
        """Keep an uploaded scenario's text; its id is derived from the text (same text, same
        id)."""
        uid = "upload-" + hashlib.sha256(text.encode()).hexdigest()[:16]
        with self._tx() as db:
            db.execute(
                "INSERT OR IGNORE INTO uploads VALUES (?, ?, ?, ?)", (uid, name, text, time.time())
            )
        return uid

    def upload(self, uid: str) -> tuple[str, str] | None:
        """An uploaded scenario's file name and text, or None."""
        rows = self._all("SELECT name, text FROM uploads WHERE id = ?", uid)
        return (rows[0][0], rows[0][1]) if rows else None

    def uploads(self) -> list[tuple[str, str]]:
        """Every uploaded scenario's id and file name, oldest first."""
        return [(r[0], r[1]) for r in self._all("SELECT id, name FROM uploads ORDER BY created")]

    # --- games -----------------------------------------------------------------------------

    def add_game(self, row: GameRow) -> None:
        """Store a new game (with no move yet)."""
        now = time.time()
        with self._tx() as db:
            db.execute(
                "INSERT INTO games VALUES (?, ?, ?, ?, ?, ?, ?, ?, NULL, NULL, ?, ?, ?, ?)",
                (
                    row.id,
                    row.token,
                    row.scenario,
                    json.dumps(row.overrides),
                    row.actor,
                    row.seed,
                    json.dumps(row.choices),
                    row.status,
                    row.class_code,
                    row.team,
                    now,
                    now,
                ),
            )

    def game(self, gid: str) -> GameRow | None:
        """The game with this id, or None."""
        rows = self._all(f"SELECT {_GAME_COLUMNS} FROM games WHERE id = ?", gid)
        return _game(rows[0]) if rows else None

    def class_games(self, code: str, transcripts: bool = True) -> list[GameRow]:
        """A class's games in the order they joined (without their stored transcripts, for
        the dashboard, if `transcripts` is false)."""
        columns = _GAME_COLUMNS if transcripts else _GAME_COLUMNS.replace("transcript", "NULL")
        rows = self._all(f"SELECT {columns} FROM games WHERE class_code = ? ORDER BY created", code)
        return [_game(r) for r in rows]

    def append_choice(self, gid: str, turn: int, choice: int) -> bool:
        """Record move number `turn` (0-based); False if that move was already made."""
        with self._tx() as db:
            (text,) = db.execute("SELECT choices FROM games WHERE id = ?", (gid,)).fetchone()
            choices = json.loads(text)
            if len(choices) != turn:
                return False
            choices.append(choice)
            db.execute(
                "UPDATE games SET choices = ?, updated = ? WHERE id = ?",
                (json.dumps(choices), time.time(), gid),
            )
        return True

    def finish_game(
        self, gid: str, status: str, transcript: str, summary: dict[str, Any] | None
    ) -> None:
        """Store how a game ended: its status, its whole story and its result."""
        with self._tx() as db:
            db.execute(
                "UPDATE games SET status = ?, transcript = ?, summary = ?, updated = ? "
                "WHERE id = ?",
                (status, transcript, json.dumps(summary), time.time(), gid),
            )

    # --- classes ---------------------------------------------------------------------------

    def add_class(self, row: ClassRow) -> None:
        """Store a new class session."""
        with self._tx() as db:
            db.execute(
                "INSERT INTO classes VALUES (?, ?, ?, ?, ?, ?, ?)",
                (
                    row.code,
                    row.token,
                    row.scenario,
                    json.dumps(row.overrides),
                    row.seed,
                    row.timer,
                    time.time(),
                ),
            )

    def klass(self, code: str) -> ClassRow | None:
        """The class with this join code, or None."""
        rows = self._all(
            "SELECT code, token, scenario, overrides, seed, timer FROM classes WHERE code = ?",
            code,
        )
        if not rows:
            return None
        c = rows[0]
        return ClassRow(c[0], c[1], c[2], json.loads(c[3]), c[4], c[5])


_GAME_COLUMNS = (
    "id, token, scenario, overrides, actor, seed, choices, status, transcript, summary, "
    "class_code, team, updated"
)


def _game(r: tuple) -> GameRow:
    return GameRow(
        r[0],
        r[1],
        r[2],
        json.loads(r[3]),
        r[4],
        r[5],
        json.loads(r[6]),
        r[7],
        r[8],
        json.loads(r[9]) if r[9] else None,
        r[10],
        r[11],
        r[12],
    )

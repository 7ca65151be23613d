"""Games and class sessions: who may see and move what, and the live games behind them.

Every request about a game carries its token (or, for a class's dashboard, the instructor's);
a team's token opens only its own game, so it can neither move another actor nor read another
team's view. Moves are written to the database before the game plays them.
"""

from __future__ import annotations

import contextlib
import secrets
import threading
import time
from collections import OrderedDict
from typing import Any

from sim.format.scenario import Scenario
from sim.model.compiled import PASS
from sim.web.catalog import Catalog
from sim.web.commands import play_command
from sim.web.errors import BadRequest, Conflict, Forbidden, NotFound
from sim.web.live import DEBRIEF_RUNS, FINAL, GameClosed, LiveGame
from sim.web.store import ClassRow, GameRow, Store, digest, new_token, token_matches

MAX_LIVE = 400
"""Games kept running in memory; the least recently used beyond this are stopped (and replay
from the database when next asked for)."""
MAX_TEAMS = 200
MAX_SEED = 2**63 - 1
CODE_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"
"""Join codes: no 0/O or 1/I to misread on a projector."""


def playable(scenario: Scenario) -> list[str]:
    """The actors a student can play: they move and have options."""
    return [a for a in scenario.turn_order if scenario.options.get(a)]


def check_seed(value: Any) -> int:
    """A request's seed (a new random one if none), checked like `--seed`."""
    if value is None:
        return secrets.randbelow(1_000_000)
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_SEED:
        raise BadRequest(f"seed must be a whole number from 0 to {MAX_SEED}")
    return value


def resolve_actor(scenario: Scenario, name: Any) -> str:
    """An actor id from its id or label, as `play --as` takes it (BadRequest otherwise)."""
    if not isinstance(name, str):
        raise BadRequest("actor must be an actor's id")
    wanted = name.strip().lower()
    for actor in playable(scenario):
        if wanted in (actor.lower(), scenario.actors[actor].label.lower()):
            return actor
    raise BadRequest(
        f"actor '{name:.40}' cannot be played here; playable: {', '.join(playable(scenario))}"
    )


class Hub:
    """The games and classes of one server."""

    def __init__(self, store: Store, catalog: Catalog, compare_runs: int = DEBRIEF_RUNS):
        self.store, self.catalog = store, catalog
        self.compare_runs = compare_runs
        self.lock = threading.Lock()
        self.live: OrderedDict[str, LiveGame] = OrderedDict()
        self.game_locks: dict[str, threading.Lock] = {}
        self.class_versions: dict[str, int] = {}
        self.closing = False
        self.debriefs: dict[str, tuple[int, dict]] = {}

    # --- games ---------------------------------------------------------------------------

    def new_game(
        self,
        ref: Any,
        actor: Any,
        overrides: dict[str, float],
        seed: int,
        class_code: str | None = None,
        team: str | None = None,
    ) -> tuple[str, str]:
        """Start a game; its id and the token that alone opens it."""
        scenario, _ = self.catalog.get(ref)
        actor = resolve_actor(scenario, actor)
        gid, token = secrets.token_urlsafe(9), new_token()
        self.store.add_game(
            GameRow(
                gid,
                digest(token),
                ref,
                overrides,
                actor,
                seed,
                [],
                "playing",
                None,
                None,
                class_code,
                team,
            )
        )
        self.touch(class_code)
        return gid, token

    def row(self, gid: Any, token: str | None) -> GameRow:
        """The game `gid` if `token` is its own (Forbidden otherwise, NotFound if none)."""
        if not isinstance(gid, str) or len(gid) > 40:
            raise NotFound("no such game")
        row = self.store.game(gid)
        if row is None:
            raise NotFound("no such game")
        if not token_matches(token, row.token):
            raise Forbidden("this game needs its own token")
        return row

    def _live(self, row: GameRow) -> LiveGame:
        with self.lock:
            if self.closing:
                raise BadRequest("the server is shutting down")
            game = self.live.get(row.id)
            if game is not None:
                self.live.move_to_end(row.id)
                return game
        model = self.catalog.model(row.scenario, row.overrides)
        _, file = self.catalog.get(row.scenario)
        game = LiveGame(
            model,
            row.actor,
            row.seed,
            row.choices,
            file,
            self.compare_runs,
            on_end=lambda final: self._settle(row, final),
        )
        evicted = []
        with self.lock:
            if row.id in self.live:  # another request started it meanwhile
                evicted.append(game)
                game = self.live[row.id]
            else:
                self.live[row.id] = game
            while len(self.live) > MAX_LIVE:
                evicted.append(self.live.popitem(last=False)[1])
        for old in evicted:
            old.close()
        return game

    def _current(self, row: GameRow) -> dict[str, Any]:
        """The game's situation, replaying it if its thread was stopped meanwhile."""
        for _ in range(3):
            try:
                return self._live(row).current()
            except GameClosed:
                continue
        raise BadRequest("the server is too busy to keep this game: try again")

    def _forget(self, gid: str) -> None:
        """Stop the game's thread, if it still runs: the next request replays the game."""
        with self.lock:
            game = self.live.pop(gid, None)
        if game is not None:
            game.close()

    def _lock(self, gid: str) -> threading.Lock:
        with self.lock:
            return self.game_locks.setdefault(gid, threading.Lock())

    def view(self, row: GameRow) -> dict[str, Any]:
        """What the student sees now (their actor's view only)."""
        if row.class_code and row.status == "playing":
            klass = self.store.klass(row.class_code)
            if klass is not None and klass.timer:
                self._expire(row, klass.timer)
                row = self.store.game(row.id) or row
        if row.status != "playing":
            situation = {"status": row.status, "transcript": row.transcript, "result": row.summary}
        else:
            with self._lock(row.id):
                situation = self._settle(row, self._current(row))
        return self._framed(row, situation)

    def move(self, row: GameRow, turn: Any, option: Any) -> dict[str, Any]:
        """Play move number `turn` (0-based) as option number `option` (1-based)."""
        if isinstance(turn, bool) or not isinstance(turn, int):
            raise BadRequest("turn must be the number of the move (from the game's view)")
        if isinstance(option, bool) or not isinstance(option, int):
            raise BadRequest("option must be the number of an option")
        with self._lock(row.id):
            row = self.store.game(row.id) or row
            if row.status != "playing":
                raise Conflict("the game is over")
            situation = self._current(row)
            live = self._live(row)  # the game's lock is held: no other request replaces it
            if situation["status"] != "waiting":
                self._settle(row, situation)
                raise Conflict("the crisis is over: no more moves")
            if turn != situation["turn"]:
                raise Conflict(f"this is move {situation['turn']}, not {turn}: reload the game")
            options = situation["options"]
            if option != PASS and not (1 <= option <= len(options)):
                raise BadRequest(f"option must be from 1 to {len(options)}")
            if option != PASS and not options[option - 1]["available"]:
                raise BadRequest(
                    f"option {option} ({options[option - 1]['label']}) is not available now: "
                    f"it needs {options[option - 1]['needs']}"
                )
            choice = PASS if option == PASS else option - 1
            if not self.store.append_choice(row.id, turn, choice):
                raise Conflict("that move was already made")
            row.choices.append(choice)
            try:
                situation = live.move(choice)
            except GameClosed:  # evicted meanwhile: a replay from the stored moves has this one
                self._forget(row.id)
                situation = self._current(row)
            situation = self._settle(row, situation)
        self.touch(row.class_code)
        return self._framed(row, situation)

    def _settle(self, row: GameRow, situation: dict[str, Any]) -> dict[str, Any]:
        """Store a game that has ended, and let its thread go."""
        if situation["status"] in FINAL and row.status == "playing":
            self.store.finish_game(
                row.id, situation["status"], situation["transcript"], situation.get("result")
            )
            row.status = situation["status"]
            row.transcript, row.summary = situation["transcript"], situation.get("result")
            with self.lock:
                game = self.live.pop(row.id, None)
            if game is not None and game.thread is not threading.current_thread():
                game.thread.join(1.0)
            self.touch(row.class_code)
        return situation

    def _framed(self, row: GameRow, situation: dict[str, Any]) -> dict[str, Any]:
        scenario, file = self.catalog.get(row.scenario)
        out = {
            "id": row.id,
            "scenario": scenario.id,
            "scenario_ref": row.scenario,
            "title": scenario.title,
            "actor": row.actor,
            "actor_label": scenario.actors[row.actor].label,
            "seed": row.seed,
            "team": row.team,
            "class_code": row.class_code,
            "ladder": list(scenario.ladder),
            "command": play_command(file, row, self.compare_runs),
            **situation,
        }
        if situation["status"] == "waiting":
            out["waiting_since"] = situation.get("since")
        if row.class_code:
            klass = self.store.klass(row.class_code)
            if klass and klass.timer and situation["status"] == "waiting":
                out["deadline"] = situation.get("since", time.time()) + klass.timer
        return out

    # --- classes -------------------------------------------------------------------------

    def touch(self, code: str | None) -> None:
        """Note that a class changed, for its dashboard's event stream."""
        if code:
            with self.lock:
                self.class_versions[code] = self.class_versions.get(code, 0) + 1

    def class_version(self, code: str) -> int:
        """How many changes a class has seen (the event stream compares it)."""
        with self.lock:
            return self.class_versions.get(code, 0)

    def new_class(
        self, ref: Any, overrides: dict[str, float], seed: int, timer: float | None
    ) -> tuple[str, str]:
        """Open a class session: its join code and the instructor's token."""
        self.catalog.get(ref)
        token = new_token()
        for _ in range(20):
            code = "".join(secrets.choice(CODE_ALPHABET) for _ in range(6))
            if self.store.klass(code) is None:
                break
        self.store.add_class(ClassRow(code, digest(token), ref, overrides, seed, timer))
        return code, token

    def klass(self, code: Any) -> ClassRow:
        """The class with this join code (case-insensitive); NotFound otherwise."""
        if not isinstance(code, str) or len(code) > 12:
            raise NotFound("no such class")
        row = self.store.klass(code.strip().upper())
        if row is None:
            raise NotFound(f"no class with the code {code:.12}")
        return row

    def instructor(self, code: Any, token: str | None) -> ClassRow:
        """The class, if `token` is its instructor's (Forbidden otherwise)."""
        row = self.klass(code)
        if not token_matches(token, row.token):
            raise Forbidden("the dashboard needs the instructor's token")
        return row

    def join(self, klass: ClassRow, team: Any, actor: Any) -> tuple[str, str]:
        """A team joins: its own crisis (the class's seed), one actor, its own token."""
        if not isinstance(team, str) or not team.strip() or len(team) > 40:
            raise BadRequest("team must be a name of 1 to 40 characters")
        team = "".join(c for c in team.strip() if c.isprintable())
        games = self.store.class_games(klass.code)
        if len(games) >= MAX_TEAMS:
            raise BadRequest(f"a class has at most {MAX_TEAMS} teams")
        scenario, _ = self.catalog.get(klass.scenario)
        if actor in (None, ""):  # the actor fewest teams play
            counts = {a: 0 for a in playable(scenario)}
            for g in games:
                counts[g.actor] = counts.get(g.actor, 0) + 1
            actor = min(counts, key=lambda a: counts[a])
        return self.new_game(klass.scenario, actor, klass.overrides, klass.seed, klass.code, team)

    def expire(self, klass: ClassRow) -> None:
        """Teams past the turn timer pass their turn."""
        if klass.timer:
            for row in self.store.class_games(klass.code, transcripts=False):
                self._expire(row, klass.timer)

    def _expire(self, row: GameRow, timer: float) -> None:
        """If the team's time is up, it passes (the move is stored like any other)."""
        with self.lock:
            game = self.live.get(row.id)
        situation = game.situation if game is not None else None
        if situation is None or situation["status"] != "waiting":
            return
        if time.time() >= situation.get("since", time.time()) + timer:
            with contextlib.suppress(BadRequest):  # a team that moved meanwhile
                self.move(row, situation["turn"], PASS)

    def dashboard(self, klass: ClassRow) -> dict[str, Any]:
        """Every team's crisis as the instructor sees it."""
        self.expire(klass)
        scenario, file = self.catalog.get(klass.scenario)
        teams = []
        for row in self.store.class_games(klass.code, transcripts=False):
            view = self.view(row)
            result = view.get("result") or {}
            teams.append(
                {
                    "id": row.id,
                    "team": row.team,
                    "actor": row.actor,
                    "actor_label": scenario.actors[row.actor].label,
                    "status": view["status"],
                    "turn": view.get("turn", len(row.choices) - 1),
                    "step": view.get("step", result.get("steps")),
                    "rung": view.get("rung"),
                    "peak": view.get("peak", result.get("peak")),
                    "result": view.get("result"),
                    "deadline": view.get("deadline"),
                    "recent": view.get("events") or result.get("events") or [],
                }
            )
        return {
            "code": klass.code,
            "scenario": scenario.id,
            "title": scenario.title,
            "ladder": list(scenario.ladder),
            "seed": klass.seed,
            "timer": klass.timer,
            "version": self.class_version(klass.code),
            "teams": teams,
        }

    def debrief(self, klass: ClassRow, runs: int = 10_000) -> dict[str, Any]:
        """The class's outcomes beside the scenario's doctrines (sim/web/debrief.py), computed
        again only when a team has moved since."""
        from sim.web.debrief import class_debrief

        version = self.class_version(klass.code)
        cached = self.debriefs.get(klass.code)
        if cached and cached[0] == version:
            return cached[1]
        for row in self.store.class_games(klass.code, transcripts=False):
            if row.status == "playing":
                self.view(row)  # a game that has just ended is stored as ended
        scenario, file = self.catalog.get(klass.scenario)
        games = self.store.class_games(klass.code, transcripts=False)
        out = class_debrief(scenario, file, klass, games, runs)
        self.debriefs[klass.code] = (version, out)
        return out

    def close(self) -> None:
        """Stop every game's thread (their moves are already in the database)."""
        with self.lock:
            self.closing = True
            games = list(self.live.values())
            self.live.clear()
        for game in games:
            game.close()

"""A game in the browser: `escalation play`'s Game, paused at each of the student's moves.

Each live game runs `sim.play.session.Game` in a thread of its own; the thread stops in `ask`
until the next move arrives, so a move costs one step of the crisis, not a replay. The moves are
in the database, so after a restart (or when a game is evicted) the same seed and moves replay it
exactly. The student sees what the terminal would show them: the Game prints only their actor's
view (hidden information included), and the same debrief at the end.
"""

from __future__ import annotations

import io
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from rich.console import Console

from sim.model.compiled import PASS, Model
from sim.play.session import Game, QuitGame
from sim.play.view import requires_text

WIDTH = 92
DEBRIEF_RUNS = 10_000
FINAL = ("finished", "stopped", "broken")
"""Statuses of a game that has ended (before them: "waiting", then "debriefing")."""
EVENTS = 6
"""Moves of the story kept for the dashboard."""
WAIT = 60.0
"""Longest wait, in seconds, for the crisis to reach the next move (a step takes milliseconds)."""


class GameClosed(Exception):
    """The game's thread was stopped (evicted, or the server stops): replay it from the
    database, where every move already is."""


class StoredMoveError(Exception):
    """A stored move is not available where the replay reaches it (the scenario changed)."""


class _Closed(QuitGame):
    """The server closes the game's thread (shutdown, eviction): nothing is lost."""


class _WebGame(Game):
    """The Game with its moves taken from the stored list, then from the live game's inbox."""

    def __init__(self, live: LiveGame, model: Model, actor: str, seed: int, file: str):
        self.live = live
        self.buffer = io.StringIO()
        super().__init__(
            model,
            actor,
            seed,
            _no_reader,
            self.buffer,
            compare_runs=live.compare_runs,
            width=WIDTH,
            color=False,
            file=file,
        )
        self.result: dict[str, Any] | None = None
        self.events: list[str] = []
        """The narration of each move as printed (what the dashboard shows of a team)."""

    def _told(self, tell: Any, *args: Any) -> None:
        start = len(self.buffer.getvalue())
        tell(*args)
        text = " ".join(self.buffer.getvalue()[start:].split())
        if text:
            self.events.append(text)

    def moved(self, *args: Any) -> None:
        """Narrate a move, and keep its text for the dashboard."""
        self._told(super().moved, *args)

    def stepped(self, *args: Any) -> None:
        """Narrate the end of a step, and keep its text for the dashboard."""
        self._told(super().stepped, *args)

    def ended(self, *args: Any) -> None:
        """Narrate the end of the crisis, and keep its text for the dashboard."""
        self._told(super().ended, *args)

    def ask(self, ok: list[bool], view: Any) -> int:
        """The student's move: the stored one when replaying, else the next that arrives."""
        live = self.live
        turn = self.turns - 1
        if turn < len(live.replay):
            choice = live.replay[turn]
        else:
            live.publish(self._situation(ok, view, turn))
            choice = live.inbox_get()
        if choice == PASS:
            self.say("Time ran out: you pass this turn.")
            return PASS
        if not (0 <= choice < len(ok)) or not ok[choice]:
            raise StoredMoveError(f"move {turn + 1} ({choice + 1}) is not available")
        return choice

    def _situation(self, ok: list[bool], view: Any, turn: int) -> dict[str, Any]:
        options = []
        text = io.StringIO()
        console = Console(file=text, width=WIDTH - 8, color_system=None, emoji=False)
        names = [self.name(a) for a in range(len(self.m.actors))]
        for option, available in zip(self.menu, ok, strict=True):
            text.seek(0)
            text.truncate()
            for part in _explain(self, option.index, available, view, names):
                console.print(part)
            options.append(
                {
                    "n": option.index + 1,
                    "id": option.id,
                    "label": option.label,
                    "available": bool(available),
                    "needs": None if available else requires_text(option),
                    "rung": option.rung,
                    "explain": text.getvalue().rstrip(),
                }
            )
        return {
            "status": "waiting",
            "since": time.time(),
            "turn": turn,
            "step": self.step,
            "rung": self.rung,
            "peak": self.peak,
            "options": options,
            "transcript": self.buffer.getvalue(),
            "events": self.events[-EVENTS:],
        }

    def finale(self, outcome: int, steps: int, peak: int, payoffs: np.ndarray) -> None:
        """Print how the crisis ended, and answer the last move before the debrief."""
        super().finale(outcome, steps, peak, payoffs)
        self.result = {
            "outcome": self.m.outcome_ids[outcome],
            "outcome_label": self.s.outcome_label(self.m.outcome_ids[outcome]),
            "steps": steps,
            "peak": peak,
            "payoff": float(payoffs[self.me]),
            "moves": [self.menu[k].id if k >= 0 else "pass" for k in self.my_moves],
        }
        # the move that ended the crisis is answered now; the debrief follows when it is ready
        self.live.publish(
            {"status": "debriefing", "transcript": self.buffer.getvalue(), "result": self.result}
        )


def _explain(game: Game, index: int, available: bool, view: Any, names: Sequence[str]):
    from sim.play.view import explain_option

    return explain_option(game.m, game.menu[index], index, available, view, names, game.hidden)


def _no_reader(prompt: str) -> str:
    raise EOFError


class LiveGame:
    """One game's thread and its latest situation; `move` hands it the next move."""

    def __init__(
        self,
        model: Model,
        actor: str,
        seed: int,
        replay: Sequence[int],
        file: str,
        compare_runs: int = DEBRIEF_RUNS,
        on_end: Callable[[dict[str, Any]], None] | None = None,
    ):
        self.replay = list(replay)
        self.on_end = on_end
        """Called in the game's thread with the final situation (the hub stores it)."""
        self.compare_runs = compare_runs
        self.cond = threading.Condition()
        self.inbox: list[int | None] = []
        self.version = 0
        self.closed = False
        self.stopping = False
        """Set by `close`: requests waiting on this game then replay it instead."""
        self.situation: dict[str, Any] | None = None
        self.game = _WebGame(self, model, actor, seed, file)
        self.thread = threading.Thread(target=self._main, name="escalation-game", daemon=True)
        self.thread.start()

    def _main(self) -> None:
        game = self.game
        try:
            game.play()
            if self.closed:  # stopped by the server: the game goes on after a restart
                return
            final = {"status": "finished" if game.result else "stopped", "result": game.result}
        except _Closed:
            return
        except Exception as exc:  # a stored game that no longer replays: said, not raised
            final = {"status": "broken", "error": f"this game cannot continue: {exc}"}
        final["transcript"] = game.buffer.getvalue()
        if final.get("result"):
            final["result"] = {**final["result"], "events": game.events[-EVENTS:]}
        self.publish(final)
        if self.on_end is not None:
            self.on_end(final)

    # --- the game's side ----------------------------------------------------------------------

    def publish(self, situation: dict[str, Any]) -> None:
        """Make `situation` the game's latest, and wake whoever waits for it."""
        with self.cond:
            self.situation = situation
            self.version += 1
            self.cond.notify_all()

    def inbox_get(self) -> int:
        """Wait for the next move (None: the server closes the game)."""
        with self.cond:
            while not self.inbox:
                self.cond.wait()
            choice = self.inbox.pop(0)
        if choice is None:
            self.closed = True
            raise _Closed("closed")
        return choice

    # --- the server's side --------------------------------------------------------------------

    def current(self, after: int = 0, timeout: float = WAIT) -> dict[str, Any]:
        """The situation once the game has reached a move (or its end) past version `after`;
        GameClosed if the server stops this game first."""
        with self.cond:
            if not self.cond.wait_for(lambda: self.version > after or self.stopping, timeout):
                raise TimeoutError("the game did not answer in time")
            if self.version <= after:
                raise GameClosed("the game was stopped; it replays from the database")
            assert self.situation is not None
            return self.situation

    def move(self, choice: int) -> dict[str, Any]:
        """Hand the waiting game its move; the situation at the next move or the end."""
        with self.cond:
            if self.stopping:
                raise GameClosed("the game was stopped; it replays from the database")
            before = self.version
            self.inbox.append(choice)
            self.cond.notify_all()
        return self.current(after=before)

    def close(self, timeout: float = 5.0) -> None:
        """Stop the thread (it is waiting for a move, or about to finish)."""
        with self.cond:
            self.stopping = True
            self.inbox.append(None)
            self.cond.notify_all()
        self.thread.join(timeout)

    @property
    def done(self) -> bool:
        """Whether the game has ended (finished, stopped or broken)."""
        return self.situation is not None and self.situation["status"] in FINAL

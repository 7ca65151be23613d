"""Bad requests: one message, status 400, never a traceback."""

from __future__ import annotations


class BadRequest(Exception):
    """A request the server refuses; its text is shown to the user."""

    status = 400


class Forbidden(BadRequest):
    """A missing or wrong token."""

    status = 403


class NotFound(BadRequest):
    """No such game or class."""

    status = 404


class Conflict(BadRequest):
    """A move made twice, or at the wrong turn (another tab moved first)."""

    status = 409

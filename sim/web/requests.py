"""Reading a request: a JSON object of bounded size, and the token it carries."""

from __future__ import annotations

import json
from typing import Any

from starlette.requests import Request

from sim.web.errors import BadRequest

MAX_BODY = 1024 * 1024
"""Largest request body, in bytes (1 MiB): an uploaded scenario fits with room to spare."""


async def json_body(request: Request, limit: int = MAX_BODY) -> dict[str, Any]:
    """The body as a JSON object; BadRequest if it is too big, not JSON, or not an object."""
    declared = request.headers.get("content-length")
    if declared is not None:
        if not declared.isdigit():
            raise BadRequest("bad Content-Length")
        if int(declared) > limit:
            raise BadRequest(f"the request is larger than {limit // 1024} KiB")
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind != "application/json":
        # a page of another site can send a form or text/plain to this server without asking,
        # but not application/json: that needs a preflight, which this server never grants
        raise BadRequest("send the body as JSON, with Content-Type: application/json")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise BadRequest(f"the request is larger than {limit // 1024} KiB")
        chunks.append(chunk)
    raw = b"".join(chunks)
    if not raw.strip():
        raise BadRequest("the request needs a JSON object as its body")
    try:
        value = json.loads(raw.decode("utf-8"), parse_constant=_no_constant)
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise BadRequest(f"the body is not valid JSON: {str(exc)[:120]}") from None
    if not isinstance(value, dict):
        raise BadRequest("the body must be a JSON object")
    return value


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a number JSON allows")


def token_of(request: Request) -> str | None:
    """The bearer token: `Authorization: Bearer T`, or `?token=T` (for EventSource, which
    cannot send headers)."""
    header = request.headers.get("authorization", "")
    if header.lower().startswith("bearer "):
        return header[7:].strip()
    return request.query_params.get("token")


def whole(body: dict[str, Any], name: str, default: int, least: int, most: int) -> int:
    """A whole-number field within [least, most]."""
    value = body.get(name, default)
    if isinstance(value, bool) or not isinstance(value, int) or not least <= value <= most:
        raise BadRequest(f"{name} must be a whole number from {least:,} to {most:,}")
    return value

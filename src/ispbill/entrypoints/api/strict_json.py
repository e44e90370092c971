"""JSON request bodies with a key given twice are refused.

``json.loads`` keeps the last of two equal keys, so ``{"amount": "1", "amount": "900"}`` would
be read as 900 by the route while a log, a proxy or a signature check may have read 1: the body
is refused instead (422 naming the key), for every write to ``/api/v1`` before anything runs.
"""

from __future__ import annotations

import json
from typing import Any

from starlette.types import ASGIApp, Receive, Scope, Send

from ispbill.entrypoints.api.errors import ApiProblem
from ispbill.entrypoints.api.idempotency import WRITES, read_body, replay_body


class DuplicateKey(ValueError):
    def __init__(self, key: str) -> None:
        super().__init__(f"duplicate key {key!r}")
        self.key = key


def _unique(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    found: dict[str, Any] = {}
    for key, value in pairs:
        if key in found:
            raise DuplicateKey(key)
        found[key] = value
    return found


def loads(raw: bytes) -> Any:
    """The parsed body; ``DuplicateKey`` when an object repeats a key, ``ValueError`` (or
    ``RecursionError``) when it is not JSON at all."""
    return json.loads(raw, object_pairs_hook=_unique)


class DuplicateKeysMiddleware:
    """A write to ``/api/v1`` whose JSON body repeats a key is a 422 problem naming the key
    (a webhook's raw body, verified byte for byte by its gateway's rules, is exempt)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] != "http"
            or scope["method"] not in WRITES
            or not scope["path"].startswith("/api/v1/")
            or scope["path"].startswith("/api/v1/webhooks/")
        ):
            await self.app(scope, receive, send)
            return
        body = await read_body(receive)
        try:
            if body.strip():
                loads(body)
        except DuplicateKey as exc:
            key = exc.key if len(exc.key) <= 100 else exc.key[:99] + "…"
            problem = ApiProblem(
                422,
                f"{key}: given more than once in the body; each key must appear once",
                field=key,
                rule="must appear once",
            )
            await problem.response()(scope, replay_body(body), send)
            return
        except (ValueError, RecursionError):
            pass  # not JSON: the route refuses it, naming the body
        await self.app(scope, replay_body(body), send)

"""A write to an ``/api/v1`` path that takes no such method is a 405 (with ``Allow``), or a
404 for no path at all, whatever its body or headers.

The body checks (415 for a body that is not JSON, 422 for a bad ``Idempotency-Key`` or a
repeated JSON key) are middleware, so they run before routing; without this one a ``POST`` to
a read-only resource with, say, an over-long key was told 422 about the key instead of 405
about the method. Only the router's own refusal is given here: nothing behind it runs.
"""

from __future__ import annotations

from typing import Any

from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import Request
from starlette.routing import Match
from starlette.types import ASGIApp, Receive, Scope, Send

from ispbill.entrypoints.api.errors import handle_http_error
from ispbill.entrypoints.api.idempotency import WRITES


def _routed(router: Any, scope: Scope) -> bool:
    """Some route takes this method on this path."""
    return any(route.matches(dict(scope))[0] == Match.FULL for route in router.routes)


class UnroutedWritesMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] != "http"
            or scope["method"] not in WRITES
            or not scope["path"].startswith("/api/v1/")
        ):
            await self.app(scope, receive, send)
            return
        router = getattr(scope.get("app"), "router", None)
        if router is None or _routed(router, scope):
            await self.app(scope, receive, send)
            return
        try:  # the router finds no endpoint to run: it answers 405 or 404 (or a redirect)
            await router(scope, receive, send)
        except StarletteHTTPException as exc:
            response = await handle_http_error(Request(scope, receive), exc)
            await response(scope, receive, send)

"""The request-level input guard: no NUL character, no oversized body, no deeply nested JSON.

One ASGI middleware, outermost, in front of every route (the API, the RADIUS endpoints, the
webhooks, the console, the portal and the walled garden), so no route has to remember:

* a NUL character (``%00`` or ``\\u0000``) in the path, a query parameter, a form field or any
  JSON string or key is refused, naming the parameter or the JSON path and the rule
  ``must not contain NUL characters`` (PostgreSQL cannot store it; SQLite can, so without the
  guard the two databases would disagree);
* a body above ``MAX_BODY`` (1 MiB; ``MAX_RADIUS_BODY`` 64 KiB for rlm_rest, whose requests
  are a few hundred bytes; ``MAX_UPLOAD_BODY`` for a console file upload) is refused with 413
  before it is read further;
* JSON nested deeper than ``MAX_DEPTH`` (32) levels is refused before anything parses it
  (Python's parser would otherwise overflow its stack on a few thousand brackets).

The answer speaks the language of the area: ``/api/v1`` a 422 problem+json (413 for size),
the webhooks a 400 problem (gateways only know 2xx and "refused"), the RADIUS endpoints a 400
problem, which rlm_rest turns into a reject and which is logged without the body, and the
HTML pages an error page. Multipart form fields are checked where the web reads them
(``web.common.form_of``), since only the console's upload form posts multipart.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterable, Iterator
from typing import Any
from urllib.parse import parse_qsl

from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ispbill.domain.text import NUL, NUL_RULE
from ispbill.entrypoints.api.errors import ApiProblem
from ispbill.entrypoints.api.problems import problem
from ispbill.entrypoints.pages import error_page

log = logging.getLogger(__name__)

MAX_DEPTH = 32
MAX_BODY = 1024 * 1024
MAX_RADIUS_BODY = 64 * 1024
MAX_UPLOAD_BODY = 12 * 1024 * 1024  # the console's statement upload: a 10 MiB file and its form
DEPTH_RULE = f"must not nest deeper than {MAX_DEPTH} levels"
HTML_AREAS = ("/console", "/portal", "/garden", "/sandbox")

# a JSON string (its escapes included) and the brackets outside strings
_STRING = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
_BRACKET = re.compile(r"[\[\]{}]")


class Refusal(Exception):
    def __init__(self, status: int, field: str, rule: str) -> None:
        super().__init__(f"{field}: {rule}")
        self.status = status
        self.field = field
        self.rule = rule


class InputGuardMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        try:
            check_path(scope)
            check_query(scope.get("query_string", b""))
            receive = await checked_body(scope, receive)
        except Refusal as refusal:
            response = refuse(scope, refusal)
            await response(scope, receive, send)
            return
        await self.app(scope, receive, send)


# -- the checks ---------------------------------------------------------------------------


def check_path(scope: Scope) -> None:
    path: str = scope.get("path", "")
    if NUL in path:
        raise Refusal(422, _path_parameter(scope) or "path", NUL_RULE)


def _path_parameter(scope: Scope) -> str | None:
    """The route parameter holding the NUL, when a route's pattern matches the path."""
    path: str = scope["path"]
    for route in _routes(getattr(scope.get("app"), "routes", ())):
        pattern = getattr(route, "path_regex", None)
        found = pattern.match(path) if pattern is not None else None
        if found:
            return next((k for k, v in found.groupdict().items() if NUL in v), None)
    return None


def _routes(routes: Iterable[Any], depth: int = 0) -> Iterator[Any]:
    for route in routes:
        yield route
        included = getattr(route, "original_router", None)  # FastAPI's include_router
        if included is not None and depth < 8:
            yield from _routes(getattr(included, "routes", ()), depth + 1)


def check_query(query: bytes) -> None:
    if b"\x00" not in query and b"%00" not in query:
        return
    # the same reading as starlette's ``request.query_params``
    for name, value in parse_qsl(query.decode("latin-1"), keep_blank_values=True):
        if NUL in name:
            raise Refusal(422, "query", NUL_RULE)
        if NUL in value:
            raise Refusal(422, name, NUL_RULE)


def body_limit(scope: Scope, media: str) -> int:
    if scope["path"].startswith("/radius/"):
        return MAX_RADIUS_BODY
    if media == "multipart/form-data" and scope["path"].startswith("/console/"):
        return MAX_UPLOAD_BODY
    return MAX_BODY


async def checked_body(scope: Scope, receive: Receive) -> Receive:
    """Read the body (bounded), check it, and hand the route a ``receive`` that replays it."""
    headers = {k.lower(): v for k, v in scope.get("headers", [])}
    length = headers.get(b"content-length", b"").strip()
    if not length.isdigit() and b"transfer-encoding" not in headers:
        return receive  # no body at all
    if length.isdigit() and int(length) == 0:
        return receive
    media = headers.get(b"content-type", b"").decode("latin-1").split(";")[0].strip().lower()
    limit = body_limit(scope, media)
    if length.isdigit() and int(length) > limit:
        raise Refusal(413, "body", f"must be at most {_size(limit)}")
    chunks: list[bytes] = []
    size = 0
    more = True
    while more:
        message = await receive()
        if message["type"] != "http.request":  # the client went away: let the app see it
            return _replay(b"".join(chunks), receive, message)
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise Refusal(413, "body", f"must be at most {_size(limit)}")
        chunks.append(chunk)
        more = message.get("more_body", False)
    body = b"".join(chunks)
    if _is_json(media) or scope["path"].startswith(("/radius/", "/api/v1/webhooks/")):
        check_json(body)
    elif media == "application/x-www-form-urlencoded":
        check_query(body)
    return _replay(body, receive)


def _replay(body: bytes, receive: Receive, last: Message | None = None) -> Receive:
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": last is not None}
        if last is not None:
            return last
        return await receive()  # after the body: the disconnect, when it comes

    return replay


def check_json(body: bytes) -> None:
    """Depth first (a scan, nothing parsed), then NUL in any string or key. A body that is not
    JSON passes: the route refuses it in its own words."""
    try:
        text = body.decode(json.detect_encoding(body))
    except (UnicodeDecodeError, LookupError):
        return
    if too_deep(text, MAX_DEPTH):
        raise Refusal(422, "body", DEPTH_RULE)
    if NUL not in text and "\\u0000" not in text:
        return
    try:
        document = json.loads(text)
    except ValueError:
        return
    for where, value in _strings(document, ()):
        if NUL in value:
            raise Refusal(422, ".".join(where) or "body", NUL_RULE)


def too_deep(text: str, limit: int) -> bool:
    if text.count("[") + text.count("{") <= limit:
        return False
    depth = 0
    for bracket in _BRACKET.finditer(_STRING.sub("", text)):
        if bracket.group() in "[{":
            depth += 1
            if depth > limit:
                return True
        else:
            depth -= 1
    return False


def _strings(value: Any, where: tuple[str, ...]) -> Iterator[tuple[tuple[str, ...], str]]:
    """Every string of a parsed document (keys too) with its path; the depth is bounded."""
    if isinstance(value, str):
        yield where, value
    elif isinstance(value, dict):
        for key, item in value.items():
            if NUL in key:
                yield where, key
            else:
                yield from _strings(item, (*where, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _strings(item, (*where, str(index)))


def _is_json(media: str) -> bool:
    return media == "application/json" or (
        media.startswith("application/") and media.endswith("+json")
    )


def _size(limit: int) -> str:
    return f"{limit // (1024 * 1024)} MiB" if limit >= 1024 * 1024 else f"{limit // 1024} KiB"


# -- the answers --------------------------------------------------------------------------


def refuse(scope: Scope, refusal: Refusal) -> Response:
    path: str = scope.get("path", "")
    detail = f"{refusal.field}: {refusal.rule}"
    if path.startswith("/radius/"):
        source = (scope.get("client") or ("", 0))[0]
        log.warning("radius: request from %s refused: %s", source, detail)
        return problem(refusal.status if refusal.status == 413 else 400, "Refused", detail)
    if path.startswith("/api/v1/webhooks/"):
        status = refusal.status if refusal.status == 413 else 400
        return problem(status, "Webhook refused", detail, refusal.field)
    if path.startswith(HTML_AREAS):
        return _page(scope, refusal.status, detail)
    return ApiProblem(refusal.status, detail, field=refusal.field, rule=refusal.rule).response()


def _page(scope: Scope, status: int, detail: str) -> Response:
    return error_page(Request(scope), status, detail)

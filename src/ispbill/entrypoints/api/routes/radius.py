"""rlm_rest endpoints for FreeRADIUS 3.2: ``POST /radius/authorize`` and ``/radius/accounting``.

They speak rlm_rest's JSON (FREERADIUS-NOTES): the request is an object of attributes, the
answer ``{"reply:Name": {"value": [...], "do_xlat": false}, "control:...": ...}``. Values go out
with ``do_xlat`` false so a password or a name containing ``%{...}`` is never expanded. HTTP
status decides the module result: 200 accept (attributes applied), 401 reject (a Reply-Message
still reaches the Access-Reject), 204 accounting recorded, 400 refused (FreeRADIUS then sends no
Accounting-Response; the reason is logged here). The endpoints need the token configured in
the rest module (HTTP Basic password, or a Bearer token) and accept only allowed source
addresses; without a token they are off (503). Before any of this, the input guard
(``entrypoints/api/inputs.py``) refuses a body over 64 KiB (413), JSON nested deeper than 32
levels and a NUL in any attribute (400, logged without the body): rlm_rest rejects. Request
bodies are never logged: they carry User-Password in clear. Not part of the public OpenAPI of
``/api/v1``.
"""

from __future__ import annotations

import base64
import hmac
import ipaddress
import json
import logging
import threading
import time
from datetime import datetime
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from starlette.concurrency import run_in_threadpool

from ispbill.adapters.db import settings_store
from ispbill.bootstrap import App
from ispbill.domain.accounting import AcctRecord, parse_accounting
from ispbill.domain.errors import ValidationError
from ispbill.domain.radius import RadiusPolicy
from ispbill.entrypoints.api.problems import problem
from ispbill.use_cases.network import radius_requests as radius

log = logging.getLogger("ispbill.radius")
router = APIRouter(prefix="/radius", include_in_schema=False)


class _PolicyCache:
    """The operator's RADIUS policy, re-read at most every ``ttl_s`` (one query per request
    saved on the hot path; a settings change reaches authorize within the TTL)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._policy: RadiusPolicy | None = None
        self._loaded = 0.0

    def get(self, app: App) -> RadiusPolicy:
        ttl = app.settings.radius_policy_ttl_seconds
        with self._lock:
            if self._policy is None or time.monotonic() - self._loaded >= ttl:
                with app.uow() as uow:
                    self._policy = settings_store.load(uow).radius_policy()
                self._loaded = time.monotonic()
            return self._policy


def _cache(request: Request) -> _PolicyCache:
    cache = getattr(request.app.state, "radius_policy", None)
    if cache is None:
        cache = request.app.state.radius_policy = _PolicyCache()
    assert isinstance(cache, _PolicyCache)
    return cache


def guard(request: Request) -> App:
    """Token and source address, before anything is read. Plain function, not a dependency:
    on this hot path every thread hop counts."""
    app: App = request.app.state.container
    token = app.settings.radius_token
    if token is None:
        raise Refused(503, "RADIUS endpoints are off: set ISPBILL_RADIUS_TOKEN")
    source = request.client.host if request.client else ""
    if not _allowed(source, app.settings.radius_allowed_sources):
        log.warning("radius: refused caller %s (not an allowed source)", source)
        raise Refused(403, f"source {source} is not allowed")
    if not _token_matches(request.headers.get("authorization", ""), token.get_secret_value()):
        log.warning("radius: refused caller %s (bad or missing token)", source)
        raise Refused(401, "missing or wrong token")
    return app


class Refused(Exception):
    def __init__(self, status: int, detail: str) -> None:
        self.status = status
        self.detail = detail


async def handle_refused(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, Refused)
    # 503/403 mean "fail" to rlm_rest (reject); a 401 would be read as a subscriber reject
    status = 403 if exc.status == 401 else exc.status
    return problem(status, "Refused", exc.detail)


async def _body(request: Request) -> dict[str, Any]:
    try:
        body = json.loads(await request.body())
    except ValueError:
        raise Refused(400, "the body must be a JSON object of attributes") from None
    if not isinstance(body, dict):
        raise Refused(400, "the body must be a JSON object of attributes")
    return body


@router.post("/authorize")
async def authorize(request: Request) -> Response:
    app = guard(request)
    body = await _body(request)
    answer = await run_in_threadpool(_authorize, app, body, _cache(request))
    content: dict[str, Any] = {}
    for name, value in answer.control:
        content[f"control:{name}"] = _value(value)
    for name, value in answer.reply.attributes:
        content[f"reply:{name}"] = _value(value)
    if not answer.reply.accepted:
        content["reply:Reply-Message"] = _value(answer.reply.message)
        return JSONResponse(content, status_code=401)
    return JSONResponse(content, status_code=200)


def _authorize(app: App, body: dict[str, Any], cache: _PolicyCache) -> radius.Authorization:
    """In a worker thread: the policy (re)load and the lookup both touch the database."""
    policy = cache.get(app)
    with app.uow() as uow:
        return radius.authorize(uow, attributes=body, policy=policy, now=app.clock.now())


@router.post("/accounting")
async def accounting(request: Request) -> Response:
    app = guard(request)
    body = await _body(request)
    now = app.clock.now()
    source = request.client.host if request.client else None
    try:
        record = parse_accounting(body, received_at=now)
    except ValidationError as exc:
        log.warning("radius: accounting from %s refused: %s", source, exc)
        return problem(400, "Refused", str(exc), exc.field)
    result = await run_in_threadpool(_account, app, record, now)
    log.debug("radius: accounting %s %s: %s", record.status, record.session_key, result.note)
    return Response(status_code=204)


def _account(app: App, record: AcctRecord, now: datetime) -> radius.AccountingResult:
    with app.uow() as uow:
        return radius.record_accounting(uow, record=record, now=now)


def _value(value: str) -> dict[str, Any]:
    return {"value": [value], "do_xlat": False}


def _allowed(source: str, allowed: str) -> bool:
    try:
        address = ipaddress.ip_address(source)
    except ValueError:
        return False
    for item in allowed.split(","):
        item = item.strip()
        if item and address in ipaddress.ip_network(item, strict=False):
            return True
    return False


def _token_matches(header: str, token: str) -> bool:
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "bearer":
        return hmac.compare_digest(value.strip().encode(), token.encode())
    if scheme.lower() == "basic":
        try:
            decoded = base64.b64decode(value.strip(), validate=True).decode()
        except ValueError:
            return False
        return hmac.compare_digest(decoded.partition(":")[2].encode(), token.encode())
    return False

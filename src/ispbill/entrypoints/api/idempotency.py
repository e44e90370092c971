"""``Idempotency-Key`` on every write of ``/api/v1`` (one ASGI middleware, not per route).

The first request with a key claims it (``use_cases/admin/idempotency.py``): a record per token
and key, "in flight", written before the route runs, so a concurrent retry with the same
key is told 409 instead of doing the work twice. When the route answers 2xx the answer (status
and JSON body) is stored and every later request with that key and the same method, path and
body gets it back without anything being done again. A JSON body is compared by its content
(keys sorted, no whitespace: ``canonical``), so the same object with its keys in another order
is the same request. Any other answer (a refusal, a crash)
releases the key, so the caller may fix the request and retry with it. The same key with a
different request is a 422 naming the header.

Answers that carry a secret shown once (a refill-card batch's codes, a session token) are not
kept: a replay of those is a 409 saying so, rather than a second copy of the secret at rest.
Records expire after ``idempotency_ttl_hours``; expired rows are purged as new ones are written.
"""

from __future__ import annotations

import hashlib
import json
import logging
from datetime import timedelta
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ispbill.bootstrap import App
from ispbill.entrypoints.api.errors import ApiProblem
from ispbill.use_cases.admin import idempotency
from ispbill.use_cases.admin.api_tokens import authenticate

log = logging.getLogger(__name__)
HEADER = "Idempotency-Key"
MAX_KEY = 120
WRITES = frozenset({"POST", "PUT", "PATCH", "DELETE"})
PREFIX = "/api/v1/"
EXEMPT = ("/api/v1/webhooks/",)  # gateways bring their own event ids
# Paths whose first answer holds a secret shown once: the key is honoured, the body not kept.
SECRET_ANSWERS = ("/api/v1/refill-card-batches", "/api/v1/sessions")
AUTHENTICATED = "ispbill.authenticated"  # scope key: (bearer secret, TokenHolder) checked


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", []):
        if key.lower() == name:
            try:
                return str(value.decode("latin-1"))
            except UnicodeDecodeError:  # pragma: no cover - latin-1 decodes every byte
                return None
    return None


def _bearer(scope: Scope) -> str | None:
    value = (_header(scope, b"authorization") or "").strip()
    scheme, _, secret = value.partition(" ")
    return secret.strip() or None if scheme.lower() == "bearer" else None


class IdempotencyMiddleware:
    def __init__(self, app: ASGIApp, container: App) -> None:
        self.app = app
        self.container = container

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in WRITES:
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        key = _header(scope, b"idempotency-key")
        if key is None or not path.startswith(PREFIX) or path.startswith(EXEMPT):
            await self.app(scope, receive, send)
            return
        key = key.strip()
        if not 1 <= len(key) <= MAX_KEY or not (key.isascii() and key.isprintable()):
            rule = f"1 to {MAX_KEY} printable characters"
            await ApiProblem(422, f"{HEADER}: {rule}", field=HEADER, rule=rule).response()(
                scope, receive, send
            )
            return
        body = await read_body(receive)
        token_id = await run_in_threadpool(self._token_id, scope)
        if token_id is None:  # no or unknown token: the route answers 401
            await self.app(scope, replay_body(body), send)
            return
        query = scope.get("query_string", b"")
        digest = hashlib.sha256(
            b"\0".join([scope["method"].encode(), path.encode(), query, canonical(body)])
        ).hexdigest()
        method_path = f"{scope['method']} {path}"[:300]
        claimed = await run_in_threadpool(self._claim, token_id, key, method_path, digest)
        if isinstance(claimed, ApiProblem):
            await claimed.response()(scope, receive, send)
            return
        if claimed is not None:
            await _send_json(send, *claimed)
            return
        captured = _Capture(send)
        stored = False
        try:
            await self.app(scope, replay_body(body), captured)
            if 200 <= captured.status < 300:
                secret = path.startswith(SECRET_ANSWERS)
                answer = None if secret else captured.json()
                stored = await run_in_threadpool(
                    self._store, token_id, key, captured.status, answer, secret
                )
        finally:
            if not stored:
                await run_in_threadpool(self._release, token_id, key)

    # --- database work (in a worker thread) ------------------------------------------------

    def _token_id(self, scope: Scope) -> int | None:
        """The caller's live token, authenticated once: the route's ``principal`` reuses it
        (``scope[AUTHENTICATED]``) instead of looking it up again."""
        secret = _bearer(scope)
        if not secret or not secret.isascii() or len(secret) > 200:
            return None
        touch = timedelta(seconds=self.container.settings.token_touch_seconds)
        with self.container.uow() as uow:
            token = authenticate(
                uow, plaintext=secret, now=self.container.clock.now(), touch_every=touch
            )
        if token is None:
            return None
        scope[AUTHENTICATED] = (secret, token)
        return token.id

    def _claim(
        self, token_id: int, key: str, method_path: str, digest: str
    ) -> ApiProblem | tuple[int, Any] | None:
        """None when this request now owns the key; otherwise the answer to give."""
        with self.container.uow() as uow:
            claim = idempotency.claim_key(
                uow,
                token_id=token_id,
                key=key,
                method_path=method_path,
                request_hash=digest,
                now=self.container.clock.now(),
                ttl=timedelta(hours=self.container.settings.idempotency_ttl_hours),
            )
        match claim.outcome:
            case idempotency.Outcome.CLAIMED:
                return None
            case idempotency.Outcome.IN_FLIGHT:
                return _in_flight(key)
            case idempotency.Outcome.OTHER_REQUEST:
                return ApiProblem(
                    422,
                    f"{HEADER}: {key!r} was already used for a different request",
                    field=HEADER,
                    rule="reused with a different request",
                )
            case idempotency.Outcome.SECRET:
                return ApiProblem(
                    409,
                    f"{HEADER}: {key!r} already succeeded; its answer held a secret shown once, "
                    "which is not kept",
                    field=HEADER,
                    rule="secret answers are not replayed",
                )
        return claim.status, claim.body

    def _store(self, token_id: int, key: str, status: int, answer: Any, secret: bool) -> bool:
        with self.container.uow() as uow:
            return idempotency.store_answer(
                uow, token_id=token_id, key=key, status=status, answer=answer, secret=secret
            )

    def _release(self, token_id: int, key: str) -> None:
        try:
            with self.container.uow() as uow:
                idempotency.release_key(uow, token_id=token_id, key=key)
        except Exception:  # the key then stays claimed until it expires; log, do not mask
            log.exception("could not release idempotency key %r", key)


def canonical(body: bytes) -> bytes:
    """A JSON body as sorted-key, whitespace-free JSON (what the route will read); the bytes as
    they are when they are not JSON (empty, or something the route refuses anyway)."""
    if not body.strip():
        return body
    try:
        value = json.loads(body)
        text = json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        return text.encode()
    except (ValueError, RecursionError):  # not JSON, too deep, or a lone surrogate
        return body


def _in_flight(key: str) -> ApiProblem:
    return ApiProblem(
        409,
        f"{HEADER}: a request with key {key!r} is still in progress; retry later",
        field=HEADER,
        rule="in progress",
    )


async def read_body(receive: Receive) -> bytes:
    """The whole request body (a middleware that reads it passes it on with ``replay_body``)."""
    chunks: list[bytes] = []
    while True:
        message = await receive()
        if message["type"] != "http.request":
            break
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


def replay_body(body: bytes) -> Receive:
    """A ``receive`` that hands the already-read ``body`` to the next application once."""
    sent = False

    async def receive() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return {"type": "http.disconnect"}

    return receive


async def _send_json(send: Send, status: int, body: Any) -> None:
    payload = b"" if status == 204 else json.dumps(body, separators=(",", ":")).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(payload)).encode()),
                (b"idempotent-replayed", b"true"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": payload})


class _Capture:
    """Passes the response through while keeping a copy to store."""

    def __init__(self, send: Send) -> None:
        self.send = send
        self.status = 0
        self.content_type = ""
        self.chunks: list[bytes] = []

    async def __call__(self, message: Message) -> None:
        if message["type"] == "http.response.start":
            self.status = int(message["status"])
            for name, value in message.get("headers", []):
                if name.lower() == b"content-type":
                    self.content_type = value.decode("latin-1")
        elif message["type"] == "http.response.body":
            self.chunks.append(message.get("body", b""))
        await self.send(message)

    def json(self) -> Any:
        raw = b"".join(self.chunks)
        if not raw or "json" not in self.content_type:
            return None
        return json.loads(raw)

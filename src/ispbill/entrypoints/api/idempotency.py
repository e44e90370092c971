"""An optional ``Idempotency-Key`` for POSTs other than payments: the first answer to a key is
stored (``idempotency_records``, per token) and replayed for a retry with the same body; the
same key with another request is refused (422 naming the header). Payments keep their own,
required key (``routes/payments.py``), which also keys the ledger."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from typing import Any

from fastapi.responses import JSONResponse
from pydantic import BaseModel
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from ispbill.adapters.db.models import IdempotencyRecord
from ispbill.bootstrap import App
from ispbill.entrypoints.api.auth import Principal
from ispbill.entrypoints.api.errors import ApiProblem, call

KEY_HEADER = "Idempotency-Key"


def _digest(route: str, body: BaseModel) -> str:
    canonical = json.dumps(
        {"route": route, "body": body.model_dump(mode="json")},
        sort_keys=True,
        separators=(",", ":"),
    )
    return hashlib.sha256(canonical.encode()).hexdigest()


def _replay(record: IdempotencyRecord, key: str, route: str, digest: str) -> JSONResponse:
    if record.method_path != route or record.request_hash != digest:
        raise ApiProblem(
            422,
            f"{KEY_HEADER}: {key!r} was already used for a different request",
            field=KEY_HEADER,
            rule="reused with a different body",
        )
    return JSONResponse(record.body, status_code=record.status)


async def once(
    app: App,
    caller: Principal,
    *,
    key: str | None,
    route: str,
    body: BaseModel,
    status: int,
    work: Callable[[], BaseModel],
) -> Any:
    """Run ``work`` once per (token, key); without a key, simply run it."""
    if key is None or not key.strip():
        return JSONResponse((await call(work)).model_dump(mode="json"), status_code=status)
    key = key.strip()
    digest = _digest(route, body)

    def find() -> IdempotencyRecord | None:
        with app.uow() as uow:
            return uow.session.scalars(
                select(IdempotencyRecord).where(
                    IdempotencyRecord.token_id == caller.token_id, IdempotencyRecord.key == key
                )
            ).one_or_none()

    existing = await call(find)
    if existing is not None:
        return _replay(existing, key, route, digest)
    answer = (await call(work)).model_dump(mode="json")

    def store() -> None:
        with app.uow() as uow:
            uow.session.add(
                IdempotencyRecord(
                    key=key,
                    token_id=caller.token_id,
                    method_path=route,
                    request_hash=digest,
                    status=status,
                    body=answer,
                    created_at=app.clock.now(),
                )
            )
            try:
                uow.commit()
            except IntegrityError:  # a concurrent request with the same key stored first
                uow.session.rollback()

    await call(store)
    winner = await call(find)
    if winner is not None:
        return _replay(winner, key, route, digest)
    return JSONResponse(answer, status_code=status)

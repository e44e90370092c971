"""Idempotency keys of API writes: claim a key before the request runs, keep its answer after.

The first request with a key claims it "in flight", so a concurrent retry is told so instead of
doing the work twice. A 2xx answer is kept and replayed to every later request with the same
key, method, path and body; any other answer releases the key so the caller may fix the
request and retry with it. The same key with a different request is refused. An answer that
held a secret shown once is not kept (``secret``): a replay is refused rather than a second
copy of the secret kept at rest. Records expire after ``ttl``; expired ones are purged as new
keys are claimed. The HTTP side (headers, bodies, problem answers) is the API's middleware.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from ispbill.adapters.db import idempotency_store as store
from ispbill.adapters.db.unit_of_work import UnitOfWork


class Outcome(StrEnum):
    CLAIMED = "claimed"  # this request now owns the key: run it
    IN_FLIGHT = "in flight"  # another request with the key has not answered yet
    OTHER_REQUEST = "other request"  # the key was used for a different request
    SECRET = "secret"  # the key succeeded with a secret answer, which is not kept
    REPLAY = "replay"  # the key succeeded: answer ``status`` and ``body`` again


@dataclass(frozen=True)
class Claim:
    outcome: Outcome
    status: int = 0
    body: Any = None


def claim_key(
    uow: UnitOfWork,
    *,
    token_id: int,
    key: str,
    method_path: str,
    request_hash: str,
    now: datetime,
    ttl: timedelta,
) -> Claim:
    """Claim ``key`` for this request, or say what the earlier request with it answers."""
    store.purge_before(uow.session, now - ttl)
    claimed = store.add_claim(
        uow, token_id=token_id, key=key, method_path=method_path, request_hash=request_hash, now=now
    )
    if claimed:
        return Claim(Outcome.CLAIMED)
    record = store.find(uow.session, token_id, key)
    if record is None:  # released between our insert and our read: the caller retries
        return Claim(Outcome.IN_FLIGHT)
    if record.method_path != method_path or record.request_hash != request_hash:
        return Claim(Outcome.OTHER_REQUEST)
    if record.status == store.IN_FLIGHT:
        return Claim(Outcome.IN_FLIGHT)
    if record.body.get("secret"):
        return Claim(Outcome.SECRET)
    return Claim(Outcome.REPLAY, record.status, record.body.get("json"))


def store_answer(
    uow: UnitOfWork, *, token_id: int, key: str, status: int, answer: Any, secret: bool
) -> bool:
    """Keep the successful answer for replays (only the fact of it when ``secret``); False
    when the claim is gone (the key then stays free)."""
    body: dict[str, Any] = {"secret": True} if secret else {"json": answer}
    saved = store.save_answer(uow.session, token_id, key, status, body)
    if saved:
        uow.commit()
    return saved


def release_key(uow: UnitOfWork, *, token_id: int, key: str) -> None:
    """Free a key whose request did not succeed, so that a corrected retry may use it."""
    store.delete_in_flight(uow.session, token_id, key)
    uow.commit()

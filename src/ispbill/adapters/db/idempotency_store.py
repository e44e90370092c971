"""Idempotency records at rest: one row per (token, key), claimed before a request runs.

A claim is an INSERT against the unique (token, key) constraint, so of two concurrent requests
with one key exactly one wins; the loser learns it from the constraint (``add_claim`` answers
False) and reads the winner's record. The rules (what a record means, when it expires, what a
replay answers) are the use case's (``use_cases/admin/idempotency.py``).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from ispbill.adapters.db.models import IdempotencyRecord
from ispbill.adapters.db.unit_of_work import UnitOfWork

IN_FLIGHT = 0  # the status of a claimed key whose request has not answered yet


def purge_before(session: Session, cutoff: datetime) -> None:
    """Forget every record created before ``cutoff``."""
    session.execute(delete(IdempotencyRecord).where(IdempotencyRecord.created_at < cutoff))


def add_claim(
    uow: UnitOfWork,
    *,
    token_id: int,
    key: str,
    method_path: str,
    request_hash: str,
    now: datetime,
) -> bool:
    """Claim the key "in flight" and commit (with what the unit of work holds); False, with
    the transaction rolled back, when the token already holds a record under this key."""
    uow.session.add(
        IdempotencyRecord(
            key=key,
            token_id=token_id,
            method_path=method_path,
            request_hash=request_hash,
            status=IN_FLIGHT,
            body={},
            created_at=now,
        )
    )
    try:
        uow.commit()
    except IntegrityError:
        uow.session.rollback()
        return False
    return True


def find(session: Session, token_id: int, key: str) -> IdempotencyRecord | None:
    return session.scalars(
        select(IdempotencyRecord).where(
            IdempotencyRecord.token_id == token_id, IdempotencyRecord.key == key
        )
    ).one_or_none()


def save_answer(
    session: Session, token_id: int, key: str, status: int, body: dict[str, Any]
) -> bool:
    """Keep the answer on the claimed record; False when the record is gone."""
    record = find(session, token_id, key)
    if record is None:
        return False
    record.status = status
    record.body = body
    return True


def delete_in_flight(session: Session, token_id: int, key: str) -> None:
    """Release a claim whose request did not succeed (an answered record stays)."""
    session.execute(
        delete(IdempotencyRecord).where(
            IdempotencyRecord.token_id == token_id,
            IdempotencyRecord.key == key,
            IdempotencyRecord.status == IN_FLIGHT,
        )
    )

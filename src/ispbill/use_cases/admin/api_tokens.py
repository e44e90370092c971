"""API tokens: bearer secrets for the REST API, each with a role.

Only the SHA-256 of a token is stored; ``create_token`` returns the plaintext once. Roles:
``admin`` (everything), ``readonly`` (reads only), ``reseller`` (only the customers of its
reseller) and ``customer``: a portal session of one customer (``open_customer_session``), which
expires. ``authenticate`` notes a token's use at most once per ``touch_every`` so that reads do
not each write the token row.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select

from ispbill.adapters.db import event_log as events
from ispbill.adapters.db import token_store
from ispbill.adapters.db.lookups import MAX_ID, by_id
from ispbill.adapters.db.models import ApiToken, Customer, Reseller
from ispbill.adapters.db.unit_of_work import UnitOfWork
from ispbill.domain.customers import validate_name
from ispbill.domain.errors import NotFound, ValidationError

ROLES = ("admin", "reseller", "readonly")  # operator tokens; "customer" is a session
CUSTOMER = "customer"
PREFIX = "isp_"


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class CreatedToken:
    token: ApiToken
    plaintext: str


def create_token(
    uow: UnitOfWork, *, name: str, role: str, reseller_id: int | None, now: datetime, actor: str
) -> CreatedToken:
    name = validate_name(name)
    role = role.strip().lower()
    if role not in ROLES:
        raise ValidationError("role", f"must be one of: {', '.join(ROLES)}")
    if role == "reseller":
        if reseller_id is None:
            raise ValidationError("reseller", "a reseller token needs --reseller")
        by_id(uow.session, Reseller, reseller_id, field="reseller")
    elif reseller_id is not None:
        raise ValidationError("reseller", "only reseller tokens belong to a reseller")
    plaintext = PREFIX + secrets.token_urlsafe(32)  # 32 random bytes
    row = ApiToken(
        name=name,
        role=role,
        reseller_id=reseller_id,
        token_hash=hash_token(plaintext),
        created_at=now,
    )
    uow.session.add(row)
    uow.session.flush()
    events.record(
        uow,
        now=now,
        actor=actor,
        kind="api_token.created",
        subject_type="api_token",
        subject_id=row.id,
        figures={"role": role, "reseller_id": reseller_id},
    )
    uow.commit()
    return CreatedToken(row, plaintext)


def list_tokens(uow: UnitOfWork) -> list[ApiToken]:
    return list(uow.session.scalars(select(ApiToken).order_by(ApiToken.id)))


def revoke_token(uow: UnitOfWork, *, token_id: int, now: datetime, actor: str) -> ApiToken:
    row = uow.session.get(ApiToken, token_id) if 0 < token_id <= MAX_ID else None
    if row is None:
        raise NotFound("api token", token_id, field="token")
    if row.revoked_at is None:
        row.revoked_at = now
        events.record(
            uow,
            now=now,
            actor=actor,
            kind="api_token.revoked",
            subject_type="api_token",
            subject_id=row.id,
        )
        uow.commit()
    return row


def open_customer_session(
    uow: UnitOfWork,
    *,
    customer_id: int,
    lifetime: timedelta,
    now: datetime,
    actor: str,
    reseller_id: int | None = None,
) -> CreatedToken:
    """A portal session for one customer: a bearer token that sees only that customer's data
    and expires after ``lifetime``. ``reseller_id`` limits who may open it (a reseller only for
    its own customers; anyone else's is "not found", as if it did not exist)."""
    if not timedelta(minutes=1) <= lifetime <= timedelta(days=90):
        raise ValidationError("lifetime", "must be between 1 minute and 90 days")
    row_customer = by_id(uow.session, Customer, customer_id, field="customer")
    if reseller_id is not None and row_customer.reseller_id != reseller_id:
        raise NotFound("customer", customer_id, field="customer")
    plaintext = PREFIX + secrets.token_urlsafe(32)
    row = ApiToken(
        name=f"session:{row_customer.id}",
        role=CUSTOMER,
        customer_id=row_customer.id,
        token_hash=hash_token(plaintext),
        created_at=now,
        expires_at=now + lifetime,
    )
    uow.session.add(row)
    uow.session.flush()
    events.record(
        uow,
        now=now,
        actor=actor,
        kind="api_token.session_opened",
        subject_type="api_token",
        subject_id=row.id,
        customer_id=row_customer.id,
        figures={"expires_at": row.expires_at.isoformat() if row.expires_at else None},
    )
    uow.commit()
    return CreatedToken(row, plaintext)


@dataclass(frozen=True)
class TokenHolder:
    """Who a live token speaks for: what the API's authorisation needs of it."""

    id: int
    name: str
    role: str
    reseller_id: int | None
    customer_id: int | None


def authenticate(
    uow: UnitOfWork, *, plaintext: str, now: datetime, touch_every: timedelta = timedelta(0)
) -> TokenHolder | None:
    """The live token with this secret, or None (unknown, revoked or expired).

    Its ``last_used_at`` is written only when older than ``touch_every``: a busy integration
    then costs one write per interval, not one per request."""
    row = token_store.by_hash(uow.session, hash_token(plaintext))
    if row is None or row.revoked_at is not None:
        return None
    if row.expires_at is not None and row.expires_at <= now:
        return None
    if row.last_used_at is None or now - row.last_used_at >= touch_every:
        row.last_used_at = now
        uow.commit()
    return TokenHolder(row.id, row.name, row.role, row.reseller_id, row.customer_id)

"""Read model of refill cards for the API: the operator's card list (never the codes)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import select

from ispbill.adapters.db.keyset import Slice, keyset_slice, mapped
from ispbill.adapters.db.models import RefillCard
from ispbill.adapters.db.unit_of_work import UnitOfWork
from ispbill.domain.money import Money


@dataclass(frozen=True)
class CardView:
    id: int
    serial: str
    batch_id: int
    value: Money
    status: str
    expires_on: date | None
    redeemed_at: datetime | None
    customer_id: int | None


@dataclass(frozen=True)
class CardFilter:
    batch_id: int | None = None
    status: str | None = None
    customer_id: int | None = None


def card_view(row: RefillCard) -> CardView:
    return CardView(
        id=row.id,
        serial=row.serial,
        batch_id=row.batch_id,
        value=Money(row.value_minor, row.currency),
        status=row.status,
        expires_on=row.expires_on,
        redeemed_at=row.redeemed_at,
        customer_id=row.customer_id,
    )


def list_cards(
    uow: UnitOfWork, wanted: CardFilter, *, after: int | None, limit: int
) -> Slice[CardView]:
    """Cards by id; filter by batch, status and redeeming customer (operator-wide)."""
    query = select(RefillCard)
    if wanted.batch_id is not None:
        query = query.where(RefillCard.batch_id == wanted.batch_id)
    if wanted.status is not None:
        query = query.where(RefillCard.status == wanted.status)
    if wanted.customer_id is not None:
        query = query.where(RefillCard.customer_id == wanted.customer_id)
    found = keyset_slice(uow.session, query, RefillCard.id, after=after, limit=limit)
    return mapped(found, lambda rows: [card_view(r) for r in rows])

"""Refill cards: generate a batch (the codes are in the answer, this once), void, redeem, list
and the liability report.

Generating, voiding, listing and the liability are the operator's (admin writes, readonly
reads). Redeeming is open to every caller for a customer it may see, the customer's own portal
session included; failed attempts are throttled per customer and per source address.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request

from ispbill.adapters.db.lookups import MAX_ID
from ispbill.domain.refill import CardStatus
from ispbill.entrypoints.api.auth import Admin, Caller, Operator, require_customer
from ispbill.entrypoints.api.deps import container
from ispbill.entrypoints.api.errors import call
from ispbill.entrypoints.api.pagination import Page, Paging, page_of
from ispbill.entrypoints.api.schemas import (
    Amount,
    CardBatchIn,
    CardBatchOut,
    CardOut,
    IssuedCardOut,
    LiabilityOut,
    RedeemIn,
    RedeemOut,
    VoidIn,
    VoidOut,
)
from ispbill.use_cases.payments import refill_cards
from ispbill.use_cases.queries import card_lists
from ispbill.use_cases.queries.card_lists import CardView

router = APIRouter(prefix="/api/v1", tags=["refill cards"])


def card_out(card: CardView) -> CardOut:
    return CardOut(
        id=card.id,
        serial=card.serial,
        batch_id=card.batch_id,
        value=Amount.of(card.value),
        status=card.status,
        expires_on=card.expires_on,
        redeemed_at=card.redeemed_at,
        customer_id=card.customer_id,
    )


@router.post("/refill-card-batches", response_model=CardBatchOut, status_code=201)
async def generate_cards(body: CardBatchIn, request: Request, caller: Admin) -> CardBatchOut:
    """Issue a batch; its value becomes a liability. The answer holds the only copy of the
    codes (only their keyed hashes are stored): a replay of the request does not show them."""
    app = container(request)
    secret = app.settings.refill_card_secret
    delivered: list[Any] = []

    def work() -> CardBatchOut:
        key = refill_cards.secret_key(secret.get_secret_value() if secret else None)
        with app.uow() as uow:
            issued = refill_cards.generate_batch(
                uow,
                spec=refill_cards.NewBatch(
                    count=body.count,
                    value=body.value,
                    currency=body.currency.upper(),
                    expires_on=body.expires_on,
                    prefix=body.prefix,
                    timezone=body.timezone,
                ),
                key=key,
                now=app.clock.now(),
                actor=caller.actor,
                deliver=delivered.append,  # into this answer; committed only after
            )
        return CardBatchOut(
            batch_id=issued.batch_id,
            name=issued.name,
            value=Amount.of(issued.value),
            total=Amount.of(issued.total),
            expires_on=issued.expires_on,
            cards=[IssuedCardOut(serial=c.serial, code=c.code) for c in issued.cards],
        )

    return await call(work)


@router.get("/refill-cards", response_model=Page[CardOut])
async def list_cards(
    request: Request,
    _caller: Operator,
    paging: Paging,
    batch_id: Annotated[int | None, Query(ge=1, le=MAX_ID)] = None,
    status: Annotated[CardStatus | None, Query()] = None,
    customer_id: Annotated[int | None, Query(ge=1, le=MAX_ID)] = None,
) -> Page[CardOut]:
    """Cards by id (never their codes); filter by batch, status, redeeming customer."""
    app = container(request)

    def work() -> Page[CardOut]:
        wanted = card_lists.CardFilter(
            batch_id, status.value if status is not None else None, customer_id
        )
        with app.uow() as uow:
            found = card_lists.list_cards(uow, wanted, after=paging.after(), limit=paging.limit)
            return page_of(found, card_out)

    return await call(work)


@router.post("/refill-cards/void", response_model=VoidOut)
async def void_cards(body: VoidIn, request: Request, caller: Admin) -> VoidOut:
    """Void one active card (``serial``) or every active card of a batch (``batch``)."""
    app = container(request)

    def work() -> VoidOut:
        with app.uow() as uow:
            done = refill_cards.void_cards(
                uow,
                now=app.clock.now(),
                actor=caller.actor,
                serial=body.serial,
                batch=body.batch,
                reason=body.reason,
            )
            return VoidOut(
                serials=list(done.serials), totals=[Amount.of(t) for t in done.total.values()]
            )

    return await call(work)


@router.post("/refill-cards/redeem", response_model=RedeemOut)
async def redeem_card(body: RedeemIn, request: Request, caller: Caller) -> RedeemOut:
    """Credit a card's value to a customer's wallet, exactly once per card."""
    app = container(request)
    secret = app.settings.refill_card_secret
    source = f"ip:{request.client.host}" if request.client else None

    def work() -> RedeemOut:
        key = refill_cards.secret_key(secret.get_secret_value() if secret else None)
        with app.uow() as uow:
            require_customer(uow, caller, body.customer_id)
        with app.uow() as uow:
            done = refill_cards.redeem_card(
                uow,
                code=body.code,
                customer_id=body.customer_id,
                key=key,
                now=app.clock.now(),
                actor=caller.actor,
                source=source,
            )
            return RedeemOut(
                serial=done.serial,
                customer_id=done.customer_id,
                amount=Amount.of(done.amount),
                applied=Amount.of(done.applied),
                payment_id=done.payment_id,
                balance=Amount.of(done.balance),
            )

    return await call(work)


@router.get("/refill-cards/liability", response_model=list[LiabilityOut])
async def card_liability(request: Request, _caller: Operator) -> list[LiabilityOut]:
    """Per currency: the liability account against the value of the active cards."""
    app = container(request)

    def work() -> list[LiabilityOut]:
        with app.uow() as uow:
            return [
                LiabilityOut(
                    currency=row.currency,
                    ledger=Amount.of(row.ledger),
                    outstanding=Amount.of(row.outstanding),
                    unexpired=Amount.of(row.unexpired),
                    awaiting_expiry=Amount.of(row.awaiting_expiry),
                    active_cards=row.active_cards,
                    cards_awaiting_expiry=row.cards_awaiting_expiry,
                )
                for row in refill_cards.liability_report(uow.session, now=app.clock.now())
            ]

    return await call(work)

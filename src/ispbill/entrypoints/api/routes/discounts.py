"""Discounts (issue 17): ``POST/GET /api/v1/discounts`` and ``POST /api/v1/discounts/{id}/end``
(use case: ``use_cases/billing/discounting.py``).

A reseller's token reaches its own customers' discounts only (404 otherwise).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Request

from ispbill.adapters.db.lookups import MAX_ID
from ispbill.entrypoints.api.auth import Caller, Staff, require_customer
from ispbill.entrypoints.api.deps import container
from ispbill.entrypoints.api.errors import call
from ispbill.entrypoints.api.routes.services import visible_service
from ispbill.entrypoints.api.schemas import Amount, DiscountIn, DiscountOut
from ispbill.use_cases.billing import discounting
from ispbill.use_cases.queries import customer_lists

router = APIRouter(prefix="/api/v1", tags=["discounts"])
DiscountId = Annotated[int, Path(ge=1, le=MAX_ID)]


def discount_out(d: discounting.DiscountView) -> DiscountOut:
    return DiscountOut(
        id=d.id,
        customer_id=d.customer_id,
        service_id=d.service_id,
        percent=d.percent,
        amount=Amount.of(d.amount) if d.amount is not None else None,
        periods=d.periods,
        until=d.until,
        starts_on=d.starts_on,
        ended_on=d.ended_on,
        reason=d.reason,
        given=Amount.of(d.given),
    )


@router.post("/discounts", response_model=DiscountOut, status_code=201)
async def add_discount(body: DiscountIn, request: Request, caller: Staff) -> DiscountOut:
    """A percent or an amount off a service's (``service_id``) or every service of a
    customer's (``customer_id``) periods starting from today, for N periods or until a day;
    each is its own (negative) invoice line."""
    app = container(request)

    def work() -> DiscountOut:
        with app.uow() as uow:
            if body.service_id is not None:
                visible_service(uow, caller, body.service_id)
            if body.customer_id is not None:
                require_customer(uow, caller, body.customer_id)
        with app.uow() as uow:  # a fresh unit of work: the use case takes the lock itself
            added = discounting.add_discount(
                uow,
                customer_id=body.customer_id,
                service_id=body.service_id,
                percent=body.percent,
                amount=body.amount,
                periods=body.periods,
                until=body.until,
                reason=body.reason,
                now=app.clock.now(),
                actor=caller.actor,
            )
            return discount_out(added)

    return await call(work)


@router.get("/discounts", response_model=list[DiscountOut])
async def list_discounts(
    request: Request,
    caller: Caller,
    customer_id: Annotated[int | None, Query(ge=1, le=MAX_ID)] = None,
) -> list[DiscountOut]:
    """Discounts (of one customer with ``customer_id``), ended ones included."""
    app = container(request)

    def work() -> list[DiscountOut]:
        with app.uow() as uow:
            if customer_id is not None:
                require_customer(uow, caller, customer_id)
            return [
                discount_out(d)
                for d in discounting.list_discounts(uow, customer_id=customer_id)
                if customer_id is not None
                or customer_lists.is_visible(uow, caller.reader, d.customer_id)
            ]

    return await call(work)


@router.post("/discounts/{discount_id}/end", response_model=DiscountOut)
async def end_discount(discount_id: DiscountId, request: Request, caller: Staff) -> DiscountOut:
    """End a discount: no period starting after today is discounted."""
    app = container(request)

    def work() -> DiscountOut:
        with app.uow() as uow:
            require_customer(uow, caller, discounting.discount_customer(uow, discount_id))
        with app.uow() as uow:
            ended = discounting.end_discount(
                uow, discount_id=discount_id, now=app.clock.now(), actor=caller.actor
            )
            return discount_out(ended)

    return await call(work)

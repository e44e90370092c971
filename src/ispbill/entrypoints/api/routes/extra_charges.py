"""One-off extra charges and recurring add-ons (issue 17): ``/api/v1/customers/{id}/charges``,
``/api/v1/services/{id}/addons`` and ``/api/v1/addons/{id}/end``
(use case: ``use_cases/billing/extras.py``).

A reseller's token reaches its own customers' charges and add-ons only (404 otherwise). A
charge's ``Idempotency-Key`` is also the charge's own key: a repeat with the same figures is
the same charge (``created`` false), with other figures a 409 naming ``idempotency_key``.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Header, Path, Request

from ispbill.adapters.db.lookups import MAX_ID
from ispbill.entrypoints.api.auth import Caller, Staff, require_customer
from ispbill.entrypoints.api.deps import container
from ispbill.entrypoints.api.errors import call
from ispbill.entrypoints.api.routes.services import visible_service
from ispbill.entrypoints.api.schemas import (
    AddOnEndIn,
    AddOnIn,
    AddOnOut,
    Amount,
    ExtraChargeIn,
    ExtraChargeOut,
)
from ispbill.use_cases.billing import extras

router = APIRouter(prefix="/api/v1", tags=["charges"])
KEY_HEADER = "Idempotency-Key"
CustomerId = Annotated[int, Path(ge=1, le=MAX_ID)]
ServiceId = Annotated[int, Path(ge=1, le=MAX_ID)]
AddOnId = Annotated[int, Path(ge=1, le=MAX_ID)]


def charge_out(c: extras.ExtraChargeView) -> ExtraChargeOut:
    return ExtraChargeOut(
        id=c.id,
        customer_id=c.customer_id,
        service_id=c.service_id,
        description=c.description,
        quantity=c.quantity,
        unit_price=Amount.of(c.unit_price),
        net=Amount.of(c.net),
        tax=Amount.of(c.tax),
        gross=Amount.of(c.gross),
        charged_at=c.charged_at,
        invoice_number=c.invoice_number,
        paid_from=None,
    )


def addon_out(a: extras.AddOnView) -> AddOnOut:
    return AddOnOut(
        id=a.id,
        service_id=a.service_id,
        customer_id=a.customer_id,
        description=a.description,
        price=Amount.of(a.price),
        tax_profile=a.tax_profile,
        starts_on=a.starts_on,
        ends_on=a.ends_on,
    )


@router.post("/customers/{customer_id}/charges", response_model=ExtraChargeOut, status_code=201)
async def add_charge(
    customer_id: CustomerId,
    body: ExtraChargeIn,
    request: Request,
    caller: Staff,
    idempotency_key: Annotated[
        str | None,
        Header(
            alias=KEY_HEADER,
            min_length=1,
            max_length=120,
            description="The charge's own key: the same key and figures again charge nothing.",
        ),
    ] = None,
) -> ExtraChargeOut:
    """A one-off charge (installation, equipment, a late fee): from a prepaid wallet at once
    (refused when the wallet cannot cover it above its minimum balance), or a line of a
    postpaid customer's next invoice."""
    app = container(request)

    def work() -> ExtraChargeOut:
        with app.uow() as uow:
            require_customer(uow, caller, customer_id)
        with app.uow() as uow:  # a fresh unit of work: the use case takes the lock itself
            result = extras.add_extra_charge(
                uow,
                customer_id=customer_id,
                amount=body.amount,
                currency=body.currency,
                description=body.description,
                quantity=body.quantity,
                service_id=body.service_id,
                tax_profile_id=body.tax_profile_id,
                key=f"api:{caller.token_id}:{idempotency_key.strip()}" if idempotency_key else None,
                now=app.clock.now(),
                actor=caller.actor,
            )
            return charge_out(result.charge).model_copy(
                update={
                    "created": result.created,
                    "paid_from": "wallet" if result.paid_from_wallet else "next_invoice",
                    "balance": Amount.of(result.balance),
                }
            )

    return await call(work)


@router.get("/customers/{customer_id}/charges", response_model=list[ExtraChargeOut])
async def list_charges(
    customer_id: CustomerId, request: Request, caller: Caller
) -> list[ExtraChargeOut]:
    """The customer's one-off charges, newest first, with the invoice each is on."""
    app = container(request)

    def work() -> list[ExtraChargeOut]:
        with app.uow() as uow:
            require_customer(uow, caller, customer_id)
            return [charge_out(c) for c in extras.list_extra_charges(uow, customer_id=customer_id)]

    return await call(work)


@router.get("/services/{service_id}/addons", response_model=list[AddOnOut])
async def list_addons(service_id: ServiceId, request: Request, caller: Caller) -> list[AddOnOut]:
    """The service's add-ons, ended ones included."""
    app = container(request)

    def work() -> list[AddOnOut]:
        with app.uow() as uow:
            visible_service(uow, caller, service_id)
            return [addon_out(a) for a in extras.list_addons(uow, service_id=service_id)]

    return await call(work)


@router.post("/services/{service_id}/addons", response_model=AddOnOut, status_code=201)
async def add_addon(
    service_id: ServiceId, body: AddOnIn, request: Request, caller: Staff
) -> AddOnOut:
    """Attach a recurring add-on (a static IP at 3.00 a period), charged with the service's
    periods and prorated like the plan; the rest of a period already charged is charged now."""
    app = container(request)

    def work() -> AddOnOut:
        with app.uow() as uow:
            visible_service(uow, caller, service_id)
        with app.uow() as uow:
            result = extras.add_addon(
                uow,
                service_id=service_id,
                description=body.description,
                price=body.price,
                currency=body.currency,
                tax_profile_id=body.tax_profile_id,
                starts_on=body.starts_on,
                ends_on=body.ends_on,
                now=app.clock.now(),
                actor=caller.actor,
            )
            return addon_out(result.addon).model_copy(
                update={
                    "charged_now": Amount.of(result.charged),
                    "invoice_number": result.invoice_number,
                    "balance": Amount.of(result.balance),
                }
            )

    return await call(work)


@router.post("/addons/{addon_id}/end", response_model=AddOnOut)
async def end_addon(
    addon_id: AddOnId, body: AddOnEndIn, request: Request, caller: Staff
) -> AddOnOut:
    """End an add-on after its last day; days already charged are never given back."""
    app = container(request)

    def work() -> AddOnOut:
        with app.uow() as uow:
            require_customer(uow, caller, extras.addon_customer(uow, addon_id))
        with app.uow() as uow:
            ended = extras.end_addon(
                uow,
                addon_id=addon_id,
                ends_on=body.ends_on,
                now=app.clock.now(),
                actor=caller.actor,
            )
            return addon_out(ended)

    return await call(work)

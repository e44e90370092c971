"""Discounts in the console (issue 17): the customer page's "Discount" form (on a service or
every service of the customer) and each discount's "End".

The same use case as the CLI and the API (``use_cases/billing/discounting.py``); a refusal is
shown on the customer's page next to the form, with nothing written.
"""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import Response

from ispbill.adapters.db.unit_of_work import UnitOfWork
from ispbill.domain.errors import NotFound, ValidationError
from ispbill.entrypoints.web.common import Staff, parse_day, work
from ispbill.entrypoints.web.console.customers import act
from ispbill.entrypoints.web.session import check_visible
from ispbill.use_cases.billing import discounting
from ispbill.use_cases.catalog.name_lookups import numeric_id
from ispbill.use_cases.queries import console_catalog

router = APIRouter(prefix="/console", include_in_schema=False)


def _whole(text: str, field: str) -> int | None:
    cleaned = text.strip()
    if not cleaned:
        return None
    if not cleaned.isascii() or not cleaned.isdigit():
        raise ValidationError(field, "must be a whole number")
    return int(cleaned)


@router.post("/customers/{customer_id}/discounts")
async def add_discount(request: Request, staff: Staff, customer_id: int) -> Response:
    """A percent or an amount off one service's (or every service's) periods from today."""

    def run(uow: UnitOfWork, now: datetime, form: dict[str, str]) -> object:
        service = form.get("service", "").strip()
        service_id = numeric_id(service) if service else None
        if service and service_id is None:
            raise ValidationError("service", f"{service!r} is not an id")
        if service_id is not None:
            found = console_catalog.service(uow.session, service_id)
            if found is None or found.customer_id != customer_id:
                raise ValidationError("service", f"service {service_id} is not this customer's")
        amount = form.get("amount", "").strip()
        return discounting.add_discount(
            uow,
            customer_id=None if service_id is not None else customer_id,
            service_id=service_id,
            percent=_whole(form.get("percent", ""), "percent"),
            amount=amount or None,
            periods=_whole(form.get("periods", ""), "periods"),
            until=parse_day(form.get("until", ""), "until"),
            reason=form.get("reason", ""),
            now=now,
            actor=staff.actor,
        )

    return await act(request, staff, customer_id, "discount", run)


@router.post("/discounts/{discount_id}/end")
async def end_discount(request: Request, staff: Staff, discount_id: int) -> Response:
    def customer_of(uow: UnitOfWork, _now: datetime) -> int:
        try:
            customer_id = discounting.discount_customer(uow, discount_id)
        except NotFound:
            raise HTTPException(404, "no such discount") from None
        check_visible(staff, console_catalog.customer(uow.session, customer_id))
        return customer_id

    customer_id = await work(request, customer_of)

    def run(uow: UnitOfWork, now: datetime, form: dict[str, str]) -> object:
        return discounting.end_discount(uow, discount_id=discount_id, now=now, actor=staff.actor)

    return await act(request, staff, customer_id, "discount", run)

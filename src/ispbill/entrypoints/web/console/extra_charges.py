"""One-off extra charges and recurring add-ons in the console (issue 17): the customer page's
"One-off charge" form and each service's "Add-ons" (attach, end).

The same use cases as the CLI and the API (``use_cases/billing/extras.py``); a refusal is shown
on the customer's page next to the form, with nothing written. The one-off form carries an
idempotency key made when the page was shown, so a double submit charges once.
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
from ispbill.use_cases.billing import extras
from ispbill.use_cases.catalog.name_lookups import numeric_id
from ispbill.use_cases.queries import console_catalog

router = APIRouter(prefix="/console", include_in_schema=False)


def _optional_id(text: str, field: str) -> int | None:
    if not text.strip():
        return None
    value = numeric_id(text)
    if value is None:
        raise ValidationError(field, f"{text!r} is not an id")
    return value


def _quantity(text: str) -> int:
    cleaned = text.strip() or "1"
    if not cleaned.isascii() or not cleaned.isdigit():
        raise ValidationError("quantity", "must be a whole number")
    return int(cleaned)


@router.post("/customers/{customer_id}/extra-charges")
async def add_extra_charge(request: Request, staff: Staff, customer_id: int) -> Response:
    """Installation, equipment, a late fee: from a prepaid wallet at once, or on a postpaid
    customer's next invoice."""

    def run(uow: UnitOfWork, now: datetime, form: dict[str, str]) -> object:
        key = form.get("idempotency_key", "").strip()
        return extras.add_extra_charge(
            uow,
            customer_id=customer_id,
            amount=form.get("amount", ""),
            description=form.get("description", ""),
            quantity=_quantity(form.get("quantity", "")),
            service_id=_optional_id(form.get("service", ""), "service"),
            tax_profile_id=_optional_id(form.get("tax_profile", ""), "tax_profile"),
            key=f"console:{key}" if key else None,
            now=now,
            actor=staff.actor,
        )

    return await act(request, staff, customer_id, "extra-charge", run)


@router.post("/services/{service_id}/addons")
async def add_addon(request: Request, staff: Staff, service_id: int) -> Response:
    def customer_of(uow: UnitOfWork, _now: datetime) -> int:
        service = console_catalog.service(uow.session, service_id)
        if service is None:
            raise HTTPException(404, "no such service")
        check_visible(staff, console_catalog.customer(uow.session, service.customer_id))
        return service.customer_id

    customer_id = await work(request, customer_of)

    def run(uow: UnitOfWork, now: datetime, form: dict[str, str]) -> object:
        return extras.add_addon(
            uow,
            service_id=service_id,
            description=form.get("description", ""),
            price=form.get("price", ""),
            tax_profile_id=_optional_id(form.get("tax_profile", ""), "tax_profile"),
            starts_on=parse_day(form.get("starts_on", ""), "starts_on"),
            ends_on=parse_day(form.get("ends_on", ""), "ends_on"),
            now=now,
            actor=staff.actor,
        )

    return await act(request, staff, customer_id, f"addons-{service_id}", run)


@router.post("/addons/{addon_id}/end")
async def end_addon(request: Request, staff: Staff, addon_id: int) -> Response:
    def customer_of(uow: UnitOfWork, _now: datetime) -> tuple[int, int]:
        try:
            customer_id = extras.addon_customer(uow, addon_id)
        except NotFound:
            raise HTTPException(404, "no such add-on") from None
        check_visible(staff, console_catalog.customer(uow.session, customer_id))
        [view] = [a for a in extras.list_addons(uow, customer_id=customer_id) if a.id == addon_id]
        return customer_id, view.service_id

    customer_id, service_id = await work(request, customer_of)

    def run(uow: UnitOfWork, now: datetime, form: dict[str, str]) -> object:
        return extras.end_addon(
            uow,
            addon_id=addon_id,
            ends_on=parse_day(form.get("ends_on", ""), "ends_on"),
            now=now,
            actor=staff.actor,
        )

    return await act(request, staff, customer_id, f"addons-{service_id}", run)

"""Money on a customer's page: recording a payment, reversing one (bounced, charged back,
booked to the wrong customer) and refunding unallocated credit.

The methods offered are the domain's (``domain/payments.py``) and the operator's own; each
write is one use case on a customer the user may see, a refusal shown next to its form.
"""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import Response

from ispbill.adapters.db.lookups import MAX_ID
from ispbill.adapters.db.unit_of_work import UnitOfWork
from ispbill.domain.errors import ValidationError
from ispbill.entrypoints.web.common import Staff, parse_day, work
from ispbill.entrypoints.web.console.customers import act, visible_customer
from ispbill.use_cases.payments.corrections import refund, reverse_payment
from ispbill.use_cases.payments.recording import NewPayment, record_payment
from ispbill.use_cases.queries import console_catalog

router = APIRouter(prefix="/console", include_in_schema=False)


@router.post("/customers/{customer_id}/payments")
async def create_payment(request: Request, staff: Staff, customer_id: int) -> Response:
    def run(uow: UnitOfWork, now: datetime, form: dict[str, str]) -> object:
        spec = NewPayment(
            customer_id=customer_id,
            amount=form.get("amount", ""),
            method=form.get("method", "cash"),
            reference=form.get("reference") or None,
            idempotency_key=form.get("idempotency_key") or None,
            received_on=parse_day(form.get("received_on", ""), "received_on"),
        )
        return record_payment(uow, spec=spec, now=now, actor=staff.actor)

    return await act(request, staff, customer_id, "payment", run)


@router.post("/payments/{payment_id}/reverse")
async def reverse(request: Request, staff: Staff, payment_id: int) -> Response:
    """Undo a payment (bounced, charged back, booked to the wrong customer) with a linked
    reversing transaction; the reason is required and kept on the event."""

    def customer_of(uow: UnitOfWork, _now: datetime) -> int:
        known = 0 < payment_id <= MAX_ID
        payment = console_catalog.payment(uow.session, payment_id) if known else None
        if payment is None:
            raise HTTPException(404, "no such payment")
        return int(visible_customer(uow, staff, payment.customer_id).id)

    def run(uow: UnitOfWork, now: datetime, form: dict[str, str]) -> object:
        return reverse_payment(
            uow, payment_id=payment_id, reason=form.get("reason", ""), now=now, actor=staff.actor
        )

    customer_id = await work(request, customer_of)
    return await act(request, staff, customer_id, f"payment-{payment_id}", run)


@router.post("/customers/{customer_id}/refunds")
async def create_refund(request: Request, staff: Staff, customer_id: int) -> Response:
    """Pay unallocated credit back; once per (customer, method, reference), optionally of one
    of this customer's payments."""

    def run(uow: UnitOfWork, now: datetime, form: dict[str, str]) -> object:
        paid = form.get("payment", "").strip()
        if paid:
            known = paid.isascii() and paid.isdigit() and 0 < int(paid) <= MAX_ID
            found = console_catalog.payment(uow.session, int(paid)) if known else None
            if found is None or found.customer_id != customer_id:
                raise ValidationError("payment", "must be one of this customer's payments")
        return refund(
            uow,
            customer_id=customer_id,
            amount=form.get("amount", ""),
            method=form.get("method", ""),
            reference=form.get("reference", ""),
            now=now,
            actor=staff.actor,
            payment_id=int(paid) if paid else None,
        )

    return await act(request, staff, customer_id, "refund", run)

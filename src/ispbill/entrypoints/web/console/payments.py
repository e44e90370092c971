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
from ispbill.domain.money import Money
from ispbill.entrypoints.web.common import (
    Confirmation,
    Staff,
    confirmation_page,
    form_of,
    is_confirmed,
    parse_day,
    work,
)
from ispbill.entrypoints.web.console.customers import act, visible_customer
from ispbill.entrypoints.web.session import StaffPrincipal, require_write
from ispbill.use_cases.payments.corrections import refund, reverse_payment
from ispbill.use_cases.payments.recording import NewPayment, record_payment
from ispbill.use_cases.queries import console_catalog, customer_detail

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


def _reversal(
    uow: UnitOfWork, staff: StaffPrincipal, payment_id: int, reason: str
) -> tuple[int, Confirmation]:
    """The payment's customer (a 404 for one this user may not see) and what reversing the
    payment does, with its figures as they stand now."""
    known = 0 < payment_id <= MAX_ID
    payment = console_catalog.payment(uow.session, payment_id) if known else None
    if payment is None:
        raise HTTPException(404, "no such payment")
    customer = visible_customer(uow, staff, payment.customer_id)
    amount = Money(payment.amount_minor, payment.currency)
    before = customer_detail.balance(uow.session, customer)
    reference = f", reference {payment.reference}" if payment.reference else ""
    consequence = (
        f"This will reverse payment #{payment.id} of {amount} ({payment.method}{reference}) "
        f"received {payment.received_at.date().isoformat()} from {customer.name}: the wallet "
        f"goes from {before} to {before - amount}, the invoices it paid are open again, and "
        "the customer's services are decided on the new balance. A reversal cannot be undone. "
        f"Reason: {reason.strip() or '(none given)'}"
    )
    return int(customer.id), Confirmation(
        title=f"Reverse payment #{payment.id}",
        consequence=consequence,
        action=f"/console/payments/{payment_id}/reverse",
        back=f"/console/customers/{customer.id}#payment-{payment_id}",
        button="Reverse payment",
        fields={"reason": reason},
    )


@router.get("/payments/{payment_id}/reverse")
async def confirm_reverse(
    request: Request, staff: Staff, payment_id: int, reason: str = ""
) -> Response:
    """What reversing the payment does, before it is done."""
    require_write(staff)
    _, confirmation = await work(
        request, lambda uow, _now: _reversal(uow, staff, payment_id, reason)
    )
    return confirmation_page(request, staff, confirmation, {})


@router.post("/payments/{payment_id}/reverse")
async def reverse(request: Request, staff: Staff, payment_id: int) -> Response:
    """Undo a payment (bounced, charged back, booked to the wrong customer) with a linked
    reversing transaction; the reason is required and kept on the event. Done only with the
    token of the confirmation as it stands now (``web/common.Confirmation``)."""
    require_write(staff)
    form = await form_of(request)
    reason = form.get("reason", "")
    customer_id, confirmation = await work(
        request, lambda uow, _now: _reversal(uow, staff, payment_id, reason)
    )
    if not is_confirmed(request, form, confirmation):
        return confirmation_page(request, staff, confirmation, form)

    def run(uow: UnitOfWork, now: datetime, posted: dict[str, str]) -> object:
        return reverse_payment(
            uow, payment_id=payment_id, reason=posted.get("reason", ""), now=now, actor=staff.actor
        )

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

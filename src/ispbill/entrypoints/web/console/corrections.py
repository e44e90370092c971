"""Corrections in the console (issue 17): a credit note for an invoice, a line or an amount of a
line; voiding an unpaid invoice after a confirmation page that states the consequence (the shared
``Confirmation`` of web/common); a
customer's own payment terms. The same use case as the CLI and the API
(``use_cases/billing/invoice_corrections.py``); a refusal shows on the customer's page.
"""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import Response

from ispbill.adapters.db.unit_of_work import UnitOfWork
from ispbill.domain.errors import ValidationError
from ispbill.entrypoints.web.common import (
    Confirmation,
    Staff,
    confirmation_page,
    form_of,
    is_confirmed,
    scope_of,
    work,
)
from ispbill.entrypoints.web.console.customers import act
from ispbill.entrypoints.web.session import StaffPrincipal, check_visible, require_write
from ispbill.use_cases.billing import invoice_corrections as corrections
from ispbill.use_cases.queries import console_catalog, invoice_lists

router = APIRouter(prefix="/console", include_in_schema=False)


def _whole(text: str, field: str) -> int | None:
    cleaned = text.strip()
    if not cleaned:
        return None
    if not cleaned.isascii() or not cleaned.isdigit():
        raise ValidationError(field, "must be a whole number")
    return int(cleaned)


def _invoice_of(
    uow: UnitOfWork, staff: StaffPrincipal, invoice_id: int
) -> invoice_lists.DocumentView:
    found = invoice_lists.find_document(uow, scope_of(staff), invoice_id)
    if found is None:
        raise HTTPException(404, "no such invoice")
    check_visible(staff, console_catalog.customer(uow.session, found.customer_id))
    return found


@router.post("/invoices/{invoice_id}/credit")
async def credit(request: Request, staff: Staff, invoice_id: int) -> Response:
    found = await work(request, lambda uow, _now: _invoice_of(uow, staff, invoice_id))

    def run(uow: UnitOfWork, now: datetime, form: dict[str, str]) -> object:
        return corrections.credit_invoice(
            uow,
            invoice_id=invoice_id,
            reason=form.get("reason", ""),
            line=_whole(form.get("line", ""), "line"),
            amount=form.get("amount", "").strip() or None,
            now=now,
            actor=staff.actor,
        )

    return await act(request, staff, found.customer_id, f"invoice-{invoice_id}", run)


def void_confirmation(found: invoice_lists.DocumentView, reason: str) -> Confirmation:
    """What voiding the invoice does, with its figures, before it is done."""
    total = found.gross
    return Confirmation(
        title=f"Void invoice {found.number}",
        consequence=(
            f"This will void invoice {found.number} of {total}: a credit note for its whole "
            f"total is issued (its own number series), {total} leaves what the customer owes, "
            "and the invoice keeps its number with the status void: it can never be paid or "
            f"voided again. Reason: {reason.strip() or '(none given)'}"
        ),
        action=f"/console/invoices/{found.id}/void",
        back=f"/console/customers/{found.customer_id}#invoice-{found.id}",
        button="Void invoice",
        fields={"reason": reason},
    )


@router.post("/invoices/{invoice_id}/void")
async def void(request: Request, staff: Staff, invoice_id: int) -> Response:
    """The first post shows what voiding does; it is done only with the token of that
    confirmation as it stands now (web/common.Confirmation)."""
    require_write(staff)
    found = await work(request, lambda uow, _now: _invoice_of(uow, staff, invoice_id))
    form = await form_of(request)
    confirmation = void_confirmation(found, form.get("reason", ""))
    if not is_confirmed(request, form, confirmation):
        return confirmation_page(request, staff, confirmation, form)

    def run(uow: UnitOfWork, now: datetime, posted: dict[str, str]) -> object:
        return corrections.void_invoice(
            uow, invoice_id=invoice_id, reason=posted.get("reason", ""), now=now, actor=staff.actor
        )

    return await act(request, staff, found.customer_id, f"invoice-{invoice_id}", run)


@router.post("/customers/{customer_id}/payment-terms")
async def payment_terms(request: Request, staff: Staff, customer_id: int) -> Response:
    def run(uow: UnitOfWork, now: datetime, form: dict[str, str]) -> object:
        return corrections.set_payment_terms(
            uow,
            customer_id=customer_id,
            days=_whole(form.get("payment_terms_days", ""), "payment_terms_days"),
            now=now,
            actor=staff.actor,
        )

    return await act(request, staff, customer_id, "payment-terms", run)

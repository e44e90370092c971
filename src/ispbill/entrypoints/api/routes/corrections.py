"""Corrections (issue 17): ``POST /api/v1/invoices/{id}/credit``, ``POST
/api/v1/invoices/{id}/void`` and ``PUT /api/v1/customers/{id}/payment-terms``
(use case: ``use_cases/billing/invoice_corrections.py``).

Staff only; a reseller's token reaches its own customers' invoices only (404 otherwise).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Request

from ispbill.adapters.db.lookups import MAX_ID
from ispbill.entrypoints.api.auth import Principal, Staff, not_found, require_customer
from ispbill.entrypoints.api.deps import container
from ispbill.entrypoints.api.errors import call
from ispbill.entrypoints.api.schemas import (
    Amount,
    CorrectionOut,
    CreditIn,
    PaymentTermsIn,
    PaymentTermsOut,
    VoidInvoiceIn,
)
from ispbill.use_cases.billing import invoice_corrections as corrections
from ispbill.use_cases.queries import invoice_lists

router = APIRouter(prefix="/api/v1", tags=["invoices"])
InvoiceId = Annotated[int, Path(ge=1, le=MAX_ID)]
CustomerId = Annotated[int, Path(ge=1, le=MAX_ID)]


def _out(result: corrections.CorrectionResult) -> CorrectionOut:
    return CorrectionOut(
        invoice_number=result.invoice_number,
        invoice_status=result.invoice_status,
        credit_note_number=result.credit_note_number,
        credited=Amount.of(result.credited),
        balance=Amount.of(result.balance),
    )


def _require_invoice(request: Request, caller: Principal, invoice_id: int) -> None:
    with container(request).uow() as uow:
        if invoice_lists.find_document(uow, caller.reader, invoice_id) is None:
            raise not_found("invoice", invoice_id)


@router.post("/invoices/{invoice_id}/credit", response_model=CorrectionOut, status_code=201)
async def credit_invoice(
    invoice_id: InvoiceId, body: CreditIn, request: Request, caller: Staff
) -> CorrectionOut:
    """A credit note (own ``CN`` series) for the whole invoice, one line, or a gross amount of a
    line; the money goes back to the wallet and is applied to open invoices when the customer
    uses credit automatically. Never more than the invoice's total, all credit notes together."""
    app = container(request)

    def work() -> CorrectionOut:
        _require_invoice(request, caller, invoice_id)
        with app.uow() as uow:
            return _out(
                corrections.credit_invoice(
                    uow,
                    invoice_id=invoice_id,
                    reason=body.reason,
                    line=body.line,
                    amount=body.amount,
                    now=app.clock.now(),
                    actor=caller.actor,
                )
            )

    return await call(work)


@router.post("/invoices/{invoice_id}/void", response_model=CorrectionOut, status_code=201)
async def void_invoice(
    invoice_id: InvoiceId, body: VoidInvoiceIn, request: Request, caller: Staff
) -> CorrectionOut:
    """Cancel an unpaid invoice by a full credit note; it keeps its number, status ``void``."""
    app = container(request)

    def work() -> CorrectionOut:
        _require_invoice(request, caller, invoice_id)
        with app.uow() as uow:
            return _out(
                corrections.void_invoice(
                    uow,
                    invoice_id=invoice_id,
                    reason=body.reason,
                    now=app.clock.now(),
                    actor=caller.actor,
                )
            )

    return await call(work)


@router.put("/customers/{customer_id}/payment-terms", response_model=PaymentTermsOut)
async def set_payment_terms(
    customer_id: CustomerId, body: PaymentTermsIn, request: Request, caller: Staff
) -> PaymentTermsOut:
    """The customer's own payment terms for invoices issued from now on (null: the operator's)."""
    app = container(request)

    def work() -> PaymentTermsOut:
        with app.uow() as uow:
            require_customer(uow, caller, customer_id)
        with app.uow() as uow:
            days = corrections.set_payment_terms(
                uow,
                customer_id=customer_id,
                days=body.payment_terms_days,
                now=app.clock.now(),
                actor=caller.actor,
            )
            return PaymentTermsOut(customer_id=customer_id, payment_terms_days=days)

    return await call(work)

"""Payments: record (exactly once per ``Idempotency-Key``), list, show, reverse, refund, and
bank statements (import a file, list the unmatched credits, assign one to a customer).

``POST /api/v1/payments`` requires the key. Its replay is answered by the idempotency
middleware (``idempotency.py``) like every other write; in addition the payment itself is keyed
in the ledger by the token and the key, so even a crash between the payment and the stored
answer cannot credit the wallet twice. A ``reference`` is matched only among the customer's own
payments (``use_cases/payments/recording.py``), so a reseller never receives or learns of another's;
a refund's ``reference`` likewise among the customer's own refunds
(``use_cases/payments/corrections.py``).
"""

from __future__ import annotations

import base64
import binascii
from typing import Annotated

from fastapi import APIRouter, Header, Path, Query, Request

from ispbill.adapters.db.lookups import MAX_ID
from ispbill.adapters.db.unit_of_work import UnitOfWork
from ispbill.domain.bank import LineStatus
from ispbill.domain.money import Money
from ispbill.entrypoints.api.auth import (
    Admin,
    Caller,
    Operator,
    Principal,
    Staff,
    not_found,
    require_customer,
)
from ispbill.entrypoints.api.deps import container
from ispbill.entrypoints.api.errors import ApiProblem, call
from ispbill.entrypoints.api.pagination import Page, Paging, page_of
from ispbill.entrypoints.api.schemas import (
    Amount,
    AssignIn,
    BankLineOut,
    Instant,
    PaymentDetailOut,
    PaymentIn,
    PaymentOut,
    RefundIn,
    RefundOut,
    ReversedOut,
    ReverseIn,
    StatementIn,
    StatementOut,
)
from ispbill.use_cases.payments.bank_import import assign_line, import_statement
from ispbill.use_cases.payments.corrections import refund, reverse_payment
from ispbill.use_cases.payments.recording import NewPayment, Recorded, record_payment
from ispbill.use_cases.queries import payment_lists
from ispbill.use_cases.queries.operator_lists import PaymentFilter
from ispbill.use_cases.queries.payment_lists import BankLineView, PaymentView

router = APIRouter(prefix="/api/v1", tags=["payments"])
KEY_HEADER = "Idempotency-Key"
PaymentId = Annotated[int, Path(ge=1, le=MAX_ID)]


def payment_out(recorded: Recorded) -> PaymentOut:
    p = recorded.payment
    return PaymentOut(
        id=p.id,
        customer_id=p.customer_id,
        amount=Amount.of(Money(p.amount_minor, p.currency)),
        method=p.method,
        reference=p.reference,
        received_at=p.received_at,
        recorded_at=p.recorded_at,
        applied_to_invoices=Amount.of(recorded.applied),
    )


def payment_detail(p: PaymentView) -> PaymentDetailOut:
    """A payment with what of it is allocated to invoices."""
    return PaymentDetailOut(
        id=p.id,
        customer_id=p.customer_id,
        amount=Amount.of(p.amount),
        method=p.method,
        reference=p.reference,
        received_at=p.received_at,
        recorded_at=p.recorded_at,
        reversed=p.reversed,
        allocated=Amount.of(p.allocated),
    )


def visible_payment(uow: UnitOfWork, caller: Principal, payment_id: int) -> PaymentView:
    payment = payment_lists.find_payment(uow, caller.reader, payment_id)
    if payment is None:
        raise not_found("payment", payment_id)
    return payment


@router.get("/payments", response_model=Page[PaymentDetailOut])
async def list_payments(
    request: Request,
    caller: Caller,
    paging: Paging,
    customer_id: Annotated[int | None, Query(ge=1, le=MAX_ID)] = None,
    method: Annotated[
        str | None, Query(min_length=1, max_length=32, pattern=r"^[a-z0-9_]+$")
    ] = None,
    received_from: Annotated[Instant | None, Query()] = None,
    received_to: Annotated[Instant | None, Query()] = None,
    reversed: Annotated[bool | None, Query()] = None,
) -> Page[PaymentDetailOut]:
    """Payments, newest first; filter by customer, method, time received, reversal."""
    app = container(request)

    def work() -> Page[PaymentDetailOut]:
        wanted = PaymentFilter(customer_id, method, received_from, received_to, reversed)
        with app.uow() as uow:
            if customer_id is not None:
                require_customer(uow, caller, customer_id)
            found = payment_lists.list_payments(
                uow,
                caller.reader,
                wanted,
                after=paging.after(newest_first=True),
                limit=paging.limit,
            )
            return page_of(found, payment_detail, newest_first=True)

    return await call(work)


@router.post("/payments", response_model=PaymentOut, status_code=201)
async def create_payment(
    body: PaymentIn,
    request: Request,
    caller: Staff,
    idempotency_key: Annotated[
        str,
        Header(
            alias=KEY_HEADER,
            min_length=1,
            max_length=120,
            description="Unique per payment; a retry with the same key replays the answer.",
        ),
    ],
) -> PaymentOut:
    """Credit a customer's wallet; the engine re-evaluates the customer at once.

    A ``reference`` is the payer's, unique per customer and method: the same customer,
    method, reference and amount again is the same payment (answered with it, nothing
    credited); another amount under it is a 409 naming ``reference``. Another customer's
    payment under the same reference is theirs and does not affect this one."""
    app = container(request)
    key = idempotency_key.strip()

    def work() -> PaymentOut:
        now = app.clock.now()
        with app.uow() as uow:  # a read first: the payment's own transaction begins writing
            require_customer(uow, caller, body.customer_id)
        with app.uow() as uow:
            recorded = record_payment(
                uow,
                spec=NewPayment(
                    customer_id=body.customer_id,
                    amount=body.amount,
                    currency=body.currency.upper(),
                    method=body.method,
                    reference=body.reference,
                    idempotency_key=f"api:{caller.token_id}:{key}",
                    received_at=body.received_at,
                    received_on=body.received_on,
                ),
                now=now,
                actor=caller.actor,
            )
            return payment_out(recorded)

    return await call(work)


@router.get("/payments/{payment_id}", response_model=PaymentDetailOut)
async def get_payment(payment_id: PaymentId, request: Request, caller: Caller) -> PaymentDetailOut:
    """One payment, with what of it is allocated to invoices."""
    app = container(request)

    def work() -> PaymentDetailOut:
        with app.uow() as uow:
            return payment_detail(visible_payment(uow, caller, payment_id))

    return await call(work)


@router.post("/payments/{payment_id}/reverse", response_model=ReversedOut)
async def reverse(
    payment_id: PaymentId, body: ReverseIn, request: Request, caller: Staff
) -> ReversedOut:
    """Undo a payment with a linked reversing transaction (once; a repeat returns it)."""
    app = container(request)

    def work() -> ReversedOut:
        with app.uow() as uow:
            visible_payment(uow, caller, payment_id)
        with app.uow() as uow:
            done = reverse_payment(
                uow,
                payment_id=payment_id,
                reason=body.reason,
                now=app.clock.now(),
                actor=caller.actor,
            )
        with app.uow() as uow:
            payment = visible_payment(uow, caller, payment_id)
            return ReversedOut(
                payment=payment_detail(payment),
                transaction_id=done.transaction.id,
                created=done.created,
                invoices_reopened=list(done.invoices_reopened),
            )

    return await call(work)


@router.post("/refunds", response_model=RefundOut, status_code=201)
async def create_refund(body: RefundIn, request: Request, caller: Staff) -> RefundOut:
    """Pay unallocated credit back to the customer; once per (customer, method, reference).

    A refund's ``reference`` is the customer's: the same customer, method, reference and amount
    again is the same refund (answered with it, ``created`` false, nothing paid); another amount
    under it, or another ``payment_id``, is a 409 naming ``reference``. Another customer's refund
    under the same reference is theirs and does not affect this one; ``payment_id`` must be one
    of this customer's payments."""
    app = container(request)

    def work() -> RefundOut:
        with app.uow() as uow:
            require_customer(uow, caller, body.customer_id)
            if body.payment_id is not None:
                paid = visible_payment(uow, caller, body.payment_id)
                if paid.customer_id != body.customer_id:
                    raise ApiProblem(
                        422,
                        "payment_id: the payment is another customer's",
                        field="payment_id",
                        rule="same customer",
                    )
        with app.uow() as uow:
            done = refund(
                uow,
                customer_id=body.customer_id,
                amount=body.amount,
                method=body.method,
                reference=body.reference,
                now=app.clock.now(),
                actor=caller.actor,
                payment_id=body.payment_id,
            )
            return RefundOut(
                transaction_id=done.transaction.id,
                created=done.created,
                amount=Amount.of(done.amount),
            )

    return await call(work)


# --- bank statements ---------------------------------------------------------------------


def line_out(row: BankLineView) -> BankLineOut:
    return BankLineOut(
        id=row.id,
        booked_on=row.booked_on,
        amount=Amount.of(row.amount),
        reference=row.reference,
        counterparty_name=row.counterparty_name,
        counterparty_iban=row.counterparty_iban,
        description=row.description,
        status=row.status,
        reason=row.reason,
        customer_id=row.customer_id,
        payment_id=row.payment_id,
    )


@router.post("/bank-statements", response_model=StatementOut, status_code=201)
async def import_bank_statement(body: StatementIn, request: Request, caller: Admin) -> StatementOut:
    """Import a bank statement file (CSV, camt.053, MT940), base64-encoded. Lines are keyed by
    the bank's transaction id, so importing a file twice creates nothing the second time."""
    app = container(request)
    try:
        data = base64.b64decode(body.content_base64, validate=True)
    except (binascii.Error, ValueError):
        raise ApiProblem(
            422, "content_base64: not base64", field="content_base64", rule="base64"
        ) from None

    def work() -> StatementOut:
        report = import_statement(
            app.uow_factory,
            data=data,
            file_name=body.file_name,
            now=app.clock.now(),
            actor=caller.actor,
            format=body.format,
        )
        return StatementOut(
            file_name=report.file_name,
            format=report.format,
            rows_read=report.rows_read,
            payments_created=report.payments_created,
            duplicates_skipped=report.duplicates_skipped,
            unmatched=report.unmatched,
            ignored=report.ignored,
            unmatched_line_ids=list(report.unmatched_line_ids),
        )

    return await call(work)


@router.get("/bank-statements/lines", response_model=Page[BankLineOut])
async def list_bank_lines(
    request: Request,
    _caller: Operator,
    paging: Paging,
    status: Annotated[LineStatus | None, Query(description="e.g. unmatched")] = None,
) -> Page[BankLineOut]:
    """Imported statement lines by id; ``status=unmatched`` lists the credits no customer was
    found for, waiting to be assigned."""
    app = container(request)

    def work() -> Page[BankLineOut]:
        with app.uow() as uow:
            found = payment_lists.list_bank_lines(
                uow,
                status.value if status is not None else None,
                after=paging.after(),
                limit=paging.limit,
            )
            return page_of(found, line_out)

    return await call(work)


@router.post("/bank-statements/lines/{line_id}/assign", response_model=PaymentDetailOut)
async def assign_bank_line(
    line_id: Annotated[int, Path(ge=1, le=MAX_ID)], body: AssignIn, request: Request, caller: Admin
) -> PaymentDetailOut:
    """Post an unmatched credit as a payment of the customer the operator chose."""
    app = container(request)

    def work() -> PaymentDetailOut:
        with app.uow() as uow:
            done = assign_line(
                uow,
                line_id=line_id,
                customer_id=body.customer_id,
                now=app.clock.now(),
                actor=caller.actor,
            )
            payment_id = done.recorded.payment.id
        with app.uow() as uow:
            payment = payment_lists.find_payment(uow, caller.reader, payment_id)
            assert payment is not None
            return payment_detail(payment)

    return await call(work)

"""CLI for looking into a payment and correcting it: ``payments show|reverse|refund``.

Registered on ``payments_app`` by ``main.py``, next to ``payments add|list``.
"""

from __future__ import annotations

from typing import Any

import typer
from sqlalchemy import select

from ispbill.adapters.db import ledger_store as ledger
from ispbill.adapters.db.models import (
    Allocation,
    BankStatementLine,
    Customer,
    Invoice,
    LedgerTransaction,
    Payment,
)
from ispbill.adapters.db.unit_of_work import UnitOfWork
from ispbill.domain.money import Money
from ispbill.entrypoints.cli.base import ACTOR, console, emit_object, unit_of_work
from ispbill.use_cases.payments.corrections import (
    find_payment,
    refund,
    refunds_of,
    reverse_payment,
)

JSON = typer.Option(False, "--json", help="Print JSON instead of a table.")


def payment_details(uow: UnitOfWork, payment: Payment) -> dict[str, Any]:
    """Everything about one payment: where its money went and what corrected it."""
    session = uow.session
    customer = session.get(Customer, payment.customer_id)
    assert customer is not None
    allocations = [
        {
            "invoice": number,
            "amount": str(Money(a.amount_minor, payment.currency)),
            "at": a.created_at,
            "reversed_at": a.reversed_at,
        }
        for a, number in session.execute(
            select(Allocation, Invoice.number)
            .join(Invoice, Invoice.id == Allocation.invoice_id)
            .where(Allocation.payment_id == payment.id)
            .order_by(Allocation.id)
        )
    ]
    reversal = None
    if payment.reversed_by_id is not None:
        row = session.get(LedgerTransaction, payment.reversed_by_id)
        assert row is not None
        reversal = {"transaction": row.id, "at": row.recorded_at, "memo": row.memo}
    line = session.scalars(
        select(BankStatementLine).where(BankStatementLine.payment_id == payment.id)
    ).first()
    return {
        "id": payment.id,
        "customer": customer.name,
        "customer_id": customer.id,
        "method": payment.method,
        "amount": str(Money(payment.amount_minor, payment.currency)),
        "reference": payment.reference,
        "key": payment.idempotency_key,
        "received_at": payment.received_at,
        "recorded_at": payment.recorded_at,
        "actor": payment.actor,
        "transaction": payment.transaction_id,
        "status": "reversed" if reversal else "posted",
        "allocations": allocations,
        "reversal": reversal,
        "refunds": [
            {"transaction": t.id, "at": t.recorded_at, "memo": t.memo}
            for t in refunds_of(uow, payment)
        ],
        "bank_statement_line": line.id if line else None,
        "wallet_balance": str(ledger.wallet_balance(session, customer.id, customer.currency)),
    }


def payments_show(
    payment: str = typer.Argument(..., help="Payment id or external reference."),
    as_json: bool = JSON,
) -> None:
    """One payment: amount, allocations to invoices, reversal and refunds, bank line."""
    with unit_of_work() as (uow, _):
        details = payment_details(uow, find_payment(uow, payment))
    emit_object(details, as_json=as_json, title=f"Payment {details['id']}")


def payments_reverse(
    payment: str = typer.Argument(..., help="Payment id (or its external reference)."),
    reason: str = typer.Option(..., "--reason", help="Why: bounced, charge-back, wrong customer."),
) -> None:
    """Reverse a payment: a linked, opposite ledger transaction; its invoices reopen."""
    with unit_of_work() as (uow, now):
        done = reverse_payment(uow, payment_ref=payment, reason=reason, now=now, actor=ACTOR)
        customer = uow.session.get(Customer, done.payment.customer_id)
        assert customer is not None
        balance = ledger.wallet_balance(uow.session, customer.id, customer.currency)
    if not done.created:
        console.print(
            f"payment {done.payment.id} was already reversed by transaction "
            f"{done.transaction.id}; nothing changed",
            markup=False,
        )
        return
    reopened = ", ".join(done.invoices_reopened) or "none"
    console.print(
        f"payment {done.payment.id} reversed by transaction {done.transaction.id}; "
        f"invoices reopened: {reopened}; wallet balance of {customer.name!r} {balance}",
        markup=False,
    )


def payments_refund(
    customer: str = typer.Argument(..., help="Customer id or name."),
    amount: str = typer.Argument(..., help="Amount in major units, e.g. 15.00"),
    method: str = typer.Option(
        ..., "--method", help="How the money goes back: cash, bank_transfer..."
    ),
    reference: str = typer.Option(
        ...,
        "--reference",
        help="Receipt or transfer reference, unique per customer and method: the same reference "
        "and amount again is the same refund (nothing paid); another amount under it is refused.",
    ),
    payment: str | None = typer.Option(
        None, "--payment", help="The payment refunded, if one: its id or the customer's reference."
    ),
) -> None:
    """Pay unallocated credit back to the customer (never more than the credit)."""
    with unit_of_work() as (uow, now):
        done = refund(
            uow,
            customer=customer,
            amount=amount,
            method=method,
            reference=reference,
            payment=payment,
            now=now,
            actor=ACTOR,
        )
        row = uow.session.get(Customer, done.transaction.customer_id)
        assert row is not None
        balance = ledger.wallet_balance(uow.session, row.id, row.currency)
    if not done.created:
        console.print(
            f"already refunded as transaction {done.transaction.id}; nothing paid; "
            f"wallet balance {balance}",
            markup=False,
        )
        return
    console.print(
        f"refund of {done.amount} to {row.name!r} by {method} recorded as transaction "
        f"{done.transaction.id}; wallet balance {balance}",
        markup=False,
    )

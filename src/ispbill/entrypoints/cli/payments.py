"""CLI for payments: record money received (exactly once per key or reference) and list it."""

from __future__ import annotations

from typing import Any

import typer
from sqlalchemy import select

from ispbill.adapters.db import ledger_store as ledger
from ispbill.adapters.db.lookups import by_id_or_name
from ispbill.adapters.db.models import Customer, Payment
from ispbill.domain.errors import ValidationError
from ispbill.domain.money import Money
from ispbill.domain.payments import PaymentMethod
from ispbill.entrypoints.cli.base import ACTOR, Cli, console, emit, unit_of_work
from ispbill.use_cases.payments.recording import METHOD_ACCOUNTS, NewPayment, record_payment

payments_app = Cli(help="Payments: money received, credited to the wallet exactly once.")

JSON = typer.Option(False, "--json", help="Print JSON instead of a table.")
# cards: redeem
OPERATOR_METHODS = tuple(m for m in METHOD_ACCOUNTS if m != PaymentMethod.REFILL_CARD.value)


@payments_app.command("add")
def payments_add(
    customer: str = typer.Argument(..., help="Customer id or name."),
    amount: str = typer.Argument(..., help="Amount in major units, e.g. 30.00"),
    method: str = typer.Option(
        "cash",
        help=f"One of: {', '.join(OPERATOR_METHODS)}, or a method of the payment_methods setting.",
    ),
    reference: str | None = typer.Option(
        None,
        help="External reference (bank transfer id, receipt number): the same reference and "
        "amount again is the same payment; the same reference with another amount is refused. "
        "Unique per customer and method.",
    ),
    key: str | None = typer.Option(None, help="Idempotency key: the same key never credits twice."),
    currency: str | None = typer.Option(None, help="Default: the customer's currency."),
) -> None:
    """Record a payment: credit the wallet, pay open invoices oldest first, and re-evaluate the
    customer at once (a deactivated prepaid service the wallet now covers comes back)."""
    if method == PaymentMethod.REFILL_CARD.value:
        raise ValidationError("method", "refill cards are redeemed with 'ispbill cards redeem'")
    if not (reference or key):
        raise ValidationError(
            "key",
            "give --reference (the bank or receipt reference) or --key (any unique text), so "
            "that running the command twice can never credit twice",
        )
    spec = NewPayment(
        customer=customer,
        amount=amount,
        currency=currency,
        method=method,
        reference=reference,
        idempotency_key=key,
    )
    with unit_of_work() as (uow, now):
        recorded = record_payment(uow, spec=spec, now=now, actor=ACTOR)
        payment = recorded.payment
        row = uow.session.get(Customer, payment.customer_id)
        assert row is not None
        balance = ledger.wallet_balance(uow.session, row.id, row.currency)
    amount_text = Money(payment.amount_minor, payment.currency)
    if not recorded.created:
        console.print(
            f"already recorded as payment {payment.id} ({amount_text}, key "
            f"{payment.idempotency_key!r}); nothing credited; wallet balance {balance}",
            markup=False,
        )
        return
    console.print(
        f"payment {payment.id} recorded: {amount_text} by {payment.method} for {row.name!r}; "
        f"{recorded.applied} applied to invoices; wallet balance {balance}",
        markup=False,
    )


def payment_row(p: Payment, customer_name: str) -> dict[str, Any]:
    return {
        "id": p.id,
        "customer": customer_name,
        "received_at": p.received_at,
        "method": p.method,
        "amount": str(Money(p.amount_minor, p.currency)),
        "reference": p.reference,
        "key": p.idempotency_key,
        "actor": p.actor,
    }


@payments_app.command("list")
def payments_list(
    customer: str | None = typer.Option(None, help="Only this customer's payments."),
    limit: int = typer.Option(200, min=1),
    as_json: bool = JSON,
) -> None:
    """Payments, newest first."""
    with unit_of_work() as (uow, _):
        query = (
            select(Payment, Customer.name)
            .join(Customer, Customer.id == Payment.customer_id)
            .order_by(Payment.received_at.desc(), Payment.id.desc())
            .limit(limit)
        )
        if customer is not None:
            found = by_id_or_name(uow.session, Customer, customer, field="customer")
            query = query.where(Payment.customer_id == found.id)
        rows = [payment_row(p, name) for p, name in uow.session.execute(query).all()]
    emit(rows, as_json=as_json, title="Payments")

"""CLI for looking into a payment and correcting it: ``payments show|reverse|refund``.

Registered on ``payments_app`` by ``main.py``, next to ``payments add|list``.
"""

from __future__ import annotations

import typer

from ispbill.entrypoints.cli.base import ACTOR, console, emit_object, find, unit_of_work
from ispbill.use_cases.catalog.name_lookups import customer_id_of, payment_id_of
from ispbill.use_cases.payments.corrections import refund, reverse_payment
from ispbill.use_cases.queries import cli_listings

JSON = typer.Option(False, "--json", help="Print JSON instead of a table.")


def payments_show(
    payment: str = typer.Argument(..., help="Payment id or external reference."),
    as_json: bool = JSON,
) -> None:
    """One payment: amount, allocations to invoices, reversal and refunds, bank line."""
    with unit_of_work() as (uow, _):
        details = cli_listings.payment_detail(uow, find(payment_id_of, payment))
    emit_object(details, as_json=as_json, title=f"Payment {details['id']}")


def payments_reverse(
    payment: str = typer.Argument(..., help="Payment id (or its external reference)."),
    reason: str = typer.Option(..., "--reason", help="Why: bounced, charge-back, wrong customer."),
) -> None:
    """Reverse a payment: a linked, opposite ledger transaction; its invoices reopen."""
    with unit_of_work() as (uow, now):
        done = reverse_payment(
            uow, payment_id=find(payment_id_of, payment), reason=reason, now=now, actor=ACTOR
        )
        balance = cli_listings.balance_of(uow, done.payment.customer_id)
        name = cli_listings.customer_name(uow, done.payment.customer_id)
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
        f"invoices reopened: {reopened}; wallet balance of {name!r} {balance}",
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
        customer_id = find(customer_id_of, customer)
        done = refund(
            uow,
            customer_id=customer_id,
            amount=amount,
            method=method,
            reference=reference,
            payment_id=(find(payment_id_of, payment, customer_id=customer_id) if payment else None),
            now=now,
            actor=ACTOR,
        )
        balance = cli_listings.balance_of(uow, customer_id)
        name = cli_listings.customer_name(uow, customer_id)
    if not done.created:
        console.print(
            f"already refunded as transaction {done.transaction.id}; nothing paid; "
            f"wallet balance {balance}",
            markup=False,
        )
        return
    console.print(
        f"refund of {done.amount} to {name!r} by {method} recorded as transaction "
        f"{done.transaction.id}; wallet balance {balance}",
        markup=False,
    )

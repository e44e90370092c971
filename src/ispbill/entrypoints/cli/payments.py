"""CLI for payments: record money received (exactly once per key or reference) and list it."""

from __future__ import annotations

import typer

from ispbill.domain.errors import ValidationError
from ispbill.domain.money import Money
from ispbill.domain.payments import PaymentMethod
from ispbill.entrypoints.cli.base import (
    ACTOR,
    ALL,
    CURSOR,
    LIMIT,
    Cli,
    app_for_command,
    console,
    emit_listing,
    find,
    find_optional,
    listing,
    parse_day,
    unit_of_work,
)
from ispbill.use_cases.catalog.name_lookups import customer_id_of
from ispbill.use_cases.payments.recording import METHOD_ACCOUNTS, NewPayment, record_payment
from ispbill.use_cases.queries import cli_listings

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
    received_on: str | None = typer.Option(
        None,
        "--received-on",
        help="The day the money arrived (default: now); its local midnight is the payment's "
        "received time, shown in listings and used by the statement.",
    ),
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
    with unit_of_work() as (uow, now):
        spec = NewPayment(
            customer_id=find(customer_id_of, customer),
            amount=amount,
            currency=currency,
            method=method,
            reference=reference,
            idempotency_key=key,
            received_on=parse_day(received_on, "received_on"),
        )
        recorded = record_payment(uow, spec=spec, now=now, actor=ACTOR)
        payment = recorded.payment
        balance = cli_listings.balance_of(uow, payment.customer_id)
        name = cli_listings.customer_name(uow, payment.customer_id)
    amount_text = Money(payment.amount_minor, payment.currency)
    if not recorded.created:
        console.print(
            f"already recorded as payment {payment.id} ({amount_text}, key "
            f"{payment.idempotency_key!r}); nothing credited; wallet balance {balance}",
            markup=False,
        )
        return
    console.print(
        f"payment {payment.id} recorded: {amount_text} by {payment.method} for {name!r}; "
        f"{recorded.applied} applied to invoices; wallet balance {balance}",
        markup=False,
    )


@payments_app.command("list")
def payments_list(
    customer: str | None = typer.Option(None, help="Only this customer's payments."),
    limit: int = LIMIT,
    cursor: int | None = CURSOR,
    every: bool = ALL,
    as_json: bool = JSON,
) -> None:
    """Payments, newest first."""
    with app_for_command():
        customer_id = find_optional(customer_id_of, customer)
    found = listing(
        lambda uow, after, size: cli_listings.payment_rows(
            uow, customer_id=customer_id, limit=size, after=after
        ),
        limit=limit,
        cursor=cursor,
        every=every,
    )
    emit_listing(found, as_json=as_json, title="Payments")

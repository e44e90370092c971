"""CLI for corrections (issue 17): ``invoices credit|void`` and ``customers payment-terms``
(use case: ``use_cases/billing/invoice_corrections.py``). Registered by ``main.py``."""

from __future__ import annotations

import typer

from ispbill.entrypoints.cli.base import ACTOR, console, emit_object, find, unit_of_work
from ispbill.use_cases.billing import invoice_corrections as corrections
from ispbill.use_cases.billing.invoice_documents import get_invoice
from ispbill.use_cases.catalog.name_lookups import customer_id_of

JSON = typer.Option(False, "--json", help="Print JSON instead of a table.")


def _invoice_id(number: str) -> int:
    return find(lambda uow, text: get_invoice(uow, text).id, number)


def _print(result: corrections.CorrectionResult, as_json: bool) -> None:
    emit_object(
        {
            "invoice": result.invoice_number,
            "status": result.invoice_status,
            "credit_note": result.credit_note_number,
            "credited": str(result.credited),
            "balance": str(result.balance),
        },
        as_json=as_json,
        title=f"Credit note {result.credit_note_number}",
    )


def invoices_credit(
    number: str = typer.Argument(..., help="The invoice's number."),
    reason: str = typer.Option(..., "--reason", help="Why (required; kept with the event)."),
    line: int | None = typer.Option(None, "--line", help="Only this line (1 = the first)."),
    amount: str | None = typer.Option(
        None, "--amount", help="Only this gross amount of the line, e.g. 12.10."
    ),
    as_json: bool = JSON,
) -> None:
    """Issue a credit note for the whole invoice, one line, or an amount of a line."""
    with unit_of_work() as (uow, now):
        result = corrections.credit_invoice(
            uow,
            invoice_id=_invoice_id(number),
            reason=reason,
            line=line,
            amount=amount,
            now=now,
            actor=ACTOR,
        )
    _print(result, as_json)


def invoices_void(
    number: str = typer.Argument(..., help="The invoice's number."),
    reason: str = typer.Option(..., "--reason", help="Why (required; kept with the event)."),
    yes: bool = typer.Option(
        False, "--yes", help="Do it without asking (the invoice is cancelled for good)."
    ),
    as_json: bool = JSON,
) -> None:
    """Void an unpaid invoice: a full credit note cancels it; its number stays taken."""
    if not yes:
        typer.confirm(
            f"Void invoice {number}? A credit note for its whole total is issued, the amount "
            "leaves what the customer owes and the invoice can never be paid or voided again.",
            abort=True,
        )
    with unit_of_work() as (uow, now):
        result = corrections.void_invoice(
            uow, invoice_id=_invoice_id(number), reason=reason, now=now, actor=ACTOR
        )
    _print(result, as_json)


def customers_payment_terms(
    customer: str = typer.Argument(..., help="Customer id or name."),
    days: str = typer.Argument(
        ..., help="Days from issue to due, 0-365, or 'default' for the operator's setting."
    ),
) -> None:
    """Set the customer's own payment terms for invoices issued from now on."""
    text = days.strip().lower()
    value = None if text == "default" else int(text) if text.isdigit() else -1
    with unit_of_work() as (uow, now):
        done = corrections.set_payment_terms(
            uow, customer_id=find(customer_id_of, customer), days=value, now=now, actor=ACTOR
        )
    shown = "the operator's setting" if done is None else f"{done} days"
    console.print(f"payment terms of {customer!r}: {shown}", markup=False)


def register(invoices_app: typer.Typer, customers_app: typer.Typer) -> None:
    invoices_app.command("credit")(invoices_credit)
    invoices_app.command("void")(invoices_void)
    customers_app.command("payment-terms")(customers_payment_terms)

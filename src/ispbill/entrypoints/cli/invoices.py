"""CLI for issued invoices: list them, show one with its lines, print one to PDF."""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path
from typing import Any

import typer

from ispbill.adapters.db.models import Invoice
from ispbill.adapters.pdf.render import render_pdf
from ispbill.domain.money import Money
from ispbill.entrypoints.cli.base import Cli, console, emit, emit_object, unit_of_work
from ispbill.use_cases.billing import invoice_documents

invoices_app = Cli(help="Invoices: immutable, gaplessly numbered documents of charges.")

JSON = typer.Option(False, "--json", help="Print JSON instead of a table.")


def invoice_row(i: Invoice) -> dict[str, Any]:
    currency = i.currency
    return {
        "number": i.number,
        "customer": i.customer.name,
        "kind": i.kind,
        "issue_date": i.issue_date,
        "due_date": i.due_date,
        "net": str(Money(i.net_minor, currency)),
        "tax": str(Money(i.tax_minor, currency)),
        "total": str(Money(i.gross_minor, currency)),
        "paid": str(Money(i.paid_minor, currency)),
        "due": str(Money(i.gross_minor - i.paid_minor, currency)),
        "status": i.status,
    }


@invoices_app.command("list")
def invoices_list(
    customer: str | None = typer.Option(None, help="Only this customer's invoices."),
    status: str | None = typer.Option(None, help="issued, partially_paid, paid or void."),
    limit: int = typer.Option(200, min=1),
    as_json: bool = JSON,
) -> None:
    """Invoices, newest first."""
    with unit_of_work() as (uow, _):
        rows = [
            invoice_row(i)
            for i in invoice_documents.list_invoices(
                uow, customer=customer, status=status, limit=limit
            )
        ]
    emit(
        rows,
        as_json=as_json,
        title="Invoices",
        columns=[
            "number",
            "customer",
            "kind",
            "issue_date",
            "due_date",
            "total",
            "paid",
            "due",
            "status",
        ],
    )


@invoices_app.command("show")
def invoices_show(number: str, as_json: bool = JSON) -> None:
    """One invoice: its lines, totals, what is paid and its status."""
    with unit_of_work() as (uow, _):
        invoice = invoice_documents.get_invoice(uow, number)
        header = invoice_row(invoice)
        currency = invoice.currency
        lines = [
            {
                "position": line.position,
                "description": line.description,
                "service": line.service_id,
                "period": (  # the stored end is exclusive; people read the last day
                    f"{line.period_start}..{line.period_end - timedelta(days=1)}"
                    if line.period_start and line.period_end
                    else None
                ),
                "quantity": (
                    str(line.quantity_num)
                    if line.quantity_den == 1
                    else f"{line.quantity_num}/{line.quantity_den}"
                ),
                "unit_price": str(Money(line.unit_price_minor, currency)),
                "tax_rate": invoice_documents.rate_text(line.tax_rate_bp)
                + (" incl." if line.tax_inclusive else ""),
                "net": str(Money(line.net_minor, currency)),
                "tax": str(Money(line.tax_minor, currency)),
                "total": str(Money(line.gross_minor, currency)),
            }
            for line in invoice.lines
        ]
    if as_json:
        emit_object(header | {"lines": lines}, as_json=True, title="")
        return
    emit_object(header, as_json=False, title=f"Invoice {invoice.number}")
    emit(lines, as_json=False, title="Lines")


_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


@invoices_app.command("pdf")
def invoices_pdf(
    number: str,
    out: Path | None = typer.Option(
        None, "--out", help="Where to write the PDF (default: NUMBER.pdf here)."
    ),
) -> None:
    """Print an invoice to PDF in the customer's language, with its class's template."""
    with unit_of_work() as (uow, _):
        document = invoice_documents.printable(uow, number)
    pdf = render_pdf(document.view, document.template)
    target = out or Path(f"{_UNSAFE.sub('_', document.view.number)}.pdf")
    target.write_bytes(pdf)
    console.print(
        f"invoice {document.view.number} written to {target} ({len(pdf)} bytes)", markup=False
    )

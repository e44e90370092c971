"""CLI for issued invoices: list them, show one with its lines, print one to PDF."""

from __future__ import annotations

import re
from pathlib import Path

import typer

from ispbill.adapters.pdf.render import render_pdf
from ispbill.entrypoints.cli.base import (
    ALL,
    CURSOR,
    LIMIT,
    Cli,
    app_for_command,
    console,
    emit,
    emit_listing,
    emit_object,
    find_optional,
    listing,
    unit_of_work,
)
from ispbill.use_cases.billing import invoice_documents
from ispbill.use_cases.catalog.name_lookups import customer_id_of
from ispbill.use_cases.queries import cli_listings

invoices_app = Cli(help="Invoices: immutable, gaplessly numbered documents of charges.")

JSON = typer.Option(False, "--json", help="Print JSON instead of a table.")


@invoices_app.command("list")
def invoices_list(
    customer: str | None = typer.Option(None, help="Only this customer's invoices."),
    status: str | None = typer.Option(None, help="issued, partially_paid, paid or void."),
    limit: int = LIMIT,
    cursor: int | None = CURSOR,
    every: bool = ALL,
    as_json: bool = JSON,
) -> None:
    """Invoices, newest first."""
    with app_for_command():
        customer_id = find_optional(customer_id_of, customer)
    found = listing(
        lambda uow, after, size: cli_listings.invoice_rows(
            uow, customer_id=customer_id, status=status, limit=size, after=after
        ),
        limit=limit,
        cursor=cursor,
        every=every,
    )
    emit_listing(
        found,
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
        shown = cli_listings.invoice_detail(uow, number)
    header, lines = shown["header"], shown["lines"]
    if as_json:
        emit_object(header | {"lines": lines}, as_json=True, title="")
        return
    emit_object(header, as_json=False, title=f"Invoice {header['number']}")
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

"""CLI for bank statements: ``payments import|unmatched|assign``.

Registered on ``payments_app`` by ``main.py``. ``import`` is safe to run twice on the same file:
every line is remembered under the bank's transaction id (or a stable hash), so the second run
reports only duplicates.
"""

from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.table import Table

from ispbill.adapters.bank import FORMAT_CHOICES, ColumnMap
from ispbill.domain.errors import ValidationError
from ispbill.domain.money import Money
from ispbill.entrypoints.cli.base import (
    ACTOR,
    ALL,
    CURSOR,
    LIMIT,
    app_for_command,
    console,
    emit,
    emit_listing,
    find,
    listing,
    to_jsonable,
    unit_of_work,
)
from ispbill.use_cases.catalog.name_lookups import customer_id_of
from ispbill.use_cases.payments.bank_import import (
    ImportReport,
    assign_line,
    import_statement,
)
from ispbill.use_cases.queries import cli_listings

JSON = typer.Option(False, "--json", help="Print JSON instead of a table.")


def payments_import(
    file: Path = typer.Argument(..., help="A bank statement: CSV, camt.053 XML or MT940."),
    format: str = typer.Option("auto", "--format", help=f"One of: {', '.join(FORMAT_CHOICES)}."),
    column_map: Path | None = typer.Option(
        None, "--column-map", help="CSV only: a TOML file with [columns] and [format] tables."
    ),
    map_pairs: list[str] = typer.Option(
        [], "--map", help="CSV only: key=value, e.g. --map amount=Objem --map delimiter=';'."
    ),
    as_json: bool = JSON,
) -> None:
    """Turn the statement's incoming transfers into payments, matched to customers by variable
    symbol, customer number, IBAN or customer id; list what could not be matched."""
    try:
        data = file.read_bytes()
    except OSError as exc:
        raise ValidationError("file", f"cannot read {file}: {exc.strerror}") from None
    cmap = ColumnMap.load(column_map) if column_map else None
    if map_pairs:
        cmap = ColumnMap.from_pairs(cmap, map_pairs)
    if cmap is not None and format not in ("auto", "csv"):
        raise ValidationError("column_map", f"applies to CSV files, not {format}")
    with app_for_command() as app:
        report = import_statement(
            app.uow,
            data=data,
            file_name=file.name,
            format=format,
            column_map=cmap,
            now=app.clock.now(),
            actor=ACTOR,
        )
        with app.uow() as uow:
            unmatched = cli_listings.bank_line_rows(uow, list(report.unmatched_line_ids))
    if as_json:
        typer.echo(
            json.dumps(to_jsonable(report.as_dict() | {"unmatched_lines": unmatched}), indent=2)
        )
        return
    _print_report(report)
    if unmatched:
        emit(
            unmatched,
            as_json=False,
            title="Unmatched: assign with 'ispbill payments assign LINE CUSTOMER'",
            columns=("line", "booked_on", "amount", "reference", "counterparty", "reason"),
        )


def _print_report(report: ImportReport) -> None:
    table = Table(title=f"{report.file_name} ({report.format})", show_header=False)
    table.add_column("what", style="bold")
    table.add_column("count", justify="right")
    for label, value in (
        ("rows read", report.rows_read),
        ("payments created", report.payments_created),
        ("duplicates skipped", report.duplicates_skipped),
        ("unmatched", report.unmatched),
        ("ignored (debits)", report.ignored),
    ):
        table.add_row(label, str(value))
    console.print(table)


def payments_unmatched(
    limit: int = LIMIT,
    cursor: int | None = CURSOR,
    every: bool = ALL,
    as_json: bool = JSON,
) -> None:
    """Incoming bank transfers no customer was found for, in the order they were imported."""
    found = listing(
        lambda uow, after, size: cli_listings.unmatched_bank_line_rows(
            uow, limit=size, after=after
        ),
        limit=limit,
        cursor=cursor,
        every=every,
    )
    emit_listing(
        found,
        as_json=as_json,
        title="Unmatched bank statement lines",
        columns=(
            "line",
            "booked_on",
            "amount",
            "reference",
            "description",
            "counterparty",
            "reason",
        ),
    )


def payments_assign(
    line: int = typer.Argument(..., help="Line id from 'ispbill payments unmatched'."),
    customer: str = typer.Argument(..., help="Customer id or name the money belongs to."),
) -> None:
    """Post the payment of one unmatched line for the customer you name."""
    with unit_of_work() as (uow, now):
        done = assign_line(
            uow, line_id=line, customer_id=find(customer_id_of, customer), now=now, actor=ACTOR
        )
    payment = done.recorded.payment
    amount = Money(payment.amount_minor, payment.currency)
    verb = "recorded" if done.recorded.created else "was already recorded"
    console.print(
        f"line {done.line.id} assigned: payment {payment.id} of {amount} {verb} for customer "
        f"{payment.customer_id}",
        markup=False,
    )

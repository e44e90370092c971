"""CLI for discounts: ``discounts add|list|end`` (use case: ``use_cases/billing/discounting.py``).

Registered by ``main.py``.
"""

from __future__ import annotations

from typing import Any

import typer

from ispbill.entrypoints.cli.base import (
    ACTOR,
    ALL,
    CURSOR,
    LIMIT,
    Cli,
    emit_listing,
    emit_object,
    find_optional,
    page_rows,
    parse_day,
    unit_of_work,
)
from ispbill.use_cases.billing import discounting
from ispbill.use_cases.catalog.name_lookups import customer_id_of, service_id_of

JSON = typer.Option(False, "--json", help="Print JSON instead of a table.")
discounts_app = Cli(
    help="Discounts: a percent or an amount off a service's or a customer's periods."
)


def discount_row(d: discounting.DiscountView) -> dict[str, Any]:
    return {
        "id": d.id,
        "customer": d.customer_id,
        "service": d.service_id if d.service_id is not None else "(every service)",
        "off": f"{d.percent} %" if d.percent is not None else str(d.amount),
        "periods": d.periods,
        "until": d.until,
        "starts_on": d.starts_on,
        "ended_on": d.ended_on,
        "given": str(d.given),
        "reason": d.reason,
    }


@discounts_app.command("add")
def discounts_add(
    customer: str | None = typer.Option(
        None, "--customer", help="Customer id or name: every service of the customer."
    ),
    service: str | None = typer.Option(None, "--service", help="Service id: that service only."),
    percent: int | None = typer.Option(None, "--percent", help="Percent off, 1 to 100."),
    amount: str | None = typer.Option(
        None, "--amount", help="Amount off each period, in the customer's currency, e.g. 5.00"
    ),
    periods: int | None = typer.Option(None, "--periods", help="For this many periods."),
    until: str | None = typer.Option(
        None, "--until", help="For periods starting on or before this day (YYYY-MM-DD)."
    ),
    reason: str = typer.Option("", "--reason", help="Why; shown on the invoice line."),
    as_json: bool = JSON,
) -> None:
    """Add a discount from the periods starting today; each is its own invoice line."""
    with unit_of_work() as (uow, now):
        added = discounting.add_discount(
            uow,
            customer_id=find_optional(customer_id_of, customer),
            service_id=find_optional(service_id_of, service),
            percent=percent,
            amount=amount,
            periods=periods,
            until=parse_day(until, "until"),
            reason=reason,
            now=now,
            actor=ACTOR,
        )
    emit_object(discount_row(added), as_json=as_json, title=f"Discount {added.id}")


@discounts_app.command("list")
def discounts_list(
    customer: str | None = typer.Option(None, "--customer", help="Customer id or name."),
    as_json: bool = JSON,
    limit: int = LIMIT,
    cursor: int | None = CURSOR,
    every: bool = ALL,
) -> None:
    """Discounts, ended ones included, with what each took off so far, a page at a time."""
    with unit_of_work() as (uow, _):
        rows = discounting.list_discounts(uow, customer_id=find_optional(customer_id_of, customer))
    found = page_rows([discount_row(d) for d in rows], limit=limit, cursor=cursor, every=every)
    emit_listing(found, as_json=as_json, title="Discounts")


@discounts_app.command("end")
def discounts_end(
    discount: int = typer.Argument(..., help="Discount id."),
    as_json: bool = JSON,
) -> None:
    """End a discount: no period starting after today is discounted."""
    with unit_of_work() as (uow, now):
        ended = discounting.end_discount(uow, discount_id=discount, now=now, actor=ACTOR)
    emit_object(discount_row(ended), as_json=as_json, title=f"Discount {ended.id} ends")


def register(app: typer.Typer) -> None:
    app.add_typer(discounts_app, name="discounts")

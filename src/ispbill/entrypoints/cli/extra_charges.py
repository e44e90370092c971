"""CLI for one-off extra charges and recurring add-ons: ``charges add|list`` and
``services addon-add|addons|addon-end`` (use case: ``use_cases/billing/extras.py``).

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
    console,
    emit,
    emit_listing,
    emit_object,
    find,
    find_optional,
    page_rows,
    parse_day,
    unit_of_work,
)
from ispbill.use_cases.billing import extras
from ispbill.use_cases.catalog.name_lookups import (
    customer_id_of,
    service_id_of,
    tax_profile_id_of,
)

JSON = typer.Option(False, "--json", help="Print JSON instead of a table.")
charges_app = Cli(help="One-off extra charges: installation, equipment, a late fee.")


@charges_app.command("add")
def charges_add(
    customer: str = typer.Argument(..., help="Customer id or name."),
    amount: str = typer.Option(..., "--amount", help="Unit price in major units, e.g. 25.00"),
    description: str = typer.Option(
        ..., "--description", help="What is charged, as the invoice line reads."
    ),
    service: str | None = typer.Option(None, "--service", help="The service it belongs to (id)."),
    tax_profile: str | None = typer.Option(
        None,
        "--tax-profile",
        help="Tax profile id or name (default: as the service, else the customer, is taxed).",
    ),
    quantity: int = typer.Option(1, "--quantity", help="How many units (a whole number)."),
    key: str | None = typer.Option(
        None,
        "--key",
        help="Idempotency key: the same key and figures again charge nothing more.",
    ),
    as_json: bool = JSON,
) -> None:
    """Charge once: from a prepaid wallet at once, or on a postpaid customer's next invoice."""
    with unit_of_work() as (uow, now):
        customer_id = find(customer_id_of, customer)
        result = extras.add_extra_charge(
            uow,
            customer_id=customer_id,
            amount=amount,
            description=description,
            quantity=quantity,
            service_id=find_optional(service_id_of, service),
            tax_profile_id=find_optional(tax_profile_id_of, tax_profile),
            key=key,
            now=now,
            actor=ACTOR,
        )
    row = charge_row(result.charge) | {
        "created": result.created,
        "paid_from": "wallet" if result.paid_from_wallet else "next invoice",
        "balance": str(result.balance),
    }
    if as_json:
        emit_object(row, as_json=True, title="")
        return
    if not result.created:
        console.print(
            f"charge {result.charge.id} was already recorded under this key; nothing charged",
            markup=False,
        )
        return
    where = (
        "taken from the prepaid wallet"
        if result.paid_from_wallet
        else "goes on the customer's next invoice"
    )
    console.print(
        f"charge {result.charge.id}: {result.charge.description} x{result.charge.quantity} = "
        f"{result.charge.gross} (net {result.charge.net}, tax {result.charge.tax}), {where}; "
        f"wallet balance {result.balance}",
        markup=False,
    )


@charges_app.command("list")
def charges_list(
    customer: str = typer.Argument(..., help="Customer id or name."),
    as_json: bool = JSON,
    limit: int = LIMIT,
    cursor: int | None = CURSOR,
    every: bool = ALL,
) -> None:
    """A customer's one-off charges, with the invoice each is on, a page at a time (by id)."""
    with unit_of_work() as (uow, _):
        rows = extras.list_extra_charges(uow, customer_id=find(customer_id_of, customer))
    found = page_rows([charge_row(r) for r in rows], limit=limit, cursor=cursor, every=every)
    emit_listing(found, as_json=as_json, title=f"One-off charges of {customer}")


def charge_row(c: extras.ExtraChargeView) -> dict[str, Any]:
    return {
        "id": c.id,
        "charged_at": c.charged_at,
        "service": c.service_id,
        "description": c.description,
        "quantity": c.quantity,
        "unit_price": str(c.unit_price),
        "net": str(c.net),
        "tax": str(c.tax),
        "gross": str(c.gross),
        "invoice": c.invoice_number,
    }


def addon_row(a: extras.AddOnView) -> dict[str, Any]:
    return {
        "id": a.id,
        "service": a.service_id,
        "description": a.description,
        "price": str(a.price),
        "tax_profile": a.tax_profile or "(as the service)",
        "starts_on": a.starts_on,
        "ends_on": a.ends_on,
    }


def services_addon_add(
    service: str = typer.Argument(..., help="Service id."),
    price: str = typer.Option(..., "--price", help="Price per full period, e.g. 3.00"),
    description: str = typer.Option(..., "--description", help="e.g. 'Static IP'"),
    tax_profile: str | None = typer.Option(
        None, "--tax-profile", help="Tax profile id or name (default: as the service is taxed)."
    ),
    starts_on: str | None = typer.Option(
        None, "--from", help="First day charged (default: today; never in the past)."
    ),
    ends_on: str | None = typer.Option(None, "--to", help="Last day charged (default: none)."),
    as_json: bool = JSON,
) -> None:
    """Attach a recurring add-on, charged with every period and prorated like the plan."""
    with unit_of_work() as (uow, now):
        result = extras.add_addon(
            uow,
            service_id=find(service_id_of, service),
            description=description,
            price=price,
            tax_profile_id=find_optional(tax_profile_id_of, tax_profile),
            starts_on=parse_day(starts_on, "starts_on"),
            ends_on=parse_day(ends_on, "ends_on"),
            now=now,
            actor=ACTOR,
        )
    row = addon_row(result.addon) | {
        "charged_now": str(result.charged),
        "invoice": result.invoice_number,
        "balance": str(result.balance),
    }
    emit_object(row, as_json=as_json, title=f"Add-on {result.addon.id}")


def services_addons(
    service: str = typer.Argument(..., help="Service id."),
    as_json: bool = JSON,
) -> None:
    """A service's add-ons, ended ones included."""
    with unit_of_work() as (uow, _):
        rows = extras.list_addons(uow, service_id=find(service_id_of, service))
    emit([addon_row(a) for a in rows], as_json=as_json, title=f"Add-ons of service {service}")


def services_addon_end(
    addon: int = typer.Argument(..., help="Add-on id."),
    ends_on: str | None = typer.Option(
        None,
        "--on",
        help="Its last day (default: the last day already charged, or today).",
    ),
    as_json: bool = JSON,
) -> None:
    """End a recurring add-on after its last day; charged days are never given back."""
    with unit_of_work() as (uow, now):
        ended = extras.end_addon(
            uow, addon_id=addon, ends_on=parse_day(ends_on, "ends_on"), now=now, actor=ACTOR
        )
    emit_object(addon_row(ended), as_json=as_json, title=f"Add-on {ended.id} ends")


def register(app: typer.Typer, services_app: typer.Typer) -> None:
    app.add_typer(charges_app, name="charges")
    services_app.command("addon-add")(services_addon_add)
    services_app.command("addons")(services_addons)
    services_app.command("addon-end")(services_addon_end)

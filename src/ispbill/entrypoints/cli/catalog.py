"""CLI for what the operator sets up: tax profiles, resellers, customer classes and plans."""

from __future__ import annotations

import typer

from ispbill.entrypoints.cli.base import ACTOR, Cli, console, emit, find_optional, unit_of_work
from ispbill.use_cases.catalog import offerings as catalog
from ispbill.use_cases.catalog.name_lookups import tax_profile_id_of
from ispbill.use_cases.queries import cli_listings

taxes_app = Cli(help="Tax profiles (rate and whether prices include it).")
resellers_app = Cli(help="Resellers that own a subtree of customers.")
classes_app = Cli(help="Customer classes: grace period, invoice template, taxes, custom fields.")
plans_app = Cli(help="Plans (tariffs): price per period, speeds, FUP tiers, billing periods.")

JSON = typer.Option(False, "--json", help="Print JSON instead of a table.")


@taxes_app.command("add")
def taxes_add(
    name: str,
    rate: str = typer.Option(..., help="Percentage, e.g. 21 or 10.5"),
    inclusive: bool = typer.Option(False, help="Prices already include the tax."),
) -> None:
    with unit_of_work() as (uow, now):
        row = catalog.add_tax_profile(
            uow, name=name, rate=rate, inclusive=inclusive, now=now, actor=ACTOR
        )
    console.print(f"tax profile {row.id} {row.name!r} created", markup=False)


@taxes_app.command("list")
def taxes_list(as_json: bool = JSON) -> None:
    with unit_of_work() as (uow, _):
        rows = cli_listings.tax_profile_rows(uow)
    emit(rows, as_json=as_json, title="Tax profiles")


@resellers_app.command("add")
def resellers_add(name: str) -> None:
    with unit_of_work() as (uow, now):
        row = catalog.add_reseller(uow, name=name, now=now, actor=ACTOR)
    console.print(f"reseller {row.id} {row.name!r} created", markup=False)


@resellers_app.command("list")
def resellers_list(as_json: bool = JSON) -> None:
    with unit_of_work() as (uow, _):
        rows = cli_listings.reseller_rows(uow)
    emit(rows, as_json=as_json, title="Resellers")


@classes_app.command("add")
def classes_add(
    name: str,
    grace_days: int = typer.Option(0, help="Days of grace after the due date."),
    invoice_template: str = typer.Option("default"),
    tax_profile: str | None = typer.Option(None, help="Tax profile id or name."),
    notify: list[str] = typer.Option([], help="E-mail for notifications (repeatable)."),
    field: list[str] = typer.Option(
        [], help="Custom field NAME[:required|optional][:REGEX] (repeatable)."
    ),
) -> None:
    with unit_of_work() as (uow, now):
        spec = catalog.NewClass(
            name=name,
            grace_days=grace_days,
            invoice_template=invoice_template,
            tax_profile_id=find_optional(tax_profile_id_of, tax_profile or None),
            notification_emails=notify,
            custom_fields=field,
        )
        row = catalog.add_class(uow, spec=spec, now=now, actor=ACTOR)
    console.print(f"customer class {row.id} {row.name!r} created", markup=False)


@classes_app.command("list")
def classes_list(as_json: bool = JSON) -> None:
    with unit_of_work() as (uow, _):
        rows = cli_listings.class_rows(uow)
    emit(rows, as_json=as_json, title="Customer classes")


@plans_app.command("add")
def plans_add(
    name: str,
    price: str = typer.Option(..., help="Price per period in major units, e.g. 30.00"),
    currency: str = typer.Option(..., help="ISO 4217 code, e.g. USD"),
    download: str = typer.Option(..., help="Download speed, e.g. 50M"),
    upload: str = typer.Option(..., help="Upload speed, e.g. 10M"),
    cycle: str = typer.Option(
        "customer",
        help="customer (each customer's own billing cycle) or a plan cycle: monthly, weekly, 30days, 7d, ...",
    ),
    tax_profile: str | None = typer.Option(None),
    fup: list[str] = typer.Option(
        [], help="FUP tier LIMIT:throttle:DOWN/UP or LIMIT:suspend (up to 4)."
    ),
    period: list[str] = typer.Option(
        [], help="Enabled billing period MONTHS[:DISCOUNT%] (repeatable)."
    ),
) -> None:
    with unit_of_work() as (uow, now):
        spec = catalog.NewPlan(
            name=name,
            price=price,
            currency=currency,
            download=download,
            upload=upload,
            cycle=cycle,
            tax_profile_id=find_optional(tax_profile_id_of, tax_profile or None),
            fup_tiers=fup,
            period_months=period,
        )
        row = catalog.add_plan(uow, spec=spec, now=now, actor=ACTOR)
    console.print(f"plan {row.id} {row.name!r} created", markup=False)


@plans_app.command("list")
def plans_list(as_json: bool = JSON) -> None:
    with unit_of_work() as (uow, _):
        rows = cli_listings.plan_rows(uow)
    emit(rows, as_json=as_json, title="Plans")

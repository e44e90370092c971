"""CLI for what the operator sets up: tax profiles, resellers, customer classes and plans."""

from __future__ import annotations

import typer

from ispbill.entrypoints.cli.base import (
    ACTOR,
    ALL,
    CURSOR,
    LIMIT,
    Cli,
    console,
    emit_listing,
    find,
    find_optional,
    listing,
    unit_of_work,
)
from ispbill.use_cases.catalog import catalog_edits as edits
from ispbill.use_cases.catalog import offerings as catalog
from ispbill.use_cases.catalog.name_lookups import (
    customer_class_id_of,
    plan_id_of,
    reseller_id_of,
    tax_profile_id_of,
)
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


@taxes_app.command("update")
def taxes_update(
    tax_profile: str = typer.Argument(..., help="Tax profile id or name."),
    name: str | None = typer.Option(None),
    rate: str | None = typer.Option(None, help="Percentage; applies to charges from now on."),
    inclusive: bool | None = typer.Option(None, help="Prices already include the tax."),
) -> None:
    with unit_of_work() as (uow, now):
        row = edits.update_tax_profile(
            uow,
            tax_profile_id=find(tax_profile_id_of, tax_profile),
            name=name,
            rate=rate,
            inclusive=inclusive,
            now=now,
            actor=ACTOR,
        )
    console.print(f"tax profile {row.id} {row.name!r} updated", markup=False)


@taxes_app.command("list")
def taxes_list(
    limit: int = LIMIT, cursor: int | None = CURSOR, every: bool = ALL, as_json: bool = JSON
) -> None:
    found = listing(
        lambda uow, after, size: cli_listings.tax_profile_rows(uow, after=after, limit=size),
        limit=limit,
        cursor=cursor,
        every=every,
    )
    emit_listing(found, as_json=as_json, title="Tax profiles")


@resellers_app.command("add")
def resellers_add(name: str) -> None:
    with unit_of_work() as (uow, now):
        row = catalog.add_reseller(uow, name=name, now=now, actor=ACTOR)
    console.print(f"reseller {row.id} {row.name!r} created", markup=False)


@resellers_app.command("update")
def resellers_update(
    reseller: str = typer.Argument(..., help="Reseller id or name."),
    name: str = typer.Option(..., help="New name."),
) -> None:
    with unit_of_work() as (uow, now):
        row = edits.update_reseller(
            uow, reseller_id=find(reseller_id_of, reseller), name=name, now=now, actor=ACTOR
        )
    console.print(f"reseller {row.id} {row.name!r} updated", markup=False)


@resellers_app.command("list")
def resellers_list(
    limit: int = LIMIT, cursor: int | None = CURSOR, every: bool = ALL, as_json: bool = JSON
) -> None:
    found = listing(
        lambda uow, after, size: cli_listings.reseller_rows(uow, after=after, limit=size),
        limit=limit,
        cursor=cursor,
        every=every,
    )
    emit_listing(found, as_json=as_json, title="Resellers")


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


@classes_app.command("update")
def classes_update(
    customer_class: str = typer.Argument(..., help="Customer class id or name."),
    name: str | None = typer.Option(None),
    grace_days: int | None = typer.Option(None, help="Days of grace after the due date."),
    invoice_template: str | None = typer.Option(None),
    tax_profile: str | None = typer.Option(None, help="Tax profile id or name; '' removes it."),
    notify: list[str] | None = typer.Option(
        None, help="Notification e-mails, replacing the list (repeatable; '' clears)."
    ),
    field: list[str] | None = typer.Option(
        None, help="Custom fields, replacing the list: NAME[:required|optional][:REGEX]; '' clears."
    ),
) -> None:
    """Change a class at once: its customers without their own value follow it."""
    with unit_of_work() as (uow, now):
        changes = edits.ClassChanges(
            name=name,
            grace_days=grace_days,
            invoice_template=invoice_template,
            tax_profile_id=(
                None
                if tax_profile is None
                else (find(tax_profile_id_of, tax_profile) if tax_profile.strip() else 0)
            ),
            notification_emails=notify or None,
            custom_fields=[f for f in field if f.strip()] if field else None,
        )
        row = edits.update_class(
            uow,
            class_id=find(customer_class_id_of, customer_class),
            changes=changes,
            now=now,
            actor=ACTOR,
        )
    console.print(f"customer class {row.id} {row.name!r} updated", markup=False)


@classes_app.command("list")
def classes_list(
    limit: int = LIMIT, cursor: int | None = CURSOR, every: bool = ALL, as_json: bool = JSON
) -> None:
    found = listing(
        lambda uow, after, size: cli_listings.class_rows(uow, after=after, limit=size),
        limit=limit,
        cursor=cursor,
        every=every,
    )
    emit_listing(found, as_json=as_json, title="Customer classes")


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


@plans_app.command("update")
def plans_update(
    plan: str = typer.Argument(..., help="Plan id or name."),
    name: str | None = typer.Option(None),
    download: str | None = typer.Option(None, help="Download speed, e.g. 100M."),
    upload: str | None = typer.Option(None, help="Upload speed, e.g. 20M."),
    tax_profile: str | None = typer.Option(None, help="Tax profile id or name; '' removes it."),
    fup: list[str] | None = typer.Option(
        None, help="FUP tiers, replacing them: LIMIT:throttle:DOWN/UP or LIMIT:suspend; '' clears."
    ),
    period: list[str] | None = typer.Option(
        None, help="Billing periods, replacing them: MONTHS[:DISCOUNT%]; '' clears."
    ),
) -> None:
    """Change a plan's name, speeds, FUP tiers, periods or tax profile, in force at once."""
    with unit_of_work() as (uow, now):
        changes = edits.PlanChanges(
            name=name,
            download=download,
            upload=upload,
            fup_tiers=[f for f in fup if f.strip()] if fup else None,
            period_months=[p for p in period if p.strip()] if period else None,
            tax_profile_id=(
                None
                if tax_profile is None
                else (find(tax_profile_id_of, tax_profile) if tax_profile.strip() else 0)
            ),
        )
        row = edits.update_plan(
            uow, plan_id=find(plan_id_of, plan), changes=changes, now=now, actor=ACTOR
        )
    console.print(f"plan {row.id} {row.name!r} updated", markup=False)


@plans_app.command("archive")
def plans_archive(
    plan: str = typer.Argument(..., help="Plan id or name."),
    reason: str = typer.Option("", help="Why (kept in the event)."),
) -> None:
    """Stop selling a plan: its services go on; no new service or plan change may pick it."""
    with unit_of_work() as (uow, now):
        row = edits.archive_plan(
            uow, plan_id=find(plan_id_of, plan), now=now, actor=ACTOR, reason=reason
        )
    console.print(f"plan {row.id} {row.name!r} archived", markup=False)


@plans_app.command("restore")
def plans_restore(
    plan: str = typer.Argument(..., help="Plan id or name."),
    reason: str = typer.Option("", help="Why (kept in the event)."),
) -> None:
    with unit_of_work() as (uow, now):
        row = edits.restore_plan(
            uow, plan_id=find(plan_id_of, plan), now=now, actor=ACTOR, reason=reason
        )
    console.print(f"plan {row.id} {row.name!r} restored", markup=False)


@plans_app.command("list")
def plans_list(
    archived: bool = typer.Option(False, "--archived", help="The archived plans instead."),
    limit: int = LIMIT,
    cursor: int | None = CURSOR,
    every: bool = ALL,
    as_json: bool = JSON,
) -> None:
    found = listing(
        lambda uow, after, size: cli_listings.plan_rows(
            uow, after=after, limit=size, archived=archived
        ),
        limit=limit,
        cursor=cursor,
        every=every,
    )
    emit_listing(found, as_json=as_json, title="Plans")

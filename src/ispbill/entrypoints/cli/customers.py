"""CLI for customers, their services and their wallet."""

from __future__ import annotations

from typing import Any

import typer

from ispbill.domain.errors import ValidationError
from ispbill.entrypoints.cli.base import (
    ACTOR,
    ALL,
    CURSOR,
    LIMIT,
    Cli,
    app_for_command,
    console,
    emit_listing,
    emit_object,
    find,
    find_optional,
    listing,
    parse_day,
    unit_of_work,
)
from ispbill.use_cases.billing import customer_pending
from ispbill.use_cases.billing import plan_changes as change_cases
from ispbill.use_cases.catalog import customer_accounts as customer_cases
from ispbill.use_cases.catalog import customer_edits as edit_cases
from ispbill.use_cases.catalog.customer_records import ContactRecord
from ispbill.use_cases.catalog.name_lookups import (
    customer_class_id_of,
    customer_id_of,
    plan_id_of,
    reseller_id_of,
    service_id_of,
)
from ispbill.use_cases.queries import cli_listings
from ispbill.use_cases.service_lifecycle import new_services as service_cases
from ispbill.use_cases.service_lifecycle import service_edits

customers_app = Cli(help="Customers: the parties that pay.")
services_app = Cli(help="Services: one plan delivered to one customer.")
wallet_app = Cli(help="A customer's wallet: balance and ledger postings.")

JSON = typer.Option(False, "--json", help="Print JSON instead of a table.")


def parse_fields(items: list[str]) -> dict[str, str]:
    data: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ValidationError("custom_data", f"{item!r}: expected NAME=VALUE")
        data[key.strip()] = value.strip()
    return data


@customers_app.command("add")
def customers_add(
    name: str,
    customer_class: str = typer.Option(..., "--class", help="Customer class id or name."),
    currency: str = typer.Option(..., help="ISO 4217 currency the customer pays in."),
    balance_control: str = typer.Option("prepaid", help="prepaid or postpaid."),
    cycle: str = typer.Option(
        "monthly",
        help="Invoice cycle: daily, weekly, semimonthly, monthly, monthly_anniversary, days_30, "
        "every_n_days, every_n_months (with --cycle-n), or every_7_days / 3m.",
    ),
    cycle_n: int | None = typer.Option(
        None, "--cycle-n", help="every_n_days / every_n_months: the count N."
    ),
    anchor_day: int | None = typer.Option(
        None, help="monthly_anniversary: N, the creation day (PortaBilling); the default."
    ),
    timezone: str = typer.Option("UTC", help="Billing period timezone (IANA name)."),
    business_model: str = typer.Option("internet_access"),
    invoicing: str = typer.Option("forward", help="forward (in advance) or backward (in arrears)."),
    use_credit: bool = typer.Option(True, help="Pay new invoices from credit automatically."),
    credit_limit: str | None = typer.Option(
        None, help="Postpaid only: debt at which services are blocked."
    ),
    minimum_balance: str | None = typer.Option(
        None, help="Prepaid only: funds that must remain after a charge."
    ),
    available_funds: str | None = typer.Option(None, help="Prepaid only: initial payment."),
    funds_method: str = typer.Option(
        "cash", help="How the available funds were paid: cash, bank, card."
    ),
    reseller: str | None = typer.Option(None),
    locale: str = typer.Option("en_US"),
    grace_days: int | None = typer.Option(None, help="Override of the class's grace period."),
    notify: list[str] | None = typer.Option(
        None, help="Override of the class's notification list."
    ),
    field: list[str] = typer.Option([], help="Custom data NAME=VALUE (repeatable)."),
    email: list[str] = typer.Option([], help="Contact e-mail (repeatable; the first is primary)."),
    phone: list[str] = typer.Option([], help="Contact phone (repeatable; the first is primary)."),
    billing_address: str | None = typer.Option(None, help="Billing address."),
    service_address: str | None = typer.Option(None, help="Where the service is installed."),
    gps: str | None = typer.Option(None, help="Service location LAT,LON in decimal degrees."),
    company_number: str | None = typer.Option(None, help="Company registration number."),
    vat_id: str | None = typer.Option(None, help="VAT id: 2-letter country prefix + digits."),
    notes: str | None = typer.Option(None, help="Internal notes (never shown to the subscriber)."),
) -> None:
    record = ContactRecord(
        emails=email or None,
        phones=phone or None,
        billing_address=billing_address,
        service_address=service_address,
        service_gps=gps,
        company_registration_number=company_number,
        vat_id=vat_id,
        internal_notes=notes,
    )
    with unit_of_work() as (uow, now):
        spec = customer_cases.NewCustomer(
            name=name,
            customer_class_id=find(customer_class_id_of, customer_class),
            currency=currency,
            balance_control=balance_control,
            billing_cycle=cycle,
            cycle_n=cycle_n,
            anchor_day=anchor_day,
            billing_timezone=timezone,
            business_model=business_model,
            invoicing_mode=invoicing,
            use_credit_automatically=use_credit,
            credit_limit=credit_limit,
            minimum_balance=minimum_balance,
            available_funds=available_funds,
            funds_method=funds_method,
            reseller_id=find_optional(reseller_id_of, reseller),
            locale=locale,
            grace_days=grace_days,
            notification_emails=notify or None,
            custom_data=parse_fields(field),
            record=record,
        )
        row = customer_cases.add_customer(uow, spec=spec, now=now, actor=ACTOR)
        balance = cli_listings.balance_of(uow, row.id)
    console.print(f"customer {row.id} {row.name!r} created; wallet balance {balance}", markup=False)


@customers_app.command("list")
def customers_list(
    search: str | None = typer.Option(None, help="Part of the name."),
    archived: bool = typer.Option(False, "--archived", help="The archived customers instead."),
    limit: int = LIMIT,
    cursor: int | None = CURSOR,
    every: bool = ALL,
    as_json: bool = JSON,
) -> None:
    found = listing(
        lambda uow, after, size: cli_listings.customer_rows(
            uow, search=search, archived=archived, after=after, limit=size
        ),
        limit=limit,
        cursor=cursor,
        every=every,
    )
    emit_listing(found, as_json=as_json, title="Customers")


def edit_fields(items: list[str]) -> dict[str, str]:
    """``NAME=VALUE`` sets a custom field, ``NAME=`` removes it."""
    data: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ValidationError("custom_data", f"{item!r}: expected NAME=VALUE (NAME= removes)")
        data[key.strip()] = value.strip()
    return data


@customers_app.command("update")
def customers_update(
    customer: str = typer.Argument(..., help="Customer id or name."),
    name: str | None = typer.Option(None, help="New name."),
    customer_class: str | None = typer.Option(None, "--class", help="Customer class id or name."),
    credit_limit: str | None = typer.Option(
        None, help="Postpaid: debt at which services are blocked ('' removes it). At once."
    ),
    minimum_balance: str | None = typer.Option(
        None, help="Prepaid: funds that must remain after a charge. At once."
    ),
    use_credit: bool | None = typer.Option(None, help="Pay new invoices from credit."),
    grace_days: int | None = typer.Option(None, help="Override of the class's grace period."),
    locale: str | None = typer.Option(None, help="Language of invoices and e-mail, e.g. cs_CZ."),
    notify: list[str] | None = typer.Option(
        None, help="Notification e-mails (repeatable; '' falls back to the class's)."
    ),
    field: list[str] = typer.Option([], help="Custom data NAME=VALUE; NAME= removes it."),
    business_model: str | None = typer.Option(None),
    timezone: str | None = typer.Option(None, help="Billing timezone; only between periods."),
    cycle: str | None = typer.Option(None, help="Billing cycle; only between periods."),
    cycle_n: int | None = typer.Option(None, "--cycle-n", help="N of every_n_days/months."),
    invoicing: str | None = typer.Option(None, help="forward or backward; only between periods."),
    email: list[str] | None = typer.Option(
        None, help="Contact e-mails, replacing the list (repeatable; first primary; '' clears)."
    ),
    phone: list[str] | None = typer.Option(
        None, help="Contact phones, replacing the list (repeatable; first primary; '' clears)."
    ),
    billing_address: str | None = typer.Option(None, help="'' clears."),
    service_address: str | None = typer.Option(None, help="'' clears."),
    gps: str | None = typer.Option(None, help="LAT,LON in decimal degrees; '' clears."),
    company_number: str | None = typer.Option(None, help="'' clears."),
    vat_id: str | None = typer.Option(None, help="'' clears."),
    notes: str | None = typer.Option(None, help="Internal notes; '' clears."),
    reason: str = typer.Option("", help="Why (kept in the event)."),
    as_json: bool = JSON,
) -> None:
    """Change a customer's record or terms, validated as on creation; one event records the
    old and new values. Money limits apply at once (the next tick decides with them)."""
    record = ContactRecord(
        emails=[e for e in email if e.strip()] if email else None,  # --email '' clears
        phones=[p for p in phone if p.strip()] if phone else None,
        billing_address=billing_address,
        service_address=service_address,
        service_gps=gps,
        company_registration_number=company_number,
        vat_id=vat_id,
        internal_notes=notes,
    )
    with unit_of_work() as (uow, now):
        changes = edit_cases.CustomerChanges(
            name=name,
            customer_class_id=find_optional(customer_class_id_of, customer_class),
            credit_limit=credit_limit,
            minimum_balance=minimum_balance,
            use_credit_automatically=use_credit,
            grace_days=grace_days,
            locale=locale,
            notification_emails=notify or None,
            custom_data=edit_fields(field),
            business_model=business_model,
            billing_timezone=timezone,
            billing_cycle=cycle,
            cycle_n=cycle_n,
            invoicing_mode=invoicing,
            record=record,
        )
        row = edit_cases.update_customer(
            uow,
            customer_id=find(customer_id_of, customer),
            changes=changes,
            now=now,
            actor=ACTOR,
            reason=reason,
        )
        detail = cli_listings.customer_detail(uow, row.id, events_shown=1)
    if as_json:
        emit_object(detail, as_json=True, title="")
        return
    console.print(f"customer {row.id} {row.name!r} updated", markup=False)
    for planned in detail["pending_changes"]:
        console.print(
            f"  {planned['field']}: {planned['old_value']} -> {planned['new_value']} from "
            f"{planned['effective_on']} (pending change {planned['id']}; a service is running)",
            markup=False,
        )


@customers_app.command("archive")
def customers_archive(
    customer: str = typer.Argument(..., help="Customer id or name."),
    reason: str = typer.Option("", help="Why (kept in the event)."),
) -> None:
    """Hide a customer whose services have all ended; its history stays; no new services."""
    with unit_of_work() as (uow, now):
        row = edit_cases.archive_customer(
            uow, customer_id=find(customer_id_of, customer), now=now, actor=ACTOR, reason=reason
        )
    console.print(f"customer {row.id} {row.name!r} archived", markup=False)


@customers_app.command("restore")
def customers_restore(
    customer: str = typer.Argument(..., help="Customer id or name."),
    reason: str = typer.Option("", help="Why (kept in the event)."),
) -> None:
    """Bring an archived customer back to the lists."""
    with unit_of_work() as (uow, now):
        row = edit_cases.restore_customer(
            uow, customer_id=find(customer_id_of, customer), now=now, actor=ACTOR, reason=reason
        )
    console.print(f"customer {row.id} {row.name!r} restored", markup=False)


@customers_app.command("cancel-change")
def customers_cancel_change(
    change: int = typer.Argument(..., help="The pending change's id (customers show lists it)."),
    reason: str = typer.Option("", "--reason", help="Why (kept with the event)."),
    as_json: bool = JSON,
) -> None:
    """Cancel a timezone, cycle or invoicing-mode change planned for the next period."""
    with unit_of_work() as (uow, now):
        done = customer_pending.cancel_change(
            uow, change_id=change, now=now, actor=ACTOR, reason=reason
        )
    emit_object(done.as_json(), as_json=as_json, title=f"Pending change {done.id}")


@customers_app.command("show")
def customers_show(customer: str, as_json: bool = JSON) -> None:
    with unit_of_work() as (uow, _):
        detail = cli_listings.customer_detail(uow, find(customer_id_of, customer))
    emit_object(detail, as_json=as_json, title=f"Customer {detail['name']}")


@services_app.command("add")
def services_add(
    customer: str = typer.Option(..., help="Customer id or name."),
    plan: str = typer.Option(..., help="Plan id or name."),
    active_from: str | None = typer.Option(None, "--from", help="First day (default: today)."),
    active_to: str | None = typer.Option(
        None, "--to", help="Optional 'active to' day: the service pauses then."
    ),
    period_months: int | None = typer.Option(
        None, help="Billing period in months, among those the plan enables."
    ),
    invoicing: str | None = typer.Option(None, help="Override the customer's invoicing mode."),
) -> None:
    first_day, last_day = parse_day(active_from, "active_from"), parse_day(active_to, "active_to")
    with unit_of_work() as (uow, now):
        spec = service_cases.NewService(
            customer_id=find(customer_id_of, customer),
            plan_id=find(plan_id_of, plan),
            active_from=first_day,
            active_to=last_day,
            period_months=period_months,
            invoicing_mode=invoicing,
        )
        row = service_cases.add_service(uow, spec=spec, now=now, actor=ACTOR)
    console.print(f"service {row.id} created ({row.state}) from {row.active_from}")


@services_app.command("update")
def services_update(
    service: str = typer.Argument(..., help="Service id."),
    active_from: str | None = typer.Option(None, "--from", help="First day (not started yet)."),
    period_months: int | None = typer.Option(None, help="Billing period in months."),
    invoicing: str | None = typer.Option(
        None, help="forward or backward; '' follows the customer's."
    ),
) -> None:
    """Change a service that has not started yet (first day, period, invoicing mode); a
    running one changes plan (`change-plan`), pauses (`active-to`) or ends (`terminate`)."""
    first_day = parse_day(active_from, "active_from")
    with unit_of_work() as (uow, now):
        row = service_edits.update_service(
            uow,
            service_id=find(service_id_of, service),
            changes=service_edits.ServiceChanges(
                active_from=first_day, period_months=period_months, invoicing_mode=invoicing
            ),
            now=now,
            actor=ACTOR,
        )
    console.print(f"service {row.id} updated ({row.state}) from {row.active_from}")


@services_app.command("list")
def services_list(
    customer: str | None = typer.Option(None, help="Only this customer's services."),
    limit: int = LIMIT,
    cursor: int | None = CURSOR,
    every: bool = ALL,
    as_json: bool = JSON,
) -> None:
    with app_for_command():
        customer_id = find_optional(customer_id_of, customer)
    found = listing(
        lambda uow, after, size: cli_listings.service_page(
            uow, customer_id=customer_id, after=after, limit=size
        ),
        limit=limit,
        cursor=cursor,
        every=every,
    )
    emit_listing(found, as_json=as_json, title="Services")


def change_row(result: change_cases.ChangeResult) -> dict[str, Any]:
    """The figures and documents of a plan change or a termination."""
    quote = result.quote
    s = result.service
    return {
        "service": s.id,
        "customer": result.customer,
        "action": quote.kind.value,
        "from_plan": result.from_plan,
        "to_plan": result.to_plan,
        "effective": quote.effective,
        "charged": "in advance" if quote.in_advance else "in arrears",
        "credit": str(quote.credit_amount),
        "credit_period": f"{quote.credit.period.start}..{quote.credit.period.last_day}"
        if quote.credit
        else None,
        "credit_note": result.credit_note_number,
        "corrects_invoice": result.corrected_number,
        "charge": str(quote.charge_amount),
        "charge_period": f"{quote.charge.period.start}..{quote.charge.period.last_day}"
        if quote.charge
        else None,
        "invoice": result.invoice_number,
        "net": str(quote.net),
        "state": s.state if not s.state_reason else f"{s.state} ({s.state_reason})",
        "active_to": s.active_to,
        "balance": str(result.balance),
    }


@services_app.command("change-plan")
def services_change_plan(
    service: str = typer.Argument(..., help="Service id."),
    plan: str = typer.Argument(..., help="The new plan's id or name."),
    on: str | None = typer.Option(
        None, "--on", help="Effective day (default: today); not before the charged period."
    ),
    as_json: bool = JSON,
) -> None:
    """Move a service to another plan from a day, prorated by days: the unused days of the old
    plan are credited (credit note), the new plan's price for them is charged."""
    effective = parse_day(on, "on")
    with unit_of_work() as (uow, now):
        result = change_cases.change_plan(
            uow,
            service_id=find(service_id_of, service),
            plan_id=find(plan_id_of, plan),
            effective=effective,
            now=now,
            actor=ACTOR,
        )
        row = change_row(result)
    emit_object(row, as_json=as_json, title=f"Service {row['service']}: plan changed")


@services_app.command("terminate")
def services_terminate(
    service: str = typer.Argument(..., help="Service id."),
    on: str | None = typer.Option(
        None, "--on", help="Effective day, the first without service (default: today)."
    ),
    reason: str | None = typer.Option(None, "--reason", help="Why (kept in the event log)."),
    as_json: bool = JSON,
) -> None:
    """End a service from a day: the unused days paid in advance are credited (credit note), the
    used days owed in arrears are charged; no further charges."""
    effective = parse_day(on, "on")
    with unit_of_work() as (uow, now):
        result = change_cases.terminate_service(
            uow,
            service_id=find(service_id_of, service),
            effective=effective,
            now=now,
            actor=ACTOR,
            reason=reason,
        )
        row = change_row(result)
    emit_object(row, as_json=as_json, title=f"Service {row['service']}: terminated")


@wallet_app.command("show")
def wallet_show(
    customer: str,
    limit: int = typer.Option(50, "--limit", min=1, max=10_000, help="At most this many rows."),
    cursor: int | None = CURSOR,
    every: bool = ALL,
    as_json: bool = JSON,
) -> None:
    """The balance and the wallet's postings, newest first (``next_cursor`` in --json when
    older ones follow)."""
    with app_for_command():
        customer_id = find(customer_id_of, customer)
    postings: list[dict[str, Any]] = []
    after = cursor
    with unit_of_work() as (uow, _):
        while True:
            shown = cli_listings.wallet(uow, customer_id, limit=limit, after=after)
            postings.extend(shown["postings"])
            after = shown["next_cursor"]
            if not every or after is None:
                break
    shown["postings"] = postings
    if as_json:
        emit_object(shown, as_json=True, title="")
        return
    emit_listing(
        (postings, shown["next_cursor"]),
        as_json=False,
        title=f"Wallet of {shown['customer']}: balance {shown['balance']}",
    )

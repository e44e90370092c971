"""CLI for customers, their services and their wallet."""

from __future__ import annotations

from typing import Any

import typer

from ispbill.domain.errors import ValidationError
from ispbill.entrypoints.cli.base import (
    ACTOR,
    Cli,
    console,
    emit,
    emit_object,
    find,
    find_optional,
    parse_day,
    unit_of_work,
)
from ispbill.use_cases.billing import plan_changes as change_cases
from ispbill.use_cases.catalog import customer_accounts as customer_cases
from ispbill.use_cases.catalog.name_lookups import (
    customer_class_id_of,
    customer_id_of,
    plan_id_of,
    reseller_id_of,
    service_id_of,
)
from ispbill.use_cases.queries import cli_listings
from ispbill.use_cases.service_lifecycle import new_services as service_cases

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
) -> None:
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
        )
        row = customer_cases.add_customer(uow, spec=spec, now=now, actor=ACTOR)
        balance = cli_listings.balance_of(uow, row.id)
    console.print(f"customer {row.id} {row.name!r} created; wallet balance {balance}", markup=False)


@customers_app.command("list")
def customers_list(
    search: str | None = typer.Option(None, help="Part of the name."),
    limit: int = typer.Option(200, min=1),
    as_json: bool = JSON,
) -> None:
    with unit_of_work() as (uow, _):
        rows = cli_listings.customer_rows(uow, search=search, limit=limit)
    emit(rows, as_json=as_json, title="Customers")


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


@services_app.command("list")
def services_list(
    customer: str | None = typer.Option(None, help="Only this customer's services."),
    as_json: bool = JSON,
) -> None:
    with unit_of_work() as (uow, _):
        rows = cli_listings.service_rows(uow, customer_id=find_optional(customer_id_of, customer))
    emit(rows, as_json=as_json, title="Services")


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
def wallet_show(customer: str, limit: int = typer.Option(50, min=1), as_json: bool = JSON) -> None:
    with unit_of_work() as (uow, _):
        shown = cli_listings.wallet(uow, find(customer_id_of, customer), limit=limit)
    if as_json:
        emit_object(shown, as_json=True, title="")
        return
    emit(
        shown["postings"],
        as_json=False,
        title=f"Wallet of {shown['customer']}: balance {shown['balance']}",
    )

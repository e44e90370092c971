"""CLI for customers, their services and their wallet."""

from __future__ import annotations

from typing import Any

import typer
from sqlalchemy import select

from ispbill.adapters.db import event_log as events
from ispbill.adapters.db import ledger_store as ledger
from ispbill.adapters.db.models import (
    Customer,
    LedgerAccount,
    LedgerPosting,
    LedgerTransaction,
    Service,
)
from ispbill.domain.errors import ValidationError
from ispbill.domain.ledger import AccountRef
from ispbill.domain.money import Money
from ispbill.entrypoints.cli.base import (
    ACTOR,
    Cli,
    console,
    emit,
    emit_object,
    parse_day,
    unit_of_work,
)
from ispbill.use_cases.billing import plan_changes as change_cases
from ispbill.use_cases.catalog import customer_accounts as customer_cases
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
        help="Invoice cycle: daily, weekly, semimonthly, monthly, monthly_anniversary, days_30.",
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
    spec = customer_cases.NewCustomer(
        name=name,
        customer_class=customer_class,
        currency=currency,
        balance_control=balance_control,
        billing_cycle=cycle,
        anchor_day=anchor_day,
        billing_timezone=timezone,
        business_model=business_model,
        invoicing_mode=invoicing,
        use_credit_automatically=use_credit,
        credit_limit=credit_limit,
        minimum_balance=minimum_balance,
        available_funds=available_funds,
        funds_method=funds_method,
        reseller=reseller,
        locale=locale,
        grace_days=grace_days,
        notification_emails=notify or None,
        custom_data=parse_fields(field),
    )
    with unit_of_work() as (uow, now):
        row = customer_cases.add_customer(uow, spec=spec, now=now, actor=ACTOR)
        balance = ledger.wallet_balance(uow.session, row.id, row.currency)
    console.print(f"customer {row.id} {row.name!r} created; wallet balance {balance}", markup=False)


def customer_row(c: Customer, balance: Money) -> dict[str, Any]:
    return {
        "id": c.id,
        "name": c.name,
        "class": c.customer_class.name,
        "balance_control": c.balance_control,
        "currency": c.currency,
        "balance": str(balance),
        "cycle": c.cycle_kind,
        "timezone": c.billing_timezone,
        "status": c.status,
    }


@customers_app.command("list")
def customers_list(
    search: str | None = typer.Option(None, help="Part of the name."),
    limit: int = typer.Option(200, min=1),
    as_json: bool = JSON,
) -> None:
    with unit_of_work() as (uow, _):
        rows = [
            customer_row(s.customer, s.balance) | {"services": s.services}
            for s in customer_cases.list_customers(uow, search=search, limit=limit)
        ]
    emit(rows, as_json=as_json, title="Customers")


@customers_app.command("show")
def customers_show(customer: str, as_json: bool = JSON) -> None:
    with unit_of_work() as (uow, _):
        c = customer_cases.get_customer(uow, customer)
        balance = ledger.wallet_balance(uow.session, c.id, c.currency)
        detail = customer_row(c, balance) | {
            "business_model": c.business_model,
            "reseller": c.reseller.name if c.reseller else None,
            "invoicing_mode": c.invoicing_mode,
            "use_credit_automatically": c.use_credit_automatically,
            "credit_limit": str(Money(c.credit_limit_minor, c.currency))
            if c.credit_limit_minor is not None
            else None,
            "minimum_balance": str(Money(c.minimum_balance_minor, c.currency)),
            "anchor_day": c.cycle_anchor_day,
            "cycle_origin": c.cycle_origin,
            "grace_days": c.grace_days if c.grace_days is not None else c.customer_class.grace_days,
            "custom_data": c.custom_data,
            "created_at": c.created_at,
            "services": [
                service_row(s) for s in service_cases.list_services(uow, customer=str(c.id))
            ],
            "events": [
                {
                    "at": e.occurred_at,
                    "kind": e.kind,
                    "actor": e.actor,
                    "reason": e.reason,
                    "figures": e.figures,
                }
                for e in events.for_customer(uow, c.id, limit=20)
            ],
        }
    emit_object(detail, as_json=as_json, title=f"Customer {detail['name']}")


def service_row(s: Service) -> dict[str, Any]:
    return {
        "id": s.id,
        "customer_id": s.customer_id,
        "plan": s.plan.name,
        "state": s.state if not s.state_reason else f"{s.state} ({s.state_reason})",
        "active_from": s.active_from,
        "active_to": s.active_to,
        "period_months": s.period_months,
        "invoicing_mode": s.invoicing_mode,
        "throttle_kbps": (
            f"{s.throttle_down_kbps}/{s.throttle_up_kbps}" if s.throttle_down_kbps else None
        ),
    }


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
    spec = service_cases.NewService(
        customer=customer,
        plan=plan,
        active_from=parse_day(active_from, "active_from"),
        active_to=parse_day(active_to, "active_to"),
        period_months=period_months,
        invoicing_mode=invoicing,
    )
    with unit_of_work() as (uow, now):
        row = service_cases.add_service(uow, spec=spec, now=now, actor=ACTOR)
    console.print(f"service {row.id} created ({row.state}) from {row.active_from}")


@services_app.command("list")
def services_list(
    customer: str | None = typer.Option(None, help="Only this customer's services."),
    as_json: bool = JSON,
) -> None:
    with unit_of_work() as (uow, _):
        rows = [service_row(s) for s in service_cases.list_services(uow, customer=customer)]
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
            uow, service_ref=service, new_plan_ref=plan, effective=effective, now=now, actor=ACTOR
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
            uow, service_ref=service, effective=effective, now=now, actor=ACTOR, reason=reason
        )
        row = change_row(result)
    emit_object(row, as_json=as_json, title=f"Service {row['service']}: terminated")


@wallet_app.command("show")
def wallet_show(customer: str, limit: int = typer.Option(50, min=1), as_json: bool = JSON) -> None:
    with unit_of_work() as (uow, _):
        c = customer_cases.get_customer(uow, customer)
        code = AccountRef.wallet(c.id, c.currency).code
        postings = uow.session.execute(
            select(LedgerTransaction, LedgerPosting.amount_minor)
            .join(LedgerPosting, LedgerPosting.transaction_id == LedgerTransaction.id)
            .join(LedgerAccount, LedgerAccount.id == LedgerPosting.account_id)
            .where(LedgerAccount.code == code)
            .order_by(LedgerTransaction.effective_at.desc(), LedgerTransaction.id.desc())
            .limit(limit)
        ).all()
        balance = ledger.wallet_balance(uow.session, c.id, c.currency)
        rows = [
            {
                "transaction": t.id,
                "effective_at": t.effective_at,
                "kind": t.kind,
                "amount": str(Money(amount, c.currency)),
                "memo": t.memo,
            }
            for t, amount in postings
        ]
    if as_json:
        emit_object(
            {"customer": c.name, "balance": str(balance), "postings": rows}, as_json=True, title=""
        )
        return
    emit(rows, as_json=False, title=f"Wallet of {c.name}: balance {balance}")

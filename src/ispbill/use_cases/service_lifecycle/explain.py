"""``ispbill services why SERVICE``: one paragraph on why a service is in its state now (the
rule, the dates, the amounts) and what would restore it.

ARCHITECTURE section 2: "'why is this customer offline?' has a one-line answer". The answer is
built from the stored state, the last state event, the collection policy in force (asked
through the same pure ``domain/collection`` functions the engine uses) and the wallet; it
writes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import select

from ispbill.adapters.db import ledger_store as ledger
from ispbill.adapters.db import settings_store
from ispbill.adapters.db.invoice_store import OPEN
from ispbill.adapters.db.models import Customer, Event, Invoice, Service
from ispbill.adapters.db.unit_of_work import UnitOfWork
from ispbill.domain.calendar import local_date
from ispbill.domain.collection import (
    CollectionPolicy,
    CollectionStage,
    OpenInvoice,
    SettledWhen,
    figures,
    stage_start,
)
from ispbill.domain.invoicing import DocumentKind
from ispbill.domain.lifecycle import ServiceState, SuspensionReason
from ispbill.domain.money import Money
from ispbill.use_cases.collections.collection_policy import effective_policy, operator_document
from ispbill.use_cases.collections.suspensions import current_manual, find_service


@dataclass(frozen=True)
class Explanation:
    service_id: int
    state: str
    reason: str | None
    text: str
    facts: dict[str, Any] = field(default_factory=dict)


def open_invoices(uow: UnitOfWork, customer: Customer) -> list[OpenInvoice]:
    rows = uow.session.scalars(
        select(Invoice)
        .where(
            Invoice.customer_id == customer.id,
            Invoice.status.in_(OPEN),
            Invoice.kind == DocumentKind.INVOICE.value,
        )
        .order_by(Invoice.due_date, Invoice.id)
    )
    return [
        OpenInvoice(i.number, i.due_date, Money(i.gross_minor - i.paid_minor, i.currency))
        for i in rows
    ]


def _last_event(uow: UnitOfWork, service: Service) -> Event | None:
    return uow.session.scalars(
        select(Event)
        .where(
            Event.subject_type == "service",
            Event.subject_id == service.id,
            Event.kind.startswith("service."),
        )
        .order_by(Event.occurred_at.desc(), Event.id.desc())
        .limit(1)
    ).first()


def explain_service(uow: UnitOfWork, *, service_id: int, now: datetime) -> Explanation:
    service = find_service(uow, service_id)
    customer = uow.session.get(Customer, service.customer_id)
    assert customer is not None
    operator = settings_store.load(uow)
    policy = effective_policy(operator_document(uow), customer, customer.customer_class)
    invoices = open_invoices(uow, customer)
    today = local_date(now, customer.billing_timezone)
    facts = figures(policy, invoices=invoices, today=today, currency=customer.currency)
    balance = ledger.wallet_balance(uow.session, customer.id, customer.currency)
    last = _last_event(uow, service)
    since = (last.occurred_at if last else service.state_since).date().isoformat()
    by = last.actor if last else "unknown"
    info: dict[str, Any] = {
        "since": since,
        "actor": by,
        "balance": str(balance),
        "overdue_total": str(facts.overdue_total),
        "days_overdue": facts.days_overdue,
        "oldest_invoice": facts.oldest_invoice,
    }
    head = f"Service {service.id} ({customer.name})"
    state = ServiceState(service.state)
    reason = service.state_reason
    if state is ServiceState.SUSPENDED:
        text = _suspended(uow, service, customer, policy, invoices, today, info, operator)
    elif state is ServiceState.ACTIVE:
        text = _active(service, customer, policy, invoices, today, info, now)
    elif state is ServiceState.DEACTIVATED:
        text = (
            f"is deactivated since {service.deactivated_on or since}: the prepaid wallet "
            f"({balance}) could not cover the next period while keeping the minimum balance "
            f"{Money(customer.minimum_balance_minor, customer.currency)}; a payment or top-up "
            "that covers a whole period reactivates it at once."
        )
    elif state is ServiceState.PAUSED:
        text = (
            f"is paused since {since}: its 'active to' date {service.active_to} has passed; "
            "reactivating it (services reactivate) restarts billing and access."
        )
    elif state is ServiceState.PENDING:
        text = f"is pending: it starts on {service.active_from} when its first period is paid."
    else:
        text = f"ended on {since} ({reason or 'terminated'}); nothing restores an ended service."
    return Explanation(service.id, state.value, reason, f"{head} {text}", info)


def _suspended(
    uow: UnitOfWork,
    service: Service,
    customer: Customer,
    policy: CollectionPolicy,
    invoices: list[OpenInvoice],
    today: Any,
    info: dict[str, Any],
    operator: settings_store.OperatorSettings,
) -> str:
    reason = service.state_reason or SuspensionReason.NOT_SET.value
    name = operator.reason_name(reason)
    manual = current_manual(uow, service.id)
    since, by = info["since"], info["actor"]
    if manual is not None:
        window = f" until {manual.ends_on} (last day)" if manual.ends_on else ""
        repeat = ", repeating every year" if manual.repeat_yearly else ""
        invoicing = (
            "; invoicing is suspended too (those days are not charged)"
            if manual.suspend_invoicing
            else "; it keeps being invoiced"
        )
        info |= {"suspension": manual.id, "manual": True, "ends_on": manual.ends_on}
        restore = (
            f"it comes back by itself on {manual.ends_on} at midnight, or when an operator "
            f"lifts it (services lift {service.id})"
            if manual.ends_on
            else f"an operator lifting it (services lift {service.id}) restores it; "
            "a payment does not"
        )
        note = f" Note: {manual.note}." if manual.note else ""
        return (
            f"is suspended by hand for '{name}' since {manual.starts_on}, set by "
            f"{manual.actor}{window}{repeat}{invoicing}; {restore}.{note}"
        )
    if reason == SuspensionReason.NON_PAYER.value:
        rule = (
            f"invoice {info['oldest_invoice']} is unpaid {info['days_overdue']} days after its "
            f"due date (the policy suspends after {policy.days_after_due} whole days"
            + (f" plus {policy.grace_days} days of grace" if policy.grace_days else "")
            + (
                f", {policy.combine.value} with an overdue total of at least "
                f"{policy.minimum_outstanding}"
                if policy.minimum_outstanding
                else ""
            )
            + ")"
        )
        if not invoices or info["oldest_invoice"] is None:
            rule = "it was suspended as a non-payer and is waiting for the next review"
        settled = (
            f"brings the overdue total below {policy.minimum_outstanding}"
            if policy.settled_when == SettledWhen.BELOW_MINIMUM
            else f"pays the overdue {info['overdue_total']}"
        )
        fee = (
            f" (a reactivation fee of {policy.reactivation_fee} is then charged)"
            if policy.reactivation_fee
            else ""
        )
        return (
            f"is suspended as a non-payer since {since} by {by}: {rule}; overdue total "
            f"{info['overdue_total']}. A payment that {settled} restores it at once{fee}, "
            "or a promise to pay restores it for a few days."
        )
    if reason == SuspensionReason.CREDIT_LIMIT.value:
        limit = Money(customer.credit_limit_minor or 0, customer.currency)
        return (
            f"is blocked since {since}: the balance {info['balance']} reached the credit limit "
            f"{limit}; a payment that brings the balance above -{limit} restores it at once."
        )
    return (
        f"is suspended for '{name}' since {since} by {by}; an operator lifting it "
        f"(services lift {service.id}) restores it."
    )


def _active(
    service: Service,
    customer: Customer,
    policy: CollectionPolicy,
    invoices: list[OpenInvoice],
    today: Any,
    info: dict[str, Any],
    now: datetime,
) -> str:
    parts = [f"is active since {info['since']}"]
    if service.throttle_down_kbps is not None:
        parts.append(
            f"but throttled by collections to {service.throttle_down_kbps}/"
            f"{service.throttle_up_kbps} kbps (down/up) because {info['overdue_total']} is "
            "overdue; paying it restores full speed (a promise to pay does for a few days)"
        )
    if customer.promise_until is not None and customer.promise_until > now:
        parts.append(
            f"on a promise to pay until {customer.promise_until.isoformat()}; if the overdue "
            f"{info['overdue_total']} is still open then, it is throttled or suspended again"
        )
    elif policy.enabled and invoices:
        start = stage_start(
            policy,
            CollectionStage.SUSPEND,
            invoices=invoices,
            today=today,
            currency=customer.currency,
        )
        if start is not None:
            parts.append(
                f"; unpaid invoices would suspend it on {start} unless paid "
                f"(overdue now: {info['overdue_total']})"
            )
    return " ".join(parts).replace(" ;", ";") + "."

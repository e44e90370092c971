"""Use cases for services: one plan delivered to one customer from ``active_from``.

A new service is ``pending``: only the engine activates a service, because activating a prepaid
service means charging its first period from the wallet (CRM.COM, Splynx), and that decision
belongs to one place. UISP's multi-month billing periods are chosen per service from those its
plan enables; "active to" is optional and, when set, later pauses the service.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import select

from ispbill.adapters.db import event_log as events
from ispbill.adapters.db.lookups import by_id
from ispbill.adapters.db.models import Customer, Plan, Service
from ispbill.adapters.db.unit_of_work import UnitOfWork
from ispbill.domain.calendar import local_date, local_midnight
from ispbill.domain.customers import CustomerStatus, InvoicingMode
from ispbill.domain.dates import check_date
from ispbill.domain.errors import ValidationError
from ispbill.domain.lifecycle import ServiceEvent, ServiceState
from ispbill.use_cases.catalog.customer_accounts import choice


@dataclass(frozen=True)
class NewService:
    customer_id: int
    plan_id: int
    active_from: date | None = None
    active_to: date | None = None
    period_months: int | None = None
    invoicing_mode: str | None = None


def add_service(uow: UnitOfWork, *, spec: NewService, now: datetime, actor: str) -> Service:
    if spec.active_from is not None:
        check_date("active_from", spec.active_from)
    if spec.active_to is not None:
        check_date("active_to", spec.active_to)
    session = uow.session
    customer = by_id(session, Customer, spec.customer_id, field="customer")
    plan = by_id(session, Plan, spec.plan_id, field="plan")
    if customer.status != CustomerStatus.ACTIVE:
        raise ValidationError("customer", f"customer {customer.name!r} is inactive")
    if customer.archived_at is not None:
        raise ValidationError(
            "customer", f"customer {customer.name!r} is archived and takes no new services"
        )
    if plan.archived_at is not None:
        raise ValidationError("plan", f"plan {plan.name!r} is archived and takes no new services")
    if not plan.active:
        raise ValidationError("plan", f"plan {plan.name!r} is no longer sold")
    if plan.currency != customer.currency:
        raise ValidationError(
            "plan", f"plan is priced in {plan.currency}, the customer pays in {customer.currency}"
        )
    active_from = spec.active_from or local_date(now, customer.billing_timezone)
    if spec.active_to is not None and spec.active_to <= active_from:
        raise ValidationError("active_to", "must be after active_from")
    enabled = sorted(int(o["months"]) for o in plan.period_options) or [1]
    if spec.period_months is not None and spec.period_months not in enabled:
        raise ValidationError(
            "period_months",
            f"plan {plan.name!r} enables billing periods of {', '.join(map(str, enabled))} months",
        )
    mode = (
        choice(InvoicingMode, spec.invoicing_mode, "invoicing_mode")
        if spec.invoicing_mode
        else None
    )
    service = Service(
        customer_id=customer.id,
        plan_id=plan.id,
        active_from=active_from,
        active_to=spec.active_to,
        period_months=spec.period_months,
        invoicing_mode=mode.value if mode else None,
        state=ServiceState.PENDING.value,
        state_since=now,
        created_at=now,
        cycle_origin=active_from,
        anchor_day=active_from.day,
        next_due_at=local_midnight(active_from, customer.billing_timezone),
    )
    session.add(service)
    session.flush()
    events.record(
        uow,
        now=now,
        actor=actor,
        kind=ServiceEvent.CREATED.value,
        subject_type="service",
        subject_id=service.id,
        customer_id=customer.id,
        figures={
            "plan": plan.name,
            "active_from": active_from.isoformat(),
            "active_to": spec.active_to.isoformat() if spec.active_to else None,
        },
    )
    uow.commit()
    return service


def list_services(uow: UnitOfWork, *, customer_id: int | None = None) -> list[Service]:
    query = select(Service).order_by(Service.id)
    if customer_id is not None:
        row = by_id(uow.session, Customer, customer_id, field="customer")
        query = query.where(Service.customer_id == row.id)
    return list(uow.session.scalars(query))

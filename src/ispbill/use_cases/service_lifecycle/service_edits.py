"""Editing a service (issue 17): its first day, billing period in months and invoicing mode.

These cut the service's time into periods, so they change only between periods: before the
service has started (still pending, its first day not reached). A running service is refused
naming the rule; its plan changes through ``billing/plan_changes`` (prorated), its "active to"
through ``pauses.schedule_pause``, its end through termination. Validated as a new service is;
one ``service.updated`` event with the old and new values.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from ispbill.adapters.db.lookups import by_id
from ispbill.adapters.db.models import Service
from ispbill.adapters.db.unit_of_work import UnitOfWork
from ispbill.domain.calendar import local_date, local_midnight
from ispbill.domain.customers import InvoicingMode
from ispbill.domain.dates import check_date
from ispbill.domain.errors import ValidationError
from ispbill.domain.lifecycle import ServiceState
from ispbill.use_cases.catalog.customer_accounts import choice
from ispbill.use_cases.catalog.edit_log import diff, record_edit
from ispbill.use_cases.payments.recording import lock_customer


@dataclass(frozen=True)
class ServiceChanges:
    """``None`` leaves a field; ``invoicing_mode`` "" follows the customer's again."""

    active_from: date | None = None
    period_months: int | None = None
    invoicing_mode: str | None = None


def _values(service: Service) -> dict[str, Any]:
    return {
        "active_from": service.active_from.isoformat(),
        "period_months": service.period_months,
        "invoicing_mode": service.invoicing_mode,
    }


def update_service(
    uow: UnitOfWork, *, service_id: int, changes: ServiceChanges, now: datetime, actor: str
) -> Service:
    # a service never changes customer: read it, end that read, then take the lock first thing
    customer_id = by_id(uow.session, Service, service_id, field="service").customer_id
    uow.session.rollback()
    customer = lock_customer(uow, customer_id)
    service = by_id(uow.session, Service, service_id, field="service")
    today = local_date(now, customer.billing_timezone)
    before = _values(service)
    updates: dict[str, Any] = {}
    if changes.active_from is not None:
        check_date("active_from", changes.active_from)
        if changes.active_from < today:
            raise ValidationError("active_from", f"must not be before today ({today})")
        if service.active_to is not None and service.active_to <= changes.active_from:
            raise ValidationError("active_from", f"must be before active_to {service.active_to}")
        updates.update(
            active_from=changes.active_from,
            cycle_origin=changes.active_from,
            anchor_day=changes.active_from.day,
            next_due_at=local_midnight(changes.active_from, customer.billing_timezone),
        )
    if changes.period_months is not None:
        enabled = sorted(int(o["months"]) for o in service.plan.period_options) or [1]
        if changes.period_months not in enabled:
            raise ValidationError(
                "period_months",
                f"plan {service.plan.name!r} enables billing periods of "
                f"{', '.join(map(str, enabled))} months",
            )
        updates["period_months"] = changes.period_months if changes.period_months != 1 else None
    if changes.invoicing_mode is not None:
        updates["invoicing_mode"] = (
            choice(InvoicingMode, changes.invoicing_mode, "invoicing_mode").value
            if changes.invoicing_mode.strip()
            else None
        )
    changing = [k for k, v in updates.items() if getattr(service, k) != v]
    started = service.state != ServiceState.PENDING.value or service.active_from <= today
    if changing and started:
        first = next(k for k in ("active_from", "period_months", "invoicing_mode") if k in updates)
        raise ValidationError(
            first,
            f"changes only between billing periods: service {service.id} has started "
            f"({service.state} since {service.active_from}); change its plan, or terminate it "
            "and add a new one",
        )
    for column, value in updates.items():
        setattr(service, column, value)
    uow.session.flush()
    changed = diff(before, _values(service))
    if changed:
        record_edit(
            uow,
            kind="service.updated",
            subject_type="service",
            subject_id=service.id,
            customer_id=customer.id,
            changed=changed,
            now=now,
            actor=actor,
        )
    uow.commit()
    return service

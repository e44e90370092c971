"""Service lifecycle moves an operator (or the customer, through the portal) asks for.

Scheduling a pause (UISP "active to": the last day of service, after which the service is
paused) and reactivating a paused service (UISP "active to": "past that date the service is
paused ... can be reactivated by the customer"). The move itself is checked by the lifecycle
(``domain/lifecycle.check_transition``); billing restarts at once in the same unit of work, by
handing the customer to the engine (``engine.reevaluate_customer``), so a prepaid wallet that
cannot cover the new period deactivates the service there and then instead of granting access
that nobody paid for.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import select

from ispbill.adapters.db import event_log as events
from ispbill.adapters.db import settings_store
from ispbill.adapters.db.lookups import by_id
from ispbill.adapters.db.models import Customer, Service
from ispbill.adapters.db.unit_of_work import UnitOfWork
from ispbill.domain.billing import Outcome, ReactivationAnchor
from ispbill.domain.calendar import BillingCycle, local_date, local_midnight
from ispbill.domain.dates import check_date
from ispbill.domain.errors import ValidationError
from ispbill.domain.lifecycle import ServiceEvent, ServiceState, check_transition
from ispbill.use_cases.billing.reevaluation import reevaluate_customer
from ispbill.use_cases.network import access_changes


@dataclass(frozen=True)
class Reactivated:
    service: Service
    outcome: Outcome
    billing_from: date


@dataclass(frozen=True)
class CycleRestart:
    """The service's billing cycle from a reactivation on: the columns ``service_cycle`` reads
    (``billing.service_cycle``) and, for the record, the cycle they give. Self-service
    reactivation sets them so the periods it sells are whole (``self_service.restart_cycle``)."""

    start: date
    period_months: int | None
    cycle_origin: date
    anchor_day: int
    cycle: BillingCycle


def restart_day(service: Service, today: date) -> date:
    """The day a paused service's billing restarts: today, or the day it is already paid up
    to when that is later (it is never charged twice for the same days)."""
    return max(today, service.billed_until or service.active_from)


def reactivate_service(
    uow: UnitOfWork,
    *,
    service_id: int,
    active_to: date | None,
    now: datetime,
    actor: str,
    restart: CycleRestart | None = None,
) -> Reactivated:
    """Move a paused service back to active with a new ``active_to`` (or none), restart its
    billing today and charge what is due in the same transaction.

    Billing restarts on today's local date, or on the day the service is already paid up to
    when that is later (a service paused mid-period without a refund keeps what it paid for;
    it is never charged twice for the same days). With the operator's reactivation anchor at
    ``reactivation_date`` (the default) a cycle of the service's own (its plan's N-day cycle,
    or a multi-month billing period) starts afresh on that day, like a reactivated deactivated
    prepaid service; calendar and customer cycles keep their grid and the first period is
    prorated. ``restart`` (self-service reactivation) sets the cycle to bill on instead, whatever
    the anchor setting says; it must start on the day billing restarts.
    """
    if active_to is not None:
        check_date("active_to", active_to)
    uow.begin_write()  # before the first read: SQLite takes the write lock up front
    session = uow.session
    found = _service(uow, service_id)
    customer = session.get(Customer, found.customer_id)
    assert customer is not None  # a foreign key
    if uow.dialect == "postgresql":
        # the customer row lock is the per-customer mutex shared with the tick and payments
        session.execute(select(Customer.id).where(Customer.id == customer.id).with_for_update())
        session.refresh(customer)
        session.refresh(found)
    current = ServiceState(found.state)
    if current is not ServiceState.PAUSED:
        raise ValidationError(
            "state",
            f"service {found.id} is {current.value}; only a paused service can be reactivated",
        )
    check_transition(current, ServiceState.ACTIVE)
    zone = customer.billing_timezone
    today = local_date(now, zone)
    if active_to is not None and active_to < today:
        raise ValidationError(
            "active_to", f"must be today ({today}) or later, or left out for no end date"
        )
    if active_to is not None and active_to <= found.active_from:
        raise ValidationError("active_to", f"must be after active_from {found.active_from}")
    start = restart_day(found, today)
    if restart is not None and restart.start != start:
        raise ValidationError(
            "service", f"service {found.id} changed meanwhile (billing restarts on {start})"
        )
    operator = settings_store.load(uow)
    previous_to = found.active_to
    found.state = ServiceState.ACTIVE.value
    found.state_reason = None
    found.state_since = now
    found.active_to = active_to
    found.deactivated_on = None
    found.billed_until = start
    found.next_due_at = local_midnight(start, zone)
    figures: dict[str, object] = {}
    if restart is not None:
        found.period_months = restart.period_months
        found.cycle_origin = restart.cycle_origin
        found.anchor_day = restart.anchor_day
        figures = {"cycle": restart.cycle.describe(), "period_months": restart.period_months}
    elif operator.reactivation_anchor is ReactivationAnchor.REACTIVATION_DATE:
        found.cycle_origin = start
        found.anchor_day = start.day
    reactivated = events.record(
        uow,
        now=now,
        actor=actor,
        kind=f"service.{ServiceState.ACTIVE.value}",
        subject_type="service",
        subject_id=found.id,
        customer_id=customer.id,
        reason="reactivated",
        figures={
            "from": ServiceState.PAUSED.value,
            "previous_active_to": previous_to.isoformat() if previous_to else None,
            "active_to": active_to.isoformat() if active_to else None,
            "billing_from": start.isoformat(),
            **figures,
        },
    )
    access_changes.enqueue(uow, reactivated)
    session.flush()
    outcome = reevaluate_customer(uow, customer.id, now=now, actor=actor)
    uow.commit()
    session.refresh(found)
    return Reactivated(service=found, outcome=outcome, billing_from=start)


PAUSABLE = (
    ServiceState.PENDING,
    ServiceState.ACTIVE,
    ServiceState.SUSPENDED,
    ServiceState.DEACTIVATED,
)


def schedule_pause(
    uow: UnitOfWork,
    *,
    service_id: int,
    active_to: date | None,
    now: datetime,
    actor: str,
) -> Service:
    """Set (or clear, with None) a live service's "active to" day. The engine pauses the
    service at the local midnight after it, charging and refunding as the billing policy says
    (``refund_on_pause``); today's date pauses it tonight. The customer is re-evaluated at once
    so the service's next due instant follows the new day."""
    if active_to is not None:
        check_date("active_to", active_to)
    uow.begin_write()
    session = uow.session
    found = _service(uow, service_id)
    customer = session.get(Customer, found.customer_id)
    assert customer is not None  # a foreign key
    if uow.dialect == "postgresql":
        session.execute(select(Customer.id).where(Customer.id == customer.id).with_for_update())
        session.refresh(customer)
        session.refresh(found)
    current = ServiceState(found.state)
    if current not in PAUSABLE:
        raise ValidationError(
            "state", f"service {found.id} is {current.value}; only a live service can be paused"
        )
    today = local_date(now, customer.billing_timezone)
    if active_to is not None and active_to < today:
        raise ValidationError("active_to", f"must be today ({today}) or later")
    if active_to is not None and active_to <= found.active_from:
        raise ValidationError("active_to", f"must be after active_from {found.active_from}")
    previous_to = found.active_to
    found.active_to = active_to
    events.record(
        uow,
        now=now,
        actor=actor,
        kind=ServiceEvent.ACTIVE_TO_SET.value,
        subject_type="service",
        subject_id=found.id,
        customer_id=customer.id,
        reason="pause scheduled" if active_to else "pause cleared",
        figures={
            "previous_active_to": previous_to.isoformat() if previous_to else None,
            "active_to": active_to.isoformat() if active_to else None,
        },
    )
    session.flush()
    reevaluate_customer(uow, customer.id, now=now, actor=actor)
    uow.commit()
    session.refresh(found)
    return found


def _service(uow: UnitOfWork, service_id: int) -> Service:
    return by_id(uow.session, Service, service_id, field="service")

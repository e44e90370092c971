"""Scheduled changes (issue 17, item 3): a plan change or a termination planned for the end of
the current period or a future day, listed on the service, cancellable until it happens, and
carried out by the tick (``carry_out_due``, the tick's first pass, before any billing).

* A plan change names the new plan's first day (``effective_on``). When that day is where the
  service is billed up to (the end of the period, the common case), the plan is switched as
  it stands and the engine charges the new plan for the new period: no credit, no credit note.
  A day inside a period already charged is the ordinary mid-period change
  (``plan_changes.change_plan``: unused days credited, the new price charged).
* A termination names the service's **last day**; "now" is today (today counts as used). The
  service's "active to" becomes that day when it is scheduled, so the engine never bills past
  it; when the tick carries it out, ``plan_changes.terminate_service`` ends the service from the
  next day (crediting unused days paid in advance, if any). Cancelling restores the "active to"
  the service had before.
* One planned change per service at a time; a refusal when it is due (the plan was retired in
  between, say) marks it ``failed`` with the reason and an event, and the tick goes on.

Each step is an event: ``service.change_scheduled``, ``service.change_cancelled``,
``service.change_failed`` (and the change's own ``service.plan_changed`` / ``service.ended``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from sqlalchemy import select

from ispbill.adapters.db import event_log as events
from ispbill.adapters.db.billing_snapshots import load_snapshots, service_snapshot
from ispbill.adapters.db.lookups import MAX_ID, by_id
from ispbill.adapters.db.models import Plan, ScheduledChange, Service, TaxProfileRow
from ispbill.adapters.db.unit_of_work import UnitOfWork
from ispbill.domain.calendar import load_timezone, local_date, local_midnight, period_containing
from ispbill.domain.dates import check_date
from ispbill.domain.errors import IspbillError, NotFound, ValidationError
from ispbill.domain.lifecycle import ServiceEvent, ServiceState
from ispbill.domain.ranges import IdRange
from ispbill.domain.text import refuse_nul
from ispbill.use_cases.billing.plan_changes import change_plan, terminate_service
from ispbill.use_cases.billing.reevaluation import reevaluate_customer
from ispbill.use_cases.network import access_changes
from ispbill.use_cases.payments.recording import lock_customer, lock_service

log = logging.getLogger(__name__)
PLAN_CHANGE = "plan_change"
TERMINATION = "termination"
PLANNED, DONE, CANCELLED, FAILED = "planned", "done", "cancelled", "failed"
SCHEDULED_EVENT = "service.change_scheduled"
CANCELLED_EVENT = "service.change_cancelled"
FAILED_EVENT = "service.change_failed"
REASON_MAX = 500


@dataclass(frozen=True)
class ScheduledView:
    id: int
    service_id: int
    customer_id: int
    kind: str
    plan: str | None
    effective_on: date
    last_day: date | None  # a termination's last day of service
    due_at: datetime
    status: str
    reason: str
    note: str | None


def schedule_plan_change(
    uow: UnitOfWork,
    *,
    service_id: int,
    plan_id: int,
    on: date | None = None,
    now: datetime,
    actor: str,
    reason: str = "",
) -> ScheduledView:
    """Move the service to ``plan_id`` from ``on`` (a future day), or from the end of the
    current period when ``on`` is None."""
    service, today = _begin(uow, service_id, now=now)
    plan = by_id(uow.session, Plan, plan_id, field="plan")
    _check_plan(uow, service, plan)
    effective = _future_day(on, "on", today) if on is not None else _period_end(uow, service, today)
    return _store(uow, service, PLAN_CHANGE, plan, effective, now=now, actor=actor, reason=reason)


def schedule_termination(
    uow: UnitOfWork,
    *,
    service_id: int,
    last_day: date | None = None,
    at_period_end: bool = False,
    now: datetime,
    actor: str,
    reason: str = "",
) -> ScheduledView:
    """End the service after ``last_day`` (default today: today counts as used), or after the
    last day of the current period."""
    service, today = _begin(uow, service_id, now=now)
    if at_period_end:
        if last_day is not None:
            raise ValidationError("on", "give a last day or the end of the period, not both")
        effective = _period_end(uow, service, today)
    else:
        day = last_day or today
        check_date("on", day)
        if day < today:
            raise ValidationError("on", f"{day} is in the past; the last day is today or later")
        effective = day + timedelta(days=1)
    last = effective - timedelta(days=1)
    if last < service.active_from:
        raise ValidationError("on", f"{last} is before the service starts ({service.active_from})")
    return _store(uow, service, TERMINATION, None, effective, now=now, actor=actor, reason=reason)


def cancel_scheduled(
    uow: UnitOfWork, *, change_id: int, now: datetime, actor: str, reason: str = ""
) -> ScheduledView:
    """Cancel a planned change before it happens (a termination's "active to" is restored)."""
    service_id = _service_of_change(uow, change_id)
    service, _today = _begin(uow, service_id, now=now, allow_planned=True)
    row = uow.session.get(ScheduledChange, change_id)
    assert row is not None
    if row.status != PLANNED:
        raise ValidationError(
            "change", f"change {row.id} is {row.status}; only a planned one is cancelled"
        )
    row.status = CANCELLED
    row.closed_at = now
    row.closed_by = actor
    row.note = _reason(reason) or None
    if row.kind == TERMINATION and service.active_to == row.effective_on - timedelta(days=1):
        service.active_to = row.previous_active_to
        _reschedule(uow, service, now=now, actor=actor)
    events.record(
        uow,
        now=now,
        actor=actor,
        kind=CANCELLED_EVENT,
        subject_type="service",
        subject_id=service.id,
        customer_id=service.customer_id,
        reason=row.note or "",
        figures={"change": row.id, "kind": row.kind, "effective_on": row.effective_on.isoformat()},
    )
    uow.commit()
    return _view(uow, row)


def list_scheduled(uow: UnitOfWork, *, service_id: int) -> list[ScheduledView]:
    by_id(uow.session, Service, service_id, field="service")
    rows = uow.session.scalars(
        select(ScheduledChange)
        .where(ScheduledChange.service_id == service_id)
        .order_by(ScheduledChange.id.desc())
    )
    return [_view(uow, row) for row in rows]


def scheduled_of_customer(uow: UnitOfWork, customer_id: int) -> dict[int, list[ScheduledView]]:
    """The planned changes of a customer's services, by service (the console's page)."""
    found: dict[int, list[ScheduledView]] = {}
    rows = uow.session.scalars(
        select(ScheduledChange)
        .where(ScheduledChange.customer_id == customer_id, ScheduledChange.status == PLANNED)
        .order_by(ScheduledChange.due_at)
    )
    for row in rows:
        found.setdefault(row.service_id, []).append(_view(uow, row))
    return found


def change_customer(uow: UnitOfWork, change_id: int) -> int:
    """The customer a change belongs to (for scope checks at the edge)."""
    found = (
        uow.session.scalar(
            select(ScheduledChange.customer_id).where(ScheduledChange.id == change_id)
        )
        if 0 < change_id <= MAX_ID
        else None
    )
    if found is None:
        raise NotFound("change", change_id, field="change")
    return found


# -- the tick's pass ------------------------------------------------------------------------------


def carry_out_due(
    uow_factory: Callable[[], UnitOfWork],
    *,
    now: datetime,
    actor: str,
    within: IdRange | None = None,
) -> int:
    """Carry out every planned change due at ``now`` (of the customers ``within`` a range of
    ids, when given: a scheduled tick's range job), each in its own unit of work; returns how
    many were done. A refused one is marked failed (with an event) and the rest go on."""
    query = (
        select(ScheduledChange.id)
        .where(ScheduledChange.status == PLANNED, ScheduledChange.due_at <= now)
        .order_by(ScheduledChange.due_at, ScheduledChange.id)
    )
    if within is not None:
        query = query.join(Service, Service.id == ScheduledChange.service_id).where(
            Service.customer_id.between(within.low, within.high)
        )
    with uow_factory() as uow:
        due = list(uow.session.scalars(query))
    done = 0
    for change_id in due:
        try:
            with uow_factory() as uow:
                _carry_out(uow, change_id, now=now, actor=actor)
            done += 1
        except IspbillError as exc:
            log.info("scheduled change %s refused: %s", change_id, exc)
            with uow_factory() as uow:
                _fail(uow, change_id, str(exc), now=now, actor=actor)
    return done


def _carry_out(uow: UnitOfWork, change_id: int, *, now: datetime, actor: str) -> None:
    session = uow.session
    row = session.get(ScheduledChange, change_id)
    if row is None or row.status != PLANNED:
        return
    service = session.get(Service, row.service_id)
    assert service is not None
    plan_id, effective, kind = row.plan_id, row.effective_on, row.kind
    session.rollback()
    if kind == TERMINATION:
        if service.state == ServiceState.ENDED.value:
            raise ValidationError("service", f"service {service.id} has already ended")
        terminate_service(
            uow,
            service_id=row.service_id,
            effective=effective,
            now=now,
            actor=actor,
            reason=row.reason or "terminated",
        )
    else:
        assert plan_id is not None
        if not _switch_at_boundary(uow, row.service_id, plan_id, effective, now=now, actor=actor):
            change_plan(
                uow,
                service_id=row.service_id,
                plan_id=plan_id,
                effective=effective,
                now=now,
                actor=actor,
            )
    session.rollback()  # the change committed; a read may have begun since
    uow.begin_write()
    row = session.get(ScheduledChange, change_id)
    assert row is not None
    row.status = DONE
    row.closed_at = now
    row.closed_by = actor
    uow.commit()


def _switch_at_boundary(
    uow: UnitOfWork, service_id: int, plan_id: int, effective: date, *, now: datetime, actor: str
) -> bool:
    """At the period's end nothing is charged beyond ``effective``: the plan switches as it
    stands and the engine bills the new plan from there. False when the period past it is
    already charged (a payment's re-evaluation may have been first): the prorated change then."""
    session = uow.session
    customer_id = session.scalar(select(Service.customer_id).where(Service.id == service_id))
    assert customer_id is not None
    session.rollback()  # the lock's transaction must be the first (SQLite: BEGIN IMMEDIATE)
    customer = lock_customer(uow, customer_id)
    service = session.get(Service, service_id)
    assert service is not None
    if service.billed_until != effective or service.state == ServiceState.ENDED.value:
        session.rollback()
        return False
    plan = by_id(session, Plan, plan_id, field="plan")
    _check_plan(uow, service, plan)
    old = service.plan
    service.plan_id = plan.id
    event = events.record(
        uow,
        now=now,
        actor=actor,
        kind=ServiceEvent.PLAN_CHANGED.value,
        subject_type="service",
        subject_id=service.id,
        customer_id=customer.id,
        reason="scheduled",
        figures={
            "from_plan": old.name,
            "to_plan": plan.name,
            "effective": effective.isoformat(),
            "at_period_end": True,
        },
    )
    access_changes.enqueue(uow, event)
    uow.commit()
    return True


def _fail(uow: UnitOfWork, change_id: int, message: str, *, now: datetime, actor: str) -> None:
    uow.begin_write()
    row = uow.session.get(ScheduledChange, change_id)
    if row is None or row.status != PLANNED:
        return
    row.status = FAILED
    row.closed_at = now
    row.closed_by = actor
    row.note = message[:REASON_MAX]
    events.record(
        uow,
        now=now,
        actor=actor,
        kind=FAILED_EVENT,
        subject_type="service",
        subject_id=row.service_id,
        customer_id=row.customer_id,
        reason=row.note,
        figures={"change": row.id, "kind": row.kind, "effective_on": row.effective_on.isoformat()},
    )
    uow.commit()


# -- the steps ------------------------------------------------------------------------------------


def _begin(
    uow: UnitOfWork, service_id: int, *, now: datetime, allow_planned: bool = False
) -> tuple[Service, date]:
    """Lock the service's customer, load the service (never an ended one) and its local today."""
    customer, service = lock_service(uow, service_id)
    if service.state == ServiceState.ENDED.value:
        raise ValidationError("service", f"service {service.id} has ended")
    if not allow_planned:
        planned = uow.session.scalar(
            select(ScheduledChange.id).where(
                ScheduledChange.service_id == service.id, ScheduledChange.status == PLANNED
            )
        )
        if planned is not None:
            raise ValidationError(
                "service",
                f"service {service.id} already has planned change {planned}; cancel it first",
            )
    return service, local_date(now, load_timezone(customer.billing_timezone))


def _check_plan(uow: UnitOfWork, service: Service, plan: Plan) -> None:
    """The rules of a plan change that do not depend on the day (``change_plan``'s own)."""
    customer = service.customer
    if plan.id == service.plan_id:
        raise ValidationError("plan", f"service {service.id} is already on plan {plan.name!r}")
    if not plan.active:
        raise ValidationError("plan", f"plan {plan.name!r} is no longer sold")
    if plan.currency != customer.currency:
        raise ValidationError(
            "plan",
            f"plan {plan.name!r} is priced in {plan.currency}, the customer pays in "
            f"{customer.currency}",
        )
    months = service.period_months
    if months and months not in {int(o["months"]) for o in plan.period_options}:
        raise ValidationError(
            "plan",
            f"plan {plan.name!r} does not offer the service's billing period of {months} months",
        )
    taxes = {row.id: row for row in uow.session.scalars(select(TaxProfileRow))}
    old = service_snapshot(service, customer, service.plan, None, taxes).terms.cycle
    new = service_snapshot(service, customer, plan, None, taxes).terms.cycle
    if (old.kind, old.n) != (new.kind, new.n):
        raise ValidationError(
            "plan", f"plan {plan.name!r} bills on another cycle; another cycle is a new service"
        )


def _future_day(day: date, field: str, today: date) -> date:
    check_date(field, day)
    if day <= today:
        raise ValidationError(
            field, f"{day} is not in the future; a scheduled change starts after today ({today})"
        )
    return day


def _period_end(uow: UnitOfWork, service: Service, today: date) -> date:
    """The first day after the current period: where it is billed up to when that is ahead,
    else the end of the period holding today."""
    if service.billed_until is not None and service.billed_until > today:
        return service.billed_until
    [(_, services)] = load_snapshots(uow.session, [service.customer_id])
    found = next((s for s in services if s.id == service.id), None)
    if found is None:
        raise ValidationError("service", f"service {service.id} is no longer billed")
    return period_containing(found.terms.cycle, today).end


def _reason(text: str) -> str:
    cleaned = refuse_nul(text or "", "reason").strip()
    if len(cleaned) > REASON_MAX:
        raise ValidationError("reason", f"at most {REASON_MAX} characters")
    return cleaned


def _store(
    uow: UnitOfWork,
    service: Service,
    kind: str,
    plan: Plan | None,
    effective: date,
    *,
    now: datetime,
    actor: str,
    reason: str,
) -> ScheduledView:
    customer = service.customer
    zone = load_timezone(customer.billing_timezone)
    row = ScheduledChange(
        service_id=service.id,
        customer_id=customer.id,
        kind=kind,
        plan_id=plan.id if plan else None,
        effective_on=effective,
        due_at=local_midnight(effective, zone),
        status=PLANNED,
        reason=_reason(reason),
        previous_active_to=service.active_to,
        created_at=now,
        actor=actor,
    )
    uow.session.add(row)
    last_day = effective - timedelta(days=1)
    if (
        kind == TERMINATION
        and (service.active_to is None or service.active_to > last_day)
        # storage keeps "active to" after the first day; a one-day service ends by the tick
        and last_day > service.active_from
    ):
        service.active_to = last_day  # the engine never bills past the last day
        _reschedule(uow, service, now=now, actor=actor)
    uow.session.flush()
    events.record(
        uow,
        now=now,
        actor=actor,
        kind=SCHEDULED_EVENT,
        subject_type="service",
        subject_id=service.id,
        customer_id=customer.id,
        reason=row.reason,
        figures={
            "change": row.id,
            "kind": kind,
            "plan": plan.name if plan else None,
            "effective_on": effective.isoformat(),
            "last_day": last_day.isoformat() if kind == TERMINATION else None,
            "due_at": row.due_at.isoformat(),
        },
    )
    uow.commit()
    return _view(uow, row)


def _reschedule(uow: UnitOfWork, service: Service, *, now: datetime, actor: str) -> None:
    """A changed "active to": the engine re-evaluates the customer, so the service's next due
    instant (and anything due now) follows it."""
    uow.session.flush()
    reevaluate_customer(uow, service.customer_id, now=now, actor=actor)


def _service_of_change(uow: UnitOfWork, change_id: int) -> int:
    found = (
        uow.session.scalar(
            select(ScheduledChange.service_id).where(ScheduledChange.id == change_id)
        )
        if 0 < change_id <= MAX_ID
        else None
    )
    if found is None:
        raise NotFound("change", change_id, field="change")
    return found


def _view(uow: UnitOfWork, row: ScheduledChange) -> ScheduledView:
    plan = uow.session.get(Plan, row.plan_id) if row.plan_id else None
    return ScheduledView(
        id=row.id,
        service_id=row.service_id,
        customer_id=row.customer_id,
        kind=row.kind,
        plan=plan.name if plan else None,
        effective_on=row.effective_on,
        last_day=row.effective_on - timedelta(days=1) if row.kind == TERMINATION else None,
        due_at=row.due_at,
        status=row.status,
        reason=row.reason,
        note=row.note,
    )

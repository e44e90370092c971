"""A customer's billing timezone, cycle or invoicing mode changed while a service runs takes
effect from the customer's **next billing period** (issue 17, item 1).

Those three cut time into periods: changed in the middle of a charged period they would bill a
day twice or never. So ``customer_edits.update_customer`` applies them at once only while no
service runs; otherwise it records a pending change here (``plan_change``): the new value, the
first day of the customer's next period (computed in its current timezone and cycle) and that
day's local midnight. One planned change per field: a new edit replaces it (the old one is
cancelled), an edit back to the current value just cancels it.

The tick applies a due change in a pass of its own before it bills the customer's next period
(``apply_due``, run first in the tick and again after the charges, for ``within`` a range of
customer ids like the other passes). A change waits while a service of the customer still has
a charge due for the old period (invoicing in arrears bills the period that ends at the
boundary in that same tick, so the second pass applies it); then the customer is re-evaluated
in the same transaction, so every next charge is due on the new terms.

Events: ``customer.change_planned``, ``customer.change_applied``, ``customer.change_cancelled``,
each with the field and its old and new value.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import func, select

from ispbill.adapters.db import event_log as events
from ispbill.adapters.db.lookups import MAX_ID
from ispbill.adapters.db.models import Customer, CustomerPendingChange, Service
from ispbill.adapters.db.unit_of_work import UnitOfWork
from ispbill.domain.calendar import (
    CycleKind,
    local_date,
    local_midnight,
    period_containing,
)
from ispbill.domain.errors import NotFound, ValidationError
from ispbill.domain.lifecycle import ServiceState
from ispbill.domain.plans import instantiate_cycle
from ispbill.domain.ranges import IdRange
from ispbill.use_cases.billing.reevaluation import reevaluate_customer
from ispbill.use_cases.payments.recording import lock_customer

log = logging.getLogger(__name__)
PLANNED, DONE, CANCELLED = "planned", "done", "cancelled"
PLANNED_EVENT = "customer.change_planned"
APPLIED_EVENT = "customer.change_applied"
CANCELLED_EVENT = "customer.change_cancelled"
REASON_MAX = 500
# a service in these states is billed period by period
_BILLING_STATES = (ServiceState.ACTIVE.value, ServiceState.SUSPENDED.value)


@dataclass(frozen=True)
class PendingView:
    id: int
    customer_id: int
    field: str
    old_value: str
    new_value: str
    effective_on: date
    due_at: datetime
    status: str
    reason: str

    def as_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "customer_id": self.customer_id,
            "field": self.field,
            "old_value": self.old_value,
            "new_value": self.new_value,
            "effective_on": self.effective_on.isoformat(),
            "due_at": self.due_at.isoformat(),
            "status": self.status,
            "reason": self.reason,
        }


def next_period_start(customer: Customer, now: datetime) -> date:
    """The first day of the customer's next billing period, in its current timezone and cycle."""
    cycle = instantiate_cycle(
        CycleKind(customer.cycle_kind),
        customer.cycle_n,
        customer.cycle_origin,
        anchor_day=customer.cycle_anchor_day,
    )
    return period_containing(cycle, local_date(now, customer.billing_timezone)).end


def _boundary(effective: date, zone: str, columns: Mapping[str, Any]) -> datetime:
    """When the next period begins: its first day's local midnight; for a new timezone the
    earlier of the two midnights (the period's dates are the same in both zones, a zone
    further east starts them sooner)."""
    starts = [local_midnight(effective, zone)]
    if "billing_timezone" in columns:
        starts.append(local_midnight(effective, columns["billing_timezone"]))
    return min(starts)


def _view(row: CustomerPendingChange) -> PendingView:
    return PendingView(
        id=row.id,
        customer_id=row.customer_id,
        field=row.field,
        old_value=row.old_value,
        new_value=row.new_value,
        effective_on=row.effective_on,
        due_at=row.due_at,
        status=row.status,
        reason=row.reason,
    )


def _figures(row: CustomerPendingChange) -> dict[str, Any]:
    return {
        "change": row.id,
        "field": row.field,
        "old": row.old_value,
        "new": row.new_value,
        "effective_on": row.effective_on.isoformat(),
    }


def _planned_of(uow: UnitOfWork, customer_id: int, field: str) -> CustomerPendingChange | None:
    return uow.session.scalars(
        select(CustomerPendingChange).where(
            CustomerPendingChange.customer_id == customer_id,
            CustomerPendingChange.field == field,
            CustomerPendingChange.status == PLANNED,
        )
    ).first()


def _close(
    uow: UnitOfWork, row: CustomerPendingChange, *, now: datetime, actor: str, reason: str
) -> None:
    row.status = CANCELLED
    row.closed_at = now
    row.closed_by = actor
    events.record(
        uow,
        now=now,
        actor=actor,
        kind=CANCELLED_EVENT,
        subject_type="customer",
        subject_id=row.customer_id,
        customer_id=row.customer_id,
        reason=reason,
        figures=_figures(row),
    )


def drop_planned(
    uow: UnitOfWork, customer: Customer, field: str, *, now: datetime, actor: str, reason: str
) -> None:
    """Cancel the planned change of ``field``, if any (inside the caller's write)."""
    row = _planned_of(uow, customer.id, field)
    if row is not None:
        _close(uow, row, now=now, actor=actor, reason=reason)


def plan_change(
    uow: UnitOfWork,
    customer: Customer,
    *,
    field: str,
    columns: Mapping[str, Any],
    old_value: str,
    new_value: str,
    now: datetime,
    actor: str,
    reason: str = "",
) -> PendingView:
    """Record ``field`` to become ``new_value`` from the customer's next period, inside the
    caller's write (which holds the customer's lock); replaces a planned change of that field."""
    reason = reason.strip()[:REASON_MAX]
    drop_planned(uow, customer, field, now=now, actor=actor, reason="replaced by a new edit")
    effective = next_period_start(customer, now)
    row = CustomerPendingChange(
        customer_id=customer.id,
        field=field,
        columns=dict(columns),
        old_value=old_value,
        new_value=new_value,
        effective_on=effective,
        due_at=_boundary(effective, customer.billing_timezone, columns),
        status=PLANNED,
        reason=reason,
        created_at=now,
        actor=actor,
    )
    uow.session.add(row)
    uow.session.flush()
    events.record(
        uow,
        now=now,
        actor=actor,
        kind=PLANNED_EVENT,
        subject_type="customer",
        subject_id=customer.id,
        customer_id=customer.id,
        reason=reason,
        figures=_figures(row),
    )
    return _view(row)


def pending_of_customer(uow: UnitOfWork, customer_id: int) -> list[PendingView]:
    """A customer's planned changes, the soonest first."""
    rows = uow.session.scalars(
        select(CustomerPendingChange)
        .where(
            CustomerPendingChange.customer_id == customer_id,
            CustomerPendingChange.status == PLANNED,
        )
        .order_by(CustomerPendingChange.due_at, CustomerPendingChange.id)
    )
    return [_view(row) for row in rows]


def change_customer(uow: UnitOfWork, change_id: int) -> int:
    """The customer a pending change belongs to (for scope checks at the edge)."""
    found = (
        uow.session.scalar(
            select(CustomerPendingChange.customer_id).where(CustomerPendingChange.id == change_id)
        )
        if 0 < change_id <= MAX_ID
        else None
    )
    if found is None:
        raise NotFound("change", change_id, field="change")
    return found


def cancel_change(
    uow: UnitOfWork, *, change_id: int, now: datetime, actor: str, reason: str = ""
) -> PendingView:
    """Cancel a planned change before the tick applies it; the customer keeps its value."""
    customer_id = change_customer(uow, change_id)
    uow.session.rollback()
    lock_customer(uow, customer_id)
    row = uow.session.get(CustomerPendingChange, change_id)
    assert row is not None
    if row.status != PLANNED:
        raise ValidationError(
            "change", f"change {row.id} is {row.status}; only a planned one is cancelled"
        )
    _close(uow, row, now=now, actor=actor, reason=reason.strip()[:REASON_MAX])
    uow.commit()
    return _view(row)


# -- the tick's pass ------------------------------------------------------------------------------


def apply_due(
    uow_factory: Callable[[], UnitOfWork],
    *,
    now: datetime,
    actor: str,
    within: IdRange | None = None,
) -> int:
    """Apply every planned change due at ``now`` (of the customers ``within`` a range of ids,
    when given), each in its own unit of work; returns how many were applied. A change whose
    customer still has a charge of the old period due waits for the next pass."""
    query = (
        select(CustomerPendingChange.id)
        .where(CustomerPendingChange.status == PLANNED, CustomerPendingChange.due_at <= now)
        .order_by(CustomerPendingChange.due_at, CustomerPendingChange.id)
    )
    if within is not None:
        query = query.where(CustomerPendingChange.customer_id.between(within.low, within.high))
    with uow_factory() as uow:
        due = list(uow.session.scalars(query))
    applied = 0
    for change_id in due:
        with uow_factory() as uow:
            applied += _apply(uow, change_id, now=now, actor=actor)
    return applied


def _old_period_due(uow: UnitOfWork, customer_id: int, effective: date, now: datetime) -> bool:
    """A running service of the customer still has a charge due (now or before) for a period
    before ``effective``: in arrears, the period ending at the boundary."""
    found = uow.session.scalar(
        select(Service.id).where(
            Service.customer_id == customer_id,
            Service.state.in_(_BILLING_STATES),
            func.coalesce(Service.billed_until, Service.active_from) < effective,
            Service.next_due_at <= now,
        )
    )
    return found is not None


def _apply(uow: UnitOfWork, change_id: int, *, now: datetime, actor: str) -> int:
    customer_id = uow.session.scalar(
        select(CustomerPendingChange.customer_id).where(CustomerPendingChange.id == change_id)
    )
    uow.session.rollback()  # the lock's transaction must be the first (SQLite: BEGIN IMMEDIATE)
    if customer_id is None:
        return 0
    customer = lock_customer(uow, customer_id)
    row = uow.session.get(CustomerPendingChange, change_id)
    if row is None or row.status != PLANNED or row.due_at > now:
        uow.session.rollback()
        return 0
    if _old_period_due(uow, customer.id, row.effective_on, now):
        uow.session.rollback()
        return 0
    for column, value in row.columns.items():
        setattr(customer, column, date.fromisoformat(value) if column == "cycle_origin" else value)
    row.status = DONE
    row.closed_at = now
    row.closed_by = actor
    uow.session.flush()
    events.record(
        uow,
        now=now,
        actor=actor,
        kind=APPLIED_EVENT,
        subject_type="customer",
        subject_id=customer.id,
        customer_id=customer.id,
        reason=row.reason,
        figures=_figures(row),
    )
    # every next charge of the customer is due on the new terms (and what is due now is billed)
    reevaluate_customer(uow, customer.id, now=now, actor=actor)
    uow.commit()
    log.info("customer %s: %s is now %s", customer.id, row.field, row.new_value)
    return 1

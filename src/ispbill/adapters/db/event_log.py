"""The event log: every state change with actor, reason and the figures behind it.

ARCHITECTURE section 2: "Every transition is an event with time, actor (admin, customer, engine,
gateway), reason and the figures behind it (balance, amount due, days overdue), so 'why is this
customer offline?' has a one-line answer."
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import select

from ispbill.adapters.db import outbox
from ispbill.adapters.db.models import Event, Service
from ispbill.adapters.db.unit_of_work import UnitOfWork


def record(
    uow: UnitOfWork,
    *,
    now: datetime,
    actor: str,
    kind: str,
    subject_type: str,
    subject_id: int,
    customer_id: int | None = None,
    reason: str = "",
    figures: Mapping[str, Any] | None = None,
) -> Event:
    event = Event(
        occurred_at=now,
        actor=actor,
        kind=kind,
        subject_type=subject_type,
        subject_id=subject_id,
        customer_id=customer_id,
        reason=reason,
        figures=dict(figures or {}),
    )
    uow.session.add(event)
    if outbox.changes_access(kind, subject_type):
        # the network must follow: the command commits (or rolls back) with the event
        outbox.enqueue(uow.session, service_id=subject_id, kind=kind, reason=reason, now=now)
    return event


def move_service(
    uow: UnitOfWork,
    service: Service,
    *,
    to: str,
    reason: str | None,
    now: datetime,
    actor: str,
    event_reason: str,
    figures: Mapping[str, Any],
) -> None:
    """Put a service in state ``to`` (with ``reason``) and record the ``service.<to>`` event,
    whose figures say which state it left: the one shape every lifecycle move shares."""
    previous = service.state
    service.state = to
    service.state_reason = reason
    service.state_since = now
    record(
        uow,
        now=now,
        actor=actor,
        kind=f"service.{to}",
        subject_type="service",
        subject_id=service.id,
        customer_id=service.customer_id,
        reason=event_reason,
        figures={"from": previous, **figures},
    )


def for_customer(uow: UnitOfWork, customer_id: int, limit: int = 100) -> list[Event]:
    return list(
        uow.session.scalars(
            select(Event)
            .where(Event.customer_id == customer_id)
            .order_by(Event.occurred_at.desc(), Event.id.desc())
            .limit(limit)
        )
    )

"""The event log: every state change with actor, reason and the figures behind it.

ARCHITECTURE section 2: "Every transition is an event with time, actor (admin, customer, engine,
gateway), reason and the figures behind it (balance, amount due, days overdue), so 'why is this
customer offline?' has a one-line answer."

``record`` only records. What an event sets in motion is the use case's own explicit step next
to it: a CoA command and a fresh RADIUS answer for an access change
(``use_cases/network/access_changes.py``), an e-mail (``use_cases/notifications/mail_outbox.py``).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import select

from ispbill.adapters.db.models import Event
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
    return event


def for_customer(uow: UnitOfWork, customer_id: int, limit: int = 100) -> list[Event]:
    return list(
        uow.session.scalars(
            select(Event)
            .where(Event.customer_id == customer_id)
            .order_by(Event.occurred_at.desc(), Event.id.desc())
            .limit(limit)
        )
    )

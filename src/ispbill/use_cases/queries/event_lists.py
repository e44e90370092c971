"""Read model of the event log for the API (the console's filters,
``operator_lists.events_query``), newest first. A scoped reader sees the events of its own
customers only; operator-wide events (of no customer) are then left out."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from ispbill.adapters.db.keyset import Slice, keyset_slice, mapped
from ispbill.adapters.db.models import Event
from ispbill.adapters.db.unit_of_work import UnitOfWork
from ispbill.use_cases.queries.dashboard import Scope
from ispbill.use_cases.queries.operator_lists import EventFilter, events_query


@dataclass(frozen=True)
class EventView:
    id: int
    occurred_at: datetime
    actor: str
    kind: str
    subject_type: str
    subject_id: int
    customer_id: int | None
    reason: str
    figures: dict[str, Any]


def event_view(row: Event) -> EventView:
    return EventView(
        id=row.id,
        occurred_at=row.occurred_at,
        actor=row.actor,
        kind=row.kind,
        subject_type=row.subject_type,
        subject_id=row.subject_id,
        customer_id=row.customer_id,
        reason=row.reason,
        figures=dict(row.figures or {}),
    )


def list_events(
    uow: UnitOfWork, scope: Scope, wanted: EventFilter, *, after: int | None, limit: int
) -> Slice[EventView]:
    found = keyset_slice(
        uow.session,
        events_query(scope, wanted),
        Event.id,
        after=after,
        limit=limit,
        newest_first=True,
    )
    return mapped(found, lambda rows: [event_view(r) for r in rows])

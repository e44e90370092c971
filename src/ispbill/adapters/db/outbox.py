"""The enforcement outbox: access changes written in the same transaction as their events.

ARCHITECTURE invariant 6: "every state change that alters access reaches the network through
the outbox, retried until acknowledged". Rather than asking every use case to remember, the
outbox rows are derived where events are written: ``events.record`` and the tick's bulk event
writer (``billing_store``) both call in here, so every path that moves a service, including
future ones, is covered. A row names the service and the event; what to send is worked out by
the worker from the committed state when it sends (``use_cases/network/enforcement.py``), so a burst of
changes never replays a stale answer. On PostgreSQL a NOTIFY (delivered at commit) wakes the
worker at once.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import text
from sqlalchemy.orm import Session

from ispbill.adapters.db import bulk
from ispbill.adapters.db.models import OutboxCommand, table_of
from ispbill.domain.lifecycle import ServiceEvent
from ispbill.domain.radius import CommandStatus

CHANNEL = "ispbill_outbox"
# services whose precomputed RADIUS answers must be rebuilt before this transaction commits
# (``use_cases/network/radius_answers.py``): {"services": set of ids or None for all, "now": latest instant}
DIRTY_KEY = "ispbill_radius_dirty"
ACCESS_EVENT_KINDS = frozenset(
    {
        ServiceEvent.ACTIVE.value,
        ServiceEvent.SUSPENDED.value,
        ServiceEvent.DEACTIVATED.value,
        ServiceEvent.PAUSED.value,
        ServiceEvent.ENDED.value,
        ServiceEvent.PLAN_CHANGED.value,
        ServiceEvent.THROTTLED.value,
        ServiceEvent.UNTHROTTLED.value,
        ServiceEvent.FUP_THROTTLED.value,
        ServiceEvent.FUP_RESET.value,
    }
)


def changes_access(kind: str, subject_type: str) -> bool:
    return subject_type == "service" and kind in ACCESS_EVENT_KINDS


def enqueue(session: Session, *, service_id: int, kind: str, reason: str, now: datetime) -> None:
    """One command for one access-changing event, in the caller's transaction."""
    session.add(
        OutboxCommand(
            service_id=service_id,
            event_kind=kind,
            reason=reason,
            created_at=now,
            status=CommandStatus.PENDING.value,
            attempts=0,
            next_attempt_at=now,
            results={},
        )
    )
    notify(session)
    mark_dirty(session, [service_id], now)


def enqueue_from_event_rows(session: Session, rows: Iterable[Mapping[str, Any]]) -> int:
    """Commands for the access-changing rows of a bulk event insert (the tick's writer)."""
    commands = [
        {
            "service_id": row["subject_id"],
            "event_kind": row["kind"],
            "reason": row.get("reason") or "",
            "created_at": row["occurred_at"],
            "status": CommandStatus.PENDING.value,
            "attempts": 0,
            "next_attempt_at": row["occurred_at"],
            "completed_at": None,
            "last_error": None,
            "results": {},
        }
        for row in rows
        if changes_access(row["kind"], row["subject_type"])
    ]
    if commands:
        bulk.insert_rows(session.connection(), table_of(OutboxCommand), commands)
        notify(session)
        mark_dirty(
            session, {c["service_id"] for c in commands}, max(c["created_at"] for c in commands)
        )
    return len(commands)


def mark_dirty(session: Session, service_ids: Iterable[int] | None, now: datetime) -> None:
    """Rebuild these services' precomputed answers (``None``: every service) at commit."""
    dirty = session.info.setdefault(DIRTY_KEY, {"services": set(), "now": now})
    dirty["now"] = max(dirty["now"], now)
    if service_ids is None or dirty["services"] is None:
        dirty["services"] = None
    else:
        dirty["services"].update(service_ids)


def notify(session: Session) -> None:
    """Wake a listening worker when this transaction commits (PostgreSQL only; SQLite workers
    poll)."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_notify(:channel, '')"), {"channel": CHANNEL})

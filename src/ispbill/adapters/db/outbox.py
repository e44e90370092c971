"""The enforcement outbox: access changes written in the same transaction as their events.

ARCHITECTURE invariant 6: "every state change that alters access reaches the network through
the outbox, retried until acknowledged". The rows are written by the use cases that change
access, as an explicit step next to the event (``use_cases/network/access_changes.py``:
``enqueue`` for one event, ``enqueue_transitions`` for the tick's bulk writer); this module
only stores them. A row names the service and the event; what to send is worked out by the
CoA sender from the committed state when it sends (``use_cases/network/enforcement.py``), so a
burst of changes never replays a stale answer. On PostgreSQL a NOTIFY (delivered at commit)
wakes the sender at once.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import text
from sqlalchemy.orm import Session

from ispbill.adapters.db import bulk
from ispbill.adapters.db.models import OutboxCommand, table_of
from ispbill.domain.lifecycle import ServiceEvent
from ispbill.domain.radius import CommandStatus

CHANNEL = "ispbill_outbox"
MAIL_CHANNEL = "ispbill_mail"  # the customer e-mail outbox's (``use_cases/notifications``)
_WRITTEN = "ispbill_outboxes_written"
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


@dataclass(frozen=True)
class NewCommand:
    """One command to queue: the service, the access-changing event's kind and reason, when."""

    service_id: int
    kind: str
    reason: str
    at: datetime


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


def enqueue_many(session: Session, commands: Sequence[NewCommand]) -> None:
    """Commands for many events at once (the tick's bulk writer), in the caller's transaction."""
    if not commands:
        return
    bulk.insert_rows(
        session.connection(),
        table_of(OutboxCommand),
        [
            {
                "service_id": c.service_id,
                "event_kind": c.kind,
                "reason": c.reason,
                "created_at": c.at,
                "status": CommandStatus.PENDING.value,
                "attempts": 0,
                "next_attempt_at": c.at,
                "completed_at": None,
                "last_error": None,
                "results": {},
            }
            for c in commands
        ],
    )
    notify(session)


def mark_written(session: Session, channel: str) -> None:
    """Say on the session that this transaction wrote to the outbox ``channel`` names, so the
    pre-commit step that defers its jobs (``adapters/job_queue/job_deferral``) looks for them."""
    session.info.setdefault(_WRITTEN, set()).add(channel)


def written_channels(session: Session) -> set[str]:
    """The outboxes this transaction wrote to, forgotten once read (one commit's)."""
    written: set[str] = session.info.pop(_WRITTEN, set())
    return written


def notify(session: Session) -> None:
    """Wake a listening sender when this transaction commits (PostgreSQL only; SQLite senders
    poll), and mark the outbox written for the job deferral."""
    mark_written(session, CHANNEL)
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_notify(:channel, '')"), {"channel": CHANNEL})

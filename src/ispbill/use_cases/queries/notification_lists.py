"""Read model of the customer e-mail outbox for the API (the console's filters,
``operator_lists.notifications_query``), newest first, with each message's subject line."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from ispbill.adapters.db.keyset import Slice, keyset_slice, mapped
from ispbill.adapters.db.models import Notification
from ispbill.adapters.db.unit_of_work import UnitOfWork
from ispbill.domain.notifications import NotificationStatus
from ispbill.use_cases.notifications.mail_outbox import subject
from ispbill.use_cases.queries.customer_lists import visible_row
from ispbill.use_cases.queries.dashboard import Scope
from ispbill.use_cases.queries.operator_lists import NotificationFilter, notifications_query

PENDING = NotificationStatus.PENDING.value


@dataclass(frozen=True)
class NotificationView:
    id: int
    customer_id: int
    kind: str
    recipients: list[str]
    subject: str
    status: str
    attempts: int
    created_at: datetime
    next_attempt_at: datetime | None  # only while it waits to be sent
    sent_at: datetime | None
    last_error: str | None


def notification_view(row: Notification) -> NotificationView:
    """A message as read (also one a use case has just written)."""
    return NotificationView(
        id=row.id,
        customer_id=row.customer_id,
        kind=row.kind,
        recipients=list(row.recipients),
        subject=subject(row),
        status=row.status,
        attempts=row.attempts,
        created_at=row.created_at,
        next_attempt_at=row.next_attempt_at if row.status == PENDING else None,
        sent_at=row.sent_at,
        last_error=row.last_error,
    )


def list_notifications(
    uow: UnitOfWork, scope: Scope, wanted: NotificationFilter, *, after: int | None, limit: int
) -> Slice[NotificationView]:
    """Messages to the reader's customers, newest first."""
    found = keyset_slice(
        uow.session,
        notifications_query(scope, wanted),
        Notification.id,
        after=after,
        limit=limit,
        newest_first=True,
    )
    return mapped(found, lambda rows: [notification_view(r) for r in rows])


def is_visible(uow: UnitOfWork, scope: Scope, notification_id: int) -> bool:
    """Whether the message exists and is to one of the reader's customers."""
    row = uow.session.get(Notification, notification_id)
    return row is not None and visible_row(uow.session, scope, row.customer_id) is not None

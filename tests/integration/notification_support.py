"""Customer e-mail for the API and console tests: reminders queued in the notifications outbox
as the collections pass writes them, and delivered by the real sender (``process_due``)
through a relay stand-in that refuses some addresses for good."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import func, select

from ispbill.adapters.db.models import Customer, Event, Notification
from ispbill.adapters.mail import MailFailure
from ispbill.bootstrap import App
from ispbill.use_cases.notifications import mail_outbox as notifications

PORTAL = "https://billing.example.net/portal"
REFUSED = "nobody@example.net"


class Relay:
    """Takes every message except those to ``REFUSED`` (a 550: permanent, so it fails)."""

    def __init__(self) -> None:
        self.sent: list[tuple[list[str], str]] = []

    def send(self, *, to: Sequence[str], subject: str, body: str) -> None:
        if REFUSED in to:
            raise MailFailure("550 5.1.1 no such mailbox", permanent=True)
        self.sent.append((list(to), subject))


def queue(app: App, customer_id: int, to: str, key: str) -> int:
    """A pending reminder of 30.00 overdue for the customer, as ``enqueue_reminder`` writes."""
    now = app.clock.now()
    with app.uow() as uow:
        customer = uow.session.get(Customer, customer_id)
        assert customer is not None
        row = Notification(
            customer_id=customer_id,
            kind=notifications.REMINDER,
            key=f"{notifications.REMINDER}:{customer_id}:{key}",
            recipients=[to],
            locale="en_US",
            figures={
                "customer_name": customer.name,
                "amount_minor": 3000,
                "currency": customer.currency,
                "invoice": f"INV-{key}",
                "due_date": "2026-01-15",
                "stage": "suspend",
                "starts_on": "2026-01-30",
            },
            created_at=now,
            status="pending",
            attempts=0,
            next_attempt_at=now,
        )
        uow.session.add(row)
        uow.commit()
        return row.id


def send_due(app: App, relay: Relay | None = None) -> Relay:
    relay = relay or Relay()
    notifications.process_due(app.uow_factory, relay, now=app.clock.now(), portal_url=PORTAL)
    return relay


def state(app: App, notification_id: int) -> tuple[str, int]:
    with app.uow() as uow:
        row = uow.session.get(Notification, notification_id)
        assert row is not None
        return row.status, row.attempts


def requeued(app: App) -> list[Event]:
    with app.uow() as uow:
        return list(
            uow.session.scalars(
                select(Event).where(Event.kind == "notification.requeued").order_by(Event.id)
            )
        )


def count(app: App) -> int:
    with app.uow() as uow:
        return int(uow.session.scalar(select(func.count()).select_from(Notification)) or 0)

"""Customer e-mail through an outbox: a collection reminder, a non-payer suspension or throttle
and its lift by a payment or a promise to pay each become a ``notifications`` row in the same
transaction as their event, and the sender delivers it later, outside any transaction, through
the operator's SMTP relay (woken by a NOTIFY at commit on PostgreSQL): ``process_due`` is one
batch and ``send_notification`` one message (the ``send_mail`` job deferred in the transaction
that queues it); the background work runs them (``entrypoints/jobs/tasks.py``).

Why a table and not "send now": a message sent inside the transaction is sent even when the
transaction rolls back, and one sent after commit is lost when the relay is down. The row is
kept until the relay takes it, retried with back-off (``enforcement.RetryPolicy``) and given up
after ``max_attempts`` with a ``notification.failed`` event; a delivery is a
``notification.sent`` event. Claims work as the CoA outbox's (a lease moved ahead with
``FOR UPDATE SKIP LOCKED`` on PostgreSQL), so several senders share the table and one that dies
mid-send leaves the lease to expire: a message may then go out twice, never zero times. The
text is rendered at send time from the stored figures, in the customer's locale.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from functools import lru_cache
from pathlib import Path
from typing import Any, Protocol

from babel.support import NullTranslations, Translations
from sqlalchemy import func, select, text
from sqlalchemy.orm import Session

import ispbill
from ispbill.adapters.db import event_log as events
from ispbill.adapters.db.leases import lease_due
from ispbill.adapters.db.lookups import MAX_ID
from ispbill.adapters.db.models import Customer, Notification, PortalAccount, Service
from ispbill.adapters.db.outbox import MAIL_CHANNEL, mark_written
from ispbill.adapters.db.unit_of_work import UnitOfWork
from ispbill.adapters.mail import MailFailure
from ispbill.domain.calendar import local_date
from ispbill.domain.collection import CollectionDecision, CollectionStage
from ispbill.domain.customers import ContactKind
from ispbill.domain.errors import Conflict, NotFound, ValidationError
from ispbill.domain.money import Money
from ispbill.domain.notifications import (
    Message,
    NotificationStatus,
    Reminder,
    Restoration,
    Suspension,
    reminder_message,
    reminder_recipients,
    restoration_message,
    service_label,
    suspension_message,
)
from ispbill.use_cases.network.enforcement import RetryPolicy

log = logging.getLogger("ispbill.notifications")
ACTOR = "engine:mail"
REMINDER = "collection.reminder"
SUSPENDED = "collection.suspended"  # suspended or throttled for non-payment
RESTORED = "collection.restored"  # lifted by a payment or a promise to pay
KINDS = (REMINDER, SUSPENDED, RESTORED)
CHANNEL = MAIL_CHANNEL  # NOTIFY on PostgreSQL when a message is queued
STATUSES = tuple(s.value for s in NotificationStatus)  # pending: waiting for the sender
REASON_MAX = 200
LOCALE_DIR = Path(ispbill.__file__).parent / "locale"
MAIL_RETRY = RetryPolicy(base_delay_s=60.0, max_delay_s=3600.0, max_attempts=8, lease_s=120.0)
UowFactory = Callable[[], UnitOfWork]


class Mailer(Protocol):
    def send(self, *, to: Sequence[str], subject: str, body: str) -> None:
        """Hand one message to the relay or raise ``MailFailure``."""


# -- writing, in the caller's transaction -------------------------------------------------------


def enqueue_reminder(
    uow: UnitOfWork,
    customer: Customer,
    decision: CollectionDecision,
    *,
    key: str,
    now: datetime,
    actor: str,
) -> Notification | None:
    """The reminder's e-mail, or a ``notification.skipped`` event saying why there is none."""
    figures = decision.figures
    stage, starts_on = decision.stage, decision.on
    invoice, due_date = figures.oldest_invoice, figures.oldest_due_date
    if stage is None or starts_on is None or invoice is None or not due_date:
        _record(
            uow, customer.id, "notification.skipped", "no_overdue_invoice", {"key": key}, now, actor
        )
        return None
    stored = {
        "customer_name": customer.name,
        "amount_minor": figures.overdue_total.minor,
        "currency": figures.overdue_total.currency,
        "invoice": invoice,
        "due_date": due_date.isoformat(),
        "stage": stage.value,
        "starts_on": starts_on.isoformat(),
    }
    return _queue(uow, customer, REMINDER, key, stored, now=now, actor=actor)


def enqueue_suspension(
    uow: UnitOfWork,
    customer: Customer,
    decision: CollectionDecision,
    services: Sequence[Service],
    *,
    stage: CollectionStage,
    now: datetime,
    actor: str,
) -> Notification | None:
    """The "suspended" (or "slowed down") notice for the services collections just moved, in
    the transaction of their events; one per customer and instant (the occurrence)."""
    figures = decision.figures
    invoice, due_date = figures.oldest_invoice, figures.oldest_due_date
    key = f"{stage.value}:{now.isoformat()}"
    if invoice is None or due_date is None:
        _record(
            uow, customer.id, "notification.skipped", "no_overdue_invoice", {"key": key}, now, actor
        )
        return None
    stored = {
        "customer_name": customer.name,
        "services": _labels(services),
        "stage": stage.value,
        "since": local_date(now, customer.billing_timezone).isoformat(),
        "amount_minor": figures.overdue_total.minor,
        "currency": figures.overdue_total.currency,
        "invoice": invoice,
        "due_date": due_date.isoformat(),
    }
    return _queue(uow, customer, SUSPENDED, key, stored, now=now, actor=actor)


def enqueue_restoration(
    uow: UnitOfWork,
    customer: Customer,
    services: Sequence[Service],
    *,
    promise_until: datetime | None,
    now: datetime,
    actor: str,
) -> Notification | None:
    """The "service restored" notice after a payment (or a promise to pay, with its end) lifted
    collections' suspension or throttle, in the transaction of the lift's events."""
    zone = customer.billing_timezone
    stored = {
        "customer_name": customer.name,
        "services": _labels(services),
        "since": local_date(now, zone).isoformat(),
        "promise_until": local_date(promise_until, zone).isoformat() if promise_until else None,
    }
    key = f"{'promise' if promise_until else 'payment'}:{now.isoformat()}"
    return _queue(uow, customer, RESTORED, key, stored, now=now, actor=actor)


def _labels(services: Sequence[Service]) -> list[str]:
    unique = {service.id: service for service in services}
    return [service_label(unique[i].plan.name, i) for i in sorted(unique)]


def _queue(
    uow: UnitOfWork,
    customer: Customer,
    kind: str,
    key: str,
    figures: dict[str, Any],
    *,
    now: datetime,
    actor: str,
) -> Notification | None:
    """One message row (``kind:customer:key`` unique, so an occurrence is one message) and a
    NOTIFY that wakes the sender at commit; a recorded skip when there is no address."""
    recipients = reminder_recipients(
        customer.notification_emails, _portal_email(uow, customer), primary_email(customer)
    )
    if not recipients:
        _record(
            uow, customer.id, "notification.skipped", "no_email_address", {"key": key}, now, actor
        )
        return None
    full_key = f"{kind}:{customer.id}:{key}"
    if uow.session.scalar(select(Notification.id).where(Notification.key == full_key)):
        return None  # already queued for this occurrence
    row = Notification(
        customer_id=customer.id,
        kind=kind,
        key=full_key,
        recipients=recipients,
        locale=customer.locale,
        figures=figures,
        created_at=now,
        status=NotificationStatus.PENDING.value,
        attempts=0,
        next_attempt_at=now,
    )
    uow.session.add(row)
    wake_sender(uow.session)
    return row


def wake_sender(session: Session) -> None:
    """Wake a listening sender when this transaction commits (PostgreSQL; SQLite polls), and
    mark the outbox written, so its ``send_mail`` job is deferred in this transaction."""
    mark_written(session, CHANNEL)
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_notify(:channel, '')"), {"channel": CHANNEL})


def primary_email(customer: Customer) -> str | None:
    """The customer's primary contact e-mail, if it has one."""
    return next(
        (c.value for c in customer.contacts if c.kind == ContactKind.EMAIL.value and c.is_primary),
        None,
    )


def _portal_email(uow: UnitOfWork, customer: Customer) -> str | None:
    return uow.session.scalars(
        select(PortalAccount.email).where(PortalAccount.customer_id == customer.id)
    ).first()


def _record(
    uow: UnitOfWork,
    customer_id: int,
    kind: str,
    reason: str,
    figures: dict[str, Any],
    now: datetime,
    actor: str = ACTOR,
) -> None:
    events.record(
        uow,
        now=now,
        actor=actor,
        kind=kind,
        subject_type="customer",
        subject_id=customer_id,
        customer_id=customer_id,
        reason=reason,
        figures=figures,
    )


# -- rendering ----------------------------------------------------------------------------------


@lru_cache(maxsize=8)
def _translations(locale: str) -> NullTranslations:
    """The customer's catalog (``cs_CZ`` finds ``cs``); English, the source, when none."""
    return Translations.load(str(LOCALE_DIR), [locale], domain="messages")


def render(row: Notification, portal_url: str) -> Message:
    """The message a stored row stands for, in the customer's language."""
    f, gettext = row.figures, _translations(row.locale).gettext
    if row.kind == SUSPENDED:
        notice = Suspension(
            customer_name=f["customer_name"],
            services=tuple(f["services"]),
            stage=CollectionStage(f["stage"]),
            since=date.fromisoformat(f["since"]),
            amount=Money(f["amount_minor"], f["currency"]),
            invoice=f["invoice"],
            due_date=date.fromisoformat(f["due_date"]),
            portal_url=portal_url,
        )
        return suspension_message(notice, row.locale, gettext)
    if row.kind == RESTORED:
        until = f.get("promise_until")
        restored = Restoration(
            customer_name=f["customer_name"],
            services=tuple(f["services"]),
            since=date.fromisoformat(f["since"]),
            promise_until=date.fromisoformat(until) if until else None,
            portal_url=portal_url,
        )
        return restoration_message(restored, row.locale, gettext)
    reminder = Reminder(
        customer_name=f["customer_name"],
        amount=Money(f["amount_minor"], f["currency"]),
        invoice=f["invoice"],
        due_date=date.fromisoformat(f["due_date"]),
        stage=CollectionStage(f["stage"]),
        starts_on=date.fromisoformat(f["starts_on"]),
        portal_url=portal_url,
    )
    return reminder_message(reminder, row.locale, gettext)


# -- sending ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Outcome:
    status: str  # sent, pending (to be retried) or failed
    error: str | None = None


def process_due(
    uow_factory: UowFactory,
    mailer: Mailer,
    *,
    now: datetime,
    portal_url: str,
    retry: RetryPolicy = MAIL_RETRY,
    limit: int = 50,
) -> int:
    """Claim the due messages and try each once; returns how many were tried."""
    ids = claim(uow_factory, now=now, retry=retry, limit=limit)
    for notification_id in ids:
        deliver(uow_factory, mailer, notification_id, now=now, portal_url=portal_url, retry=retry)
    return len(ids)


def claim(uow_factory: UowFactory, *, now: datetime, retry: RetryPolicy, limit: int) -> list[int]:
    """Lease due messages in a short transaction, so no other sender takes them meanwhile."""
    with uow_factory() as uow:
        uow.begin_write()
        ids = lease_due(uow, Notification, now=now, lease_s=retry.lease_s, limit=limit)
        uow.commit()
        return ids


def deliver(
    uow_factory: UowFactory,
    mailer: Mailer,
    notification_id: int,
    *,
    now: datetime,
    portal_url: str,
    retry: RetryPolicy = MAIL_RETRY,
) -> Outcome:
    """Send one claimed message (no transaction open meanwhile) and record what happened."""
    with uow_factory() as uow:
        row = uow.session.get(Notification, notification_id)
        if row is None or row.status != NotificationStatus.PENDING.value:
            return Outcome(row.status if row else "missing")
        message = render(row, portal_url)
        recipients = list(row.recipients)
    try:
        mailer.send(to=recipients, subject=message.subject, body=message.body)
        failure = None
    except MailFailure as exc:
        failure = exc
    with uow_factory() as uow:
        uow.begin_write()
        row = uow.session.get(Notification, notification_id)
        assert row is not None
        outcome = _settle(uow, row, message, failure, now=now, retry=retry)
        uow.commit()
    log.info("notification %d to %s: %s", notification_id, recipients, outcome.status)
    return outcome


def send_notification(
    uow_factory: UowFactory,
    mailer: Mailer,
    notification_id: int,
    *,
    now: datetime,
    portal_url: str,
    retry: RetryPolicy = MAIL_RETRY,
) -> Outcome | None:
    """Lease one message, if it is due, and send it (the ``send_mail`` job's work); None when
    it is not pending, already leased by another sender or waiting for a retry."""
    with uow_factory() as uow:
        uow.begin_write()
        ids = lease_due(
            uow, Notification, now=now, lease_s=retry.lease_s, limit=1, only=notification_id
        )
        uow.commit()
    if not ids:
        return None
    return deliver(
        uow_factory, mailer, notification_id, now=now, portal_url=portal_url, retry=retry
    )


def _settle(
    uow: UnitOfWork,
    row: Notification,
    message: Message,
    failure: MailFailure | None,
    *,
    now: datetime,
    retry: RetryPolicy,
) -> Outcome:
    figures: dict[str, Any] = {
        "notification": row.id,
        "notification_kind": row.kind,
        "recipients": list(row.recipients),
        "subject": message.subject,
        "attempts": row.attempts,
    }
    if failure is None:
        row.status = NotificationStatus.SENT.value
        row.sent_at = now
        row.last_error = None
        _record(uow, row.customer_id, "notification.sent", row.kind, figures, now)
        return Outcome(NotificationStatus.SENT.value)
    row.last_error = str(failure)
    figures["error"] = str(failure)
    if failure.permanent or row.attempts >= retry.max_attempts:
        row.status = NotificationStatus.FAILED.value
        _record(uow, row.customer_id, "notification.failed", row.kind, figures, now)
        return Outcome(NotificationStatus.FAILED.value, str(failure))
    row.next_attempt_at = now + retry.delay(row.attempts)
    figures["next_attempt_at"] = row.next_attempt_at.isoformat()
    _record(uow, row.customer_id, "notification.retry", row.kind, figures, now)
    return Outcome(NotificationStatus.PENDING.value, str(failure))


# -- an operator's hand on the queue ------------------------------------------------------------


def retry_notification(
    uow: UnitOfWork, *, notification_ref: int, reason: str, now: datetime, actor: str
) -> Notification:
    """Put a failed message back in the queue, due now and with its attempts started afresh
    (the relay or the address was fixed), recording who did it and why. A sent message is
    never sent again from here, and a queued one is already on its way: both are refused."""
    reason = reason.strip()
    if not reason:
        raise ValidationError("reason", "required: say why the message is sent again")
    if len(reason) > REASON_MAX:
        raise ValidationError("reason", f"at most {REASON_MAX} characters")
    if not 0 < notification_ref <= MAX_ID:
        raise NotFound("notification", notification_ref)
    uow.begin_write()
    statement = select(Notification).where(Notification.id == notification_ref)
    if uow.dialect == "postgresql":
        statement = statement.with_for_update()
    row = uow.session.scalars(statement).one_or_none()
    if row is None:
        raise NotFound("notification", notification_ref)
    if row.status != NotificationStatus.FAILED.value:
        state = "already sent" if row.status == NotificationStatus.SENT.value else "already queued"
        raise Conflict("status", f"notification {row.id} is {state}; only a failed one is retried")
    figures: dict[str, Any] = {
        "notification": row.id,
        "notification_kind": row.kind,
        "attempts": row.attempts,
        "error": row.last_error,
    }
    row.status = NotificationStatus.PENDING.value
    row.attempts = 0
    row.next_attempt_at = now
    _record(uow, row.customer_id, "notification.requeued", reason, figures, now, actor)
    wake_sender(uow.session)
    uow.commit()
    return row


# -- reading ------------------------------------------------------------------------------------


def subject(row: Notification) -> str:
    """The subject line the message has (or had) in its customer's language; the text is not
    stored, it is rendered from the figures as the sender does."""
    if row.kind not in KINDS:
        return ""
    return render(row, "").subject


def notifications(
    uow: UnitOfWork, *, status: str | None = None, limit: int = 100
) -> list[Notification]:
    statement = select(Notification).order_by(Notification.id.desc()).limit(limit)
    if status:
        statement = statement.where(Notification.status == status)
    return list(uow.session.scalars(statement))


def for_customer(uow: UnitOfWork, customer_id: int, *, limit: int = 10) -> list[Notification]:
    """A customer's latest messages, newest first (did they get the reminder?)."""
    return list(
        uow.session.scalars(
            select(Notification)
            .where(Notification.customer_id == customer_id)
            .order_by(Notification.id.desc())
            .limit(limit)
        )
    )


def pending_count(uow: UnitOfWork) -> int:
    return (
        uow.session.scalar(
            select(func.count())
            .select_from(Notification)
            .where(Notification.status == NotificationStatus.PENDING.value)
        )
        or 0
    )

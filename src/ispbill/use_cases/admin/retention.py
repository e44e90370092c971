"""Retention: deleting the bookkeeping rows that have done their job, each after a documented
age (``docs/architecture.md``, "Retention"; the ages are ``Settings`` fields).

What goes: failed sign-in and card-redemption attempts (kept only to throttle guessing), web
sessions and e-mailed sign-in links past their expiry, idempotency records past their replay
window, delivered outbox rows (CoA commands done, customer e-mail sent) and finished tick runs
(the schedule writes one a minute; their figures are in the ledger and events). What never goes:
money (ledger, payments, charges, invoices, allocations), events, and the rows still waiting
for someone: pending or dead CoA commands, pending or failed e-mail. Each run records one
``retention.purged`` event with the counts, when it deleted anything.

Several processes may run it at once: each DELETE names rows by age, so a row is deleted once
and a second run finds nothing (its DELETE waits for the first's rows, then counts zero).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, or_

from ispbill.adapters.db import event_log as events
from ispbill.adapters.db.models import (
    IdempotencyRecord,
    LoginAttempt,
    LoginToken,
    Notification,
    OutboxCommand,
    RedemptionAttempt,
    TickRun,
    WebSession,
)
from ispbill.adapters.db.unit_of_work import UnitOfWork
from ispbill.domain.errors import ValidationError
from ispbill.domain.notifications import NotificationStatus
from ispbill.domain.radius import CommandStatus
from ispbill.settings import Settings
from ispbill.use_cases.billing import tick_runs

ACTOR = "engine:retention"


@dataclass(frozen=True)
class RetentionAges:
    """How long each kind of row is kept (the defaults are the documented ones)."""

    login_attempt_days: int = 90
    session_days_after_expiry: int = 7
    idempotency_days: int = 30
    delivered_outbox_days: int = 30
    tick_run_days: int = 30
    # never less than the replay window the API promises (``idempotency_ttl_hours``)
    idempotency_ttl_hours: int = 24

    def __post_init__(self) -> None:
        for name in (
            "login_attempt_days",
            "session_days_after_expiry",
            "idempotency_days",
            "delivered_outbox_days",
            "tick_run_days",
        ):
            if getattr(self, name) < 1:
                raise ValidationError(name, "must be at least 1 day")

    @classmethod
    def from_settings(cls, settings: Settings) -> RetentionAges:
        return cls(
            login_attempt_days=settings.retention_login_attempt_days,
            session_days_after_expiry=settings.retention_session_days_after_expiry,
            idempotency_days=settings.retention_idempotency_days,
            delivered_outbox_days=settings.retention_delivered_outbox_days,
            tick_run_days=settings.retention_tick_run_days,
            idempotency_ttl_hours=settings.idempotency_ttl_hours,
        )


def purge_expired(
    uow: UnitOfWork, now: datetime, ages: RetentionAges | None = None
) -> dict[str, int]:
    """Delete what is past its age; returns the rows deleted per table (zeros included)."""
    ages = ages or RetentionAges()
    attempts = now - timedelta(days=ages.login_attempt_days)
    sessions = now - timedelta(days=ages.session_days_after_expiry)
    idempotency = now - max(
        timedelta(days=ages.idempotency_days), timedelta(hours=ages.idempotency_ttl_hours)
    )
    delivered = now - timedelta(days=ages.delivered_outbox_days)
    ticked = now - timedelta(days=ages.tick_run_days)
    uow.begin_write()
    statements = {
        "login_attempts": delete(LoginAttempt).where(LoginAttempt.attempted_at < attempts),
        "redemption_attempts": delete(RedemptionAttempt).where(
            RedemptionAttempt.attempted_at < attempts
        ),
        "web_sessions": delete(WebSession).where(
            or_(WebSession.expires_at < sessions, WebSession.ended_at < sessions)
        ),
        "login_tokens": delete(LoginToken).where(LoginToken.expires_at < sessions),
        "idempotency_records": delete(IdempotencyRecord).where(
            IdempotencyRecord.created_at < idempotency
        ),
        "enforcement_outbox": delete(OutboxCommand).where(
            OutboxCommand.status == CommandStatus.DONE.value,
            OutboxCommand.completed_at < delivered,
        ),
        "notifications": delete(Notification).where(
            Notification.status == NotificationStatus.SENT.value,
            Notification.sent_at < delivered,
        ),
        "tick_runs": delete(TickRun).where(
            TickRun.status.in_((tick_runs.SUCCEEDED, tick_runs.FAILED)),
            TickRun.finished_at < ticked,
        ),
    }
    counts = {
        table: int(getattr(uow.session.execute(statement), "rowcount", 0) or 0)
        for table, statement in statements.items()
    }
    if any(counts.values()):
        events.record(
            uow,
            now=now,
            actor=ACTOR,
            kind="retention.purged",
            subject_type="retention",
            subject_id=0,
            reason="past the documented ages",
            figures={
                "deleted": counts,
                "login_attempt_days": ages.login_attempt_days,
                "session_days_after_expiry": ages.session_days_after_expiry,
                "idempotency_days": ages.idempotency_days,
                "delivered_outbox_days": ages.delivered_outbox_days,
                "tick_run_days": ages.tick_run_days,
            },
        )
    uow.commit()
    return counts

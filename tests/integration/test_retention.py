"""Retention purges on both databases: each kind of bookkeeping row goes after its documented
age and not a day before; money, events and rows still waiting for someone stay."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import func, select
from typer.testing import CliRunner

from ispbill.adapters.db.models import (
    Event,
    IdempotencyRecord,
    LedgerTransaction,
    LoginAttempt,
    LoginToken,
    Notification,
    OutboxCommand,
    RedemptionAttempt,
    WebSession,
)
from ispbill.bootstrap import App
from ispbill.domain.errors import ValidationError
from ispbill.entrypoints.cli.main import app as cli
from ispbill.use_cases.admin.api_tokens import create_token
from ispbill.use_cases.admin.retention import RetentionAges, purge_expired
from scenarios.helpers import add_class, add_customer, add_plan, add_service, at, check_books

NOW = at(2026, 6, 1, 12)
DAY = timedelta(days=1)
TABLES = {
    "login_attempts": LoginAttempt,
    "redemption_attempts": RedemptionAttempt,
    "web_sessions": WebSession,
    "login_tokens": LoginToken,
    "idempotency_records": IdempotencyRecord,
    "enforcement_outbox": OutboxCommand,
    "notifications": Notification,
}


def session_row(customer: int, expires: datetime, ended: datetime | None = None) -> WebSession:
    return WebSession(
        token_hash=f"{expires.isoformat()}-{ended}".ljust(64, "x")[:64],
        kind="customer",
        customer_id=customer,
        created_at=expires - 12 * 3600 * timedelta(seconds=1),
        last_seen_at=expires - timedelta(hours=1),
        expires_at=expires,
        ended_at=ended,
    )


def command_row(service: int, status: str, completed: datetime | None) -> OutboxCommand:
    created = (completed or NOW) - timedelta(minutes=1)
    return OutboxCommand(
        service_id=service,
        event_kind="service.suspended",
        reason="test",
        created_at=created,
        status=status,
        attempts=1,
        next_attempt_at=created,
        completed_at=completed,
        results={},
    )


def mail_row(customer: int, key: str, status: str, sent: datetime | None) -> Notification:
    created = (sent or NOW) - timedelta(minutes=1)
    return Notification(
        customer_id=customer,
        kind="collection.reminder",
        key=key,
        recipients=["a@example.net"],
        locale="en_US",
        figures={},
        created_at=created,
        status=status,
        attempts=1,
        next_attempt_at=created,
        sent_at=sent,
        last_error=None,
    )


def build(app: App) -> dict[str, int]:
    """For each kind, one row just past its age (goes) and one just within it (stays), plus
    the rows no age ever removes."""
    t0 = at(2026, 1, 1, 9)
    add_class(app, t0)
    add_plan(app, t0, "Home 30", "30.00")
    customer = add_customer(app, t0, "Ann", available_funds="100.00")
    service = add_service(app, t0, customer, "Home 30")
    with app.uow() as uow:
        token = create_token(
            uow, name="ops", role="admin", reseller_id=None, now=t0, actor="test"
        ).token.id
    with app.uow() as uow:
        s = uow.session
        for when in (NOW - 91 * DAY, NOW - 89 * DAY):
            s.add(LoginAttempt(subject="staff:ann", source="10.0.0.1", attempted_at=when))
            s.add(
                RedemptionAttempt(
                    customer_id=customer, source="10.0.0.1", reason="unknown", attempted_at=when
                )
            )
        s.add(session_row(customer, NOW - 8 * DAY))  # expired 8 days ago: goes
        s.add(session_row(customer, NOW - 6 * DAY))  # 6 days: stays
        s.add(session_row(customer, NOW + DAY, ended=NOW - 8 * DAY))  # signed out 8 days ago
        s.add(session_row(customer, NOW + DAY))  # live
        for n, expires in enumerate((NOW - 8 * DAY, NOW - 6 * DAY)):
            s.add(
                LoginToken(
                    token_hash=str(n).ljust(64, "t"),
                    customer_id=customer,
                    created_at=expires - timedelta(minutes=15),
                    expires_at=expires,
                    used_at=None,
                )
            )
        for n, created in enumerate((NOW - 31 * DAY, NOW - 29 * DAY)):
            s.add(
                IdempotencyRecord(
                    key=f"k{n}",
                    token_id=token,
                    method_path="POST /api/v1/payments",
                    request_hash="h" * 64,
                    status=201,
                    body={},
                    created_at=created,
                )
            )
        s.add(command_row(service, "done", NOW - 31 * DAY))  # goes
        s.add(command_row(service, "done", NOW - 29 * DAY))
        s.add(command_row(service, "dead", NOW - 300 * DAY))  # waits for an operator
        s.add(command_row(service, "pending", None))
        s.add(mail_row(customer, "m1", "sent", NOW - 31 * DAY))  # goes
        s.add(mail_row(customer, "m2", "sent", NOW - 29 * DAY))
        s.add(mail_row(customer, "m3", "failed", None))
        s.add(mail_row(customer, "m4", "pending", None))
        uow.commit()
    return {"customer": customer, "service": service}


def counts(app: App) -> dict[str, int]:
    with app.uow() as uow:
        return {
            name: int(uow.session.scalar(select(func.count()).select_from(model)) or 0)
            for name, model in {**TABLES, "events": Event, "ledger": LedgerTransaction}.items()
        }


EXPECTED = {
    "login_attempts": 1,
    "redemption_attempts": 1,
    "web_sessions": 2,
    "login_tokens": 1,
    "idempotency_records": 1,
    "enforcement_outbox": 1,
    "notifications": 1,
}


def test_each_kind_goes_after_its_age_and_money_and_events_stay(app: App) -> None:
    build(app)
    before = counts(app)
    with app.uow() as uow:
        deleted = purge_expired(uow, NOW)
    assert deleted == EXPECTED
    after = counts(app)
    for table, gone in EXPECTED.items():
        assert after[table] == before[table] - gone, table
    assert after["ledger"] == before["ledger"]
    assert after["events"] == before["events"] + 1  # the purge's own event
    with app.uow() as uow:
        kept = {c.status for c in uow.session.scalars(select(OutboxCommand))}
        assert kept == {"done", "pending", "dead"}
        mail = {n.key for n in uow.session.scalars(select(Notification))}
        assert mail == {"m2", "m3", "m4"}
        [event] = uow.session.scalars(select(Event).where(Event.kind == "retention.purged"))
        assert event.figures["deleted"] == EXPECTED
        assert event.actor == "engine:retention"
    with app.uow() as uow:
        assert purge_expired(uow, NOW) == dict.fromkeys(EXPECTED, 0)  # nothing twice
    assert counts(app)["events"] == after["events"]  # and no event for an empty run
    # a day later, the rows that were a day short of their age go too (the live session stays)
    with app.uow() as uow:
        later = purge_expired(uow, NOW + 2 * DAY)
    assert later == {**EXPECTED, "web_sessions": 1}
    check_books(app)


def test_the_ages_are_settings_and_never_cut_the_replay_window(app: App) -> None:
    build(app)
    with pytest.raises(ValidationError, match="idempotency_days"):
        RetentionAges(idempotency_days=0)
    # a shorter idempotency age than the API's replay window keeps the window
    ages = RetentionAges(idempotency_days=1, idempotency_ttl_hours=24 * 40)
    with app.uow() as uow:
        deleted = purge_expired(uow, NOW, ages)
    assert deleted["idempotency_records"] == 0


def test_ispbill_purge_prints_the_counts(app: App, database_url: str) -> None:
    build(app)
    result = CliRunner().invoke(
        cli, ["--database-url", database_url, "--now", NOW.isoformat(), "purge", "--json"]
    )
    assert result.exit_code == 0, result.output
    rows: list[dict[str, Any]] = json.loads(result.stdout)
    assert {r["table"]: r["deleted"] for r in rows} == EXPECTED

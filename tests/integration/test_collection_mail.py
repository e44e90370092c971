"""Collection reminders by e-mail on both databases, through a real SMTP server (aiosmtpd): the
reminder's pass writes the message to the notifications outbox with its event, the sender
delivers it once with the figures in the customer's language, a second pass sends nothing
more, and an SMTP outage keeps the message for a retry (or gives up after the attempts).

The customer is postpaid, billed monthly in advance from 1 January 2026 at 30.00 USD; the
invoice is due on 15 January, suspension comes 15 days later (30 January) and the reminder two
days before it (28 January)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, datetime, timedelta
from typing import Any

import pytest
from mail_support import Mailbox, body, free_port, kinds, mailer, smtp_server, stored
from test_engine_cli import runner

from ispbill.bootstrap import App, bootstrap
from ispbill.clock import FixedClock
from ispbill.entrypoints.cli.main import app as cli
from ispbill.entrypoints.jobs import mail_sender
from ispbill.use_cases.admin.web_auth import set_portal_login
from ispbill.use_cases.catalog.customer_records import ContactRecord
from ispbill.use_cases.catalog.name_lookups import customer_id_of
from ispbill.use_cases.collections import collection_policy
from ispbill.use_cases.network.enforcement import RetryPolicy
from ispbill.use_cases.notifications import mail_outbox as notifications
from scenarios.helpers import (
    ACTOR,
    add_class,
    add_customer,
    add_plan,
    add_service,
    at,
    check_books,
    events,
    tick,
)

JAN1 = at(2026, 1, 1, 9)
REMINDED = at(2026, 1, 28, 6)
PORTAL = "https://billing.example.net/portal"


@pytest.fixture(scope="module")
def smtp() -> Iterator[tuple[Mailbox, int]]:
    with smtp_server() as server:
        yield server


@pytest.fixture
def mailbox(smtp: tuple[Mailbox, int]) -> Mailbox:
    smtp[0].messages.clear()
    return smtp[0]


@pytest.fixture
def app(database_url: str) -> Iterator[App]:
    application = bootstrap(database_url=database_url, clock=FixedClock(JAN1))
    try:
        yield application
        check_books(application)
    finally:
        application.close()


def reminded_debtor(
    app: App, locale: str = "en_US", email: str | None = "dan@example.net", **terms: Any
) -> int:
    """A debtor (with a portal account at ``email``) reminded on 28 January; its id."""
    add_class(app, JAN1)
    add_plan(app, JAN1, "Home", "30.00")
    customer = add_customer(
        app,
        JAN1,
        "Dan",
        balance_control="postpaid",
        invoicing_mode="forward",
        locale=locale,
        **terms,
    )
    add_service(app, JAN1, customer, "Home", active_from=date(2026, 1, 1))
    if email:
        with app.uow() as uow:
            set_portal_login(
                uow,
                customer_id=customer_id_of(uow, "Dan"),
                email=email,
                password=None,
                now=JAN1,
                actor=ACTOR,
            )
    with app.uow() as uow:
        collection_policy.set_values(
            uow,
            changes={"enabled": "true", "reminder_days_before": "2"},
            customer_class_id=None,
            now=JAN1,
            actor=ACTOR,
        )
    tick(app, JAN1)
    tick(app, at(2026, 1, 27, 6))
    assert kinds(app, customer, "collection.") == []
    tick(app, REMINDED)
    assert kinds(app, customer, "collection.") == ["collection.reminder"]
    return customer


def send(app: App, port: int, now: datetime, retry: RetryPolicy = notifications.MAIL_RETRY) -> int:
    return mail_sender.run_sender(
        app.uow_factory,
        mailer(port),
        clock=lambda: now,
        portal_url=PORTAL,
        once=True,
        retry=retry,
    )


def test_a_reminder_is_mailed_once_with_its_figures(
    app: App, smtp: tuple[Mailbox, int], mailbox: Mailbox
) -> None:
    customer = reminded_debtor(app)
    [row] = stored(app)
    assert (row.status, row.recipients, row.attempts) == ("pending", ["dan@example.net"], 0)
    assert mailbox.messages == []  # nothing leaves inside the collection pass
    assert send(app, smtp[1], REMINDED + timedelta(minutes=1)) == 1
    [message] = mailbox.messages
    assert message["To"] == "dan@example.net"
    assert message["From"] == "bill@isp.test"
    assert message["Subject"] == "Payment reminder: $30.00 overdue"
    text = body(message)
    assert "Dear Dan," in text
    assert "$30.00 is overdue" in text
    assert "was due on January 15, 2026" in text
    assert "will be suspended on January 30, 2026" in text
    assert f"Pay in the customer portal: {PORTAL}" in text
    tick(app, REMINDED + timedelta(hours=1))  # a second pass the same day
    tick(app, at(2026, 1, 29, 6))
    assert send(app, smtp[1], at(2026, 1, 29, 7)) == 0
    assert len(mailbox.messages) == 1
    assert kinds(app, customer, "collection.reminder") == ["collection.reminder"]
    assert kinds(app, customer, "notification.") == ["notification.sent"]
    sent = events(app, customer, "notification.")[0]
    assert sent.figures["recipients"] == ["dan@example.net"]
    assert sent.figures["subject"] == message["Subject"]
    [row] = stored(app)
    assert (row.status, row.attempts, row.sent_at) == ("sent", 1, REMINDED + timedelta(minutes=1))


def test_a_czech_customer_reads_it_in_czech(
    app: App, smtp: tuple[Mailbox, int], mailbox: Mailbox
) -> None:
    reminded_debtor(app, locale="cs_CZ")
    send(app, smtp[1], REMINDED)
    [message] = mailbox.messages
    assert message["Subject"] == "Upomínka: 30,00\xa0US$ po splatnosti"
    text = body(message)
    assert "faktura" in text
    assert "splatná 15. ledna 2026" in text
    assert "služba 30. ledna 2026 pozastavena" in text


def test_an_smtp_outage_keeps_the_message_for_a_retry(
    app: App, smtp: tuple[Mailbox, int], mailbox: Mailbox
) -> None:
    customer = reminded_debtor(app)
    down = free_port()  # nothing listens here
    assert send(app, down, REMINDED) == 1
    [row] = stored(app)
    assert (row.status, row.attempts) == ("pending", 1)
    assert "Connection" in (row.last_error or "")
    assert row.next_attempt_at == REMINDED + timedelta(seconds=60)
    assert send(app, smtp[1], REMINDED + timedelta(seconds=30)) == 0  # not due yet
    assert mailbox.messages == []
    assert send(app, smtp[1], REMINDED + timedelta(seconds=61)) == 1
    assert len(mailbox.messages) == 1
    assert kinds(app, customer, "notification.") == ["notification.retry", "notification.sent"]
    assert stored(app)[0].status == "sent"


def test_the_sender_gives_up_after_its_attempts(app: App) -> None:
    customer = reminded_debtor(app)
    down = free_port()
    retry = RetryPolicy(base_delay_s=10, max_delay_s=10, max_attempts=2, lease_s=5)
    send(app, down, REMINDED, retry)
    send(app, down, REMINDED + timedelta(seconds=11), retry)
    [row] = stored(app)
    assert (row.status, row.attempts) == ("failed", 2)
    assert send(app, down, REMINDED + timedelta(days=1), retry) == 0
    assert kinds(app, customer, "notification.") == ["notification.retry", "notification.failed"]


def test_a_refused_mailbox_is_not_retried(
    app: App, smtp: tuple[Mailbox, int], mailbox: Mailbox
) -> None:
    customer = reminded_debtor(app, email="nobody@example.net")
    assert send(app, smtp[1], REMINDED) == 1
    [row] = stored(app)
    assert (row.status, row.attempts) == ("failed", 1)
    assert "nobody@example.net" in (row.last_error or "")
    assert mailbox.messages == []
    assert kinds(app, customer, "notification.") == ["notification.failed"]


def test_no_address_is_a_recorded_skip(app: App) -> None:
    customer = reminded_debtor(app, email=None)
    assert stored(app) == []
    [skipped] = events(app, customer, "notification.")
    assert (skipped.kind, skipped.reason) == ("notification.skipped", "no_email_address")


def test_the_customers_own_list_wins_over_the_portal_address(app: App) -> None:
    reminded_debtor(app, notification_emails=["dan@home.test", "dan@work.test"])
    assert [row.recipients for row in stored(app)] == [["dan@home.test", "dan@work.test"]]


def test_without_a_portal_login_the_primary_contact_email_is_reached(app: App) -> None:
    """Issue 17: collection e-mail reached only customers with a portal login; a customer with
    contact e-mails is now reminded at its primary one (the first given)."""
    reminded_debtor(
        app,
        email=None,
        record=ContactRecord(emails=["dan@contact.test", "dan@second.test"]),
    )
    assert [row.recipients for row in stored(app)] == [["dan@contact.test"]]


def test_the_portal_login_still_wins_over_the_primary_contact(app: App) -> None:
    reminded_debtor(app, record=ContactRecord(emails=["dan@contact.test"]))
    assert [row.recipients for row in stored(app)] == [["dan@example.net"]]


def test_the_cli_sends_once(database_url: str, smtp: tuple[Mailbox, int], mailbox: Mailbox) -> None:
    app = bootstrap(database_url=database_url, clock=FixedClock(JAN1))
    try:
        reminded_debtor(app)
    finally:
        app.close()
    env = {"ISPBILL_SMTP_HOST": "127.0.0.1", "ISPBILL_SMTP_PORT": str(smtp[1])}
    args = ["--database-url", database_url, "--now", "2026-01-28T07:00:00Z"]
    done = runner.invoke(cli, [*args, "notifications", "send"], env=env)
    assert done.exit_code == 0, done.output
    assert "1 sent or tried; 0 waiting" in done.stdout
    assert len(mailbox.messages) == 1
    again = runner.invoke(cli, [*args, "notifications", "send"], env=env)
    assert "0 sent or tried; 0 waiting" in again.stdout
    listed = runner.invoke(cli, [*args, "notifications", "list", "--json"], env=env)
    assert '"status": "sent"' in listed.stdout
    unset = runner.invoke(cli, [*args, "notifications", "send"], env={"ISPBILL_SMTP_HOST": ""})
    assert unset.exit_code == 2
    assert "smtp_host" in unset.stderr

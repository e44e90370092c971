"""Suspension and restoration e-mail on both databases, through a real SMTP server (aiosmtpd):
collections' non-payer suspension (or throttle) queues one "suspended" message with its event,
a payment or a promise to pay that lifts it one "restored" message, a later pass nothing more;
an operator's own suspension and ``notify_suspension=false`` send nothing. On PostgreSQL a
queued message wakes the sender through LISTEN/NOTIFY, long before its poll interval.

Dan is postpaid, billed monthly in advance from 1 January 2026 at 30.00 USD: the invoice is
due on 15 January and collections suspend on 30 January (15 days after it)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from datetime import date, datetime, timedelta
from typing import Any

import pytest
from mail_support import Mailbox, body, mailer, smtp_server
from sqlalchemy import select
from test_collection_mail import kinds, stored

from ispbill.adapters.db.models import Invoice
from ispbill.bootstrap import App, bootstrap
from ispbill.clock import FixedClock
from ispbill.entrypoints.jobs import mail_sender
from ispbill.use_cases.admin.web_auth import set_portal_login
from ispbill.use_cases.catalog.name_lookups import customer_id_of
from ispbill.use_cases.collections import collection_policy, suspensions
from scenarios.helpers import (
    ACTOR,
    add_class,
    add_customer,
    add_plan,
    add_service,
    at,
    check_books,
    events,
    pay,
    tick,
)

JAN1 = at(2026, 1, 1, 9)
SUSPENDED = at(2026, 1, 30, 6)
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


class Debtor:
    def __init__(self, customer: int, service: int) -> None:
        self.customer = customer
        self.service = service


def debtor(
    app: App,
    *,
    policy: dict[str, str | None] | None = None,
    email: str | None = "dan@example.net",
    **terms: Any,
) -> Debtor:
    """Dan with his January invoice unpaid and collections on (plus ``policy``)."""
    add_class(app, JAN1)
    add_plan(app, JAN1, "Home", "30.00")
    customer = add_customer(
        app, JAN1, "Dan", balance_control="postpaid", invoicing_mode="forward", **terms
    )
    service = add_service(app, JAN1, customer, "Home", active_from=date(2026, 1, 1))
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
            changes={"enabled": "true", **(policy or {})},
            customer_class_id=None,
            now=JAN1,
            actor=ACTOR,
        )
    tick(app, JAN1)
    return Debtor(customer, service)


def send(app: App, port: int, now: datetime) -> int:
    return mail_sender.run_sender(
        app.uow_factory, mailer(port), clock=lambda: now, portal_url=PORTAL, once=True
    )


def invoice_number(app: App, customer: int) -> str:
    with app.uow() as uow:
        return (
            uow.session.scalars(
                select(Invoice.number).where(Invoice.customer_id == customer).order_by(Invoice.id)
            ).first()
            or ""
        )


def test_a_suspension_then_a_payment_each_mail_once(
    app: App, smtp: tuple[Mailbox, int], mailbox: Mailbox
) -> None:
    dan = debtor(app)
    tick(app, SUSPENDED)
    assert kinds(app, dan.customer, "service.suspended") == ["service.suspended"]
    [row] = stored(app)
    assert (row.kind, row.status, row.recipients) == (
        "collection.suspended",
        "pending",
        ["dan@example.net"],
    )
    assert mailbox.messages == []  # nothing leaves inside the collection pass
    assert send(app, smtp[1], SUSPENDED + timedelta(minutes=1)) == 1
    [message] = mailbox.messages
    assert message["To"] == "dan@example.net"
    assert message["Subject"] == "Service suspended: $30.00 overdue"
    text = body(message)
    assert "Dear Dan," in text
    assert (
        f"Since January 30, 2026 your service (Home #{dan.service}) is suspended for non-payment."
    ) in text
    invoice = invoice_number(app, dan.customer)
    assert f"$30.00 is overdue; invoice {invoice} was due on January 15, 2026." in text
    assert f"Pay in the customer portal: {PORTAL}" in text

    tick(app, SUSPENDED + timedelta(hours=1))  # a second pass the same day
    tick(app, at(2026, 1, 31, 6))
    assert send(app, smtp[1], at(2026, 1, 31, 7)) == 0
    assert len(mailbox.messages) == 1

    paid = at(2026, 1, 31, 10)
    pay(app, paid, dan.customer, "30.00", "dan-jan")
    assert kinds(app, dan.customer, "service.active")[-1:] == ["service.active"]
    assert send(app, smtp[1], paid + timedelta(minutes=1)) == 1
    restored = mailbox.messages[-1]
    assert restored["Subject"] == "Service restored"
    text = body(restored)
    assert f"Since January 31, 2026 your service (Home #{dan.service}) runs normally again." in text
    assert "Thank you for your payment." in text

    tick(app, at(2026, 2, 1, 6))
    tick(app, at(2026, 2, 2, 6))
    assert send(app, smtp[1], at(2026, 2, 2, 7)) == 0
    assert len(mailbox.messages) == 2
    assert [r.kind for r in stored(app)] == ["collection.suspended", "collection.restored"]
    assert kinds(app, dan.customer, "notification.") == ["notification.sent"] * 2


def test_a_throttle_says_slowed_down_in_czech(
    app: App, smtp: tuple[Mailbox, int], mailbox: Mailbox
) -> None:
    policy: dict[str, str | None] = {
        "throttle_after_days": "5",
        "throttle_down_kbps": "512",
        "throttle_up_kbps": "256",
    }
    dan = debtor(app, policy=policy, locale="cs_CZ")
    tick(app, at(2026, 1, 21, 6))  # 15 January + 5 days + 1
    assert kinds(app, dan.customer, "service.throttled") == ["service.throttled"]
    assert send(app, smtp[1], at(2026, 1, 21, 7)) == 1
    [message] = mailbox.messages
    assert message["Subject"] == "Připojení zpomaleno: 30,00\xa0US$ po splatnosti"
    assert f"Od 21. ledna 2026 je vaše připojení (Home #{dan.service}) zpomaleno" in body(message)
    assert [r.figures["stage"] for r in stored(app)] == ["throttle"]


def test_a_promise_to_pay_mails_the_restoration_with_its_end(
    app: App, smtp: tuple[Mailbox, int], mailbox: Mailbox
) -> None:
    dan = debtor(app)
    tick(app, SUSPENDED)
    promised = SUSPENDED + timedelta(hours=2)
    with app.uow() as uow:
        suspensions.promise_to_pay(uow, service_id=dan.service, days=3, now=promised, actor=ACTOR)
    assert send(app, smtp[1], promised) == 2
    suspended, restored = mailbox.messages
    assert suspended["Subject"] == "Service suspended: $30.00 overdue"
    assert restored["Subject"] == "Service restored"
    assert "unless the overdue amount is paid by February 2, 2026" in body(restored)
    assert stored(app)[1].figures["promise_until"] == "2026-02-02"


def test_an_operators_suspension_sends_nothing(app: App, mailbox: Mailbox) -> None:
    dan = debtor(app)
    with app.uow() as uow:
        suspensions.suspend_service(
            uow,
            spec=suspensions.SuspendRequest(service_id=dan.service, reason="unregistered"),
            now=at(2026, 1, 10, 9),
            actor=ACTOR,
        )
    tick(app, at(2026, 1, 10, 10))
    assert kinds(app, dan.customer, "service.suspended") == ["service.suspended"]
    assert stored(app) == []
    assert kinds(app, dan.customer, "notification.") == []


def test_notify_suspension_off_sends_neither_but_keeps_reminders(app: App) -> None:
    policy: dict[str, str | None] = {"notify_suspension": "false", "reminder_days_before": "2"}
    dan = debtor(app, policy=policy)
    tick(app, at(2026, 1, 28, 6))
    tick(app, SUSPENDED)
    pay(app, at(2026, 1, 31, 10), dan.customer, "30.00", "dan-jan")
    assert kinds(app, dan.customer, "service.")[-2:] == ["service.suspended", "service.active"]
    assert [r.kind for r in stored(app)] == ["collection.reminder"]


def test_no_address_is_a_recorded_skip(app: App) -> None:
    dan = debtor(app, email=None)
    tick(app, SUSPENDED)
    assert stored(app) == []
    [skipped] = events(app, dan.customer, "notification.")
    assert (skipped.kind, skipped.reason) == ("notification.skipped", "no_email_address")
    assert skipped.figures["key"].startswith("suspend:")


@pytest.mark.postgres_only
def test_a_queued_message_wakes_the_sender_on_postgresql(
    database_url: str, app: App, smtp: tuple[Mailbox, int], mailbox: Mailbox
) -> None:
    """The business clock stays fixed; only the wake-up is real time: with a 30 s poll, the
    message must leave within a couple of seconds of the suspension's commit."""
    debtor(app)
    stop = threading.Event()
    sender = threading.Thread(
        target=mail_sender.run_sender,
        kwargs={
            "uow_factory": app.uow_factory,
            "mailer": mailer(smtp[1]),
            "clock": lambda: SUSPENDED,
            "portal_url": PORTAL,
            "stop": stop,
            "poll_s": 30.0,
            "database_url": database_url,
        },
        daemon=True,
    )
    sender.start()
    try:
        time.sleep(0.5)  # idle, waiting on its channel
        committed = time.monotonic()
        tick(app, SUSPENDED)
        while not mailbox.messages and time.monotonic() - committed < 10:
            time.sleep(0.02)
        assert [m["Subject"] for m in mailbox.messages] == ["Service suspended: $30.00 overdue"]
        assert time.monotonic() - committed < 3.0
    finally:
        stop.set()
        sender.join(timeout=5)
    assert not sender.is_alive()

"""The customer portal over HTTP on both databases: password and e-mailed one-time link
sign-in (a real SMTP server, aiosmtpd), balance and services in plain words, paying two months
through the sandbox gateway, refill cards, invoices, self-service reactivation of a paused
service, the subscriber's own promise to pay (suspended or throttled by collections), the
top-up rule, and the page's language."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

import pytest
from mail_support import Mailbox, smtp_server
from sqlalchemy import func, select
from web_support import CARD_SECRET, GARDEN_SECRET, PASSWORD, Browser, catalog, text_of, web_app

from ispbill.adapters.db import ledger_store as ledger
from ispbill.adapters.db import settings_store
from ispbill.adapters.db.models import (
    Charge,
    CheckoutRow,
    Customer,
    Event,
    InvoiceLineRow,
    OutboxCommand,
    Service,
    TopUpRule,
)
from ispbill.bootstrap import App
from ispbill.clock import FixedClock
from ispbill.use_cases.admin.web_auth import set_portal_login
from ispbill.use_cases.billing.reevaluation import charge_and_invoice
from ispbill.use_cases.billing.tick import tick
from ispbill.use_cases.catalog.customer_accounts import NewCustomer, add_customer
from ispbill.use_cases.catalog.name_lookups import (
    customer_class_id_of,
    customer_id_of,
    tax_profile_id_of,
)
from ispbill.use_cases.catalog.offerings import NewPlan, add_plan, add_tax_profile
from ispbill.use_cases.collections import collection_policy
from ispbill.use_cases.collections.walled_garden import signed_query
from ispbill.use_cases.payments.recording import NewPayment, record_payment
from ispbill.use_cases.payments.refill_cards import NewBatch, generate_batch, secret_key
from ispbill.use_cases.service_lifecycle.new_services import NewService, add_service
from scenarios.helpers import check_books


@pytest.fixture(scope="module")
def smtp() -> Iterator[tuple[Mailbox, int]]:
    with smtp_server() as server:
        yield server


@pytest.fixture
def portal(
    database_url: str, clock: FixedClock, smtp: tuple[Mailbox, int]
) -> Iterator[dict[str, Any]]:
    mailbox, port = smtp
    mailbox.messages.clear()
    app = web_app(database_url, clock, smtp_host="127.0.0.1", smtp_port=port)
    try:
        ids = catalog(app, clock.now())
        now = clock.now()
        people = {}
        for name, email, locale in [
            ("Jana", "jana@example.net", "cs_CZ"),
            ("Omar", "omar@example.net", "en_US"),
        ]:
            with app.uow() as uow:
                spec = NewCustomer(
                    name=name,
                    customer_class_id=customer_class_id_of(uow, "Home"),
                    currency="EUR",
                    locale=locale,
                    billing_timezone="Europe/Prague",
                    available_funds="5",
                )
                people[name] = add_customer(uow, spec=spec, now=now, actor="test").id
            with app.uow() as uow:
                set_portal_login(
                    uow,
                    customer_id=customer_id_of(uow, name),
                    email=email,
                    password=PASSWORD,
                    now=now,
                    actor="test",
                )
        yield {"app": app, "ids": ids, "people": people, "mailbox": mailbox}
        check_books(app)
    finally:
        app.close()


def signed_in(app: App, email: str = "jana@example.net") -> Browser:
    browser = Browser(app)
    browser.get("/portal/login")
    page = browser.submit("/portal/login", {"email": email, "password": PASSWORD})
    assert page.status_code == 200
    return browser


def test_password_sign_in_shows_the_balance_in_the_customers_language(
    portal: dict[str, Any],
) -> None:
    app = portal["app"]
    browser = Browser(app)
    assert browser.get("/portal").headers["location"] == "/portal/login"
    browser.get("/portal/login")
    wrong = browser.post("/portal/login", {"email": "jana@example.net", "password": "wrong one!"})
    assert wrong.status_code == 401
    page = browser.submit("/portal/login", {"email": "JANA@example.net", "password": PASSWORD})
    assert text_of(page.text, "balance") == "5,00\u00a0€"
    assert "Vaše služby" in page.text
    english = browser.submit("/portal/language", {"lang": "en", "next": "/portal"})
    assert "Your services" in english.text


def test_an_emailed_link_signs_in_once(portal: dict[str, Any]) -> None:
    app, mailbox = portal["app"], portal["mailbox"]
    browser = Browser(app)
    browser.get("/portal/login")
    unknown = browser.submit("/portal/link", {"email": "nobody@example.net"})
    known = browser.submit("/portal/link", {"email": "omar@example.net"})
    assert unknown.text.count("sign-in link is on its way") == 1
    assert known.text.count("sign-in link is on its way") == 1
    assert len(mailbox.messages) == 1
    message = mailbox.messages[0]
    assert message["To"] == "omar@example.net"
    body = message.get_payload(decode=True).decode()
    link = re.search(r"https://testserver(/portal/link/\S+)", body)
    assert link
    page = browser.get(link.group(1))
    assert page.status_code == 200  # a button, not a sign-in: mail scanners fetch links
    assert browser.get("/portal").status_code == 303
    home = browser.submit(link.group(1))
    assert "Omar" in home.text
    other = Browser(app)
    other.get(link.group(1))
    spent = other.post(link.group(1))
    assert spent.status_code == 401
    assert "already used" in spent.text


def test_a_link_expires(portal: dict[str, Any]) -> None:
    app, mailbox = portal["app"], portal["mailbox"]
    browser = Browser(app)
    browser.get("/portal/login")
    browser.submit("/portal/link", {"email": "omar@example.net"})
    body = mailbox.messages[-1].get_payload(decode=True).decode()
    path = re.search(r"https://testserver(/portal/link/\S+)", body).group(1)  # type: ignore[union-attr]
    app.clock.advance(timedelta(minutes=16))  # type: ignore[attr-defined]
    browser.get(path)
    assert browser.post(path).status_code == 401


def test_pay_two_months_in_the_sandbox_and_see_the_balance(portal: dict[str, Any]) -> None:
    app, ids, people = portal["app"], portal["ids"], portal["people"]
    with app.uow() as uow:
        spec = NewService(customer_id=customer_id_of(uow, "Jana"), plan_id=ids["plan"])
        add_service(uow, spec=spec, now=app.clock.now(), actor="test")
    browser = signed_in(app)
    quote = browser.get("/portal/quote?months=2")
    assert "K zaplacení nyní" in quote.text
    answer = browser.post("/portal/pay", {"months": "2"})
    assert answer.status_code == 303
    checkout = answer.headers["location"].removeprefix("https://testserver")
    assert checkout.startswith("/sandbox/checkout/")
    paid = browser.request("POST", checkout, data={"card_number": "4242424242424242"})
    assert paid.status_code == 200
    home = browser.get("/portal?paid=1")
    assert "Děkujeme" in home.text
    assert "gateway" in home.text  # the payment is listed
    # two periods paid for, less the 5 EUR credit: the wallet now holds them
    assert text_of(home.text, "balance") != "5,00\u00a0€"
    tick(app.uow, now=app.clock.now())
    with app.uow() as uow:
        service = uow.session.scalars(
            select(Service).where(Service.customer_id == people["Jana"])
        ).one()
        assert service.state == "active"


def test_redeem_a_refill_card(portal: dict[str, Any]) -> None:
    app = portal["app"]
    delivered: list[Any] = []
    with app.uow() as uow:
        generate_batch(
            uow,
            spec=NewBatch(count=1, value="10", currency="EUR"),
            key=secret_key(CARD_SECRET),
            now=app.clock.now(),
            actor="test",
            deliver=delivered.append,
        )
    code = delivered[0].cards[0].code
    browser = signed_in(app)
    wrong = browser.post("/portal/redeem", {"code": "AAAA-BBBB-CCCC-DDDD"})
    assert wrong.status_code == 422
    page = browser.submit("/portal/redeem", {"code": code})
    assert text_of(page.text, "balance") == "15,00\u00a0€"
    again = browser.post("/portal/redeem", {"code": code})
    assert again.status_code == 422


def test_invoices_are_the_customers_own(portal: dict[str, Any]) -> None:
    app, ids = portal["app"], portal["ids"]
    with app.uow() as uow:
        add_service(
            uow,
            spec=NewService(customer_id=customer_id_of(uow, "Omar"), plan_id=ids["plan"]),
            now=app.clock.now(),
            actor="test",
        )
    staff = Browser(app)
    staff.sign_in_staff("alice")
    staff.get(f"/console/customers/{portal['people']['Omar']}")
    staff.submit(
        f"/console/customers/{portal['people']['Omar']}/payments",
        {"amount": "30", "method": "cash", "idempotency_key": "omar-1"},
    )
    page = staff.submit(f"/console/customers/{portal['people']['Omar']}/charge")
    number = re.search(r'/console/invoices/([^"]+)\.pdf', page.text).group(1)  # type: ignore[union-attr]
    assert staff.get(f"/console/invoices/{number}.pdf").content.startswith(b"%PDF")
    omar = signed_in(app, "omar@example.net")
    assert omar.get(f"/portal/invoices/{number}.pdf").content.startswith(b"%PDF")
    jana = signed_in(app)
    assert jana.get(f"/portal/invoices/{number}.pdf").status_code == 404


def test_a_paused_service_is_reactivated_by_paying_months(portal: dict[str, Any]) -> None:
    """UISP: past "active to" the service is paused; the customer reactivates it from the
    portal by paying periods, when the operator allows self-service reactivation."""
    app, ids, _people = portal["app"], portal["ids"], portal["people"]
    now = app.clock.now()
    with app.uow() as uow:
        record_payment(
            uow,
            spec=NewPayment(
                customer_id=customer_id_of(uow, "Jana"), amount="30", idempotency_key="jana-cash"
            ),
            now=now,
            actor="test",
        )
    with app.uow() as uow:
        spec = NewService(
            customer_id=customer_id_of(uow, "Jana"),
            plan_id=ids["plan"],
            active_to=date(2026, 1, 20),
        )
        service_id = add_service(uow, spec=spec, now=now, actor="test").id
    tick(app.uow, now=now)
    app.clock.advance(timedelta(days=25))  # type: ignore[attr-defined]
    tick(app.uow, now=app.clock.now())
    with app.uow() as uow:
        assert uow.session.get(Service, service_id).state == "paused"  # type: ignore[union-attr]
    browser = signed_in(app)
    page = browser.get("/portal")
    assert "Pro obnovení služby nás prosím kontaktujte." in page.text  # off by default
    refused = browser.post(f"/portal/services/{service_id}/reactivate", {"months": "1"})
    assert refused.status_code == 422
    with app.uow() as uow:
        settings_store.set_value(
            uow, key="self_service_reactivation", raw="true", now=app.clock.now(), actor="test"
        )
    answer = browser.post(f"/portal/services/{service_id}/reactivate", {"months": "2"})
    assert answer.status_code == 303
    checkout = answer.headers["location"].removeprefix("https://testserver")
    assert checkout.startswith("/sandbox/checkout/")
    browser.request("POST", checkout, data={"card_number": "4242424242424242"})
    with app.uow() as uow:
        service = uow.session.get(Service, service_id)
        assert service is not None
        assert service.state == "active"
        # two whole months from 26 January; "active to" is the last active day
        assert service.active_to == date(2026, 3, 25)
    home = browser.get("/portal")
    assert "V provozu" in home.text


def test_top_up_rule_settings(portal: dict[str, Any]) -> None:
    app, people = portal["app"], portal["people"]
    browser = signed_in(app)
    browser.get("/portal")
    page = browser.submit(
        "/portal/top-up",
        {"enabled": "1", "threshold": "5", "amount": "20", "method": "4242424242424242"},
    )
    assert page.status_code == 200
    with app.uow() as uow:
        rule = uow.session.scalars(
            select(TopUpRule).where(TopUpRule.customer_id == people["Jana"])
        ).one()
        assert (rule.threshold_minor, rule.amount_minor, rule.enabled) == (500, 2000, True)
    browser.submit("/portal/top-up", {"threshold": "5", "amount": "20"})
    with app.uow() as uow:
        rule = uow.session.scalars(
            select(TopUpRule).where(TopUpRule.customer_id == people["Jana"])
        ).one()
        assert rule.enabled is False


def test_portal_forms_need_the_csrf_token(portal: dict[str, Any]) -> None:
    app = portal["app"]
    browser = signed_in(app)
    assert browser.request("POST", "/portal/pay", data={"months": "2"}).status_code == 403


def test_a_paused_subscriber_reactivates_from_the_walled_garden(portal: dict[str, Any]) -> None:
    """Seed 000: a seasonal home past its "active to" lands on the walled garden and pays
    months; the status box says when access is restored."""
    app, ids = portal["app"], portal["ids"]
    now = app.clock.now()
    with app.uow() as uow:
        record_payment(
            uow,
            spec=NewPayment(
                customer_id=customer_id_of(uow, "Jana"),
                amount="15",
                idempotency_key="jana-december",
            ),
            now=now,
            actor="test",
        )
    with app.uow() as uow:
        spec = NewService(
            customer_id=customer_id_of(uow, "Jana"),
            plan_id=ids["plan"],
            active_from=date(2025, 12, 1),
            active_to=date(2025, 12, 31),
        )
        service_id = add_service(uow, spec=spec, now=now, actor="test").id
    tick(app.uow, now=now)
    with app.uow() as uow:
        assert uow.session.get(Service, service_id).state == "paused"  # type: ignore[union-attr]
        settings_store.set_value(
            uow, key="self_service_reactivation", raw="true", now=now, actor="test"
        )
    query = urlencode(signed_query(GARDEN_SECRET, service_id, now + timedelta(days=7)))
    browser = Browser(app)
    page = browser.get(f"/garden?{query}")
    assert page.status_code == 200
    assert "Vaše služba je pozastavena" in page.text  # Jana reads Czech
    assert 'http-equiv="refresh"' in page.text  # refreshes itself without JavaScript too
    status = browser.get(f"/garden/status?{query}")
    assert 'hx-trigger="every 5s"' in status.text
    answer = browser.post(f"/garden/pay?{query}", {"months": "1"})
    assert answer.status_code == 303, answer.text
    checkout = answer.headers["location"].removeprefix("https://testserver")
    paid = browser.request("POST", checkout, data={"card_number": "4242424242424242"})
    assert 'id="continue"' in paid.text  # back to the garden
    status = browser.get(f"/garden/status?{query}")
    assert 'id="restored"' in status.text
    assert "hx-trigger" not in status.text  # polling stops once restored
    with app.uow() as uow:
        service = uow.session.get(Service, service_id)
        assert service is not None
        assert service.state == "active"
        assert service.active_to == date(2026, 1, 31)  # January, the last active day


# -- pay N months on reactivation: N whole months from the day (issue 13 items 7 and 8) ---------

MARCH_15 = datetime(2026, 3, 15, 9, 0, tzinfo=UTC)


def paused_since_march(portal: dict[str, Any], customer: str, plan: int) -> int:
    """A seasonal service that ran through February (1 to 28 February, paid) and is paused
    since 1 March; the clock is left on 15 March and self-service reactivation is on."""
    app = portal["app"]
    with app.uow() as uow:
        spec = NewService(
            customer_id=customer_id_of(uow, customer),
            plan_id=plan,
            active_from=date(2026, 2, 1),
            active_to=date(2026, 2, 28),
        )
        service_id = add_service(uow, spec=spec, now=app.clock.now(), actor="test").id
    for day in (date(2026, 2, 1), date(2026, 3, 1)):
        app.clock.set(datetime.combine(day, datetime.min.time(), UTC) + timedelta(hours=9))
        tick(app.uow, now=app.clock.now())
    app.clock.set(MARCH_15)
    with app.uow() as uow:
        assert uow.session.get(Service, service_id).state == "paused"  # type: ignore[union-attr]
        settings_store.set_value(
            uow, key="self_service_reactivation", raw="true", now=MARCH_15, actor="test"
        )
    return service_id


def charges_of(app: App, service_id: int) -> list[tuple[str, date, date, int]]:
    with app.uow() as uow:
        rows = uow.session.scalars(
            select(Charge).where(Charge.service_id == service_id).order_by(Charge.period_start)
        )
        return [(c.kind, c.period_start, c.period_end, c.gross_minor) for c in rows]


def ticks_until(app: App, *days: date) -> None:
    for day in days:
        app.clock.set(datetime.combine(day, datetime.min.time(), UTC) + timedelta(hours=9))
        tick(app.uow, now=app.clock.now())


def test_paying_two_months_in_the_portal_buys_two_whole_months_from_the_day(
    portal: dict[str, Any],
) -> None:
    """Seed 000: the customer "can choose one or more months to be paid". Reactivating on
    15 March for 2 months is quoted 2 x 20 EUR before paying, charged 15 March-14 April and
    15 April-14 May at 20 EUR each, "active to" is 14 May (the last active day), and the
    service pauses on 15 May with nothing more charged."""
    app, ids = portal["app"], portal["ids"]
    with app.uow() as uow:  # with the 5 EUR she starts with, February exactly
        record_payment(
            uow,
            spec=NewPayment(
                customer_id=customer_id_of(uow, "Jana"),
                amount="15",
                idempotency_key="jana-february",
            ),
            now=app.clock.now(),
            actor="test",
        )
    service_id = paused_since_march(portal, "Jana", ids["plan"])
    browser = signed_in(app)
    home = browser.get("/portal")
    assert f'hx-get="/portal/services/{service_id}/quote"' in home.text
    quote = browser.get(f"/portal/services/{service_id}/quote?months=2")
    assert quote.status_code == 200
    assert text_of(quote.text, f"reactivation-quote-{service_id}-total") == "40,00\u00a0€"
    assert "2026-03-15..2026-04-14" in quote.text
    assert "2026-04-15..2026-05-14" in quote.text
    assert text_of(home.text, "balance") == "0,00\u00a0€"
    with app.uow() as uow:  # the quote writes nothing
        assert uow.session.get(Service, service_id).state == "paused"  # type: ignore[union-attr]
    answer = browser.post(f"/portal/services/{service_id}/reactivate", {"months": "2"})
    assert answer.status_code == 303
    checkout = answer.headers["location"].removeprefix("https://testserver")
    with app.uow() as uow:
        opened = uow.session.scalars(select(CheckoutRow).order_by(CheckoutRow.id.desc())).first()
        assert opened is not None
        assert opened.amount_minor == 40_00  # what the quote said
    browser.request("POST", checkout, data={"card_number": "4242424242424242"})
    with app.uow() as uow:
        service = uow.session.get(Service, service_id)
        assert service is not None
        assert (service.state, service.active_to) == ("active", date(2026, 5, 14))
    ticks_until(app, date(2026, 4, 15), date(2026, 5, 14), date(2026, 5, 15), date(2026, 6, 15))
    assert charges_of(app, service_id) == [
        ("period", date(2026, 2, 1), date(2026, 3, 1), 20_00),
        ("reactivation", date(2026, 3, 15), date(2026, 4, 15), 20_00),
        ("period", date(2026, 4, 15), date(2026, 5, 15), 20_00),
    ]
    with app.uow() as uow:
        service = uow.session.get(Service, service_id)
        assert service is not None
        assert (service.state, service.state_reason) == ("paused", "active_to")
        jana = uow.session.scalars(select(Customer).where(Customer.name == "Jana")).one()
        invoice = charge_and_invoice(uow, customer=jana, now=app.clock.now(), actor="test")
        assert invoice.invoice_number is not None
    with app.uow() as uow:
        lines = uow.session.scalars(
            select(InvoiceLineRow)
            .where(InvoiceLineRow.service_id == service_id)
            .order_by(InvoiceLineRow.period_start)
        )
        assert [(line.period_start, line.period_end, line.gross_minor) for line in lines] == [
            (date(2026, 2, 1), date(2026, 3, 1), 20_00),
            (date(2026, 3, 15), date(2026, 4, 15), 20_00),
            (date(2026, 4, 15), date(2026, 5, 15), 20_00),
        ]
    with app.uow() as uow:
        assert ledger.wallet_balance(uow.session, jana.id, "EUR").is_zero  # all of it charged


def test_paying_three_months_on_the_walled_garden_buys_three_whole_months_with_tax(
    portal: dict[str, Any],
) -> None:
    """A postpaid subscriber on a 9.99 EUR + 21 % VAT plan picks 3 months on the garden: each
    choice shows its amount before paying, 3 months are 3 x 12.09 = 36.27 EUR (VAT per
    period, as the engine charges it), invoiced as three whole months from 15 March, "active
    to" 14 June, then paused."""
    app = portal["app"]
    now = app.clock.now()
    with app.uow() as uow:
        add_tax_profile(uow, name="VAT 21", rate="21", inclusive=False, now=now, actor="test")
    with app.uow() as uow:
        spec = NewPlan(
            name="Cottage",
            price="9.99",
            currency="EUR",
            download="50M",
            upload="10M",
            tax_profile_id=tax_profile_id_of(uow, "VAT 21"),
        )
        plan = add_plan(uow, spec=spec, now=now, actor="test").id
    with app.uow() as uow:
        spec = NewCustomer(
            name="Karel",
            customer_class_id=customer_class_id_of(uow, "Home"),
            currency="EUR",
            locale="en_US",
            billing_timezone="Europe/Prague",
            balance_control="postpaid",
        )
        add_customer(uow, spec=spec, now=now, actor="test")
    service_id = paused_since_march(portal, "Karel", plan)
    with app.uow() as uow:  # February's invoice, paid
        record_payment(
            uow,
            spec=NewPayment(
                customer_id=customer_id_of(uow, "Karel"),
                amount="12.09",
                idempotency_key="karel-february",
            ),
            now=MARCH_15,
            actor="test",
        )
    query = urlencode(signed_query(GARDEN_SECRET, service_id, MARCH_15 + timedelta(days=7)))
    browser = Browser(app)
    page = browser.get(f"/garden?{query}")
    assert page.status_code == 200
    assert text_of(page.text, "months-1") == "1 month (€12.09)"
    assert text_of(page.text, "months-3") == "3 months (€36.27)"
    assert text_of(page.text, "months-12") == "12 months (€145.08)"
    answer = browser.post(f"/garden/pay?{query}", {"months": "3"})
    assert answer.status_code == 303, answer.text
    checkout = answer.headers["location"].removeprefix("https://testserver")
    with app.uow() as uow:
        opened = uow.session.scalars(select(CheckoutRow).order_by(CheckoutRow.id.desc())).first()
        assert opened is not None
        assert opened.amount_minor == 36_27
    browser.request("POST", checkout, data={"card_number": "4242424242424242"})
    with app.uow() as uow:
        service = uow.session.get(Service, service_id)
        assert service is not None
        assert (service.state, service.active_to) == ("active", date(2026, 6, 14))
    ticks_until(app, date(2026, 4, 15), date(2026, 5, 15), date(2026, 6, 15), date(2026, 7, 1))
    assert charges_of(app, service_id) == [
        ("period", date(2026, 2, 1), date(2026, 3, 1), 12_09),
        ("period", date(2026, 3, 15), date(2026, 4, 15), 12_09),
        ("period", date(2026, 4, 15), date(2026, 5, 15), 12_09),
        ("period", date(2026, 5, 15), date(2026, 6, 15), 12_09),
    ]
    with app.uow() as uow:
        service = uow.session.get(Service, service_id)
        assert service is not None
        assert (service.state, service.state_reason) == ("paused", "active_to")
        lines = uow.session.scalars(
            select(InvoiceLineRow)
            .where(InvoiceLineRow.service_id == service_id)
            .order_by(InvoiceLineRow.period_start)
        )
        assert [
            (line.period_start, line.period_end, line.net_minor, line.gross_minor) for line in lines
        ] == [
            (date(2026, 2, 1), date(2026, 3, 1), 9_99, 12_09),
            (date(2026, 3, 15), date(2026, 4, 15), 9_99, 12_09),
            (date(2026, 4, 15), date(2026, 5, 15), 9_99, 12_09),
            (date(2026, 5, 15), date(2026, 6, 15), 9_99, 12_09),
        ]
        karel = uow.session.scalars(select(Customer).where(Customer.name == "Karel")).one()
        assert ledger.wallet_balance(uow.session, karel.id, "EUR").is_zero


def test_garden_forms_need_the_csrf_token(portal: dict[str, Any]) -> None:
    app = portal["app"]
    query = urlencode(signed_query(GARDEN_SECRET, 1, app.clock.now() + timedelta(days=1)))
    browser = Browser(app)
    assert browser.request("POST", f"/garden/pay?{query}", data={"months": "1"}).status_code in (
        403,
        404,
    )


# -- the subscriber's own promise to pay --------------------------------------------------------


def debtor(portal: dict[str, Any], **policy: str) -> tuple[int, int]:
    """Petr, postpaid and billed forward from 1 January (20 EUR due on the 15th), unpaid, with
    the collection policy on (``policy`` adds to it); returns (customer, service)."""
    app, ids = portal["app"], portal["ids"]
    now = app.clock.now()
    with app.uow() as uow:
        spec = NewCustomer(
            name="Petr",
            customer_class_id=customer_class_id_of(uow, "Home"),
            currency="EUR",
            balance_control="postpaid",
            invoicing_mode="forward",
        )
        customer = add_customer(uow, spec=spec, now=now, actor="test").id
    with app.uow() as uow:
        set_portal_login(
            uow,
            customer_id=customer_id_of(uow, "Petr"),
            email="petr@example.net",
            password=PASSWORD,
            now=now,
            actor="t",
        )
    with app.uow() as uow:
        spec = NewService(
            customer_id=customer_id_of(uow, "Petr"),
            plan_id=ids["plan"],
            active_from=date(2026, 1, 1),
        )
        service = add_service(uow, spec=spec, now=now, actor="test").id
    tick(app.uow, now=now)
    with app.uow() as uow:
        collection_policy.set_values(
            uow, changes={"enabled": "true", **policy}, customer_class_id=None, now=now, actor="t"
        )
    return customer, service


def at(app: App, moment: datetime) -> None:
    app.clock.set(moment)  # type: ignore[attr-defined]
    tick(app.uow, now=moment)


def service_row(app: App, service_id: int) -> Service:
    with app.uow() as uow:
        row = uow.session.get(Service, service_id)
        assert row is not None
        return row


def written(app: App, customer_id: int) -> tuple[int, int, Any, Any]:
    """Everything a promise writes: events, outbox commands, the customer's promise fields."""
    with app.uow() as uow:
        customer = uow.session.get(Customer, customer_id)
        assert customer is not None
        return (
            uow.session.scalar(select(func.count()).select_from(Event)) or 0,
            uow.session.scalar(select(func.count()).select_from(OutboxCommand)) or 0,
            customer.promise_until,
            customer.self_promise_period,
        )


def outbox(app: App, service_id: int) -> list[tuple[str, str]]:
    with app.uow() as uow:
        rows = uow.session.scalars(
            select(OutboxCommand)
            .where(OutboxCommand.service_id == service_id)
            .order_by(OutboxCommand.id)
        )
        return [(row.event_kind, row.reason) for row in rows]


def test_a_suspended_non_payer_promises_from_the_portal(portal: dict[str, Any]) -> None:
    """Suspended on 30 January (due the 15th + 14 whole days); the portal explains why, offers
    the promise, restores the service for the policy's 3 days with the customer as actor and a
    command for the network, then refuses a second promise in the same period."""
    app = portal["app"]
    customer, service = debtor(portal)
    at(app, datetime(2026, 1, 30, 1, tzinfo=UTC))
    assert service_row(app, service).state_reason == "non_payer"
    browser = signed_in(app, "petr@example.net")
    home = browser.get("/portal")
    assert "is suspended as a non-payer" in home.text  # the "why" sentence
    assert f'action="/portal/services/{service}/promise"' in home.text
    assert "Restores the service for 3 days, once per billing period." in home.text
    answer = browser.post(f"/portal/services/{service}/promise")
    assert answer.headers["location"] == f"/portal#service-{service}"
    row = service_row(app, service)
    assert (row.state, row.state_reason) == ("active", None)
    assert outbox(app, service)[-1] == ("service.active", "promise_to_pay")
    with app.uow() as uow:
        event = uow.session.scalars(
            select(Event).where(Event.kind == "collection.promise").order_by(Event.id.desc())
        ).first()
        assert event is not None
        assert event.actor == f"customer:{customer}"
        assert event.figures["by_subscriber"] is True
        assert event.figures["days"] == 3
    home = browser.follow(answer)
    assert text_of(home.text, "promise-until").endswith("Please pay what is due by then.")
    assert "2/2/26" in text_of(home.text, "promise-until")  # 30 January 01:00 + 3 days
    assert "/promise" not in home.text  # nothing left to restore
    before = written(app, customer)
    refused = browser.post(f"/portal/services/{service}/promise")
    assert refused.status_code == 422
    assert "already used once in the billing period" in text_of(
        refused.text, f"promise-error-{service}"
    )
    assert written(app, customer) == before


def test_a_throttled_subscriber_promises_from_the_portal(portal: dict[str, Any]) -> None:
    """Throttled on 23 January (7 days after due) and still online, so never on the garden:
    the portal's promise gives full speed back until the 27th, then the throttle returns and
    the page says the promise of this period is used; posting again is refused."""
    app = portal["app"]
    customer, service = debtor(
        portal, throttle_after_days="7", throttle_down_kbps="1024", throttle_up_kbps="256"
    )
    at(app, datetime(2026, 1, 23, 6, tzinfo=UTC))
    assert service_row(app, service).throttle_down_kbps == 1024
    app.clock.set(datetime(2026, 1, 24, 10, tzinfo=UTC))  # type: ignore[attr-defined]
    browser = signed_in(app, "petr@example.net")
    home = browser.get("/portal")
    assert "1024/256 kbit/s" in text_of(home.text, f"throttled-{service}")
    assert "throttled by collections to 1024/256 kbps" in home.text
    answer = browser.post(f"/portal/services/{service}/promise")
    assert answer.headers["location"] == f"/portal#service-{service}"
    row = service_row(app, service)
    assert (row.state, row.throttle_down_kbps, row.throttle_up_kbps) == ("active", None, None)
    assert outbox(app, service)[-1] == ("service.unthrottled", "promise_to_pay")
    home = browser.follow(answer)
    assert f"throttled-{service}" not in home.text
    assert 'id="promise-until"' in home.text
    at(app, datetime(2026, 1, 27, 10, tzinfo=UTC))  # lapsed unpaid: slow again
    assert service_row(app, service).throttle_down_kbps == 1024
    browser = signed_in(app, "petr@example.net")  # the session of the 24th has expired
    home = browser.get("/portal")
    assert "You have already promised to pay once in this billing period." in home.text
    assert f'action="/portal/services/{service}/promise"' not in home.text
    before = written(app, customer)
    refused = browser.post(f"/portal/services/{service}/promise")
    assert refused.status_code == 422
    assert "already used once" in text_of(refused.text, f"promise-error-{service}")
    assert written(app, customer) == before
    assert service_row(app, service).throttle_down_kbps == 1024


def test_a_promise_is_only_for_the_customers_own_services_with_the_csrf_token(
    portal: dict[str, Any],
) -> None:
    app = portal["app"]
    customer, service = debtor(portal)
    at(app, datetime(2026, 1, 30, 1, tzinfo=UTC))
    before = written(app, customer)
    omar = signed_in(app, "omar@example.net")
    assert omar.post(f"/portal/services/{service}/promise").status_code == 404
    assert omar.post("/portal/services/999999/promise").status_code == 404
    assert omar.post(f"/portal/services/{2**63}/promise").status_code == 404
    petr = signed_in(app, "petr@example.net")
    forged = petr.request("POST", f"/portal/services/{service}/promise", data={})
    assert forged.status_code == 403
    assert written(app, customer) == before
    assert service_row(app, service).state == "suspended"


def test_the_promise_speaks_czech(portal: dict[str, Any]) -> None:
    app = portal["app"]
    customer, service = debtor(portal)
    with app.uow() as uow:
        row = uow.session.get(Customer, customer)
        assert row is not None
        row.locale = "cs_CZ"
        uow.commit()
    at(app, datetime(2026, 1, 30, 1, tzinfo=UTC))
    browser = signed_in(app, "petr@example.net")
    assert "Slib platby" in browser.get("/portal").text
    home = browser.submit(f"/portal/services/{service}/promise")
    assert "obnovena do" in text_of(home.text, "promise-until")

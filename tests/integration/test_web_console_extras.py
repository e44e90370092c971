"""The console's one-off charge form and a service's add-ons over HTTP on both databases:
a charge from the wallet (a double submit charges once), a refusal shown next to the form with
nothing written, an add-on attached and ended, read-only users refused, and a reseller's user
kept to its own customers. The books are checked at the end of each test."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date

import pytest
from sqlalchemy import func, select
from web_support import Browser, confirm_token_of, console_world, customer, text_of

from ispbill.adapters.db.models import (
    Charge,
    Invoice,
    Payment,
    ScheduledChange,
    Service,
    ServiceAddOn,
)
from ispbill.bootstrap import App
from ispbill.clock import FixedClock
from ispbill.use_cases.billing import tick as billing
from ispbill.use_cases.service_lifecycle.new_services import NewService, add_service


@pytest.fixture
def web(database_url: str, clock: FixedClock) -> Iterator[tuple[App, dict[str, int]]]:
    with console_world(database_url, clock) as world:
        yield world


def extra_count(app: App) -> int:
    with app.uow() as uow:
        return int(uow.session.scalar(select(func.count()).where(Charge.kind == "extra")) or 0)


def test_an_operator_adds_a_one_off_charge_and_an_addon(web: tuple[App, dict[str, int]]) -> None:
    app, ids = web
    petr = customer(app, "Petr", available_funds="100")
    with app.uow() as uow:
        service = add_service(
            uow,
            spec=NewService(customer_id=petr, plan_id=ids["plan"]),
            now=app.clock.now(),
            actor="test",
        ).id
    billing.tick(app.uow, now=app.clock.now())
    browser = Browser(app)
    browser.sign_in_staff("alice")
    page = browser.get(f"/console/customers/{petr}")
    assert text_of(page.text, "balance") == "€80.00"
    assert f"/console/customers/{petr}/extra-charges" in page.text
    form = {
        "description": "Installation",
        "amount": "25.00",
        "quantity": "2",
        "service": str(service),
        "idempotency_key": "form-1",
    }
    done = browser.submit(f"/console/customers/{petr}/extra-charges", form)
    assert done.status_code == 200
    assert text_of(done.text, "balance") == "€30.00"
    assert "Installation" in done.text
    again = browser.submit(f"/console/customers/{petr}/extra-charges", form)  # a double submit
    assert text_of(again.text, "balance") == "€30.00"
    assert extra_count(app) == 1

    refused = browser.post(
        f"/console/customers/{petr}/extra-charges",
        {"description": "Router", "amount": "30.01", "idempotency_key": "form-2"},
    )
    assert refused.status_code == 422
    assert "amount: the prepaid wallet holds 30.00 EUR" in refused.text
    assert extra_count(app) == 1

    added = browser.submit(
        f"/console/services/{service}/addons", {"description": "Static IP", "price": "3.00"}
    )
    assert added.status_code == 200
    assert "Static IP" in added.text
    with app.uow() as uow:
        addon = uow.session.scalars(select(ServiceAddOn)).one()
    assert f"/console/addons/{addon.id}/end" in added.text
    ended = browser.submit(f"/console/addons/{addon.id}/end", {})
    assert ended.status_code == 200
    with app.uow() as uow:
        stored = uow.session.get(ServiceAddOn, addon.id)
        assert stored is not None
        assert stored.ends_on is not None


def test_read_only_and_other_resellers_are_refused(web: tuple[App, dict[str, int]]) -> None:
    app, _ = web
    north = customer(app, "Nina", reseller="North", available_funds="50")
    rita = Browser(app)
    rita.sign_in_staff("rita")
    rita.get(f"/console/customers/{north}")
    form = {"description": "Fee", "amount": "1", "idempotency_key": "k"}
    assert rita.post(f"/console/customers/{north}/extra-charges", form).status_code == 403
    sam = Browser(app)
    sam.sign_in_staff("sam")
    sam.get("/console")
    assert sam.post(f"/console/customers/{north}/extra-charges", form).status_code == 404
    assert extra_count(app) == 0


def test_void_states_the_consequence_first_then_credit_and_terms(
    web: tuple[App, dict[str, int]],
) -> None:
    app, ids = web
    olga = customer(app, "Olga", balance_control="postpaid")
    with app.uow() as uow:
        add_service(
            uow,
            spec=NewService(customer_id=olga, plan_id=ids["plan"]),
            now=app.clock.now(),
            actor="test",
        )
    billing.tick(app.uow, now=app.clock.now())
    with app.uow() as uow:
        invoice = uow.session.scalars(select(Invoice).where(Invoice.customer_id == olga)).one()
    browser = Browser(app)
    browser.sign_in_staff("alice")
    page = browser.get(f"/console/customers/{olga}")
    assert f"/console/invoices/{invoice.id}/void" in page.text
    asked = browser.post(f"/console/invoices/{invoice.id}/void", {"reason": "issued in error"})
    assert asked.status_code == 200
    assert f"This will void invoice {invoice.number} of" in asked.text
    assert "can never be paid or voided again" in asked.text
    assert "Reason: issued in error" in asked.text
    with app.uow() as uow:  # nothing written before the confirmation
        assert uow.session.get(Invoice, invoice.id).status == "issued"  # type: ignore[union-attr]
    # the old one-click shortcut and a token for another reason do nothing
    for form in (
        {"reason": "issued in error", "confirmed": "1"},
        {"reason": "another reason", "confirm_token": confirm_token_of(asked.text)},
    ):
        browser.post(f"/console/invoices/{invoice.id}/void", form)
        with app.uow() as uow:
            assert uow.session.get(Invoice, invoice.id).status == "issued"  # type: ignore[union-attr]
    done = browser.confirm(f"/console/invoices/{invoice.id}/void", {"reason": "issued in error"})
    assert done.status_code == 200
    with app.uow() as uow:
        assert uow.session.get(Invoice, invoice.id).status == "void"  # type: ignore[union-attr]
    refused = browser.post(f"/console/invoices/{invoice.id}/credit", {"reason": "x"})
    assert refused.status_code == 422
    assert "is void" in refused.text

    terms = browser.submit(f"/console/customers/{olga}/payment-terms", {"payment_terms_days": "30"})
    assert terms.status_code == 200
    assert 'id="payment_terms_days" name="payment_terms_days" inputmode="numeric" value="30"' in (
        terms.text
    )
    paid = browser.submit(
        f"/console/customers/{olga}/payments",
        {"amount": "5", "method": "cash", "idempotency_key": "p-1", "received_on": "2025-12-30"},
    )
    assert paid.status_code == 200
    with app.uow() as uow:
        payment = uow.session.scalars(select(Payment)).one()
        assert payment.received_at.date() == date(2025, 12, 30)


def test_terminate_asks_first_and_changes_are_scheduled(web: tuple[App, dict[str, int]]) -> None:
    app, ids = web
    petr = customer(app, "Petr", available_funds="100")
    with app.uow() as uow:
        service = add_service(
            uow,
            spec=NewService(customer_id=petr, plan_id=ids["plan"]),
            now=app.clock.now(),
            actor="test",
        ).id
    billing.tick(app.uow, now=app.clock.now())
    browser = Browser(app)
    browser.sign_in_staff("alice")
    browser.get(f"/console/customers/{petr}")
    asked = browser.post(f"/console/services/{service}/terminate", {})
    assert asked.status_code == 200
    assert f"This will terminate service #{service} (Fiber 100) of Petr from today" in asked.text
    assert "it ends for good" in asked.text
    with app.uow() as uow:
        assert uow.session.get(Service, service).state == "active"  # type: ignore[union-attr]
    planned = browser.submit(
        f"/console/services/{service}/schedule", {"kind": "termination", "at_period_end": "1"}
    )
    assert planned.status_code == 200
    assert "Ends after" in planned.text
    with app.uow() as uow:
        change = uow.session.scalars(select(ScheduledChange)).one()
    cancelled = browser.submit(f"/console/scheduled-changes/{change.id}/cancel", {})
    assert cancelled.status_code == 200
    assert "Ends after" not in cancelled.text
    # the old one-click shortcut does nothing; a token for another day is not this confirmation
    browser.post(f"/console/services/{service}/terminate", {"confirmed": "1"})
    other_day = browser.post(
        f"/console/services/{service}/terminate",
        {"effective": "2026-12-31", "confirm_token": confirm_token_of(asked.text)},
    )
    assert other_day.status_code == 409
    with app.uow() as uow:
        assert uow.session.get(Service, service).state == "active"  # type: ignore[union-attr]
    done = browser.confirm(f"/console/services/{service}/terminate", {})
    assert done.status_code == 200
    with app.uow() as uow:
        assert uow.session.get(Service, service).state == "ended"  # type: ignore[union-attr]

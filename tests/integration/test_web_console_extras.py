"""The console's one-off charge form and a service's add-ons over HTTP on both databases:
a charge from the wallet (a double submit charges once), a refusal shown next to the form with
nothing written, an add-on attached and ended, read-only users refused, and a reseller's user
kept to its own customers. The books are checked at the end of each test."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import func, select
from web_support import Browser, console_world, customer, text_of

from ispbill.adapters.db.models import Charge, ServiceAddOn
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

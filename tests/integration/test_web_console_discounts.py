"""The console's discount form over HTTP on both databases: a discount added on a service and
listed on the customer's page, a refusal shown next to the form with nothing written, a
discount ended, and read-only users and other resellers refused."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import func, select
from web_support import Browser, console_world, customer

from ispbill.adapters.db.models import DiscountRow
from ispbill.bootstrap import App
from ispbill.clock import FixedClock
from ispbill.use_cases.billing import tick as billing
from ispbill.use_cases.service_lifecycle.new_services import NewService, add_service


@pytest.fixture
def web(database_url: str, clock: FixedClock) -> Iterator[tuple[App, dict[str, int]]]:
    with console_world(database_url, clock) as world:
        yield world


def discount_count(app: App) -> int:
    with app.uow() as uow:
        return int(uow.session.scalar(select(func.count()).select_from(DiscountRow)) or 0)


def test_an_operator_adds_and_ends_a_discount(web: tuple[App, dict[str, int]]) -> None:
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
    assert f"/console/customers/{petr}/discounts" in page.text

    refused = browser.post(
        f"/console/customers/{petr}/discounts",
        {"service": str(service), "percent": "120", "periods": "2"},
    )
    assert refused.status_code == 422
    assert "percent: must be a whole number from 1 to 100" in refused.text
    assert discount_count(app) == 0

    done = browser.submit(
        f"/console/customers/{petr}/discounts",
        {"service": str(service), "percent": "10", "periods": "2", "reason": "Welcome"},
    )
    assert done.status_code == 200
    assert "Welcome" in done.text
    with app.uow() as uow:
        row = uow.session.scalars(select(DiscountRow)).one()
    assert (row.service_id, row.percent, row.periods) == (service, 10, 2)
    assert f"/console/discounts/{row.id}/end" in done.text
    ended = browser.submit(f"/console/discounts/{row.id}/end", {})
    assert ended.status_code == 200
    with app.uow() as uow:
        stored = uow.session.get(DiscountRow, row.id)
        assert stored is not None
        assert stored.ended_on is not None


def test_read_only_and_other_resellers_are_refused(web: tuple[App, dict[str, int]]) -> None:
    app, _ = web
    north = customer(app, "Nina", reseller="North", available_funds="50")
    form = {"percent": "10", "periods": "1"}
    rita = Browser(app)
    rita.sign_in_staff("rita")
    rita.get(f"/console/customers/{north}")
    assert rita.post(f"/console/customers/{north}/discounts", form).status_code == 403
    sam = Browser(app)
    sam.sign_in_staff("sam")
    sam.get("/console")
    assert sam.post(f"/console/customers/{north}/discounts", form).status_code == 404
    assert discount_count(app) == 0

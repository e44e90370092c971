"""``/api/v1/discounts`` and ``/api/v1/discounts/{id}/end`` through HTTP on both databases: a
service's 10 % priced by the tick, refusals as problem+json naming the field, and a reseller
kept to its own customers. The books are checked after the test."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest
from api_support import PLAN, PROBLEM, Api, World, api_app, customer_body, make_world

from ispbill.bootstrap import App
from ispbill.clock import FixedClock
from scenarios.helpers import check_books, tick


@pytest.fixture
def api(database_url: str, clock: FixedClock) -> Iterator[tuple[App, World]]:
    app = api_app(database_url, clock)
    try:
        world = make_world(app)
        yield app, world
        check_books(app)
    finally:
        app.close()


def test_discounts(api: tuple[App, World], clock: FixedClock) -> None:
    app, world = api
    admin = Api(app, world.tokens["ops"])
    plan = admin.post("/api/v1/plans", json=PLAN).json()
    pia = admin.post("/api/v1/customers", json=customer_body("Pia", available_funds="100")).json()
    service = admin.post(
        "/api/v1/services", json={"customer_id": pia["id"], "plan_id": plan["id"]}
    ).json()

    for body, field in (
        ({"service_id": service["id"], "percent": 0, "periods": 1}, "percent"),
        ({"service_id": service["id"], "amount": "-1", "periods": 1}, "amount"),
        ({"service_id": service["id"], "percent": 10}, "periods"),
        ({"percent": 10, "periods": 1}, "customer"),
    ):
        refused = admin.post("/api/v1/discounts", json=body)
        assert refused.status_code == 422, (body, refused.text)
        assert refused.headers["content-type"].startswith(PROBLEM)
        assert refused.json()["field"] == field, body
    assert admin.get("/api/v1/discounts").json() == []

    added = admin.post(
        "/api/v1/discounts",
        json={"service_id": service["id"], "percent": 10, "periods": 1, "reason": "Welcome"},
    )
    assert added.status_code == 201, added.text
    clock.advance(timedelta(days=35))  # into the next period: the first one discounted
    tick(app, clock.now())  # the API queues a tick; the test runs it
    [listed] = admin.get("/api/v1/discounts", params={"customer_id": pia["id"]}).json()
    assert (listed["percent"], listed["given"]["amount"], listed["reason"]) == (
        10,
        "3.00",
        "Welcome",
    )
    customer = admin.get(f"/api/v1/customers/{pia['id']}").json()
    assert customer["balance"]["amount"] == "43.00"  # 100 - 30 - (30 - 3)

    north = Api(app, world.tokens["north"])
    assert north.get("/api/v1/discounts").json() == []
    assert north.get("/api/v1/discounts", params={"customer_id": pia["id"]}).status_code == 404
    assert north.post(f"/api/v1/discounts/{listed['id']}/end").status_code == 404
    assert (
        north.post(
            "/api/v1/discounts", json={"customer_id": pia["id"], "percent": 5, "periods": 1}
        ).status_code
        == 404
    )
    ended = admin.post(f"/api/v1/discounts/{listed['id']}/end")
    assert ended.status_code == 200, ended.text
    assert ended.json()["ended_on"] is not None
    again = admin.post(f"/api/v1/discounts/{listed['id']}/end")
    assert (again.status_code, again.json()["field"]) == (422, "discount")

"""One operator's month over HTTP alone, on both databases: create a plan, a customer and a
service; pay; tick; the invoice (and its PDF); the collection policy suspends the non-payer
after the due date; the customer asks why; paying restores the service at once. Then the
books are checked."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest
from api_support import PLAN, Api, api_app, customer_body, make_world

from ispbill.bootstrap import App
from ispbill.clock import FixedClock
from scenarios.helpers import check_books


@pytest.fixture
def e2e_app(database_url: str, clock: FixedClock) -> Iterator[App]:
    app = api_app(database_url, clock)
    try:
        yield app
    finally:
        app.close()


def test_plan_customer_service_pay_tick_invoice_suspend_restore(
    e2e_app: App, clock: FixedClock
) -> None:
    world = make_world(e2e_app)
    admin = Api(e2e_app, world.tokens["ops"])

    plan = admin.post("/api/v1/plans", json=PLAN)
    assert plan.status_code == 201, plan.text
    customer = admin.post(
        "/api/v1/customers",
        json=customer_body("Olga", balance_control="postpaid", credit_limit="100.00"),
    )
    assert customer.status_code == 201, customer.text
    cid = customer.json()["id"]
    service = admin.post(
        "/api/v1/services", json={"customer_id": cid, "plan_id": plan.json()["id"]}
    )
    assert service.status_code == 201, service.text
    sid = service.json()["id"]

    paid = admin.post(
        "/api/v1/payments",
        json={"customer_id": cid, "amount": "10.00", "currency": "USD"},
        headers={"Idempotency-Key": "olga-1"},
    )
    assert paid.status_code == 201, paid.text
    ticked = admin.post("/api/v1/ticks/run", json={})  # (the payment already ran the engine)
    assert ticked.status_code == 200, ticked.text
    assert admin.get(f"/api/v1/services/{sid}").json()["state"] == "active"

    [invoice] = admin.get("/api/v1/invoices", params={"customer_id": cid}).json()["items"]
    assert invoice["gross"] == {"amount": "30.00", "currency": "USD"}
    assert invoice["paid"] == {"amount": "10.00", "currency": "USD"}
    assert invoice["status"] == "partially_paid"
    assert admin.get(f"/api/v1/invoices/{invoice['id']}/pdf").content.startswith(b"%PDF")

    policy = admin.put(
        "/api/v1/collection/policy",
        json={"changes": {"enabled": "true", "days_after_due": "3"}},
    )
    assert policy.status_code == 200, policy.text
    clock.advance(timedelta(days=20))  # 14 days of payment terms, then 3 more
    assert admin.post("/api/v1/ticks/run", json={}).status_code == 200
    suspended = admin.get(f"/api/v1/services/{sid}").json()
    assert suspended["state"] == "suspended", suspended

    session = admin.post("/api/v1/sessions", json={"customer_id": cid}).json()
    portal = Api(e2e_app, session["token"])
    why = portal.get(f"/api/v1/services/{sid}/why")
    assert why.status_code == 200, why.text
    assert why.json()["overdue_total"] == {"amount": "20.00", "currency": "USD"}

    restored = admin.post(
        "/api/v1/payments",
        json={"customer_id": cid, "amount": "20.00", "currency": "USD"},
        headers={"Idempotency-Key": "olga-2"},
    )
    assert restored.status_code == 201, restored.text
    assert admin.get(f"/api/v1/services/{sid}").json()["state"] == "active"
    assert admin.get(f"/api/v1/invoices/{invoice['id']}").json()["status"] == "paid"
    kinds = [
        e["kind"]
        for e in admin.get(
            "/api/v1/events", params={"customer_id": cid, "kind_prefix": "service.", "limit": 50}
        ).json()["items"]
    ]
    assert "service.suspended" in kinds
    assert kinds[0] == "service.active"
    check_books(e2e_app)

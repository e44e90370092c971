"""``/api/v1/customers/{id}/charges``, ``/services/{id}/addons`` and ``/addons/{id}/end``
through HTTP on both databases: a one-off charge from a prepaid wallet and one waiting for a
postpaid invoice, an add-on charged at once for the rest of the period, refusals as
problem+json naming the field, and a reseller kept to its own customers. The books are
checked after each test."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest
from api_support import PLAN, PROBLEM, Api, World, api_app, customer_body, make_world

from ispbill.bootstrap import App
from ispbill.clock import FixedClock
from scenarios.helpers import check_books


@pytest.fixture
def api(database_url: str, clock: FixedClock) -> Iterator[tuple[App, World]]:
    app = api_app(database_url, clock)
    try:
        world = make_world(app)
        yield app, world
        check_books(app)
    finally:
        app.close()


def test_charges_and_addons(api: tuple[App, World]) -> None:
    app, world = api
    admin = Api(app, world.tokens["ops"])
    plan = admin.post("/api/v1/plans", json=PLAN).json()
    pia = admin.post("/api/v1/customers", json=customer_body("Pia", available_funds="100")).json()
    olga = admin.post(
        "/api/v1/customers", json=customer_body("Olga", balance_control="postpaid")
    ).json()
    pia_service = admin.post(
        "/api/v1/services", json={"customer_id": pia["id"], "plan_id": plan["id"]}
    ).json()
    admin.post("/api/v1/services", json={"customer_id": olga["id"], "plan_id": plan["id"]})
    assert admin.post("/api/v1/ticks/run", json={}).json()["charges"] == 2

    fee = admin.post(
        f"/api/v1/customers/{pia['id']}/charges",
        json={"amount": "25.00", "description": "Installation", "quantity": 1},
        headers={"Idempotency-Key": "install-pia"},
    )
    assert fee.status_code == 201, fee.text
    body = fee.json()
    assert (body["gross"]["amount"], body["paid_from"], body["created"]) == (
        "25.00",
        "wallet",
        True,
    )
    assert body["balance"]["amount"] == "45.00"  # 100 - 30 - 25
    later = admin.post(
        f"/api/v1/customers/{olga['id']}/charges",
        json={"amount": "9.50", "description": "Late fee", "currency": "USD"},
    )
    assert later.status_code == 201, later.text
    assert (later.json()["paid_from"], later.json()["invoice_number"]) == ("next_invoice", None)
    listed = admin.get(f"/api/v1/customers/{olga['id']}/charges").json()
    assert [c["description"] for c in listed] == ["Late fee"]

    too_much = admin.post(
        f"/api/v1/customers/{pia['id']}/charges", json={"amount": "45.01", "description": "x"}
    )
    assert too_much.status_code == 422
    assert too_much.headers["content-type"].startswith(PROBLEM)
    assert too_much.json()["field"] == "amount"
    euro = admin.post(
        f"/api/v1/customers/{pia['id']}/charges",
        json={"amount": "1.00", "currency": "EUR", "description": "x"},
    )
    assert (euro.status_code, euro.json()["field"]) == (422, "currency")

    addon = admin.post(
        f"/api/v1/services/{pia_service['id']}/addons",
        json={"description": "Static IP", "price": "3.00"},
    )
    assert addon.status_code == 201, addon.text
    assert addon.json()["charged_now"]["amount"] != "0.00"  # the rest of this period
    listed_addons = admin.get(f"/api/v1/services/{pia_service['id']}/addons").json()
    assert [a["description"] for a in listed_addons] == ["Static IP"]
    ended = admin.post(f"/api/v1/addons/{addon.json()['id']}/end", json={})
    assert ended.status_code == 200, ended.text
    assert ended.json()["ends_on"] is not None

    north = Api(app, world.tokens["north"])
    assert north.get(f"/api/v1/customers/{pia['id']}/charges").status_code == 404
    assert north.get(f"/api/v1/services/{pia_service['id']}/addons").status_code == 404
    assert north.post(f"/api/v1/addons/{addon.json()['id']}/end", json={}).status_code == 404
    auditor = Api(app, world.tokens["auditor"])
    assert (
        auditor.post(
            f"/api/v1/customers/{pia['id']}/charges", json={"amount": "1", "description": "x"}
        ).status_code
        == 403
    )


def test_credit_void_and_payment_terms(api: tuple[App, World]) -> None:
    app, world = api
    admin = Api(app, world.tokens["ops"])
    plan = admin.post("/api/v1/plans", json=PLAN).json()
    olga = admin.post(
        "/api/v1/customers", json=customer_body("Olga", balance_control="postpaid")
    ).json()
    admin.post("/api/v1/services", json={"customer_id": olga["id"], "plan_id": plan["id"]})
    admin.post("/api/v1/ticks/run", json={})
    [invoice] = admin.get("/api/v1/invoices", params={"customer_id": olga["id"]}).json()["items"]

    north = Api(app, world.tokens["north"])
    assert (
        north.post(f"/api/v1/invoices/{invoice['id']}/void", json={"reason": "x"}).status_code
        == 404
    )
    no_reason = admin.post(f"/api/v1/invoices/{invoice['id']}/void", json={})
    assert no_reason.status_code == 422
    partial = admin.post(
        f"/api/v1/invoices/{invoice['id']}/credit",
        json={"reason": "outage", "line": 1, "amount": "5.00"},
    )
    assert partial.status_code == 201, partial.text
    assert (partial.json()["credited"]["amount"], partial.json()["invoice_status"]) == (
        "5.00",
        "partially_paid",
    )
    paid_part = admin.post(f"/api/v1/invoices/{invoice['id']}/void", json={"reason": "x"})
    assert (paid_part.status_code, paid_part.json()["field"]) == (422, "invoice")
    too_much = admin.post(
        f"/api/v1/invoices/{invoice['id']}/credit",
        json={"reason": "x", "line": 1, "amount": "25.01"},
    )
    assert (too_much.status_code, too_much.json()["field"]) == (422, "lines")
    rest = admin.post(f"/api/v1/invoices/{invoice['id']}/credit", json={"reason": "goodwill"})
    assert rest.status_code == 422  # the whole 30.00 on top of 5.00 exceeds the total
    notes = admin.get("/api/v1/credit-notes", params={"customer_id": olga["id"]}).json()
    assert [n["number"] for n in notes["items"]] == [partial.json()["credit_note_number"]]

    terms = admin.put(
        f"/api/v1/customers/{olga['id']}/payment-terms", json={"payment_terms_days": 30}
    )
    assert terms.status_code == 200, terms.text
    assert terms.json()["payment_terms_days"] == 30
    back = admin.put(
        f"/api/v1/customers/{olga['id']}/payment-terms", json={"payment_terms_days": None}
    )
    assert back.json()["payment_terms_days"] is None
    bad = admin.put(
        f"/api/v1/customers/{olga['id']}/payment-terms", json={"payment_terms_days": 366}
    )
    assert bad.status_code == 422

    paid = admin.post(
        "/api/v1/payments",
        json={
            "customer_id": olga["id"],
            "amount": "1.00",
            "currency": "USD",
            "reference": "R-1",
            "received_on": str(app.clock.now().date()),
        },
        headers={"Idempotency-Key": "pay-r1"},
    )
    assert paid.status_code == 201, paid.text
    assert paid.json()["received_at"].startswith(str(app.clock.now().date()))


def test_scheduled_changes(api: tuple[App, World], clock: FixedClock) -> None:
    app, world = api
    admin = Api(app, world.tokens["ops"])
    cheap = admin.post("/api/v1/plans", json={**PLAN, "name": "Basic", "price": "10.00"}).json()
    fast = admin.post("/api/v1/plans", json=PLAN).json()
    pia = admin.post("/api/v1/customers", json=customer_body("Pia", available_funds="100")).json()
    sid = admin.post(
        "/api/v1/services", json={"customer_id": pia["id"], "plan_id": cheap["id"]}
    ).json()["id"]
    admin.post("/api/v1/ticks/run", json={})
    planned = admin.post(
        f"/api/v1/services/{sid}/scheduled-changes",
        json={"kind": "plan_change", "plan_id": fast["id"]},
    )
    assert planned.status_code == 201, planned.text
    assert (planned.json()["status"], planned.json()["plan"]) == ("planned", "Fiber 50")
    missing = admin.post(f"/api/v1/services/{sid}/scheduled-changes", json={"kind": "plan_change"})
    assert (missing.status_code, missing.json()["field"]) == (422, "plan_id")
    north = Api(app, world.tokens["north"])
    assert north.get(f"/api/v1/services/{sid}/scheduled-changes").status_code == 404
    assert (
        north.post(f"/api/v1/scheduled-changes/{planned.json()['id']}/cancel", json={}).status_code
        == 404
    )
    cancelled = admin.post(
        f"/api/v1/scheduled-changes/{planned.json()['id']}/cancel", json={"reason": "stays"}
    )
    assert cancelled.json()["status"] == "cancelled"
    ending = admin.post(f"/api/v1/services/{sid}/scheduled-changes", json={"kind": "termination"})
    assert ending.status_code == 201, ending.text
    assert ending.json()["last_day"] == str(clock.now().date())
    clock.advance(timedelta(days=1))
    admin.post("/api/v1/ticks/run", json={})
    assert admin.get(f"/api/v1/services/{sid}").json()["state"] == "ended"
    listed = admin.get(f"/api/v1/services/{sid}/scheduled-changes").json()
    assert [c["status"] for c in listed] == ["done", "cancelled"]

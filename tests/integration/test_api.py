"""The REST API ``/api/v1`` end to end, on both databases, through httpx's ASGI transport:
tokens and roles, idempotent payments, the tick, pagination, problem+json refusals. After every
test the books are checked."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from api_support import PROBLEM, Api, customer_body, make_world
from sqlalchemy import func, select

from ispbill.adapters.db.models import Payment
from ispbill.bootstrap import App
from ispbill.clock import FixedClock
from ispbill.entrypoints.api.export_openapi import render
from ispbill.use_cases.admin.api_tokens import revoke_token
from scenarios.helpers import check_books

DOCS = Path(__file__).resolve().parents[2] / "docs" / "openapi.json"


@pytest.fixture
def world(app: App) -> Iterator[dict[str, Any]]:
    built = make_world(app)
    yield {"tokens": built.tokens, "north": built.ids["north"], "south": built.ids["south"]}
    check_books(app)


def client(app: App, world: dict[str, Any], who: str | None) -> Api:
    return Api(app, world["tokens"][who] if who else None)


def test_end_to_end(app: App, world: dict[str, Any], clock: FixedClock) -> None:
    admin = client(app, world, "ops")
    assert admin.get("/api/v1/health").json()["status"] == "ok"
    plan = admin.post(
        "/api/v1/plans",
        json={
            "name": "Fiber 50",
            "price": "30.00",
            "currency": "USD",
            "download": "50M",
            "upload": "10M",
        },
    )
    assert plan.status_code == 201, plan.text
    assert plan.json()["price"] == {"amount": "30.00", "currency": "USD"}
    customer = admin.post("/api/v1/customers", json=customer_body("Alice"))
    assert customer.status_code == 201, customer.text
    cid = customer.json()["id"]
    service = admin.post(
        "/api/v1/services", json={"customer_id": cid, "plan_id": plan.json()["id"]}
    )
    assert service.status_code == 201, service.text
    assert admin.get(f"/api/v1/services/{service.json()['id']}").json()["state"] == "pending"

    payment = {"customer_id": cid, "amount": "50.00", "currency": "USD", "reference": "r-1"}
    first = admin.post("/api/v1/payments", json=payment, headers={"Idempotency-Key": "k-1"})
    again = admin.post("/api/v1/payments", json=payment, headers={"Idempotency-Key": "k-1"})
    assert first.status_code == again.status_code == 201, first.text
    assert first.json() == again.json()
    assert first.json()["amount"] == {"amount": "50.00", "currency": "USD"}
    with app.uow() as uow:
        assert uow.session.scalar(select(func.count()).select_from(Payment)) == 1
    reused = admin.post(
        "/api/v1/payments",
        json={**payment, "amount": "60.00"},
        headers={"Idempotency-Key": "k-1"},
    )
    assert reused.status_code == 422
    assert reused.headers["content-type"] == PROBLEM
    assert reused.json()["field"] == "Idempotency-Key"

    at = (clock.now() + timedelta(hours=1)).isoformat()
    ticked = admin.post("/api/v1/ticks/run", json={"at": at})
    assert ticked.status_code == 200, ticked.text
    shown = admin.get(f"/api/v1/customers/{cid}").json()
    assert shown["balance"] == {"amount": "20.00", "currency": "USD"}  # 50 paid, 30 charged
    wallet = admin.get(f"/api/v1/customers/{cid}/wallet").json()
    assert wallet["balance"] == shown["balance"]
    assert {p["amount"]["amount"] for p in wallet["postings"]} >= {"50.00", "-30.00"}
    assert admin.get(f"/api/v1/services/{service.json()['id']}").json()["state"] == "active"
    until = (clock.now() + timedelta(days=62)).isoformat()
    preview = admin.get(f"/api/v1/customers/{cid}/preview", params={"until": until})
    assert preview.status_code == 200, preview.text
    assert preview.json()["balance"]["currency"] == "USD"


def test_roles(app: App, world: dict[str, Any]) -> None:
    admin = client(app, world, "ops")
    readonly = client(app, world, "auditor")
    north = client(app, world, "north")
    south = client(app, world, "south")
    assert north.post("/api/v1/customers", json=customer_body("N1")).status_code == 201
    theirs = south.post("/api/v1/customers", json=customer_body("S1"))
    assert theirs.status_code == 201
    assert theirs.json()["reseller_id"] == world["south"]
    admin.post("/api/v1/customers", json=customer_body("Direct"))

    refused = readonly.post("/api/v1/customers", json=customer_body("Nope"))
    assert refused.status_code == 403
    assert refused.headers["content-type"] == PROBLEM
    assert len(readonly.get("/api/v1/customers").json()["items"]) == 3

    hidden = north.get(f"/api/v1/customers/{theirs.json()['id']}")
    assert hidden.status_code == 404
    assert hidden.json()["field"] == "customer"
    assert north.get(f"/api/v1/customers/{theirs.json()['id']}/wallet").status_code == 404
    assert [c["name"] for c in north.get("/api/v1/customers").json()["items"]] == ["N1"]
    paid = north.post(
        "/api/v1/payments",
        json={"customer_id": theirs.json()["id"], "amount": "1.00", "currency": "USD"},
        headers={"Idempotency-Key": "x"},
    )
    assert paid.status_code == 404
    assert north.post("/api/v1/ticks/run", json={}).status_code == 403
    assert (
        north.post(
            "/api/v1/plans",
            json={"name": "P", "price": "1", "currency": "USD", "download": "1M", "upload": "1M"},
        ).status_code
        == 403
    )


def test_a_reference_is_the_payers_not_a_global_key(app: App, world: dict[str, Any]) -> None:
    """South's payment under a reference North used is South's own, never North's answered
    back; the same customer's reference with another amount is a 409 naming ``reference``."""
    north = client(app, world, "north")
    south = client(app, world, "south")
    ours = north.post("/api/v1/customers", json=customer_body("N1")).json()["id"]
    theirs = south.post("/api/v1/customers", json=customer_body("S1")).json()["id"]

    def post(api: Api, key: str, customer: int, amount: str) -> Any:
        body = {"customer_id": customer, "amount": amount, "currency": "USD", "method": "cash"}
        return api.post(
            "/api/v1/payments",
            json={**body, "reference": "RCPT-1"},
            headers={"Idempotency-Key": key},
        )

    first = post(north, "n-1", ours, "11.00")
    assert first.status_code == 201, first.text
    paid = post(south, "s-1", theirs, "22.00")
    assert paid.status_code == 201, paid.text
    assert paid.json()["id"] != first.json()["id"]
    assert (paid.json()["customer_id"], paid.json()["amount"]["amount"]) == (theirs, "22.00")
    assert [p["id"] for p in south.get("/api/v1/payments").json()["items"]] == [paid.json()["id"]]
    assert south.get(f"/api/v1/customers/{theirs}").json()["balance"]["amount"] == "22.00"
    assert north.get(f"/api/v1/customers/{ours}").json()["balance"]["amount"] == "11.00"

    altered = post(north, "n-2", ours, "12.00")
    assert altered.status_code == 409, altered.text
    assert altered.headers["content-type"] == PROBLEM
    assert altered.json()["field"] == "reference"
    repeat = post(north, "n-3", ours, "11.00")
    assert repeat.status_code == 201, repeat.text
    assert repeat.json()["id"] == first.json()["id"]
    assert north.get(f"/api/v1/customers/{ours}").json()["balance"]["amount"] == "11.00"
    with app.uow() as uow:
        assert uow.session.scalar(select(func.count()).select_from(Payment)) == 2


def test_a_refund_reference_is_the_customers_not_a_global_key(
    app: App, world: dict[str, Any]
) -> None:
    """South's refund under a reference North's refund carries is South's own refund (South's
    money goes back), never North's answered back; a payment South names by id is South's even
    when a North payment carries that id as its reference; North's reference with another
    amount is a 409 naming ``reference``."""
    north = client(app, world, "north")
    south = client(app, world, "south")
    ours = north.post("/api/v1/customers", json=customer_body("N1")).json()["id"]
    theirs = south.post("/api/v1/customers", json=customer_body("S1")).json()["id"]

    def pay(api: Api, key: str, customer: int, amount: str) -> int:
        body = {"customer_id": customer, "amount": amount, "currency": "USD", "method": "cash"}
        paid = api.post("/api/v1/payments", json=body, headers={"Idempotency-Key": key})
        assert paid.status_code == 201, paid.text
        return int(paid.json()["id"])

    def give_back(api: Api, customer: int, amount: str, **extra: Any) -> Any:
        body = {"customer_id": customer, "amount": amount, "method": "cash", "reference": "RF-1"}
        return api.post("/api/v1/refunds", json={**body, **extra})

    pay(north, "n-1", ours, "30.00")
    south_paid = pay(south, "s-1", theirs, "30.00")
    north.post(  # North's receipt number happens to be South's payment id
        "/api/v1/payments",
        json={
            "customer_id": ours,
            "amount": "1.00",
            "currency": "USD",
            "reference": str(south_paid),
        },
        headers={"Idempotency-Key": "n-2"},
    )
    first = give_back(north, ours, "10.00")
    assert first.status_code == 201, first.text
    refunded = give_back(south, theirs, "5.00")
    assert refunded.status_code == 201, refunded.text
    assert refunded.json()["created"] is True
    assert refunded.json()["transaction_id"] != first.json()["transaction_id"]
    assert refunded.json()["amount"] == {"amount": "5.00", "currency": "USD"}
    assert south.get(f"/api/v1/customers/{theirs}").json()["balance"]["amount"] == "25.00"
    assert north.get(f"/api/v1/customers/{ours}").json()["balance"]["amount"] == "21.00"
    postings = south.get(f"/api/v1/customers/{theirs}/wallet").json()["postings"]
    assert sorted(p["amount"]["amount"] for p in postings) == ["-5.00", "30.00"]

    repeat = give_back(south, theirs, "5.00")
    assert repeat.status_code == 201, repeat.text
    assert repeat.json()["created"] is False
    assert repeat.json()["transaction_id"] == refunded.json()["transaction_id"]
    altered = give_back(north, ours, "12.00")
    assert altered.status_code == 409, altered.text
    assert altered.headers["content-type"] == PROBLEM
    assert altered.json()["field"] == "reference"
    of_payment = give_back(south, theirs, "5.00", reference="RF-2", payment_id=south_paid)
    assert of_payment.status_code == 201, of_payment.text
    assert north.get(f"/api/v1/customers/{ours}").json()["balance"]["amount"] == "21.00"
    assert south.get(f"/api/v1/customers/{theirs}").json()["balance"]["amount"] == "20.00"


def test_authentication(app: App, world: dict[str, Any]) -> None:
    missing = client(app, world, None).get("/api/v1/customers")
    assert missing.status_code == 401
    assert missing.headers["content-type"] == PROBLEM
    assert Api(app, "isp_wrong").get("/api/v1/customers").status_code == 401
    with app.uow() as uow:
        revoke_token(uow, token_id=1, now=app.clock.now(), actor="test")
    assert client(app, world, "ops").get("/api/v1/customers").status_code == 401


def test_refusals(app: App, world: dict[str, Any]) -> None:
    admin = client(app, world, "ops")
    bad_currency = admin.post("/api/v1/customers", json=customer_body("Bob", currency="XYZ"))
    assert bad_currency.status_code == 422
    assert bad_currency.headers["content-type"] == PROBLEM
    assert bad_currency.json()["field"] == "currency"
    assert bad_currency.json()["rule"]
    lax_int = admin.post("/api/v1/services", json={"customer_id": "1", "plan_id": 1})
    assert lax_int.status_code == 422
    assert lax_int.json()["field"] == "customer_id"
    float_amount = admin.post(
        "/api/v1/payments",
        json={"customer_id": 1, "amount": 3.5, "currency": "USD"},
        headers={"Idempotency-Key": "f"},
    )
    assert float_amount.status_code == 422
    assert float_amount.json()["field"] == "amount"
    no_key = admin.post(
        "/api/v1/payments", json={"customer_id": 1, "amount": "3.50", "currency": "USD"}
    )
    assert no_key.status_code == 422
    assert no_key.json()["field"] == "Idempotency-Key"
    assert admin.post("/api/v1/customers", json=customer_body("Dup")).status_code == 201
    duplicate = admin.post("/api/v1/customers", json=customer_body("Dup"))
    assert duplicate.status_code == 409
    assert duplicate.json()["field"] == "name"
    unknown = admin.get("/api/v1/customers/999999")
    assert unknown.status_code == 404
    assert unknown.headers["content-type"] == PROBLEM
    assert admin.get("/api/v1/services/999999").status_code == 404
    assert admin.get("/api/v1/customers?cursor=garbage").status_code == 422
    assert admin.get("/api/v1/customers/99999999999").status_code == 422


def test_pagination_walks_every_customer(app: App, world: dict[str, Any]) -> None:
    admin = client(app, world, "ops")
    names = [f"Customer {i:02}" for i in range(7)]
    for name in names:
        assert admin.post("/api/v1/customers", json=customer_body(name)).status_code == 201
    seen: list[str] = []
    cursor: str | None = None
    pages = 0
    while True:
        params: dict[str, Any] = {"limit": 3, **({"cursor": cursor} if cursor else {})}
        page = admin.get("/api/v1/customers", params=params).json()
        seen += [c["name"] for c in page["items"]]
        pages += 1
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == names
    assert pages == 3
    found = admin.get("/api/v1/customers", params={"search": "er 0"}).json()["items"]
    assert len(found) == 7
    found = admin.get("/api/v1/customers", params={"search": "05"}).json()["items"]
    assert [c["name"] for c in found] == ["Customer 05"]


def test_committed_openapi_matches_the_served_one(app: App) -> None:
    served = Api(app, None).get("/api/v1/openapi.json")
    assert served.status_code == 200
    assert json.loads(DOCS.read_text(encoding="utf-8")) == served.json(), (
        "docs/openapi.json is stale: python -m ispbill.entrypoints.api.export_openapi "
        "> docs/openapi.json"
    )
    assert DOCS.read_text(encoding="utf-8") == render()

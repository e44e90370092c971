"""Every endpoint family of ``/api/v1`` through HTTP (httpx on the ASGI app), on both
databases: catalogue, customers and their ledger, services and their lifecycle moves,
invoices and PDFs, payments, refunds, bank statements, refill cards, top-up rules, events,
settings, sessions; the shared pagination; idempotency on any write; problem+json for every
refusal. The books are checked after each test."""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from api_support import PLAN, PROBLEM, Api, World, api_app, customer_body, make_world
from sqlalchemy import func, select, text

from ispbill.adapters.db.models import ApiToken, Customer, NasRow, NetworkIdentity, Reseller
from ispbill.bootstrap import App
from ispbill.clock import FixedClock
from ispbill.entrypoints.api.routes import plans as plans_route
from ispbill.entrypoints.asgi_app import create_app
from scenarios.helpers import check_books

WRITE_METHODS = {"post", "put", "patch", "delete"}
MT940 = Path(__file__).resolve().parents[1] / "fixtures" / "bank" / "statement.mt940.sta"


@pytest.fixture
def api(database_url: str, clock: FixedClock) -> Iterator[tuple[App, World]]:
    app = api_app(database_url, clock)
    try:
        world = make_world(app)
        yield app, world
        check_books(app)
    finally:
        app.close()


def admin_of(api: tuple[App, World]) -> Api:
    app, world = api
    return Api(app, world.tokens["ops"])


def walk(client: Api, url: str, **params: Any) -> list[dict[str, Any]]:
    """Every item of a list, following next_cursor with small pages."""
    items: list[dict[str, Any]] = []
    cursor = None
    while True:
        page = client.get(
            url, params={**params, "limit": 2, **({"cursor": cursor} if cursor else {})}
        )
        assert page.status_code == 200, page.text
        items += page.json()["items"]
        cursor = page.json()["next_cursor"]
        if cursor is None:
            return items


def test_catalogue(api: tuple[App, World]) -> None:
    admin = admin_of(api)
    for name in ("East", "West", "Centre"):
        assert admin.post("/api/v1/resellers", json={"name": name}).status_code == 201
    assert [r["name"] for r in walk(admin, "/api/v1/resellers")] == [
        "North",
        "South",
        "East",
        "West",
        "Centre",
    ]
    assert [r["name"] for r in walk(admin, "/api/v1/resellers", search="st")] == ["East", "West"]
    taken = admin.post("/api/v1/resellers", json={"name": "East"})
    assert (taken.status_code, taken.json()["field"]) == (409, "name")
    tax = admin.post("/api/v1/tax-profiles", json={"name": "VAT", "rate": "21", "inclusive": True})
    assert tax.status_code == 201
    assert tax.json()["rate_bp"] == 2100
    assert admin.get(f"/api/v1/tax-profiles/{tax.json()['id']}").json()["name"] == "VAT"
    klass = admin.post(
        "/api/v1/customer-classes",
        json={
            "name": "Business",
            "grace_days": 7,
            "tax_profile": "VAT",
            "custom_fields": ["ico:required"],
        },
    )
    assert klass.status_code == 201, klass.text
    assert klass.json()["tax_profile_id"] == tax.json()["id"]
    assert admin.get(f"/api/v1/customer-classes/{klass.json()['id']}").json()["grace_days"] == 7
    assert len(walk(admin, "/api/v1/customer-classes")) == 2
    bad = admin.post("/api/v1/tax-profiles", json={"name": "X", "rate": "abc"})
    assert bad.status_code == 422
    assert bad.json()["field"] == "rate"
    plan = admin.post(
        "/api/v1/plans", json={**PLAN, "tax_profile": "VAT", "period_months": ["3:5%"]}
    )
    assert plan.status_code == 201, plan.text
    assert admin.get(f"/api/v1/plans/{plan.json()['id']}").json()["price"]["amount"] == "30.00"
    assert walk(admin, "/api/v1/plans", currency="usd", active=True)[0]["name"] == "Fiber 50"
    assert walk(admin, "/api/v1/plans", currency="EUR") == []
    assert admin.get("/api/v1/plans/999").status_code == 404


def test_customers_wallet_and_ledger(api: tuple[App, World]) -> None:
    admin = admin_of(api)
    made = admin.post(
        "/api/v1/customers",
        json=customer_body("Ann", available_funds="12.50", minimum_balance="1.00"),
    )
    assert made.status_code == 201, made.text
    cid = made.json()["id"]
    assert made.json()["balance"] == {"amount": "12.50", "currency": "USD"}
    assert made.json()["minimum_balance"] == {"amount": "1.00", "currency": "USD"}
    admin.post(
        "/api/v1/customers",
        json=customer_body("Ben", balance_control="postpaid", credit_limit="50"),
    )
    postpaid = walk(admin, "/api/v1/customers", balance_control="postpaid")
    assert [c["name"] for c in postpaid] == ["Ben"]
    assert postpaid[0]["credit_limit"] == {"amount": "50.00", "currency": "USD"}
    for n in range(3):
        admin.post(
            "/api/v1/payments",
            json={"customer_id": cid, "amount": f"{n + 1}.00", "currency": "USD"},
            headers={"Idempotency-Key": f"p{n}"},
        )
    history = walk(admin, f"/api/v1/customers/{cid}/ledger")
    assert [h["amount"]["amount"] for h in history] == ["3.00", "2.00", "1.00", "12.50"]
    assert [h["kind"] for h in walk(admin, f"/api/v1/customers/{cid}/ledger", kind="payment")] == [
        "payment"
    ] * 3 or len(history) == 4
    wallet = admin.get(f"/api/v1/customers/{cid}/wallet").json()
    assert wallet["balance"] == {"amount": "18.50", "currency": "USD"}
    bad_cursor = admin.get(f"/api/v1/customers/{cid}/ledger", params={"cursor": "YzoxMA"})
    assert bad_cursor.status_code == 422
    assert bad_cursor.json()["field"] == "cursor"
    far = admin.get(f"/api/v1/customers/{cid}/preview", params={"until": "2100-01-01T00:00:00Z"})
    assert far.status_code == 422
    assert far.json()["field"] == "until"


def test_a_tick_names_the_customers_it_skipped(api: tuple[App, World]) -> None:
    """Bad data written past validation fails its customer alone; the tick answers 200 with
    everyone else billed and the skipped customer named."""
    app, _ = api
    admin = admin_of(api)
    plan = admin.post("/api/v1/plans", json={**PLAN, "name": "Basic", "price": "10.00"}).json()
    ids = []
    for name in ("Bad", "Good"):
        body = customer_body(name, available_funds="100")
        cid = admin.post("/api/v1/customers", json=body).json()["id"]
        admin.post("/api/v1/services", json={"customer_id": cid, "plan_id": plan["id"]})
        ids.append(cid)
    with app.engine.begin() as connection:
        connection.execute(
            text("UPDATE services SET active_to = '9999-12-31' WHERE customer_id = :c"),
            {"c": ids[0]},
        )
    ticked = admin.post("/api/v1/ticks/run", json={})
    assert ticked.status_code == 200, ticked.text
    assert ticked.json()["skipped"] == [
        {
            "customer_id": ids[0],
            "stage": "decide",
            "error": "OverflowError: date value out of range",
        }
    ]
    assert ticked.json()["charges"] == 1
    assert walk(admin, "/api/v1/services", customer_id=ids[1])[0]["state"] == "active"
    assert walk(admin, "/api/v1/services", customer_id=ids[0])[0]["state"] == "pending"


def test_service_lifecycle(api: tuple[App, World], clock: FixedClock) -> None:
    admin = admin_of(api)
    cheap = admin.post("/api/v1/plans", json={**PLAN, "name": "Basic", "price": "10.00"}).json()
    fast = admin.post("/api/v1/plans", json=PLAN).json()
    cid = admin.post("/api/v1/customers", json=customer_body("Cid", available_funds="100")).json()[
        "id"
    ]
    sid = admin.post("/api/v1/services", json={"customer_id": cid, "plan_id": cheap["id"]}).json()[
        "id"
    ]
    assert admin.post("/api/v1/ticks/run", json={}).json()["charges"] == 1
    assert admin.get(f"/api/v1/services/{sid}").json()["state"] == "active"
    changed = admin.post(f"/api/v1/services/{sid}/change-plan", json={"plan_id": fast["id"]})
    assert changed.status_code == 200, changed.text
    assert (changed.json()["from_plan"], changed.json()["to_plan"]) == ("Basic", "Fiber 50")
    assert changed.json()["credit_note_number"]
    notes = walk(admin, "/api/v1/credit-notes", customer_id=cid)
    assert [n["number"] for n in notes] == [changed.json()["credit_note_number"]]
    assert (
        walk(admin, "/api/v1/services", customer_id=cid, state="active")[0]["plan_id"] == fast["id"]
    )

    clock.advance(timedelta(days=3))
    today = clock.now().date()
    paused = admin.post(f"/api/v1/services/{sid}/active-to", json={"active_to": str(today)})
    assert paused.status_code == 200, paused.text
    assert paused.json()["active_to"] == str(today)
    past = admin.post(f"/api/v1/services/{sid}/active-to", json={"active_to": "2020-01-01"})
    assert past.status_code == 422
    assert past.json()["field"] == "active_to"
    clock.advance(timedelta(days=1))
    admin.post("/api/v1/ticks/run", json={})
    assert admin.get(f"/api/v1/services/{sid}").json()["state"] == "paused"
    back = admin.post(f"/api/v1/services/{sid}/reactivate", json={})
    assert back.status_code == 200, back.text
    assert back.json()["state"] == "active"
    again = admin.post(f"/api/v1/services/{sid}/reactivate", json={})
    assert again.status_code == 422
    assert again.json()["field"] == "state"
    ended = admin.post(f"/api/v1/services/{sid}/terminate", json={"reason": "moving away"})
    assert ended.status_code == 200, ended.text
    assert ended.json()["service"]["state"] == "ended"
    kinds = [
        e["kind"] for e in walk(admin, "/api/v1/events", customer_id=cid, kind_prefix="service.")
    ]
    assert "service.ended" in kinds
    assert "service.active_to_set" in kinds


NAS = {"name": "edge-1", "address": "10.0.0.1", "secret": "s3cret-shared"}


def nas_count(app: App) -> int:
    with app.uow() as uow:
        return int(uow.session.scalar(select(func.count()).select_from(NasRow)) or 0)


def test_nas_records(api: tuple[App, World]) -> None:
    app, world = api
    admin = admin_of(api)
    made = admin.post("/api/v1/nas", json={**NAS, "vendor": "generic", "coa_port": 1700})
    assert made.status_code == 201, made.text
    assert (made.json()["vendor"], made.json()["coa_port"]) == ("generic", 1700)
    assert made.json()["require_message_authenticator"] is True
    second = admin.post(
        "/api/v1/nas",
        json={"name": "edge-2", "address": "2001:DB8::1", "secret": "another-secret"},
    )
    assert second.status_code == 201, second.text
    assert (second.json()["address"], second.json()["vendor"]) == ("2001:db8::1", "mikrotik")
    readonly = Api(app, world.tokens["auditor"])
    listed = walk(readonly, "/api/v1/nas")
    assert [n["name"] for n in listed] == ["edge-1", "edge-2"]
    shown = readonly.get(f"/api/v1/nas/{made.json()['id']}")
    assert shown.json() == made.json() == listed[0]
    for answer in (made.text, second.text, shown.text, str(listed)):
        assert "secret" not in answer  # neither the field nor its value
        assert "s3cret-shared" not in answer
        assert "another-secret" not in answer
    assert admin.get("/api/v1/nas/999").status_code == 404
    refusals = [
        ({**NAS, "name": "x", "address": "10.0.0.300"}, 422, "address"),
        ({**NAS, "name": "x", "address": "fe80::1%eth0"}, 422, "address"),
        ({**NAS, "name": "x", "address": "10.0.0.9", "secret": "short"}, 422, "secret"),
        ({**NAS, "name": "x", "address": "10.0.0.9", "secret": "has space"}, 422, "secret"),
        ({**NAS, "name": "x", "address": "10.0.0.9", "vendor": "cisco"}, 422, "vendor"),
        ({**NAS, "name": "x", "address": "10.0.0.9", "coa_port": 0}, 422, "coa_port"),
        ({**NAS, "name": "   ", "address": "10.0.0.9"}, 422, "name"),
        ({**NAS, "address": "10.0.0.9"}, 409, "name"),
        ({**NAS, "name": "x", "address": "10.0.0.1"}, 409, "address"),
    ]
    for body, status, field in refusals:
        refused = admin.post("/api/v1/nas", json=body)
        assert (refused.status_code, refused.json()["field"]) == (status, field), refused.text
        assert refused.json()["rule"]
    assert nas_count(app) == 2  # nothing written by a refusal
    north = Api(app, world.tokens["north"])
    assert north.get("/api/v1/nas").status_code == 403
    assert readonly.post("/api/v1/nas", json={**NAS, "name": "ro"}).status_code == 403
    assert north.post("/api/v1/nas", json={**NAS, "name": "n"}).status_code == 403
    assert nas_count(app) == 2


def test_network_identity(api: tuple[App, World]) -> None:
    app, world = api
    admin = admin_of(api)
    north = Api(app, world.tokens["north"])
    plan = admin.post("/api/v1/plans", json=PLAN).json()["id"]
    nas = admin.post("/api/v1/nas", json=NAS).json()
    services = []
    for name in ("Ida", "Jon"):
        cid = north.post("/api/v1/customers", json=customer_body(name)).json()["id"]
        made = north.post("/api/v1/services", json={"customer_id": cid, "plan_id": plan})
        services.append(made.json()["id"])
    first, second = (f"/api/v1/services/{sid}/network-identity" for sid in services)
    missing = admin.get(first)
    assert (missing.status_code, missing.json()["field"]) == (404, "service")
    pppoe = {
        "username": "ida",
        "password": "pppoe-pass",
        "static_ip": "100.64.0.9",
        "nas": "edge-1",
    }
    put = north.put(first, json=pppoe)
    assert put.status_code == 200, put.text
    assert put.json()["password_scheme"] == "cleartext"
    assert (put.json()["username"], put.json()["nas_id"]) == ("ida", nas["id"])
    shown = Api(app, world.tokens["auditor"]).get(first)
    assert shown.status_code == 200, shown.text
    assert shown.json() == put.json()
    for answer in (put, shown):
        assert "pppoe-pass" not in answer.text
        assert "password" not in answer.json()

    replaced = admin.put(first, json={"mac_address": "AA-BB-CC-DD-EE-FF", "nas": str(nas["id"])})
    assert replaced.status_code == 200, replaced.text
    assert replaced.json()["mac_address"] == "aa:bb:cc:dd:ee:ff"
    assert (replaced.json()["username"], replaced.json()["static_ip"]) == (None, None)
    assert replaced.json()["password_scheme"] is None
    hashed = admin.put(first, json={**pppoe, "pap_only": True})
    assert hashed.json()["password_scheme"] == "ssha512"
    with app.uow() as uow:
        stored = uow.session.get(NetworkIdentity, services[0])
        assert stored is not None
        assert stored.password not in (None, "pppoe-pass")

    before = admin.get(first).json()
    refusals = [
        (second, {"username": "ida", "password": "other-pass"}, 409, "username"),
        (second, {"mac_address": "aa:bb:cc:dd:ee:zz"}, 422, "mac_address"),
        (second, {"username": "jon"}, 422, "password"),
        (second, {"username": "jon", "password": "p", "static_ip": "100.64.0.9"}, 409, "static_ip"),
        (second, {"circuit_id": "c1", "nas": "no-such-nas"}, 404, "nas"),
        (second, {"circuit_id": "c1", "nas": "\u00b2"}, 404, "nas"),  # a digit int() refuses
        (second, {"circuit_id": "c1", "static_ip": "::1%lo"}, 422, "static_ip"),
        (second, {}, 422, "username"),
        (first, {"mac_address": "aa:bb:cc:dd:ee:0"}, 422, "mac_address"),
    ]
    for url, body, status, field in refusals:
        refused = admin.put(url, json=body)
        assert (refused.status_code, refused.json()["field"]) == (status, field), refused.text
    assert admin.get(second).status_code == 404  # nothing written for the second service
    assert admin.get(first).json() == before
    assert Api(app, world.tokens["auditor"]).put(first, json=pppoe).status_code == 403
    south = Api(app, world.tokens["south"])
    for response in (south.get(first), south.put(first, json={"circuit_id": "s"})):
        assert (response.status_code, response.json()["field"]) == (404, "service")
    assert admin.get(first).json() == before
    kinds = [e["kind"] for e in walk(admin, "/api/v1/events", kind="service.identity_set")]
    assert len(kinds) == 3


def test_invoices_and_pdf(api: tuple[App, World]) -> None:
    admin = admin_of(api)
    plan = admin.post("/api/v1/plans", json=PLAN).json()
    cid = admin.post(
        "/api/v1/customers",
        json=customer_body("Dee", balance_control="postpaid", credit_limit="100"),
    ).json()["id"]
    admin.post("/api/v1/services", json={"customer_id": cid, "plan_id": plan["id"]})
    assert admin.post("/api/v1/ticks/run", json={}).json()["invoices"] == 1
    [invoice] = walk(admin, "/api/v1/invoices", customer_id=cid, status="issued")
    assert invoice["gross"] == {"amount": "30.00", "currency": "USD"}
    shown = admin.get(f"/api/v1/invoices/{invoice['id']}").json()
    assert [line["gross"]["amount"] for line in shown["lines"]] == ["30.00"]
    pdf = admin.get(f"/api/v1/invoices/{invoice['id']}/pdf")
    assert pdf.status_code == 200
    assert pdf.headers["content-type"] == "application/pdf"
    assert pdf.content.startswith(b"%PDF")
    paid = admin.post(
        "/api/v1/payments",
        json={"customer_id": cid, "amount": "30.00", "currency": "USD"},
        headers={"Idempotency-Key": "dee"},
    ).json()
    assert paid["applied_to_invoices"]["amount"] == "30.00"
    assert walk(admin, "/api/v1/invoices", status="paid")[0]["id"] == invoice["id"]
    assert walk(admin, "/api/v1/invoices", issued_from="2030-01-01") == []
    assert admin.get("/api/v1/invoices/999").status_code == 404


def test_payments_reverse_refund(api: tuple[App, World]) -> None:
    admin = admin_of(api)
    cid = admin.post("/api/v1/customers", json=customer_body("Eve")).json()["id"]
    first = admin.post(
        "/api/v1/payments",
        json={"customer_id": cid, "amount": "20.00", "currency": "USD", "method": "bank_transfer"},
        headers={"Idempotency-Key": "e1"},
    ).json()
    admin.post(
        "/api/v1/payments",
        json={"customer_id": cid, "amount": "5.00", "currency": "USD"},
        headers={"Idempotency-Key": "e2"},
    )
    assert [p["amount"]["amount"] for p in walk(admin, "/api/v1/payments", customer_id=cid)] == [
        "5.00",
        "20.00",
    ]
    assert [p["id"] for p in walk(admin, "/api/v1/payments", method="bank_transfer")] == [
        first["id"]
    ]
    reversed_ = admin.post(f"/api/v1/payments/{first['id']}/reverse", json={"reason": "bounced"})
    assert reversed_.status_code == 200, reversed_.text
    assert reversed_.json()["payment"]["reversed"] is True
    assert admin.get(f"/api/v1/payments/{first['id']}").json()["reversed"] is True
    assert walk(admin, "/api/v1/payments", reversed=False)[0]["amount"]["amount"] == "5.00"
    refund = admin.post(
        "/api/v1/refunds",
        json={"customer_id": cid, "amount": "4.00", "reference": "rf-1", "method": "cash"},
    )
    assert refund.status_code == 201, refund.text
    assert refund.json()["amount"] == {"amount": "4.00", "currency": "USD"}
    too_much = admin.post(
        "/api/v1/refunds", json={"customer_id": cid, "amount": "4.00", "reference": "rf-2"}
    )
    assert too_much.status_code == 422
    assert too_much.json()["field"] == "amount"
    wallet = admin.get(f"/api/v1/customers/{cid}/wallet").json()
    assert wallet["balance"]["amount"] == "1.00"


def test_a_payment_id_is_never_read_as_another_payments_reference(
    api: tuple[App, World],
) -> None:
    """Issue 14: ``POST /payments/{id}/reverse`` reversed "the payment with that id or that
    reference" across all customers, so Bob's bank reference equal to Eve's payment id made
    Eve's reversal refuse (or, with no such id, reverse Bob's). An id is an id."""
    admin = admin_of(api)
    eve = admin.post("/api/v1/customers", json=customer_body("Eve")).json()["id"]
    bob = admin.post("/api/v1/customers", json=customer_body("Bob")).json()["id"]
    evas = admin.post(
        "/api/v1/payments",
        json={"customer_id": eve, "amount": "20.00", "currency": "USD"},
        headers={"Idempotency-Key": "eve-1"},
    ).json()
    bobs = admin.post(
        "/api/v1/payments",
        json={
            "customer_id": bob,
            "amount": "7.00",
            "currency": "USD",
            "method": "bank_transfer",
            "reference": str(evas["id"]),  # Bob's bank's reference happens to be Eve's id
        },
        headers={"Idempotency-Key": "bob-1"},
    ).json()
    reversed_ = admin.post(f"/api/v1/payments/{evas['id']}/reverse", json={"reason": "bounced"})
    assert reversed_.status_code == 200, reversed_.text
    assert reversed_.json()["payment"]["id"] == evas["id"]
    assert admin.get(f"/api/v1/payments/{evas['id']}").json()["reversed"] is True
    assert admin.get(f"/api/v1/payments/{bobs['id']}").json()["reversed"] is False


def test_bank_statement_import_and_assign(api: tuple[App, World]) -> None:
    admin = admin_of(api)
    for name, data in (("Alice", {"variable_symbol": "1001"}), ("Bob", {"customer_number": "C-2"})):
        made = admin.post(
            "/api/v1/customers", json=customer_body(name, currency="EUR", custom_data=data)
        )
        assert made.status_code == 201, made.text
    body = {
        "file_name": MT940.name,
        "content_base64": base64.b64encode(MT940.read_bytes()).decode(),
    }
    report = admin.post("/api/v1/bank-statements", json=body)
    assert report.status_code == 201, report.text
    assert report.json()["format"] == "mt940"
    assert report.json()["payments_created"] >= 1
    again = admin.post("/api/v1/bank-statements", json=body).json()
    assert again["payments_created"] == 0
    unmatched = walk(admin, "/api/v1/bank-statements/lines", status="unmatched")
    assert unmatched
    assert all(line["status"] == "unmatched" for line in unmatched)
    eur = next(line for line in unmatched if line["amount"]["currency"] == "EUR")
    assigned = admin.post(
        f"/api/v1/bank-statements/lines/{eur['id']}/assign", json={"customer_id": 2}
    )
    assert assigned.status_code == 200, assigned.text
    assert assigned.json()["customer_id"] == 2
    twice = admin.post(f"/api/v1/bank-statements/lines/{eur['id']}/assign", json={"customer_id": 2})
    assert twice.status_code == 409
    junk = admin.post("/api/v1/bank-statements", json={**body, "content_base64": "@@@"})
    assert junk.status_code == 422
    assert junk.json()["field"] == "content_base64"
    garbage = base64.b64encode(b"not a statement at all").decode()
    refused = admin.post("/api/v1/bank-statements", json={**body, "content_base64": garbage})
    assert refused.status_code == 422, refused.text


def test_refill_cards(api: tuple[App, World]) -> None:
    admin = admin_of(api)
    cid = admin.post("/api/v1/customers", json=customer_body("Fay")).json()["id"]
    batch = admin.post(
        "/api/v1/refill-card-batches",
        json={"count": 3, "value": "10", "currency": "USD"},
        headers={"Idempotency-Key": "batch-1"},
    )
    assert batch.status_code == 201, batch.text
    codes = [c["code"] for c in batch.json()["cards"]]
    replay = admin.post(
        "/api/v1/refill-card-batches",
        json={"count": 3, "value": "10", "currency": "USD"},
        headers={"Idempotency-Key": "batch-1"},
    )
    assert replay.status_code == 409
    assert replay.json()["field"] == "Idempotency-Key"
    assert "code" not in replay.text.lower().replace("codes", "")  # no code is replayed
    assert len(walk(admin, "/api/v1/refill-cards", status="active")) == 3
    redeemed = admin.post(
        "/api/v1/refill-cards/redeem", json={"code": codes[0], "customer_id": cid}
    )
    assert redeemed.status_code == 200, redeemed.text
    assert redeemed.json()["balance"] == {"amount": "10.00", "currency": "USD"}
    used = admin.post("/api/v1/refill-cards/redeem", json={"code": codes[0], "customer_id": cid})
    assert used.status_code in (409, 422)
    assert used.headers["content-type"] == PROBLEM
    voided = admin.post(
        "/api/v1/refill-cards/void", json={"serial": batch.json()["cards"][1]["serial"]}
    )
    assert voided.status_code == 200, voided.text
    [liability] = admin.get("/api/v1/refill-cards/liability").json()
    assert liability["active_cards"] == 1
    assert liability["outstanding"] == {"amount": "10.00", "currency": "USD"}
    assert [c["customer_id"] for c in walk(admin, "/api/v1/refill-cards", status="redeemed")] == [
        cid
    ]


def test_top_up_rules_settings_events(api: tuple[App, World]) -> None:
    admin = admin_of(api)
    cid = admin.post("/api/v1/customers", json=customer_body("Gus")).json()["id"]
    rule = admin.put(
        "/api/v1/top-up-rules",
        json={"customer_id": cid, "threshold": "5", "amount": "20", "method": "pm_1"},
    )
    assert rule.status_code == 200, rule.text
    assert rule.json()["threshold"] == {"amount": "5.00", "currency": "USD"}
    assert walk(admin, "/api/v1/top-up-rules", enabled=True)[0]["customer_id"] == cid
    assert admin.delete(f"/api/v1/top-up-rules/{cid}").status_code == 204
    assert admin.delete(f"/api/v1/top-up-rules/{cid}").status_code == 404

    assert admin.get("/api/v1/settings").json()["payment_terms_days"] == 14
    changed = admin.put("/api/v1/settings/payment_terms_days", json={"value": "30"})
    assert changed.status_code == 200
    assert changed.json()["payment_terms_days"] == 30
    bad = admin.put("/api/v1/settings/payment_terms_days", json={"value": "many"})
    assert bad.status_code == 422
    assert bad.json()["field"] == "payment_terms_days"
    unknown = admin.put("/api/v1/settings/no_such", json={"value": "1"})
    assert unknown.status_code == 422
    assert unknown.json()["field"] == "no_such"

    events = walk(admin, "/api/v1/events", kind="setting.changed")
    assert [e["figures"]["value"] for e in events] == [30]
    ids = [e["id"] for e in walk(admin, "/api/v1/events")]
    assert ids == sorted(ids, reverse=True)


def test_customer_sessions(api: tuple[App, World], clock: FixedClock) -> None:
    app, _world = api
    admin = admin_of(api)
    cid = admin.post("/api/v1/customers", json=customer_body("Hal")).json()["id"]
    opened = admin.post("/api/v1/sessions", json={"customer_id": cid, "minutes": 30})
    assert opened.status_code == 201, opened.text
    portal = Api(app, opened.json()["token"])
    me = portal.get("/api/v1/whoami").json()
    assert (me["role"], me["customer_id"]) == ("customer", cid)
    assert portal.get(f"/api/v1/customers/{cid}/wallet").status_code == 200
    assert portal.get("/api/v1/customers").status_code == 403
    clock.advance(timedelta(minutes=31))
    expired = portal.get("/api/v1/whoami")
    assert expired.status_code == 401
    assert expired.headers["content-type"] == PROBLEM


def test_token_use_is_noted_at_most_once_per_interval(
    api: tuple[App, World], clock: FixedClock
) -> None:
    app, _world = api
    admin = admin_of(api)

    def last_used() -> Any:
        with app.uow() as uow:
            return uow.session.scalar(select(ApiToken.last_used_at).where(ApiToken.name == "ops"))

    admin.get("/api/v1/whoami")
    first = last_used()
    clock.advance(timedelta(seconds=10))
    admin.get("/api/v1/whoami")
    assert last_used() == first
    clock.advance(timedelta(seconds=app.settings.token_touch_seconds))
    admin.get("/api/v1/whoami")
    assert last_used() > first


def test_idempotency_on_any_write(api: tuple[App, World], clock: FixedClock) -> None:
    app, _world = api
    admin = admin_of(api)
    body = customer_body("Ivy")
    first = admin.post("/api/v1/customers", json=body, headers={"Idempotency-Key": "ivy"})
    again = admin.post("/api/v1/customers", json=body, headers={"Idempotency-Key": "ivy"})
    assert first.status_code == again.status_code == 201
    assert first.json() == again.json()
    assert again.headers.get("idempotent-replayed") == "true"
    with app.uow() as uow:
        assert uow.session.scalar(select(func.count()).select_from(Customer)) == 1
    other = admin.post(
        "/api/v1/customers", json=customer_body("Ivo"), headers={"Idempotency-Key": "ivy"}
    )
    assert other.status_code == 422
    assert other.json()["field"] == "Idempotency-Key"
    # a refusal does not consume the key: fix the request and send it again
    refused = admin.post(
        "/api/v1/resellers", json={"name": "North"}, headers={"Idempotency-Key": "r"}
    )
    assert refused.status_code == 409
    fixed = admin.post("/api/v1/resellers", json={"name": "Nord"}, headers={"Idempotency-Key": "r"})
    assert fixed.status_code == 201
    # past the time to live the key is forgotten: the request runs again (and is refused)
    clock.advance(timedelta(hours=app.settings.idempotency_ttl_hours, seconds=1))
    rerun = admin.post("/api/v1/resellers", json={"name": "Nord"}, headers={"Idempotency-Key": "r"})
    assert rerun.status_code == 409
    with app.uow() as uow:
        assert uow.session.scalar(select(func.count()).select_from(Reseller)) == 3
    too_long = admin.post(
        "/api/v1/resellers", json={"name": "Z"}, headers={"Idempotency-Key": "x" * 121}
    )
    assert too_long.status_code == 422
    assert too_long.json()["field"] == "Idempotency-Key"


def test_idempotency_compares_the_json_not_its_bytes(api: tuple[App, World]) -> None:
    """The same object with its keys in another order, or spaced otherwise, is the same
    request: its key replays the first answer instead of refusing it as a different one."""
    app, _world = api
    admin = admin_of(api)
    body = customer_body("Ivy", balance_control="postpaid", credit_limit="10.00")
    compact = json.dumps(body, separators=(",", ":"))
    reordered = json.dumps(dict(reversed(list(body.items()))), indent=2)
    assert compact.encode() != reordered.encode()
    headers = {"Content-Type": "application/json", "Idempotency-Key": "ivy"}
    first = admin.post("/api/v1/customers", content=compact, headers=headers)
    again = admin.post("/api/v1/customers", content=reordered, headers=headers)
    assert first.status_code == again.status_code == 201, again.text
    assert again.headers.get("idempotent-replayed") == "true"
    assert again.json() == first.json()
    with app.uow() as uow:
        assert uow.session.scalar(select(func.count()).select_from(Customer)) == 1
    changed = json.dumps({**body, "credit_limit": "20.00"})
    other = admin.post("/api/v1/customers", content=changed, headers=headers)
    assert other.status_code == 422
    assert other.json()["field"] == "Idempotency-Key"


@pytest.mark.parametrize(
    ("method", "url", "raw", "field"),
    [
        ("POST", "/api/v1/resellers", '{"name": "East", "name": "West"}', "name"),
        (
            "POST",
            "/api/v1/customers",
            '{"name": "Dup", "customer_class": "Residential", "currency": "USD",'
            ' "currency": "EUR"}',
            "currency",
        ),
        (
            "PUT",
            "/api/v1/collection/policy",
            '{"changes": {"days_after_due": "3", "days_after_due": "30"}}',
            "days_after_due",
        ),
    ],
)
def test_a_json_key_given_twice_is_refused_naming_it(
    api: tuple[App, World], method: str, url: str, raw: str, field: str
) -> None:
    """``json`` keeps the last of two equal keys; the API refuses the body instead, before
    anything runs: nothing is written and the idempotency key stays free."""
    app, _world = api
    admin = admin_of(api)
    headers = {"Content-Type": "application/json", "Idempotency-Key": f"dup-{field}"}
    with app.uow() as uow:
        before = [
            uow.session.scalar(select(func.count()).select_from(model))
            for model in (Customer, Reseller)
        ]
    refused = admin.request(method, url, content=raw, headers=headers)
    assert refused.status_code == 422, refused.text
    assert refused.headers["content-type"] == PROBLEM
    problem = refused.json()
    assert (problem["field"], problem["rule"]) == (field, "must appear once")
    assert problem["detail"].startswith(f"{field}: ")
    with app.uow() as uow:
        after = [
            uow.session.scalar(select(func.count()).select_from(model))
            for model in (Customer, Reseller)
        ]
    assert after == before
    fixed = json.loads(raw)  # the last value of each key, sent once
    assert admin.request(method, url, json=fixed, headers=headers).status_code in (200, 201)


def test_a_write_to_a_read_only_path_is_405_whatever_its_body(api: tuple[App, World]) -> None:
    """Every path of the contract without a write, written to with each write method: 405 with
    ``Allow``, before the body or the Idempotency-Key is looked at (they are not the problem)."""
    admin = admin_of(api)
    document = admin.get("/api/v1/openapi.json").json()
    read_only = [
        path.replace("{", "").replace("}", "")  # a parameter's name is as good a value as any
        for path, operations in document["paths"].items()
        if path.startswith("/api/v1/") and not WRITE_METHODS & set(operations)
    ]
    assert len(read_only) >= 15
    variants: list[dict[str, Any]] = [
        {"json": {}},
        {"json": {}, "headers": {"Idempotency-Key": "x" * 200}},
        {"content": b"name=x", "headers": {"Content-Type": "text/plain"}},
        {"content": b'{"a": 1, "a": 2}', "headers": {"Content-Type": "application/json"}},
    ]
    wrong = []
    for path in read_only:
        for method in ("POST", "PUT", "PATCH", "DELETE"):
            for options in variants:
                answer = admin.request(method, path, **options)
                allow = answer.headers.get("allow", "")
                if answer.status_code != 405 or "GET" not in allow:
                    wrong.append(f"{method} {path} {options}: {answer.status_code} {answer.text}")
                elif answer.json()["field"] != "method":
                    wrong.append(f"{method} {path}: {answer.text}")
    assert not wrong, "\n".join(wrong[:20])
    nowhere = admin.post("/api/v1/no-such-thing", headers={"Idempotency-Key": "x" * 200})
    assert (nowhere.status_code, nowhere.json()["field"]) == (404, "path")


@pytest.mark.parametrize(
    ("url", "field"),
    [
        ("/api/v1/customers/{c}/preview?until=0.5", "until"),
        ("/api/v1/customers/{c}/preview?until=1767225600", "until"),
        ("/api/v1/events?occurred_from=0", "occurred_from"),
        ("/api/v1/payments?received_to=20260101", "received_to"),
        ("/api/v1/invoices?issued_from=86400", "issued_from"),
    ],
)
def test_an_instant_or_a_day_is_iso_text_never_seconds_since_1970(
    api: tuple[App, World], url: str, field: str
) -> None:
    admin = admin_of(api)
    customer = admin.post("/api/v1/customers", json=customer_body("Tim")).json()["id"]
    answer = admin.get(url.replace("{c}", str(customer)))
    assert answer.status_code == 422, answer.text
    assert answer.json()["field"] == field
    assert "ISO 8601" in answer.json()["rule"]
    good = admin.get(
        f"/api/v1/customers/{customer}/preview", params={"until": "2026-03-01T00:00:00Z"}
    )
    assert good.status_code == 200
    assert good.json()["until"].startswith("2026-03-01")
    for body in ({"at": 0.5}, {"at": "1767225600"}):  # in a body too
        refused = admin.post("/api/v1/ticks/run", json=body)
        assert (refused.status_code, refused.json()["field"]) == (422, "at")


def test_problems_for_every_refusal(api: tuple[App, World]) -> None:
    admin = admin_of(api)
    checks = [
        (admin.get("/api/v1/no-such-thing"), 404, "path"),
        (admin.request("DELETE", "/api/v1/customers"), 405, "method"),
        (
            admin.post(
                "/api/v1/resellers", content=b"name=x", headers={"Content-Type": "text/plain"}
            ),
            415,
            "Content-Type",
        ),
        (
            admin.post(
                "/api/v1/resellers", content=b"{oops", headers={"Content-Type": "application/json"}
            ),
            422,
            "body",
        ),
        (admin.post("/api/v1/resellers", json={"name": "a\u0000b"}), 422, "name"),
        (admin.post("/api/v1/resellers", json={"name": "x", "extra": 1}), 422, "extra"),
        (admin.get("/api/v1/customers", params={"limit": 0}), 422, "limit"),
        (admin.get("/api/v1/customers", params={"search": "a\u0000"}), 422, "search"),
        (admin.post("/api/v1/ticks/run", json={"at": "2200-01-01T00:00:00Z"}), 422, "at"),
        (
            admin.post(
                "/api/v1/services",
                json={"customer_id": 1, "plan_id": 1, "active_from": "9999-12-31"},
            ),
            422,
            "active_from",
        ),
        (  # a plain date once, so 9999-12-30 reached the engine
            admin.post(
                "/api/v1/services/1/suspend", json={"reason": "not_set", "starts_on": "9999-12-30"}
            ),
            422,
            "starts_on",
        ),
    ]
    for response, status, field in checks:
        assert response.status_code == status, response.text
        assert response.headers["content-type"] == PROBLEM
        problem = response.json()
        assert (problem["status"], problem["field"]) == (status, field)
        assert problem["rule"]
        assert problem["title"]
        assert problem["detail"]
    assert "GET" in admin.request("DELETE", "/api/v1/customers").headers["allow"]


def test_a_bug_is_a_logged_problem_500(
    api: tuple[App, World], monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    app, world = api

    def broken(*_args: Any, **_kwargs: Any) -> Any:
        raise RuntimeError("a bug")

    monkeypatch.setattr(plans_route, "add_plan", broken)
    transport = httpx.ASGITransport(app=create_app(app), raise_app_exceptions=False)

    async def send() -> httpx.Response:
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            return await client.post(
                "/api/v1/plans",
                json=PLAN,
                headers={"Authorization": f"Bearer {world.tokens['ops']}", "Idempotency-Key": "b"},
            )

    response = asyncio.run(send())
    assert response.status_code == 500
    assert response.headers["content-type"] == PROBLEM
    assert "a bug" not in response.text  # no internals leak
    assert response.json()["rule"] == "internal error"
    assert "a bug" in caplog.text
    # the key was released: the same request works once the bug is gone
    monkeypatch.undo()
    again = admin_of(api).post("/api/v1/plans", json=PLAN, headers={"Idempotency-Key": "b"})
    assert again.status_code == 201

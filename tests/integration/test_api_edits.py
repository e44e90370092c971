"""``PATCH`` for every resource and archive/restore in ``/api/v1`` (issue 17), on both
databases: validated as on creation (problem+json naming the field, nothing written), one event
with the old and new values, internal notes never shown to the subscriber's own session, and
archived customers and plans out of the default lists and refused new services."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from api_support import PLAN, PROBLEM, Api, World, api_app, customer_body, make_world, open_session
from sqlalchemy import select

from ispbill.adapters.db.models import Base, Event
from ispbill.bootstrap import App
from ispbill.clock import FixedClock
from scenarios.helpers import check_books


@pytest.fixture
def api(database_url: str, clock: FixedClock) -> Iterator[tuple[App, World]]:
    app = api_app(database_url, clock)
    try:
        yield app, make_world(app)
        check_books(app)
    finally:
        app.close()


def snapshot(app: App) -> dict[str, Any]:
    with app.engine.connect() as connection:
        return {
            t.name: sorted(map(repr, connection.execute(select(t)).all()))
            for t in Base.metadata.sorted_tables
            if t.name != "api_tokens"  # last use is noted on each request
        }


def changes_of(app: App, kind: str) -> dict[str, Any]:
    with app.uow() as uow:
        [event] = uow.session.scalars(select(Event).where(Event.kind == kind))
        return dict(event.figures["changes"])


def refused(response: Any, field: str) -> None:
    assert response.status_code in (404, 409, 422), response.text
    assert response.headers["content-type"] == PROBLEM
    assert response.json()["field"] == field, response.json()


def test_a_customer_is_patched_with_its_record(api: tuple[App, World]) -> None:
    app, world = api
    admin = Api(app, world.tokens["ops"])
    created = admin.post(
        "/api/v1/customers",
        json=customer_body(
            "Ada",
            balance_control="postpaid",
            emails=["ada@example.net"],
            phones=["+420 601 123 456"],
            service_gps="50.087451,14.420671",
            vat_id="CZ12345678",
            internal_notes="dog in the yard",
        ),
    )
    assert created.status_code == 201, created.text
    body = created.json()
    assert body["emails"] == ["ada@example.net"]
    assert body["internal_notes"] == "dog in the yard"
    customer_id = body["id"]
    patched = admin.request(
        "PATCH",
        f"/api/v1/customers/{customer_id}",
        json={
            "credit_limit": "80.00",
            "emails": ["billing@ada.test", "ada@example.net"],
            "billing_address": "Main St 1",
            "vat_id": "",
            "reason": "call 2026-01-01",
        },
    )
    assert patched.status_code == 200, patched.text
    shown = patched.json()
    assert shown["credit_limit"] == {"amount": "80.00", "currency": "USD"}
    assert shown["emails"] == ["billing@ada.test", "ada@example.net"]
    assert (shown["billing_address"], shown["vat_id"]) == ("Main St 1", None)
    assert shown["phones"] == ["+420 601 123 456"]  # not given: unchanged
    changes = changes_of(app, "customer.updated")
    assert changes["credit_limit"] == {"old": None, "new": "80.00 USD"}
    assert changes["vat_id"] == {"old": "CZ12345678", "new": None}

    # the subscriber's own session reads its record, never the internal notes
    open_session(app, world, "ada", customer_id)
    own = Api(app, world.tokens["ada"]).get(f"/api/v1/customers/{customer_id}")
    assert own.status_code == 200
    assert own.json()["internal_notes"] is None
    assert admin.get(f"/api/v1/customers/{customer_id}").json()["internal_notes"] == (
        "dog in the yard"
    )


@pytest.mark.parametrize(
    ("patch", "field"),
    [
        ({"vat_id": "12345678"}, "vat_id"),
        ({"service_gps": "95,10"}, "service_gps.latitude"),
        ({"phones": ["nope"]}, "phones"),
        ({"minimum_balance": "5.00"}, "minimum_balance"),  # postpaid
        ({"customer_class": "Nowhere"}, "customer_class"),
        ({"name": "Bob"}, "name"),  # taken
        ({"billing_cycle": "fortnightly"}, "billing_cycle"),
        ({"billing_timezone": "Mars/Olympus"}, "billing_timezone"),
        ({"invoicing_mode": "sideways"}, "invoicing_mode"),
        ({"credit_limit": "-1"}, "credit_limit"),  # refused by the schema
    ],
)
def test_a_refused_patch_names_the_field_and_writes_nothing(
    api: tuple[App, World], patch: dict[str, Any], field: str
) -> None:
    app, world = api
    admin = Api(app, world.tokens["ops"])
    for name in ("Ada", "Bob"):
        admin.post("/api/v1/customers", json=customer_body(name, balance_control="postpaid"))
    plan = admin.post("/api/v1/plans", json=PLAN).json()
    assert admin.post("/api/v1/services", json={"customer_id": 1, "plan_id": plan["id"]})
    before = snapshot(app)
    refused(admin.request("PATCH", "/api/v1/customers/1", json=patch), field)
    assert snapshot(app) == before


def test_a_period_term_edit_while_a_service_runs_is_pending_and_cancellable(
    api: tuple[App, World],
) -> None:
    app, world = api
    admin = Api(app, world.tokens["ops"])
    admin.post("/api/v1/customers", json=customer_body("North Home", reseller="North"))
    plan = admin.post("/api/v1/plans", json=PLAN).json()
    assert admin.post("/api/v1/services", json={"customer_id": 1, "plan_id": plan["id"]})
    patched = admin.request(
        "PATCH", "/api/v1/customers/1", json={"billing_cycle": "weekly", "reason": "asked"}
    )
    assert patched.status_code == 200, patched.text
    body = patched.json()
    assert body["billing_cycle"] == "monthly"  # the current period keeps its cycle
    [planned] = body["pending_changes"]
    assert (planned["field"], planned["old_value"], planned["new_value"]) == (
        "billing_cycle",
        "monthly:1",
        "weekly:1",
    )
    assert planned["status"] == "planned"
    assert admin.get("/api/v1/customers/1").json()["pending_changes"] == [planned]
    assert admin.get("/api/v1/customers").json()["items"][0]["pending_changes"] is None
    south = Api(app, world.tokens["south"])
    cancel = f"/api/v1/customers/changes/{planned['id']}/cancel"
    assert south.post(cancel, json={}).status_code == 404  # not its customer
    done = admin.post(cancel, json={"reason": "changed their mind"})
    assert done.status_code == 200, done.text
    assert done.json()["status"] == "cancelled"
    refused(admin.post(cancel, json={}), "change")  # only a planned one
    refused(admin.post("/api/v1/customers/changes/999/cancel", json={}), "change")
    assert admin.get("/api/v1/customers/1").json()["pending_changes"] == []
    with app.uow() as uow:
        kinds = list(
            uow.session.scalars(
                select(Event.kind)
                .where(Event.kind.startswith("customer.change"))
                .order_by(Event.id)
            )
        )
    assert kinds == ["customer.change_planned", "customer.change_cancelled"]


def test_scope_readonly_and_resellers(api: tuple[App, World]) -> None:
    app, world = api
    admin = Api(app, world.tokens["ops"])
    admin.post("/api/v1/customers", json=customer_body("North Home", reseller="North"))
    north, south = Api(app, world.tokens["north"]), Api(app, world.tokens["south"])
    auditor = Api(app, world.tokens["auditor"])
    assert (
        south.request("PATCH", "/api/v1/customers/1", json={"locale": "cs_CZ"}).status_code == 404
    )
    assert (
        auditor.request("PATCH", "/api/v1/customers/1", json={"locale": "cs_CZ"}).status_code == 403
    )
    done = north.request("PATCH", "/api/v1/customers/1", json={"locale": "cs_CZ"})
    assert done.status_code == 200, done.text
    assert done.json()["locale"] == "cs_CZ"
    # the catalogue is the admin's
    assert north.request("PATCH", "/api/v1/plans/1", json={"name": "X"}).status_code == 403


def test_archive_and_restore(api: tuple[App, World]) -> None:
    app, world = api
    admin = Api(app, world.tokens["ops"])
    customer = admin.post("/api/v1/customers", json=customer_body("Ada")).json()["id"]
    plan = admin.post("/api/v1/plans", json=PLAN).json()["id"]
    archived = admin.post(f"/api/v1/customers/{customer}/archive", json={"reason": "left"})
    assert archived.status_code == 200, archived.text
    assert archived.json()["archived_at"] is not None
    assert admin.get("/api/v1/customers").json()["items"] == []
    assert [c["id"] for c in admin.get("/api/v1/customers?archived=true").json()["items"]] == [
        customer
    ]
    refused(
        admin.post("/api/v1/services", json={"customer_id": customer, "plan_id": plan}),
        "customer",
    )
    assert admin.post(f"/api/v1/customers/{customer}/restore", json={}).status_code == 200
    assert admin.post(f"/api/v1/plans/{plan}/archive", json={}).status_code == 200
    assert admin.get("/api/v1/plans").json()["items"] == []
    assert [p["id"] for p in admin.get("/api/v1/plans?archived=true").json()["items"]] == [plan]
    refused(admin.post("/api/v1/services", json={"customer_id": customer, "plan_id": plan}), "plan")
    refused(admin.post(f"/api/v1/plans/{plan}/archive", json={}), "plan")  # already archived
    assert admin.post(f"/api/v1/plans/{plan}/restore", json={}).status_code == 200
    started = admin.post("/api/v1/services", json={"customer_id": customer, "plan_id": plan})
    assert started.status_code == 201, started.text
    refused(admin.post(f"/api/v1/customers/{customer}/archive", json={}), "customer")


def test_every_catalogue_resource_is_patched(api: tuple[App, World]) -> None:
    app, world = api
    admin = Api(app, world.tokens["ops"])
    tax = admin.post("/api/v1/tax-profiles", json={"name": "VAT", "rate": "21"}).json()["id"]
    plan = admin.post("/api/v1/plans", json=PLAN).json()["id"]
    nas = admin.post(
        "/api/v1/nas", json={"name": "edge-1", "address": "10.0.0.1", "secret": "shared-secret"}
    ).json()["id"]
    customer = admin.post("/api/v1/customers", json=customer_body("Ada")).json()["id"]
    service = admin.post(
        "/api/v1/services",
        json={"customer_id": customer, "plan_id": plan, "active_from": "2026-03-01"},
    ).json()["id"]
    for url, patch, key, value in (
        (f"/api/v1/tax-profiles/{tax}", {"rate": "20"}, "rate_bp", 2000),
        ("/api/v1/resellers/1", {"name": "North ISP"}, "name", "North ISP"),
        ("/api/v1/customer-classes/1", {"grace_days": 9, "tax_profile": "VAT"}, "grace_days", 9),
        (
            f"/api/v1/plans/{plan}",
            {"upload": "20M", "fup_tiers": ["1TB:suspend"]},
            "upload_kbps",
            20_000,
        ),
        (f"/api/v1/nas/{nas}", {"coa_port": 1700, "secret": "another-secret"}, "coa_port", 1700),
        (f"/api/v1/services/{service}", {"active_from": "2026-03-15"}, "active_from", "2026-03-15"),
    ):
        answer = admin.request("PATCH", url, json=patch)
        assert answer.status_code == 200, (url, answer.text)
        assert answer.json()[key] == value
        assert "secret" not in answer.json()
    assert changes_of(app, "nas.updated")["secret"] == {"old": "(hidden)", "new": "(hidden)"}
    assert changes_of(app, "plan.updated")["upload_kbps"] == {"old": 10_000, "new": 20_000}
    before = snapshot(app)
    for url, patch, field in (
        (f"/api/v1/tax-profiles/{tax}", {"name": " "}, "name"),
        ("/api/v1/customer-classes/1", {"custom_fields": ["Bad Name"]}, "custom_fields"),
        (f"/api/v1/plans/{plan}", {"fup_tiers": ["1TB:explode"]}, "fup_tiers[1].action"),
        (f"/api/v1/nas/{nas}", {"address": "nowhere"}, "address"),
        (f"/api/v1/services/{service}", {"period_months": 5}, "period_months"),
    ):
        refused(admin.request("PATCH", url, json=patch), field)
    assert snapshot(app) == before

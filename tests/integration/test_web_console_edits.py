"""Edit forms in the console (issue 17), on both databases: a customer's record and terms, a
plan, a class, a tax profile, a reseller, a NAS; a refused edit shows the field and the rule
with nothing written; archive and restore; internal notes stay off the subscriber's portal."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import date
from typing import Any

import pytest
from sqlalchemy import select
from web_support import PASSWORD, Browser, confirm_token_of, console_world, customer

from ispbill.adapters.db.models import Base, Customer, Event, Plan
from ispbill.bootstrap import App
from ispbill.clock import FixedClock
from ispbill.use_cases.admin.web_auth import set_portal_login
from ispbill.use_cases.catalog.customer_records import ContactRecord
from ispbill.use_cases.network.identities import NewNas, add_nas
from ispbill.use_cases.service_lifecycle.new_services import NewService, add_service


@pytest.fixture
def web(database_url: str, clock: FixedClock) -> Iterator[tuple[App, dict[str, int]]]:
    with console_world(database_url, clock) as world:
        yield world


def snapshot(app: App) -> dict[str, Any]:
    with app.engine.connect() as connection:
        return {
            t.name: sorted(map(repr, connection.execute(select(t)).all()))
            for t in Base.metadata.sorted_tables
            if t.name not in ("staff_sessions", "staff_users")  # sign-in bookkeeping
        }


def admin(app: App) -> Browser:
    browser = Browser(app)
    browser.sign_in_staff("alice")
    return browser


def form_of_page(browser: Browser, url: str) -> dict[str, str]:
    """The edit form's fields as the page prefills them (what a browser would send back)."""
    html = browser.get(url).text
    fields: dict[str, str] = {}
    for m in re.finditer(
        r'<input id="([^"]+)" name="[^"]+"(?: type="date")? value="([^"]*)"', html
    ):
        fields[m[1]] = m[2]
    for m in re.finditer(
        r'<textarea id="([^"]+)" name="[^"]+" rows="3">(.*?)</textarea>', html, re.S
    ):
        fields[m[1]] = m[2]
    for m in re.finditer(r'<select id="([^"]+)" name="[^"]+">(.*?)</select>', html, re.S):
        chosen = re.search(r'<option value="([^"]*)" selected>', m[2])
        fields[m[1]] = chosen[1] if chosen else ""
    for m in re.finditer(r'<input type="checkbox" id="([^"]+)" name="[^"]+" (checked)?', html):
        if m[2]:
            fields[m[1]] = "on"
    return {k: v.replace("&#39;", "'").replace("&amp;", "&") for k, v in fields.items()}


def test_a_customer_is_edited_from_its_page(web: tuple[App, dict[str, int]]) -> None:
    app, _ = web
    customer_id = customer(app, "Petr", minimum_balance="5")
    browser = admin(app)
    page = browser.get(f"/console/customers/{customer_id}").text
    assert f'href="/console/customers/{customer_id}/edit"' in page
    form = form_of_page(browser, f"/console/customers/{customer_id}/edit")
    assert form["minimum_balance"] == "5.00"
    form.update(
        emails="petr@example.net\npetr@work.example",
        phones="+420 777 000 111",
        service_gps="49.195061,16.606836",
        vat_id="CZ8001011234",
        internal_notes="prefers calls after 5pm",
        minimum_balance="0",
        reason="phone call",
    )
    saved = browser.post(f"/console/customers/{customer_id}/edit", form)
    assert saved.status_code == 303, saved.text[-500:]
    shown = browser.follow(saved).text
    assert "★</th><td>petr@example.net</td>" in shown
    assert "prefers calls after 5pm" in shown
    with app.uow() as uow:
        stored = uow.session.get(Customer, customer_id)
        assert stored is not None
        assert (stored.minimum_balance_minor, stored.vat_id) == (0, "CZ8001011234")
        [event] = uow.session.scalars(select(Event).where(Event.kind == "customer.updated"))
        assert event.actor == "staff:alice#1"
        assert event.figures["changes"]["minimum_balance"] == {"old": "5.00 EUR", "new": "0.00 EUR"}
        assert set(event.figures["changes"]) == {
            "emails",
            "phones",
            "service_gps",
            "vat_id",
            "internal_notes",
            "minimum_balance",
        }


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"vat_id": "8001011234"}, "vat_id: "),
        ({"service_gps": "49.1,190"}, "service_gps.longitude: "),
        ({"credit_limit": "50"}, "credit_limit: only postpaid customers"),
        ({"grace_days": "soon"}, "grace_days: must be a whole number"),
        ({"emails": "petr at example"}, "emails: "),
        ({"billing_cycle": "weekly"}, "billing_cycle: changes only between billing periods"),
    ],
)
def test_a_refused_edit_names_the_field_and_writes_nothing(
    web: tuple[App, dict[str, int]], change: dict[str, str], message: str
) -> None:
    app, ids = web
    customer_id = customer(app, "Petr")
    with app.uow() as uow:
        spec = NewService(customer_id=customer_id, plan_id=ids["plan"])
        add_service(uow, spec=spec, now=app.clock.now(), actor="test")
    browser = admin(app)
    form = form_of_page(browser, f"/console/customers/{customer_id}/edit")
    before = snapshot(app)
    answer = browser.post(f"/console/customers/{customer_id}/edit", {**form, **change})
    assert answer.status_code == 422
    assert message in answer.text.replace("&#39;", "'")
    for value in change.values():  # what was typed is kept in the form
        assert value.split("\n")[0] in answer.text
    assert snapshot(app) == before


def test_internal_notes_never_reach_the_portal(web: tuple[App, dict[str, int]]) -> None:
    app, _ = web
    customer_id = customer(
        app,
        "Jana",
        record=ContactRecord(internal_notes="SECRET-NOTE: threatened to cancel"),
    )
    with app.uow() as uow:
        set_portal_login(
            uow,
            customer_id=customer_id,
            email="jana@example.net",
            password=PASSWORD,
            now=app.clock.now(),
            actor="test",
        )
    assert "SECRET-NOTE" in admin(app).get(f"/console/customers/{customer_id}").text
    subscriber = Browser(app)
    subscriber.get("/portal/login")
    home = subscriber.submit("/portal/login", {"email": "jana@example.net", "password": PASSWORD})
    assert home.status_code == 200
    assert "Jana" in home.text
    assert "SECRET-NOTE" not in home.text


def test_archive_and_restore_a_customer(web: tuple[App, dict[str, int]]) -> None:
    app, _ = web
    customer_id = customer(app, "Old Timer")
    browser = admin(app)
    browser.get(f"/console/customers/{customer_id}/edit")
    # one click only asks: the consequence, nothing written
    asked = browser.post(f"/console/customers/{customer_id}/archive", {"reason": "moved"})
    assert asked.status_code == 200
    assert f"This will archive Old Timer (#{customer_id})" in asked.text
    assert "takes no new services until restored" in asked.text
    assert "Reason: moved" in asked.text
    with app.uow() as uow:
        assert uow.session.get(Customer, customer_id).archived_at is None  # type: ignore[union-attr]
    # a token for another reason is not a confirmation of this one
    other = browser.post(
        f"/console/customers/{customer_id}/archive",
        {"reason": "other", "confirm_token": confirm_token_of(asked.text)},
    )
    assert other.status_code == 409
    with app.uow() as uow:
        assert uow.session.get(Customer, customer_id).archived_at is None  # type: ignore[union-attr]
    done = browser.confirm(f"/console/customers/{customer_id}/archive", {"reason": "moved"})
    assert done.status_code == 200
    with app.uow() as uow:
        assert uow.session.get(Customer, customer_id).archived_at is not None  # type: ignore[union-attr]
        archived_events = [
            e for e in uow.session.scalars(select(Event)) if e.kind == "customer.archived"
        ]
    assert [(e.subject_id, e.reason) for e in archived_events] == [(customer_id, "moved")]
    assert "Old Timer" not in browser.get("/console/customers").text
    assert "Old Timer" in browser.get("/console/customers?status=archived").text
    assert 'id="archived"' in browser.get(f"/console/customers/{customer_id}").text
    again = browser.confirm(f"/console/customers/{customer_id}/archive", {"reason": ""})
    assert again.status_code == 422
    assert "already archived" in again.text
    assert browser.post(f"/console/customers/{customer_id}/restore", {}).status_code == 303
    assert "Old Timer" in browser.get("/console/customers").text
    # a read-only user may not
    reader = Browser(app)
    reader.sign_in_staff("rita")
    assert reader.get(f"/console/customers/{customer_id}/edit").status_code == 403


def test_catalogue_edit_forms(web: tuple[App, dict[str, int]]) -> None:
    app, ids = web
    with app.uow() as uow:
        nas_id = add_nas(
            uow,
            spec=NewNas(name="edge-1", address="10.0.0.1", secret="shared-secret"),
            now=app.clock.now(),
            actor="test",
        ).id
    browser = admin(app)
    assert f'href="/console/plans/{ids["plan"]}/edit"' in browser.get("/console/plans").text
    for url, change, done in (
        (f"/console/plans/{ids['plan']}/edit", {"download": "200M"}, "/console/plans"),
        (f"/console/classes/{ids['class']}/edit", {"grace_days": "4"}, "/console/classes"),
        (f"/console/resellers/{ids['North']}/edit", {"name": "North ISP"}, "/console/resellers"),
        (f"/console/nas/{nas_id}/edit", {"coa_port": "1700"}, "/console/nas"),
    ):
        form = form_of_page(browser, url)
        saved = browser.post(url, {**form, **change})
        assert saved.status_code == 303, (url, saved.text[-600:])
        assert saved.headers["location"].endswith(done)
    with app.uow() as uow:
        kinds = {
            e.kind: e.figures["changes"]
            for e in uow.session.scalars(select(Event))
            if e.kind.endswith(".updated")
        }
    assert kinds["plan.updated"] == {"download_kbps": {"old": 100_000, "new": 200_000}}
    assert kinds["customer_class.updated"] == {"grace_days": {"old": 0, "new": 4}}
    assert kinds["reseller.updated"] == {"name": {"old": "North", "new": "North ISP"}}
    assert kinds["nas.updated"] == {"coa_port": {"old": 3799, "new": 1700}}

    before = snapshot(app)
    for url, change, message in (
        (
            f"/console/plans/{ids['plan']}/edit",
            {"fup_tiers": "10GB:explode"},
            "fup_tiers[1].action",
        ),
        (f"/console/classes/{ids['class']}/edit", {"grace_days": "999"}, "grace_days"),
        (f"/console/nas/{nas_id}/edit", {"address": "nowhere"}, "address"),
    ):
        form = form_of_page(browser, url)
        answer = browser.post(url, {**form, **change})
        assert answer.status_code == 422
        assert message in answer.text
    assert snapshot(app) == before

    asked = browser.post(f"/console/plans/{ids['plan']}/archive", {"reason": "old"})
    assert asked.status_code == 200
    assert "This will archive the plan Fiber 100: it is no longer sold" in asked.text
    assert "its 0 service(s) not ended go on at their price" in asked.text
    with app.uow() as uow:
        assert uow.session.get(Plan, ids["plan"]).archived_at is None  # type: ignore[union-attr]
    archived = browser.confirm(f"/console/plans/{ids['plan']}/archive", {"reason": "old"})
    assert archived.status_code == 200
    assert "Fiber 100" not in browser.get("/console/plans").text
    assert "Fiber 100" in browser.get("/console/plans?archived=1").text
    with app.uow() as uow:
        plan = uow.session.get(Plan, ids["plan"])
        assert plan is not None
        assert plan.archived_at is not None
    nora = Browser(app)
    nora.sign_in_staff("nora")
    assert nora.get(f"/console/plans/{ids['plan']}/edit").status_code == 403


def test_a_service_that_has_not_started_is_edited(web: tuple[App, dict[str, int]]) -> None:
    app, ids = web
    customer_id = customer(app, "Petr")
    with app.uow() as uow:
        later = NewService(
            customer_id=customer_id, plan_id=ids["plan"], active_from=date(2026, 3, 1)
        )
        service_id = add_service(uow, spec=later, now=app.clock.now(), actor="test").id
    browser = admin(app)
    page = browser.get(f"/console/customers/{customer_id}").text
    assert f'href="/console/services/{service_id}/edit"' in page
    form = form_of_page(browser, f"/console/services/{service_id}/edit")
    assert form["active_from"] == "2026-03-01"
    saved = browser.post(
        f"/console/services/{service_id}/edit", {**form, "active_from": "2026-03-10"}
    )
    assert saved.status_code == 303, saved.text[-400:]
    with app.uow() as uow:
        [event] = uow.session.scalars(select(Event).where(Event.kind == "service.updated"))
        assert event.figures["changes"] == {
            "active_from": {"old": "2026-03-01", "new": "2026-03-10"}
        }
    before = snapshot(app)
    refused = browser.post(
        f"/console/services/{service_id}/edit", {**form, "active_from": "2020-01-01"}
    )
    assert refused.status_code == 422
    assert "active_from: must not be before today" in refused.text
    assert snapshot(app) == before


def test_a_new_customer_is_created_with_its_contacts(web: tuple[App, dict[str, int]]) -> None:
    app, _ = web
    browser = admin(app)
    browser.get("/console/customers/new")
    form = {
        "name": "Eva",
        "customer_class": "Home",
        "currency": "EUR",
        "billing_cycle": "monthly",
        "balance_control": "prepaid",
        "emails": "eva@example.net\neva@work.example",
        "phones": "+420 777 123 456",
        "billing_address": "Náměstí 1\nBrno",
        "vat_id": "cz 12345678",
    }
    created = browser.post("/console/customers", form)
    assert created.status_code == 303, created.text[-400:]
    with app.uow() as uow:
        eva = uow.session.scalars(select(Customer).where(Customer.name == "Eva")).one()
        assert [(c.value, c.is_primary) for c in eva.contacts] == [
            ("eva@example.net", True),
            ("eva@work.example", False),
            ("+420 777 123 456", True),
        ]
        assert (eva.billing_address, eva.vat_id) == ("Náměstí 1\nBrno", "CZ12345678")
    refused = browser.post("/console/customers", {**form, "name": "Eve", "vat_id": "123"})
    assert refused.status_code == 422
    assert "vat_id" in refused.text

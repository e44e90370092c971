"""ispbill in a real browser: an operator signs in, creates a customer and a service, records a
payment and charges; a reseller's user sees only its customers; a subscriber signs in to the
portal, pays two months in the sandbox gateway and sees the balance; a paused subscriber
reactivates by paying; an operator imports a bank statement, assigns a transfer and reverses
the payment it became (after its confirmation); an operator suspends the services of the
customers a filter shows, through the bulk action's preview and one confirmation; an operator
edits a customer, adds an installation fee and voids an invoice after its confirmation."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest
from browser_support import GARDEN_SECRET, PASSWORD, Server, keep_for_docs, shot
from playwright.sync_api import Page, expect
from sqlalchemy import select

from ispbill.adapters.db.models import Charge, Customer, Invoice, Service
from ispbill.adapters.db.settings_store import set_value
from ispbill.use_cases.admin.web_auth import add_staff, set_portal_login
from ispbill.use_cases.billing.tick import tick
from ispbill.use_cases.catalog.customer_accounts import NewCustomer, add_customer
from ispbill.use_cases.catalog.name_lookups import (
    customer_class_id_of,
    customer_id_of,
    reseller_id_of,
)
from ispbill.use_cases.catalog.offerings import NewClass, NewPlan, add_class, add_plan, add_reseller
from ispbill.use_cases.collections import collection_policy
from ispbill.use_cases.collections.walled_garden import garden_link
from ispbill.use_cases.payments.recording import NewPayment, record_payment
from ispbill.use_cases.service_lifecycle.new_services import NewService, add_service

BANK_STATEMENT = Path(__file__).resolve().parents[1] / "fixtures" / "bank" / "statement.camt053.xml"


@pytest.fixture(scope="module")
def world(server: Server) -> dict[str, Any]:
    app, now = server.app, server.clock.now()
    ids: dict[str, Any] = {}
    with app.uow() as uow:
        add_class(uow, spec=NewClass(name="Home"), now=now, actor="test")
    with app.uow() as uow:
        spec = NewPlan(name="Fiber 100", price="20", currency="EUR", download="100M", upload="20M")
        ids["plan"] = add_plan(uow, spec=spec, now=now, actor="test").id
    for name in ("North", "South"):
        with app.uow() as uow:
            add_reseller(uow, name=name, now=now, actor="test")
    for username, role, reseller in [("alice", "admin", None), ("nora", "reseller", "North")]:
        with app.uow() as uow:
            add_staff(
                uow,
                username=username,
                password=PASSWORD,
                role=role,
                reseller_id=reseller_id_of(uow, reseller) if reseller else None,
                now=now,
                actor="test",
            )
    for name, reseller in [("North Home", "North"), ("South Home", "South")]:
        with app.uow() as uow:
            spec_c = NewCustomer(
                name=name,
                customer_class_id=customer_class_id_of(uow, "Home"),
                currency="EUR",
                reseller_id=reseller_id_of(uow, reseller) if reseller else None,
            )
            ids[name] = add_customer(uow, spec=spec_c, now=now, actor="test").id
    return ids


def subscriber(server: Server, world: dict[str, Any], name: str, email: str, **extra: Any) -> int:
    app, now = server.app, server.clock.now()
    with app.uow() as uow:
        spec = NewCustomer(
            name=name, customer_class_id=customer_class_id_of(uow, "Home"), currency="EUR", **extra
        )
        customer_id = add_customer(uow, spec=spec, now=now, actor="test").id
    with app.uow() as uow:
        set_portal_login(
            uow,
            customer_id=customer_id_of(uow, name),
            email=email,
            password=PASSWORD,
            now=now,
            actor="t",
        )
    return customer_id


def staff_sign_in(page: Page, server: Server, username: str) -> None:
    page.goto(f"{server.url}/console")
    expect(page).to_have_url(re.compile(r"/console/login$"))
    page.fill("#username", username)
    page.fill("#password", PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name="Dashboard")).to_be_visible()


def portal_sign_in(page: Page, server: Server, email: str) -> None:
    page.goto(f"{server.url}/portal/login")
    page.fill("#email", email)
    page.fill("#password", PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page.locator("#balance")).to_be_visible()


def test_operator_creates_a_customer_and_a_service_and_records_a_payment(
    page: Page, server: Server, world: dict[str, Any]
) -> None:
    staff_sign_in(page, server, "alice")
    page.get_by_role("link", name="Customers").click()
    page.get_by_role("link", name="New customer").click()
    page.fill("#name", "Eva Svobodová")
    page.fill("#currency", "EUR")
    page.get_by_role("button", name="Create customer").click()
    expect(page.locator("h1")).to_contain_text("Eva Svobodová")
    expect(page.locator("#balance")).to_have_text("€0.00")
    page.select_option("#plan", label="Fiber 100 — €20.00")
    page.get_by_role("button", name="Add service").click()
    expect(page.locator("#services")).to_contain_text("Fiber 100")
    page.fill("#amount", "50")
    page.get_by_role("button", name="Record payment").click()
    # the payment re-evaluates the customer at once: the service starts and its first period,
    # 5 to 31 January of a 20 EUR month (27/31 of it, 17.42 EUR), is charged
    expect(page.locator("#balance")).to_have_text("€32.58")
    expect(page.locator("#payments")).to_contain_text("€50.00")
    page.get_by_role("button", name="Charge & invoice now").click()
    expect(page.locator("#balance")).to_have_text("€32.58")
    expect(page.locator("#services")).to_contain_text("active")
    expect(page.locator("#invoices")).to_contain_text("PDF")
    keep_for_docs(shot(page, "console-customer"))
    # suspend with a reason (ISPadmin), then lift
    row = page.locator("#services tr", has_text="Fiber 100")
    row.get_by_text("Suspend", exact=True).click()
    row.get_by_label("Reason").select_option("unregistered")
    row.get_by_role("button", name="Suspend service").click()
    expect(page.locator("#consequence")).to_contain_text("This will suspend service")
    page.locator("#confirm").click()
    expect(page.locator("#services")).to_contain_text("suspended")
    expect(page.locator("#services")).to_contain_text("unregistered")
    shot(page, "console-suspended")
    page.get_by_role("button", name="Lift suspension").click()
    expect(page.locator("#services .state-active")).to_be_visible()
    page.get_by_role("link", name="Dashboard").click()
    expect(page.locator("svg.chart").first).to_be_visible()
    keep_for_docs(shot(page, "console-dashboard"))


def test_search_updates_as_the_operator_types(
    page: Page, server: Server, world: dict[str, Any]
) -> None:
    staff_sign_in(page, server, "alice")
    page.goto(f"{server.url}/console/customers")
    expect(page.locator("#results")).to_contain_text("North Home")
    page.fill("#q", "south")  # htmx swaps the table in; no submit
    expect(page.locator("#results")).not_to_contain_text("North Home")
    expect(page.locator("#results")).to_contain_text("South Home")
    shot(page, "console-search")


def test_a_resellers_user_sees_only_its_customers(
    page: Page, server: Server, world: dict[str, Any]
) -> None:
    staff_sign_in(page, server, "nora")
    page.goto(f"{server.url}/console/customers")
    expect(page.locator("#results")).to_contain_text("North Home")
    expect(page.locator("#results")).not_to_contain_text("South Home")
    answer = page.goto(f"{server.url}/console/customers/{world['South Home']}")
    assert answer is not None
    assert answer.status == 404
    expect(page.get_by_role("heading", name="Not found")).to_be_visible()


def test_subscriber_pays_two_months_in_the_sandbox_and_sees_the_balance(
    page: Page, server: Server, world: dict[str, Any]
) -> None:
    customer_id = subscriber(server, world, "Tomáš", "tomas@example.net", available_funds="5")
    with server.app.uow() as uow:
        spec = NewService(customer_id=customer_id, plan_id=world["plan"])
        add_service(uow, spec=spec, now=server.clock.now(), actor="test")
    portal_sign_in(page, server, "tomas@example.net")
    expect(page.locator("#balance")).to_have_text("€5.00")
    page.fill("#months", "2")
    # 27/31 of January and February, less the 5 EUR credit
    expect(page.locator("#quote")).to_contain_text("€32.42")
    keep_for_docs(shot(page, "portal-home"))
    page.get_by_role("button", name="Pay online").click()
    expect(page.get_by_role("heading", name=re.compile("Pay"))).to_contain_text("€32.42")
    page.get_by_role("button", name=re.compile("Pay")).click()
    expect(page.locator(".ok")).to_contain_text("Thank you")
    page.goto(f"{server.url}/portal")
    # the payment starts the service and charges January (17.42 EUR) at once; February's
    # 20 EUR waits in the wallet
    expect(page.locator("#balance")).to_have_text("€20.00")
    expect(page.locator("body")).to_contain_text("Working. Paid up to")
    expect(page.locator("#payments")).to_contain_text("gateway")


def test_a_paused_subscriber_reactivates_by_paying(
    page: Page, server: Server, world: dict[str, Any]
) -> None:
    """The walled-garden story of UISP for a paused ("active to") service, in the portal."""
    app = server.app
    customer_id = subscriber(server, world, "Lucie", "lucie@example.net", locale="cs_CZ")
    now = server.clock.now()
    with app.uow() as uow:
        record_payment(
            uow,
            spec=NewPayment(customer_id=customer_id, amount="20", idempotency_key="lucie"),
            now=now,
            actor="test",
        )
    with app.uow() as uow:
        # active from 1 to 4 January: already past on the 5th, so the tick pauses it
        spec = NewService(
            customer_id=customer_id,
            plan_id=world["plan"],
            active_from=date(2026, 1, 1),
            active_to=date(2026, 1, 4),
        )
        add_service(uow, spec=spec, now=now, actor="test")
    tick(app.uow, now=now)
    with app.uow() as uow:
        set_value(uow, key="self_service_reactivation", raw="true", now=now, actor="test")
    portal_sign_in(page, server, "lucie@example.net")
    expect(page.locator("body")).to_contain_text("Pozastaveno")
    keep_for_docs(shot(page, "portal-paused-cs"))
    page.get_by_label("Zaplatit období").fill("1")
    page.get_by_role("button", name="Znovu aktivovat").click()
    if "/sandbox/checkout/" in page.url:
        page.get_by_role("button", name=re.compile("Pay")).click()
        expect(page.locator(".ok")).to_contain_text("Thank you")
        page.goto(f"{server.url}/portal")
    expect(page.locator("body")).to_contain_text("V provozu")


def test_a_suspended_subscriber_pays_on_the_walled_garden_and_sees_restored(
    browser: Any, server: Server, world: dict[str, Any]
) -> None:
    """Seed 000/002: a non-payer, suspended by the collection policy, opens the garden link,
    pays one month in the sandbox in another tab, and the garden page (left open) tells it
    that access is restored. Runs last: it moves the shared clock on."""
    app = server.app
    now = server.clock.now()
    customer_id = subscriber(server, world, "Nina", "nina@example.net", balance_control="postpaid")
    with app.uow() as uow:
        spec = NewService(customer_id=customer_id, plan_id=world["plan"])
        service_id = add_service(uow, spec=spec, now=now, actor="test").id
    tick(app.uow, now=now)
    with app.uow() as uow:
        collection_policy.set_values(
            uow, changes={"enabled": "true"}, customer_class_id=None, now=now, actor="test"
        )
    server.clock.set(datetime(2026, 2, 10, 9, 0, tzinfo=UTC))
    tick(app.uow, now=server.clock.now())
    with app.uow() as uow:
        service = uow.session.get(Service, service_id)
        assert service is not None
        assert (service.state, service.state_reason) == ("suspended", "non_payer")
        link = garden_link(
            secret=GARDEN_SECRET,
            base_url=server.url,
            service_id=service_id,
            now=server.clock.now(),
        )
    context = browser.new_context(viewport={"width": 390, "height": 844}, locale="en-US")
    try:
        garden = context.new_page()
        garden.goto(link)
        expect(garden.locator("#state")).to_contain_text("suspended")
        expect(garden.locator("#amount-due")).not_to_have_text("€0.00")
        keep_for_docs(shot(garden, "garden-suspended"))
        payer = context.new_page()
        payer.goto(link)
        payer.get_by_label("Pay for").select_option("1")
        payer.get_by_role("button", name="Pay now").click()
        payer.get_by_role("button", name=re.compile("Pay")).click()
        expect(payer.locator(".ok")).to_contain_text("Thank you")
        # the page left open notices by itself (htmx polls the status box)
        expect(garden.locator("#restored")).to_be_visible(timeout=20_000)
        expect(garden.locator("#state")).to_contain_text("active")
        keep_for_docs(shot(garden, "garden-restored"))
        payer.get_by_role("link", name="Continue").click()
        expect(payer.locator("#restored")).to_be_visible()
    finally:
        context.close()


def test_operator_imports_a_bank_statement_assigns_a_transfer_and_reverses_it(
    page: Page, server: Server, world: dict[str, Any]
) -> None:
    """The statement's unmatched credit goes to the customer the operator picks; the payment
    it became is then reversed on the customer's page, with a reason."""
    customer_id = world["North Home"]
    staff_sign_in(page, server, "alice")
    page.get_by_role("link", name="Bank statements").click()
    page.set_input_files("#file", str(BANK_STATEMENT))
    page.get_by_role("button", name="Import statement").click()
    expect(page.locator("#rows-read")).to_have_text("7")
    expect(page.locator("#unmatched")).to_have_text("6")  # no customer here has these symbols
    keep_for_docs(shot(page, "console-bank"))
    expect(page.locator("#lines tr")).to_have_count(7)  # a header and the six credits
    line = page.locator("#lines tr", has_text="VS:0000001001")
    line.get_by_label("Customer id").fill(str(customer_id))
    line.get_by_role("button", name="Assign").click()
    expect(page.locator("#lines tr")).to_have_count(6)
    page.goto(f"{server.url}/console/customers/{customer_id}")
    expect(page.locator("#balance")).to_have_text("€30.00")
    payment = page.locator("#payments tr", has_text="bank_transfer")
    payment.get_by_text("Reverse", exact=True).click()
    payment.get_by_label("Why").fill("booked to the wrong customer")
    payment.get_by_role("button", name="Reverse payment").click()
    # the confirmation states the figures before anything is done
    expect(page.locator("#consequence")).to_contain_text(
        "the wallet goes from 30.00 EUR to 0.00 EUR"
    )
    page.locator("#confirm").click()
    expect(page.locator("#balance")).to_have_text("€0.00")
    expect(page.locator("#payments")).to_contain_text("reversed")


def test_operator_suspends_the_filtered_customers_through_the_preview(
    page: Page, server: Server, world: dict[str, Any]
) -> None:
    """A bulk suspension: filter the list, preview exactly which services change, confirm
    once, and read each customer's result; a customer outside the filter is untouched."""
    app, now = server.app, server.clock.now()
    services: dict[str, int] = {}
    for name in ("Bulk Anna", "Bulk Boris", "Outside Olga"):
        customer_id = subscriber(
            server, world, name, f"{name.split()[1].lower()}@example.net", available_funds="50"
        )
        with app.uow() as uow:
            spec = NewService(customer_id=customer_id, plan_id=world["plan"])
            services[name] = add_service(uow, spec=spec, now=now, actor="test").id
    tick(app.uow, now=now)
    staff_sign_in(page, server, "alice")
    page.goto(f"{server.url}/console/customers")
    page.fill("#q", "Bulk")
    page.get_by_role("button", name="Search").click()
    expect(page.locator("#results")).to_contain_text("Bulk Anna")
    page.locator("#bulk summary").click()
    page.select_option("#bulk-action", "suspend")
    page.select_option("#bulk-reason", "profile_1")
    page.locator("#bulk-preview").click()
    expect(page.locator("#consequence")).to_contain_text("2 service(s) of 2 customer(s)")
    details = page.locator("#confirmation-details")
    expect(details).to_contain_text(f"service #{services['Bulk Anna']} (Fiber 100): active")
    expect(details).to_contain_text(f"service #{services['Bulk Boris']} (Fiber 100): active")
    expect(details).not_to_contain_text("Outside Olga")
    shot(page, "console-bulk-preview")
    page.locator("#confirm").click()
    expect(page.locator("#bulk-summary")).to_have_text("Done for 2 customer(s), refused for 0.")
    shot(page, "console-bulk-result")
    with app.uow() as uow:
        states = {name: uow.session.get(Service, sid).state for name, sid in services.items()}  # type: ignore[union-attr]
    assert states == {"Bulk Anna": "suspended", "Bulk Boris": "suspended", "Outside Olga": "active"}


def test_operator_edits_a_customer_adds_a_fee_and_voids_an_invoice_after_confirming(
    page: Page, server: Server, world: dict[str, Any]
) -> None:
    """Issue 17's daily work: the edit form changes a prepaid customer's contact e-mail and
    minimum balance (the page shows them), a one-off installation fee is charged from its
    wallet, and a postpaid customer's issued, unpaid invoice is voided only after the
    confirmation that states what voiding does."""
    app, now = server.app, server.clock.now()
    emil = subscriber(server, world, "Emil Edit", "emil@example.net", available_funds="100")
    vera = subscriber(server, world, "Vera Void", "vera@example.net", balance_control="postpaid")
    with app.uow() as uow:
        add_service(
            uow, spec=NewService(customer_id=vera, plan_id=world["plan"]), now=now, actor="test"
        )
    tick(app.uow, now=now)
    with app.uow() as uow:
        invoice = uow.session.scalars(select(Invoice).where(Invoice.customer_id == vera)).one()
        assert (invoice.status, invoice.paid_minor) == ("issued", 0)
        invoice_id, number = invoice.id, invoice.number
    staff_sign_in(page, server, "alice")

    # edit: a contact e-mail and the minimum balance
    page.goto(f"{server.url}/console/customers/{emil}")
    expect(page.locator("#minimum-balance")).to_have_text("€0.00")
    page.locator("#edit-customer").click()
    page.fill("#emails", "emil.new@example.net")
    page.fill("#minimum_balance", "15")
    page.fill("#reason", "asked by phone")
    page.get_by_role("button", name="Save changes").click()
    expect(page).to_have_url(re.compile(rf"/console/customers/{emil}$"))
    expect(page.locator("#record")).to_contain_text("emil.new@example.net")
    expect(page.locator("#minimum-balance")).to_have_text("€15.00")

    # a one-off installation fee, from the prepaid wallet at once
    page.fill("#extra-description", "Installation")
    page.fill("#extra-amount", "30")
    page.get_by_role("button", name="Add charge").click()
    expect(page.locator("#balance")).to_have_text("€70.00")
    fees = page.locator("table", has=page.locator("th", has_text="Description"))
    expect(fees.locator("tr", has_text="Installation")).to_contain_text("€30.00")
    shot(page, "console-edited-customer")

    # void an invoice: the first click only states the consequence
    page.goto(f"{server.url}/console/customers/{vera}")
    row = page.locator(f"#invoice-{invoice_id}")
    row.get_by_placeholder("reason").fill("issued in error")
    row.get_by_role("button", name="Void…").click()
    expect(page.locator("#consequence")).to_contain_text(f"This will void invoice {number}")
    expect(page.locator("#consequence")).to_contain_text("can never be paid or voided again")
    with app.uow() as uow:  # nothing done before the confirmation
        assert uow.session.get(Invoice, invoice_id).status == "issued"  # type: ignore[union-attr]
    shot(page, "console-void-confirmation")
    page.locator("#confirm").click()
    expect(page.locator(f"#invoice-{invoice_id}")).to_contain_text("void")

    with app.uow() as uow:
        customer = uow.session.get(Customer, emil)
        assert customer is not None
        assert customer.minimum_balance_minor == 1500
        assert [c.value for c in customer.contacts if c.kind == "email"] == ["emil.new@example.net"]
        fee = uow.session.scalars(
            select(Charge).where(Charge.customer_id == emil, Charge.kind == "extra")
        ).one()
        assert (fee.description, fee.gross_minor, fee.currency) == ("Installation", 3000, "EUR")
        voided = uow.session.get(Invoice, invoice_id)
        assert voided is not None
        assert voided.status == "void"
        notes = uow.session.scalars(
            select(Invoice).where(Invoice.corrects_id == invoice_id, Invoice.kind != "invoice")
        ).all()
    assert [n.gross_minor for n in notes] == [invoice.gross_minor]

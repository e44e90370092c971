"""The console's confirmations and bulk actions (issue 17), over HTTP on both databases:
what a destructive action will do is shown with its figures before it is done, a post without
the confirmation's token (or with a stale one) changes nothing, and a bulk action on the
filtered customer list previews every change, runs customer by customer and reports each.
Also the plan's price page."""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterator
from datetime import date

import pytest
from sqlalchemy import func, select
from web_support import Browser, confirm_token_of, console_world, customer

from ispbill.adapters.db.models import Event, Payment, PlanPrice, Service
from ispbill.bootstrap import App
from ispbill.clock import FixedClock
from ispbill.use_cases.billing import tick as billing
from ispbill.use_cases.catalog.offerings import NewPlan, add_plan
from ispbill.use_cases.collections.suspensions import SuspendRequest, suspend_service
from ispbill.use_cases.payments.recording import NewPayment, record_payment
from ispbill.use_cases.service_lifecycle.new_services import NewService, add_service


@pytest.fixture
def web(database_url: str, clock: FixedClock) -> Iterator[tuple[App, dict[str, int]]]:
    with console_world(database_url, clock) as world:
        yield world


def active_service(app: App, customer_id: int, plan_id: int) -> int:
    """A service charged and active from today (the tick bills it from the wallet)."""
    with app.uow() as uow:
        spec = NewService(customer_id=customer_id, plan_id=plan_id)
        service_id = add_service(uow, spec=spec, now=app.clock.now(), actor="test").id
    billing.tick(app.uow, now=app.clock.now())
    assert states(app, [service_id]) == ["active"]
    return service_id


def states(app: App, service_ids: list[int]) -> list[str]:
    with app.uow() as uow:
        return [
            uow.session.get(Service, s).state  # type: ignore[union-attr]
            for s in service_ids
        ]


def paid(app: App, customer_id: int, amount: str, key: str) -> int:
    with app.uow() as uow:
        spec = NewPayment(
            customer_id=customer_id, amount=amount, method="cash", idempotency_key=key
        )
        return record_payment(uow, spec=spec, now=app.clock.now(), actor="test").payment.id


def suspended_events(app: App) -> list[tuple[int, str]]:
    with app.uow() as uow:
        rows = uow.session.scalars(
            select(Event).where(Event.kind == "service.suspended").order_by(Event.subject_id)
        )
        return [(e.subject_id, e.actor) for e in rows]


BULK_SUSPEND = {"q": "Bulk", "status": "", "action": "suspend", "reason": "profile_1"}


def test_a_bulk_suspension_previews_then_acts_on_exactly_the_filtered_customers(
    web: tuple[App, dict[str, int]],
) -> None:
    app, ids = web
    a = customer(app, "Bulk A", available_funds="100")
    b = customer(app, "Bulk B", available_funds="100")
    customer(app, "Bulk C")  # no service: listed as having nothing to suspend
    other = customer(app, "Other", available_funds="100")
    services = [active_service(app, c, ids["plan"]) for c in (a, b, other)]
    browser = Browser(app)
    browser.sign_in_staff("alice")
    listing = browser.get("/console/customers?q=Bulk")
    assert 'id="bulk"' in listing.text

    preview = browser.get("/console/customers/bulk", params=BULK_SUSPEND)
    assert preview.status_code == 200
    assert "This will suspend (reason" in preview.text
    assert "2 service(s) of 2 customer(s)" in preview.text
    assert f"Bulk A (#{a}): service #{services[0]} (Fiber 100): active → suspended now" in (
        preview.text.replace("&#39;", "'")
    )
    assert "Bulk C" in preview.text
    assert "nothing to suspend" in preview.text
    assert "Other" not in preview.text
    assert states(app, services) == ["active"] * 3  # a preview writes nothing

    unconfirmed = browser.post("/console/customers/bulk", BULK_SUSPEND)
    assert unconfirmed.status_code == 200
    assert 'id="consequence"' in unconfirmed.text
    assert states(app, services) == ["active"] * 3

    done = browser.post(
        "/console/customers/bulk", {**BULK_SUSPEND, "confirm_token": confirm_token_of(preview.text)}
    )
    assert done.status_code == 200, done.text
    assert "Done for 3 customer(s), refused for 0." in done.text
    assert states(app, services) == ["suspended", "suspended", "active"]
    assert [subject for subject, _ in suspended_events(app)] == services[:2]
    assert {actor for _, actor in suspended_events(app)} == {"staff:alice#1"}


def test_a_bulk_action_whose_selection_moved_is_shown_again_not_done(
    web: tuple[App, dict[str, int]],
) -> None:
    app, ids = web
    a = customer(app, "Bulk A", available_funds="100")
    first = active_service(app, a, ids["plan"])
    browser = Browser(app)
    browser.sign_in_staff("alice")
    preview = browser.get("/console/customers/bulk", params=BULK_SUSPEND)
    token = confirm_token_of(preview.text)
    d = customer(app, "Bulk D", available_funds="100")  # enters the filter after the preview
    late = active_service(app, d, ids["plan"])

    stale = browser.post("/console/customers/bulk", {**BULK_SUSPEND, "confirm_token": token})
    assert stale.status_code == 409
    assert 'id="confirmation-changed"' in stale.text
    assert "Bulk D" in stale.text
    assert states(app, [first, late]) == ["active", "active"]
    tampered = browser.post(
        "/console/customers/bulk",
        {**BULK_SUSPEND, "reason": "profile_2", "confirm_token": confirm_token_of(stale.text)},
    )
    assert tampered.status_code == 409
    assert states(app, [first, late]) == ["active", "active"]

    done = browser.post(
        "/console/customers/bulk", {**BULK_SUSPEND, "confirm_token": confirm_token_of(stale.text)}
    )
    assert done.status_code == 200
    assert states(app, [first, late]) == ["suspended", "suspended"]


def test_a_bulk_plan_change_reports_each_customers_refusal_and_goes_on(
    web: tuple[App, dict[str, int]],
) -> None:
    app, ids = web
    now = app.clock.now()
    with app.uow() as uow:
        cheap = add_plan(
            uow,
            spec=NewPlan(name="Fiber 50", price="15", currency="EUR", download="50M", upload="10M"),
            now=now,
            actor="test",
        ).id
    with app.uow() as uow:
        dollars = add_plan(
            uow,
            spec=NewPlan(name="Fiber US", price="25", currency="USD", download="50M", upload="10M"),
            now=now,
            actor="test",
        ).id
    euro = customer(app, "Move Euro", available_funds="100")
    dollar = customer(app, "Move Dollar", currency="USD", available_funds="100")
    euro_service = active_service(app, euro, ids["plan"])
    dollar_service = active_service(app, dollar, dollars)
    browser = Browser(app)
    browser.sign_in_staff("alice")
    fields = {"q": "Move", "status": "", "action": "change_plan", "plan": str(cheap)}
    preview = browser.get("/console/customers/bulk", params=fields)
    assert "This will move to another plan &#39;Fiber 50&#39; 2 service(s)" in preview.text
    done = browser.post(
        "/console/customers/bulk", {**fields, "confirm_token": confirm_token_of(preview.text)}
    )
    assert "Done for 1 customer(s), refused for 1." in done.text
    refused = re.search(rf'id="bulk-{dollar}".*?</tr>', done.text, re.S)
    assert refused is not None
    assert "plan: plan &#39;Fiber 50&#39; is priced in EUR, the customer pays in USD" in refused[0]
    with app.uow() as uow:
        plans = [uow.session.get(Service, s).plan_id for s in (euro_service, dollar_service)]  # type: ignore[union-attr]
    assert plans == [cheap, dollars]


def test_bulk_lift_export_and_who_may_do_what(web: tuple[App, dict[str, int]]) -> None:
    app, ids = web
    north = customer(app, "Bulk North", reseller="North", available_funds="100")
    south = customer(app, "Bulk South", reseller="South", available_funds="100")
    services = [active_service(app, c, ids["plan"]) for c in (north, south)]
    for service_id in services:
        with app.uow() as uow:
            spec = SuspendRequest(service_id=service_id, reason="profile_1")
            suspend_service(uow, spec=spec, now=app.clock.now(), actor="test")

    nora = Browser(app)  # North's reseller user: her own customers only
    nora.sign_in_staff("nora")
    lift = {"q": "Bulk", "status": "", "action": "lift"}
    preview = nora.get("/console/customers/bulk", params=lift)
    assert "Bulk North" in preview.text
    assert "Bulk South" not in preview.text
    done = nora.post(
        "/console/customers/bulk", {**lift, "confirm_token": confirm_token_of(preview.text)}
    )
    assert "Done for 1 customer(s)" in done.text
    assert states(app, services) == ["active", "suspended"]

    rita = Browser(app)  # read-only: may export, may not act
    rita.sign_in_staff("rita")
    assert rita.get("/console/customers/bulk", params=lift).status_code == 403
    assert rita.post("/console/customers/bulk", lift).status_code == 403
    exported = rita.get("/console/customers/bulk", params={"q": "Bulk", "action": "export"})
    rows = list(csv.DictReader(io.StringIO(exported.text)))
    assert [(r["name"], r["service_id"], r["state"]) for r in rows] == [
        ("Bulk North", str(services[0]), "active"),
        ("Bulk South", str(services[1]), "suspended"),
    ]

    alice = Browser(app)
    alice.sign_in_staff("alice")
    unknown = alice.get("/console/customers/bulk", params={"q": "Bulk", "action": "delete"})
    assert unknown.status_code == 422
    assert "action: &#39;delete&#39; is not one of" in unknown.text


# -- confirmations of the single destructive actions -----------------------------------------------


def test_a_reversal_states_its_figures_and_a_stale_one_is_shown_again(
    web: tuple[App, dict[str, int]],
) -> None:
    app, _ = web
    customer_id = customer(app, "Petr")
    payment_id = paid(app, customer_id, "30", "p-1")
    browser = Browser(app)
    browser.sign_in_staff("alice")
    shown = browser.get(f"/console/payments/{payment_id}/reverse", params={"reason": "bounced"})
    assert shown.status_code == 200
    assert (
        f"This will reverse payment #{payment_id} of 30.00 EUR (cash) received "
        f"{app.clock.now().date().isoformat()} from Petr: the wallet goes from 30.00 EUR to "
        "0.00 EUR"
    ) in shown.text
    token = confirm_token_of(shown.text)
    paid(app, customer_id, "5", "p-2")  # the wallet moved since the page was shown
    stale = browser.post(
        f"/console/payments/{payment_id}/reverse", {"reason": "bounced", "confirm_token": token}
    )
    assert stale.status_code == 409
    assert "the wallet goes from 35.00 EUR to 5.00 EUR" in stale.text
    with app.uow() as uow:
        assert uow.session.get(Payment, payment_id).reversed_by_id is None  # type: ignore[union-attr]
    done = browser.submit(
        f"/console/payments/{payment_id}/reverse",
        {"reason": "bounced", "confirm_token": confirm_token_of(stale.text)},
    )
    assert done.status_code == 200
    with app.uow() as uow:
        assert uow.session.get(Payment, payment_id).reversed_by_id is not None  # type: ignore[union-attr]


def test_a_suspension_states_what_it_does_before_it_is_done(
    web: tuple[App, dict[str, int]],
) -> None:
    app, ids = web
    customer_id = customer(app, "Vera", available_funds="100")
    service_id = active_service(app, customer_id, ids["plan"])
    browser = Browser(app)
    browser.sign_in_staff("alice")
    page = browser.get(f"/console/customers/{customer_id}")
    assert f'<form method="get" action="/console/services/{service_id}/suspend">' in page.text
    shown = browser.get(
        f"/console/services/{service_id}/suspend",
        params={"reason": "profile_1", "ends_on": "2026-03-31", "suspend_invoicing": "1"},
    )
    assert f"This will suspend service #{service_id} (Fiber 100) of Vera now to 2026-03-31" in (
        shown.text
    )
    assert "no charges for the suspended days" in shown.text
    posted = browser.post(f"/console/services/{service_id}/suspend", {"reason": "profile_1"})
    assert posted.status_code == 200
    assert states(app, [service_id]) == ["active"]
    assert browser.confirm(f"/console/services/{service_id}/suspend", {"reason": "profile_1"})
    assert states(app, [service_id]) == ["suspended"]


# -- the plan's prices ---------------------------------------------------------------------------


def test_an_admin_sets_a_plans_price_from_a_day(web: tuple[App, dict[str, int]]) -> None:
    app, ids = web
    browser = Browser(app)
    browser.sign_in_staff("alice")
    assert f"/console/plans/{ids['plan']}/prices" in browser.get("/console/plans").text
    page = browser.get(f"/console/plans/{ids['plan']}/prices")
    assert 'id="new-price"' in page.text
    refused = browser.post(
        f"/console/plans/{ids['plan']}/prices", {"amount": "22", "valid_from": "1999-01-01"}
    )
    assert refused.status_code == 422
    assert "from: 1999-01-01 is not after" in refused.text
    done = browser.submit(
        f"/console/plans/{ids['plan']}/prices", {"amount": "22", "valid_from": "2026-06-01"}
    )
    assert done.status_code == 200
    assert "€22.00" in done.text
    with app.uow() as uow:
        assert uow.session.scalar(select(func.count(PlanPrice.id))) == 2
        rows = uow.session.scalars(select(PlanPrice).order_by(PlanPrice.valid_from)).all()
        assert [(r.price_minor, r.valid_to) for r in rows] == [
            (20_00, date(2026, 6, 1)),
            (22_00, None),
        ]
    rita = Browser(app)
    rita.sign_in_staff("rita")
    assert 'id="new-price"' not in rita.get(f"/console/plans/{ids['plan']}/prices").text
    assert (
        rita.post(
            f"/console/plans/{ids['plan']}/prices", {"amount": "1", "valid_from": "2026-07-01"}
        ).status_code
        == 403
    )
    assert browser.get("/console/plans/999999/prices").status_code == 404


def test_a_bulk_one_off_charge_charges_each_customer_once_and_reports_a_refusal(
    web: tuple[App, dict[str, int]],
) -> None:
    app, _ = web
    funded = customer(app, "Fee Funded", available_funds="50")
    billed = customer(app, "Fee Billed", balance_control="postpaid")
    dry = customer(app, "Fee Dry")  # prepaid, empty wallet: refused, nothing written
    browser = Browser(app)
    browser.sign_in_staff("alice")
    fields = {
        "q": "Fee",
        "status": "",
        "action": "charge",
        "amount": "10.00",
        "description": "Installation",
    }
    preview = browser.get("/console/customers/bulk", params=fields)
    assert preview.status_code == 200
    assert "This will add a one-off charge of 10.00" in preview.text
    assert "3 customer(s)" in preview.text
    assert "on the next invoice" in preview.text
    token = confirm_token_of(preview.text)
    done = browser.post("/console/customers/bulk", {**fields, "confirm_token": token})
    assert "Done for 2 customer(s), refused for 1." in done.text
    refused = re.search(rf'id="bulk-{dry}".*?</tr>', done.text, re.S)
    assert refused is not None
    assert "amount: the prepaid wallet holds" in refused[0]
    again = browser.post("/console/customers/bulk", {**fields, "confirm_token": token})
    assert "was already made by this confirmation" in again.text  # a double post charges once
    with app.uow() as uow:
        added = uow.session.scalars(
            select(Event).where(Event.kind == "charge.added").order_by(Event.subject_id)
        ).all()
    assert [(e.subject_id, e.actor) for e in added] == [
        (funded, "staff:alice#1"),
        (billed, "staff:alice#1"),
    ]

"""The console's operator-wide lists over HTTP on both databases: the event log, payments, and
invoices with credit notes; their filters, keyset pages and CSV exports, a filter refused with
its field named, read-only users reading everything and a reseller's user kept to its own
customers' rows in every page and CSV."""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest
from fastapi.routing import APIRoute
from sqlalchemy import func, select
from web_support import Browser, catalog, web_app

from ispbill.adapters.db.models import Customer, Event, Invoice, Payment
from ispbill.bootstrap import App
from ispbill.clock import FixedClock
from ispbill.entrypoints.web import console
from ispbill.use_cases.billing.plan_changes import change_plan
from ispbill.use_cases.billing.reevaluation import charge_and_invoice
from ispbill.use_cases.catalog.customer_accounts import NewCustomer, add_customer
from ispbill.use_cases.catalog.name_lookups import customer_class_id_of, reseller_id_of
from ispbill.use_cases.catalog.offerings import NewPlan, add_plan
from ispbill.use_cases.payments.corrections import reverse_payment
from ispbill.use_cases.payments.recording import NewPayment, record_payment
from ispbill.use_cases.queries import operator_lists as console_lists
from ispbill.use_cases.service_lifecycle.new_services import NewService, add_service
from scenarios.helpers import check_books


@dataclass
class Account:
    """A customer with a payment, a service and the invoice of its first period."""

    customer_id: int
    payment_id: int
    service_id: int
    invoice: str


@dataclass
class World:
    app: App
    ids: dict[str, int]
    north: Account
    south: Account
    own: Account  # the operator's own customer, no reseller


def _account(app: App, ids: dict[str, int], name: str, reseller: str | None) -> Account:
    now = app.clock.now()
    with app.uow() as uow:
        spec = NewCustomer(
            name=name,
            customer_class_id=customer_class_id_of(uow, "Home"),
            currency="EUR",
            reseller_id=reseller_id_of(uow, reseller) if reseller else None,
        )
        customer_id = add_customer(uow, spec=spec, now=now, actor="test").id
    with app.uow() as uow:
        paid = NewPayment(
            customer_id=customer_id,
            amount="50",
            method="cash",
            reference=f"ref-{name}",
            idempotency_key=f"key-{name}",
        )
        payment_id = record_payment(uow, spec=paid, now=now, actor="test").payment.id
    with app.uow() as uow:
        spec_s = NewService(customer_id=customer_id, plan_id=ids["plan"], active_from=now.date())
        service_id = add_service(uow, spec=spec_s, now=now, actor="test").id
    with app.uow() as uow:
        customer = uow.session.get(Customer, customer_id)
        assert customer is not None
        charge_and_invoice(uow, customer=customer, now=now, actor="test")
    with app.uow() as uow:
        number = uow.session.scalars(
            select(Invoice.number).where(Invoice.customer_id == customer_id)
        ).one()
    return Account(customer_id, payment_id, service_id, number)


@pytest.fixture
def world(database_url: str, clock: FixedClock) -> Iterator[World]:
    app = web_app(database_url, clock)
    try:
        ids = catalog(app, clock.now())
        north = _account(app, ids, "Nina North", "North")
        south = _account(app, ids, "Sven South", "South")
        own = _account(app, ids, "Olga Own", None)
        yield World(app, ids, north, south, own)
        check_books(app)
    finally:
        app.close()


def signed_in(world: World, username: str) -> Browser:
    browser = Browser(world.app)
    browser.sign_in_staff(username)
    return browser


def csv_rows(browser: Browser, url: str) -> list[dict[str, str]]:
    answer = browser.get(url)
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/csv")
    return list(csv.DictReader(io.StringIO(answer.text)))


def count(app: App, model: Any) -> int:
    with app.uow() as uow:
        return int(uow.session.scalar(select(func.count()).select_from(model)) or 0)


# -- payments -------------------------------------------------------------------------------------


def test_payments_list_every_customers_payment_with_filters_and_csv(world: World) -> None:
    app = world.app
    with app.uow() as uow:
        reverse_payment(
            uow, payment_id=world.own.payment_id, reason="bounced", now=app.clock.now(), actor="t"
        )
    browser = signed_in(world, "alice")
    page = browser.get("/console/payments")
    assert page.status_code == 200
    for account in (world.north, world.south, world.own):
        assert f'id="payment-{account.payment_id}"' in page.text
        assert f'href="/console/customers/{account.customer_id}"' in page.text
    assert "Nina North" in page.text
    assert "ref-Sven South" in page.text
    # newest first
    assert page.text.index(f'id="payment-{world.own.payment_id}"') < page.text.index(
        f'id="payment-{world.north.payment_id}"'
    )
    mine = browser.get(f"/console/payments?customer={world.south.customer_id}")
    assert f'id="payment-{world.south.payment_id}"' in mine.text
    assert f'id="payment-{world.north.payment_id}"' not in mine.text
    reversed_only = browser.get("/console/payments?reversed=yes")
    assert f'id="payment-{world.own.payment_id}"' in reversed_only.text
    assert f'id="payment-{world.north.payment_id}"' not in reversed_only.text
    counted = browser.get("/console/payments?reversed=no")
    assert f'id="payment-{world.own.payment_id}"' not in counted.text
    assert "payment-" not in browser.get("/console/payments?method=bank").text
    assert (
        f'id="payment-{world.north.payment_id}"'
        in browser.get("/console/payments?method=cash").text
    )
    today = app.clock.now().date()
    in_range = browser.get(f"/console/payments?from={today}&to={today}")
    assert f'id="payment-{world.north.payment_id}"' in in_range.text
    later = today + timedelta(days=1)
    assert "payment-" not in browser.get(f"/console/payments?from={later}").text
    assert "payment-" not in browser.get(f"/console/payments?to={today - timedelta(days=1)}").text
    rows = csv_rows(browser, "/console/payments?reversed=yes&format=csv")
    assert [(r["id"], r["customer_name"], r["amount"], r["reversed"]) for r in rows] == [
        (str(world.own.payment_id), "Olga Own", "50.00", "yes")
    ]
    everything = csv_rows(browser, "/console/payments?format=csv")
    assert len(everything) == 3
    assert [r["reference"] for r in everything] == [
        "ref-Olga Own",
        "ref-Sven South",
        "ref-Nina North",
    ]


def test_pages_go_by_keyset_and_keep_their_filters(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(console_lists, "PAGE_SIZE", 2)
    browser = signed_in(world, "rita")
    first = browser.get("/console/payments?method=cash")
    assert first.text.count('id="payment-') == 2
    assert f'id="payment-{world.north.payment_id}"' not in first.text
    assert f"/console/payments?method=cash&amp;before={world.south.payment_id}" in first.text
    second = browser.get(f"/console/payments?method=cash&before={world.south.payment_id}")
    assert second.text.count('id="payment-') == 1
    assert f'id="payment-{world.north.payment_id}"' in second.text
    assert 'id="next"' not in second.text
    # the CSV is every row, not one page
    assert len(csv_rows(browser, "/console/payments?format=csv")) == 3
    events = browser.get("/console/events")
    assert events.text.count('id="event-') == 2
    assert 'id="next"' in events.text


# -- invoices and credit notes --------------------------------------------------------------------


def test_invoices_and_credit_notes_with_filters_pdf_links_and_csv(world: World) -> None:
    app = world.app
    with app.uow() as uow:
        spec = NewPlan(name="Fiber 500", price="40", currency="EUR", download="500M", upload="50M")
        faster = add_plan(uow, spec=spec, now=app.clock.now(), actor="test").id
    with app.uow() as uow:
        changed = change_plan(
            uow,
            service_id=world.own.service_id,
            plan_id=faster,
            now=app.clock.now() + timedelta(days=10),
            actor="test",
        )
    with app.uow() as uow:
        note = uow.session.scalars(select(Invoice).where(Invoice.kind == "credit_note")).one()
        note_number, note_id = note.number, note.id
    assert changed.credit_note_number == note_number
    browser = signed_in(world, "alice")
    page = browser.get("/console/invoices")
    assert page.status_code == 200
    for account in (world.north, world.south, world.own):
        assert f'href="/console/invoices/{account.invoice}.pdf"' in page.text
    assert f'id="invoice-{note_id}"' in page.text
    notes = browser.get("/console/invoices?kind=credit_note")
    assert f'id="invoice-{note_id}"' in notes.text
    assert world.north.invoice not in notes.text
    assert note_number not in browser.get("/console/invoices?kind=invoice").text
    paid = browser.get("/console/invoices?status=paid")
    assert world.north.invoice in paid.text
    assert world.north.invoice not in browser.get("/console/invoices?status=issued").text
    one = browser.get(f"/console/invoices?customer={world.south.customer_id}")
    assert world.south.invoice in one.text
    assert world.north.invoice not in one.text
    today = app.clock.now().date()
    assert world.north.invoice in browser.get(f"/console/invoices?from={today}&to={today}").text
    assert "invoice-" not in browser.get(f"/console/invoices?to={today - timedelta(days=1)}").text
    pdf = browser.get(f"/console/invoices/{world.north.invoice}.pdf")
    assert pdf.status_code == 200
    assert pdf.content.startswith(b"%PDF")
    rows = csv_rows(browser, "/console/invoices?kind=credit_note&format=csv")
    assert [(r["number"], r["kind"], r["customer_name"]) for r in rows] == [
        (note_number, "credit_note", "Olga Own")
    ]
    invoice_row = next(
        r
        for r in csv_rows(browser, "/console/invoices?format=csv")
        if r["number"] == world.north.invoice
    )
    assert (invoice_row["total"], invoice_row["paid"], invoice_row["status"]) == (
        "20.00",
        "20.00",
        "paid",
    )


# -- the event log --------------------------------------------------------------------------------


def test_the_event_log_filters_by_kind_customer_subject_and_day(world: World) -> None:
    browser = signed_in(world, "rita")
    page = browser.get("/console/events")
    assert page.status_code == 200
    with world.app.uow() as uow:
        all_events = list(uow.session.scalars(select(Event).order_by(Event.id.desc())))
    operator_wide = next(e for e in all_events if e.customer_id is None)
    newest = all_events[0]
    assert page.text.index(f'id="event-{newest.id}"') < page.text.index(
        f'id="event-{all_events[1].id}"'
    )
    assert f'id="event-{operator_wide.id}"' in page.text  # a read-only user sees everything
    payments = browser.get("/console/events?kind=payment.received")
    recorded = [e for e in all_events if e.kind == "payment.received"]
    assert len(recorded) == 3
    assert payments.text.count('id="event-') == 3
    prefix = browser.get("/console/events?kind=service.")
    service_events = [e for e in all_events if e.kind.startswith("service.")]
    assert service_events
    assert prefix.text.count('id="event-') == len(service_events)
    one = browser.get(f"/console/events?customer={world.south.customer_id}")
    south_events = [e for e in all_events if e.customer_id == world.south.customer_id]
    assert one.text.count('id="event-') == len(south_events)
    assert f'href="/console/customers/{world.south.customer_id}"' in one.text
    subject = browser.get(
        f"/console/events?subject_type=service&subject_id={world.north.service_id}"
    )
    expected = [
        e
        for e in all_events
        if e.subject_type == "service" and e.subject_id == world.north.service_id
    ]
    assert expected
    assert subject.text.count('id="event-') == len(expected)
    today = world.app.clock.now().date()
    assert browser.get(f"/console/events?from={today}&to={today}").text.count('id="event-') == len(
        all_events
    )
    assert 'id="event-' not in browser.get(f"/console/events?from={today + timedelta(days=1)}").text
    rows = csv_rows(browser, "/console/events?kind=payment.received&format=csv")
    assert [r["id"] for r in rows] == [str(e.id) for e in recorded]
    assert {r["customer_name"] for r in rows} == {"Nina North", "Sven South", "Olga Own"}
    assert all(r["figures"].startswith("{") for r in rows)


# -- refusals -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "field"),
    [
        ("/console/events?from=yesterday", "from"),
        ("/console/events?kind=Service%20Suspended", "kind"),
        ("/console/events?subject_id=-3", "subject_id"),
        ("/console/payments?customer=abc", "customer"),
        ("/console/payments?method=Cash!", "method"),
        ("/console/payments?reversed=maybe", "reversed"),
        ("/console/payments?from=2026-02-01&to=2026-01-01", "to"),
        ("/console/invoices?status=lost", "status"),
        ("/console/invoices?kind=receipt", "kind"),
        ("/console/invoices?before=x", "before"),
    ],
)
def test_a_filter_the_list_cannot_take_is_refused_with_its_field_named(
    world: World, url: str, field: str
) -> None:
    browser = signed_in(world, "alice")
    before = (count(world.app, Event), count(world.app, Payment), count(world.app, Invoice))
    answer = browser.get(url)
    assert answer.status_code == 422
    assert f'id="error">{field}: ' in answer.text
    assert 'id="filters"' in answer.text  # shown next to the form, to correct
    assert "payment-" not in answer.text
    assert "invoice-" not in answer.text
    assert (count(world.app, Event), count(world.app, Payment), count(world.app, Invoice)) == before
    assert browser.get(f"{url}&format=csv").status_code == 422  # no half-filtered export


# -- roles ----------------------------------------------------------------------------------------


def test_a_resellers_user_sees_only_its_own_customers_rows_in_pages_and_csv(world: World) -> None:
    nora = signed_in(world, "nora")
    payments = nora.get("/console/payments")
    assert f'id="payment-{world.north.payment_id}"' in payments.text
    for other in (world.south, world.own):
        assert f'id="payment-{other.payment_id}"' not in payments.text
    assert [r["id"] for r in csv_rows(nora, "/console/payments?format=csv")] == [
        str(world.north.payment_id)
    ]
    invoices = nora.get("/console/invoices")
    assert world.north.invoice in invoices.text
    assert world.south.invoice not in invoices.text
    assert world.own.invoice not in invoices.text
    assert [r["number"] for r in csv_rows(nora, "/console/invoices?format=csv")] == [
        world.north.invoice
    ]
    with world.app.uow() as uow:
        north_events = list(
            uow.session.scalars(
                select(Event.id)
                .where(Event.customer_id == world.north.customer_id)
                .order_by(Event.id.desc())
            )
        )
        others = list(
            uow.session.scalars(
                select(Event.id).where(
                    (Event.customer_id != world.north.customer_id) | Event.customer_id.is_(None)
                )
            )
        )
    events = nora.get("/console/events")
    assert events.text.count('id="event-') == len(north_events)
    assert not any(f'id="event-{i}"' in events.text for i in others)
    assert [r["id"] for r in csv_rows(nora, "/console/events?format=csv")] == [
        str(i) for i in north_events
    ]
    assert "Sven South" not in events.text
    assert "Olga Own" not in events.text
    # another reseller's customer, or the operator's own, is a 404 as a filter too
    for path in ("/console/payments", "/console/invoices", "/console/events"):
        for other in (world.south, world.own):
            assert nora.get(f"{path}?customer={other.customer_id}").status_code == 404
            assert nora.get(f"{path}?customer={other.customer_id}&format=csv").status_code == 404
        assert nora.get(f"{path}?customer={world.north.customer_id}").status_code == 200
    sam = signed_in(world, "sam")
    assert [r["id"] for r in csv_rows(sam, "/console/payments?format=csv")] == [
        str(world.south.payment_id)
    ]


# Every console page a reseller's user may open: (the URLs of its own, the URLs of other
# customers' objects that must be a 404); a path absent here is operator-wide and must be a 403,
# as the API's ``Operator``/``Admin`` routes (tests/integration/test_api_authz.py).
OPERATOR_WIDE = frozenset(
    {
        "/console/nas",
        "/console/outbox",
        "/console/schedule",
        "/console/settings",
        "/console/tokens",
        "/console/bank",
        "/console/cards/list",
        "/console/cards/liability.csv",
    }
)
OPERATOR_WIDE_EXPORTS = frozenset({"/console/cards?format=csv"})  # the page is the redeem form
LISTS_OF_A_CUSTOMER = ("services", "ledger", "invoices", "payments", "events")


def _console_get_paths() -> set[str]:
    return {
        route.path
        for module in console.MODULES
        for route in module.router.routes
        if isinstance(route, APIRoute) and "GET" in route.methods
    }


def _scoped_urls(world: World, path: str) -> tuple[list[str], list[str]]:
    """The URLs to open for ``path``: those of north's own objects and those of south's and the
    operator's own customers (which a reseller's user must not tell from absent ones)."""
    own, others = world.north, (world.south, world.own)
    if "{customer_id}/{what}" in path:
        mine = [f"/console/customers/{own.customer_id}/{w}.csv" for w in LISTS_OF_A_CUSTOMER]
        theirs = [
            f"/console/customers/{o.customer_id}/{w}.csv" for o in others for w in ("ledger",)
        ]
        return mine, theirs
    if "{customer_id}" in path:
        return (
            [path.replace("{customer_id}", str(own.customer_id))],
            [path.replace("{customer_id}", str(o.customer_id)) for o in others],
        )
    if "{service_id}" in path:
        return (
            [path.replace("{service_id}", str(own.service_id))],
            [path.replace("{service_id}", str(o.service_id)) for o in others],
        )
    if "{number}" in path:
        return (
            [path.replace("{number}", own.invoice)],
            [path.replace("{number}", o.invoice) for o in others],
        )
    for key in ("payment_id", "service_id"):  # the confirmations of destructive actions
        if f"{{{key}}}" in path:
            return (
                [path.replace(f"{{{key}}}", str(getattr(own, key)))],
                [path.replace(f"{{{key}}}", str(getattr(o, key))) for o in others],
            )
    if "{plan_id}" in path:  # plans are the operator's catalogue, readable by all
        return [path.replace("{plan_id}", str(world.ids["plan"]))], []
    assert "{" not in path, f"{path}: give the walk below a value for its parameter"
    return [path, f"{path}?format=csv"], []


def test_a_resellers_user_opens_every_console_page_scoped_or_is_refused(world: World) -> None:
    """Walks every GET route of the console as a reseller's user: an operator-wide page (NAS,
    settings, tokens, bank lines, card lists) is a 403 as in the API, every other page answers
    with north's own rows only and another customer's object is a 404."""
    paths = _console_get_paths()
    assert paths >= OPERATOR_WIDE
    nora = signed_in(world, "nora")
    hidden = ["Sven South", "Olga Own", world.south.invoice, world.own.invoice]
    wrong: list[str] = []
    for path in sorted(paths - {"/console/login"}):
        if path in OPERATOR_WIDE:
            for url in (path, f"{path}?format=csv"):
                status = nora.get(url).status_code
                if status != 403:
                    wrong.append(f"{url}: {status} (expected 403: operator-wide)")
            continue
        if path.endswith("/edit") and not ("{customer_id}" in path or "{service_id}" in path):
            # the catalogue's edit forms (issue 17) are the admin's, as their lists' forms
            url = re.sub(r"\{[a-z_]+\}", "1", path)
            status = nora.get(url).status_code
            if status != 403:
                wrong.append(f"{url}: {status} (expected 403: admin only)")
            continue
        mine, theirs = _scoped_urls(world, path)
        for url in mine:
            answer = nora.get(url)
            if url in OPERATOR_WIDE_EXPORTS:
                if answer.status_code != 403:
                    wrong.append(f"{url}: {answer.status_code} (expected 403: operator-wide)")
                continue
            if answer.status_code != 200:
                wrong.append(f"{url}: {answer.status_code} (expected 200)")
            shown = [name for name in hidden if name in answer.text]
            if shown:
                wrong.append(f"{url}: shows {shown}")
        for url in theirs:
            status = nora.get(url).status_code
            if status != 404:
                wrong.append(f"{url}: {status} (expected 404: not north's)")
    assert not wrong, "\n".join(wrong)
    navigation = nora.get("/console").text
    assert 'href="/console/nas"' not in navigation
    assert 'href="/console/outbox"' not in navigation
    assert 'href="/console/settings"' not in navigation
    rita = signed_in(world, "rita")  # read-only: operator-wide pages are readable
    for path in ("/console/nas", "/console/settings"):
        assert rita.get(path).status_code == 200
        assert f'href="{path}"' in rita.get("/console").text


def test_read_only_users_read_every_list_and_nobody_signed_out_does(world: World) -> None:
    rita = signed_in(world, "rita")
    for path in ("/console/payments", "/console/invoices", "/console/events"):
        page = rita.get(path)
        assert page.status_code == 200
        assert f'href="{path}"' in page.text  # the nav link
        for account in (world.north, world.south, world.own):
            assert f'href="/console/customers/{account.customer_id}"' in page.text
    assert len(csv_rows(rita, "/console/payments?format=csv")) == 3
    assert len(csv_rows(rita, "/console/invoices?format=csv")) == 3
    # these pages only read: there is nothing to post
    assert rita.post("/console/payments", {}).status_code == 405
    stranger = Browser(world.app)
    answer = stranger.get("/console/events")
    assert answer.status_code == 303
    assert answer.headers["location"].endswith("/console/login")
    assert stranger.get("/console/payments?format=csv").status_code == 303


def test_a_day_range_takes_whole_utc_days(world: World, clock: FixedClock) -> None:
    """``to`` is included: a payment late on that day is in, one just after midnight is not."""
    app = world.app
    day = clock.now().date()
    late = clock.now().replace(hour=23, minute=59)
    clock.advance(timedelta(days=1))
    received = {}
    for key, at in (("late", late), ("next-day", late + timedelta(minutes=2))):
        with app.uow() as uow:
            spec = NewPayment(
                customer_id=world.north.customer_id,
                amount="1",
                method="cash",
                idempotency_key=key,
                received_at=at,
            )
            received[key] = record_payment(uow, spec=spec, now=clock.now(), actor="t").payment.id
    browser = signed_in(world, "alice")
    page = browser.get(f"/console/payments?from={day}&to={day}")
    assert f'id="payment-{received["late"]}"' in page.text
    assert f'id="payment-{received["next-day"]}"' not in page.text
    following = browser.get(f"/console/payments?from={day + timedelta(days=1)}")
    assert f'id="payment-{received["next-day"]}"' in following.text
    assert f'id="payment-{received["late"]}"' not in following.text

"""The operator console over HTTP on both databases: sign-in, throttling, TOTP, sessions, CSRF,
roles (a reseller's user never sees another reseller's customers), the forms and the lists."""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterator
from datetime import date, timedelta

import pyotp
import pytest
from sqlalchemy import select, text
from web_support import Browser, console_world, customer, offered, text_of

from ispbill.adapters.db.models import ApiToken, Customer, Reseller, StaffUser, TaxProfileRow
from ispbill.bootstrap import App
from ispbill.clock import FixedClock
from ispbill.use_cases.admin.api_tokens import hash_token
from ispbill.use_cases.admin.web_auth import enable_totp, set_staff_enabled
from ispbill.use_cases.catalog.name_lookups import plan_id_of
from ispbill.use_cases.collections.suspensions import current_manual
from ispbill.use_cases.service_lifecycle.new_services import NewService, add_service


@pytest.fixture
def web(database_url: str, clock: FixedClock) -> Iterator[tuple[App, dict[str, int]]]:
    with console_world(database_url, clock) as world:
        yield world


def test_pages_need_a_signed_in_staff_user(web: tuple[App, dict[str, int]]) -> None:
    app, _ = web
    browser = Browser(app)
    for page in ("/console", "/console/customers", "/console/customers/1", "/console/plans"):
        answer = browser.get(page)
        assert answer.status_code == 303
        assert answer.headers["location"] == "/console/login"


def test_sign_in_sets_strict_cookies_and_a_wrong_password_is_refused(
    web: tuple[App, dict[str, int]],
) -> None:
    app, _ = web
    browser = Browser(app)
    browser.get("/console/login")
    wrong = browser.post("/console/login", {"username": "alice", "password": "nope nope nope"})
    assert wrong.status_code == 401
    assert "wrong name, password or code" in wrong.text
    answer = browser.post(
        "/console/login", {"username": "alice", "password": "correct horse battery"}
    )
    assert answer.status_code == 303
    cookies = answer.headers.get_list("set-cookie")
    session = next(c for c in cookies if c.startswith("ispbill_console="))
    for flag in ("Secure", "HttpOnly", "SameSite=lax"):
        assert flag in session
    page = browser.follow(answer)
    assert page.status_code == 200
    assert "Dashboard" in page.text
    assert page.headers["x-frame-options"] == "DENY"


def test_failed_sign_ins_are_throttled(web: tuple[App, dict[str, int]]) -> None:
    app, _ = web
    browser = Browser(app)
    browser.get("/console/login")
    for _ in range(5):
        browser.post("/console/login", {"username": "alice", "password": "wrong password!"})
    blocked = browser.post(
        "/console/login", {"username": "alice", "password": "correct horse battery"}
    )
    assert blocked.status_code == 401
    assert "too many failed sign-ins" in blocked.text
    app.clock.advance(timedelta(minutes=16))  # type: ignore[attr-defined]
    assert browser.sign_in_staff("alice").status_code == 200


def test_totp_is_required_once_enabled(web: tuple[App, dict[str, int]]) -> None:
    app, _ = web
    with app.uow() as uow:
        uri = enable_totp(uow, username="alice", now=app.clock.now(), actor="test")
    secret = pyotp.parse_uri(uri).secret
    browser = Browser(app)
    assert browser.sign_in_staff("alice").status_code == 401
    assert browser.sign_in_staff("alice", code="000000").status_code == 401
    code = pyotp.TOTP(secret).at(app.clock.now())
    page = browser.sign_in_staff("alice", code=code)
    assert page.status_code == 200
    assert "Dashboard" in page.text


def test_a_totp_code_signs_in_once(web: tuple[App, dict[str, int]]) -> None:
    """A code seen over a shoulder (or replayed from a log) is no good once it was used: only a
    code of a later time step than the last one that signed in is accepted."""
    app, _ = web
    with app.uow() as uow:
        uri = enable_totp(uow, username="alice", now=app.clock.now(), actor="test")
    totp = pyotp.TOTP(pyotp.parse_uri(uri).secret)
    start = app.clock.now()
    step = timedelta(seconds=totp.interval)
    code = totp.at(start)
    assert Browser(app).sign_in_staff("alice", code=code).status_code == 200
    assert Browser(app).sign_in_staff("alice", code=code).status_code == 401  # the same code
    previous = totp.at(start - step)  # inside the drift window, but older than the one used
    assert Browser(app).sign_in_staff("alice", code=previous).status_code == 401
    following = totp.at(start + step)  # an authenticator running ahead: a later step, once
    assert Browser(app).sign_in_staff("alice", code=following).status_code == 200
    assert Browser(app).sign_in_staff("alice", code=following).status_code == 401
    app.clock.advance(step)  # type: ignore[attr-defined]
    assert Browser(app).sign_in_staff("alice", code=following).status_code == 401
    app.clock.advance(step)  # type: ignore[attr-defined]
    later = totp.at(app.clock.now())
    assert Browser(app).sign_in_staff("alice", code=later).status_code == 200
    with app.uow() as uow:
        row = uow.session.scalars(select(StaffUser).where(StaffUser.username == "alice")).one()
        assert row.totp_last_step == totp.timecode(app.clock.now())


def test_sessions_expire_when_idle_and_end_on_sign_out(web: tuple[App, dict[str, int]]) -> None:
    app, _ = web
    browser = Browser(app)
    browser.sign_in_staff("alice")
    app.clock.advance(timedelta(minutes=20))  # type: ignore[attr-defined]
    assert browser.get("/console").status_code == 200  # in use: the expiry slides
    app.clock.advance(timedelta(minutes=31))  # type: ignore[attr-defined]
    assert browser.get("/console").status_code == 303
    browser.sign_in_staff("alice")
    browser.submit("/console/logout")
    assert browser.get("/console").status_code == 303


def test_a_disabled_user_is_signed_out(web: tuple[App, dict[str, int]]) -> None:
    app, _ = web
    browser = Browser(app)
    browser.sign_in_staff("alice")
    with app.uow() as uow:
        set_staff_enabled(uow, username="alice", enabled=False, now=app.clock.now(), actor="t")
    assert browser.get("/console").status_code == 303


def test_every_form_needs_its_csrf_token(web: tuple[App, dict[str, int]]) -> None:
    app, _ids = web
    browser = Browser(app)
    browser.sign_in_staff("alice")
    answer = browser.request(
        "POST", "/console/customers", data={"name": "Mallory", "customer_class": "Home"}
    )
    assert answer.status_code == 403
    forged = browser.request(
        "POST",
        "/console/customers",
        data={"csrf_token": "forged", "name": "Mallory", "customer_class": "Home"},
    )
    assert forged.status_code == 403
    assert "Mallory" not in browser.get("/console/customers").text


def test_operator_creates_a_customer_a_service_and_records_a_payment(
    web: tuple[App, dict[str, int]],
) -> None:
    app, ids = web
    browser = Browser(app)
    browser.sign_in_staff("alice")
    browser.get("/console/customers/new")
    page = browser.submit(
        "/console/customers",
        {
            "name": "Jana Nováková",
            "customer_class": str(ids["class"]),
            "currency": "EUR",
            "balance_control": "prepaid",
            "billing_cycle": "monthly",
            "billing_timezone": "Europe/Prague",
            "locale": "cs_CZ",
        },
    )
    assert page.status_code == 200
    customer_id = int(str(page.url).rsplit("/", 1)[1])
    page = browser.submit(
        f"/console/customers/{customer_id}/payments",
        {"amount": "50", "method": "cash", "idempotency_key": "web-test-1"},
    )
    assert text_of(page.text, "balance") == "€50.00"
    page = browser.submit(f"/console/customers/{customer_id}/services", {"plan": str(ids["plan"])})
    assert "Fiber 100" in page.text
    page = browser.submit(f"/console/customers/{customer_id}/charge")
    # the first period, prorated from 1 January 2026 09:00 UTC (10:00 in Prague): 20 EUR whole
    assert text_of(page.text, "balance") == "€30.00"
    assert "active" in page.text
    again = browser.submit(
        f"/console/customers/{customer_id}/payments",
        {"amount": "50", "method": "cash", "idempotency_key": "web-test-1"},
    )
    assert again.text.count("cash") == page.text.count("cash")  # one payment, not two


def test_every_choice_the_new_customer_form_offers_is_accepted(
    web: tuple[App, dict[str, int]],
) -> None:
    """The billing cycles and balance controls offered are the domain's words (the form once
    offered a ``thirty_days`` cycle the domain calls ``days_30``): each creates a customer."""
    app, _ = web
    browser = Browser(app)
    browser.sign_in_staff("alice")
    page = browser.get("/console/customers/new").text
    cycles, controls = offered(page, "billing_cycle"), offered(page, "balance_control")
    assert {"monthly", "days_30"} <= set(cycles)
    assert set(controls) == {"prepaid", "postpaid"}
    choices = [(cycle, controls[0]) for cycle in cycles] + [(cycles[0], c) for c in controls[1:]]
    for number, (cycle, control) in enumerate(choices, start=1):
        form = {
            "name": f"Choice {number}",
            "customer_class": "Home",
            "currency": "EUR",
            "billing_cycle": cycle,
            "balance_control": control,
        }
        created = browser.post("/console/customers", form)
        assert created.status_code == 303, (cycle, control, created.text[-400:])
    with app.uow() as uow:
        stored = uow.session.scalars(select(Customer).where(Customer.name.like("Choice %")))
        assert {(c.cycle_kind, c.balance_control) for c in stored} == set(choices)


def test_a_refusal_is_shown_with_nothing_written(web: tuple[App, dict[str, int]]) -> None:
    app, _ids = web
    customer_id = customer(app, "Petr")
    browser = Browser(app)
    browser.sign_in_staff("alice")
    browser.get(f"/console/customers/{customer_id}")
    answer = browser.post(
        f"/console/customers/{customer_id}/payments",
        {"amount": "-5", "method": "cash", "idempotency_key": "k-1"},
    )
    assert answer.status_code == 422
    assert "amount" in answer.text
    assert text_of(answer.text, "balance") == "€0.00"


def test_a_reseller_never_sees_another_resellers_customers(
    web: tuple[App, dict[str, int]],
) -> None:
    app, _ = web
    north = customer(app, "North Home", reseller="North")
    south = customer(app, "South Home", reseller="South")
    nora = Browser(app)
    nora.sign_in_staff("nora")
    listing = nora.get("/console/customers").text
    assert "North Home" in listing
    assert "South Home" not in listing
    assert "South Home" not in nora.get("/console/customers?q=Home").text
    assert "South Home" not in nora.get("/console/customers?format=csv").text
    assert nora.get(f"/console/customers/{north}").status_code == 200
    for url in (
        f"/console/customers/{south}",
        f"/console/customers/{south}/preview",
        f"/console/customers/{south}/payments.csv",
    ):
        assert nora.get(url).status_code == 404
    refused = nora.post(
        f"/console/customers/{south}/payments",
        {"amount": "5", "method": "cash", "idempotency_key": "x"},
    )
    assert refused.status_code == 404
    # a reseller's new customer is its own, whatever the form says
    nora.get("/console/customers/new")
    page = nora.submit(
        "/console/customers", {"name": "Nora's new", "customer_class": "Home", "currency": "EUR"}
    )
    assert page.status_code == 200
    sam = Browser(app)
    sam.sign_in_staff("sam")
    assert "Nora" not in sam.get("/console/customers").text


def test_read_only_users_read_but_never_write(web: tuple[App, dict[str, int]]) -> None:
    app, _ = web
    customer_id = customer(app, "Readable")
    browser = Browser(app)
    browser.sign_in_staff("rita")
    page = browser.get(f"/console/customers/{customer_id}")
    assert page.status_code == 200
    assert "Record a payment" not in page.text
    answer = browser.post(
        f"/console/customers/{customer_id}/payments",
        {"amount": "5", "method": "cash", "idempotency_key": "ro"},
    )
    assert answer.status_code == 403


def test_search_pages_by_keyset_and_exports_csv(web: tuple[App, dict[str, int]]) -> None:
    app, _ = web
    for index in range(60):
        customer(app, f"Client {index:03d}")
    customer(app, "=HYPERLINK(1)")
    browser = Browser(app)
    browser.sign_in_staff("alice")
    first = browser.get("/console/customers?q=client").text
    assert "Client 000" in first
    assert "Client 049" in first
    assert "Client 050" not in first
    assert "after=50" in first
    second = browser.get("/console/customers?q=client&after=50").text
    assert "Client 050" in second
    assert "Client 059" in second
    assert "Client 000" not in second
    assert "Client 007" in browser.get("/console/customers?q=7").text  # the id
    fragment = browser.get(
        "/console/customers?q=059", headers={"HX-Request": "true", "HX-Target": "results"}
    )
    assert fragment.text.lstrip().startswith('<div id="results">')
    exported = list(csv.reader(io.StringIO(browser.get("/console/customers?format=csv").text)))
    assert exported[0][:3] == ["id", "name", "status"]
    assert len(exported) == 62
    assert [row[1] for row in exported if "HYPERLINK" in row[1]] == ["'=HYPERLINK(1)"]


def test_names_are_escaped(web: tuple[App, dict[str, int]]) -> None:
    app, _ = web
    customer_id = customer(app, "<script>alert(1)</script>")
    browser = Browser(app)
    browser.sign_in_staff("alice")
    for url in ("/console/customers", f"/console/customers/{customer_id}"):
        page = browser.get(url).text
        assert "<script>alert(1)" not in page
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page


def test_dashboard_preview_catalogue_and_lists(web: tuple[App, dict[str, int]]) -> None:
    app, ids = web
    customer_id = customer(app, "Dana", available_funds="5")
    browser = Browser(app)
    browser.sign_in_staff("alice")
    browser.get(f"/console/customers/{customer_id}")
    browser.submit(f"/console/customers/{customer_id}/services", {"plan": str(ids["plan"])})
    board = browser.get("/console")
    assert board.status_code == 200
    assert "<svg" in board.text
    assert "Dana" in board.text  # at risk: 5 EUR does not cover the next renewal
    preview = browser.get(f"/console/customers/{customer_id}/preview?until=2026-03-01")
    assert preview.status_code == 200
    assert "insufficient_funds" in preview.text  # 5 EUR cannot start a 20 EUR period
    for what in ("services", "ledger", "invoices", "payments", "events"):
        answer = browser.get(f"/console/customers/{customer_id}/{what}.csv")
        assert answer.status_code == 200
        assert answer.headers["content-type"].startswith("text/csv")
    browser.get("/console/plans")
    page = browser.submit(
        "/console/plans",
        {"name": "Air 20", "price": "10", "currency": "EUR", "download": "20M", "upload": "5M"},
    )
    assert "Air 20" in page.text
    assert "Air 20" in browser.get("/console/plans?format=csv").text
    page = browser.submit("/console/classes", {"name": "Business", "grace_days": "5"})
    assert "Business" in page.text
    cards = browser.post("/console/cards", {"count": "3", "value": "10", "currency": "EUR"})
    assert cards.headers["content-type"].startswith("text/csv")
    assert len(cards.text.strip().splitlines()) == 4
    assert "RC" in browser.get("/console/cards").text


def test_pages_render_in_czech(web: tuple[App, dict[str, int]]) -> None:
    app, _ = web
    customer(app, "Karel", available_funds="1234.5")
    browser = Browser(app)
    browser.sign_in_staff("alice")
    browser.submit("/console/language", {"lang": "cs", "next": "/console/customers"})
    page = browser.get("/console/customers").text
    assert "Zákazníci" in page
    assert "Hledat" in page
    assert "1\u00a0234,50\u00a0€" in page


def test_suspend_with_a_reason_then_lift(web: tuple[App, dict[str, int]]) -> None:
    app, ids = web
    customer_id = customer(app, "Vera", available_funds="100")
    browser = Browser(app)
    browser.sign_in_staff("alice")
    browser.get(f"/console/customers/{customer_id}")
    page = browser.submit(f"/console/customers/{customer_id}/services", {"plan": str(ids["plan"])})
    page = browser.submit(f"/console/customers/{customer_id}/charge")
    service_id = int(re.search(r'id="service-(\d+)"', page.text).group(1))  # type: ignore[union-attr]
    assert "active" in text_of_row(page.text, service_id)
    page = browser.confirm(
        f"/console/services/{service_id}/suspend", {"reason": "unregistered", "note": "no contract"}
    )
    row = text_of_row(page.text, service_id)
    assert "suspended" in row
    assert "unregistered" in row
    page = browser.submit(f"/console/services/{service_id}/lift")
    assert "state-active" in text_of_row(page.text, service_id)
    events = browser.get(f"/console/customers/{customer_id}/events.csv").text
    assert "staff:alice#1" in events


def test_lift_a_yearly_window_keeps_next_year_unless_ticked(
    web: tuple[App, dict[str, int]], clock: FixedClock
) -> None:
    app, ids = web
    customer_id = customer(app, "Yuri", available_funds="100")
    browser = Browser(app)
    browser.sign_in_staff("alice")
    browser.get(f"/console/customers/{customer_id}")
    page = browser.submit(f"/console/customers/{customer_id}/services", {"plan": str(ids["plan"])})
    page = browser.submit(f"/console/customers/{customer_id}/charge")
    service_id = int(re.search(r'id="service-(\d+)"', page.text).group(1))  # type: ignore[union-attr]
    today = clock.now().date()
    ends = (today + timedelta(days=30)).isoformat()
    window = {"reason": "profile_1", "repeat_yearly": "1", "ends_on": ends}
    page = browser.confirm(f"/console/services/{service_id}/suspend", window)
    assert "End the yearly repetition too" in text_of_row(page.text, service_id)
    page = browser.submit(f"/console/services/{service_id}/lift")
    assert "state-active" in text_of_row(page.text, service_id)
    assert next_window(app, service_id) == today.replace(year=today.year + 1)
    browser.submit(f"/console/services/{service_id}/lift", {"end_repetition": "1"})
    assert next_window(app, service_id) is None


def next_window(app: App, service_id: int) -> date | None:
    with app.uow() as uow:
        row = current_manual(uow, service_id)
        return row.starts_on if row else None


def text_of_row(html: str, service_id: int) -> str:
    found = re.search(rf'<tr id="service-{service_id}">(.*?)</tr>', html, re.S)
    assert found
    return found.group(1)


def test_collection_policy_and_info_pages(web: tuple[App, dict[str, int]]) -> None:
    app, _ = web
    browser = Browser(app)
    browser.sign_in_staff("alice")
    page = browser.get("/console/collections")
    assert "days_after_due" in page.text
    page = browser.submit(
        "/console/collections/policy", {"enabled": "true", "days_after_due": "10"}
    )
    assert page.status_code == 200
    assert 'value="10"' in page.text
    bad = browser.post("/console/collections/policy", {"days_after_due": "-3"})
    assert bad.status_code == 422
    page = browser.submit(
        "/console/collections/pages/non_payer",
        {"title": "Please pay", "body": "**Pay** now <script>alert(1)</script>"},
    )
    assert "<strong>Pay</strong>" in page.text
    assert "<script>alert(1)" not in page.text
    reader = Browser(app)
    reader.sign_in_staff("rita")
    reader.get("/console/collections")
    assert reader.post("/console/collections/policy", {"enabled": "false"}).status_code == 403


def test_operator_settings_and_the_tick(web: tuple[App, dict[str, int]]) -> None:
    app, _ = web
    browser = Browser(app)
    browser.sign_in_staff("alice")
    page = browser.get("/console/settings")
    assert "self_service_reactivation" in page.text
    page = browser.submit("/console/settings", {"self_service_reactivation": "true"})
    assert 'name="self_service_reactivation" value="true"' in page.text
    bad = browser.post("/console/settings", {"refund_on_pause": "true", "payment_terms_days": "-1"})
    assert bad.status_code == 422
    assert 'name="refund_on_pause" value="false"' in bad.text  # nothing written
    ran = browser.submit("/console/tick")
    assert 'id="tick-report"' in ran.text
    assert 'id="tick-skipped"' not in ran.text
    # a customer whose data is bad (written past validation) is named, the others billed
    bad, good = (
        customer(app, "Bad", available_funds="50"),
        customer(app, "Good", available_funds="50"),
    )
    for one in (bad, good):
        with app.uow() as uow:
            spec = NewService(customer_id=one, plan_id=plan_id_of(uow, "Fiber 100"))
            add_service(uow, spec=spec, now=app.clock.now(), actor="test")
    with app.engine.begin() as connection:
        connection.execute(
            text("UPDATE services SET active_to = '9999-12-31' WHERE customer_id = :c"), {"c": bad}
        )
    ran = browser.submit("/console/tick")
    assert "Tick done: 1 customers, 1 charges" in ran.text
    skipped = re.search(r'id="tick-skipped".*?</div>', ran.text, re.S)
    assert skipped, ran.text
    assert f'href="/console/customers/{bad}"' in skipped.group(0)
    assert "OverflowError: date value out of range" in skipped.group(0)
    assert f"/console/customers/{good}" not in skipped.group(0)
    reader = Browser(app)
    reader.sign_in_staff("rita")
    reader.get("/console/settings")
    assert reader.post("/console/tick").status_code == 403


def test_nas_list_and_form(web: tuple[App, dict[str, int]]) -> None:
    app, _ = web
    browser = Browser(app)
    browser.sign_in_staff("alice")
    browser.get("/console/nas")
    page = browser.submit(
        "/console/nas",
        {
            "name": "core-1",
            "address": "192.0.2.10",
            "secret": "a-long-shared-secret-123",
            "vendor": "mikrotik",
            "coa_port": "3799",
            "require_message_authenticator": "1",
        },
    )
    assert "core-1" in page.text
    assert "a-long-shared-secret-123" not in page.text
    bad = browser.post("/console/nas", {"name": "x", "address": "not an ip", "secret": "s" * 20})
    assert bad.status_code == 422
    assert "192.0.2.10" in browser.get("/console/nas?format=csv").text


def test_tax_profiles_list_and_form(web: tuple[App, dict[str, int]]) -> None:
    app, _ = web
    browser = Browser(app)
    browser.sign_in_staff("alice")
    browser.get("/console/taxes")
    page = browser.submit("/console/taxes", {"name": "VAT 21", "rate": "21", "inclusive": "1"})
    assert "VAT 21" in page.text
    with app.uow() as uow:
        row = uow.session.scalars(select(TaxProfileRow)).one()
        assert (row.rate_bp, row.inclusive) == (2100, True)
    bad = browser.post("/console/taxes", {"name": "Odd", "rate": "150"})
    assert bad.status_code == 422
    assert "rate:" in bad.text
    assert "VAT 21,2100,True" in browser.get("/console/taxes?format=csv").text
    reader = Browser(app)
    reader.sign_in_staff("rita")
    reader.get("/console/taxes")
    assert reader.post("/console/taxes", {"name": "X", "rate": "5"}).status_code == 403
    with app.uow() as uow:
        assert len(list(uow.session.scalars(select(TaxProfileRow)))) == 1


def test_resellers_list_and_form(web: tuple[App, dict[str, int]]) -> None:
    app, _ = web
    browser = Browser(app)
    browser.sign_in_staff("alice")
    browser.get("/console/resellers")
    page = browser.submit("/console/resellers", {"name": "East"})
    assert "East" in page.text
    dup = browser.post("/console/resellers", {"name": "North"})
    assert dup.status_code == 422
    assert "name:" in dup.text
    assert "East" in browser.get("/console/resellers?format=csv").text
    reader = Browser(app)
    reader.sign_in_staff("rita")
    reader.get("/console/resellers")
    assert reader.post("/console/resellers", {"name": "West"}).status_code == 403
    nora = Browser(app)
    nora.sign_in_staff("nora")
    own = nora.get("/console/resellers?format=csv").text
    assert "North" in own
    assert "South" not in own
    with app.uow() as uow:
        names = {r.name for r in uow.session.scalars(select(Reseller))}
    assert names == {"North", "South", "East"}


def test_api_tokens_created_shown_once_and_revoked(web: tuple[App, dict[str, int]]) -> None:
    app, _ = web
    browser = Browser(app)
    browser.sign_in_staff("alice")
    browser.get("/console/tokens")
    page = browser.post(
        "/console/tokens", {"name": "billing-bot", "role": "reseller", "reseller": "North"}
    )
    assert page.status_code == 200
    secret = text_of(page.text, "token-secret")
    with app.uow() as uow:
        row = uow.session.scalars(select(ApiToken)).one()
        assert row.token_hash == hash_token(secret)
        assert row.reseller_id is not None
        token_id = row.id
    listed = browser.get("/console/tokens")
    assert "billing-bot" in listed.text
    assert secret not in listed.text
    bad = browser.post("/console/tokens", {"name": "x", "role": "root"})
    assert bad.status_code == 422
    assert "role:" in bad.text
    browser.get("/console/tokens")
    browser.submit(f"/console/tokens/{token_id}/revoke")
    with app.uow() as uow:
        assert uow.session.get(ApiToken, token_id).revoked_at is not None  # type: ignore[union-attr]
        assert len(list(uow.session.scalars(select(ApiToken)))) == 1
    assert "billing-bot" in browser.get("/console/tokens?format=csv").text
    reader = Browser(app)
    reader.sign_in_staff("rita")
    assert reader.get("/console/tokens").status_code == 403
    reader.get("/console")
    assert reader.post("/console/tokens", {"name": "y", "role": "admin"}).status_code == 403

"""Console pages over HTTP on both databases for payment corrections (reverse, refund), bank
statements (upload, lines, assign) and a service's network login: success, a refusal with
nothing written, read-only users refused, and a reseller's user kept to its own customers."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select
from web_support import Browser, console_world, customer, offered, text_of

from ispbill.adapters.db.models import (
    BankStatementLine,
    Event,
    LedgerTransaction,
    NetworkIdentity,
    Payment,
    Service,
    TopUpRule,
)
from ispbill.bootstrap import App
from ispbill.clock import FixedClock
from ispbill.domain.payments import BUILTIN_METHODS
from ispbill.use_cases.network.identities import NewNas, add_nas
from ispbill.use_cases.payments.recording import NewPayment, record_payment
from ispbill.use_cases.service_lifecycle.new_services import NewService, add_service

CAMT = Path(__file__).resolve().parents[1] / "fixtures" / "bank" / "statement.camt053.xml"


@pytest.fixture
def web(database_url: str, clock: FixedClock) -> Iterator[tuple[App, dict[str, int]]]:
    with console_world(database_url, clock) as world:
        yield world


def paid(app: App, customer_id: int, amount: str, key: str) -> int:
    with app.uow() as uow:
        spec = NewPayment(
            customer_id=customer_id, amount=amount, method="cash", idempotency_key=key
        )
        return record_payment(uow, spec=spec, now=app.clock.now(), actor="test").payment.id


def balance(browser: Browser, customer_id: int) -> str:
    return text_of(browser.get(f"/console/customers/{customer_id}").text, "balance")


def count(app: App, model: Any) -> int:
    with app.uow() as uow:
        return int(uow.session.scalar(select(func.count()).select_from(model)) or 0)


# -- reversal and refund --------------------------------------------------------------------------


def test_an_operator_reverses_a_payment_with_a_reason(web: tuple[App, dict[str, int]]) -> None:
    app, _ = web
    customer_id = customer(app, "Petr")
    payment_id = paid(app, customer_id, "30", "p-1")
    browser = Browser(app)
    browser.sign_in_staff("alice")
    page = browser.get(f"/console/customers/{customer_id}")
    assert f"/console/payments/{payment_id}/reverse" in page.text
    refused = browser.confirm(f"/console/payments/{payment_id}/reverse", {"reason": "  "})
    assert refused.status_code == 422
    assert "reason: required" in refused.text
    assert text_of(refused.text, "balance") == "€30.00"
    done = browser.confirm(f"/console/payments/{payment_id}/reverse", {"reason": "bounced"})
    assert done.status_code == 200
    assert text_of(done.text, "balance") == "€0.00"
    with app.uow() as uow:
        row = uow.session.get(Payment, payment_id)
        assert row is not None
        assert row.reversed_by_id is not None
        event = uow.session.scalars(select(Event).where(Event.kind == "payment.reversed")).one()
        assert event.actor.startswith("staff:alice#")
        assert event.reason == "bounced"
    # reversed once: the form is gone and the CSV says which transaction reversed it
    assert f"/console/payments/{payment_id}/reverse" not in done.text
    rows = list(
        csv.DictReader(
            io.StringIO(browser.get(f"/console/customers/{customer_id}/payments.csv").text)
        )
    )
    assert rows[0]["reversed_by_transaction"] == str(row.reversed_by_id)


def test_a_refund_pays_back_credit_and_never_more(web: tuple[App, dict[str, int]]) -> None:
    app, _ = web
    customer_id = customer(app, "Eva")
    payment_id = paid(app, customer_id, "50", "e-1")
    browser = Browser(app)
    browser.sign_in_staff("alice")
    page = browser.get(f"/console/customers/{customer_id}")
    assert "Refundable now: €50.00" in page.text
    before = count(app, LedgerTransaction)
    too_much = browser.post(
        f"/console/customers/{customer_id}/refunds",
        {"amount": "60", "method": "cash", "reference": "R-1", "payment": str(payment_id)},
    )
    assert too_much.status_code == 422
    assert "amount: refund of" in too_much.text
    no_reference = browser.post(
        f"/console/customers/{customer_id}/refunds",
        {"amount": "5", "method": "cash", "reference": ""},
    )
    assert no_reference.status_code == 422
    assert "reference: required" in no_reference.text
    assert count(app, LedgerTransaction) == before
    done = browser.submit(
        f"/console/customers/{customer_id}/refunds",
        {"amount": "20", "method": "cash", "reference": "R-1", "payment": str(payment_id)},
    )
    assert text_of(done.text, "balance") == "€30.00"
    # the same reference again is the same refund, not a second one
    browser.submit(
        f"/console/customers/{customer_id}/refunds",
        {"amount": "20", "method": "cash", "reference": "R-1"},
    )
    assert balance(browser, customer_id) == "€30.00"
    assert count(app, LedgerTransaction) == before + 1


def test_a_refund_reference_is_the_customers(web: tuple[App, dict[str, int]]) -> None:
    """Two resellers' users refund under the same reference: each refund is made for its own
    customer; the same customer's reference with another amount is refused next to the form."""
    app, _ = web
    north = customer(app, "North Home", reseller="North")
    south = customer(app, "South Home", reseller="South")
    paid(app, north, "50", "n-1")
    paid(app, south, "40", "s-1")
    nora, sam = Browser(app), Browser(app)
    nora.sign_in_staff("nora")
    sam.sign_in_staff("sam")
    form = {"method": "cash", "reference": "R-1"}
    assert (
        text_of(
            nora.submit(f"/console/customers/{north}/refunds", {**form, "amount": "20"}).text,
            "balance",
        )
        == "€30.00"
    )
    assert (
        text_of(
            sam.submit(f"/console/customers/{south}/refunds", {**form, "amount": "15"}).text,
            "balance",
        )
        == "€25.00"
    )
    before = count(app, LedgerTransaction)
    altered = nora.post(f"/console/customers/{north}/refunds", {**form, "amount": "21"})
    assert altered.status_code == 422
    assert "reference: cash refund &#39;R-1&#39; is already recorded" in altered.text
    assert count(app, LedgerTransaction) == before
    assert (balance(nora, north), balance(sam, south)) == ("€30.00", "€25.00")


def test_every_method_the_console_offers_is_accepted(web: tuple[App, dict[str, int]]) -> None:
    """The payment and refund forms offer the domain's methods (``bank_transfer``, not a
    hand-typed ``bank``): a payment and a refund by bank transfer go through, and so does a
    payment by every other method offered."""
    app, _ = web
    customer_id = customer(app, "Bea")
    browser = Browser(app)
    browser.sign_in_staff("alice")
    page = browser.get(f"/console/customers/{customer_id}").text
    methods, refund_methods = offered(page, "method"), offered(page, "refund-method")
    assert "bank_transfer" in methods
    assert "bank_transfer" in refund_methods
    assert set(methods) <= set(BUILTIN_METHODS)
    for number, method in enumerate(methods, start=1):
        done = browser.submit(
            f"/console/customers/{customer_id}/payments",
            {"amount": "10", "method": method, "reference": f"T-{number}"},
        )
        assert done.status_code == 200, (method, text_of(done.text, "balance"))
    assert balance(browser, customer_id) == f"€{10 * len(methods)}.00"
    done = browser.submit(
        f"/console/customers/{customer_id}/refunds",
        {"amount": "4", "method": "bank_transfer", "reference": "BT-R1"},
    )
    assert done.status_code == 200
    assert text_of(done.text, "balance") == f"€{10 * len(methods) - 4}.00"
    with app.uow() as uow:
        stored = set(uow.session.scalars(select(Payment.method)))
        assert stored == set(methods)
        refund = uow.session.scalars(
            select(LedgerTransaction).where(LedgerTransaction.kind == "refund")
        ).one()
        assert refund.memo == "bank_transfer refund BT-R1"


def test_corrections_respect_roles_and_resellers(web: tuple[App, dict[str, int]]) -> None:
    app, _ = web
    north = customer(app, "North Home", reseller="North")
    south = customer(app, "South Home", reseller="South")
    north_payment = paid(app, north, "10", "n-1")
    south_payment = paid(app, south, "10", "s-1")
    nora = Browser(app)
    nora.sign_in_staff("nora")
    nora.get("/console/customers")
    assert (
        nora.post(f"/console/payments/{south_payment}/reverse", {"reason": "x"}).status_code == 404
    )
    refund = {"amount": "1", "method": "cash", "reference": "N-R"}
    assert nora.post(f"/console/customers/{south}/refunds", refund).status_code == 404
    # a payment of another customer named on an own customer's refund is refused, not used
    crossed = nora.post(
        f"/console/customers/{north}/refunds", {**refund, "payment": str(south_payment)}
    )
    assert crossed.status_code == 422
    assert "payment: must be one of this customer" in crossed.text
    assert (
        nora.post("/console/payments/99999999999999999999/reverse", {"reason": "x"}).status_code
        == 404
    )
    assert (
        nora.confirm(f"/console/payments/{north_payment}/reverse", {"reason": "wrong"}).status_code
        == 200
    )
    rita = Browser(app)
    rita.sign_in_staff("rita")
    page = rita.get(f"/console/customers/{south}")
    assert "Reverse payment" not in page.text
    assert (
        rita.post(f"/console/payments/{south_payment}/reverse", {"reason": "x"}).status_code == 403
    )
    assert rita.post(f"/console/customers/{south}/refunds", refund).status_code == 403
    with app.uow() as uow:
        south_row = uow.session.get(Payment, south_payment)
        assert south_row is not None
        assert south_row.reversed_by_id is None


# -- bank statements ------------------------------------------------------------------------------


def bank_customers(app: App) -> tuple[int, int]:
    alice = customer(app, "Alice", custom_data={"variable_symbol": "1001"})
    bob = customer(
        app, "Bob", custom_data={"customer_number": "C-0002", "iban": "DE89370400440532013000"}
    )
    return alice, bob


def upload(browser: Browser, data: bytes, name: str = "statement.xml", **form: str) -> Any:
    return browser.request(
        "POST",
        "/console/bank",
        data={"csrf_token": browser.csrf, **form},
        files={"file": (name, data, "application/xml")},
    )


def test_an_admin_imports_a_statement_and_assigns_an_unmatched_line(
    web: tuple[App, dict[str, int]],
) -> None:
    app, _ = web
    alice, bob = bank_customers(app)
    browser = Browser(app)
    browser.sign_in_staff("alice")
    browser.get("/console/bank")
    first = upload(browser, CAMT.read_bytes())
    assert first.status_code == 200
    figures = [text_of(first.text, k) for k in ("rows-read", "payments-created", "unmatched")]
    assert figures == ["7", "4", "2"]
    assert text_of(first.text, "duplicates-skipped") == "0"
    # the same file again creates nothing
    again = upload(browser, CAMT.read_bytes())
    assert text_of(again.text, "duplicates-skipped") == "7"
    assert text_of(again.text, "payments-created") == "0"
    with app.uow() as uow:
        waiting = list(
            uow.session.scalars(
                select(BankStatementLine).where(
                    BankStatementLine.status == "unmatched", BankStatementLine.currency == "EUR"
                )
            )
        )
    line = waiting[0]
    listing = browser.get("/console/bank").text
    assert f"/console/bank/lines/{line.id}/assign" in listing
    payments_before = count(app, Payment)
    unknown = browser.post(f"/console/bank/lines/{line.id}/assign", {"customer": "999"})
    assert unknown.status_code == 422
    assert "customer" in unknown.text
    assert count(app, Payment) == payments_before
    done = browser.submit(f"/console/bank/lines/{line.id}/assign", {"customer": str(bob)})
    assert done.status_code == 200
    assert f"/console/bank/lines/{line.id}/assign" not in done.text
    with app.uow() as uow:
        row = uow.session.get(BankStatementLine, line.id)
        assert row is not None
        assert (row.status, row.customer_id) == ("matched", bob)
    twice = browser.post(f"/console/bank/lines/{line.id}/assign", {"customer": str(alice)})
    assert twice.status_code == 422
    assert "already matched" in twice.text
    exported = list(
        csv.DictReader(io.StringIO(browser.get("/console/bank?status=all&format=csv").text))
    )
    assert len(exported) == 7
    assert {r["status"] for r in exported} == {"matched", "unmatched", "ignored"}


def test_a_bad_statement_writes_nothing(web: tuple[App, dict[str, int]]) -> None:
    app, _ = web
    bank_customers(app)
    browser = Browser(app)
    browser.sign_in_staff("alice")
    browser.get("/console/bank")
    broken = upload(browser, CAMT.read_bytes()[:-200])
    assert broken.status_code == 422
    empty = upload(browser, b"   ", name="empty.csv")
    assert empty.status_code == 422
    assert "file: is empty" in empty.text
    wrong_format = upload(browser, CAMT.read_bytes(), format="mt941")
    assert wrong_format.status_code == 422
    assert "format: must be one of" in wrong_format.text
    missing = browser.post("/console/bank", {"format": "auto"})
    assert missing.status_code == 422
    assert "file: choose a statement file" in missing.text
    assert count(app, BankStatementLine) == 0
    assert count(app, Payment) == 0


def test_bank_lines_are_for_operators_and_only_admins_write(
    web: tuple[App, dict[str, int]],
) -> None:
    app, _ = web
    bank_customers(app)
    admin = Browser(app)
    admin.sign_in_staff("alice")
    admin.get("/console/bank")
    upload(admin, CAMT.read_bytes())
    with app.uow() as uow:
        line_id = uow.session.scalars(
            select(BankStatementLine.id).where(BankStatementLine.status == "unmatched")
        ).first()
    rita = Browser(app)
    rita.sign_in_staff("rita")
    page = rita.get("/console/bank")
    assert page.status_code == 200
    assert 'enctype="multipart/form-data"' not in page.text
    assert "/assign" not in page.text
    assert upload(rita, CAMT.read_bytes()).status_code == 403
    assert rita.post(f"/console/bank/lines/{line_id}/assign", {"customer": "1"}).status_code == 403
    nora = Browser(app)
    nora.sign_in_staff("nora")
    assert "/console/bank" not in nora.get("/console").text
    assert nora.get("/console/bank").status_code == 403
    assert nora.get("/console/bank?format=csv").status_code == 403
    assert nora.post(f"/console/bank/lines/{line_id}/assign", {"customer": "1"}).status_code == 403
    with app.uow() as uow:
        row = uow.session.get(BankStatementLine, line_id)
        assert row is not None
        assert row.status == "unmatched"


# -- network login of a service -------------------------------------------------------------------


def with_service(app: App, ids: dict[str, int], reseller: str | None = None) -> tuple[int, int]:
    customer_id = customer(app, f"Net {reseller}", reseller=reseller)
    with app.uow() as uow:
        spec = NewService(
            customer_id=customer_id, plan_id=ids["plan"], active_from=date(2026, 1, 1)
        )
        service_id = add_service(uow, spec=spec, now=app.clock.now(), actor="test").id
    return customer_id, service_id


def test_an_operator_sets_a_services_network_login(web: tuple[App, dict[str, int]]) -> None:
    app, ids = web
    with app.uow() as uow:
        nas = NewNas(name="core-1", address="192.0.2.10", secret="a-long-shared-secret-123")
        nas_id = add_nas(uow, spec=nas, now=app.clock.now(), actor="test").id
    customer_id, service_id = with_service(app, ids)
    _, other_service = with_service(app, ids, reseller="North")
    browser = Browser(app)
    browser.sign_in_staff("alice")
    page = browser.get(f"/console/customers/{customer_id}")
    assert f"/console/services/{service_id}/identity" in page.text
    url = f"/console/services/{service_id}/identity"
    done = browser.submit(
        url,
        {
            "username": "petr@isp",
            "password": "s3cret-pass",
            "static_ip": "198.51.100.7",
            "nas": str(nas_id),
        },
    )
    assert "petr@isp" in text_of_cell(done.text, f"identity-{service_id}")
    assert "s3cret-pass" not in done.text
    # an empty password keeps the stored one while the address changes
    browser.submit(url, {"username": "petr@isp", "password": "", "static_ip": "198.51.100.8"})
    with app.uow() as uow:
        row = uow.session.get(NetworkIdentity, service_id)
        assert row is not None
        assert (row.password, row.static_ip, row.nas_id) == ("s3cret-pass", "198.51.100.8", None)
    # a new username needs its own password
    renamed = browser.post(url, {"username": "someone-else", "password": ""})
    assert renamed.status_code == 422
    assert "password:" in renamed.text
    bad_mac = browser.post(url, {"mac_address": "zz:zz"})
    assert bad_mac.status_code == 422
    assert "mac_address: must be six hex bytes" in bad_mac.text
    taken = browser.post(
        f"/console/services/{other_service}/identity", {"username": "petr@isp", "password": "x1"}
    )
    assert taken.status_code == 422
    assert "username" in taken.text
    with app.uow() as uow:
        assert uow.session.get(NetworkIdentity, other_service) is None
        row = uow.session.get(NetworkIdentity, service_id)
        assert row is not None
        assert row.username == "petr@isp"
    exported = browser.get(f"/console/customers/{customer_id}/services.csv").text
    assert "petr@isp" in exported
    assert "198.51.100.8" in exported
    assert "s3cret-pass" not in exported


def test_network_login_respects_roles_and_resellers(web: tuple[App, dict[str, int]]) -> None:
    app, ids = web
    _, north_service = with_service(app, ids, reseller="North")
    south_customer, south_service = with_service(app, ids, reseller="South")
    nora = Browser(app)
    nora.sign_in_staff("nora")
    nora.get("/console/customers")
    form = {"mac_address": "aa:bb:cc:dd:ee:ff"}
    assert nora.post(f"/console/services/{south_service}/identity", form).status_code == 404
    assert nora.submit(f"/console/services/{north_service}/identity", form).status_code == 200
    rita = Browser(app)
    rita.sign_in_staff("rita")
    page = rita.get(f"/console/customers/{south_customer}")
    assert "Save network login" not in page.text
    other = {"mac_address": "aa:bb:cc:dd:ee:01"}
    assert rita.post(f"/console/services/{south_service}/identity", other).status_code == 403
    with app.uow() as uow:
        assert uow.session.get(NetworkIdentity, south_service) is None
        row = uow.session.get(NetworkIdentity, north_service)
        assert row is not None
        assert row.mac_address == "aa:bb:cc:dd:ee:ff"


def text_of_cell(html: str, element_id: str) -> str:
    start = html.index(f'id="{element_id}"')
    return html[start : html.index("</td>", start)]


def test_pages_render_in_czech(web: tuple[App, dict[str, int]]) -> None:
    app, ids = web
    customer_id, _ = with_service(app, ids)
    paid(app, customer_id, "10", "cz-1")
    browser = Browser(app)
    browser.sign_in_staff("alice")
    browser.cookies.set("ispbill_lang", "cs")
    page = browser.get(f"/console/customers/{customer_id}").text
    assert "Stornovat platbu" in page
    assert "Přihlášení do sítě" in page
    assert "Bankovní výpisy" in browser.get("/console/bank").text


# -- automatic top-up and "active to" -------------------------------------------------------------


def test_an_operator_sets_turns_off_and_deletes_a_top_up_rule(
    web: tuple[App, dict[str, int]],
) -> None:
    app, _ = web
    customer_id = customer(app, "Topped")
    browser = Browser(app)
    browser.sign_in_staff("alice")
    url = f"/console/customers/{customer_id}/top-up"
    assert "No top-up rule." in browser.get(f"/console/customers/{customer_id}").text
    rule = {"threshold": "5", "amount": "20", "gateway": "sandbox", "method": "pm_1234"}
    bad = browser.post(url, {**rule, "amount": "0", "enabled": "1"})
    assert bad.status_code == 422
    assert "amount: must be greater than zero" in bad.text
    wrong_gateway = browser.post(url, {**rule, "gateway": "paypal", "enabled": "1"})
    assert "gateway: must be one of" in wrong_gateway.text
    assert count(app, TopUpRule) == 0
    page = browser.submit(url, {**rule, "enabled": "1"})
    state = text_of(page.text, "top-up-state")
    assert "€5.00" in state
    assert "€20.00" in state
    assert "pm_1234" in state
    assert state.endswith("On.")
    page = browser.submit(f"{url}/disable")
    assert text_of(page.text, "top-up-state").endswith("Off.")
    browser.submit(f"{url}/delete")
    assert count(app, TopUpRule) == 0
    assert browser.post(f"{url}/explode").status_code == 404
    nora = Browser(app)
    nora.sign_in_staff("nora")
    nora.get("/console/customers")
    assert nora.post(url, {**rule, "enabled": "1"}).status_code == 404
    rita = Browser(app)
    rita.sign_in_staff("rita")
    rita.get("/console/customers")
    assert rita.post(url, {**rule, "enabled": "1"}).status_code == 403
    assert count(app, TopUpRule) == 0


def test_an_operator_schedules_and_clears_active_to(web: tuple[App, dict[str, int]]) -> None:
    app, ids = web
    customer_id, service_id = with_service(app, ids)
    _, south_service = with_service(app, ids, reseller="South")
    browser = Browser(app)
    browser.sign_in_staff("alice")
    browser.get(f"/console/customers/{customer_id}")
    url = f"/console/services/{service_id}/active-to"
    bad = browser.post(url, {"active_to": "31.12.2026"})
    assert bad.status_code == 422
    assert "active_to: must be a date" in bad.text
    browser.submit(url, {"active_to": "2026-09-30"})
    with app.uow() as uow:
        row = uow.session.get(Service, service_id)
        assert row is not None
        assert row.active_to == date(2026, 9, 30)
    browser.submit(url, {"active_to": ""})
    with app.uow() as uow:
        row = uow.session.get(Service, service_id)
        assert row is not None
        assert row.active_to is None
    nora = Browser(app)
    nora.sign_in_staff("nora")
    nora.get("/console/customers")
    target = f"/console/services/{south_service}/active-to"
    assert nora.post(target, {"active_to": "2026-09-30"}).status_code == 404
    with app.uow() as uow:
        south = uow.session.get(Service, south_service)
        assert south is not None
        assert south.active_to is None


def test_the_top_up_rules_list_is_scoped_and_exported(web: tuple[App, dict[str, int]]) -> None:
    app, _ = web
    north = customer(app, "North Topped", reseller="North")
    south = customer(app, "South Topped", reseller="South")
    admin = Browser(app)
    admin.sign_in_staff("alice")
    rule = {"threshold": "5", "amount": "20", "gateway": "sandbox"}
    for customer_id, method, on in ((north, "pm_north", "1"), (south, "pm_south", "")):
        admin.get(f"/console/customers/{customer_id}")
        admin.submit(
            f"/console/customers/{customer_id}/top-up", {**rule, "method": method, "enabled": on}
        )
    listing = admin.get("/console/top-ups").text
    assert "pm_north" in listing
    assert "pm_south" in listing
    off = admin.get("/console/top-ups?enabled=no").text
    assert "pm_south" in off
    assert "pm_north" not in off
    bad = admin.get("/console/top-ups?enabled=maybe")
    assert bad.status_code == 422
    assert "enabled: must be yes or no" in bad.text
    rows = list(csv.DictReader(io.StringIO(admin.get("/console/top-ups?format=csv").text)))
    assert {(r["customer_id"], r["threshold"], r["enabled"]) for r in rows} == {
        (str(north), "5.00", "yes"),
        (str(south), "5.00", "no"),
    }
    nora = Browser(app)
    nora.sign_in_staff("nora")
    own = nora.get("/console/top-ups?format=csv").text
    assert "pm_north" in own
    assert "pm_south" not in own
    assert nora.get(f"/console/top-ups?customer={south}").status_code == 404

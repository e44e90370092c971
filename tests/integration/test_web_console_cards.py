"""Console pages for refill cards over HTTP on both databases: the card list (filters, pages,
CSV, never a code), the liability, voiding (admin only, all or nothing) and redeeming a card
for a customer (a reseller's user only onto its own customers)."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from datetime import UTC, date, datetime
from typing import Any

import pytest
from sqlalchemy import func, select
from web_support import CARD_SECRET, Browser, console_world, customer, text_of

from ispbill.adapters.db.models import Event, LedgerTransaction, Payment, RefillCard
from ispbill.bootstrap import App
from ispbill.clock import FixedClock
from ispbill.entrypoints.web.console import cards as console_cards
from ispbill.use_cases.payments import refill_cards as cards

KEY = cards.secret_key(CARD_SECRET)


@pytest.fixture
def web(database_url: str, clock: FixedClock) -> Iterator[tuple[App, dict[str, int]]]:
    with console_world(database_url, clock) as (app, ids):
        yield app, ids
        with app.uow() as uow:
            for line in cards.liability_report(uow.session, now=app.clock.now()):
                assert line.balanced, line


def issue(
    app: App,
    count: int,
    value: str = "10",
    currency: str = "EUR",
    prefix: str = "RC",
    expires_on: date | None = None,
) -> cards.IssuedBatch:
    spec = cards.NewBatch(
        count=count, value=value, currency=currency, prefix=prefix, expires_on=expires_on
    )
    with app.uow() as uow:
        return cards.generate_batch(
            uow, spec=spec, key=KEY, now=app.clock.now(), actor="test", deliver=lambda _: None
        )


def redeem(app: App, code: str, customer_id: int) -> None:
    with app.uow() as uow:
        cards.redeem_card(
            uow, code=code, customer_id=customer_id, key=KEY, now=app.clock.now(), actor="test"
        )


def card_ids(app: App) -> dict[str, int]:
    with app.uow() as uow:
        return dict(uow.session.execute(select(RefillCard.serial, RefillCard.id)).all())


def statuses(app: App) -> dict[str, str]:
    with app.uow() as uow:
        return dict(uow.session.execute(select(RefillCard.serial, RefillCard.status)).all())


def count(app: App, model: Any) -> int:
    with app.uow() as uow:
        return int(uow.session.scalar(select(func.count()).select_from(model)) or 0)


def rows_of(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text)))


def secrets_of(batch: cards.IssuedBatch) -> list[str]:
    """Every form a code could leak in: as printed, without dashes, and its stored hash."""
    forms = []
    for card in batch.cards:
        plain = card.code.replace("-", "")
        forms += [card.code, plain, plain.lower()]
    return forms


def hashes(app: App) -> list[str]:
    with app.uow() as uow:
        return list(uow.session.scalars(select(RefillCard.code_hash)))


def balance(browser: Browser, customer_id: int) -> str:
    return text_of(browser.get(f"/console/customers/{customer_id}").text, "balance")


# -- the list -------------------------------------------------------------------------------------


def test_the_card_list_filters_pages_and_never_shows_a_code(
    web: tuple[App, dict[str, int]], monkeypatch: pytest.MonkeyPatch
) -> None:
    app, _ = web
    petr = customer(app, "Petr")
    first = issue(app, 3, prefix="AA")
    second = issue(app, 2, value="25", prefix="BB")
    redeem(app, first.cards[1].code, petr)
    browser = Browser(app)
    browser.sign_in_staff("alice")
    page = browser.get("/console/cards/list")
    assert page.status_code == 200
    for card in (*first.cards, *second.cards):
        assert card.serial in page.text
    ids = card_ids(app)
    redeemed_row = page.text.split(f'id="card-{ids[first.cards[1].serial]}"')[1].split("</tr>")[0]
    assert "Petr #" in redeemed_row
    assert "redeemed" in redeemed_row

    only_redeemed = browser.get("/console/cards/list?status=redeemed").text
    assert first.cards[1].serial in only_redeemed
    assert first.cards[0].serial not in only_redeemed
    by_batch = browser.get(f"/console/cards/list?batch={second.name}").text
    assert second.cards[0].serial in by_batch
    assert first.cards[0].serial not in by_batch
    by_serial = browser.get(f"/console/cards/list?serial={first.cards[2].serial.lower()}").text
    assert first.cards[2].serial in by_serial
    assert first.cards[0].serial not in by_serial
    by_customer = browser.get(f"/console/cards/list?customer={petr}").text
    assert first.cards[1].serial in by_customer
    assert first.cards[0].serial not in by_customer

    sheet = browser.get(f"/console/cards/list?batch={first.name}&format=csv")
    assert sheet.headers["content-type"].startswith("text/csv")
    rows = rows_of(sheet.text)
    assert [r["serial"] for r in rows] == [c.serial for c in first.cards]
    assert [r["status"] for r in rows] == ["active", "redeemed", "active"]
    assert rows[1]["customer_id"] == str(petr)
    assert rows[1]["customer_name"] == "Petr"
    assert rows[1]["value"] == "10.00"
    assert rows[1]["currency"] == "EUR"
    assert "code" not in ",".join(rows[0])
    assert "hash" not in ",".join(rows[0])
    everything = browser.get("/console/cards/list?format=csv").text
    assert len(rows_of(everything)) == 5
    for secret in [*secrets_of(first), *secrets_of(second), *hashes(app)]:
        assert secret not in page.text
        assert secret not in everything

    monkeypatch.setattr(console_cards, "PAGE_SIZE", 2)
    second_id, fourth_id = ids[first.cards[1].serial], ids[second.cards[0].serial]
    one = browser.get("/console/cards/list")
    assert first.cards[1].serial in one.text
    assert first.cards[2].serial not in one.text
    assert f"after={second_id}" in one.text
    two = browser.get(f"/console/cards/list?after={second_id}").text
    assert first.cards[2].serial in two
    assert first.cards[1].serial not in two
    assert f"after={fourth_id}" in two
    last = browser.get(f"/console/cards/list?after={fourth_id}").text
    assert second.cards[1].serial in last
    assert "after=" not in last
    filtered = browser.get(f"/console/cards/list?batch={first.name}").text
    assert f"batch={first.name}&amp;after={second_id}" in filtered


def test_a_bad_filter_is_refused_by_name(web: tuple[App, dict[str, int]]) -> None:
    app, _ = web
    issue(app, 1)
    browser = Browser(app)
    browser.sign_in_staff("rita")
    for query, field in [
        ("status=lost", "status: must be one of"),
        ("batch=ZZ99999", "batch"),
        ("customer=abc", "customer: must be a customer id"),
    ]:
        answer = browser.get(f"/console/cards/list?{query}")
        assert answer.status_code == 422, query
        assert field in text_of(answer.text, "error")
        assert "RC00001-00001" not in answer.text
        assert browser.get(f"/console/cards/list?{query}&format=csv").status_code == 422


def test_cards_past_their_expiry_are_marked(
    web: tuple[App, dict[str, int]], clock: FixedClock
) -> None:
    app, _ = web
    batch = issue(app, 2, expires_on=date(2026, 1, 31), prefix="JAN")
    clock.set(datetime(2026, 2, 2, 9, tzinfo=UTC))
    browser = Browser(app)
    browser.sign_in_staff("alice")
    assert "past expiry" in browser.get("/console/cards/list").text
    rows = rows_of(browser.get("/console/cards/list?format=csv").text)
    assert [(r["status"], r["past_expiry"]) for r in rows] == [("active", "True")] * 2
    page = browser.get("/console/cards").text
    assert text_of(page, "outstanding-EUR") == "€20.00"
    [line] = rows_of(browser.get("/console/cards/liability.csv").text)
    assert (line["unexpired"], line["awaiting_expiry"], line["cards_awaiting_expiry"]) == (
        "0.00",
        "20.00",
        "2",
    )
    assert batch.name in page


# -- the liability --------------------------------------------------------------------------------


def test_the_liability_per_currency_on_the_page_and_in_csv(
    web: tuple[App, dict[str, int]],
) -> None:
    app, _ = web
    petr = customer(app, "Petr")
    browser = Browser(app)
    browser.sign_in_staff("alice")
    assert "No cards issued yet." in browser.get("/console/cards").text
    eur = issue(app, 3, value="10")
    issue(app, 2, value="100", currency="CZK", prefix="CZ")
    redeem(app, eur.cards[0].code, petr)
    page = browser.get("/console/cards").text
    assert text_of(page, "outstanding-EUR") == "€20.00"
    assert text_of(page, "active-EUR") == "2"
    assert text_of(page, "outstanding-CZK").replace("\xa0", "") == "CZK200.00"
    sheet = browser.get("/console/cards/liability.csv")
    assert sheet.headers["content-type"].startswith("text/csv")
    by_currency = {r["currency"]: r for r in rows_of(sheet.text)}
    assert by_currency["EUR"]["outstanding"] == "20.00"
    assert by_currency["EUR"]["ledger"] == "20.00"
    assert by_currency["EUR"]["active_cards"] == "2"
    assert by_currency["CZK"]["outstanding"] == "200.00"


# -- voiding --------------------------------------------------------------------------------------


def test_an_admin_voids_named_cards_all_or_none(web: tuple[App, dict[str, int]]) -> None:
    app, _ = web
    petr = customer(app, "Petr")
    batch = issue(app, 4)
    first, second, third, fourth = (c.serial for c in batch.cards)
    redeem(app, batch.cards[3].code, petr)
    browser = Browser(app)
    browser.sign_in_staff("alice")
    browser.get("/console/cards")
    before = (statuses(app), count(app, LedgerTransaction), count(app, Event))
    refused = browser.post("/console/cards/void", {"serials": f"{first}, {fourth}"})
    assert refused.status_code == 422
    assert f"serial: card {fourth} is redeemed" in text_of(refused.text, "error")
    assert f"{first}, {fourth}" in refused.text  # the form keeps what was typed
    both = browser.post("/console/cards/void", {"serials": first, "batch": batch.name})
    assert both.status_code == 422
    assert "serial: give a card serial or a batch" in text_of(both.text, "error")
    unknown = browser.post("/console/cards/void", {"serials": f"{first} RC09999-00001"})
    assert unknown.status_code == 422
    assert "serial" in text_of(unknown.text, "error")
    assert (statuses(app), count(app, LedgerTransaction), count(app, Event)) == before

    done = browser.post(
        "/console/cards/void", {"serials": f"{first}\n{second.lower()}", "reason": "lost in post"}
    )
    assert done.status_code == 200
    assert text_of(done.text, "voided-serials") == f"{first}, {second}"
    assert text_of(done.text, "voided-total") == "€20.00"
    assert text_of(done.text, "outstanding-EUR") == "€10.00"
    rest = browser.post("/console/cards/void", {"batch": str(batch.batch_id)})
    assert text_of(rest.text, "voided-serials") == third
    assert statuses(app) == {first: "voided", second: "voided", third: "voided", fourth: "redeemed"}
    with app.uow() as uow:
        logged = uow.session.scalars(select(Event).where(Event.kind == "refill_card.voided"))
        assert {(e.actor.split("#")[0], e.reason) for e in logged} == {
            ("staff:alice", "lost in post"),
            ("staff:alice", ""),
        }
    rows = rows_of(browser.get("/console/cards/list?status=voided&format=csv").text)
    assert [r["serial"] for r in rows] == [first, second, third]
    assert all(r["voided_at"] for r in rows)


# -- redeeming ------------------------------------------------------------------------------------


def test_an_operator_redeems_a_card_for_a_customer(web: tuple[App, dict[str, int]]) -> None:
    app, _ = web
    petr = customer(app, "Petr")
    batch = issue(app, 2, value="15")
    code = batch.cards[0].code
    browser = Browser(app)
    browser.sign_in_staff("alice")
    browser.get("/console/cards")
    typo = browser.post("/console/cards/redeem", {"customer": str(petr), "code": "ABCD"})
    assert typo.status_code == 422
    assert text_of(typo.text, "error").startswith("code:")
    no_id = browser.post("/console/cards/redeem", {"customer": "Petr", "code": code})
    assert no_id.status_code == 422
    assert "customer: must be a customer id" in text_of(no_id.text, "error")
    nobody = browser.post("/console/cards/redeem", {"customer": "9999", "code": code})
    assert nobody.status_code == 422
    assert text_of(nobody.text, "error").startswith("customer")
    for answer in (typo, no_id, nobody):
        assert code not in answer.text
    assert count(app, Payment) == 0
    assert statuses(app)[batch.cards[0].serial] == "active"

    done = browser.post("/console/cards/redeem", {"customer": str(petr), "code": code.lower()})
    assert done.status_code == 200
    assert text_of(done.text, "redeemed-amount") == "€15.00"
    assert text_of(done.text, "redeemed-balance") == "€15.00"
    assert code not in done.text
    assert balance(browser, petr) == "€15.00"
    again = browser.post("/console/cards/redeem", {"customer": str(petr), "code": code})
    assert again.status_code == 422
    assert "code: already redeemed" in text_of(again.text, "error")
    assert balance(browser, petr) == "€15.00"
    with app.uow() as uow:
        payment = uow.session.scalars(select(Payment)).one()
        assert (payment.method, payment.reference) == ("refill_card", batch.cards[0].serial)
        assert payment.actor.startswith("staff:alice#")
    listed = rows_of(browser.get(f"/console/cards/list?customer={petr}&format=csv").text)
    assert [(r["serial"], r["customer_name"]) for r in listed] == [(batch.cards[0].serial, "Petr")]


# -- roles ----------------------------------------------------------------------------------------


def test_a_read_only_user_sees_cards_and_changes_nothing(
    web: tuple[App, dict[str, int]],
) -> None:
    app, _ = web
    petr = customer(app, "Petr")
    batch = issue(app, 2)
    rita = Browser(app)
    rita.sign_in_staff("rita")
    page = rita.get("/console/cards")
    assert page.status_code == 200
    assert batch.name in page.text
    assert "outstanding-EUR" in page.text
    assert "/console/cards/void" not in page.text
    assert "/console/cards/redeem" not in page.text
    assert rita.get("/console/cards/list").status_code == 200
    assert rita.get("/console/cards/liability.csv").status_code == 200
    before = (statuses(app), count(app, LedgerTransaction))
    for url, form in [
        ("/console/cards/void", {"batch": batch.name}),
        ("/console/cards/redeem", {"customer": str(petr), "code": batch.cards[0].code}),
        ("/console/cards", {"count": "1", "value": "5", "currency": "EUR"}),
    ]:
        assert rita.post(url, form).status_code == 403, url
    assert (statuses(app), count(app, LedgerTransaction)) == before


def test_a_reseller_redeems_only_for_its_own_customers(web: tuple[App, dict[str, int]]) -> None:
    app, _ = web
    north = customer(app, "North Home", reseller="North")
    south = customer(app, "South Home", reseller="South")
    batch = issue(app, 3)
    redeem(app, batch.cards[2].code, south)
    nora = Browser(app)
    nora.sign_in_staff("nora")
    page = nora.get("/console/cards")
    assert page.status_code == 200
    assert "/console/cards/redeem" in page.text
    # batches, cards and the liability are the operator's: not shown, and a 403 when asked
    assert batch.name not in page.text
    assert "outstanding-EUR" not in page.text
    assert "/console/cards/void" not in page.text
    for url in (
        "/console/cards?format=csv",
        "/console/cards/list",
        "/console/cards/list?format=csv",
        f"/console/cards/list?customer={south}",
        "/console/cards/liability.csv",
    ):
        answer = nora.get(url)
        assert answer.status_code == 403, url
        assert batch.cards[2].serial not in answer.text
        assert "South Home" not in answer.text
    assert nora.post("/console/cards/void", {"batch": batch.name}).status_code == 403

    code = batch.cards[0].code
    for other in (str(south), "9999"):  # another reseller's customer is as absent as none
        refused = nora.post("/console/cards/redeem", {"customer": other, "code": code})
        assert refused.status_code == 404, other
        assert "South Home" not in refused.text
    assert statuses(app)[batch.cards[0].serial] == "active"
    assert count(app, Payment) == 1  # the test's own redemption for South
    done = nora.post("/console/cards/redeem", {"customer": str(north), "code": code})
    assert done.status_code == 200
    assert text_of(done.text, "redeemed-balance") == "€10.00"
    assert balance(nora, north) == "€10.00"
    sam = Browser(app)
    sam.sign_in_staff("sam")
    assert sam.get(f"/console/customers/{north}").status_code == 404

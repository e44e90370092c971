"""Refill cards on both databases: issue, redeem once, refuse with a reason, throttle, void,
expire, and the liability that always equals the active cards.

After every test the ledger check passes and the refill-card liability equals the value of the
active cards (an autouse fixture), whatever the scenario did.
"""

from __future__ import annotations

import csv
import json
import threading
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event, func, select, text
from typer.testing import CliRunner, Result

from ispbill.adapters.db import ledger_store as ledger
from ispbill.adapters.db.models import (
    Charge,
    Event,
    LedgerAccount,
    LedgerTransaction,
    Payment,
    RedemptionAttempt,
    RefillCard,
    RefillCardBatch,
    Service,
)
from ispbill.bootstrap import App
from ispbill.clock import FixedClock
from ispbill.domain import refill
from ispbill.domain.errors import Conflict, NotFound, ValidationError
from ispbill.domain.money import Money
from ispbill.entrypoints.cli.main import app as cli
from ispbill.use_cases.billing import tick as billing
from ispbill.use_cases.catalog import customer_accounts as customer_cases
from ispbill.use_cases.catalog import offerings as catalog
from ispbill.use_cases.catalog.name_lookups import customer_class_id_of, customer_id_of, plan_id_of
from ispbill.use_cases.payments import refill_cards as cards
from ispbill.use_cases.service_lifecycle import new_services as services

KEY = b"test-refill-card-secret-0123456789abcdef"
ACTOR = "test"
T0 = datetime(2026, 1, 1, 9, 0, tzinfo=UTC)


# --- fixtures and helpers ---------------------------------------------------------------------


@pytest.fixture
def app(app: App) -> Iterator[App]:
    """The shared ``app``, and after every scenario on every database: the ledger check, and the
    refill-card liability equal to the value of the active cards."""
    yield app
    with app.uow() as uow:
        assert ledger.check(uow.session) == []
        for line in cards.liability_report(uow.session, now=app.clock.now()):
            assert line.balanced, line


def setup_customers(app: App) -> dict[str, int]:
    """A class, a 20.00 USD monthly plan, a USD and a EUR prepaid customer."""
    with app.uow() as uow:
        catalog.add_class(uow, spec=catalog.NewClass(name="Home"), now=T0, actor=ACTOR)
    with app.uow() as uow:
        catalog.add_plan(
            uow,
            spec=catalog.NewPlan(
                name="Home 20", price="20.00", currency="USD", download="50M", upload="10M"
            ),
            now=T0,
            actor=ACTOR,
        )
    ids = {}
    for name, currency in (("Alice", "USD"), ("Bob", "USD"), ("Eva", "EUR")):
        with app.uow() as uow:
            spec = customer_cases.NewCustomer(
                name=name, customer_class_id=customer_class_id_of(uow, "Home"), currency=currency
            )
            ids[name] = customer_cases.add_customer(uow, spec=spec, now=T0, actor=ACTOR).id
    return ids


def issue(
    app: App,
    *,
    count: int = 3,
    value: str = "20.00",
    currency: str = "USD",
    expires_on: date | None = None,
    prefix: str = "RC",
    timezone: str = "UTC",
) -> cards.IssuedBatch:
    delivered: list[cards.IssuedBatch] = []
    spec = cards.NewBatch(
        count=count,
        value=value,
        currency=currency,
        expires_on=expires_on,
        prefix=prefix,
        timezone=timezone,
    )
    with app.uow() as uow:
        issued = cards.generate_batch(
            uow, spec=spec, key=KEY, now=app.clock.now(), actor=ACTOR, deliver=delivered.append
        )
    assert delivered == [issued]
    return issued


def redeem(app: App, code: str, customer: str | int, source: str | None = None) -> cards.Redeemed:
    """Redeem as the CLI does: a customer's name is looked up first (an id is used as is)."""
    with app.uow() as uow:
        return cards.redeem_card(
            uow,
            code=code,
            customer_id=customer if isinstance(customer, int) else customer_id_of(uow, customer),
            key=KEY,
            now=app.clock.now(),
            actor=ACTOR,
            source=source,
        )


def refused(app: App, code: str, customer: str | int, source: str | None = None) -> ValidationError:
    with pytest.raises(ValidationError) as caught:
        redeem(app, code, customer, source)
    assert caught.value.field == "code"
    return caught.value


def balances(app: App) -> dict[str, int]:
    with app.uow() as uow:
        rows = uow.session.execute(select(LedgerAccount.code, LedgerAccount.balance_minor))
        return {code: int(balance) for code, balance in rows if balance}


def wallet(app: App, customer_id: int, currency: str = "USD") -> int:
    with app.uow() as uow:
        return ledger.wallet_balance(uow.session, customer_id, currency).minor


def attempts(app: App) -> list[tuple[int, str | None, str]]:
    with app.uow() as uow:
        rows = uow.session.execute(
            select(
                RedemptionAttempt.customer_id, RedemptionAttempt.source, RedemptionAttempt.reason
            ).order_by(RedemptionAttempt.id)
        )
        return [(c, s, r) for c, s, r in rows]


def statuses(app: App) -> dict[str, str]:
    with app.uow() as uow:
        return dict(uow.session.execute(select(RefillCard.serial, RefillCard.status)).all())


def liability(app: App) -> cards.Liability:
    with app.uow() as uow:
        [line] = cards.liability_report(uow.session, now=app.clock.now())
    return line


def unissued_code(issued: cards.IssuedBatch) -> str:
    """A well-formed code (its check symbol matches) that is on no card."""
    taken = {refill.normalize(c.code) for c in issued.cards}
    number = 0
    while True:
        code = refill.generate_code(lambda _bits, n=number: n)
        if code not in taken:
            return code
        number += 1


# --- issuing ----------------------------------------------------------------------------------


def test_a_batch_is_one_liability_entry_and_stores_only_hashes(app: App) -> None:
    issued = issue(app, count=3, value="20.00")
    assert issued.total == Money(60_00, "USD")
    assert [c.serial for c in issued.cards] == ["RC00001-00001", "RC00001-00002", "RC00001-00003"]
    assert balances(app) == {"refill_card_liability:USD": 60_00, "refill_card_sales:USD": -60_00}
    with app.uow() as uow:
        [entry] = uow.session.scalars(select(LedgerTransaction)).all()
        assert (entry.idempotency_key, entry.kind) == (
            f"card-batch:{issued.batch_id}",
            "card_issue",
        )
        stored = uow.session.scalars(select(RefillCard).order_by(RefillCard.id)).all()
        assert [c.code_hash for c in stored] == [
            refill.code_hash(refill.parse_code(c.code), KEY) for c in issued.cards
        ]
        dump = json.dumps(
            [
                [str(v) for v in row]
                for row in uow.session.execute(text("SELECT * FROM refill_cards"))
            ]
        )
    for card in issued.cards:
        canonical = refill.normalize(card.code)
        assert canonical not in dump
        assert card.code not in dump
        assert refill.has_valid_check(canonical)
    line = liability(app)
    assert (line.ledger, line.outstanding, line.unexpired) == (Money(60_00, "USD"),) * 3
    assert line.expiry_up_to_date
    assert line.active_cards == 3


def test_a_batch_that_cannot_be_delivered_is_not_issued(app: App) -> None:
    def broken_printer(_: cards.IssuedBatch) -> None:
        raise OSError("printer on fire")

    spec = cards.NewBatch(count=2, value="5.00", currency="USD")
    with app.uow() as uow, pytest.raises(OSError, match="printer"):
        cards.generate_batch(uow, spec=spec, key=KEY, now=T0, actor=ACTOR, deliver=broken_printer)
    with app.uow() as uow:
        assert uow.session.scalar(select(func.count()).select_from(RefillCardBatch)) == 0
        assert uow.session.scalar(select(func.count()).select_from(RefillCard)) == 0
    assert balances(app) == {}


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"count": 0}, "count"),
        ({"count": cards.MAX_BATCH_COUNT + 1}, "count"),
        ({"value": "0"}, "value"),
        ({"value": "20.001"}, "value"),
        ({"currency": "XXQ"}, "currency"),
        ({"prefix": "R-C"}, "prefix"),
        ({"prefix": "TOOLONGPREFIX"}, "prefix"),
        ({"expires_on": date(2025, 12, 31)}, "expires"),
        ({"timezone": "Mars/Olympus"}, "timezone"),
    ],
)
def test_bad_batches_are_refused_before_anything_is_written(
    app: App, changes: dict[str, Any], field: str
) -> None:
    spec = cards.NewBatch(**{"count": 2, "value": "5.00", "currency": "USD", **changes})
    with app.uow() as uow, pytest.raises(ValidationError) as caught:
        cards.generate_batch(uow, spec=spec, key=KEY, now=T0, actor=ACTOR, deliver=print)
    assert caught.value.field == field
    assert balances(app) == {}


def test_the_secret_is_required_and_long() -> None:
    with pytest.raises(ValidationError, match="ISPBILL_REFILL_CARD_SECRET"):
        cards.secret_key(None)
    with pytest.raises(ValidationError, match="at least 32"):
        cards.secret_key("short")
    assert cards.secret_key("x" * 32) == b"x" * 32


# --- redeeming --------------------------------------------------------------------------------


def test_redemption_credits_the_wallet_once_and_is_a_payment(app: App) -> None:
    ids = setup_customers(app)
    issued = issue(app, count=3, value="20.00")
    card = issued.cards[0]
    typed = f"  {card.code.lower().replace('-', ' ')} "  # as a person types it
    done = redeem(app, typed, "Alice", source="portal:10.0.0.1")
    assert (done.serial, done.amount, done.balance) == (
        card.serial,
        Money(20_00, "USD"),
        Money(20_00, "USD"),
    )
    assert wallet(app, ids["Alice"]) == 20_00
    assert balances(app) == {
        "refill_card_liability:USD": 40_00,
        "refill_card_sales:USD": -60_00,
        f"wallet:{ids['Alice']}:USD": 20_00,
    }
    with app.uow() as uow:
        payment = uow.session.scalars(select(Payment)).one()
        stored = uow.session.scalars(
            select(RefillCard).where(RefillCard.serial == card.serial)
        ).one()
        assert (payment.method, payment.reference, payment.amount_minor, payment.customer_id) == (
            "refill_card",
            card.serial,
            20_00,
            ids["Alice"],
        )
        assert payment.idempotency_key == f"card-redemption:{stored.id}"
        transaction = uow.session.get(LedgerTransaction, payment.transaction_id)
        assert transaction is not None
        assert (transaction.idempotency_key, transaction.kind) == (
            f"card-redemption:{stored.id}",
            "card_redemption",
        )
        assert (stored.status, stored.customer_id, stored.redeemed_at) == (
            "redeemed",
            ids["Alice"],
            T0,
        )
        [redeemed_event] = uow.session.scalars(
            select(Event).where(Event.kind == "refill_card.redeemed")
        ).all()
        assert redeemed_event.customer_id == ids["Alice"]
        assert redeemed_event.figures["serial"] == card.serial
    line = liability(app)
    assert (line.ledger, line.active_cards) == (Money(40_00, "USD"), 2)

    # the same card again, by the same customer or another: "already redeemed", nothing moves
    before = balances(app)
    for who in ("Alice", "Bob"):
        with pytest.raises(Conflict) as caught:
            redeem(app, card.code, who)
        assert (caught.value.field, caught.value.rule) == ("code", "already redeemed")
    assert balances(app) == before
    assert attempts(app) == [
        (ids["Alice"], None, "already redeemed"),
        (ids["Bob"], None, "already redeemed"),
    ]


def test_refusals_name_the_reason_and_move_no_money(app: App, clock: FixedClock) -> None:
    setup_customers(app)
    usd = issue(app, count=3, value="20.00", expires_on=date(2026, 1, 31))
    with app.uow() as uow:
        cards.void_cards(uow, serial=usd.cards[1].serial, now=T0, actor=ACTOR)
    before = balances(app)

    assert refused(app, unissued_code(usd), "Alice").rule == "unknown code"
    assert refused(app, usd.cards[1].code, "Alice").rule == "voided"
    assert refused(app, usd.cards[0].code, "Eva").rule == (
        "wrong currency: the card is in USD, the wallet in EUR"
    )
    clock.set(datetime(2026, 2, 1, 0, 0, tzinfo=UTC))  # the day after its last valid day
    assert refused(app, usd.cards[2].code, "Bob").rule == "expired (valid through 2026-01-31)"
    with pytest.raises(NotFound):
        redeem(app, usd.cards[2].code, "Nobody")

    assert balances(app) == before
    assert statuses(app) == {
        usd.cards[0].serial: "active",
        usd.cards[1].serial: "voided",
        usd.cards[2].serial: "active",
    }
    assert [reason for _, _, reason in attempts(app)] == [
        "unknown code",
        "voided",
        "wrong currency",
        "expired",
    ]
    with app.uow() as uow:
        assert uow.session.scalar(select(func.count()).select_from(Payment)) == 0


def test_the_last_valid_day_is_read_in_the_batch_timezone(app: App, clock: FixedClock) -> None:
    setup_customers(app)
    issued = issue(app, count=2, expires_on=date(2026, 1, 31), timezone="Europe/Prague")
    clock.set(datetime(2026, 1, 31, 22, 59, tzinfo=UTC))  # 23:59 in Prague: still valid
    assert redeem(app, issued.cards[0].code, "Alice").amount == Money(20_00, "USD")
    clock.set(datetime(2026, 1, 31, 23, 0, tzinfo=UTC))  # midnight in Prague
    assert refused(app, issued.cards[1].code, "Alice").rule.startswith("expired")


def test_a_typo_is_refused_before_any_lookup_and_does_not_count(app: App) -> None:
    alice = setup_customers(app)["Alice"]
    issued = issue(app, count=1)
    code = refill.normalize(issued.cards[0].code)
    wrong = code[:3] + ("A" if code[3] != "A" else "B") + code[4:]
    swapped = next(
        code[:i] + code[i + 1] + code[i] + code[i + 2 :]
        for i in range(len(code) - 1)
        if code[i] != code[i + 1]
    )
    statements: list[str] = []

    def seen(*args: Any) -> None:
        statements.append(args[2])

    event.listen(app.engine, "before_cursor_execute", seen)
    try:
        for typo in (wrong, swapped, code[:-1], code + "7", "U" + code[1:]):
            assert refused(app, typo, alice).rule.startswith("mistyped")
    finally:
        event.remove(app.engine, "before_cursor_execute", seen)
    assert statements == []
    assert attempts(app) == []


def test_failed_attempts_are_throttled_per_customer_and_per_source(
    app: App, clock: FixedClock
) -> None:
    ids = setup_customers(app)
    issued = issue(app, count=3)
    guess = unissued_code(issued)
    for minute in range(5):
        clock.set(T0 + timedelta(minutes=minute))
        assert refused(app, guess, "Alice", source="10.0.0.1").rule == "unknown code"
    clock.set(T0 + timedelta(minutes=5))
    # a good card is refused too while the lock lasts, and the refusal says until when
    lock = "too many failed attempts; try again after 09:15 UTC"
    assert refused(app, issued.cards[0].code, "Alice").rule == lock
    # the source is locked for everybody; Bob elsewhere is not
    assert refused(app, issued.cards[0].code, "Bob", source="10.0.0.1").rule == lock
    assert redeem(app, issued.cards[0].code, "Bob", source="10.0.0.2").amount.minor == 20_00
    assert len(attempts(app)) == 5  # throttled attempts are not recorded: the lock does not grow

    clock.set(T0 + timedelta(minutes=14, seconds=59))
    assert refused(app, issued.cards[1].code, "Alice").rule == lock
    clock.set(T0 + timedelta(minutes=15))  # the first failure has left the window
    assert redeem(app, issued.cards[1].code, "Alice", source="10.0.0.1").amount.minor == 20_00
    assert wallet(app, ids["Alice"]) == 20_00
    assert wallet(app, ids["Bob"]) == 20_00


def test_redemption_reactivates_a_deactivated_prepaid_service_at_once(
    app: App, clock: FixedClock
) -> None:
    ids = setup_customers(app)
    with app.uow() as uow:
        service_id = services.add_service(
            uow,
            spec=services.NewService(
                customer_id=customer_id_of(uow, "Alice"), plan_id=plan_id_of(uow, "Home 20")
            ),
            now=T0,
            actor=ACTOR,
        ).id
    issued = issue(app, count=2, value="20.00")
    redeem(app, issued.cards[0].code, "Alice")
    assert _service_state(app, service_id) == "active"
    assert wallet(app, ids["Alice"]) == 0  # January charged from the card

    billing.tick(app.uow, now=datetime(2026, 2, 1, 6, tzinfo=UTC))
    assert _service_state(app, service_id) == "deactivated"

    clock.set(datetime(2026, 2, 3, 10, tzinfo=UTC))
    done = redeem(app, issued.cards[1].code, "Alice")
    # the same unit of work charged the new period and reactivated the service
    assert _service_state(app, service_id) == "active"
    with app.uow() as uow:
        latest = uow.session.scalars(
            select(Charge).where(Charge.service_id == service_id).order_by(Charge.id.desc())
        ).first()
    assert latest is not None
    assert latest.period_start == date(2026, 2, 3)
    assert done.balance == Money(20_00 - latest.gross_minor, "USD")  # the rest of February
    with app.uow() as uow:
        kinds = uow.session.scalars(
            select(Event.kind).where(Event.customer_id == ids["Alice"]).order_by(Event.id)
        ).all()
    assert kinds[-2:] == ["refill_card.redeemed", "service.active"]


def _service_state(app: App, service_id: int) -> str:
    with app.uow() as uow:
        row = uow.session.get(Service, service_id)
        assert row is not None
        return row.state


# --- voiding and expiring ---------------------------------------------------------------------


def test_void_a_card_then_the_rest_of_its_batch(app: App) -> None:
    setup_customers(app)
    issued = issue(app, count=4, value="10.00")
    first, second, third, fourth = (c.serial for c in issued.cards)
    redeem(app, issued.cards[3].code, "Alice")
    with app.uow() as uow:
        assert cards.void_cards(uow, serial=first.lower(), now=T0, actor=ACTOR).serials == (first,)
    assert liability(app).ledger == Money(20_00, "USD")
    with app.uow() as uow, pytest.raises(ValidationError, match="is voided"):
        cards.void_cards(uow, serial=first, now=T0, actor=ACTOR)
    with app.uow() as uow, pytest.raises(ValidationError, match="is redeemed"):
        cards.void_cards(uow, serial=fourth, now=T0, actor=ACTOR)
    with app.uow() as uow:
        voided = cards.void_cards(uow, batch=issued.name, now=T0, actor=ACTOR, reason="stolen")
    assert voided.serials == (second, third)
    assert voided.total == {"USD": Money(20_00, "USD")}
    with app.uow() as uow, pytest.raises(ValidationError, match="no active cards"):
        cards.void_cards(uow, batch=str(issued.batch_id), now=T0, actor=ACTOR)
    with app.uow() as uow, pytest.raises(NotFound):
        cards.void_cards(uow, batch="RC99999", now=T0, actor=ACTOR)
    assert statuses(app) == {
        first: "voided",
        second: "voided",
        third: "voided",
        fourth: "redeemed",
    }
    # every void is its own entry, back to refill_card_sales; nothing is left owed
    assert balances(app)["refill_card_sales:USD"] == -10_00
    assert "refill_card_liability:USD" not in balances(app)
    assert refused(app, issued.cards[1].code, "Alice").rule == "voided"


def test_void_named_serials_all_or_none(app: App) -> None:
    setup_customers(app)
    issued = issue(app, count=4, value="10.00")
    first, second, third, fourth = (c.serial for c in issued.cards)
    redeem(app, issued.cards[3].code, "Alice")
    with app.uow() as uow, pytest.raises(ValidationError, match=f"card {fourth} is redeemed"):
        cards.void_cards(uow, serials=[first, fourth], now=T0, actor=ACTOR)
    with app.uow() as uow, pytest.raises(NotFound):
        cards.void_cards(uow, serials=[second, "RC99999-00001"], now=T0, actor=ACTOR)
    with app.uow() as uow, pytest.raises(ValidationError, match="not both"):
        cards.void_cards(uow, serials=[first], batch=issued.name, now=T0, actor=ACTOR)
    too_many = [f"RC00001-{n:05d}" for n in range(cards.MAX_VOID_SERIALS + 1)]
    with app.uow() as uow, pytest.raises(ValidationError, match="at most"):
        cards.void_cards(uow, serials=too_many, now=T0, actor=ACTOR)
    assert set(statuses(app).values()) == {"active", "redeemed"}  # the refusals wrote nothing
    with app.uow() as uow:
        voided = cards.void_cards(
            uow, serials=[third.lower(), first, third], now=T0, actor=ACTOR, reason="lost"
        )
    assert voided.serials == (first, third)
    assert voided.total == {"USD": Money(20_00, "USD")}
    assert statuses(app) == {first: "voided", second: "active", third: "voided", fourth: "redeemed"}
    with app.uow() as uow:
        logged = uow.session.scalars(
            select(Event).where(Event.kind == "refill_card.voided").order_by(Event.id)
        ).all()
        assert [(e.subject_type, e.figures["first_serial"], e.reason) for e in logged] == [
            ("refill_card", first, "lost"),
            ("refill_card", third, "lost"),
        ]
    assert liability(app).ledger == Money(10_00, "USD")


def test_listing_by_serial_start_customer_and_pages(app: App) -> None:
    ids = setup_customers(app)
    issued = issue(app, count=3, prefix="PG")
    redeem(app, issued.cards[2].code, "Bob")
    with app.uow() as uow:
        first_page = cards.list_cards(uow.session, limit=2)
        rest = cards.list_cards(uow.session, after=first_page[-1][0].id, limit=2)
        bobs = cards.list_cards(uow.session, customer_id=ids["Bob"])
        started = cards.list_cards(uow.session, serial=issued.cards[1].serial.lower()[:-1])
        nothing = cards.list_cards(uow.session, serial="PG%")
    assert [c.serial for c, _, _ in first_page + rest] == [c.serial for c in issued.cards]
    assert [(c.serial, name) for c, _, name in bobs] == [(issued.cards[2].serial, "Bob")]
    assert [c.serial for c, _, _ in started] == [c.serial for c in issued.cards]
    assert nothing == []  # a LIKE wildcard in the filter is a literal character


def test_expire_run_moves_expired_cards_to_breakage(app: App, clock: FixedClock) -> None:
    setup_customers(app)
    short = issue(app, count=3, value="10.00", expires_on=date(2026, 1, 31), prefix="JAN")
    forever = issue(app, count=2, value="25.00", prefix="NOEXP")
    redeem(app, short.cards[0].code, "Alice")
    redeem(app, forever.cards[0].code, "Bob")

    clock.set(datetime(2026, 2, 1, 9, tzinfo=UTC))
    line = liability(app)
    # expired cards stay a liability until the expire run
    assert line.ledger == line.outstanding == Money(45_00, "USD")
    assert line.awaiting_expiry == Money(20_00, "USD")
    assert line.cards_awaiting_expiry == 2
    assert line.unexpired == Money(25_00, "USD")
    assert not line.expiry_up_to_date

    with app.uow() as uow:
        report = cards.expire_cards(uow, now=clock.now(), actor=ACTOR)
    assert (report.cards, report.total) == (2, {"USD": Money(20_00, "USD")})
    line = liability(app)
    # the issue's criterion: liability equals the value of the unredeemed, unexpired cards
    assert line.ledger == line.unexpired == Money(25_00, "USD")
    assert line.expiry_up_to_date
    with app.uow() as uow:
        unredeemed_unexpired = uow.session.scalar(
            select(func.sum(RefillCard.value_minor)).where(
                RefillCard.status == "active",
                (RefillCard.expires_at.is_(None)) | (RefillCard.expires_at > clock.now()),
            )
        )
    assert unredeemed_unexpired == line.ledger.minor
    assert balances(app)["adjustments:USD"] == 20_00
    assert statuses(app)[short.cards[1].serial] == "expired"
    assert refused(app, short.cards[1].code, "Alice").rule == "expired (valid through 2026-01-31)"

    with app.uow() as uow:  # a second run finds nothing
        assert cards.expire_cards(uow, now=clock.now(), actor=ACTOR) == cards.ExpiryReport(0, {})


def test_listing_filters_by_batch_and_status(app: App) -> None:
    setup_customers(app)
    first = issue(app, count=2, prefix="A1")
    second = issue(app, count=1, prefix="B")
    redeem(app, first.cards[1].code, "Alice")
    with app.uow() as uow:
        by_batch = cards.list_cards(uow.session, batch=first.name)
        redeemed = cards.list_cards(uow.session, status="redeemed")
        assert cards.find_batch(uow.session, second.name).id == second.batch_id
        assert cards.find_batch(uow.session, "a100001").id == first.batch_id
        with pytest.raises(NotFound):
            cards.find_batch(uow.session, "B00001")  # batch 1 is A1's
        with pytest.raises(ValidationError):
            cards.list_cards(uow.session, status="lost")
    assert [c.serial for c, _, _ in by_batch] == [c.serial for c in first.cards]
    assert [(c.serial, name) for c, _, name in redeemed] == [(first.cards[1].serial, "Alice")]


# --- concurrency ------------------------------------------------------------------------------


def race(app: App, code: str, rivals: tuple[str, str]) -> list[object]:
    """Both customers redeem ``code`` at the same moment, each in its own unit of work."""
    barrier = threading.Barrier(len(rivals))
    outcomes: list[object] = []
    lock = threading.Lock()

    def attempt(customer: str) -> None:
        barrier.wait()
        try:
            result: object = redeem(app, code, customer)
        except Exception as exc:  # the caller's assertion names what happened
            result = exc
        with lock:
            outcomes.append(result)

    threads = [threading.Thread(target=attempt, args=(who,)) for who in rivals]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return outcomes


@pytest.mark.postgres_only
def test_two_concurrent_redemptions_of_one_card_give_one_success(app: App) -> None:
    """Different customers race on the card's row lock; one customer races on its own lock."""
    ids = setup_customers(app)
    issued = issue(app, count=4, value="20.00")
    pairs = [("Alice", "Bob"), ("Alice", "Alice"), ("Bob", "Alice"), ("Bob", "Bob")]
    for card, rivals in zip(issued.cards, pairs, strict=True):
        outcomes = race(app, card.code, rivals)
        wins = [o for o in outcomes if isinstance(o, cards.Redeemed)]
        losses = [o for o in outcomes if isinstance(o, ValidationError)]
        assert (len(wins), len(losses)) == (1, 1), outcomes
        assert isinstance(losses[0], Conflict)
        assert (losses[0].field, losses[0].rule) == ("code", "already redeemed")
    with app.uow() as uow:
        assert uow.session.scalar(select(func.count()).select_from(Payment)) == 4
        assert ledger.check(uow.session) == []
    assert statuses(app) == {c.serial: "redeemed" for c in issued.cards}
    assert wallet(app, ids["Alice"]) + wallet(app, ids["Bob"]) == 80_00
    assert liability(app).ledger == Money(0, "USD")


# --- the command line -------------------------------------------------------------------------

runner = CliRunner()
SECRET = "cli-refill-card-secret-0123456789abcdef"


def invoke(url: str, *args: str, secret: str | None = SECRET) -> Result:
    env = {"ISPBILL_REFILL_CARD_SECRET": secret} if secret else {}
    return runner.invoke(
        cli, ["--database-url", url, "--now", "2026-01-01T09:00:00Z", *args], env=env
    )


def ok(url: str, *args: str) -> Result:
    result = invoke(url, *args)
    assert result.exit_code == 0, (args, result.output)
    return result


def test_cli_generates_the_files_once_and_redeems_from_them(
    app: App, database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("ISPBILL_REFILL_CARD_SECRET", raising=False)
    ids = setup_customers(app)
    generate = [
        "cards", "generate", "--count", "3", "--value", "20.00", "--currency", "USD",
        "--expires", "2026-12-31", "--prefix", "SUMMER", "--out", str(tmp_path),
    ]  # fmt: skip
    result = ok(database_url, *generate)
    assert "batch SUMMER00001" in result.stdout
    assert "3 cards x 20.00 USD = 60.00 USD" in result.stdout
    csv_path, pdf_path = tmp_path / "SUMMER00001.csv", tmp_path / "SUMMER00001.pdf"
    assert pdf_path.read_bytes().startswith(b"%PDF")
    assert csv_path.stat().st_mode & 0o077 == 0  # the codes are for the operator only
    rows = list(csv.DictReader(csv_path.read_text(encoding="utf-8").splitlines()))
    assert [(r["serial"], r["value"], r["currency"], r["expires_on"]) for r in rows] == [
        (f"SUMMER00001-0000{n}", "20.00", "USD", "2026-12-31") for n in (1, 2, 3)
    ]
    assert all(refill.has_valid_check(refill.normalize(r["code"])) for r in rows)

    # the next batch's files already exist: refused, nothing issued, nothing overwritten
    (tmp_path / "SUMMER00002.csv").write_text("keep me", encoding="utf-8")
    refusal = invoke(database_url, *generate)
    assert refusal.exit_code == 2
    assert "refusing to overwrite" in refusal.stderr
    assert (tmp_path / "SUMMER00002.csv").read_text(encoding="utf-8") == "keep me"
    assert not (tmp_path / "SUMMER00002.pdf").exists()
    assert liability(app).ledger == Money(60_00, "USD")

    redeemed = ok(database_url, "cards", "redeem", rows[0]["code"], "--customer", "Alice")
    assert f"card {rows[0]['serial']} redeemed: 20.00 USD" in redeemed.stdout
    assert wallet(app, ids["Alice"]) == 20_00
    again = invoke(database_url, "cards", "redeem", rows[0]["code"], "--customer", "Bob")
    assert again.exit_code == 2
    assert "code: already redeemed" in again.stderr

    listed = ok(database_url, "cards", "list", "--json").stdout
    assert all(r["code"] not in listed for r in rows)
    assert [(c["serial"], c["status"], c["customer"]) for c in json.loads(listed)] == [
        ("SUMMER00001-00001", "redeemed", "Alice"),
        ("SUMMER00001-00002", "active", None),
        ("SUMMER00001-00003", "active", None),
    ]
    ok(database_url, "cards", "void", "SUMMER00001-00002")
    [report] = json.loads(ok(database_url, "cards", "liability", "--json").stdout)
    assert (report["ledger"], report["outstanding"], report["balanced"]) == (
        "20.00 USD",
        "20.00 USD",
        True,
    )
    assert "0 card(s) expired" in ok(database_url, "cards", "expire").stdout

    missing = invoke(
        database_url, "cards", "redeem", rows[2]["code"], "--customer", "1", secret=None
    )
    assert missing.exit_code == 2
    assert "ISPBILL_REFILL_CARD_SECRET" in missing.stderr

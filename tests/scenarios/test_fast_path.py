"""The set-based fast path writes exactly what the general path writes.

The same portfolio is built twice: one world is ticked with the fast path (PostgreSQL), the
other with it switched off; postings, charges, memos, instants, service positions, invoices and
events must be identical. The portfolio mixes services the fast path takes (one prepaid service
per customer, due for one period, with funds, across cycles, timezones and a tax profile) with
all it must leave to the general path (first charges, missing funds, two services sharing a
wallet, "active to", postpaid, several periods due at once).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import date

import pytest
from sqlalchemy import select, text

from ispbill.adapters.db import settings_store
from ispbill.adapters.db.models import LedgerTransaction
from ispbill.bootstrap import App
from ispbill.domain.errors import ValidationError
from ispbill.use_cases.billing import fast_path
from ispbill.use_cases.billing import tick as billing
from ispbill.use_cases.payments import corrections as payment_corrections

from .helpers import (
    ChargeView,
    add_class,
    add_customer,
    add_plan,
    add_service,
    at,
    charges,
    check_books,
    pay,
    state,
    wallet,
)
from .test_tick_properties import snapshot

pytestmark = pytest.mark.postgres_only
T0 = at(2026, 1, 1, 9)


def build(app: App) -> None:
    add_class(app, T0)
    add_plan(app, T0, "Home 30", "30.00")
    add_plan(app, T0, "Week 10", "10.00", cycle="7d")
    add_plan(app, T0, "TV 5", "5.00")
    for k in range(3):
        c = add_customer(app, T0, f"month-{k}", available_funds="200.00")
        add_service(app, T0, c, "Home 30", active_from=date(2026, 1, 1))
        c = add_customer(
            app, T0, f"prague-{k}", available_funds="200.00", billing_timezone="Europe/Prague"
        )
        add_service(app, T0, c, "Home 30", active_from=date(2026, 1, 1))
        c = add_customer(app, T0, f"week-{k}", available_funds="100.00", minimum_balance="5.00")
        add_service(app, T0, c, "Week 10", active_from=date(2026, 1, 1))
        c = add_customer(app, T0, f"dry-{k}", available_funds="35.00")  # runs dry in February
        add_service(app, T0, c, "Home 30", active_from=date(2026, 1, 1))
        # February: 32.00 - 30.00 leaves 2.00, under the 5.00 minimum: deactivated, not charged
        c = add_customer(app, T0, f"minimum-{k}", available_funds="62.00", minimum_balance="5.00")
        add_service(app, T0, c, "Home 30", active_from=date(2026, 1, 1))
        c = add_customer(app, T0, f"two-{k}", available_funds="200.00")  # two services, one wallet
        add_service(app, T0, c, "Home 30", active_from=date(2026, 1, 1))
        add_service(app, T0, c, "TV 5", active_from=date(2026, 1, 1))
        c = add_customer(app, T0, f"until-{k}", available_funds="200.00")
        add_service(
            app, T0, c, "Home 30", active_from=date(2026, 1, 1), active_to=date(2026, 3, 15)
        )
        c = add_customer(app, T0, f"post-{k}", balance_control="postpaid", invoicing_mode="forward")
        add_service(app, T0, c, "Home 30", active_from=date(2026, 1, 1))


def run(app: App, workers: int = 1) -> list[billing.TickReport]:
    # the first tick takes first charges (general path); the next ones are ordinary renewals;
    # the last comes after a gap, with several weekly periods due at once (general path)
    return [
        billing.tick(app.uow, now=instant, chunk_size=4, workers=workers)
        for instant in (at(2026, 1, 1, 6), at(2026, 2, 1, 6), at(2026, 3, 1, 6), at(2026, 4, 2, 6))
    ]


@pytest.mark.parametrize(
    ("workers", "range_size"),
    [(1, fast_path.RANGE_SIZE), (3, 5)],
    ids=["one-connection", "three-connections-small-ranges"],
)
def test_fast_path_writes_what_the_general_path_writes(
    app: App, twin: App, monkeypatch: pytest.MonkeyPatch, workers: int, range_size: int
) -> None:
    monkeypatch.setattr(fast_path, "RANGE_SIZE", range_size)
    build(app)
    build(twin)
    taken: list[int] = []
    original = fast_path.charge_alike_services

    def counting(*args: object, **kwargs: object) -> int:
        count = original(*args, **kwargs)  # type: ignore[arg-type]
        taken.append(count)
        return count

    monkeypatch.setattr(billing, "charge_alike_services", counting)
    fast_reports = run(app, workers)
    monkeypatch.setattr(billing, "charge_alike_services", lambda *a, **k: 0)
    general_reports = run(twin)

    assert sum(taken) >= 12, f"the fast path took too little to prove anything: {taken}"
    assert [r.charges for r in fast_reports] == [r.charges for r in general_reports]
    assert snapshot(app) == snapshot(twin)
    with app.uow() as one, twin.uow() as other:
        memo = select(
            LedgerTransaction.idempotency_key,
            LedgerTransaction.memo,
            LedgerTransaction.effective_at,
            LedgerTransaction.kind,
        )
        assert sorted(one.session.execute(memo).all()) == sorted(other.session.execute(memo).all())
    check_books(app)
    check_books(twin)


# --- a payment or a refund racing the fast path -----------------------------------------------

FEBRUARY = at(2026, 2, 1, 6)


def _blocked_by(app: App, pid: int | None = None) -> int:
    """How many sessions wait for a lock (held by ``pid`` when given)."""
    query = (
        "SELECT count(*) FROM pg_stat_activity WHERE cardinality(pg_blocking_pids(pid)) > 0"
        if pid is None
        else "SELECT count(*) FROM pg_stat_activity WHERE :pid = ANY(pg_blocking_pids(pid))"
    )
    with app.engine.connect() as connection:
        return int(connection.execute(text(query), {"pid": pid}).scalar_one())


def _wait(thread: threading.Thread, until: Callable[[], bool]) -> None:
    """Until ``until`` holds or ``thread`` ends, for at most ten seconds."""
    deadline = time.monotonic() + 10
    while thread.is_alive() and not until() and time.monotonic() < deadline:
        thread.join(timeout=0.02)


def _refund(app: App, customer: int) -> None:
    with app.uow() as uow:
        payment_corrections.refund(
            uow,
            customer_id=customer,
            amount="20.00",
            method="cash",
            reference="R-ben",
            now=FEBRUARY,
            actor="scenario",
        )


@pytest.mark.parametrize("action", ["payment", "refund"])
def test_a_payment_or_refund_committed_while_the_fast_path_runs_is_respected(
    app: App, action: str
) -> None:
    """Ann and Ben renew in one fast-path group statement. That statement is held up after it
    has started (its first charge waits on a blocker holding Ann's charge key) while Ben's
    payment charges his February period, or his refund takes the wallet under the price, and
    commits. The tick used to decide from its start-of-statement view, then lock Ben: it
    aborted on the duplicate charge key, or charged Ben's February on the stale balance and
    left his wallet at -10.00. Now it decides under the customer locks: the payment or refund
    waits for the tick (or the tick finds its work done) and every charge happens once."""
    add_class(app, T0)
    add_plan(app, T0, "Home 30", "30.00")
    ann = add_customer(app, T0, "Ann", available_funds="100.00")
    ann_home = add_service(app, T0, ann, "Home 30", active_from=date(2026, 1, 1))
    ben = add_customer(app, T0, "Ben", available_funds="70.00")
    ben_home = add_service(app, T0, ben, "Home 30", active_from=date(2026, 1, 1))
    billing.tick(app.uow, now=T0)  # the first charges; February is an ordinary renewal
    assert wallet(app, ben) == 40_00

    errors: list[BaseException] = []
    refused: list[ValidationError] = []

    def catching(work: Callable[[], object]) -> Callable[[], None]:
        def run() -> None:
            try:
                work()
            except ValidationError as exc:  # a refund the wallet no longer covers
                refused.append(exc)
            except BaseException as exc:  # surfaced below
                errors.append(exc)

        return run

    ticker = threading.Thread(target=catching(lambda: billing.tick(app.uow, now=FEBRUARY)))
    if action == "payment":
        other = threading.Thread(target=catching(lambda: pay(app, FEBRUARY, ben, "5.00", "b-1")))
    else:
        other = threading.Thread(target=catching(lambda: _refund(app, ben)))
    with app.engine.connect() as blocker:
        blocker.execute(
            text(
                "INSERT INTO ledger_transactions (idempotency_key, kind, memo, customer_id,"
                " figures, recorded_at, effective_at)"
                " VALUES (:key, 'charge', 'blocker', NULL, '{}', :at, :at)"  # no FK: no lock on Ann
            ),
            {"key": f"charge:{ann_home}:period:2026-02-01", "at": FEBRUARY},
        )
        blocker_pid = int(blocker.execute(text("SELECT pg_backend_pid()")).scalar_one())
        ticker.start()
        _wait(ticker, lambda: _blocked_by(app, blocker_pid) > 0)
        assert ticker.is_alive(), f"the tick never reached Ann's charge: {errors} {charges(app)}"
        other.start()
        _wait(other, lambda: _blocked_by(app) >= 2)  # done, or waiting for the tick's lock
        blocker.rollback()
    ticker.join(timeout=30)
    other.join(timeout=30)

    assert errors == []
    assert [(c.service, c.start) for c in charges(app, ann)] == [
        (ann_home, date(2026, 1, 1)),
        (ann_home, date(2026, 2, 1)),
    ]
    ben_charges = [(c.service, c.kind, c.start) for c in charges(app, ben)]
    if action == "payment":
        assert refused == []
        assert ben_charges == [
            (ben_home, "period", date(2026, 1, 1)),
            (ben_home, "period", date(2026, 2, 1)),
        ]
        assert wallet(app, ben) == 70_00 - 30_00 - 30_00 + 5_00
    elif refused:  # the tick charged first; the refund found 10.00 of credit
        assert "exceeds the unallocated credit" in str(refused[0])
        assert ben_charges[-1] == (ben_home, "period", date(2026, 2, 1))
        assert wallet(app, ben) == 10_00
    else:  # the refund went first; 20.00 does not cover February
        assert ben_charges == [(ben_home, "period", date(2026, 1, 1))]
        assert wallet(app, ben) == 20_00
        assert state(app, ben_home) == ("deactivated", "insufficient_funds")
    assert wallet(app, ben) >= 0
    check_books(app)


def test_the_fast_path_takes_only_the_customers_of_its_range(app: App) -> None:
    """A job per range of customers (issue 15): each call charges its own customers' services
    and nobody else's; the ranges together charge what one call over everyone charges."""
    add_class(app, T0)
    add_plan(app, T0, "Home 30", "30.00")
    people = [add_customer(app, T0, f"r-{k}", available_funds="200.00") for k in range(6)]
    homes = [add_service(app, T0, c, "Home 30", active_from=date(2026, 1, 1)) for c in people]
    billing.tick(app.uow, now=T0)  # first charges (general path); February is a renewal
    with app.uow() as uow:
        policy = settings_store.load(uow).billing_policy()
    middle = people[2]
    low_half = fast_path.charge_alike_services(
        app.uow_factory, now=FEBRUARY, policy=policy, chunk_size=2, customers=(0, middle)
    )
    assert low_half == 3
    february = {c.service for c in charges_since(app, date(2026, 2, 1))}
    assert february == set(homes[:3])
    assert (
        fast_path.charge_alike_services(
            app.uow_factory, now=FEBRUARY, policy=policy, customers=(0, middle)
        )
        == 0
    )  # already charged: nothing twice
    rest = fast_path.charge_alike_services(
        app.uow_factory, now=FEBRUARY, policy=policy, customers=(middle, people[-1])
    )
    assert rest == 3
    assert {c.service for c in charges_since(app, date(2026, 2, 1))} == set(homes)
    with pytest.raises(ValidationError, match="customers"):
        fast_path.charge_alike_services(
            app.uow_factory, now=FEBRUARY, policy=policy, customers=(5, 5)
        )
    check_books(app)


def charges_since(app: App, start: date) -> list[ChargeView]:
    return [c for c in charges(app) if c.start >= start]

"""Properties of the tick on a mixed portfolio: "everything due up to an instant happens, in
time order, exactly once" (use_cases/billing/tick.py).

* Idempotency: a second tick at the same instant changes nothing.
* Catch-up: one tick after three months of downtime writes exactly what daily ticks wrote.
* Crash: a tick that dies after its first chunk, run again, ends where a clean tick ends.
* Concurrency (PostgreSQL): two ticks at once share the customers; each service is charged
  once. A payment landing during the activation pass is never overwritten by the tick.

The comparisons use two databases built by the same calls (a second SQLite file; a second
PostgreSQL database), so ids, ledger keys and account codes coincide.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import date
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.exc import OperationalError

from ispbill.adapters.db import billing_store
from ispbill.adapters.db.models import Customer, Event, Invoice, Service
from ispbill.bootstrap import App
from ispbill.use_cases.billing import tick as billing
from ispbill.use_cases.billing.tick import TickReport

from .helpers import (
    add_class,
    add_customer,
    add_plan,
    add_service,
    at,
    charges,
    check_books,
    pay,
    postings,
    set_price,
    set_setting,
    state,
    tick,
    tick_daily,
    wallet,
)

T0 = at(2026, 1, 1, 9)
CHUNK = 3


# --- a second database built by the same calls -------------------------------------------------


# --- the portfolio -----------------------------------------------------------------------------


def build_portfolio(app: App, copies: int = 2) -> None:
    """Every kind of customer the engine knows, ``copies`` times, each created at its own
    instant (creation dates set anniversary and 30-day grids)."""
    add_class(app, T0)
    add_plan(app, T0, "Home 30", "30.00")
    add_plan(app, T0, "TV 5", "5.00")
    add_plan(app, T0, "Sub 30", "30.00", cycle="1m")
    add_plan(app, T0, "Week 10", "10.00", cycle="7d")
    add_plan(app, T0, "Multi 30", "30.00", period_months=("3:10%",))
    set_setting(app, T0, "deactivation_period_days", "20")
    # prices from a day, decided in advance: a catch-up prices each period as daily ticks do
    set_price(app, T0, "Home 30", "33.00", date(2026, 2, 15))
    set_price(app, T0, "Week 10", "12.00", date(2026, 2, 9))
    for k in range(copies):
        # prepaid, calendar month from January 10 (prorated), runs dry in March
        c = add_customer(app, at(2026, 1, 10, 8), f"pre-month-{k}", available_funds="70.00")
        add_service(app, at(2026, 1, 10, 8), c, "Home 30")
        add_service(app, at(2026, 1, 10, 8), c, "TV 5")
        # prepaid weekly with a minimum balance; dry in February, ended 20 days later
        c = add_customer(app, T0, f"pre-week-{k}", minimum_balance="5.00", available_funds="45.00")
        add_service(app, T0, c, "Week 10")
        # prepaid, own monthly cycle from January 1
        c = add_customer(app, T0, f"pre-sub-{k}", available_funds="95.00")
        add_service(app, T0, c, "Sub 30", active_from=date(2026, 1, 1))
        # postpaid forward: a monthly service and a three-month one
        c = add_customer(
            app, T0, f"post-fwd-{k}", balance_control="postpaid", invoicing_mode="forward"
        )
        add_service(app, T0, c, "Home 30", active_from=date(2026, 1, 1))
        add_service(app, T0, c, "Multi 30", active_from=date(2026, 1, 1), period_months=3)
        # postpaid backward, anniversary on the 19th, blocked by its credit limit
        created = at(2026, 1, 19, 15)
        c = add_customer(
            app,
            created,
            f"post-ann-{k}",
            balance_control="postpaid",
            invoicing_mode="backward",
            billing_cycle="monthly_anniversary",
            credit_limit="50.00",
        )
        add_service(app, created, c, "Home 30")
        # postpaid backward, 30 days from January 20, "active to" March 3
        created = at(2026, 1, 20, 15)
        c = add_customer(
            app,
            created,
            f"post-30-{k}",
            balance_control="postpaid",
            invoicing_mode="backward",
            billing_cycle="days_30",
        )
        add_service(app, created, c, "Home 30", active_to=date(2026, 3, 3))
        # postpaid backward, semimonthly in New York from January 5
        created = at(2026, 1, 5, 15)
        c = add_customer(
            app,
            created,
            f"post-semi-{k}",
            balance_control="postpaid",
            invoicing_mode="backward",
            billing_cycle="semimonthly",
            billing_timezone="America/New_York",
        )
        add_service(app, created, c, "Home 30")


def snapshot(app: App) -> dict[str, Any]:
    """Everything the engine decides, in a comparable form (storage order and recording
    instants left out; they legitimately differ between a catch-up and daily ticks)."""
    with app.uow() as uow:
        session = uow.session
        services = [
            (
                s.id,
                s.state,
                s.state_reason,
                s.state_since,
                s.billed_until,
                s.deactivated_on,
                s.next_due_at,
            )
            for s in session.scalars(select(Service).order_by(Service.id))
        ]
        customers = [
            (c.id, c.status) for c in session.scalars(select(Customer).order_by(Customer.id))
        ]
        documents = sorted(
            (i.customer_id, i.issue_date, i.due_date, i.gross_minor, i.paid_minor, i.status)
            for i in session.scalars(select(Invoice))
        )
        numbers = sorted(session.scalars(select(Invoice.number)))
        engine_events = sorted(
            (e.occurred_at, e.subject_id, e.kind, e.reason, sorted(e.figures.items()))
            for e in session.scalars(select(Event).where(Event.actor == billing.ENGINE))
        )
    return {
        "postings": sorted(postings(app)),
        "charges": sorted(charges(app)),
        "services": services,
        "customers": customers,
        "invoices": documents,
        "numbers": numbers,
        "events": engine_events,
    }


def _gapless(numbers: list[str]) -> bool:
    return numbers == [f"2026-{n:06}" for n in range(1, len(numbers) + 1)]


# --- properties ----------------------------------------------------------------------------------


def test_a_second_tick_at_the_same_instant_changes_nothing(app: App) -> None:
    build_portfolio(app)
    tick(app, T0, CHUNK)
    now = at(2026, 2, 20, 6)
    first = tick(app, now, CHUNK)
    assert first.charges > 0
    before = snapshot(app)
    ledger_before = postings(app)  # in storage order: nothing may be appended either

    again = [tick(app, now, CHUNK), tick(app, now, chunk_size=100)]
    assert [(r.charges, r.invoices, r.transitions) for r in again] == [(0, 0, {})] * 2
    assert postings(app) == ledger_before
    assert snapshot(app) == before
    check_books(app)


def test_one_tick_after_three_months_writes_what_daily_ticks_wrote(app: App, twin: App) -> None:
    """Daily ticks at 06:00 UTC from January 1 to March 31 against one tick on March 31 at
    06:00: same charges, postings, invoices, states and events (invoice numbers aside: they
    follow the order of issue, date by date or customer by customer; both are gapless)."""
    build_portfolio(app)
    build_portfolio(twin)
    tick_daily(app, date(2026, 1, 1), date(2026, 3, 31), chunk_size=CHUNK)
    report = tick(twin, at(2026, 3, 31, 6), CHUNK)

    daily, once = snapshot(app), snapshot(twin)
    assert _gapless(daily.pop("numbers"))
    assert _gapless(once.pop("numbers"))
    assert once == daily
    assert report.chunks > 2  # the catch-up really ran in chunks
    kinds = {c.kind for c in charges(twin)}
    states = {s[1] for s in once["services"]}
    assert kinds == {"period"}
    assert states == {"active", "suspended", "paused", "ended"}  # the portfolio moved
    assert check_books(app) == check_books(twin)


def test_a_tick_that_dies_after_its_first_chunk_ends_like_a_clean_one_when_rerun(
    app: App, twin: App, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The second chunk of a catch-up fails while issuing its invoices (after its charges,
    postings, events and positions were written in its transaction): that chunk leaves no
    trace, the first stays committed and consistent, and running the tick again ends exactly
    where a clean run ends, invoice numbers included (a rolled-back number is given back).

    The failure is the database's (the connection is lost), not one customer's: a customer's
    own failure is skipped and the tick goes on (test_tick_isolation.py)."""
    build_portfolio(app)
    build_portfolio(twin)
    for world in (app, twin):
        tick(world, T0, chunk_size=2)
    now = at(2026, 3, 1, 6)
    tick(app, now, chunk_size=2)

    real = billing_store._issue_invoices
    calls: list[int] = []

    def dying(*args: Any, **kwargs: Any) -> int:
        calls.append(1)
        if len(calls) == 2:
            raise OperationalError("INSERT INTO invoices ...", {}, Exception("power cut"))
        return real(*args, **kwargs)

    with twin.uow() as uow:
        due = list(
            uow.session.scalars(
                select(Customer.id)
                .where(
                    Customer.id.in_(select(Service.customer_id).where(Service.next_due_at <= now))
                )
                .order_by(Customer.id)
            )
        )
    before = {c: postings(twin, c) for c in due}
    monkeypatch.setattr(billing_store, "_issue_invoices", dying)
    with pytest.raises(OperationalError, match="power cut"):
        tick(twin, now, chunk_size=2)
    monkeypatch.undo()

    check_books(twin)
    moved = {c for c in due if postings(twin, c) != before[c]}
    assert moved
    assert moved <= set(due[:2])
    assert all(postings(twin, c) == before[c] for c in due[2:])

    rerun = tick(twin, now, chunk_size=2)
    assert rerun.charges > 0
    assert snapshot(twin) == snapshot(app)
    assert check_books(twin) == check_books(app)


@pytest.mark.postgres_only
def test_two_ticks_at_once_charge_every_service_exactly_once(app: App) -> None:
    """200 customers, two threads ticking the same instant in chunks of 20: the row locks
    (SKIP LOCKED) share the customers out; nothing is charged, invoiced or logged twice."""
    add_class(app, T0)
    add_plan(app, T0, "Home 30", "30.00")
    funded, dry, postpaid = [], [], []
    for n in range(200):
        kind = n % 4
        if kind == 3:
            c = add_customer(app, T0, f"c{n}", balance_control="postpaid")
            postpaid.append(add_service(app, T0, c, "Home 30", active_from=date(2026, 1, 1)))
        elif kind == 2:
            c = add_customer(app, T0, f"c{n}")
            dry.append(add_service(app, T0, c, "Home 30", active_from=date(2026, 1, 1)))
        else:
            c = add_customer(app, T0, f"c{n}", available_funds="30.00")
            funded.append(add_service(app, T0, c, "Home 30", active_from=date(2026, 1, 1)))

    reports: list[TickReport] = []
    errors: list[BaseException] = []
    start = threading.Barrier(2)

    def run() -> None:
        try:
            start.wait()
            reports.append(billing.tick(app.uow, now=T0, chunk_size=20))
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []

    charged = [c.service for c in charges(app)]
    assert sorted(charged) == sorted(funded + postpaid)
    assert sum(r.charges for r in reports) == len(funded) + len(postpaid) == 150
    assert sum(r.invoices for r in reports) == len(postpaid)
    assert sum(r.customers for r in reports) >= 200
    with app.uow() as uow:
        transitions = list(
            uow.session.execute(
                select(Event.subject_id, Event.kind).where(Event.actor == billing.ENGINE)
            )
        )
        numbers = sorted(uow.session.scalars(select(Invoice.number)))
    assert sorted(transitions) == sorted(
        [(s, "service.active") for s in funded + postpaid]
        + [(s, "service.deactivated") for s in dry]
    )
    assert len(numbers) == 50
    assert _gapless(numbers)
    books = check_books(app)
    assert books.revenue == 150 * 30_00


@pytest.mark.postgres_only
def test_a_payment_during_the_activation_pass_is_not_overwritten(
    app: App, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A deactivated customer with some money (10.00 of 30.00) is an activation candidate on
    every tick. A payment lands while the tick has already read that customer: it must wait for
    the tick (the customer row lock is the per-customer mutex), not be overwritten by the
    tick's stale decision. The activation pass used to claim without locking, so the tick wrote
    "deactivated" back over the payment's reactivation, whose 30.00 charge stayed taken."""
    add_class(app, T0)
    add_plan(app, T0, "Home 30", "30.00")
    ivy = add_customer(app, T0, "Ivy", available_funds="10.00")
    home = add_service(app, T0, ivy, "Home 30", active_from=date(2026, 1, 1))
    tick(app, T0)
    assert state(app, home) == ("deactivated", "insufficient_funds")

    real: Callable[..., Any] = billing.evaluate_customers
    paid_at = at(2026, 1, 5, 12)
    payer = threading.Thread(target=lambda: pay(app, paid_at, ivy, "25.00", "ivy-1"))

    def evaluate_then_pay(session: Any, ids: list[int], **kwargs: Any) -> Any:
        outcomes = real(session, ids, **kwargs)
        if ivy in ids and not payer.is_alive() and payer.ident is None:
            payer.start()
            payer.join(timeout=1.0)  # finishes at once unless the tick holds Ivy's row lock
        return outcomes

    monkeypatch.setattr(billing, "evaluate_customers", evaluate_then_pay)
    tick(app, at(2026, 1, 5, 12))
    payer.join()
    monkeypatch.undo()

    assert payer.ident is not None
    assert state(app, home) == ("active", None)
    assert [(c.kind, c.start, c.end, c.gross, c.charged_at) for c in charges(app, ivy)] == [
        ("reactivation", date(2026, 1, 5), date(2026, 2, 1), 26_13, paid_at)
    ]
    assert wallet(app, ivy) == 35_00 - 26_13
    with app.uow() as uow:
        row = uow.session.get(Service, home)
        assert row is not None
        assert (row.billed_until, row.deactivated_on) == (date(2026, 2, 1), None)
    check_books(app)

"""Two processes running the same periodic work at once (issue 15): monthly statements and the
FUP usage reset each happen exactly once.

Each test holds the first run's transaction open just before its commit (its locks taken, its
writes made), runs a second one from another connection meanwhile, then lets the first commit.
The second must neither wait for the first nor repeat its work; the counts prove it. Without
the row locks the second run read the same rows: it waited on the first's locks, then wrote
every statement (a duplicate key) or every reset event a second time.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import date, timedelta
from typing import Any

import pytest
from sqlalchemy import func, select

from ispbill.adapters.db import settings_store
from ispbill.adapters.db.models import Event, Invoice, UsageRecord
from ispbill.adapters.db.unit_of_work import UnitOfWork
from ispbill.bootstrap import App
from ispbill.use_cases.billing import tick as billing
from ispbill.use_cases.billing.reevaluation import charge_and_invoice
from ispbill.use_cases.billing.statements import issue_monthly_statements
from ispbill.use_cases.catalog import offerings as catalog
from ispbill.use_cases.network import usage
from ispbill.use_cases.payments.recording import lock_customer
from scenarios.helpers import (
    add_class,
    add_customer,
    add_plan,
    add_service,
    at,
    check_books,
    tick,
)

pytestmark = pytest.mark.postgres_only
T0 = at(2026, 1, 1, 9)
GB = 1024**3


class HeldBeforeCommit:
    """A unit-of-work factory whose first unit of work stops just before its commit until
    released, so a second run can go while the first holds its locks."""

    def __init__(self, app: App) -> None:
        self.app = app
        self.reached = threading.Event()
        self.release = threading.Event()
        self.held = False

    def __call__(self) -> UnitOfWork:
        uow = self.app.uow()
        original = uow.commit

        def commit() -> None:
            if not self.held:  # the first commit of any of them waits
                self.held = True
                self.reached.set()
                assert self.release.wait(timeout=30)
            original()

        uow.commit = commit  # type: ignore[method-assign]
        return uow


def race(app: App, run: Callable[[Callable[[], UnitOfWork]], int]) -> tuple[int, int, bool]:
    """The first run held before its commit, the second run meanwhile; returns both counts
    and whether the second finished while the first was held."""
    held = HeldBeforeCommit(app)
    results: dict[str, int] = {}
    errors: list[BaseException] = []

    def catching(name: str, factory: Callable[[], UnitOfWork]) -> Callable[[], None]:
        def go() -> None:
            try:
                results[name] = run(factory)
            except BaseException as exc:  # surfaced below
                errors.append(exc)

        return go

    first = threading.Thread(target=catching("first", held))
    first.start()
    assert held.reached.wait(timeout=30), f"the first run never reached its commit: {errors}"
    second = threading.Thread(target=catching("second", app.uow_factory))
    second.start()
    second.join(timeout=10)
    finished_while_held = not second.is_alive()
    held.release.set()
    first.join(timeout=30)
    second.join(timeout=30)
    assert errors == []
    return results["first"], results["second"], finished_while_held


def count(app: App, query: Any) -> int:
    with app.uow() as uow:
        return int(uow.session.scalar(query) or 0)


def test_two_statement_runs_at_once_issue_each_statement_once(app: App) -> None:
    add_class(app, T0)
    add_plan(app, T0, "Home 30", "30.00")
    for k in range(5):
        customer = add_customer(app, T0, f"pat-{k}", available_funds="100.00")
        add_service(app, T0, customer, "Home 30", active_from=date(2026, 1, 1))
    with app.uow() as uow:
        settings_store.set_value(
            uow, key="prepaid_monthly_statement", raw="true", now=T0, actor="test"
        )
    # the January charges, without the tick (whose statement pass is what is raced)
    tick(app, T0)
    assert count(app, select(func.count()).select_from(Invoice)) == 0
    with app.uow() as uow:
        operator = settings_store.load(uow)
    february = at(2026, 2, 1, 6)

    def statements(factory: Callable[[], UnitOfWork]) -> int:
        return issue_monthly_statements(factory, now=february, operator=operator)

    first, second, finished_while_held = race(app, statements)
    assert finished_while_held, "the second run waited for the first one's locks"
    assert (first, second) == (5, 0)
    assert count(app, select(func.count()).select_from(Invoice)) == 5
    assert count(app, select(func.count(func.distinct(Invoice.customer_id)))) == 5
    assert statements(app.uow_factory) == 0  # and a later run finds nothing left
    check_books(app)


def test_two_fup_resets_at_once_reset_each_period_once(app: App) -> None:
    add_class(app, T0)
    with app.uow() as uow:
        catalog.add_plan(
            uow,
            spec=catalog.NewPlan(
                name="Capped",
                price="30.00",
                currency="USD",
                download="50M",
                upload="10M",
                fup_tiers=("1GB:throttle:5M/1M",),
            ),
            now=T0,
            actor="test",
        )
    services = []
    for k in range(5):
        customer = add_customer(app, T0, f"fup-{k}", available_funds="100.00")
        services.append(add_service(app, T0, customer, "Capped", active_from=date(2026, 1, 1)))
    tick(app, T0)
    for service in services:
        with app.uow() as uow:
            uow.begin_write()
            usage.add_usage(uow, service_id=service, used_bytes=2 * GB, at=T0, now=T0, actor="test")
            uow.commit()
    throttled = select(func.count()).select_from(UsageRecord).where(UsageRecord.tier == 1)
    assert count(app, throttled) == 5
    later = T0 + timedelta(days=40)

    def reset(factory: Callable[[], UnitOfWork]) -> int:
        with factory() as uow:
            return usage.reset_finished_periods(uow, now=later, actor="test")

    first, second, finished_while_held = race(app, reset)
    assert finished_while_held, "the second reset waited for the first one's locks"
    assert (first, second) == (5, 0)
    resets = select(func.count()).select_from(Event).where(Event.kind == "service.fup_reset")
    assert count(app, resets) == 5
    assert (
        count(
            app,
            select(func.count(func.distinct(Event.subject_id))).where(
                Event.kind == "service.fup_reset"
            ),
        )
        == 5
    )
    with app.uow() as uow:
        assert usage.reset_finished_periods(uow, now=later, actor="test") == 0
    check_books(app)


def test_the_ticks_invoice_numbers_are_taken_at_its_commit_not_held_through_its_chunk(
    app: App,
) -> None:
    """The tick's chunk issues three postpaid invoices and is held before its commit; a
    Charge & Invoice of another customer, in the same number series and year, commits
    meanwhile (the chunk used to hold the series counter from its first invoice to its
    commit). The numbers stay gapless and in order: the Charge & Invoice took 1, the chunk
    2 to 4 at its commit."""
    add_class(app, T0)
    add_plan(app, T0, "Home 30", "30.00")
    pat = add_customer(app, T0, "Pat", available_funds="100.00")
    add_service(app, T0, pat, "Home 30", active_from=date(2026, 1, 1))
    tick(app, T0)  # Pat's January, uninvoiced (prepaid)
    for k in range(3):
        customer = add_customer(app, T0, f"post-{k}", balance_control="postpaid")
        add_service(app, T0, customer, "Home 30", active_from=date(2026, 1, 1))
    later = T0 + timedelta(hours=1)

    def charge_pat() -> str | None:
        with app.uow() as uow:
            customer = lock_customer(uow, pat)
            return charge_and_invoice(
                uow, customer=customer, now=later, actor="test"
            ).invoice_number

    def ticking(factory: Callable[[], UnitOfWork]) -> int:
        return billing.tick(factory, now=later).invoices

    held = HeldBeforeCommit(app)
    results: list[object] = []
    errors: list[BaseException] = []

    def run(work: Callable[[], object]) -> Callable[[], None]:
        def go() -> None:
            try:
                results.append(work())
            except BaseException as exc:  # surfaced below
                errors.append(exc)

        return go

    ticker = threading.Thread(target=run(lambda: ticking(held)))
    ticker.start()
    assert held.reached.wait(timeout=30), errors
    other = threading.Thread(target=run(charge_pat))
    other.start()
    other.join(timeout=10)
    finished_while_held = not other.is_alive()
    held.release.set()
    ticker.join(timeout=30)
    other.join(timeout=30)
    assert errors == []
    assert finished_while_held, "Charge & Invoice waited for the tick's invoice counter"
    with app.uow() as uow:
        numbers = list(
            uow.session.execute(
                select(Invoice.customer_id, Invoice.number).order_by(Invoice.number)
            )
        )
    assert len(numbers) == 4
    assert not any(n.startswith("~") for _, n in numbers)
    sequence = [int(n.rsplit("-", 1)[-1]) for _, n in numbers]
    assert sequence == [1, 2, 3, 4]
    assert numbers[0][0] == pat
    check_books(app)

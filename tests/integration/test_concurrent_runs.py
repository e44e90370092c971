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
from ispbill.use_cases.billing.statements import issue_monthly_statements
from ispbill.use_cases.catalog import offerings as catalog
from ispbill.use_cases.network import usage
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
        if not self.held:
            self.held = True
            original = uow.commit

            def commit() -> None:
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

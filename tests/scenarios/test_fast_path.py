"""The set-based fast path writes exactly what the general path writes.

The same portfolio is built twice: one world is ticked with the fast path (PostgreSQL), the
other with it switched off; postings, charges, memos, instants, service positions, invoices and
events must be identical. The portfolio mixes services the fast path takes (one prepaid service
per customer, due for one period, with funds, across cycles, timezones and a tax profile) with
all it must leave to the general path (first charges, missing funds, two services sharing a
wallet, "active to", postpaid, several periods due at once).
"""

from __future__ import annotations

from datetime import date

import pytest
from sqlalchemy import select

from ispbill.adapters.db.models import LedgerTransaction
from ispbill.bootstrap import App
from ispbill.services import billing, fast_path

from .helpers import (
    add_class,
    add_customer,
    add_plan,
    add_service,
    at,
    check_books,
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

    monkeypatch.setattr(fast_path, "charge_alike_services", counting)
    fast_reports = run(app, workers)
    monkeypatch.setattr(fast_path, "charge_alike_services", lambda *a, **k: 0)
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

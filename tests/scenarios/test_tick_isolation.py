"""One customer's bad data never stops the tick for the others (both databases).

Issue 13: a service stored with "active to" 9999-12-31 made every later tick abort with
``OverflowError``, so nobody in that chunk or after it was billed. The bad rows here are written
with SQL, past every validation, the way an old version, an import or a hand edit could leave
them. The tick must skip that customer (rolled back, a ``tick.customer_failed`` event, named in
the report), bill everyone else, and bill the customer too once the data is fixed.
"""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest
from sqlalchemy import select, text

from ispbill.adapters.db.models import Event
from ispbill.bootstrap import App
from ispbill.use_cases.billing import fast_path
from ispbill.use_cases.billing import tick as billing

from .helpers import (
    add_class,
    add_customer,
    add_plan,
    add_service,
    at,
    charges,
    check_books,
    state,
    tick,
    wallet,
)

T0 = at(2026, 1, 1, 9)
JANUARY = at(2026, 1, 1, 10)
FEBRUARY = at(2026, 2, 1, 10)


def build(app: App) -> dict[str, tuple[int, int]]:
    """Six prepaid customers and one postpaid, each with a Home 30 service from January 1:
    name -> (customer id, service id)."""
    add_class(app, T0)
    add_plan(app, T0, "Home 30", "30.00")
    made = {}
    for name in ("a", "b", "c", "d", "e", "f"):
        customer = add_customer(app, T0, name, available_funds="100.00")
        made[name] = (customer, add_service(app, T0, customer, "Home 30", active_from=T0.date()))
    customer = add_customer(app, T0, "post", balance_control="postpaid", invoicing_mode="forward")
    made["post"] = (customer, add_service(app, T0, customer, "Home 30", active_from=T0.date()))
    return made


def sql(app: App, statement: str, **params: Any) -> None:
    with app.engine.begin() as connection:
        connection.execute(text(statement), params)


def failures(app: App) -> list[tuple[int | None, str, str, str]]:
    with app.uow() as uow:
        rows = uow.session.scalars(
            select(Event).where(Event.kind == billing.CUSTOMER_FAILED).order_by(Event.id)
        )
        return [(e.customer_id, e.actor, e.figures["stage"], e.reason) for e in rows]


def test_a_service_active_to_9999_is_skipped_and_the_others_are_billed(app: App) -> None:
    made = build(app)
    bad_customer, bad_service = made["c"]
    sql(app, "UPDATE services SET active_to = '9999-12-31' WHERE id = :id", id=bad_service)

    report = tick(app, JANUARY)  # chunks of two: the bad customer shares one with "d"

    assert [(s.customer_id, s.stage) for s in report.skipped] == [(bad_customer, "decide")]
    assert report.skipped[0].error == "OverflowError: date value out of range"
    billed = {c.service for c in charges(app)}
    assert billed == {service for name, (_, service) in made.items() if name != "c"}
    assert report.customers == 6
    assert state(app, bad_service) == ("pending", None)
    assert wallet(app, bad_customer) == 10000  # nothing taken
    assert wallet(app, made["d"][0]) == 7000
    [event] = failures(app)
    assert event == (bad_customer, "engine", "decide", "OverflowError: date value out of range")
    check_books(app)

    # every tick tries again (and says so again) until the data is fixed; then it is billed
    assert [s.customer_id for s in tick(app, JANUARY).skipped] == [bad_customer]
    assert len(failures(app)) == 2
    sql(app, "UPDATE services SET active_to = NULL WHERE id = :id", id=bad_service)
    again = tick(app, JANUARY)
    assert (again.skipped, again.charges) == ([], 1)
    assert state(app, bad_service) == ("active", None)
    check_books(app)


def test_a_customer_whose_writes_fail_is_rolled_back_alone(
    app: App, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The chunk's batched write fails: it is redone customer by customer, each in a savepoint,
    and only the customer whose write fails is left out, with none of its rows behind."""
    made = build(app)
    bad_customer = made["b"][0]
    real = billing.store_outcomes

    def store(uow: Any, outcomes: Any, **kwargs: Any) -> int:
        invoices = real(uow, outcomes, **kwargs)  # writes first, then fails: a rollback test
        if any(o.customer_id == bad_customer for o in outcomes):
            raise ValueError("cannot store this customer")
        return invoices

    monkeypatch.setattr(billing, "store_outcomes", store)
    report = tick(app, JANUARY, chunk_size=3)

    assert [(s.customer_id, s.stage) for s in report.skipped] == [(bad_customer, "store")]
    assert charges(app, bad_customer) == []
    assert wallet(app, bad_customer) == 10000
    assert state(app, made["b"][1]) == ("pending", None)
    assert {c.service for c in charges(app)} == {
        service for name, (_, service) in made.items() if name != "b"
    }
    assert failures(app) == [
        (bad_customer, "engine", "store", "ValueError: cannot store this customer")
    ]
    check_books(app)


def test_a_customer_that_cannot_be_loaded_is_skipped(app: App) -> None:
    """A timezone that the installed tz database no longer knows fails the chunk's batched load;
    the customers are then loaded one by one and only that one is skipped."""
    made = build(app)
    bad_customer = made["e"][0]
    sql(
        app,
        "UPDATE customers SET billing_timezone = 'Mars/Olympus' WHERE id = :id",
        id=bad_customer,
    )

    report = tick(app, JANUARY, chunk_size=10)

    assert [(s.customer_id, s.stage) for s in report.skipped] == [(bad_customer, "decide")]
    assert "Mars/Olympus" in report.skipped[0].error
    assert len(charges(app)) == 6
    assert charges(app, bad_customer) == []
    check_books(app)


@pytest.mark.postgres_only
def test_the_fast_path_leaves_a_bad_customer_to_the_general_path(
    app: App, monkeypatch: pytest.MonkeyPatch
) -> None:
    """February's renewals go through the set-based fast path; a customer whose timezone is gone
    makes its group undecidable: the fast path still charges the others, and the general path
    skips and reports that one customer."""
    made = build(app)
    assert tick(app, JANUARY).skipped == []
    bad_customer = made["a"][0]
    sql(
        app,
        "UPDATE customers SET billing_timezone = 'Mars/Olympus' WHERE id = :id",
        id=bad_customer,
    )
    taken: list[int] = []
    original = fast_path.charge_alike_services

    def counting(*args: Any, **kwargs: Any) -> int:
        taken.append(original(*args, **kwargs))
        return taken[-1]

    monkeypatch.setattr(billing, "charge_alike_services", counting)
    report = tick(app, FEBRUARY)

    assert taken == [5], "the other prepaid renewals go through the fast path"
    assert [(s.customer_id, s.stage) for s in report.skipped] == [(bad_customer, "decide")]
    february = {c.service for c in charges(app) if c.start == date(2026, 2, 1)}
    assert february == {service for name, (_, service) in made.items() if name != "a"}
    assert [e[:3] for e in failures(app)] == [(bad_customer, "engine", "decide")]
    check_books(app)

"""A customer's timezone, cycle or invoicing mode edited while a service runs takes effect from
the customer's next billing period (issue 17, item 1): the current period keeps its terms, the
tick applies the change before it bills the next one, and a planned change can be cancelled or
replaced until then."""

from __future__ import annotations

from datetime import date
from fractions import Fraction

import pytest

from ispbill.adapters.db.models import Customer
from ispbill.bootstrap import App
from ispbill.domain.errors import ValidationError
from ispbill.domain.ranges import IdRange
from ispbill.use_cases.billing import customer_pending as pending
from ispbill.use_cases.catalog.customer_edits import CustomerChanges, update_customer

from .helpers import (
    ACTOR,
    add_class,
    add_customer,
    add_plan,
    add_service,
    at,
    charges,
    check_books,
    events,
    tick,
    tick_daily,
)

T0 = at(2025, 12, 20, 9)
JAN1, FEB1, MAR1, APR1 = date(2026, 1, 1), date(2026, 2, 1), date(2026, 3, 1), date(2026, 4, 1)
EDIT = at(2026, 1, 10, 10)


def _world(app: App, **terms: str) -> tuple[int, int]:
    add_class(app, T0)
    add_plan(app, T0, "Home 31", "31.00")
    pia = add_customer(app, T0, "Pia", **terms)
    home = add_service(app, T0, pia, "Home 31", active_from=JAN1)
    tick(app, at(2026, 1, 1, 6))
    return pia, home


def _edit(app: App, customer: int, **changes: str) -> None:
    with app.uow() as uow:
        update_customer(
            uow,
            customer_id=customer,
            changes=CustomerChanges(**changes),  # type: ignore[arg-type]
            now=EDIT,
            actor=ACTOR,
            reason="asked",
        )


def _terms(app: App, customer: int) -> tuple[str, int | None, str, str]:
    with app.uow() as uow:
        row = uow.session.get(Customer, customer)
        assert row is not None
        return row.cycle_kind, row.cycle_anchor_day, row.billing_timezone, row.invoicing_mode


def _pending(app: App, customer: int) -> list[pending.PendingView]:
    with app.uow() as uow:
        return pending.pending_of_customer(uow, customer)


def test_a_cycle_change_keeps_the_period_and_bills_the_new_cycle_from_the_next(app: App) -> None:
    """Monthly on the 1st, switched on 10 January to an anniversary cycle (the 10th): January
    stays as charged; from 1 February the new cycle: 1-10 February prorated over its period
    (10 January - 10 February, 31 days), then full periods from the 10th."""
    pia, home = _world(app, available_funds="200.00")
    _edit(app, pia, billing_cycle="monthly_anniversary")
    [planned] = _pending(app, pia)
    assert (planned.field, planned.old_value, planned.new_value, planned.effective_on) == (
        "billing_cycle",
        "monthly:1",
        "monthly_anniversary:1",
        FEB1,
    )
    assert planned.due_at == at(2026, 2, 1)
    assert _terms(app, pia)[:2] == ("monthly", None)  # not yet: January is charged monthly
    tick_daily(app, date(2026, 1, 11), date(2026, 1, 31))
    assert _terms(app, pia)[:2] == ("monthly", None)
    tick_daily(app, FEB1, date(2026, 3, 11))
    assert _terms(app, pia)[:2] == ("monthly_anniversary", 10)
    assert _pending(app, pia) == []
    assert [c[:6] for c in charges(app, pia)] == [
        (home, "period", JAN1, FEB1, 1, 31_00),
        (home, "period", FEB1, date(2026, 2, 10), Fraction(9, 31), 9_00),
        (home, "period", date(2026, 2, 10), date(2026, 3, 10), 1, 31_00),
        (home, "period", date(2026, 3, 10), date(2026, 4, 10), 1, 31_00),
    ]
    changes = events(app, pia, prefix="customer.change")
    assert [(e.kind, e.figures["old"], e.figures["new"]) for e in changes] == [
        ("customer.change_planned", "monthly:1", "monthly_anniversary:1"),
        ("customer.change_applied", "monthly:1", "monthly_anniversary:1"),
    ]
    assert changes[1].at == at(2026, 2, 1, 6)
    check_books(app)


def test_a_timezone_change_applies_from_the_next_period(app: App) -> None:
    """UTC, switched to Auckland (UTC+13 in summer): January stays as charged in UTC; the next
    period's dates are the same, and in Auckland they begin sooner: February at 31 January
    11:00 UTC, March at 28 February 11:00 UTC."""
    pia, home = _world(app, available_funds="200.00")
    _edit(app, pia, billing_timezone="Pacific/Auckland")
    [planned] = _pending(app, pia)
    assert (planned.effective_on, planned.due_at) == (FEB1, at(2026, 1, 31, 11))
    tick(app, at(2026, 1, 31, 10, 30))  # 23:30 on 31 January in Auckland
    assert len(charges(app, pia)) == 1
    assert _terms(app, pia)[2] == "UTC"
    tick(app, at(2026, 1, 31, 11, 30))  # 00:30 on 1 February in Auckland
    assert _terms(app, pia)[2] == "Pacific/Auckland"
    tick(app, at(2026, 2, 28, 10, 30))  # 23:30 in Auckland: March not yet
    assert len(charges(app, pia)) == 2
    tick(app, at(2026, 2, 28, 11, 30))  # 00:30 on 1 March in Auckland
    assert [c[:7] for c in charges(app, pia)] == [
        (home, "period", JAN1, FEB1, 1, 31_00, at(2026, 1, 1)),
        (home, "period", FEB1, MAR1, 1, 31_00, at(2026, 1, 31, 11)),  # Auckland's midnights
        (home, "period", MAR1, APR1, 1, 31_00, at(2026, 2, 28, 11)),
    ]
    check_books(app)


def test_a_timezone_change_westward_starts_the_next_period_later(app: App) -> None:
    """UTC to New York (UTC-5): the change applies at UTC midnight on 1 February, February is
    charged at New York's midnight (05:00 UTC), not before."""
    pia, home = _world(app, available_funds="200.00")
    _edit(app, pia, billing_timezone="America/New_York")
    [planned] = _pending(app, pia)
    assert planned.due_at == at(2026, 2, 1)
    tick(app, at(2026, 2, 1, 4, 30))
    assert _terms(app, pia)[2] == "America/New_York"
    assert len(charges(app, pia)) == 1
    tick(app, at(2026, 2, 1, 5, 30))
    assert charges(app, pia)[-1][:7] == (home, "period", FEB1, MAR1, 1, 31_00, at(2026, 2, 1, 5))
    check_books(app)


def test_forward_to_backward_invoicing_from_the_next_period(app: App) -> None:
    """Postpaid, charged in advance; switched to arrears: January was charged on 1 January,
    February is charged at its end (1 March), not on 1 February."""
    pia, home = _world(app, balance_control="postpaid", credit_limit="500")
    _edit(app, pia, invoicing_mode="backward")
    assert _terms(app, pia)[3] == "forward"
    tick_daily(app, date(2026, 1, 11), date(2026, 3, 1))
    assert _terms(app, pia)[3] == "backward"
    assert [c[:7] for c in charges(app, pia)] == [
        (home, "period", JAN1, FEB1, 1, 31_00, at(2026, 1, 1)),
        (home, "period", FEB1, MAR1, 1, 31_00, at(2026, 3, 1)),
    ]
    check_books(app)


def test_backward_to_forward_bills_the_old_period_first(app: App) -> None:
    """In arrears, switched to in advance: on 1 February the tick first charges January (its
    end has come, on the old terms), then applies the change and charges February ahead."""
    pia, home = _world(
        app, balance_control="postpaid", credit_limit="500", invoicing_mode="backward"
    )
    assert charges(app, pia) == []
    _edit(app, pia, invoicing_mode="forward")
    report = tick(app, at(2026, 2, 1, 6))
    assert report.pending_changes == 1
    tick(app, at(2026, 3, 1, 6))
    assert [c[:7] for c in charges(app, pia)] == [
        (home, "period", JAN1, FEB1, 1, 31_00, at(2026, 2, 1)),
        (home, "period", FEB1, MAR1, 1, 31_00, at(2026, 2, 1)),
        (home, "period", MAR1, APR1, 1, 31_00, at(2026, 3, 1)),
    ]
    check_books(app)


def test_cancel_and_replace_a_planned_change(app: App) -> None:
    pia, home = _world(app, available_funds="200.00")
    _edit(app, pia, billing_cycle="weekly")
    _edit(app, pia, billing_cycle="semimonthly")  # replaces the weekly one
    [planned] = _pending(app, pia)
    assert planned.new_value == "semimonthly:1"
    with app.uow() as uow:
        cancelled = pending.cancel_change(
            uow, change_id=planned.id, now=EDIT, actor=ACTOR, reason="changed their mind"
        )
    assert cancelled.status == "cancelled"
    with pytest.raises(ValidationError) as twice, app.uow() as uow:
        pending.cancel_change(uow, change_id=planned.id, now=EDIT, actor=ACTOR)
    assert twice.value.field == "change"
    assert _pending(app, pia) == []
    _edit(app, pia, invoicing_mode="backward")
    # the current values again (as the console's form sends them): the planned change stays
    _edit(app, pia, invoicing_mode="forward", billing_cycle="monthly", billing_timezone="UTC")
    [kept] = _pending(app, pia)
    assert (kept.field, kept.new_value) == ("invoicing_mode", "backward")
    with app.uow() as uow:
        pending.cancel_change(uow, change_id=kept.id, now=EDIT, actor=ACTOR)
    tick_daily(app, FEB1, date(2026, 2, 2))
    assert _terms(app, pia)[:2] == ("monthly", None)
    assert [c[:6] for c in charges(app, pia)] == [
        (home, "period", JAN1, FEB1, 1, 31_00),
        (home, "period", FEB1, MAR1, 1, 31_00),
    ]
    kinds = [e.kind for e in events(app, pia, prefix="customer.change")]
    assert kinds == [
        "customer.change_planned",
        "customer.change_cancelled",  # replaced
        "customer.change_planned",
        "customer.change_cancelled",
        "customer.change_planned",
        "customer.change_cancelled",
    ]
    check_books(app)


def test_a_range_tick_applies_only_its_customers_changes(app: App) -> None:
    pia, _home = _world(app, available_funds="200.00")
    _edit(app, pia, billing_timezone="Europe/Prague")
    due = at(2026, 2, 1, 6)
    others = IdRange(pia + 1, pia + 10)
    assert pending.apply_due(app.uow, now=due, actor=ACTOR, within=others) == 0
    assert _terms(app, pia)[2] == "UTC"
    assert pending.apply_due(app.uow, now=due, actor=ACTOR, within=IdRange(pia, pia)) == 1
    assert _terms(app, pia)[2] == "Europe/Prague"


def test_with_no_service_running_the_edit_applies_at_once(app: App) -> None:
    add_class(app, T0)
    add_plan(app, T0, "Home 31", "31.00")
    pia = add_customer(app, T0, "Pia", available_funds="100.00")
    add_service(app, T0, pia, "Home 31", active_from=date(2026, 3, 1))  # not started yet
    _edit(app, pia, billing_timezone="Europe/Prague", billing_cycle="weekly")
    assert _terms(app, pia)[:3] == ("weekly", None, "Europe/Prague")
    assert _pending(app, pia) == []

"""Scheduled changes (issue 17, item 3) through the books: a plan change at the end of the
period switches without a credit note, a termination's last day counts as used, a planned
change is cancellable until the tick carries it out, and a refused one is marked failed."""

from __future__ import annotations

from datetime import date

import pytest

from ispbill.bootstrap import App
from ispbill.domain.errors import ValidationError
from ispbill.domain.ranges import IdRange
from ispbill.use_cases.billing import scheduled_changes as scheduled
from ispbill.use_cases.billing.plan_changes import terminate_service
from ispbill.use_cases.catalog.name_lookups import plan_id_of

from .helpers import (
    ACTOR,
    ChargeView,
    add_class,
    add_customer,
    add_plan,
    add_service,
    at,
    charges,
    check_books,
    events,
    state,
    tick,
    wallet,
)

T0 = at(2026, 3, 20, 9)
APRIL = at(2026, 4, 1, 6)
MID = at(2026, 4, 11, 10)
MAY = at(2026, 5, 1, 6)
APR1, MAY1, JUN1 = date(2026, 4, 1), date(2026, 5, 1), date(2026, 6, 1)


def _world(app: App, funds: str = "200.00") -> tuple[int, int]:
    add_class(app, T0)
    add_plan(app, T0, "Home 30", "30.00")
    add_plan(app, T0, "Home 45", "45.00")
    pia = add_customer(app, T0, "Pia", available_funds=funds)
    home = add_service(app, T0, pia, "Home 30", active_from=APR1)
    tick(app, APRIL)
    return pia, home


def _plan(app: App, name: str) -> int:
    with app.uow() as uow:
        return plan_id_of(uow, name)


def test_plan_change_at_period_end_switches_without_a_credit_note(app: App) -> None:
    pia, home = _world(app)
    with app.uow() as uow:
        planned = scheduled.schedule_plan_change(
            uow, service_id=home, plan_id=_plan(app, "Home 45"), now=MID, actor=ACTOR
        )
    assert (planned.effective_on, planned.status, planned.plan) == (MAY1, "planned", "Home 45")
    with pytest.raises(ValidationError) as twice, app.uow() as uow:
        scheduled.schedule_termination(uow, service_id=home, now=MID, actor=ACTOR)
    assert twice.value.field == "service"
    report = tick(app, MAY)
    assert report.scheduled_changes == 1
    assert [c[:6] for c in charges(app, pia)] == [
        (home, "period", APR1, MAY1, 1, 30_00),
        (home, "period", MAY1, JUN1, 1, 45_00),
    ]
    assert wallet(app, pia) == 125_00
    with app.uow() as uow:
        [done] = scheduled.list_scheduled(uow, service_id=home)
    assert done.status == "done"
    kinds = [
        e.kind
        for e in events(app, pia)
        if e.kind in ("service.change_scheduled", "service.plan_changed")
    ]
    assert kinds == ["service.change_scheduled", "service.plan_changed"]
    check_books(app)


def test_termination_today_counts_today_as_used_and_is_cancellable(app: App) -> None:
    pia, home = _world(app)
    with app.uow() as uow:
        planned = scheduled.schedule_termination(uow, service_id=home, now=MID, actor=ACTOR)
    assert (planned.last_day, planned.effective_on) == (date(2026, 4, 11), date(2026, 4, 12))
    with app.uow() as uow:
        cancelled = scheduled.cancel_scheduled(
            uow, change_id=planned.id, now=MID, actor=ACTOR, reason="customer stays"
        )
    assert cancelled.status == "cancelled"
    assert state(app, home) == ("active", None)
    with app.uow() as uow:
        again = scheduled.schedule_termination(
            uow, service_id=home, last_day=date(2026, 4, 20), now=MID, actor=ACTOR
        )
    tick(app, at(2026, 4, 21, 6))
    assert state(app, home)[0] == "ended"
    # 20 of April's 30 days used: the other 10 (10.00) credited back
    assert wallet(app, pia) == 180_00
    assert ChargeView(home, "refund", date(2026, 4, 21), MAY1, charges(app, pia)[-1].quantity, 10_00,
                      at(2026, 4, 21, 6), True) == charges(app, pia)[-1]  # fmt: skip
    with app.uow() as uow:
        assert [c.status for c in scheduled.list_scheduled(uow, service_id=home)] == [
            "done",
            "cancelled",
        ]
    assert again.last_day == date(2026, 4, 20)
    check_books(app)


def test_a_refused_change_is_marked_failed(app: App) -> None:
    pia, home = _world(app)
    with pytest.raises(ValidationError) as past, app.uow() as uow:
        scheduled.schedule_plan_change(
            uow, service_id=home, plan_id=_plan(app, "Home 45"), on=date(2026, 4, 11),
            now=MID, actor=ACTOR,
        )  # fmt: skip
    assert past.value.field == "on"
    with app.uow() as uow:
        scheduled.schedule_plan_change(
            uow, service_id=home, plan_id=_plan(app, "Home 45"), on=date(2026, 4, 21),
            now=MID, actor=ACTOR,
        )  # fmt: skip
    # the service is terminated by hand before the change is due
    with app.uow() as uow:
        terminate_service(uow, service_id=home, now=at(2026, 4, 15, 9), actor=ACTOR)
    tick(app, at(2026, 4, 21, 6))
    with app.uow() as uow:
        [failed] = scheduled.list_scheduled(uow, service_id=home)
    assert failed.status == "failed"
    assert "ended" in (failed.note or "")
    assert [e.kind for e in events(app, pia) if e.kind == "service.change_failed"] == [
        "service.change_failed"
    ]
    check_books(app)


def test_a_range_job_carries_out_only_its_own_customers_changes(app: App) -> None:
    pia, home = _world(app)
    with app.uow() as uow:
        scheduled.schedule_plan_change(
            uow, service_id=home, plan_id=_plan(app, "Home 45"), now=MID, actor=ACTOR
        )
    others = IdRange(pia + 1, pia + 1000)
    assert scheduled.carry_out_due(app.uow, now=MAY, actor=ACTOR, within=others) == 0
    with app.uow() as uow:
        assert [c.status for c in scheduled.list_scheduled(uow, service_id=home)] == ["planned"]
    mine = IdRange(pia, pia)
    assert scheduled.carry_out_due(app.uow, now=MAY, actor=ACTOR, within=mine) == 1
    with app.uow() as uow:
        assert [c.status for c in scheduled.list_scheduled(uow, service_id=home)] == ["done"]

"""ISPadmin collections (seed 002) as time travel through the use cases: the non-payer policy in
the tick and after payments, manual suspensions with planned and repeating windows, suspended
invoicing, and the promise to pay. The books are checked after every scenario.

Every customer here is postpaid, billed monthly in advance (forward) from 1 January 2026 at
30.00; an invoice issued on day D is due D + 14 (``payment_terms_days``).
"""

from __future__ import annotations

from datetime import date, datetime
from fractions import Fraction
from typing import Any

import pytest
from sqlalchemy import select

from ispbill.adapters.db.models import Invoice, OutboxCommand, Service
from ispbill.bootstrap import App
from ispbill.domain.errors import Conflict, ValidationError
from ispbill.use_cases.catalog.name_lookups import customer_class_id_of
from ispbill.use_cases.collections import collection_policy, suspensions
from ispbill.use_cases.service_lifecycle.explain import explain_service

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
    invoices,
    pay,
    set_setting,
    state,
    tick,
)

JAN1 = at(2026, 1, 1, 9)
ACTIVE = ("active", None)
NON_PAYER = ("suspended", "non_payer")


def policy(app: App, now: datetime, klass: str | None = None, **changes: Any) -> None:
    raw = {
        k: (None if v is None else str(v).lower() if isinstance(v, bool) else str(v))
        for k, v in changes.items()
    }
    with app.uow() as uow:
        collection_policy.set_values(
            uow,
            changes=raw,
            customer_class_id=customer_class_id_of(uow, klass) if klass else None,
            now=now,
            actor=ACTOR,
        )


def debtor(app: App, name: str = "Dan", price: str = "30.00", **terms: Any) -> tuple[int, int]:
    """A postpaid forward customer whose first invoice (30.00) is issued on 1 January, due on
    the 15th; returns (customer, service)."""
    add_class(app, JAN1)
    add_plan(app, JAN1, "Home", price)
    customer = add_customer(
        app, JAN1, name, balance_control="postpaid", invoicing_mode="forward", **terms
    )
    service = add_service(app, JAN1, customer, "Home", active_from=date(2026, 1, 1))
    tick(app, JAN1)
    assert invoices(app, customer)[0][:4] == (
        date(2026, 1, 1),
        int(price.replace(".", "")),
        0,
        "issued",
    )
    return customer, service


def invoices_numbers(app: App, customer: int) -> list[str]:

    with app.uow() as uow:
        return list(
            uow.session.scalars(
                select(Invoice.number).where(Invoice.customer_id == customer).order_by(Invoice.id)
            )
        )


def suspended_events(app: App, customer: int) -> list[tuple[str, str, datetime]]:
    return [
        (e.kind, e.reason, e.at)
        for e in events(app, customer)
        if e.kind
        in ("service.suspended", "service.active", "service.throttled", "service.unthrottled")
    ]


# -- the non-payer policy -------------------------------------------------------------------


def test_fourteen_days_after_due_suspends_on_day_15_not_day_14(app: App) -> None:
    customer, service = debtor(app)
    policy(app, JAN1, enabled=True, days_after_due=14)
    tick(app, at(2026, 1, 29, 23, 59))  # due 15 January + 14 whole days = 29 January
    assert state(app, service) == ACTIVE
    tick(app, at(2026, 1, 30, 0, 0))
    assert state(app, service) == NON_PAYER
    [event] = [e for e in events(app, customer) if e.kind == "service.suspended"]
    assert event.reason == "non_payer"
    assert event.at == at(2026, 1, 30)
    assert event.figures["days_overdue"] == 15
    assert event.figures["oldest_invoice"] == invoices_numbers(app, customer)[0]
    check_books(app)


def test_a_debt_below_the_minimum_does_not_suspend(app: App) -> None:
    _customer, service = debtor(app, price="30.00")
    policy(app, JAN1, enabled=True, days_after_due=14, minimum_outstanding="50.00")
    tick(app, at(2026, 1, 31))
    assert state(app, service) == ACTIVE  # 30.00 overdue < 50.00
    tick(app, at(2026, 2, 1, 1))  # February's invoice: 60.00 owed, but only 30.00 overdue
    assert state(app, service) == ACTIVE
    tick(app, at(2026, 2, 16, 1))  # February's is overdue too: 60.00 >= 50.00
    assert state(app, service) == NON_PAYER
    check_books(app)


def test_the_grace_period_of_the_customer_class_moves_the_count(app: App) -> None:
    add_class(app, JAN1, "Grace")  # the class 'Home' is created by debtor()
    _customer, service = debtor(app, grace_days=5)
    policy(app, JAN1, enabled=True, days_after_due=14)
    tick(app, at(2026, 2, 3, 23))  # due 15 Jan + 5 grace + 14 days = 3 February
    assert state(app, service) == ACTIVE
    tick(app, at(2026, 2, 4, 0, 30))
    assert state(app, service) == NON_PAYER
    check_books(app)


def test_switching_the_policy_off_lifts_and_on_re_evaluates(app: App) -> None:
    customer, service = debtor(app)
    policy(app, JAN1, enabled=True)
    tick(app, at(2026, 1, 30, 1))
    assert state(app, service) == NON_PAYER
    policy(app, at(2026, 1, 30, 2), enabled=False)
    tick(app, at(2026, 1, 30, 3))
    assert state(app, service) == ACTIVE
    lift = [e for e in events(app, customer) if e.kind == "service.active"][-1]
    assert lift.reason == "policy_disabled"
    policy(app, at(2026, 1, 30, 4), enabled=True)
    tick(app, at(2026, 1, 30, 5))
    assert state(app, service) == NON_PAYER
    check_books(app)


def test_a_settling_payment_lifts_in_its_own_transaction_and_a_partial_one_does_not(
    app: App,
) -> None:
    customer, service = debtor(app)
    policy(app, JAN1, enabled=True, reactivation_fee="5.00")
    tick(app, at(2026, 1, 30, 1))
    assert state(app, service) == NON_PAYER
    pay(app, at(2026, 1, 30, 10), customer, "20.00", "partial")
    assert state(app, service) == NON_PAYER  # 10.00 still overdue
    pay(app, at(2026, 1, 30, 11), customer, "10.00", "rest")
    assert state(app, service) == ACTIVE  # no tick in between: the payment lifted it
    lift = [e for e in events(app, customer) if e.kind == "service.active"][-1]
    assert (lift.reason, lift.at) == ("settled", at(2026, 1, 30, 11))
    fee = [c for c in charges(app, customer) if c.kind == "fee"]
    assert [(c.gross, c.invoiced) for c in fee] == [(5_00, True)]
    check_books(app)


def test_below_minimum_counts_as_settled_when_the_setting_says_so(app: App) -> None:
    customer, service = debtor(app)
    policy(app, JAN1, enabled=True, minimum_outstanding="20.00", settled_when="below_minimum")
    tick(app, at(2026, 1, 30, 1))
    assert state(app, service) == NON_PAYER
    pay(app, at(2026, 1, 30, 10), customer, "15.00", "partial")
    assert state(app, service) == ACTIVE  # 15.00 overdue < 20.00
    check_books(app)


def test_a_payment_leaves_a_manual_profile_3_suspension_in_place(app: App) -> None:
    customer, service = debtor(app)
    policy(app, JAN1, enabled=True)
    with app.uow() as uow:
        suspensions.suspend_service(
            uow,
            spec=suspensions.SuspendRequest(service_id=service, reason="profile_3", note="abuse"),
            now=at(2026, 1, 20),
            actor="admin:alice",
        )
    assert state(app, service) == ("suspended", "profile_3")
    tick(app, at(2026, 1, 30, 1))
    assert state(app, service) == ("suspended", "profile_3")  # collections leaves it alone
    pay(app, at(2026, 1, 30, 10), customer, "30.00", "all")
    assert state(app, service) == ("suspended", "profile_3")
    with app.uow() as uow:
        suspensions.lift_service(uow, service_id=service, now=at(2026, 2, 2), actor="admin:bob")
    assert state(app, service) == ACTIVE
    lift = [e for e in events(app, customer) if e.kind == "service.active"][-1]
    assert (lift.reason, lift.figures["lifted"]) == ("lifted", "profile_3")
    check_books(app)


def test_a_promise_of_3_days_expires_back_into_suspension(app: App) -> None:
    customer, service = debtor(app)
    policy(app, JAN1, enabled=True)
    tick(app, at(2026, 1, 30, 1))
    with app.uow() as uow:
        promise = suspensions.promise_to_pay(
            uow, service_id=service, days=3, now=at(2026, 1, 30, 10), actor="admin:alice"
        )
    assert promise.until == at(2026, 2, 2, 10)
    assert state(app, service) == ACTIVE
    tick(app, at(2026, 2, 1, 1))  # February's invoice, still within the promise
    tick(app, at(2026, 2, 2, 9, 59))
    assert state(app, service) == ACTIVE
    tick(app, at(2026, 2, 2, 10))
    assert state(app, service) == NON_PAYER
    steps = [
        (e.kind, e.reason)
        for e in events(app, customer)
        if e.kind.startswith("service.") and e.kind != "service.created"
    ]
    assert steps[-3:] == [
        ("service.suspended", "non_payer"),
        ("service.active", "promise_to_pay"),
        ("service.suspended", "non_payer"),
    ]
    assert events(app, customer)[-1].figures.get("promise_expired") is True
    with app.uow() as uow:
        text = explain_service(uow, service_id=service, now=at(2026, 2, 2, 11)).text
    assert "non-payer" in text
    assert "30.00" in text
    check_books(app)


def test_the_subscriber_may_promise_once_per_billing_period(app: App) -> None:
    _customer, service = debtor(app)
    policy(app, JAN1, enabled=True)
    tick(app, at(2026, 1, 30, 1))

    def promise(now: datetime) -> None:
        with app.uow() as uow:
            suspensions.promise_to_pay(
                uow,
                service_id=service,
                days=None,
                now=now,
                actor="subscriber",
                by_subscriber=True,
            )

    promise(at(2026, 1, 30, 2))
    with pytest.raises(Conflict):  # once per billing period (January)
        promise(at(2026, 1, 30, 3))
    tick(app, at(2026, 2, 2, 1))  # the subscriber's promise lasts 3 days by default
    assert state(app, service) == ACTIVE
    tick(app, at(2026, 2, 2, 2))
    assert state(app, service) == NON_PAYER
    promise(at(2026, 2, 2, 3))  # February is a new billing period
    assert state(app, service) == ACTIVE
    check_books(app)


def test_reminders_throttle_holiday_and_the_lift_that_restores_speed(app: App) -> None:
    """Throttle 7 days after due (23 January) at 1024/256 kbps, reminders 2 days before each
    stage, suspension due on 30 January but that is a holiday, so it starts on the 31st."""
    customer, service = debtor(app)
    policy(
        app,
        JAN1,
        enabled=True,
        throttle_after_days=7,
        throttle_down_kbps=1024,
        throttle_up_kbps=256,
        reminder_days_before=2,
        exclusion_dates="2026-01-30",
    )
    for day in range(15, 32):
        tick(app, at(2026, 1, day, 6))
    assert state(app, service) == NON_PAYER
    pay(app, at(2026, 2, 2, 10), customer, "30.00", "all")
    assert state(app, service) == ACTIVE
    seen = [
        (e.kind, e.at.date().isoformat(), e.figures.get("starts_on") or e.figures.get("down_kbps"))
        for e in events(app, customer, prefix="")
        if e.at >= at(2026, 1, 15)
        and e.kind.startswith(
            (
                "collection.reminder",
                "collection.postponed",
                "service.s",
                "service.t",
                "service.u",
                "service.a",
            )
        )
    ]
    assert seen == [
        ("collection.reminder", "2026-01-21", "2026-01-23"),
        ("service.throttled", "2026-01-23", 1024),
        ("collection.reminder", "2026-01-29", "2026-01-31"),
        ("collection.postponed", "2026-01-30", "2026-01-31"),
        ("service.suspended", "2026-01-31", None),
        ("service.active", "2026-02-02", None),
        ("service.unthrottled", "2026-02-02", 1024),
    ]
    with app.uow() as uow:
        row = uow.session.get(Service, service)
        assert row is not None
        assert (row.throttle_down_kbps, row.throttle_up_kbps) == (None, None)
    check_books(app)


def throttle(app: App, service: int) -> tuple[int | None, int | None]:

    with app.uow() as uow:
        row = uow.session.get(Service, service)
        assert row is not None
        return (row.throttle_down_kbps, row.throttle_up_kbps)


def outbox_commands(app: App, service: int) -> list[tuple[str, str]]:

    with app.uow() as uow:
        return [
            (row.event_kind, row.reason)
            for row in uow.session.scalars(
                select(OutboxCommand)
                .where(OutboxCommand.service_id == service)
                .order_by(OutboxCommand.id)
            )
        ]


def test_a_promise_lifts_a_throttle_until_it_lapses_unpaid(app: App) -> None:
    """Throttled on 23 January (7 days after due); a 3-day promise on the 24th restores the
    speed (with a CoA in the outbox), the throttle returns when it lapses unpaid on the 27th,
    and the suspension still comes on the 30th."""
    customer, service = debtor(app)
    policy(
        app,
        JAN1,
        enabled=True,
        throttle_after_days=7,
        throttle_down_kbps=1024,
        throttle_up_kbps=256,
    )
    tick(app, at(2026, 1, 23, 6))
    assert throttle(app, service) == (1024, 256)
    with app.uow() as uow:
        promise = suspensions.promise_to_pay(
            uow, service_id=service, days=3, now=at(2026, 1, 24, 10), actor="admin:alice"
        )
    assert promise.services == [service]
    assert throttle(app, service) == (None, None)
    assert outbox_commands(app, service)[-1] == ("service.unthrottled", "promise_to_pay")
    with app.uow() as uow:
        text = explain_service(uow, service_id=service, now=at(2026, 1, 25, 10)).text
    assert "on a promise to pay until 2026-01-27T10:00:00+00:00" in text
    assert "throttled or suspended again" in text
    tick(app, at(2026, 1, 27, 9, 59))
    assert throttle(app, service) == (None, None)
    tick(app, at(2026, 1, 27, 10))
    assert throttle(app, service) == (1024, 256)
    assert outbox_commands(app, service)[-1] == ("service.throttled", "non_payer")
    tick(app, at(2026, 1, 30, 6))
    assert state(app, service) == NON_PAYER
    moves = [
        (e.kind, e.reason, e.at, e.figures.get("promise_expired"))
        for e in events(app, customer)
        if e.kind in ("service.suspended", "service.throttled", "service.unthrottled")
    ]
    assert moves[-4:] == [
        ("service.throttled", "non_payer", at(2026, 1, 23, 6), None),
        ("service.unthrottled", "promise_to_pay", at(2026, 1, 24, 10), None),
        ("service.throttled", "non_payer", at(2026, 1, 27, 10), True),
        ("service.suspended", "non_payer", at(2026, 1, 30, 6), None),
    ]
    check_books(app)


def test_a_promise_kept_leaves_the_speed_alone(app: App) -> None:
    customer, service = debtor(app)
    policy(
        app,
        JAN1,
        enabled=True,
        throttle_after_days=7,
        throttle_down_kbps=1024,
        throttle_up_kbps=256,
    )
    tick(app, at(2026, 1, 23, 6))
    with app.uow() as uow:
        suspensions.promise_to_pay(
            uow, service_id=service, days=3, now=at(2026, 1, 24, 10), actor="admin:alice"
        )
    pay(app, at(2026, 1, 25, 10), customer, "30.00", "kept")
    tick(app, at(2026, 1, 27, 10))
    tick(app, at(2026, 1, 30, 6))
    assert throttle(app, service) == (None, None)
    assert state(app, service) == ACTIVE
    check_books(app)


def test_a_class_override_and_the_setting_that_keeps_non_payers_suspended(app: App) -> None:
    customer, service = debtor(app)
    policy(app, JAN1, enabled=True)
    policy(app, JAN1, "Home", days_after_due=3)
    tick(app, at(2026, 1, 19, 1))  # due 15 January + 3 whole days: the 19th
    assert state(app, service) == NON_PAYER

    set_setting(app, at(2026, 1, 19, 2), "settled_debt_lifts", "credit_limit")
    pay(app, at(2026, 1, 19, 3), customer, "30.00", "all")
    assert state(app, service) == NON_PAYER  # the operator lifts non-payers by hand now
    with pytest.raises(ValidationError) as refused:
        set_setting(app, at(2026, 1, 19, 4), "settled_debt_lifts", "profile_3")
    assert refused.value.field == "settled_debt_lifts"
    check_books(app)


# -- manual suspension windows ----------------------------------------------------------------


def test_a_yearly_window_repeats_across_two_years_and_suspends_invoicing(app: App) -> None:
    """Summer away: 10 July to 20 August, service and invoicing suspended, every year. July is
    charged for 1-9 July (9/31), August for 21-31 August (11/31)."""
    customer, service = debtor(app, price="31.00")
    pay(app, JAN1, customer, "1000.00", "prepay")
    with app.uow() as uow:
        suspensions.suspend_service(
            uow,
            spec=suspensions.SuspendRequest(
                service_id=service,
                reason="profile_1",
                suspend_invoicing=True,
                starts_on=date(2026, 7, 10),
                ends_on=date(2026, 8, 20),
                repeat_yearly=True,
            ),
            now=at(2026, 3, 1, 12),
            actor="admin:alice",
        )
    for when, expected in [
        (at(2026, 7, 9, 23), ACTIVE),
        (at(2026, 7, 10, 0, 1), ("suspended", "profile_1")),
        (at(2026, 8, 20, 23), ("suspended", "profile_1")),
        (at(2026, 8, 21, 0, 1), ACTIVE),
        (at(2027, 7, 9, 23), ACTIVE),
        (at(2027, 7, 10, 0, 1), ("suspended", "profile_1")),
        (at(2027, 8, 21, 0, 1), ACTIVE),
    ]:
        tick(app, when)
        assert state(app, service) == expected, when
    grosses = {
        (c.start.year, c.start.month): (c.quantity, c.gross)
        for c in charges(app, customer)
        if c.kind == "period"
    }

    assert grosses[(2026, 6)] == (Fraction(1), 31_00)
    assert grosses[(2026, 7)] == (Fraction(9, 31), 9_00)
    assert grosses[(2026, 8)] == (Fraction(11, 31), 11_00)
    assert grosses[(2026, 9)] == (Fraction(1), 31_00)
    assert grosses[(2027, 7)] == (Fraction(9, 31), 9_00)
    assert grosses[(2027, 8)] == (Fraction(11, 31), 11_00)
    check_books(app)


def summer_house(app: App) -> tuple[int, int]:
    """A paid-up customer whose service is suspended every 1 July to 31 August."""
    customer, service = debtor(app, price="31.00")
    pay(app, JAN1, customer, "1000.00", "prepay")
    with app.uow() as uow:
        suspensions.suspend_service(
            uow,
            spec=suspensions.SuspendRequest(
                service_id=service,
                reason="profile_1",
                starts_on=date(2026, 7, 1),
                ends_on=date(2026, 8, 31),
                repeat_yearly=True,
            ),
            now=at(2026, 3, 1, 12),
            actor="admin:alice",
        )
    tick(app, at(2026, 7, 1, 0, 1))
    assert state(app, service) == ("suspended", "profile_1")
    return customer, service


def lift(app: App, service: int, now: datetime, **flags: bool) -> None:
    with app.uow() as uow:
        suspensions.lift_service(
            uow, service_id=service, now=now, actor="admin:alice", note="back early", **flags
        )


def test_lifting_this_summers_window_keeps_next_summers(app: App) -> None:
    customer, service = summer_house(app)
    lift(app, service, at(2026, 7, 15, 10))
    assert state(app, service) == ACTIVE
    planned = [e for e in events(app, customer, "suspension.") if e.kind == "suspension.planned"]
    assert (planned[-1].at, planned[-1].figures["starts_on"], planned[-1].figures["ends_on"]) == (
        at(2026, 7, 15, 10),
        "2027-07-01",
        "2027-08-31",
    )
    for when, expected in [
        (at(2026, 9, 1, 0, 1), ACTIVE),
        (at(2027, 6, 30, 23), ACTIVE),
        (at(2027, 7, 1, 0, 1), ("suspended", "profile_1")),
        (at(2027, 9, 1, 0, 1), ACTIVE),
        (at(2028, 7, 1, 0, 1), ("suspended", "profile_1")),
    ]:
        tick(app, when)
        assert state(app, service) == expected, when
    check_books(app)


def test_lifting_with_end_repetition_ends_every_summer(app: App) -> None:
    customer, service = summer_house(app)
    lift(app, service, at(2026, 7, 15, 10), end_repetition=True)
    assert state(app, service) == ACTIVE
    kinds = [e.kind for e in events(app, customer, "suspension.")]
    assert kinds[-1] == "suspension.repetition_ended"
    assert kinds.count("suspension.planned") == 1  # the first window only
    with app.uow() as uow:
        assert suspensions.current_manual(uow, service) is None
    tick(app, at(2027, 7, 1, 0, 1))
    assert state(app, service) == ACTIVE
    check_books(app)


def test_cancelling_next_summers_window_plans_the_one_after_unless_all(app: App) -> None:
    _customer, service = summer_house(app)
    tick(app, at(2026, 9, 1, 0, 1))  # this summer ends by itself; 2027's is planned
    lift(app, service, at(2026, 10, 1, 10))  # cancels 2027 only
    with app.uow() as uow:
        following = suspensions.current_manual(uow, service)
        assert following is not None
        assert (following.status, following.starts_on) == ("planned", date(2028, 7, 1))
    tick(app, at(2027, 7, 1, 0, 1))
    assert state(app, service) == ACTIVE
    lift(app, service, at(2027, 10, 1, 10), end_repetition=True)
    with app.uow() as uow:
        assert suspensions.current_manual(uow, service) is None
    tick(app, at(2028, 7, 1, 0, 1))
    assert state(app, service) == ACTIVE
    check_books(app)


def test_an_open_suspension_with_invoicing_holds_billing_until_lifted(app: App) -> None:
    customer, service = debtor(app, price="31.00")
    with app.uow() as uow:
        suspensions.suspend_service(
            uow,
            spec=suspensions.SuspendRequest(
                service_id=service,
                reason="not_set",
                suspend_invoicing=True,
                starts_on=date(2026, 3, 10),
            ),
            now=at(2026, 3, 1, 12),
            actor="admin:alice",
        )
    tick(app, at(2026, 3, 1, 13))
    tick(app, at(2026, 5, 1, 1))
    march = [c for c in charges(app, customer) if c.start.month == 3]
    assert [(c.gross) for c in march] == [9_00]  # 1-9 March
    assert [c for c in charges(app, customer) if c.start.month in (4, 5)] == []
    with app.uow() as uow:
        suspensions.lift_service(uow, service_id=service, now=at(2026, 5, 22, 9), actor="admin:bob")
    assert state(app, service) == ACTIVE
    may = [c for c in charges(app, customer) if c.start >= date(2026, 3, 10)]
    assert [(c.start, c.gross) for c in may] == [(date(2026, 5, 1), 10_00)]  # 22-31 May
    check_books(app)


def test_days_already_charged_are_credited_when_the_window_ends_or_is_lifted(app: App) -> None:
    """March (31.00) is charged on 1 March. Suspended with invoicing 10-19 March: 10 days are
    credited when the window ends; an open one from 25 March lifted on the 28th credits 3."""
    customer, service = debtor(app, price="31.00")
    tick(app, at(2026, 3, 1, 1))

    def suspend(now: datetime, **spec: Any) -> None:
        with app.uow() as uow:
            suspensions.suspend_service(
                uow,
                spec=suspensions.SuspendRequest(
                    service_id=service, reason="not_set", suspend_invoicing=True, **spec
                ),
                now=now,
                actor="admin:alice",
            )

    suspend(at(2026, 3, 10, 10), ends_on=date(2026, 3, 19))
    tick(app, at(2026, 3, 20, 1))
    assert state(app, service) == ACTIVE
    suspend(at(2026, 3, 25, 10))
    with app.uow() as uow:
        suspensions.lift_service(uow, service_id=service, now=at(2026, 3, 28, 8), actor="bob")
    refunds = [(c.start, c.end, c.gross) for c in charges(app, customer) if c.kind == "refund"]
    assert refunds == [
        (date(2026, 3, 10), date(2026, 3, 20), 10_00),
        (date(2026, 3, 25), date(2026, 3, 28), 3_00),
    ]
    tick(app, at(2026, 4, 1, 1))
    april = [c.gross for c in charges(app, customer) if c.start == date(2026, 4, 1)]
    assert april == [31_00]
    notes = [i for i in invoices(app, customer) if i.status == "paid" and i.gross in (10_00, 3_00)]
    assert len(notes) == 2  # the credit notes, settled when issued
    check_books(app)


# -- refusals ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"days_after_due": "-1"}, "days_after_due"),
        ({"minimum_outstanding": "abc"}, "minimum_outstanding"),
        ({"settled_when": "below_minimum"}, "settled_when"),
        ({"throttle_after_days": "20"}, "throttle_down_kbps"),
        ({"combine": "maybe"}, "combine"),
        ({"bogus": "1"}, "bogus"),
    ],
)
def test_a_bad_policy_is_refused_naming_the_key(
    app: App, changes: dict[str, str], field: str
) -> None:
    with pytest.raises(ValidationError) as refused, app.uow() as uow:
        collection_policy.set_values(
            uow, changes=changes, customer_class_id=None, now=JAN1, actor=ACTOR
        )  # type: ignore[arg-type]
    assert refused.value.field == field
    with app.uow() as uow:
        assert collection_policy.operator_document(uow) == {}


def test_bad_suspensions_are_refused_and_write_nothing(app: App) -> None:
    _customer, service = debtor(app)

    def suspend(**spec: Any) -> None:
        with app.uow() as uow:
            suspensions.suspend_service(
                uow,
                spec=suspensions.SuspendRequest(service_id=service, **spec),
                now=at(2026, 1, 10),
                actor="admin:alice",
            )

    for spec, field in [
        ({"reason": "credit_limit"}, "reason"),
        ({"reason": "holiday"}, "reason"),
        ({"reason": "profile_1", "starts_on": date(2026, 1, 9)}, "starts_on"),
        (
            {"reason": "profile_1", "starts_on": date(2026, 2, 9), "ends_on": date(2026, 2, 1)},
            "ends_on",
        ),
        ({"reason": "profile_1", "repeat_yearly": True}, "repeat_yearly"),
    ]:
        with pytest.raises(ValidationError) as refused:
            suspend(**spec)
        assert refused.value.field == field, spec
    assert state(app, service) == ACTIVE
    suspend(reason="profile_2")
    with pytest.raises(Conflict):
        suspend(reason="profile_4")
    with pytest.raises(ValidationError) as refused, app.uow() as uow:
        suspensions.promise_to_pay(
            uow, service_id=service, days=3, now=at(2026, 1, 11), actor="admin:alice"
        )
    assert refused.value.field == "service"
    check_books(app)

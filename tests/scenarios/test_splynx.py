"""Splynx prepaid (custom) billing: a payment, then Charge & Invoice, monthly or N-day prepaid
periods, and the deactivation period (seed 003).

Seed: "we need to add a payment to the customer's account ... For example, 30 USD has been
added, to activate their services. After the deposit has been made we then proceed to activate
the customer's services by manually charging the customer with the Charge & Invoice button.
After charging the customer 30 USD and the customer is provided with access for one month."
"""

from __future__ import annotations

from datetime import date, datetime
from fractions import Fraction

from ispbill.bootstrap import App
from ispbill.use_cases.billing import reevaluation as engine
from ispbill.use_cases.payments.recording import lock_customer

from .helpers import (
    ACTOR,
    ChargeView,
    InvoiceView,
    add_class,
    add_customer,
    add_plan,
    add_service,
    at,
    charges,
    check_books,
    customer_status,
    events,
    invoices,
    pay,
    set_setting,
    state,
    tick,
    tick_daily,
    wallet,
)

T0 = at(2026, 1, 1, 9)


def _catalog(app: App) -> None:
    add_class(app, T0)
    add_plan(app, T0, "Home 30", "30.00")
    add_plan(app, T0, "TV 5", "5.00")
    add_plan(app, T0, "Week 10", "10.00", cycle="7d")


def _charge_and_invoice(app: App, customer: int, now: datetime) -> engine.ChargeAndInvoice:
    """The button, as the CLI presses it: under the customer's row lock."""
    with app.uow() as uow:
        row = lock_customer(uow, customer)
        return engine.charge_and_invoice(uow, customer=row, now=now, actor=ACTOR)


def test_thirty_dollars_then_charge_and_invoice_give_one_month_then_deactivation(
    app: App,
) -> None:
    """The payment comes first (nothing to charge yet), the service is added (pending), and
    Charge & Invoice charges the month from the wallet, activates the service and issues the
    invoice already paid. On February 1 the empty wallet cannot renew: deactivated, no debt."""
    _catalog(app)
    sol = add_customer(app, T0, "Sol", billing_cycle="monthly")
    pay(app, at(2026, 1, 1, 9, 5), sol, "30.00", "splynx-30")
    home = add_service(app, at(2026, 1, 1, 9, 6), sol, "Home 30")
    assert (state(app, home), wallet(app, sol)) == (("pending", None), 30_00)

    pressed = at(2026, 1, 1, 9, 10)
    result = _charge_and_invoice(app, sol, pressed)
    assert result.invoice_number == "2026-000001"
    assert state(app, home) == ("active", None)
    assert charges(app, sol) == [
        ChargeView(
            home,
            "period",
            date(2026, 1, 1),
            date(2026, 2, 1),
            Fraction(1),
            30_00,
            at(2026, 1, 1),
            True,
        )
    ]
    assert invoices(app, sol) == [
        InvoiceView(
            date(2026, 1, 1), 30_00, 30_00, "paid", ((home, date(2026, 1, 1), date(2026, 2, 1)),)
        )
    ]
    assert wallet(app, sol) == 0
    # pressing again charges nothing and issues nothing
    assert _charge_and_invoice(app, sol, at(2026, 1, 1, 9, 11)).invoice_number is None
    assert _charge_and_invoice(app, sol, pressed).invoice_number == "2026-000001"

    tick_daily(app, date(2026, 1, 2), date(2026, 2, 3))
    assert state(app, home) == ("deactivated", "insufficient_funds")
    assert len(charges(app, sol)) == 1
    assert wallet(app, sol) == 0
    assert [(e.kind, e.reason, e.at, e.figures) for e in events(app, sol)] == [
        ("service.active", "", at(2026, 1, 1), {"from": "pending", "active_from": "2026-01-01"}),
        (
            "service.deactivated",
            "insufficient_funds",
            at(2026, 2, 1),
            {
                "from": "active",
                "balance": "0.00 USD",
                "price": "30.00 USD",
                "minimum_balance": "0.00 USD",
            },
        ),
    ]
    assert check_books(app).wallets == {sol: 0}


def test_a_seven_day_prepaid_period_charges_every_seven_days(app: App) -> None:
    """Seed: "change the Prepaid Period of the service to Days amount and select the desired
    amount of days". 30.00 pays three weeks of a 10.00 weekly plan started on Thursday
    January 1; the fourth week, on January 22, finds the wallet empty."""
    _catalog(app)
    wes = add_customer(app, T0, "Wes", available_funds="30.00")
    week = add_service(app, T0, wes, "Week 10")
    tick_daily(app, date(2026, 1, 1), date(2026, 1, 30))

    starts = [date(2026, 1, 1), date(2026, 1, 8), date(2026, 1, 15)]
    assert charges(app, wes) == [
        ChargeView(
            week,
            "period",
            s,
            date.fromordinal(s.toordinal() + 7),
            Fraction(1),
            10_00,
            at(s.year, s.month, s.day),
            False,
        )
        for s in starts
    ]
    assert state(app, week) == ("deactivated", "insufficient_funds")
    assert [(e.kind, e.at) for e in events(app, wes)] == [
        ("service.active", at(2026, 1, 1)),
        ("service.deactivated", at(2026, 1, 22)),
    ]
    assert check_books(app).wallets == {wes: 0}


def _two_services_running_dry(app: App) -> tuple[int, int, int]:
    dee = add_customer(app, T0, "Dee", available_funds="35.00")
    home = add_service(app, T0, dee, "Home 30")
    tv = add_service(app, T0, dee, "TV 5")
    return dee, home, tv


def test_the_deactivation_period_ends_services_and_makes_the_customer_inactive(
    app: App,
) -> None:
    """Seed: "Deactivation period for prepaid customers can be configured". With 10 days, both
    services deactivated on February 1 end on February 11 and the customer becomes inactive,
    each step an event with its figures. Ended is final: a later payment only fills the
    wallet."""
    _catalog(app)
    set_setting(app, T0, "deactivation_period_days", "10")
    dee, home, tv = _two_services_running_dry(app)
    tick_daily(app, date(2026, 1, 1), date(2026, 2, 10))
    assert (state(app, home), state(app, tv)) == (("deactivated", "insufficient_funds"),) * 2
    assert customer_status(app, dee) == "active"

    tick(app, at(2026, 2, 11, 6))
    assert (state(app, home), state(app, tv)) == (("ended", "deactivation_period"),) * 2
    assert customer_status(app, dee) == "inactive"
    ended = [e for e in events(app, dee) if e.kind == "service.ended"]
    assert ended == [
        (
            "service.ended",
            service,
            "deactivation_period",
            at(2026, 2, 11),
            {"from": "deactivated", "deactivation_period_days": "10"},
        )
        for service in (home, tv)
    ]
    assert events(app, dee, prefix="customer.inactive") == [
        (
            "customer.inactive",
            dee,
            "deactivation_period",
            at(2026, 2, 11),
            {"from": "active", "deactivation_period_days": "10", "services_ended": 2},
        )
    ]
    pay(app, at(2026, 3, 1, 10), dee, "100.00", "dee-late")
    tick(app, at(2026, 3, 2, 6))
    assert (state(app, home), state(app, tv)) == (("ended", "deactivation_period"),) * 2
    assert [(c.service, c.start, c.gross) for c in charges(app, dee)] == [
        (home, date(2026, 1, 1), 30_00),
        (tv, date(2026, 1, 1), 5_00),
    ]
    assert check_books(app).wallets == {dee: 100_00}


def test_the_deactivation_period_is_off_by_default(app: App) -> None:
    """Without the setting nothing ends: two months later the services still wait, deactivated,
    for money, and a payment brings them back."""
    _catalog(app)
    dee, home, tv = _two_services_running_dry(app)
    tick_daily(app, date(2026, 1, 1), date(2026, 1, 3))
    tick(app, at(2026, 2, 1, 6))
    tick(app, at(2026, 4, 1, 6))
    assert (state(app, home), state(app, tv)) == (("deactivated", "insufficient_funds"),) * 2
    assert customer_status(app, dee) == "active"
    assert [e.kind for e in events(app, dee)] == ["service.active"] * 2 + [
        "service.deactivated"
    ] * 2

    pay(app, at(2026, 4, 2, 10), dee, "40.00", "dee-back")
    assert (state(app, home), state(app, tv)) == (("active", None),) * 2
    check_books(app)


def test_a_deactivation_period_turned_on_later_applies_to_services_already_deactivated(
    app: App,
) -> None:
    """Seed: "if you would like your deactivation period to work it is necessary to enable the
    processing of deactivation period". An operator who enables it expects customers already
    deactivated for longer to be processed by the next run; the engine used to skip them (their
    stored next due instant predated the setting) until something else touched them."""
    _catalog(app)
    dee, home, tv = _two_services_running_dry(app)
    tick(app, T0)
    tick(app, at(2026, 2, 1, 6))
    set_setting(app, at(2026, 3, 1, 12), "deactivation_period_days", "10")
    tick(app, at(2026, 3, 2, 6))

    assert (state(app, home), state(app, tv)) == (("ended", "deactivation_period"),) * 2
    assert customer_status(app, dee) == "inactive"
    # dated when the ten days ran out: the engine dates each step at its due instant
    assert [(e.kind, e.at) for e in events(app, dee) if e.kind == "service.ended"] == [
        ("service.ended", at(2026, 2, 11)),
        ("service.ended", at(2026, 2, 11)),
    ]
    check_books(app)

"""CRM.COM: a prepaid wallet pays the subscription; when it runs dry the subscription is
deactivated, and a payment reactivates it (seed 001).

Seed: "Deactivation is a recurring background process used on subscriptions when wallet funds
are insufficient to cover the upcoming period. As a result, the provision of subscription
services is discontinued and their billing is put on hold." "Deactivated subscriptions are
reactivated once the outstanding balance is settled, or through an automatic activation process
that verifies that there are sufficient funds in the wallet to cover the upcoming period."
Splynx adds the minimum balance: funds "available in the customer's account after service
charges" (seed 003), so a period is charged only when ``balance - price >= minimum``.
"""

from __future__ import annotations

from datetime import date
from fractions import Fraction

from ispbill.bootstrap import App

from .helpers import (
    ChargeView,
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
    postings,
    set_setting,
    state,
    tick,
    tick_daily,
    wallet,
)

T0 = at(2026, 1, 1, 9)


def _running_wallet(app: App, customer: int) -> list[int]:
    """The wallet after each of its postings, in the order they were stored."""
    balance, seen = 0, []
    for _key, code, amount in postings(app, customer):
        if code == f"wallet:{customer}:USD":
            balance += amount
            seen.append(balance)
    return seen


def test_a_dry_wallet_deactivates_without_debt_and_a_payment_reactivates_at_once(
    app: App,
) -> None:
    """65.00 with a 5.00 minimum pays January and February of a 30.00 subscription (65 - 30 =
    35, 35 - 30 = 5 >= 5); on March 1 5.00 cannot cover 30.00 and keep 5.00, so the service is
    deactivated with the figures behind it, and nothing is charged: no debt.

    A payment that leaves 34.99 does not reactivate (34.99 - 30.00 < 5.00); one more cent does,
    inside the payment's own unit of work: when ``record_payment`` returns the service is
    active and the reactivation charge is stored. The plan bills monthly from the service's
    start (its own cycle), so with the default anchor the new period starts on the reactivation
    date, March 12, and the next renewal is April 12."""
    add_class(app, T0)
    add_plan(app, T0, "Sub 30", "30.00", cycle="1m")
    cleo = add_customer(app, T0, "Cleo", minimum_balance="5.00", available_funds="65.00")
    sub = add_service(app, T0, cleo, "Sub 30", active_from=date(2026, 1, 1))

    tick_daily(app, date(2026, 1, 1), date(2026, 3, 10))
    assert state(app, sub) == ("deactivated", "insufficient_funds")
    assert wallet(app, cleo) == 5_00
    assert [(c.kind, c.start, c.end, c.gross) for c in charges(app, cleo)] == [
        ("period", date(2026, 1, 1), date(2026, 2, 1), 30_00),
        ("period", date(2026, 2, 1), date(2026, 3, 1), 30_00),
    ]
    [*_, deactivated] = events(app, cleo)
    assert deactivated == (
        "service.deactivated",
        sub,
        "insufficient_funds",
        at(2026, 3, 1),
        {
            "from": "active",
            "balance": "5.00 USD",
            "price": "30.00 USD",
            "minimum_balance": "5.00 USD",
        },
    )

    pay(app, at(2026, 3, 11, 12), cleo, "29.99", "crm-1")
    assert state(app, sub) == ("deactivated", "insufficient_funds")
    assert wallet(app, cleo) == 34_99
    tick(app, at(2026, 3, 12, 6))  # the automatic activation pass agrees: not enough
    assert state(app, sub) == ("deactivated", "insufficient_funds")

    paid_at = at(2026, 3, 12, 15, 30)
    pay(app, paid_at, cleo, "0.01", "crm-2")
    # a fresh unit of work: what record_payment committed
    assert state(app, sub) == ("active", None)
    assert wallet(app, cleo) == 5_00
    reactivation = ChargeView(
        sub,
        "reactivation",
        date(2026, 3, 12),
        date(2026, 4, 12),
        Fraction(1),
        30_00,
        paid_at,
        False,
    )
    assert charges(app, cleo)[-1] == reactivation
    assert events(app, cleo)[-1] == (
        "service.active",
        sub,
        "",
        paid_at,
        {
            "from": "deactivated",
            "balance": "35.00 USD",
            "price": "30.00 USD",
            "anchor": "reactivation_date",
        },
    )

    pay(app, at(2026, 4, 1, 10), cleo, "30.00", "crm-3")  # a top-up before the renewal
    tick_daily(app, date(2026, 4, 1), date(2026, 5, 13))
    assert [(c.kind, c.start, c.end, c.gross, c.charged_at) for c in charges(app, cleo)] == [
        ("period", date(2026, 1, 1), date(2026, 2, 1), 30_00, at(2026, 1, 1)),
        ("period", date(2026, 2, 1), date(2026, 3, 1), 30_00, at(2026, 2, 1)),
        ("reactivation", date(2026, 3, 12), date(2026, 4, 12), 30_00, paid_at),
        ("period", date(2026, 4, 12), date(2026, 5, 12), 30_00, at(2026, 4, 12)),
    ]
    assert [(e.kind, e.at) for e in events(app, cleo)] == [
        ("service.active", at(2026, 1, 1)),
        ("service.deactivated", at(2026, 3, 1)),
        ("service.active", paid_at),
        ("service.deactivated", at(2026, 5, 12)),
    ]
    assert wallet(app, cleo) == 5_00
    # debit and credit wallet transactions only; never below the minimum, never a debt
    assert _running_wallet(app, cleo) == [65_00, 35_00, 5_00, 34_99, 35_00, 5_00, 35_00, 5_00]
    assert invoices(app, cleo) == []  # prepaid: the wallet paid; no invoice asks for money
    assert check_books(app).wallets == {cleo: 5_00}


def test_on_a_calendar_month_the_wallet_must_cover_a_whole_month_to_reactivate(
    app: App,
) -> None:
    """A plan that follows the customer's calendar month keeps that grid on reactivation (the
    period starting on the reactivation date ends with the month and is prorated: March 10-31
    is 22/31 x 30.00 = 21.29), yet "sufficient funds to cover the upcoming period" means a
    whole month: 29.00 does not reactivate although it would pay the 21.29."""
    add_class(app, T0)
    add_plan(app, T0, "Home 30", "30.00")
    max_ = add_customer(app, T0, "Max", billing_cycle="monthly", available_funds="30.00")
    home = add_service(app, T0, max_, "Home 30", active_from=date(2026, 1, 1))
    tick_daily(app, date(2026, 1, 1), date(2026, 2, 2))
    assert state(app, home) == ("deactivated", "insufficient_funds")

    pay(app, at(2026, 3, 10, 8), max_, "29.00", "max-1")
    assert state(app, home) == ("deactivated", "insufficient_funds")
    back = at(2026, 3, 10, 9)
    pay(app, back, max_, "1.00", "max-2")
    assert state(app, home) == ("active", None)
    tick_daily(app, date(2026, 3, 11), date(2026, 4, 2))

    assert charges(app, max_) == [
        ChargeView(
            home,
            "period",
            date(2026, 1, 1),
            date(2026, 2, 1),
            Fraction(1),
            30_00,
            T0.replace(hour=0),
            False,
        ),
        ChargeView(
            home,
            "reactivation",
            date(2026, 3, 10),
            date(2026, 4, 1),
            Fraction(22, 31),
            21_29,
            back,
            False,
        ),
    ]
    assert state(app, home) == ("deactivated", "insufficient_funds")
    assert wallet(app, max_) == 8_71
    [*_, last] = events(app, max_)
    assert (last.at, last.figures["balance"], last.figures["price"]) == (
        at(2026, 4, 1),
        "8.71 USD",
        "30.00 USD",
    )
    check_books(app)


def test_a_reactivated_service_keeps_the_customers_anniversary_grid(app: App) -> None:
    """A plan that follows the customer's billing period (monthly on the 19th, PortaBilling)
    keeps it after a reactivation on March 2: March 2-18 is prorated (17 of the 28 days from
    February 19) and the next period is March 19 - April 18 again.

    Ambiguity resolved: the engine used to restart such a cycle on the reactivation date for
    one period (March 2 - April 1) and then snap back to the 19th with a 17/31 stub; a
    customer-wide billing period is now kept, as ``reactivate_service`` documents for paused
    services, and only a service's own cycle restarts."""
    created = at(2026, 1, 19, 9)
    add_class(app, created)
    add_plan(app, created, "Home 30", "30.00")
    ann = add_customer(
        app, created, "Ann", billing_cycle="monthly_anniversary", available_funds="30.00"
    )
    add_service(app, created, ann, "Home 30")
    tick_daily(app, date(2026, 1, 19), date(2026, 3, 1))
    back = at(2026, 3, 2, 12)
    pay(app, back, ann, "60.00", "ann-1")
    tick_daily(app, date(2026, 3, 3), date(2026, 4, 20))

    assert [
        (c.kind, c.start, c.end, c.quantity, c.gross, c.charged_at) for c in charges(app, ann)
    ] == [
        ("period", date(2026, 1, 19), date(2026, 2, 19), Fraction(1), 30_00, at(2026, 1, 19)),
        ("reactivation", date(2026, 3, 2), date(2026, 3, 19), Fraction(17, 28), 18_21, back),
        ("period", date(2026, 3, 19), date(2026, 4, 19), Fraction(1), 30_00, at(2026, 3, 19)),
    ]
    assert [(e.kind, e.at) for e in events(app, ann)] == [
        ("service.active", at(2026, 1, 19)),
        ("service.deactivated", at(2026, 2, 19)),
        ("service.active", back),
        ("service.deactivated", at(2026, 4, 19)),
    ]
    assert check_books(app).wallets == {ann: 11_79}


def test_the_original_anchor_charges_the_rest_of_the_interrupted_period(app: App) -> None:
    """With ``reactivation_anchor = original`` the service's own monthly cycle (from January 1)
    is kept: reactivated on March 12 it pays March 12-31 (20/31 x 30.00 = 19.35), then April 1."""
    add_class(app, T0)
    add_plan(app, T0, "Sub 30", "30.00", cycle="1m")
    set_setting(app, T0, "reactivation_anchor", "original")
    olga = add_customer(app, T0, "Olga", available_funds="30.00")
    sub = add_service(app, T0, olga, "Sub 30", active_from=date(2026, 1, 1))
    tick(app, T0)
    tick(app, at(2026, 2, 1, 6))
    back = at(2026, 3, 12, 12)
    pay(app, back, olga, "60.00", "olga-1")
    tick(app, at(2026, 4, 1, 6))

    assert [(c.kind, c.start, c.end, c.quantity, c.gross) for c in charges(app, olga)] == [
        ("period", date(2026, 1, 1), date(2026, 2, 1), Fraction(1), 30_00),
        ("reactivation", date(2026, 3, 12), date(2026, 4, 1), Fraction(20, 31), 19_35),
        ("period", date(2026, 4, 1), date(2026, 5, 1), Fraction(1), 30_00),
    ]
    assert events(app, olga)[2].figures["anchor"] == "original"
    assert state(app, sub) == ("active", None)
    assert check_books(app).wallets == {olga: 10_65}

"""PortaBilling: the customer's billing period cuts postpaid (backward) invoices, and the credit
limit blocks service (seed 004).

Seed: "A billing period defines this customer's invoice frequency." Daily "covers a 24-hour
period"; weekly "(Monday through Sunday)"; semimonthly "from the 1st to the 15th or from the
16th to the last day of the month"; monthly "from the 1st of the month to the last day of that
month"; monthly (anniversary) "If a customer was created on March 19th, his invoices will
always cover the period from the 19th of the current month to the 18th of the following month"
and for the 29th-31st "their first billing period will cover the time until the 28th day of
the following month, and thereafter will always cover the period from the 28th until the 28th";
30 days "If a customer was created on March 20th, his first invoice will cover the period from
March 20th to April 18th ... and the second invoice will cover the period from April 19th to
May 18th".

Periods below are printed as the seed prints them: first and last day, both included. A
backward period is charged and invoiced at its end, the local midnight after its last day.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from fractions import Fraction

import pytest

from ispbill.bootstrap import App

from .helpers import (
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
    periods,
    state,
    tick,
    wallet,
)

D = date


@dataclass(frozen=True)
class Case:
    cycle: str
    created: datetime
    periods: list[tuple[date, date]]  # (first day, last day) as the seed prints them
    quantities: list[Fraction]
    grosses: list[int]


CASES = {
    "daily": Case(
        "daily",
        at(2026, 3, 19, 10),
        [(D(2026, 3, 19), D(2026, 3, 19)), (D(2026, 3, 20), D(2026, 3, 20))],
        [Fraction(1)] * 2,
        [30_00] * 2,
    ),
    # created on a Wednesday: the first week is Wednesday to Sunday, 5/7 x 30.00 = 21.43
    "weekly": Case(
        "weekly",
        at(2026, 3, 18, 10),
        [(D(2026, 3, 18), D(2026, 3, 22)), (D(2026, 3, 23), D(2026, 3, 29))],
        [Fraction(5, 7), Fraction(1)],
        [21_43, 30_00],
    ),
    # March 10-15 is 6 of 15 days: 12.00
    "semimonthly": Case(
        "semimonthly",
        at(2026, 3, 10, 10),
        [
            (D(2026, 3, 10), D(2026, 3, 15)),
            (D(2026, 3, 16), D(2026, 3, 31)),
            (D(2026, 4, 1), D(2026, 4, 15)),
        ],
        [Fraction(6, 15), Fraction(1), Fraction(1)],
        [12_00, 30_00, 30_00],
    ),
    # April 10-30 is 21 of 30 days: 21.00
    "monthly": Case(
        "monthly",
        at(2026, 4, 10, 10),
        [(D(2026, 4, 10), D(2026, 4, 30)), (D(2026, 5, 1), D(2026, 5, 31))],
        [Fraction(21, 30), Fraction(1)],
        [21_00, 30_00],
    ),
    "anniversary 19th": Case(
        "monthly_anniversary",
        at(2026, 3, 19, 10),
        [(D(2026, 3, 19), D(2026, 4, 18)), (D(2026, 4, 19), D(2026, 5, 18))],
        [Fraction(1)] * 2,
        [30_00] * 2,
    ),
    # "until the 28th" and "from the 28th until the 28th" read like the 19th rule: a period
    # starts on the 28th and its last day is the 27th. The first period (29 days) is a whole one.
    "anniversary 30th": Case(
        "monthly_anniversary",
        at(2026, 3, 30, 10),
        [
            (D(2026, 3, 30), D(2026, 4, 27)),
            (D(2026, 4, 28), D(2026, 5, 27)),
            (D(2026, 5, 28), D(2026, 6, 27)),
        ],
        [Fraction(1)] * 3,
        [30_00] * 3,
    ),
    # the 31st before a short February: January 31 to February 27, then the 28th on
    "anniversary 31st": Case(
        "monthly_anniversary",
        at(2026, 1, 31, 10),
        [(D(2026, 1, 31), D(2026, 2, 27)), (D(2026, 2, 28), D(2026, 3, 27))],
        [Fraction(1)] * 2,
        [30_00] * 2,
    ),
    "30 days": Case(
        "days_30",
        at(2026, 3, 20, 10),
        [
            (D(2026, 3, 20), D(2026, 4, 18)),
            (D(2026, 4, 19), D(2026, 5, 18)),
            (D(2026, 5, 19), D(2026, 6, 17)),
        ],
        [Fraction(1)] * 3,
        [30_00] * 3,
    ),
}


def _backward_customer(app: App, created: datetime, cycle: str, **terms: object) -> int:
    return add_customer(
        app,
        created,
        "Porta",
        balance_control="postpaid",
        invoicing_mode="backward",
        billing_cycle=cycle,
        **terms,
    )


@pytest.mark.parametrize("case", list(CASES.values()), ids=list(CASES))
def test_invoices_cover_the_customers_billing_period(app: App, case: Case) -> None:
    """Each period is charged and invoiced once, at its end, with the seed's dates; the day
    before that end nothing of it is charged (the engine is ticked the evening before and the
    morning after every period end)."""
    add_class(app, case.created)
    add_plan(app, case.created, "Home 30", "30.00")
    porta = _backward_customer(app, case.created, case.cycle)
    home = add_service(app, case.created, porta, "Home 30")

    for done, (_first, last) in enumerate(case.periods, start=1):
        end = last + timedelta(days=1)
        tick(app, at(last.year, last.month, last.day, 22))
        assert len(periods(app, home)) == done - 1
        tick(app, at(end.year, end.month, end.day, 6))
        assert periods(app, home)[-1] == (_first, last)

    assert periods(app, home) == case.periods
    ends = [last + timedelta(days=1) for _first, last in case.periods]
    assert [(c.quantity, c.gross, c.charged_at) for c in charges(app, porta)] == [
        (q, g, at(e.year, e.month, e.day))
        for q, g, e in zip(case.quantities, case.grosses, ends, strict=True)
    ]
    assert [(i.issue_date, i.gross, i.status, i.periods) for i in invoices(app, porta)] == [
        (e, g, "issued", ((home, first, e),))
        for (first, _last), g, e in zip(case.periods, case.grosses, ends, strict=True)
    ]
    assert check_books(app).wallets == {porta: -sum(case.grosses)}


def test_the_billing_period_timezone_sets_the_creation_day_and_the_closing_instant(
    app: App,
) -> None:
    """Seed: "Choose a billing period timezone to close a customer's billing period and
    generate an invoice." Created at 02:00 UTC on March 20, which is still March 19 in New
    York: the anniversary is the 19th, and each period closes at New York midnight (04:00 UTC
    in daylight saving time)."""
    created = at(2026, 3, 20, 2)
    add_class(app, created)
    add_plan(app, created, "Home 30", "30.00")
    ny = _backward_customer(
        app, created, "monthly_anniversary", billing_timezone="America/New_York"
    )
    home = add_service(app, created, ny, "Home 30")
    tick(app, at(2026, 4, 19, 3, 59))
    assert periods(app, home) == []
    tick(app, at(2026, 4, 19, 4))
    tick(app, at(2026, 5, 19, 4))
    assert periods(app, home) == [
        (D(2026, 3, 19), D(2026, 4, 18)),
        (D(2026, 4, 19), D(2026, 5, 18)),
    ]
    assert [c.charged_at for c in charges(app, ny)] == [at(2026, 4, 19, 4), at(2026, 5, 19, 4)]
    assert [i.issue_date for i in invoices(app, ny)] == [D(2026, 4, 19), D(2026, 5, 19)]
    check_books(app)


def test_the_credit_limit_blocks_at_the_limit_and_a_payment_lifts_it_at_once(app: App) -> None:
    """Seed: "When the customer's balance reaches that credit limit, this customer is no longer
    allowed to use the services." With a 60.00 limit, the second monthly invoice takes the
    balance to -60.00: suspended (reason credit_limit). A 30.00 payment pays invoice 1 and lifts
    the block inside the payment's unit of work. April's invoice reaches -60.00 again; one cent
    (-59.99 is above the limit) lifts it."""
    created = at(2026, 1, 1, 9)
    add_class(app, created)
    add_plan(app, created, "Home 30", "30.00")
    lim = _backward_customer(app, created, "monthly", credit_limit="60.00")
    home = add_service(app, created, lim, "Home 30")

    tick(app, created)
    tick(app, at(2026, 2, 1, 6))
    assert (state(app, home), wallet(app, lim)) == (("active", None), -30_00)
    tick(app, at(2026, 3, 1, 6))
    assert (state(app, home), wallet(app, lim)) == (("suspended", "credit_limit"), -60_00)
    tick(app, at(2026, 3, 4, 6))  # stays blocked while nothing is paid
    assert state(app, home) == ("suspended", "credit_limit")

    paid_at = at(2026, 3, 5, 12)
    recorded = pay(app, paid_at, lim, "30.00", "porta-1")
    assert str(recorded.applied) == "30.00 USD"
    assert (state(app, home), wallet(app, lim)) == (("active", None), -30_00)

    tick(app, at(2026, 4, 1, 6))
    assert (state(app, home), wallet(app, lim)) == (("suspended", "credit_limit"), -60_00)
    cent_at = at(2026, 4, 2, 8)
    pay(app, cent_at, lim, "0.01", "porta-2")
    assert (state(app, home), wallet(app, lim)) == (("active", None), -59_99)

    assert [(e.kind, e.reason, e.at, e.figures) for e in events(app, lim)] == [
        ("service.active", "", at(2026, 1, 1), {"from": "pending", "active_from": "2026-01-01"}),
        (
            "service.suspended",
            "credit_limit",
            at(2026, 3, 1),
            {"from": "active", "balance": "-60.00 USD", "credit_limit": "60.00 USD"},
        ),
        (
            "service.active",
            "",
            paid_at,
            {"from": "suspended", "balance": "-30.00 USD", "lifted": "credit_limit"},
        ),
        (
            "service.suspended",
            "credit_limit",
            at(2026, 4, 1),
            {"from": "active", "balance": "-60.00 USD", "credit_limit": "60.00 USD"},
        ),
        (
            "service.active",
            "",
            cent_at,
            {"from": "suspended", "balance": "-59.99 USD", "lifted": "credit_limit"},
        ),
    ]
    assert [(i.issue_date, i.gross, i.paid, i.status) for i in invoices(app, lim)] == [
        (D(2026, 2, 1), 30_00, 30_00, "paid"),
        (D(2026, 3, 1), 30_00, 1, "partially_paid"),
        (D(2026, 4, 1), 30_00, 0, "issued"),
    ]
    assert check_books(app).wallets == {lim: -59_99}

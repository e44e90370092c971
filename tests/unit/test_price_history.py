"""``ServiceTerms.price_on``: the price of a billing period is the one in effect on its first
day (issue 17), and ``decide`` charges each period by it."""

from __future__ import annotations

from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

from ispbill.domain.billing import (
    BillingPolicy,
    CustomerSnapshot,
    ServiceSnapshot,
    ServiceTerms,
    decide,
)
from ispbill.domain.calendar import BillingCycle, CycleKind
from ispbill.domain.customers import InvoicingMode
from ispbill.domain.lifecycle import ServiceState
from ispbill.domain.money import Money
from ispbill.domain.taxes import NO_TAX


def usd(minor: int) -> Money:
    return Money(minor, "USD")


TERMS = ServiceTerms(
    cycle=BillingCycle(CycleKind.MONTHLY),
    price=usd(40_00),
    tax=NO_TAX,
    mode=InvoicingMode.FORWARD,
    prices=((date(2026, 1, 1), usd(30_00)), (date(2026, 2, 15), usd(40_00))),
)


def test_the_price_on_a_day_is_the_last_change_on_or_before_it() -> None:
    assert TERMS.price_on(date(2025, 6, 1)) == usd(30_00)  # before every change: the oldest
    assert TERMS.price_on(date(2026, 2, 14)) == usd(30_00)
    assert TERMS.price_on(date(2026, 2, 15)) == usd(40_00)
    assert TERMS.price_on(date(2027, 1, 1)) == usd(40_00)
    without = ServiceTerms(TERMS.cycle, usd(25_00), NO_TAX, InvoicingMode.FORWARD)
    assert without.price_on(date(2026, 3, 1)) == usd(25_00)


def test_a_catch_up_prices_each_period_by_its_own_first_day() -> None:
    customer = CustomerSnapshot(
        id=1,
        prepaid=True,
        timezone=ZoneInfo("UTC"),
        balance=usd(1_000_00),
        minimum_balance=usd(0),
    )
    service = ServiceSnapshot(
        id=7,
        state=ServiceState.ACTIVE,
        reason=None,
        active_from=date(2026, 1, 1),
        active_to=None,
        terms=TERMS,
        billed_until=date(2026, 2, 1),
    )
    outcome = decide(
        customer, [service], now=datetime(2026, 4, 1, 6, tzinfo=UTC), policy=BillingPolicy()
    )
    assert [(c.period.start, c.unit_price, c.gross) for c in outcome.charges] == [
        (date(2026, 2, 1), usd(30_00), usd(30_00)),  # began before February 15
        (date(2026, 3, 1), usd(40_00), usd(40_00)),
        (date(2026, 4, 1), usd(40_00), usd(40_00)),
    ]

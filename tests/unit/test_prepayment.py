"""Pay N months when reactivating a paused service (seed 000, issue 13 items 7 and 8): N whole
months from the reactivation day for N times the period price, "active to" their last day, and
the engine charges exactly what was quoted, then pauses."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ispbill.domain.billing import (
    BillingPolicy,
    ChargeKind,
    CustomerSnapshot,
    ServiceSnapshot,
    ServiceTerms,
    decide,
)
from ispbill.domain.calendar import BillingCycle, CycleKind, Period, local_midnight
from ispbill.domain.customers import InvoicingMode
from ispbill.domain.errors import ValidationError
from ispbill.domain.lifecycle import ServiceState
from ispbill.domain.money import Money, sum_money
from ispbill.domain.prepayment import (
    MAX_PERIODS,
    bought_periods,
    is_one_month,
    quote_periods,
    reactivated,
    starts_on,
)
from ispbill.domain.taxes import NO_TAX, TaxProfile, split_tax

CALENDAR = BillingCycle(CycleKind.MONTHLY)
VAT = TaxProfile("VAT 21", 2100)
POLICY = BillingPolicy()


def eur(minor: int) -> Money:
    return Money(minor, "EUR")


def one_month_from(day: date) -> BillingCycle:
    return BillingCycle(CycleKind.EVERY_N_MONTHS, anchor_day=day.day, origin=day)


def customer(balance: int = 0, *, prepaid: bool = True) -> CustomerSnapshot:
    return CustomerSnapshot(1, prepaid, ZoneInfo("UTC"), eur(balance), eur(0))


def paused(price: int, tax: TaxProfile = NO_TAX) -> ServiceSnapshot:
    """Paid January and February on the calendar month, paused past 28 February."""
    terms = ServiceTerms(CALENDAR, eur(price), tax, InvoicingMode.FORWARD, "Fiber", True)
    return ServiceSnapshot(
        7,
        ServiceState.PAUSED,
        "active_to",
        date(2026, 1, 1),
        date(2026, 2, 28),
        terms,
        billed_until=date(2026, 3, 1),
    )


def at(day: date) -> datetime:
    return local_midnight(day, "UTC") + timedelta(hours=9)


def test_two_months_from_15_march_are_two_whole_periods_active_to_14_may() -> None:
    start = date(2026, 3, 15)
    periods = bought_periods(one_month_from(start), start, 2)
    assert periods == (
        Period(date(2026, 3, 15), date(2026, 4, 15)),
        Period(date(2026, 4, 15), date(2026, 5, 15)),
    )
    assert periods[-1].last_day == date(2026, 5, 14)  # "active to": the last active day


def test_the_calendar_month_from_mid_month_is_not_whole_so_it_is_re_anchored() -> None:
    """What the defect billed: the prorated rest of March and April, ending 30 April."""
    start = date(2026, 3, 15)
    assert not starts_on(CALENDAR, start)
    assert is_one_month(CALENDAR)
    assert bought_periods(CALENDAR, start, 2)[0] == Period(start, date(2026, 4, 1))
    assert starts_on(CALENDAR, date(2026, 3, 1))  # on the 1st the grid is whole already
    assert starts_on(one_month_from(start), start)
    assert not is_one_month(BillingCycle(CycleKind.WEEKLY))
    assert not is_one_month(BillingCycle(CycleKind.EVERY_N_MONTHS, n=3, anchor_day=1, origin=start))


def test_a_month_from_the_31st_ends_where_the_cycle_clamps_it() -> None:
    start = date(2026, 1, 31)
    periods = bought_periods(one_month_from(start), start, 3)
    assert [p.start for p in periods] == [start, date(2026, 2, 28), date(2026, 3, 31)]
    assert periods[-1].last_day == date(2026, 4, 29)


@pytest.mark.parametrize("count", [0, MAX_PERIODS + 1])
def test_bought_periods_refuses_a_count_out_of_range(count: int) -> None:
    with pytest.raises(ValidationError) as refused:
        bought_periods(CALENDAR, date(2026, 3, 15), count)
    assert refused.value.field == "months"


def test_the_quote_is_n_times_the_period_price_with_tax_and_the_engine_charges_it() -> None:
    """9.99 + 21 % VAT is 12.09 a month: two months quote 24.18 (not the prorated rest of
    March plus April), the engine charges 12.09 twice and pauses on 15 May."""
    start = date(2026, 3, 15)
    wallet = customer()
    service = reactivated(
        wallet,
        paused(9_99, VAT),
        cycle=one_month_from(start),
        start=start,
        active_to=date(2026, 5, 14),
        today=start,
    )
    assert service.state is ServiceState.DEACTIVATED  # nothing in the wallet yet
    quote = quote_periods(wallet, [service], periods=2, now=at(start), policy=POLICY)
    per_month = split_tax(eur(9_99), VAT).gross
    assert per_month == eur(12_09)
    assert [line.amount for line in quote.lines] == [per_month, per_month]
    assert quote.total == eur(24_18)
    paid = customer(quote.total.minor)
    charged = decide(paid, [service], now=at(start), policy=POLICY)
    assert [(c.kind, c.period, c.gross) for c in charged.charges] == [
        (ChargeKind.REACTIVATION, Period(start, date(2026, 4, 15)), per_month)
    ]
    later = decide(
        CustomerSnapshot(1, True, ZoneInfo("UTC"), charged.balance, eur(0)),
        [charged.services[7]],
        now=at(date(2026, 6, 30)),
        policy=POLICY,
    )
    assert [(c.period, c.gross) for c in later.charges] == [
        (Period(date(2026, 4, 15), date(2026, 5, 15)), per_month)
    ]
    assert later.balance.is_zero
    assert [(t.to_state, t.at) for t in later.transitions] == [
        (ServiceState.PAUSED, local_midnight(date(2026, 5, 15), "UTC"))
    ]


def test_a_wallet_that_covers_the_first_month_is_charged_at_once() -> None:
    start = date(2026, 3, 15)
    wallet = customer(25_00)
    service = reactivated(
        wallet,
        paused(20_00),
        cycle=one_month_from(start),
        start=start,
        active_to=None,
        today=start,
    )
    assert (service.state, service.billed_until, service.active_to) == (
        ServiceState.ACTIVE,
        start,
        None,
    )
    quote = quote_periods(wallet, [service], periods=3, now=at(start), policy=POLICY)
    assert quote.total == eur(3 * 20_00 - 25_00)


@given(
    start=st.dates(date(2024, 1, 1), date(2030, 12, 31)),
    months=st.integers(1, MAX_PERIODS),
    price=st.integers(1, 500_00),
    rate=st.integers(0, 2500),
    inclusive=st.booleans(),
    prepaid=st.booleans(),
)
def test_n_whole_months_cost_n_prices_and_the_engine_charges_exactly_that(
    start: date, months: int, price: int, rate: int, inclusive: bool, prepaid: bool
) -> None:
    tax = TaxProfile("tax", rate, inclusive)
    cycle = one_month_from(start)
    periods = bought_periods(cycle, start, months)
    active_to = periods[-1].last_day
    wallet = customer(prepaid=prepaid)
    service = reactivated(
        wallet, paused(price, tax), cycle=cycle, start=start, active_to=active_to, today=start
    )
    quote = quote_periods(wallet, [service], periods=months, now=at(start), policy=POLICY)
    per_period = split_tax(eur(price), tax).gross
    assert quote.total == per_period * months
    paid = decide(
        customer(quote.total.minor, prepaid=prepaid), [service], now=at(start), policy=POLICY
    )  # the payment's re-evaluation, the day the quote was paid
    funded = CustomerSnapshot(1, prepaid, ZoneInfo("UTC"), paid.balance, eur(0))
    stop = active_to + timedelta(days=1)
    outcome = decide(funded, [paid.services[7]], now=at(stop + timedelta(days=40)), policy=POLICY)
    charges = [*paid.charges, *outcome.charges]
    assert [c.period for c in charges] == list(periods)
    assert sum_money((c.gross for c in charges), "EUR") == quote.total
    assert outcome.balance.is_zero
    final = outcome.services[7]
    assert (final.state, final.billed_until) == (ServiceState.PAUSED, stop)
    assert outcome.transitions[-1].at == local_midnight(stop, "UTC")

"""Pure rules of mid-period changes (``domain/changes.py``), on many random periods and prices.

The properties the issue asks for: prorated by days, one rounding per amount, parts that sum
(what stays charged plus what is credited is exactly what was charged), an upgrade's charge and
credit cover the same days, and a period charged in arrears is priced as the engine prices it.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta
from fractions import Fraction
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ispbill.domain.billing import (
    ChargeKind,
    CustomerSnapshot,
    ServiceSnapshot,
    ServiceTerms,
    current_period,
    price_period,
)
from ispbill.domain.calendar import BillingCycle, CycleKind, Period
from ispbill.domain.changes import (
    ended_active_to,
    quote_plan_change,
    quote_termination,
)
from ispbill.domain.customers import InvoicingMode
from ispbill.domain.errors import ValidationError
from ispbill.domain.invoicing import (
    DocumentKind,
    InvoiceDraft,
    InvoiceLine,
    price_line,
    wallet_credit_note,
)
from ispbill.domain.lifecycle import ServiceState
from ispbill.domain.money import Money
from ispbill.domain.taxes import NO_TAX, TaxProfile

MONTHLY = BillingCycle(CycleKind.MONTHLY)
AT = datetime(2026, 4, 11, 10, tzinfo=UTC)
TODAY = date(2026, 4, 11)


def usd(minor: int) -> Money:
    return Money(minor, "USD")


def terms(
    price: int, mode: InvoicingMode = InvoicingMode.FORWARD, tax: TaxProfile = NO_TAX
) -> ServiceTerms:
    return ServiceTerms(MONTHLY, usd(price), tax, mode, description=f"Plan {price}")


def customer(prepaid: bool = False, balance: int = 0) -> CustomerSnapshot:
    return CustomerSnapshot(1, prepaid, ZoneInfo("UTC"), usd(balance), usd(0))


def service(
    price: int,
    *,
    billed_until: date | None = date(2026, 5, 1),
    mode: InvoicingMode = InvoicingMode.FORWARD,
    tax: TaxProfile = NO_TAX,
    state: ServiceState = ServiceState.ACTIVE,
    active_from: date = date(2026, 4, 1),
) -> ServiceSnapshot:
    return ServiceSnapshot(
        7, state, None, active_from, None, terms(price, mode, tax), billed_until=billed_until
    )


def charged(price: int, start: date, end: date, tax: TaxProfile = NO_TAX) -> InvoiceLine:
    """The stored charge of [start, end) of its month, as a line (what the engine charged)."""
    _, full = current_period(MONTHLY, start)
    return price_line(
        description=f"Plan {price}",
        unit_price=usd(price),
        tax_profile=tax,
        quantity=Fraction((end - start).days, full.days),
        service_id=7,
        period_start=start,
        period_end=end,
    )


def refused(field: str, fragment: str = "") -> pytest.RaisesExc[ValidationError]:
    return pytest.raises(ValidationError, match=rf"^{re.escape(field)}: .*{re.escape(fragment)}")


def test_the_issue_example() -> None:
    """30.00 -> 45.00 on day 11 of a 30-day month: credit 20.00, charge 30.00, net 10.00."""
    quote = quote_plan_change(
        customer(),
        service(30_00),
        new_terms=terms(45_00),
        charged=charged(30_00, date(2026, 4, 1), date(2026, 5, 1)),
        effective=TODAY,
        today=TODAY,
        at=AT,
    )
    assert quote.credit is not None
    assert quote.charge is not None
    assert (quote.credit.kind, quote.charge.kind) == (ChargeKind.REFUND, ChargeKind.CHANGE)
    assert quote.credit.period == quote.charge.period == Period(TODAY, date(2026, 5, 1))
    assert quote.credit.quantity == quote.charge.quantity == Fraction(2, 3)
    assert (quote.credit_amount, quote.charge_amount, quote.net) == (
        usd(20_00),
        usd(30_00),
        usd(10_00),
    )
    assert quote.kept == usd(10_00)
    assert quote.billed_until == date(2026, 5, 1)


tax_profiles = st.sampled_from(
    [NO_TAX, TaxProfile("VAT 21", 2100), TaxProfile("VAT 21 incl", 2100, inclusive=True)]
)


@given(
    old=st.integers(100, 10**9),  # from 1.00: a day of it never rounds to nothing
    new=st.integers(100, 10**9),
    first=st.integers(0, 29),
    offset=st.integers(0, 29),
    tax=tax_profiles,
)
def test_credit_and_kept_part_sum_to_the_charge(
    old: int, new: int, first: int, offset: int, tax: TaxProfile
) -> None:
    """Whatever the charged span (a whole April or its prorated rest) and the change day in it."""
    start = date(2026, 4, 1) + timedelta(days=first)
    effective = start + timedelta(days=offset % (30 - first))
    line = charged(old, start, date(2026, 5, 1), tax)
    quote = quote_plan_change(
        customer(),
        service(old, tax=tax),
        new_terms=terms(new, tax=tax),
        charged=line,
        effective=effective,
        today=date(2026, 4, 30),
        at=AT,
    )
    assert quote.credit is not None
    assert quote.charge is not None
    unused = (date(2026, 5, 1) - effective).days
    assert quote.credit.quantity == Fraction(unused, 30)  # days of the full period
    assert quote.charge.quantity == quote.credit.quantity
    # one rounding per amount, half-up, from the unit price
    assert (
        quote.credit.split.gross
        == price_line(
            description="x", unit_price=usd(old), tax_profile=tax, quantity=Fraction(unused, 30)
        ).gross
    )
    assert quote.kept is not None
    assert quote.kept + quote.credit_amount == line.gross
    assert not quote.kept.is_negative
    assert quote.credit.split.net <= line.net
    assert quote.credit.split.tax <= line.tax
    assert quote.net == quote.charge_amount - quote.credit_amount
    if effective == start:  # the whole span: exactly what was charged comes back
        assert quote.credit_amount == line.gross


@given(price=st.integers(100, 10**9), day=st.integers(1, 30))
def test_arrears_are_priced_as_the_engine_prices_a_period_cut_short(price: int, day: int) -> None:
    effective = date(2026, 4, 1) + timedelta(days=day - 1)
    snapshot = service(price, billed_until=None, mode=InvoicingMode.BACKWARD)
    quote = quote_termination(
        customer(), snapshot, charged=None, effective=effective, today=date(2026, 4, 30), at=AT
    )
    assert quote.credit is None
    if day == 1:
        assert quote.charge is None
        return
    assert quote.charge is not None
    used = Period(date(2026, 4, 1), effective)
    _, split = price_period(snapshot.terms, used, Period(date(2026, 4, 1), date(2026, 5, 1)))
    assert (quote.charge.kind, quote.charge.period, quote.charge.split) == (
        ChargeKind.PERIOD,
        used,
        split,
    )


def test_a_prepaid_customer_is_charged_in_advance_whatever_the_mode() -> None:
    quote = quote_termination(
        customer(prepaid=True),
        service(30_00, mode=InvoicingMode.BACKWARD),
        charged=charged(30_00, date(2026, 4, 1), date(2026, 5, 1)),
        effective=TODAY,
        today=TODAY,
        at=AT,
    )
    assert (quote.in_advance, quote.credit_amount, quote.charge) == (True, usd(20_00), None)
    assert quote.billed_until == TODAY


def test_backward_plan_change_moves_the_billing_position() -> None:
    quote = quote_plan_change(
        customer(),
        service(30_00, billed_until=None, mode=InvoicingMode.BACKWARD),
        new_terms=terms(45_00, InvoicingMode.BACKWARD),
        charged=None,
        effective=TODAY,
        today=TODAY,
        at=AT,
    )
    assert quote.charge is not None
    assert (quote.charge_amount, quote.billed_until) == (usd(10_00), TODAY)


def test_services_not_billed_accrue_nothing_in_arrears() -> None:
    for state in (ServiceState.PAUSED, ServiceState.PENDING, ServiceState.DEACTIVATED):
        snapshot = service(30_00, billed_until=None, mode=InvoicingMode.BACKWARD, state=state)
        quote = quote_termination(
            customer(), snapshot, charged=None, effective=TODAY, today=TODAY, at=AT
        )
        assert (quote.charge, quote.credit) == (None, None)


def test_refusals() -> None:
    line = charged(30_00, date(2026, 4, 1), date(2026, 5, 1))
    with refused("effective", "future"):
        quote_termination(
            customer(),
            service(30_00),
            charged=line,
            effective=date(2026, 4, 12),
            today=TODAY,
            at=AT,
        )
    with refused("effective", "2026-04-01"):
        quote_termination(
            customer(),
            service(30_00),
            charged=line,
            effective=date(2026, 3, 31),
            today=TODAY,
            at=AT,
        )
    with refused("effective", "charged in arrears up to"):
        quote_termination(
            customer(),
            service(30_00, billed_until=date(2026, 4, 1), mode=InvoicingMode.BACKWARD),
            charged=None,
            effective=date(2026, 3, 20),
            today=TODAY,
            at=AT,
        )
    with refused("plan", "top up first"):
        quote_plan_change(
            customer(prepaid=True, balance=9_99),
            service(30_00),
            new_terms=terms(45_00),
            charged=line,
            effective=TODAY,
            today=TODAY,
            at=AT,
        )
    weekly = ServiceTerms(BillingCycle(CycleKind.WEEKLY), usd(10_00), NO_TAX, InvoicingMode.FORWARD)
    with refused("plan", "another cycle"):
        quote_plan_change(
            customer(),
            service(30_00),
            new_terms=weekly,
            charged=line,
            effective=TODAY,
            today=TODAY,
            at=AT,
        )


def test_an_affordable_prepaid_upgrade_is_accepted() -> None:
    quote = quote_plan_change(
        customer(prepaid=True, balance=10_00),
        service(30_00),
        new_terms=terms(45_00),
        charged=charged(30_00, date(2026, 4, 1), date(2026, 5, 1)),
        effective=TODAY,
        today=TODAY,
        at=AT,
    )
    assert quote.net == usd(10_00)


def test_ended_active_to_is_the_day_before_or_an_earlier_one() -> None:
    assert ended_active_to(service(30_00), TODAY) == date(2026, 4, 10)
    assert ended_active_to(service(30_00, active_from=date(2026, 4, 10)), TODAY) is None


def test_a_wallet_credit_note_names_no_invoice() -> None:
    line = charged(30_00, TODAY, date(2026, 5, 1))
    note = wallet_credit_note([line], customer_id=1, currency="USD", issue_date=TODAY)
    assert (note.kind, note.original_number, note.gross) == (
        DocumentKind.CREDIT_NOTE,
        None,
        line.gross,
    )
    with refused("original_number", "names no invoice"):
        InvoiceDraft(
            DocumentKind.CREDIT_NOTE, 1, "USD", TODAY, TODAY, (line,), "2026-1", uninvoiced=True
        )
    with refused("uninvoiced"):
        InvoiceDraft(DocumentKind.INVOICE, 1, "USD", TODAY, TODAY, (line,), uninvoiced=True)


def test_amounts_that_round_to_nothing_are_neither_charged_nor_credited() -> None:
    """A free plan (or a cent over 30 days): the ledger refuses zero postings, so no charge."""
    quote = quote_plan_change(
        customer(),
        service(1),
        new_terms=terms(0),
        charged=charged(1, date(2026, 4, 1), date(2026, 5, 1)),
        effective=date(2026, 4, 30),
        today=date(2026, 4, 30),
        at=AT,
    )
    assert (quote.credit, quote.charge, quote.kept) == (None, None, usd(1))


def test_a_credit_that_rounds_to_nothing_still_charges_the_new_plan() -> None:
    quote = quote_plan_change(
        customer(),
        service(1),
        new_terms=terms(45_00),
        charged=charged(1, date(2026, 4, 1), date(2026, 5, 1)),
        effective=date(2026, 4, 30),
        today=date(2026, 4, 30),
        at=AT,
    )
    assert quote.credit is None
    assert quote.charge is not None
    assert (quote.charge.period, quote.charge_amount) == (
        Period(date(2026, 4, 30), date(2026, 5, 1)),
        usd(1_50),
    )

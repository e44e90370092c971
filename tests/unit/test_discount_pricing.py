"""Discounts in the engine and on the document (issue 17): a customer-wide fixed amount is
split over the charges of a period (the plan's and an add-on's, at different tax rates), each
part taxed as its charge, the parts summing to the whole and never above a charge; a discount
line may be negative, no other line may, and no document totals below zero."""

from __future__ import annotations

from datetime import UTC, date, datetime
from fractions import Fraction
from zoneinfo import ZoneInfo

import pytest

from ispbill.domain.billing import (
    AddOn,
    BillingPolicy,
    ChargeKind,
    CustomerSnapshot,
    ServiceSnapshot,
    ServiceTerms,
    decide,
)
from ispbill.domain.calendar import BillingCycle, CycleKind
from ispbill.domain.customers import InvoicingMode
from ispbill.domain.discounts import Discount
from ispbill.domain.errors import ValidationError
from ispbill.domain.invoicing import DocumentKind, InvoiceDraft, InvoiceLine, LineKind
from ispbill.domain.lifecycle import ServiceState
from ispbill.domain.money import Money
from ispbill.domain.taxes import NO_TAX, TaxProfile


def usd(minor: int) -> Money:
    return Money(minor, "USD")


VAT21 = TaxProfile("VAT 21", 2100)
VAT10 = TaxProfile("VAT 10", 1000)
MAR1, APR1 = date(2026, 3, 1), date(2026, 4, 1)


def _outcome(*discounts: Discount, balance: int = 1_000_00) -> list[tuple[str, int, int, int]]:
    customer = CustomerSnapshot(
        id=1,
        prepaid=True,
        timezone=ZoneInfo("UTC"),
        balance=usd(balance),
        minimum_balance=usd(0),
        discounts=tuple(d for d in discounts if d.service_id is None),
    )
    service = ServiceSnapshot(
        id=7,
        state=ServiceState.ACTIVE,
        reason=None,
        active_from=MAR1,
        active_to=None,
        terms=ServiceTerms(
            BillingCycle(CycleKind.MONTHLY), usd(30_00), VAT21, InvoicingMode.FORWARD
        ),
        billed_until=MAR1,
        addons=(AddOn(3, "Static IP", usd(10_00), VAT10, MAR1),),
        discounts=tuple(d for d in discounts if d.service_id is not None),
    )
    outcome = decide(
        customer, [service], now=datetime(2026, 3, 1, 6, tzinfo=UTC), policy=BillingPolicy()
    )
    return [
        (c.kind.value, c.split.net.minor, c.split.tax.minor, c.tax.rate_bp) for c in outcome.charges
    ]


def test_a_customer_amount_is_split_over_the_charges_each_taxed_as_its_charge() -> None:
    # 35.00 off: 30.00 from the plan (21 %), the 5.00 left from the add-on (10 %)
    fixed = Discount(1, None, None, usd(35_00), MAR1, periods=1)
    assert _outcome(fixed) == [
        ("period", 30_00, 6_30, 2100),
        ("addon", 10_00, 1_00, 1000),
        ("discount", -30_00, -6_30, 2100),
        ("discount", -5_00, -50, 1000),
    ]


def test_an_amount_larger_than_the_period_is_capped_at_its_charges() -> None:
    fixed = Discount(1, None, None, usd(100_00), MAR1, periods=1)
    charges = _outcome(fixed)
    assert sum(net + tax for _, net, tax, _ in charges) == 0


def test_a_percent_on_a_service_reduces_each_of_its_charges() -> None:
    percent = Discount(2, 7, 10, None, MAR1, until=date(2026, 3, 31))
    assert _outcome(percent)[2:] == [("discount", -3_00, -63, 2100), ("discount", -1_00, -10, 1000)]


def test_a_prepaid_period_is_affordable_net_of_its_discount() -> None:
    # 36.30 + 11.00 = 47.30 is over 40.00; half off (23.65) is not
    assert _outcome(balance=40_00) == []
    half = Discount(2, 7, 50, None, MAR1, periods=1)
    assert [kind for kind, *_ in _outcome(half, balance=40_00)] == [
        "period",
        "addon",
        "discount",
        "discount",
    ]


def test_used_periods_count_and_a_period_before_the_start_is_not_discounted() -> None:
    spent = Discount(1, 7, 10, None, MAR1, periods=1, used=frozenset({date(2026, 2, 1)}))
    assert [kind for kind, *_ in _outcome(spent)] == ["period", "addon"]
    later = Discount(1, 7, 10, None, APR1, periods=1)
    assert [kind for kind, *_ in _outcome(later)] == ["period", "addon"]
    assert ChargeKind.DISCOUNT.value == "discount"


def _line(kind: LineKind, minor: int) -> InvoiceLine:
    return InvoiceLine(
        "Home" if kind is LineKind.CHARGE else "Discount",
        7,
        MAR1,
        APR1,
        Fraction(1),
        usd(minor),
        NO_TAX,
        usd(minor),
        usd(0),
        kind=kind,
    )


def test_only_a_discount_line_is_negative_and_no_document_totals_below_zero() -> None:
    with pytest.raises(ValidationError) as negative:
        _line(LineKind.CHARGE, -1_00)
    assert negative.value.field == "unit_price"
    with pytest.raises(ValidationError) as positive:
        _line(LineKind.DISCOUNT, 1_00)
    assert positive.value.field == "unit_price"
    lines = (_line(LineKind.CHARGE, 30_00), _line(LineKind.DISCOUNT, -30_00))
    draft = InvoiceDraft(DocumentKind.INVOICE, 1, "USD", MAR1, MAR1, lines)
    assert draft.gross == usd(0)
    with pytest.raises(ValidationError) as below:
        InvoiceDraft(
            DocumentKind.INVOICE,
            1,
            "USD",
            MAR1,
            MAR1,
            (_line(LineKind.CHARGE, 30_00), _line(LineKind.DISCOUNT, -30_01)),
        )
    assert below.value.field == "lines"

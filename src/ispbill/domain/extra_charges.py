"""One-off extra charges and recurring add-ons an operator adds (issue 17): what they may be,
and what a one-off costs.

A one-off charge (installation, equipment, a late fee) is a unit price times a whole quantity,
rounded once and split into net and tax by the charge's tax profile, exactly as a plan's period
charge is (``domain/taxes.split_tax``). It is a charge of kind ``extra`` covering its one day,
so it reads like every other charge on an invoice, a statement and the wallet's history. A
recurring add-on's pricing is the engine's (``domain/billing.AddOn``), prorated with the plan.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from fractions import Fraction

from ispbill.domain.billing import AddOn, Charge, ChargeKind
from ispbill.domain.calendar import Period
from ispbill.domain.errors import ValidationError
from ispbill.domain.money import Money
from ispbill.domain.taxes import TaxProfile, split_tax
from ispbill.domain.text import refuse_nul

DESCRIPTION_MAX = 300
QUANTITY_MAX = 10_000


def clean_description(text: str, field: str = "description") -> str:
    cleaned = refuse_nul(text, field).strip()
    if not cleaned:
        raise ValidationError(field, "must not be empty")
    if len(cleaned) > DESCRIPTION_MAX:
        raise ValidationError(field, f"at most {DESCRIPTION_MAX} characters")
    if any(not c.isprintable() for c in cleaned):
        raise ValidationError(field, "must be printable text on one line")
    return cleaned


def check_price(amount: Money, currency: str, field: str = "amount") -> Money:
    if amount.currency != currency:
        raise ValidationError(field, f"is in {amount.currency}; the customer pays in {currency}")
    if not amount.is_positive:
        raise ValidationError(field, "must be greater than zero")
    return amount


def check_quantity(quantity: int) -> int:
    if isinstance(quantity, bool) or not isinstance(quantity, int):
        raise ValidationError("quantity", "must be a whole number")
    if not 1 <= quantity <= QUANTITY_MAX:
        raise ValidationError("quantity", f"must be between 1 and {QUANTITY_MAX}")
    return quantity


def one_off_charge(
    *,
    service_id: int | None,
    description: str,
    unit_price: Money,
    quantity: int,
    tax: TaxProfile,
    day: date,
    at: datetime,
) -> Charge:
    """The charge of ``quantity`` times ``unit_price`` on ``day``: one rounding (the product is
    exact in minor units; the tax split rounds once, half-up)."""
    amount = unit_price * check_quantity(quantity)
    return Charge(
        # a charge without a service still has the charge's shape; 0 is never a service id
        service_id or 0,
        ChargeKind.EXTRA,
        Period(day, day + timedelta(days=1)),
        Fraction(quantity),
        unit_price,
        split_tax(amount, tax),
        at,
        tax,
        clean_description(description),
    )


def new_addon(
    *,
    description: str,
    price: Money,
    currency: str,
    tax: TaxProfile,
    starts_on: date,
    ends_on: date | None,
) -> AddOn:
    """An add-on before it is stored (id 0): validated as the table's constraints require."""
    if ends_on is not None and ends_on < starts_on:
        raise ValidationError("ends_on", f"{ends_on} is before the first day {starts_on}")
    return AddOn(
        id=0,
        description=clean_description(description),
        price=check_price(price, currency, "price"),
        tax=tax,
        starts_on=starts_on,
        ends_on=ends_on,
    )

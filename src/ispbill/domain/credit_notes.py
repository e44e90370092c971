"""Corrections of issued invoices (issue 17, item 6): what a credit note of part of a line
gives back, and the rules for a reason and for voiding.

An invoice is never edited. A correction is a credit note (its own ``CN`` number series, so the
invoice series stays gapless: a voided invoice keeps its number and its status says ``void``)
that gives back a whole invoice, whole lines, or an amount of one line. An amount is a gross
amount, split into net and tax at the line's own rate with one rounding (the tax-inclusive
split of ``domain/taxes``), so the parts sum to the amount exactly.
"""

from __future__ import annotations

from fractions import Fraction

from ispbill.domain.errors import ValidationError
from ispbill.domain.invoicing import InvoiceLine
from ispbill.domain.money import Money
from ispbill.domain.taxes import TaxProfile, split_tax
from ispbill.domain.text import refuse_nul

REASON_MAX = 500


def clean_reason(text: str) -> str:
    """A correction needs a reason a person wrote (an auditor reads it)."""
    cleaned = refuse_nul(text or "", "reason").strip()
    if not cleaned:
        raise ValidationError("reason", "required: say why the invoice is corrected")
    if len(cleaned) > REASON_MAX:
        raise ValidationError("reason", f"at most {REASON_MAX} characters")
    return cleaned


def partial_credit_line(line: InvoiceLine, amount: Money) -> InvoiceLine:
    """``amount`` (gross) of ``line`` given back, never more than the line's total."""
    if amount.currency != line.gross.currency:
        raise ValidationError(
            "amount", f"is in {amount.currency}; the line is in {line.gross.currency}"
        )
    if not amount.is_positive:
        raise ValidationError("amount", "must be greater than zero")
    if amount > line.gross:
        raise ValidationError("amount", f"{amount} exceeds the line's total {line.gross}")
    if amount == line.gross:
        return line
    rate = line.tax_profile
    split = split_tax(amount, TaxProfile(rate.name, rate.rate_bp, inclusive=True))
    return InvoiceLine(
        description=f"{line.description} (partial credit)",
        service_id=line.service_id,
        period_start=line.period_start,
        period_end=line.period_end,
        quantity=Fraction(1),
        unit_price=amount if rate.inclusive else split.net,
        tax_profile=rate,
        net=split.net,
        tax=split.tax,
    )

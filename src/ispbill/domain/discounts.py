"""Discounts (issue 17): a percent or a fixed amount off, on one service or on every service of
a customer, for N periods or until a date.

A discount is not a correction: it is a negative line of the same invoice, of kind
``discount``, next to the charge it reduces (``domain/invoicing.LineKind``). The engine
(``domain/billing``) gives each charge of a period (the plan's and its add-ons') its own
discount charge, taxed as that charge, so every tax rate's net and tax include the discount and
the parts of a customer-wide fixed amount sum to the whole. A discount never takes more than
the charges it applies to (capped at them), so an invoice never totals below zero.

Periods are counted by the first day of the periods a discount reduced: the N periods of a
customer-wide discount are N distinct period starts of the customer's services. A fixed amount
is per period: the first charges of that period take it until it is used up.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from ispbill.domain.errors import ValidationError
from ispbill.domain.money import Money

PERIODS_MAX = 1_000
REASON_MAX = 300


@dataclass(frozen=True, slots=True)
class Discount:
    """An active discount as the engine sees it: ``used`` holds the period starts already
    reduced (so a tick after downtime counts exactly as daily ticks would)."""

    id: int
    service_id: int | None  # None: every service of the customer
    percent: int | None
    amount: Money | None
    starts_on: date
    periods: int | None = None
    until: date | None = None  # the last day a discounted period may start on
    reason: str = ""
    used: frozenset[date] = frozenset()

    def applies(self, period_start: date, used: frozenset[date] | set[date]) -> bool:
        """Whether a period starting on ``period_start`` is discounted."""
        if period_start < self.starts_on:
            return False
        if self.until is not None and period_start > self.until:
            return False
        if self.periods is not None and period_start not in used:
            return len(used) < self.periods
        return True

    @property
    def label(self) -> str:
        what = f"{self.percent} %" if self.percent is not None else str(self.amount)
        return f"Discount {what}" + (f": {self.reason}" if self.reason else "")


def off(discount: Discount, base: Money, left: Money | None) -> Money:
    """How much ``discount`` takes off a charge of ``base`` (the amount it was priced from):
    a percent of it, rounded once, or what is left of the fixed amount; never more than it."""
    if discount.percent is not None:
        return base.percent_bp(discount.percent * 100)
    assert left is not None
    return left if left < base else base


def check_discount(
    *,
    percent: int | None,
    amount: Money | None,
    currency: str,
    periods: int | None,
    until: date | None,
    starts_on: date,
    reason: str,
) -> str:
    """Refuse a discount that is not exactly one of percent/amount and one of periods/until,
    naming the field; returns the cleaned reason."""
    if (percent is None) == (amount is None):
        raise ValidationError("percent", "give exactly one of percent and amount")
    if percent is not None and (
        isinstance(percent, bool) or not isinstance(percent, int) or not 1 <= percent <= 100
    ):
        raise ValidationError("percent", "must be a whole number from 1 to 100")
    if amount is not None:
        if amount.currency != currency:
            raise ValidationError(
                "amount", f"is in {amount.currency}; the customer pays in {currency}"
            )
        if not amount.is_positive:
            raise ValidationError("amount", "must be greater than zero")
    if (periods is None) == (until is None):
        raise ValidationError("periods", "give exactly one of periods and until")
    if periods is not None:
        if isinstance(periods, bool) or not isinstance(periods, int):
            raise ValidationError("periods", "must be a whole number")
        if not 1 <= periods <= PERIODS_MAX:
            raise ValidationError("periods", f"must be from 1 to {PERIODS_MAX}")
    if until is not None and until < starts_on:
        raise ValidationError("until", f"{until} is before the discount starts ({starts_on})")
    cleaned = reason.strip()
    if len(cleaned) > REASON_MAX:
        raise ValidationError("reason", f"at most {REASON_MAX} characters")
    if any(not c.isprintable() for c in cleaned):
        raise ValidationError("reason", "must be printable text on one line")
    return cleaned

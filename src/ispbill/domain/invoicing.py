"""Invoicing: documents of charges and taxes, their numbers, totals, due dates and status.

What this module owns, and where each rule comes from:

- The issue: invoices are "issued for postpaid and forward-invoiced services, one per customer
  per billing date, numbered gaplessly per series (configurable format, e.g. ``2026-000123``),
  with lines (service, period, quantity, unit price, tax), a tax profile (exclusive or inclusive
  rates, exact totals), due date from payment terms, status (issued, partially paid, paid,
  void), immutable once issued; corrections by credit notes."
- ARCHITECTURE invariant 1: "Rounding happens once, at the invoice line, half-up, and a split
  distributes the remainder so the parts sum exactly to the whole." ``price_line`` is that one
  rounding: ``unit_price * quantity`` rounded half-up (``Money.prorate``), then split into net and
  tax by ``split_tax`` so that ``net + tax == gross`` exactly. Totals and the tax summary are
  plain integer sums of the lines, so they agree with the lines to the minor unit.
- PortaBilling seed: the customer class carries the "invoice template" and the "taxation"; the
  "billing period defines this customer's invoice frequency" and the "billing period timezone"
  is where a period closes "and generate[s] an invoice". Which services get an invoice on which
  date is the billing use case's decision; this module builds and checks the document.
- UISP seed: "The one month invoice will be marked as paid and the rest of the payment will be
  saved as the client's credit." So the amount applied to an invoice never exceeds its gross
  (``status_for`` refuses it); the surplus lives in the wallet.

A document here is a *draft* (``InvoiceDraft``): it has no number. The storage layer issues it by
taking the next number of its series (``series_key`` names the counter row, incremented under a
row lock in the same transaction that inserts the invoice, so a rollback also rolls the counter
back: gapless) and never updates it afterwards. Uniqueness of "one per customer per billing
date" is a storage constraint on (customer, issue date, kind). Corrections are credit notes
(``credit_note_for``, ``prorated_credit_line``): new documents whose lines carry positive
quantities and amounts; the document kind gives the direction (``DocumentKind.sign``). A credit
note names the invoice it corrects, except one of charges no invoice lists (a prepaid wallet's
period charges): ``wallet_credit_note``.

Pure: no clock, no database; dates are passed in.
"""

from __future__ import annotations

import re
import string
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from enum import StrEnum
from fractions import Fraction

from ispbill.domain.errors import CurrencyMismatch, ValidationError
from ispbill.domain.money import Money, normalize_currency, sum_money
from ispbill.domain.taxes import TaxProfile, split_tax

__all__ = [
    "MAX_PAYMENT_TERMS_DAYS",
    "CounterReset",
    "DocumentKind",
    "InvoiceDraft",
    "InvoiceLine",
    "InvoiceStatus",
    "NumberSeries",
    "SeriesFormat",
    "TaxSummaryRow",
    "credit_note_for",
    "due_date",
    "format_number",
    "parse_series_format",
    "price_line",
    "prorated_credit_line",
    "series_key",
    "status_for",
    "wallet_credit_note",
]

MAX_PAYMENT_TERMS_DAYS = 365
DESCRIPTION_MAX = 500
# A number is printed on paper, typed into bank transfers as the payment reference and used as a
# key: short, one line.
NUMBER_FORMAT_MAX = 64
SERIES_NAME = re.compile(r"^[A-Za-z0-9_-]{1,32}$")
_SEQ_SPEC = re.compile(r"^0([1-9][0-9]?)$")  # "{seq:06}": zero-padded to a width of 1..99
_MAX_SEQ_WIDTH = 20
_PLACEHOLDERS = frozenset({"year", "month", "seq", "prefix"})
_NUMBER_FORMAT_EXAMPLE = "e.g. '{year}-{seq:06}' or '{prefix}{year}{month}-{seq:04}'"


class InvoiceStatus(StrEnum):
    """Where an issued document stands with its payments."""

    ISSUED = "issued"
    PARTIALLY_PAID = "partially_paid"
    PAID = "paid"
    VOID = "void"


class DocumentKind(StrEnum):
    """What a document is; a credit note reverses (part of) an invoice."""

    INVOICE = "invoice"
    CREDIT_NOTE = "credit_note"
    STATEMENT = "statement"

    @property
    def sign(self) -> int:
        """Direction of the document's amounts for the customer's balance.

        +1: an invoice makes the customer owe its gross. -1: a credit note gives it back.
        0: a statement only reports what other documents did; it moves no money.
        """
        if self is DocumentKind.INVOICE:
            return 1
        if self is DocumentKind.CREDIT_NOTE:
            return -1
        return 0


class CounterReset(StrEnum):
    """When a series' sequence starts again at 1, implied by its number format."""

    NEVER = "never"
    YEARLY = "yearly"
    MONTHLY = "monthly"


# -- lines ----------------------------------------------------------------------------------------


def _as_quantity(value: Fraction | int) -> Fraction:
    # A float quantity (0.1) is already inexact; a bool is a bug.
    if isinstance(value, bool) or not isinstance(value, Fraction | int):
        raise TypeError(f"quantity must be a Fraction or an int, got {type(value).__name__}")
    quantity = Fraction(value)
    if quantity <= 0:
        raise ValidationError(
            "quantity", "must be greater than zero (a credit note carries positive quantities)"
        )
    return quantity


class LineKind(StrEnum):
    """What a line is: a charge (everything priced), or a discount of a charge (issue 17)."""

    CHARGE = "charge"
    # A discount is not a correction (those are credit notes): it is a negative line of the
    # same invoice, taxed as the charge it reduces (``domain/discounts.py``).
    DISCOUNT = "discount"


@dataclass(frozen=True, slots=True)
class InvoiceLine:
    """One priced line: service, period, quantity, unit price, tax profile and its amounts.

    Build lines with ``price_line``, which rounds once. The constructor also takes stored amounts
    (an issued invoice is reloaded as it was printed, not recomputed) and checks only that they
    are coherent: one currency, no negative amount (but a ``discount`` line, never positive),
    net and tax of a zero line are zero.
    ``period_end`` is exclusive, like ``calendar.Period``. ``unit_price`` is net for an
    exclusive tax profile and gross for an inclusive one.
    """

    description: str
    service_id: int | None
    period_start: date | None
    period_end: date | None
    quantity: Fraction
    unit_price: Money
    tax_profile: TaxProfile
    net: Money
    tax: Money
    kind: LineKind = LineKind.CHARGE

    def __post_init__(self) -> None:
        object.__setattr__(self, "kind", LineKind(self.kind))
        description = self.description.strip() if isinstance(self.description, str) else ""
        if not description:
            raise ValidationError("description", "required")
        if len(description) > DESCRIPTION_MAX:
            raise ValidationError("description", f"at most {DESCRIPTION_MAX} characters")
        object.__setattr__(self, "description", description)
        object.__setattr__(self, "quantity", _as_quantity(self.quantity))
        if self.service_id is not None and self.service_id <= 0:
            raise ValidationError("service_id", "must be a positive id")
        if (self.period_start is None) != (self.period_end is None):
            raise ValidationError("period", "give both period_start and period_end, or neither")
        if (
            self.period_start is not None
            and self.period_end is not None
            and self.period_end <= self.period_start
        ):
            raise ValidationError(
                "period_end", f"must be after period_start {self.period_start} (end is exclusive)"
            )
        discount = self.kind is LineKind.DISCOUNT
        if self.unit_price.is_negative and not discount:
            raise ValidationError(
                "unit_price", "must not be negative; corrections are made by credit notes"
            )
        if discount and self.unit_price.is_positive:
            raise ValidationError("unit_price", "a discount line is not positive")
        for name, amount in (("net", self.net), ("tax", self.tax)):
            if amount.currency != self.unit_price.currency:
                raise CurrencyMismatch(self.unit_price.currency, amount.currency, field=name)
            if amount.is_negative and not discount:
                raise ValidationError(name, "must not be negative")
            if amount.is_positive and discount:
                raise ValidationError(name, "a discount line is not positive")

    @property
    def gross(self) -> Money:
        """Net plus tax: exact by construction."""
        return self.net + self.tax

    @property
    def currency(self) -> str:
        return self.unit_price.currency

    @property
    def period_days(self) -> int | None:
        """Number of dates the line's period covers, or None for a line without a period."""
        if self.period_start is None or self.period_end is None:
            return None
        return (self.period_end - self.period_start).days


def price_line(
    *,
    description: str,
    unit_price: Money,
    tax_profile: TaxProfile,
    quantity: Fraction | int = 1,
    service_id: int | None = None,
    period_start: date | None = None,
    period_end: date | None = None,
) -> InvoiceLine:
    """Price one line: the one rounding of invariant 1.

    ``amount = unit_price * quantity`` rounded once, half-up, in minor units; then the tax split
    of that amount (exclusive: the amount is net and tax is added; inclusive: the amount is
    gross and holds the tax). A prorated first period of 21 days out of 30 is
    ``quantity=Fraction(21, 30)``.
    """
    exact = _as_quantity(quantity)
    amount = unit_price.prorate(exact.numerator, exact.denominator)
    split = split_tax(amount, tax_profile)
    return InvoiceLine(
        description=description,
        service_id=service_id,
        period_start=period_start,
        period_end=period_end,
        quantity=exact,
        unit_price=unit_price,
        tax_profile=tax_profile,
        net=split.net,
        tax=split.tax,
    )


# -- documents ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TaxSummaryRow:
    """The lines of one tax rate, summed: what a tax authority wants to see per rate."""

    rate_bp: int
    inclusive: bool
    net: Money
    tax: Money

    @property
    def gross(self) -> Money:
        return self.net + self.tax


def due_date(issue_date: date, payment_terms_days: int) -> date:
    """The date payment is due: ``payment_terms_days`` (0..365) after ``issue_date``."""
    if isinstance(payment_terms_days, bool) or not isinstance(payment_terms_days, int):
        raise ValidationError("payment_terms_days", "must be a whole number of days")
    if not 0 <= payment_terms_days <= MAX_PAYMENT_TERMS_DAYS:
        raise ValidationError(
            "payment_terms_days", f"must be between 0 and {MAX_PAYMENT_TERMS_DAYS} days"
        )
    return issue_date + timedelta(days=payment_terms_days)


@dataclass(frozen=True, slots=True)
class InvoiceDraft:
    """An unnumbered document: what will be issued, with its exact totals.

    All lines are in ``currency``. Amounts are positive whatever the kind; ``kind.sign`` says
    which way they move the customer's balance. ``original_number`` is the number of the invoice
    a credit note corrects (required for a credit note, refused otherwise), except for a credit
    note of charges no invoice lists (``uninvoiced``, see ``wallet_credit_note``).
    """

    kind: DocumentKind
    customer_id: int
    currency: str
    issue_date: date
    due_date: date
    lines: tuple[InvoiceLine, ...]
    original_number: str | None = None
    uninvoiced: bool = False
    _summary: tuple[TaxSummaryRow, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "kind", DocumentKind(self.kind))
        object.__setattr__(self, "currency", normalize_currency(self.currency))
        if isinstance(self.customer_id, bool) or self.customer_id <= 0:
            raise ValidationError("customer_id", "must be a positive id")
        if self.due_date < self.issue_date:
            raise ValidationError(
                "due_date", f"must not be before the issue date {self.issue_date}"
            )
        lines = tuple(self.lines)
        if not lines:
            raise ValidationError("lines", f"a{_article(self.kind)} needs at least one line")
        for index, line in enumerate(lines):
            if not isinstance(line, InvoiceLine):
                raise TypeError(f"lines[{index}] must be an InvoiceLine, got {type(line).__name__}")
            if line.currency != self.currency:
                raise CurrencyMismatch(
                    self.currency, line.currency, field=f"lines[{index}].unit_price"
                )
        object.__setattr__(self, "lines", lines)
        if sum_money((line.gross for line in lines), self.currency).is_negative:
            raise ValidationError(
                "lines", "the discounts exceed the charges; a discount is capped at them"
            )
        if self.uninvoiced:
            if self.kind is not DocumentKind.CREDIT_NOTE:
                raise ValidationError(
                    "uninvoiced", "only a credit note can credit uninvoiced charges"
                )
            if self.original_number is not None:
                raise ValidationError(
                    "original_number", "a credit note of uninvoiced charges names no invoice"
                )
        elif self.kind is DocumentKind.CREDIT_NOTE:
            corrected = (self.original_number or "").strip()
            if not corrected:
                raise ValidationError(
                    "original_number", "a credit note names the invoice it corrects"
                )
            object.__setattr__(self, "original_number", corrected)
        elif self.original_number is not None:
            raise ValidationError("original_number", "only a credit note corrects an invoice")
        object.__setattr__(self, "_summary", _summarise(lines, self.currency))

    @property
    def net(self) -> Money:
        return sum_money((line.net for line in self.lines), self.currency)

    @property
    def tax(self) -> Money:
        return sum_money((line.tax for line in self.lines), self.currency)

    @property
    def gross(self) -> Money:
        return sum_money((line.gross for line in self.lines), self.currency)

    @property
    def signed_gross(self) -> Money:
        """The gross as it moves the customer's balance: negative for a credit note."""
        return self.gross * self.kind.sign

    def tax_summary(self) -> tuple[TaxSummaryRow, ...]:
        """Net and tax per (rate, inclusive), ordered by rate; the rows sum to the totals."""
        return self._summary


def _article(kind: DocumentKind) -> str:
    return "n invoice" if kind is DocumentKind.INVOICE else f" {kind.value.replace('_', ' ')}"


def _summarise(lines: Iterable[InvoiceLine], currency: str) -> tuple[TaxSummaryRow, ...]:
    sums: dict[tuple[int, bool], tuple[int, int]] = {}
    for line in lines:
        key = (line.tax_profile.rate_bp, line.tax_profile.inclusive)
        net, tax = sums.get(key, (0, 0))
        sums[key] = (net + line.net.minor, tax + line.tax.minor)
    return tuple(
        TaxSummaryRow(rate_bp, inclusive, Money(net, currency), Money(tax, currency))
        for (rate_bp, inclusive), (net, tax) in sorted(sums.items())
    )


def status_for(gross: Money, paid: Money, voided: bool) -> InvoiceStatus:
    """Status of an issued document from the amount applied to it.

    Void wins over everything. A zero invoice is paid the moment it is issued. The amount
    applied never exceeds the gross: a larger payment leaves the surplus as wallet credit (UISP),
    so an overpaid invoice is a bug upstream and is refused.
    """
    if voided:
        return InvoiceStatus.VOID
    if gross.is_negative:
        raise ValidationError("gross", "must not be negative; credit notes carry positive amounts")
    if paid.is_negative:
        raise ValidationError("paid", "must not be negative")
    if paid > gross:  # raises CurrencyMismatch for mixed currencies
        raise ValidationError(
            "paid", f"{paid} exceeds the total {gross}; the surplus belongs in the wallet"
        )
    if paid == gross:
        return InvoiceStatus.PAID
    if paid.is_positive:
        return InvoiceStatus.PARTIALLY_PAID
    return InvoiceStatus.ISSUED


# -- credit notes ---------------------------------------------------------------------------------


def prorated_credit_line(
    original: InvoiceLine,
    unused_days: int,
    period_days: int | None = None,
    *,
    description: str | None = None,
) -> InvoiceLine:
    """A line crediting the unused ``unused_days`` of ``period_days`` of ``original``.

    A termination on day 21 of a 30-day period credits 10/30 of the period. ``period_days``
    defaults to the days the original line covers; the credit covers the last ``unused_days``
    of that period. The amount is ``unit_price * quantity * unused / period`` rounded once, from
    the unit price (not from the original's rounded amount, which would round twice), so a
    credit of a whole line equals that line to the minor unit.
    """
    covered = original.period_days
    days = covered if period_days is None else period_days
    if days is None:
        raise ValidationError("period_days", "required for a line without a period")
    if isinstance(days, bool) or not isinstance(days, int) or days <= 0:
        raise ValidationError("period_days", "must be a positive number of days")
    if covered is not None and days != covered:
        raise ValidationError(
            "period_days",
            f"the line covers {covered} days ({original.period_start} to "
            f"{original.period_end}), not {days}",
        )
    if isinstance(unused_days, bool) or not isinstance(unused_days, int):
        raise ValidationError("unused_days", "must be a whole number of days")
    if not 0 < unused_days <= days:
        raise ValidationError("unused_days", f"must be between 1 and {days}")
    start = end = None
    if original.period_end is not None:
        start, end = original.period_end - timedelta(days=unused_days), original.period_end
    return price_line(
        description=description if description is not None else original.description,
        unit_price=original.unit_price,
        tax_profile=original.tax_profile,
        quantity=original.quantity * Fraction(unused_days, days),
        service_id=original.service_id,
        period_start=start,
        period_end=end,
    )


def credit_note_for(
    lines_to_credit: Sequence[InvoiceLine],
    *,
    original: InvoiceDraft,
    original_number: str,
    issue_date: date,
    already_credited: Money | None = None,
) -> InvoiceDraft:
    """A credit note correcting ``original`` (issued as ``original_number``).

    ``lines_to_credit`` are whole lines of the original or prorated parts of them
    (``prorated_credit_line``). An invoice is never edited; this is the correction. Together with
    the credit notes already issued for it (``already_credited``, gross), a credit note may not
    give back more than the invoice's gross. It is due at once: nothing is to be paid, the
    credit is applied when issued.
    """
    if original.kind is not DocumentKind.INVOICE:
        raise ValidationError("original", "only an invoice can be corrected by a credit note")
    if issue_date < original.issue_date:
        raise ValidationError(
            "issue_date", f"must not be before the invoice's issue date {original.issue_date}"
        )
    note = InvoiceDraft(
        kind=DocumentKind.CREDIT_NOTE,
        customer_id=original.customer_id,
        currency=original.currency,
        issue_date=issue_date,
        due_date=issue_date,
        lines=tuple(lines_to_credit),
        original_number=original_number,
    )
    credited_before = (
        already_credited if already_credited is not None else Money.zero(original.currency)
    )
    if credited_before.is_negative:
        raise ValidationError("already_credited", "must not be negative")
    if credited_before + note.gross > original.gross:
        raise ValidationError(
            "lines",
            f"crediting {note.gross} on top of {credited_before} exceeds the invoice total "
            f"{original.gross}",
        )
    return note


def wallet_credit_note(
    lines_to_credit: Sequence[InvoiceLine], *, customer_id: int, currency: str, issue_date: date
) -> InvoiceDraft:
    """A credit note of charges that no invoice lists, returning their unused part to the wallet.

    A prepaid wallet pays each period when it starts and ispbill does not invoice those charges
    (only "Charge & Invoice" or a monthly statement may, later). When such a charge is partly
    given back (a plan change or a termination mid-period), the credit still gets a numbered
    document, for the customer and for the books, but there is no invoice to name: the note says
    so (``uninvoiced``) instead of inventing a reference. It is due and settled at once, like
    every credit note; what it may give back is bounded by the charge it credits, which the
    caller prorates (``prorated_credit_line``).
    """
    return InvoiceDraft(
        kind=DocumentKind.CREDIT_NOTE,
        customer_id=customer_id,
        currency=currency,
        issue_date=issue_date,
        due_date=issue_date,
        lines=tuple(lines_to_credit),
        uninvoiced=True,
    )


# -- numbering ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SeriesFormat:
    """A checked number format and what it implies for its counter."""

    text: str
    placeholders: frozenset[str]

    @property
    def reset(self) -> CounterReset:
        if "month" in self.placeholders:
            return CounterReset.MONTHLY
        if "year" in self.placeholders:
            return CounterReset.YEARLY
        return CounterReset.NEVER


def parse_series_format(text: str) -> SeriesFormat:
    """Check a number format: only ``{year}``, ``{month}``, ``{seq}`` / ``{seq:06}``, ``{prefix}``.

    ``{seq}`` is required (without it every number would be the same). ``{month}`` needs
    ``{year}``, or March 2027 would reuse March 2026's numbers. Literal braces are written
    ``{{`` and ``}}``, as in Python.
    """
    if not isinstance(text, str) or not text.strip():
        raise ValidationError("number_format", f"required, {_NUMBER_FORMAT_EXAMPLE}")
    cleaned = text.strip()
    if len(cleaned) > NUMBER_FORMAT_MAX:
        raise ValidationError("number_format", f"at most {NUMBER_FORMAT_MAX} characters")
    try:
        parts = list(string.Formatter().parse(cleaned))
    except ValueError as exc:
        raise ValidationError(
            "number_format", f"unbalanced braces ({exc}); {_NUMBER_FORMAT_EXAMPLE}"
        ) from exc
    seen: list[str] = []
    for literal, name, spec, conversion in parts:
        if not literal.isprintable():
            raise ValidationError("number_format", "must be one line of printable text")
        if name is None:
            continue
        if name not in _PLACEHOLDERS:
            shown = "{" + name + "}" if name else "{}"
            raise ValidationError(
                "number_format",
                f"unknown placeholder {shown}; use {{year}}, {{month}}, {{seq}} or {{prefix}}",
            )
        if name in seen:
            raise ValidationError("number_format", f"{{{name}}} appears more than once")
        seen.append(name)
        if conversion:
            raise ValidationError("number_format", f"{{{name}!{conversion}}} is not supported")
        if spec and name != "seq":
            raise ValidationError("number_format", f"{{{name}}} takes no format, only {{seq:06}}")
        if spec:
            width = _SEQ_SPEC.fullmatch(spec)
            if width is None or int(width.group(1)) > _MAX_SEQ_WIDTH:
                raise ValidationError(
                    "number_format",
                    f"{{seq:{spec}}} is not a zero-pad width; use e.g. {{seq:06}} "
                    f"(1 to {_MAX_SEQ_WIDTH} digits)",
                )
    if "seq" not in seen:
        raise ValidationError(
            "number_format", f"must contain {{seq}}, the running number; {_NUMBER_FORMAT_EXAMPLE}"
        )
    if "month" in seen and "year" not in seen:
        raise ValidationError(
            "number_format", "{month} needs {year}, or numbers would repeat every year"
        )
    return SeriesFormat(cleaned, frozenset(seen))


@dataclass(frozen=True, slots=True)
class NumberSeries:
    """A numbering series: a name (the counter's key), a number format and an optional prefix.

    Policies are data (STYLE 8): an operator may keep one series for invoices ("INV",
    ``"{year}-{seq:06}"``) and another for credit notes ("CN", ``"CN{year}-{seq:05}"``).
    """

    name: str
    format: str
    prefix: str = ""
    parsed: SeriesFormat = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not SERIES_NAME.fullmatch(self.name):
            raise ValidationError(
                "number_series", "1 to 32 letters, digits, '-' or '_' (e.g. 'INV')"
            )
        if any(ch in self.prefix for ch in "{}") or any(not ch.isprintable() for ch in self.prefix):
            raise ValidationError("number_prefix", "must be printable text without braces")
        if len(self.prefix) > 16:
            raise ValidationError("number_prefix", "at most 16 characters")
        object.__setattr__(self, "parsed", parse_series_format(self.format))
        object.__setattr__(self, "format", self.parsed.text)

    @property
    def reset(self) -> CounterReset:
        return self.parsed.reset


def format_number(series: NumberSeries, issue_date: date, seq: int) -> str:
    """The document number for sequence ``seq`` of ``series`` on ``issue_date``.

    ``NumberSeries("INV", "{year}-{seq:06}")`` gives ``2026-000123`` for seq 123 in 2026.
    A sequence wider than its pad is printed in full (``{seq:03}`` and 1234 -> ``1234``): still
    unique, never truncated.
    """
    if isinstance(seq, bool) or not isinstance(seq, int) or seq < 1:
        raise ValidationError("seq", "must be a whole number from 1")
    return series.format.format(
        year=f"{issue_date.year:04d}",
        month=f"{issue_date.month:02d}",
        seq=seq,
        prefix=series.prefix,
    )


def series_key(series: NumberSeries, issue_date: date) -> str:
    """The counter bucket the next number comes from: ``INV``, ``INV:2026`` or ``INV:2026-03``.

    The storage layer keeps one counter row per key and increments it under a row lock in the
    issuing transaction, so numbers are gapless per key and restart with each year or month
    when the format shows the year or the month.
    """
    match series.reset:
        case CounterReset.MONTHLY:
            return f"{series.name}:{issue_date.year:04d}-{issue_date.month:02d}"
        case CounterReset.YEARLY:
            return f"{series.name}:{issue_date.year:04d}"
        case CounterReset.NEVER:
            return series.name

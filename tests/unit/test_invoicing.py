"""Invoices: one rounding per line, exact totals, gapless numbering formats, status, credit notes.

Issue: invoices have "lines (service, period, quantity, unit price, tax), a tax profile (exclusive
or inclusive rates, exact totals), due date from payment terms, status (issued, partially paid,
paid, void), immutable once issued; corrections by credit notes". ARCHITECTURE invariant 1:
"Rounding happens once, at the invoice line, half-up".
"""

from __future__ import annotations

import dataclasses
from datetime import date
from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ispbill.domain.errors import CurrencyMismatch, ValidationError
from ispbill.domain.invoicing import (
    CounterReset,
    DocumentKind,
    InvoiceDraft,
    InvoiceLine,
    InvoiceStatus,
    NumberSeries,
    credit_note_for,
    due_date,
    format_number,
    parse_series_format,
    price_line,
    prorated_credit_line,
    series_key,
    status_for,
)
from ispbill.domain.money import Money
from ispbill.domain.taxes import NO_TAX, TaxProfile

VAT = TaxProfile("VAT 21", 2100)
VAT_INCLUDED = TaxProfile("VAT 21 incl.", 2100, inclusive=True)
REDUCED = TaxProfile("VAT 12", 1200)
ISSUE = date(2026, 3, 1)


def usd(text: str) -> Money:
    return Money.from_major(text, "USD")


def half_up(value: Fraction) -> int:
    """The reference rounding, written independently of money.py: half away from zero."""
    magnitude = abs(value)
    rounded = (magnitude.numerator * 2 + magnitude.denominator) // (2 * magnitude.denominator)
    return -rounded if value < 0 else rounded


def draft(*lines: InvoiceLine, currency: str = "USD", **changes: object) -> InvoiceDraft:
    fields: dict[str, object] = {
        "kind": DocumentKind.INVOICE,
        "customer_id": 1,
        "currency": currency,
        "issue_date": ISSUE,
        "due_date": due_date(ISSUE, 14),
        "lines": lines,
    }
    fields.update(changes)
    return InvoiceDraft(**fields)  # type: ignore[arg-type]


# -- lines ----------------------------------------------------------------------------------------


def test_exclusive_line_adds_tax_to_the_rounded_amount() -> None:
    line = price_line(description="Fiber 100", unit_price=usd("30.00"), tax_profile=VAT)
    assert (line.net, line.tax, line.gross) == (usd("30.00"), usd("6.30"), usd("36.30"))


def test_inclusive_line_holds_the_tax_inside_the_price() -> None:
    line = price_line(description="Fiber 100", unit_price=usd("36.30"), tax_profile=VAT_INCLUDED)
    assert (line.net, line.tax, line.gross) == (usd("30.00"), usd("6.30"), usd("36.30"))


def test_prorated_quantity_rounds_once_half_up() -> None:
    # 21 of 30 days of 10.00 is exactly 7.00; 10 of 31 days of 10.00 is 3.2258... -> 3.23.
    first = price_line(
        description="Fiber",
        unit_price=usd("10.00"),
        tax_profile=NO_TAX,
        quantity=Fraction(21, 30),
        period_start=date(2026, 4, 10),
        period_end=date(2026, 5, 1),
    )
    assert first.net == usd("7.00")
    assert first.quantity == Fraction(7, 10)
    assert price_line(
        description="Fiber", unit_price=usd("10.00"), tax_profile=NO_TAX, quantity=Fraction(10, 31)
    ).net == usd("3.23")
    # exactly half a cent goes up: 0.05 * 1/2 = 0.025 -> 0.03
    half = price_line(
        description="x", unit_price=usd("0.05"), tax_profile=NO_TAX, quantity=Fraction(1, 2)
    )
    assert half.net == usd("0.03")


def test_rounding_happens_per_line_not_per_unit() -> None:
    # Three thirds of 10.00 on three lines are 3 x 3.33; one line of quantity 1 is 10.00. The
    # invoice shows what its lines show: each line is rounded once, totals are exact sums.
    thirds = [
        price_line(
            description="x", unit_price=usd("10.00"), tax_profile=NO_TAX, quantity=Fraction(1, 3)
        )
        for _ in range(3)
    ]
    assert draft(*thirds).gross == usd("9.99")
    whole = price_line(description="x", unit_price=usd("10.00"), tax_profile=NO_TAX)
    assert draft(whole).gross == usd("10.00")


def test_whole_quantities_multiply() -> None:
    line = price_line(description="Router", unit_price=usd("2.50"), tax_profile=VAT, quantity=3)
    assert line.quantity == Fraction(3)
    assert (line.net, line.tax) == (usd("7.50"), usd("1.58"))  # 1.575 -> 1.58


@pytest.mark.parametrize("quantity", [0, -1, Fraction(-1, 2), Fraction(0)])
def test_quantity_must_be_positive(quantity: Fraction | int) -> None:
    with pytest.raises(ValidationError) as exc:
        price_line(description="x", unit_price=usd("1.00"), tax_profile=VAT, quantity=quantity)
    assert exc.value.field == "quantity"


@pytest.mark.parametrize("quantity", [0.5, True, "1"])
def test_quantity_must_be_exact(quantity: object) -> None:
    with pytest.raises(TypeError):
        price_line(description="x", unit_price=usd("1.00"), tax_profile=VAT, quantity=quantity)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"description": "  "}, "description"),
        ({"description": "x" * 501}, "description"),
        ({"unit_price": usd("-1.00")}, "unit_price"),
        ({"service_id": 0}, "service_id"),
        ({"period_start": date(2026, 3, 1)}, "period"),
        ({"period_start": date(2026, 3, 1), "period_end": date(2026, 3, 1)}, "period_end"),
    ],
)
def test_bad_lines_are_refused_naming_the_field(changes: dict[str, object], field: str) -> None:
    fields: dict[str, object] = {"description": "x", "unit_price": usd("1.00"), "tax_profile": VAT}
    fields.update(changes)
    with pytest.raises(ValidationError) as exc:
        price_line(**fields)  # type: ignore[arg-type]
    assert exc.value.field == field


def test_stored_amounts_must_be_coherent() -> None:
    line = price_line(description="x", unit_price=usd("1.00"), tax_profile=VAT)
    with pytest.raises(CurrencyMismatch) as exc:
        dataclasses.replace(line, tax=Money(21, "EUR"))
    assert exc.value.field == "tax"
    with pytest.raises(ValidationError) as negative:
        dataclasses.replace(line, net=usd("-1.00"))
    assert negative.value.field == "net"


def test_lines_are_immutable() -> None:
    line = price_line(description="x", unit_price=usd("1.00"), tax_profile=VAT)
    with pytest.raises(dataclasses.FrozenInstanceError):
        line.net = usd("0.01")  # type: ignore[misc]


# -- documents ------------------------------------------------------------------------------------


def test_totals_and_tax_summary() -> None:
    lines = (
        price_line(description="Fiber", unit_price=usd("30.00"), tax_profile=VAT),
        price_line(description="TV", unit_price=usd("10.00"), tax_profile=REDUCED),
        price_line(description="Router", unit_price=usd("12.10"), tax_profile=VAT_INCLUDED),
    )
    invoice = draft(*lines)
    assert invoice.net == usd("50.00")
    assert invoice.tax == usd("9.60")  # 6.30 + 1.20 + 2.10
    assert invoice.gross == usd("59.60")
    rows = {(r.rate_bp, r.inclusive): (r.net, r.tax) for r in invoice.tax_summary()}
    assert rows == {
        (1200, False): (usd("10.00"), usd("1.20")),
        (2100, False): (usd("30.00"), usd("6.30")),
        (2100, True): (usd("10.00"), usd("2.10")),
    }
    assert invoice.signed_gross == invoice.gross


def test_an_invoice_needs_lines() -> None:
    with pytest.raises(ValidationError) as exc:
        draft()
    assert exc.value.field == "lines"
    assert exc.value.rule == "an invoice needs at least one line"


def test_mixed_currencies_are_refused_naming_the_line() -> None:
    lines = (
        price_line(description="a", unit_price=usd("1.00"), tax_profile=VAT),
        price_line(description="b", unit_price=Money(100, "EUR"), tax_profile=VAT),
    )
    with pytest.raises(CurrencyMismatch) as exc:
        draft(*lines)
    assert exc.value.field == "lines[1].unit_price"


def test_document_field_refusals() -> None:
    line = price_line(description="a", unit_price=usd("1.00"), tax_profile=VAT)
    with pytest.raises(ValidationError) as before:
        draft(line, due_date=date(2026, 2, 28))
    assert before.value.field == "due_date"
    with pytest.raises(ValidationError) as customer:
        draft(line, customer_id=0)
    assert customer.value.field == "customer_id"
    with pytest.raises(ValidationError) as unnamed:
        draft(line, kind=DocumentKind.CREDIT_NOTE)
    assert unnamed.value.field == "original_number"
    with pytest.raises(ValidationError) as stray:
        draft(line, original_number="2026-000001")
    assert stray.value.field == "original_number"


def test_kind_gives_the_direction() -> None:
    assert DocumentKind.INVOICE.sign == 1
    assert DocumentKind.CREDIT_NOTE.sign == -1
    assert DocumentKind.STATEMENT.sign == 0


# -- the properties of invariant 1, on random invoices ---------------------------------------------

currencies = st.sampled_from(["USD", "CZK", "JPY", "BHD"])
profiles = st.builds(
    TaxProfile,
    name=st.just("tax"),
    rate_bp=st.one_of(
        st.sampled_from([0, 500, 1000, 1200, 1500, 2000, 2100, 2500, 2700]), st.integers(0, 10_000)
    ),
    inclusive=st.booleans(),
)
quantities = st.one_of(
    st.integers(min_value=1, max_value=36),
    st.builds(
        Fraction, st.integers(min_value=1, max_value=1_000), st.integers(min_value=1, max_value=400)
    ),
)


@st.composite
def invoices(draw: st.DrawFn) -> InvoiceDraft:
    currency = draw(currencies)
    count = draw(st.integers(min_value=1, max_value=15))
    lines = [
        price_line(
            description=f"line {i}",
            unit_price=Money(draw(st.integers(min_value=0, max_value=10**9)), currency),
            tax_profile=draw(profiles),
            quantity=draw(quantities),
        )
        for i in range(count)
    ]
    return draft(*lines, currency=currency)


@given(invoices())
def test_each_line_rounds_once_and_splits_exactly(invoice: InvoiceDraft) -> None:
    for line in invoice.lines:
        assert line.net + line.tax == line.gross
        amount = half_up(line.unit_price.minor * line.quantity)
        rate = line.tax_profile.rate_bp
        if line.tax_profile.inclusive:
            assert line.gross.minor == amount
            assert line.net.minor == half_up(Fraction(amount * 10_000, 10_000 + rate))
        else:
            assert line.net.minor == amount
            assert line.tax.minor == half_up(Fraction(amount * rate, 10_000))


@given(invoices())
def test_totals_are_the_sums_of_the_lines(invoice: InvoiceDraft) -> None:
    assert invoice.net.minor == sum(line.net.minor for line in invoice.lines)
    assert invoice.tax.minor == sum(line.tax.minor for line in invoice.lines)
    assert invoice.gross.minor == sum(line.gross.minor for line in invoice.lines)
    assert invoice.net + invoice.tax == invoice.gross
    assert {invoice.net.currency, invoice.tax.currency, invoice.gross.currency} == {
        invoice.currency
    }


@given(invoices())
def test_tax_summary_sums_to_the_totals(invoice: InvoiceDraft) -> None:
    rows = invoice.tax_summary()
    assert sum(r.net.minor for r in rows) == invoice.net.minor
    assert sum(r.tax.minor for r in rows) == invoice.tax.minor
    assert sum(r.gross.minor for r in rows) == invoice.gross.minor
    keys = [(r.rate_bp, r.inclusive) for r in rows]
    assert keys == sorted(set(keys))
    assert set(keys) == {
        (line.tax_profile.rate_bp, line.tax_profile.inclusive) for line in invoice.lines
    }


@given(invoices(), st.data())
def test_crediting_every_line_returns_the_invoice_exactly(
    invoice: InvoiceDraft, data: st.DataObject
) -> None:
    note = credit_note_for(
        invoice.lines, original=invoice, original_number="2026-000001", issue_date=ISSUE
    )
    assert note.gross == invoice.gross
    assert note.signed_gross == -invoice.gross
    # any prorated part of a line credits at most the line
    line = data.draw(st.sampled_from(invoice.lines))
    period_days = data.draw(st.integers(min_value=1, max_value=366))
    unused = data.draw(st.integers(min_value=1, max_value=period_days))
    part = prorated_credit_line(line, unused, period_days)
    assert part.gross <= line.gross
    if unused == period_days:
        assert (part.net, part.tax) == (line.net, line.tax)


# -- due date and status ----------------------------------------------------------------------


def test_due_date_from_payment_terms() -> None:
    assert due_date(ISSUE, 0) == ISSUE
    assert due_date(ISSUE, 14) == date(2026, 3, 15)
    assert due_date(date(2026, 12, 20), 30) == date(2027, 1, 19)
    assert due_date(ISSUE, 365) == date(2027, 3, 1)


@pytest.mark.parametrize("days", [-1, 366, True])
def test_payment_terms_out_of_range_are_refused(days: int) -> None:
    with pytest.raises(ValidationError) as exc:
        due_date(ISSUE, days)
    assert exc.value.field == "payment_terms_days"


@pytest.mark.parametrize(
    ("gross", "paid", "voided", "status"),
    [
        ("36.30", "0.00", False, InvoiceStatus.ISSUED),
        ("36.30", "0.01", False, InvoiceStatus.PARTIALLY_PAID),
        ("36.30", "36.29", False, InvoiceStatus.PARTIALLY_PAID),
        ("36.30", "36.30", False, InvoiceStatus.PAID),
        ("0.00", "0.00", False, InvoiceStatus.PAID),
        ("36.30", "10.00", True, InvoiceStatus.VOID),
        ("36.30", "0.00", True, InvoiceStatus.VOID),
    ],
)
def test_status_follows_the_amount_applied(
    gross: str, paid: str, voided: bool, status: InvoiceStatus
) -> None:
    assert status_for(usd(gross), usd(paid), voided) is status


def test_status_refuses_overpayment_and_mixed_currencies() -> None:
    # UISP: the rest of a payment "will be saved as the client's credit", never on the invoice.
    with pytest.raises(ValidationError) as over:
        status_for(usd("10.00"), usd("10.01"), False)
    assert over.value.field == "paid"
    with pytest.raises(ValidationError) as negative:
        status_for(usd("10.00"), usd("-1.00"), False)
    assert negative.value.field == "paid"
    with pytest.raises(CurrencyMismatch):
        status_for(usd("10.00"), Money(100, "EUR"), False)


# -- credit notes ---------------------------------------------------------------------------------


def month_line() -> InvoiceLine:
    return price_line(
        description="Fiber 100",
        unit_price=usd("30.00"),
        tax_profile=VAT,
        service_id=7,
        period_start=date(2026, 4, 1),
        period_end=date(2026, 5, 1),
    )


def test_termination_credits_the_unused_days() -> None:
    # Terminated after 20 of April's 30 days: 10/30 of 30.00 comes back, for April 21-30.
    line = month_line()
    credit = prorated_credit_line(line, 10)
    assert credit.quantity == Fraction(1, 3)
    assert (credit.net, credit.tax, credit.gross) == (usd("10.00"), usd("2.10"), usd("12.10"))
    assert (credit.period_start, credit.period_end) == (date(2026, 4, 21), date(2026, 5, 1))
    assert (credit.service_id, credit.description) == (7, "Fiber 100")
    invoice = draft(line)
    note = credit_note_for(
        [credit], original=invoice, original_number="2026-000123", issue_date=date(2026, 4, 20)
    )
    assert note.kind is DocumentKind.CREDIT_NOTE
    assert note.original_number == "2026-000123"
    assert (note.customer_id, note.currency, note.due_date) == (1, "USD", date(2026, 4, 20))
    assert note.gross == usd("12.10")
    assert note.signed_gross == usd("-12.10")


def test_credit_of_a_prorated_line_uses_the_days_it_covers() -> None:
    # First period 10-30 April (21 of 30 days, 21.00); unused 5 days of the 21 -> 5/30 = 5.00.
    line = price_line(
        description="Fiber",
        unit_price=usd("30.00"),
        tax_profile=NO_TAX,
        quantity=Fraction(21, 30),
        period_start=date(2026, 4, 10),
        period_end=date(2026, 5, 1),
    )
    credit = prorated_credit_line(line, 5)
    assert credit.quantity == Fraction(5, 30)
    assert credit.net == usd("5.00")


def test_prorated_credit_refusals() -> None:
    line = month_line()
    for unused in (0, 31, -1):
        with pytest.raises(ValidationError) as exc:
            prorated_credit_line(line, unused)
        assert exc.value.field == "unused_days"
    with pytest.raises(ValidationError) as mismatch:
        prorated_credit_line(line, 10, 31)
    assert mismatch.value.field == "period_days"
    periodless = price_line(description="Setup", unit_price=usd("50.00"), tax_profile=VAT)
    with pytest.raises(ValidationError) as missing:
        prorated_credit_line(periodless, 1)
    assert missing.value.field == "period_days"
    assert prorated_credit_line(periodless, 1, 2).net == usd("25.00")


def test_credit_notes_never_exceed_the_invoice() -> None:
    line = month_line()
    invoice = draft(line)
    with pytest.raises(ValidationError) as twice:
        credit_note_for(
            [line, line], original=invoice, original_number="2026-000001", issue_date=ISSUE
        )
    assert twice.value.field == "lines"
    with pytest.raises(ValidationError) as after:
        credit_note_for(
            [prorated_credit_line(line, 10)],
            original=invoice,
            original_number="2026-000001",
            issue_date=ISSUE,
            already_credited=usd("30.00"),
        )
    assert after.value.field == "lines"
    with pytest.raises(ValidationError) as early:
        credit_note_for(
            [line], original=invoice, original_number="2026-000001", issue_date=date(2026, 2, 1)
        )
    assert early.value.field == "issue_date"
    note = credit_note_for([line], original=invoice, original_number="X-1", issue_date=ISSUE)
    with pytest.raises(ValidationError) as of_note:
        credit_note_for([line], original=note, original_number="X-2", issue_date=ISSUE)
    assert of_note.value.field == "original"


# -- numbering ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("number_format", "prefix", "issued", "seq", "number"),
    [
        ("{year}-{seq:06}", "", date(2026, 5, 2), 123, "2026-000123"),
        ("{year}-{seq:06}", "", date(2026, 5, 2), 1_234_567, "2026-1234567"),
        ("{prefix}{year}{month}-{seq:04}", "FV", date(2026, 3, 9), 7, "FV202603-0007"),
        ("CN/{year}/{seq}", "", date(2027, 1, 1), 42, "CN/2027/42"),
        ("{seq:08}", "", date(2026, 1, 1), 9, "00000009"),
        ("{prefix}-{seq:05}", "INV", date(2026, 1, 1), 12, "INV-00012"),
        ("{{{seq}}}", "", date(2026, 1, 1), 3, "{3}"),
    ],
)
def test_format_number(
    number_format: str, prefix: str, issued: date, seq: int, number: str
) -> None:
    series = NumberSeries("INV", number_format, prefix=prefix)
    assert format_number(series, issued, seq) == number


@pytest.mark.parametrize(
    ("number_format", "reset", "key_in_march_2026"),
    [
        ("{year}-{seq:06}", CounterReset.YEARLY, "INV:2026"),
        ("{year}{month}-{seq:04}", CounterReset.MONTHLY, "INV:2026-03"),
        ("{prefix}{seq:08}", CounterReset.NEVER, "INV"),
    ],
)
def test_series_key_restarts_with_the_period_the_number_shows(
    number_format: str, reset: CounterReset, key_in_march_2026: str
) -> None:
    series = NumberSeries("INV", number_format)
    assert series.reset is reset
    assert parse_series_format(number_format).reset is reset
    assert series_key(series, date(2026, 3, 31)) == key_in_march_2026


@pytest.mark.parametrize(
    ("number_format", "rule_part"),
    [
        ("", "required"),
        ("{year}-0001", "must contain {seq}"),
        ("{year}-{sequence}", "unknown placeholder {sequence}"),
        ("{}-{seq}", "unknown placeholder {}"),
        ("{0}-{seq}", "unknown placeholder {0}"),
        ("{seq.real}", "unknown placeholder {seq.real}"),
        ("{year}-{seq:06", "unbalanced braces"),
        ("{year}-{seq}}", "unbalanced braces"),
        ("{seq}-{seq}", "appears more than once"),
        ("{year}-{seq!r}", "not supported"),
        ("{year:02}-{seq}", "takes no format"),
        ("{year}-{seq:x}", "not a zero-pad width"),
        ("{year}-{seq:>6}", "not a zero-pad width"),
        ("{year}-{seq:6}", "not a zero-pad width"),  # Python would pad with spaces
        ("{year}-{seq:021}", "not a zero-pad width"),
        ("{month}-{seq}", "{month} needs {year}"),
        ("{year}\n{seq}", "printable"),
        ("{seq}" + "x" * 64, "at most 64"),
    ],
)
def test_bad_number_formats_are_refused(number_format: str, rule_part: str) -> None:
    with pytest.raises(ValidationError) as exc:
        parse_series_format(number_format)
    assert exc.value.field == "number_format"
    assert rule_part in exc.value.rule
    with pytest.raises(ValidationError):
        NumberSeries("INV", number_format)


@pytest.mark.parametrize(
    ("name", "prefix", "field"),
    [("", "", "number_series"), ("INV:2026", "", "number_series"), ("INV", "{x}", "number_prefix")],
)
def test_bad_series_are_refused(name: str, prefix: str, field: str) -> None:
    with pytest.raises(ValidationError) as exc:
        NumberSeries(name, "{seq}", prefix=prefix)
    assert exc.value.field == field


@pytest.mark.parametrize("seq", [0, -1, True])
def test_sequence_starts_at_one(seq: int) -> None:
    with pytest.raises(ValidationError) as exc:
        format_number(NumberSeries("INV", "{seq}"), ISSUE, seq)
    assert exc.value.field == "seq"


@given(
    st.sampled_from(["{year}-{seq:06}", "{year}{month}{seq}", "{seq}{year}", "{prefix}{seq:03}"]),
    st.dates(min_value=date(2000, 1, 1), max_value=date(2099, 12, 31)),
    st.dates(min_value=date(2000, 1, 1), max_value=date(2099, 12, 31)),
    st.integers(min_value=1, max_value=10**7),
    st.integers(min_value=1, max_value=10**7),
)
def test_different_counter_positions_never_share_a_number(
    number_format: str, day_a: date, day_b: date, seq_a: int, seq_b: int
) -> None:
    series = NumberSeries("INV", number_format, prefix="F")
    position_a = (series_key(series, day_a), seq_a)
    position_b = (series_key(series, day_b), seq_b)
    if position_a != position_b:
        assert format_number(series, day_a, seq_a) != format_number(series, day_b, seq_b)

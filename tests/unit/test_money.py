"""Invariant 1: Money is exact integer minor units, rounds once half-up, and splits sum exactly."""

from __future__ import annotations

import decimal
from decimal import Decimal
from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ispbill.domain.errors import CurrencyMismatch, ValidationError
from ispbill.domain.money import (
    ROUNDING,
    Money,
    currency_exponent,
    normalize_currency,
    sum_money,
)

CURRENCIES = ["USD", "CZK", "JPY", "BHD", "EUR"]

amounts = st.integers(min_value=-(10**15), max_value=10**15)
monies = st.builds(Money, amounts, st.sampled_from(CURRENCIES))
ratio_lists = st.lists(st.integers(min_value=0, max_value=1_000), min_size=1, max_size=20).filter(
    lambda ratios: sum(ratios) > 0
)


# -- currencies ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("code", "exponent"), [("USD", 2), ("CZK", 2), ("JPY", 0), ("BHD", 3), ("EUR", 2)]
)
def test_currency_exponent(code: str, exponent: int) -> None:
    assert currency_exponent(code) == exponent


def test_unknown_currency_is_refused() -> None:
    with pytest.raises(ValidationError) as exc:
        currency_exponent("XYZ")
    assert exc.value.field == "currency"
    assert exc.value.rule == "unknown ISO 4217 currency code 'XYZ'"


@pytest.mark.parametrize("code", ["", "US", "USDX", "12A", "€"])
def test_malformed_currency_is_refused(code: str) -> None:
    with pytest.raises(ValidationError):
        normalize_currency(code)


def test_currency_is_normalised() -> None:
    assert normalize_currency("usd ") == "USD"
    assert normalize_currency(" czk") == "CZK"
    assert currency_exponent("jpy") == 0
    assert Money(100, "usd ") == Money(100, "USD")
    assert Money(100, "usd ").currency == "USD"


# -- construction -------------------------------------------------------------------------------


def test_constructor_refuses_float() -> None:
    with pytest.raises(TypeError, match=r"integer minor units; got float .*from_major"):
        Money(30.5, "USD")  # type: ignore[arg-type]


def test_constructor_refuses_decimal_bool_and_str() -> None:
    with pytest.raises(TypeError):
        Money(Decimal("30"), "USD")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        Money(True, "USD")
    with pytest.raises(TypeError):
        Money("30", "USD")  # type: ignore[arg-type]


def test_money_is_immutable() -> None:
    money = Money(100, "USD")
    with pytest.raises(AttributeError):
        money.minor = 5  # type: ignore[misc]


def test_zero() -> None:
    assert Money.zero("jpy") == Money(0, "JPY")
    assert Money.zero("USD").is_zero


@pytest.mark.parametrize(
    ("value", "currency", "minor"),
    [
        ("30", "USD", 3000),
        ("30.5", "USD", 3050),
        ("30.50", "USD", 3050),
        (" 30.50 ", "USD", 3050),
        ("-0.01", "USD", -1),
        ("+7", "USD", 700),
        (Decimal("30.50"), "USD", 3050),
        (Decimal("3.05E+1"), "USD", 3050),
        (Decimal("1E+2"), "JPY", 100),
        (Decimal("-0.00"), "USD", 0),
        (30, "USD", 3000),
        (30, "JPY", 30),
        ("1.5", "BHD", 1500),
        ("1.505", "BHD", 1505),
        ("12345678901234567890.12", "USD", 1234567890123456789012),
    ],
)
def test_from_major_is_exact(value: Decimal | str | int, currency: str, minor: int) -> None:
    assert Money.from_major(value, currency) == Money(minor, currency)


@pytest.mark.parametrize(
    ("value", "currency", "rule"),
    [
        ("30.501", "USD", "at most 2 decimal places for USD"),
        ("30.500", "USD", "at most 2 decimal places for USD"),
        (Decimal("0.001"), "USD", "at most 2 decimal places for USD"),
        ("30.5", "JPY", "at most 0 decimal places for JPY"),
        ("1.5001", "BHD", "at most 3 decimal places for BHD"),
        ("NaN", "USD", "must be a number such as 30.00"),
        ("Infinity", "USD", "must be a number such as 30.00"),
        ("1e3", "USD", "must be a number such as 30.00"),
        ("1_000", "USD", "must be a number such as 30.00"),
        ("thirty", "USD", "must be a number such as 30.00"),
        ("", "USD", "must be a number such as 30.00"),
        ("3,50", "USD", "must be a number such as 30.00"),
        (Decimal("NaN"), "USD", "must be a number such as 30.00"),
        (Decimal("-Infinity"), "USD", "must be a number such as 30.00"),
        (Decimal("1E+999999999"), "USD", "is too large"),
    ],
)
def test_from_major_refuses(value: Decimal | str, currency: str, rule: str) -> None:
    with pytest.raises(ValidationError) as exc:
        Money.from_major(value, currency, field="price")
    assert exc.value.field == "price"
    assert exc.value.rule == rule


def test_from_major_refuses_float_and_bool() -> None:
    with pytest.raises(TypeError, match="float"):
        Money.from_major(30.5, "USD")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="bool"):
        Money.from_major(True, "USD")


# -- parse --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("30.00 USD", Money(3000, "USD")),
        ("USD 30.00", Money(3000, "USD")),
        ("30 USD", Money(3000, "USD")),
        ("30USD", Money(3000, "USD")),
        ("  30.5 usd  ", Money(3050, "USD")),
        ("-5.25 EUR", Money(-525, "EUR")),
        ("EUR -5.25", Money(-525, "EUR")),
        ("1,234.50 USD", Money(123450, "USD")),
        ("-5 JPY", Money(-5, "JPY")),
        ("1.500 BHD", Money(1500, "BHD")),
    ],
)
def test_parse_en_us(text: str, expected: Money) -> None:
    assert Money.parse(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "1 234,50 CZK",  # a plain space, as people type it
        "1\u00a0234,50 CZK",  # no-break space, as CLDR writes it
        "1\u202f234,50 CZK",  # narrow no-break space
        "1\u00a0234,50\u00a0CZK",
        "CZK 1 234,50",
        "1234,50 CZK",
        "1234,5 czk",
    ],
)
def test_parse_cs_cz(text: str) -> None:
    assert Money.parse(text, locale="cs_CZ") == Money(123450, "CZK")


def test_parse_with_expected_currency() -> None:
    assert Money.parse("30.00", currency="USD") == Money(3000, "USD")
    assert Money.parse("30.00 USD", currency="usd") == Money(3000, "USD")
    assert Money.parse("1 234,50", locale="cs_CZ", currency="CZK") == Money(123450, "CZK")


def test_parse_refuses_contradicting_currency() -> None:
    with pytest.raises(ValidationError) as exc:
        Money.parse("30.00 EUR", currency="USD", field="price")
    assert exc.value.field == "price"
    assert "EUR" in exc.value.rule
    assert "USD" in exc.value.rule


def test_parse_requires_a_currency() -> None:
    with pytest.raises(ValidationError) as exc:
        Money.parse("30.00")
    assert exc.value.field == "currency"
    assert exc.value.rule == "required, e.g. '30.00 USD'"


def test_parse_refuses_unknown_currency() -> None:
    with pytest.raises(ValidationError) as exc:
        Money.parse("30.00 XYZ")
    assert exc.value.field == "currency"


@pytest.mark.parametrize(
    ("text", "locale"),
    [
        ("", "en_US"),
        ("USD", "en_US"),
        ("NaN", "en_US"),
        ("NaN USD", "en_US"),
        ("Infinity USD", "en_US"),
        ("1e3 USD", "en_US"),
        ("$30.00", "en_US"),
        ("abc def", "en_US"),
        ("hello world", "en_US"),
        ("30.00.00 USD", "en_US"),
        ("1,23.50 USD", "en_US"),  # misplaced grouping is refused, not guessed at
        ("1 234.50 USD", "en_US"),
        ("USD 30 EUR", "en_US"),
        ("30.00 CZK", "cs_CZ"),  # "." is not a Czech decimal separator
        ("1 23,50 CZK", "cs_CZ"),
        ("1.234,50 CZK", "cs_CZ"),
    ],
)
def test_parse_refuses_garbage(text: str, locale: str) -> None:
    with pytest.raises(ValidationError) as exc:
        Money.parse(text, locale=locale, field="price")
    assert exc.value.field == "price"
    assert exc.value.rule == "must be an amount such as '30.00 USD'"


def test_parse_refuses_too_many_decimals() -> None:
    with pytest.raises(ValidationError) as exc:
        Money.parse("30.001 USD", field="price")
    assert exc.value.field == "price"
    assert exc.value.rule == "at most 2 decimal places for USD"
    with pytest.raises(ValidationError, match="at most 0 decimal places for JPY"):
        Money.parse("5.5 JPY")


# -- views --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("money", "text"),
    [
        (Money(3000, "USD"), "30.00 USD"),
        (Money(5, "USD"), "0.05 USD"),
        (Money(-5, "USD"), "-0.05 USD"),
        (Money(0, "USD"), "0.00 USD"),
        (Money(-5, "JPY"), "-5 JPY"),
        (Money(1500, "BHD"), "1.500 BHD"),
        (Money(1, "BHD"), "0.001 BHD"),
        (Money(10**30, "USD"), "1" + "0" * 28 + ".00 USD"),
    ],
)
def test_str_is_plain(money: Money, text: str) -> None:
    assert str(money) == text


def test_to_decimal_is_exact_at_the_exponent() -> None:
    assert Money(3050, "USD").to_decimal().as_tuple() == Decimal("30.50").as_tuple()
    assert Money(5, "JPY").to_decimal().as_tuple() == Decimal("5").as_tuple()
    huge = 10**40 + 1  # beyond the default 28-digit decimal context: still exact
    assert str(Money(huge, "USD").to_decimal()) == "1" + "0" * 38 + ".01"


def test_format_en_us() -> None:
    assert Money(3000, "USD").format() == "$30.00"
    assert Money(3000, "USD").format("en_US") == "$30.00"


def test_format_cs_cz() -> None:
    # What Babel 2.18 (CLDR) prints: no-break spaces for grouping and before the symbol.
    assert Money(123450, "CZK").format("cs_CZ") == "1\u00a0234,50\u00a0Kč"


def test_format_does_not_round_half_even() -> None:
    # Babel would round 0.125 half-even to 0.12; our amounts are exact so nothing is rounded.
    assert Money(125, "BHD").format("en_US") == "BHD0.125"
    assert Money(1005, "USD").format("en_US") == "$10.05"


def test_sign_properties() -> None:
    assert Money(0, "USD").is_zero
    assert not Money(0, "USD").is_positive
    assert not Money(0, "USD").is_negative
    assert Money(1, "USD").is_positive
    assert Money(-1, "USD").is_negative
    assert not Money(-1, "USD").is_zero


def test_truthiness_is_not_the_amount() -> None:
    # Documented trap: bool() is not overridden, so even zero is truthy; use is_zero instead.
    assert bool(Money(0, "USD")) is True


# -- arithmetic ---------------------------------------------------------------------------------


def test_arithmetic_same_currency() -> None:
    a, b = Money(3000, "USD"), Money(525, "USD")
    assert a + b == Money(3525, "USD")
    assert a - b == Money(2475, "USD")
    assert -b == Money(-525, "USD")
    assert abs(Money(-525, "USD")) == b
    assert a * 3 == Money(9000, "USD")
    assert 3 * a == Money(9000, "USD")
    assert a * -1 == -a


def test_mixed_currency_arithmetic_raises() -> None:
    usd, eur = Money(100, "USD"), Money(100, "EUR")
    with pytest.raises(CurrencyMismatch) as exc:
        usd + eur
    assert (exc.value.left, exc.value.right) == ("USD", "EUR")
    with pytest.raises(CurrencyMismatch):
        usd - eur


@pytest.mark.parametrize("factor", [1.5, Decimal("1.5"), True, "2"])
def test_multiplication_takes_only_int(factor: object) -> None:
    money = Money(100, "USD")
    with pytest.raises(TypeError):
        money * factor  # type: ignore[operator]
    with pytest.raises(TypeError):
        factor * money  # type: ignore[operator]


def test_money_and_numbers_do_not_add() -> None:
    with pytest.raises(TypeError):
        Money(100, "USD") + 1  # type: ignore[operator]
    with pytest.raises(TypeError):
        Money(100, "USD") * Money(2, "USD")  # type: ignore[operator]


def test_comparisons() -> None:
    small, big = Money(100, "USD"), Money(200, "USD")
    assert small < big
    assert small <= big
    assert small <= Money(100, "USD")
    assert big > small
    assert big >= small
    assert max([small, big]) == big


def test_mixed_currency_comparisons_raise() -> None:
    usd, eur = Money(100, "USD"), Money(200, "EUR")
    with pytest.raises(CurrencyMismatch):
        _ = usd < eur
    with pytest.raises(CurrencyMismatch):
        _ = usd <= eur
    with pytest.raises(CurrencyMismatch):
        _ = usd > eur
    with pytest.raises(CurrencyMismatch):
        _ = usd >= eur


def test_equality_across_currencies_is_just_unequal() -> None:
    assert Money(100, "USD") != Money(100, "EUR")
    assert Money(100, "USD") == Money(100, "USD")
    assert len({Money(100, "USD"), Money(100, "usd"), Money(100, "EUR")}) == 2


def test_comparison_with_non_money_is_a_type_error() -> None:
    with pytest.raises(TypeError):
        _ = Money(100, "USD") < 5  # type: ignore[operator]


def test_sum_money() -> None:
    items = [Money(100, "USD"), Money(250, "USD"), Money(-50, "USD")]
    assert sum_money(items, "usd") == Money(300, "USD")
    assert sum_money([], "JPY") == Money(0, "JPY")
    assert sum_money(iter(items), "USD") == Money(300, "USD")
    with pytest.raises(CurrencyMismatch):
        sum_money([Money(100, "USD"), Money(100, "EUR")], "USD")


# -- allocate / split ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("minor", "ratios", "parts"),
    [
        (100, [1, 1, 1], [34, 33, 33]),
        (-100, [1, 1, 1], [-34, -33, -33]),
        (101, [1, 1, 1], [34, 34, 33]),
        (100, [0, 1], [0, 100]),
        (100, [1, 0], [100, 0]),
        (5, [1, 1, 0, 1], [2, 2, 0, 1]),
        (0, [3, 7], [0, 0]),
        (1, [1, 1], [1, 0]),  # ties go to the earliest part
        (10, [1, 2], [3, 7]),  # 3.33 vs 6.67: the larger remainder wins the unit
        (1000, [70, 20, 10], [700, 200, 100]),
    ],
)
def test_allocate_examples(minor: int, ratios: list[int], parts: list[int]) -> None:
    assert Money(minor, "USD").allocate(ratios) == [Money(p, "USD") for p in parts]


@pytest.mark.parametrize("ratios", [[], [-1, 2], [0, 0], [0]])
def test_allocate_refuses_bad_ratios(ratios: list[int]) -> None:
    with pytest.raises(ValidationError) as exc:
        Money(100, "USD").allocate(ratios)
    assert exc.value.field == "ratios"


def test_allocate_refuses_non_int_ratios() -> None:
    with pytest.raises(TypeError):
        Money(100, "USD").allocate([0.5, 0.5])  # type: ignore[list-item]


@given(monies, ratio_lists)
def test_allocate_sums_exactly_and_stays_fair(money: Money, ratios: list[int]) -> None:
    parts = money.allocate(ratios)
    assert len(parts) == len(ratios)
    assert all(part.currency == money.currency for part in parts)
    assert sum(part.minor for part in parts) == money.minor
    total = sum(ratios)
    for part, ratio in zip(parts, ratios, strict=True):
        exact = Fraction(money.minor * ratio, total)
        assert abs(part.minor - exact) < 1
        if ratio == 0:
            assert part.minor == 0


@given(monies, ratio_lists)
def test_allocate_mirrors_for_negative_amounts(money: Money, ratios: list[int]) -> None:
    assert (-money).allocate(ratios) == [-part for part in money.allocate(ratios)]


@given(monies, st.integers(min_value=1, max_value=50))
def test_split_sums_exactly_and_is_even(money: Money, count: int) -> None:
    parts = money.split(count)
    assert len(parts) == count
    assert sum_money(parts, money.currency) == money
    minors = [part.minor for part in parts]
    assert max(minors) - min(minors) <= 1
    # the extra units go to the earliest parts
    assert [abs(m) for m in minors] == sorted((abs(m) for m in minors), reverse=True)


@pytest.mark.parametrize("count", [0, -1])
def test_split_refuses_fewer_than_one_part(count: int) -> None:
    with pytest.raises(ValidationError) as exc:
        Money(100, "USD").split(count)
    assert (exc.value.field, exc.value.rule) == ("parts", "must be at least 1")


# -- prorate / percent --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("minor", "numerator", "denominator", "expected"),
    [
        (1000, 1, 3, 333),
        (1000, 2, 3, 667),
        (5, 1, 2, 3),
        (-5, 1, 2, -3),
        (15, 1, 10, 2),  # 1.5 -> 2
        (-15, 1, 10, -2),
        (14, 1, 10, 1),
        (3000, 0, 30, 0),
        (3000, 30, 30, 3000),
        (3000, 17, 31, 1645),  # 1645.16...
        (3000, 45, 30, 4500),  # more than a whole period is allowed
    ],
)
def test_prorate_rounds_half_up_once(
    minor: int, numerator: int, denominator: int, expected: int
) -> None:
    assert Money(minor, "USD").prorate(numerator, denominator) == Money(expected, "USD")


@pytest.mark.parametrize(
    ("numerator", "denominator", "field"),
    [(-1, 30, "numerator"), (1, 0, "denominator"), (1, -30, "denominator")],
)
def test_prorate_refuses(numerator: int, denominator: int, field: str) -> None:
    with pytest.raises(ValidationError) as exc:
        Money(100, "USD").prorate(numerator, denominator)
    assert exc.value.field == field


def test_prorate_refuses_non_int() -> None:
    with pytest.raises(TypeError):
        Money(100, "USD").prorate(0.5, 1)  # type: ignore[arg-type]


@given(
    monies,
    st.integers(min_value=0, max_value=10_000),
    st.integers(min_value=1, max_value=10_000),
)
def test_prorate_is_within_half_a_unit(money: Money, numerator: int, denominator: int) -> None:
    result = money.prorate(numerator, denominator)
    exact = Fraction(money.minor * numerator, denominator)
    assert abs(result.minor - exact) <= Fraction(1, 2)
    # and it is exactly the ROUNDING rule, computed in decimals with ample precision
    with decimal.localcontext(prec=100):
        expected = (Decimal(money.minor) * numerator / denominator).quantize(
            Decimal(1), rounding=ROUNDING
        )
    assert result.minor == int(expected)


@pytest.mark.parametrize(
    ("minor", "basis_points", "expected"),
    [
        (10000, 2100, 2100),  # 21 % of 100.00
        (1999, 2100, 420),  # 419.79 -> 420
        (50, 1000, 5),
        (5, 1000, 1),  # 0.5 -> 1
        (-5, 1000, -1),
        (1234, 0, 0),
        (1234, 10_000, 1234),
    ],
)
def test_percent_bp(minor: int, basis_points: int, expected: int) -> None:
    assert Money(minor, "USD").percent_bp(basis_points) == Money(expected, "USD")


# -- round trip ---------------------------------------------------------------------------------


@given(monies)
def test_str_parses_back(money: Money) -> None:
    assert Money.parse(str(money)) == money


@given(monies)
def test_to_decimal_round_trips_through_from_major(money: Money) -> None:
    assert Money.from_major(money.to_decimal(), money.currency) == money

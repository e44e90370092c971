"""Money: the one amount type of ispbill.

ARCHITECTURE invariant 1: "Money is an integer number of minor units with an ISO 4217 currency.
No float ever touches an amount. Rounding happens once, half-up, and a split distributes the
remainder so the parts sum exactly to the whole."

This module owns that rule. Every amount in the domain is a ``Money`` built here, so the rule
lives in one place:

- the amount is an ``int`` of minor units (cents, haléře, fils); floats and Decimals are refused
  at the constructor, and decimal input goes through ``Money.from_major`` / ``Money.parse``,
  which are exact and refuse more fraction digits than the currency has instead of rounding;
- the currency's exponent (2 for USD, 0 for JPY, 3 for BHD) comes from Babel's CLDR data;
- arithmetic never mixes currencies (``CurrencyMismatch``), and the only operations that
  divide (``prorate``, ``percent_bp``) round exactly once, half-up (``ROUNDING``), in integers;
- ``allocate`` / ``split`` use the largest-remainder method, so parts always sum to the whole.

Pure: no clock, no database, no I/O. Locale-aware text (Babel) is only used at the edges,
in ``parse`` and ``format``.
"""

from __future__ import annotations

import decimal
import functools
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal

from babel import numbers as babel_numbers

from ispbill.domain.errors import CurrencyMismatch, ValidationError

__all__ = [
    "ROUNDING",
    "Money",
    "currency_exponent",
    "normalize_currency",
    "sum_money",
]

# The one rounding rule (invariant 1): half-up, i.e. half away from zero for negatives. The
# integer helpers below implement exactly this mode. Babel's format_currency rounds half-even,
# so nothing unrounded is ever handed to it: Money.to_decimal is already exact at the exponent.
ROUNDING = decimal.ROUND_HALF_UP

# Space-like characters people (and Babel, depending on the locale) use as digit groupers.
_SPACES = " \u00a0\u202f\u2009"
_SPACE_RE = re.compile(f"[{_SPACES}]+")
# Exact decimal text accepted by from_major: no exponent, no NaN/Infinity, no "_", ASCII digits.
_PLAIN_DECIMAL_RE = re.compile(r"[+-]?[0-9]+(?:\.[0-9]+)?")
# A guard against "1E+999999999" turning into a 10**999999999 integer: no real bill is this big.
_MAX_INTEGER_DIGITS = 30
# A code is three ASCII letters at either end, not glued to other letters ("world" is no "RLD").
_CODE_AT_END = re.compile(r"(?<![A-Za-z])([A-Za-z]{3})\Z")
_CODE_AT_START = re.compile(r"\A([A-Za-z]{3})(?![A-Za-z])")
_AMOUNT_EXAMPLE = "must be an amount such as '30.00 USD'"


@functools.lru_cache(maxsize=1)
def _known_currencies() -> frozenset[str]:
    return frozenset(babel_numbers.list_currencies())


def normalize_currency(code: str) -> str:
    """Return ``code`` stripped and upper-cased, refusing anything not in ISO 4217 (CLDR).

    Babel silently answers 2 digits for unknown codes, so the code is checked first.
    """
    if not isinstance(code, str):
        raise TypeError(f"currency must be a str, got {type(code).__name__}")
    normalized = code.strip().upper()
    if normalized not in _known_currencies():
        raise ValidationError("currency", f"unknown ISO 4217 currency code {code!r}")
    return normalized


@functools.lru_cache(maxsize=512)
def currency_exponent(code: str) -> int:
    """Number of minor-unit digits of ``code`` (USD 2, JPY 0, BHD 3), from Babel's CLDR data."""
    return babel_numbers.get_currency_precision(normalize_currency(code))


def _mul_div_half_up(value: int, numerator: int, denominator: int) -> int:
    """``value * numerator / denominator`` rounded once, half away from zero, in exact integers."""
    product = value * numerator
    quotient, remainder = divmod(abs(product), denominator)
    if 2 * remainder >= denominator:
        quotient += 1
    return -quotient if product < 0 else quotient


def _require_int(name: str, value: object) -> int:
    # bool is an int subclass; True as an amount or a ratio is always a bug.
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int, got {type(value).__name__}")
    return value


def _split_currency(text: str) -> tuple[str, str | None]:
    """Split ``"30.00 USD"`` / ``"USD 30.00"`` / ``"30.00"`` into (number text, code or None)."""
    for pattern in (_CODE_AT_END, _CODE_AT_START):
        found = pattern.search(text)
        if found:
            rest = text[: found.start()] + text[found.end() :]
            return rest.strip(), found.group(1)
    return text, None


@dataclass(frozen=True, slots=True)
class Money:
    """An exact amount: ``minor`` units of ``currency`` (``Money(3050, "USD")`` is 30.50 USD).

    Equality is plain dataclass equality, so amounts in different currencies are simply
    unequal; ordering and arithmetic across currencies raise ``CurrencyMismatch``.

    ``__bool__`` is deliberately not defined: every Money is truthy, whatever its amount. Write
    ``m.is_zero`` / ``m.is_positive`` rather than ``if m:``, so the intent is explicit.
    """

    minor: int
    currency: str

    def __post_init__(self) -> None:
        minor: object = self.minor
        if type(minor) is int and self.currency in _known_currencies():
            return  # the common case, already exact: the engine builds millions of these
        if isinstance(minor, float | Decimal):
            kind = type(minor).__name__
            raise TypeError(
                f"Money takes integer minor units; got {kind} {minor!r}; "
                "use Money.from_major with a Decimal or string"
            )
        object.__setattr__(self, "minor", int(_require_int("Money.minor", minor)))
        object.__setattr__(self, "currency", normalize_currency(self.currency))

    # -- construction -------------------------------------------------------------------------

    @classmethod
    def zero(cls, currency: str) -> Money:
        """Zero in ``currency``: the start of every sum."""
        return cls(0, currency)

    @classmethod
    def from_major(
        cls, value: Decimal | str | int, currency: str, *, field: str = "amount"
    ) -> Money:
        """Exact conversion from major units: ``"30.50"``, ``Decimal("30.5")`` or ``30``.

        Never rounds: more fraction digits than the currency has is refused, because a silent
        rounding at input is a rounding nobody decided on (and "30.500 USD" may be a typo for
        thirty thousand five hundred).
        """
        code = normalize_currency(currency)
        exponent = currency_exponent(code)
        if isinstance(value, float):
            raise TypeError(f"Money.from_major refuses float {value!r}; pass a Decimal or a string")
        if isinstance(value, bool):
            raise TypeError("Money.from_major refuses bool; pass a Decimal, a string or an int")
        if isinstance(value, int):
            return cls(value * 10**exponent, code)
        if isinstance(value, str):
            text = value.strip()
            if not _PLAIN_DECIMAL_RE.fullmatch(text):
                raise ValidationError(field, "must be a number such as 30.00")
            number = Decimal(text)  # exact: constructing from a string never rounds
        elif isinstance(value, Decimal):
            number = value
        else:
            raise TypeError(
                f"Money.from_major takes a Decimal, str or int, got {type(value).__name__}"
            )
        if not number.is_finite():
            raise ValidationError(field, "must be a number such as 30.00")
        sign, digits, exp = number.as_tuple()
        assert isinstance(exp, int)  # finite, so never 'n' / 'N' / 'F'
        if exp < -exponent:
            raise ValidationError(field, f"at most {exponent} decimal places for {code}")
        if number.adjusted() >= _MAX_INTEGER_DIGITS:
            raise ValidationError(field, "is too large")
        magnitude = int("".join(map(str, digits))) * 10 ** (exp + exponent)
        return cls(-magnitude if sign else magnitude, code)

    @classmethod
    def parse(
        cls,
        text: str,
        *,
        locale: str = "en_US",
        currency: str | None = None,
        field: str = "amount",
    ) -> Money:
        """Parse operator input such as ``"30.00 USD"``, ``"USD 30"`` or ``"1 234,50 CZK"``.

        The number is read in ``locale`` strictly (Babel), so a misplaced grouping separator
        is refused rather than guessed at. Any space-like character (space, U+00A0, U+202F)
        stands for the locale's grouping separator when that separator is itself a space,
        since people type a plain space where CLDR says no-break space. ``currency``, when
        given, is the expected currency: the text may then omit it, but may not contradict it.
        """
        if not isinstance(text, str):
            raise TypeError(f"Money.parse takes a str, got {type(text).__name__}")
        number_text, code_in_text = _split_currency(text.strip())
        number = _parse_locale_decimal(number_text, locale, field)

        if code_in_text is None and currency is None:
            raise ValidationError("currency", "required, e.g. '30.00 USD'")
        if code_in_text is not None and currency is not None:
            found, expected = normalize_currency(code_in_text), normalize_currency(currency)
            if found != expected:
                raise ValidationError(field, f"currency {found} given where {expected} expected")
        code = code_in_text if code_in_text is not None else currency
        assert code is not None
        return cls.from_major(number, code, field=field)

    # -- views --------------------------------------------------------------------------------

    def to_decimal(self) -> Decimal:
        """The exact amount in major units, quantized to the exponent (3050 USD -> 30.50)."""
        # Built from the digit tuple, not by division, so no decimal context can round it.
        sign, digits, _ = Decimal(self.minor).as_tuple()
        return Decimal((sign, digits, -currency_exponent(self.currency)))

    def format(self, locale: str = "en_US") -> str:
        """Localised display text (``"$30.00"``, ``"1 234,50 Kč"``); for people, not parsing.

        Babel rounds half-even, but to_decimal already sits at the currency's exponent, so
        nothing is rounded here.
        """
        return babel_numbers.format_currency(self.to_decimal(), self.currency, locale=locale)

    def __str__(self) -> str:
        """Plain, locale-free text that ``Money.parse`` reads back: ``"30.00 USD"``."""
        return f"{self.to_decimal():f} {self.currency}"

    @property
    def is_zero(self) -> bool:
        return self.minor == 0

    @property
    def is_positive(self) -> bool:
        return self.minor > 0

    @property
    def is_negative(self) -> bool:
        return self.minor < 0

    # -- arithmetic ---------------------------------------------------------------------------

    def _same_currency(self, other: Money) -> None:
        if other.currency != self.currency:
            raise CurrencyMismatch(self.currency, other.currency)

    def __add__(self, other: Money) -> Money:
        if not isinstance(other, Money):
            return NotImplemented
        self._same_currency(other)
        return Money(self.minor + other.minor, self.currency)

    def __sub__(self, other: Money) -> Money:
        if not isinstance(other, Money):
            return NotImplemented
        self._same_currency(other)
        return Money(self.minor - other.minor, self.currency)

    def __neg__(self) -> Money:
        return Money(-self.minor, self.currency)

    def __abs__(self) -> Money:
        return Money(abs(self.minor), self.currency)

    def __mul__(self, factor: int) -> Money:
        # Only whole multiples: a fractional factor needs a rounding decision, which is what
        # prorate() and percent_bp() make explicit.
        if isinstance(factor, bool) or not isinstance(factor, int):
            raise TypeError(
                f"Money can only be multiplied by an int, got {type(factor).__name__}; "
                "use prorate() or percent_bp() for fractions"
            )
        return Money(self.minor * factor, self.currency)

    def __rmul__(self, factor: int) -> Money:
        return self.__mul__(factor)

    def __lt__(self, other: Money) -> bool:
        if not isinstance(other, Money):
            return NotImplemented
        self._same_currency(other)
        return self.minor < other.minor

    def __le__(self, other: Money) -> bool:
        if not isinstance(other, Money):
            return NotImplemented
        self._same_currency(other)
        return self.minor <= other.minor

    def __gt__(self, other: Money) -> bool:
        if not isinstance(other, Money):
            return NotImplemented
        self._same_currency(other)
        return self.minor > other.minor

    def __ge__(self, other: Money) -> bool:
        if not isinstance(other, Money):
            return NotImplemented
        self._same_currency(other)
        return self.minor >= other.minor

    # -- splitting and rounding ---------------------------------------------------------------

    def allocate(self, ratios: Sequence[int]) -> list[Money]:
        """Split by integer ratios so the parts sum exactly to ``self``.

        Largest-remainder method: each part gets the floor of its exact share, then the
        leftover minor units go one each to the largest remainders, ties to the earliest part.
        Every part is within one minor unit of its exact share; a ratio of 0 gets exactly 0.
        A negative amount is split as its absolute value and mirrored.
        """
        weights = [_require_int("ratio", r) for r in ratios]
        if not weights:
            raise ValidationError("ratios", "at least one ratio is required")
        if any(w < 0 for w in weights):
            raise ValidationError("ratios", "must not be negative")
        total = sum(weights)
        if total == 0:
            raise ValidationError("ratios", "at least one ratio must be positive")

        magnitude = abs(self.minor)
        shares = [divmod(magnitude * w, total) for w in weights]
        parts = [quotient for quotient, _ in shares]
        leftover = magnitude - sum(parts)
        by_remainder = sorted(range(len(weights)), key=lambda i: (-shares[i][1], i))
        for i in by_remainder[:leftover]:
            parts[i] += 1
        sign = -1 if self.minor < 0 else 1
        return [Money(sign * part, self.currency) for part in parts]

    def split(self, parts: int) -> list[Money]:
        """``parts`` near-equal parts summing exactly to ``self`` (earlier parts get the extra)."""
        count = _require_int("parts", parts)
        if count < 1:
            raise ValidationError("parts", "must be at least 1")
        return self.allocate([1] * count)

    def prorate(self, numerator: int, denominator: int) -> Money:
        """``self * numerator / denominator``, rounded once, half-up (away from zero).

        For charging part of a period, e.g. ``price.prorate(days_used, days_in_period)``.
        """
        num = _require_int("numerator", numerator)
        den = _require_int("denominator", denominator)
        if num < 0:
            raise ValidationError("numerator", "must not be negative")
        if den <= 0:
            raise ValidationError("denominator", "must be positive")
        return Money(_mul_div_half_up(self.minor, num, den), self.currency)

    def percent_bp(self, basis_points: int) -> Money:
        """``self * basis_points / 10000``, rounded once, half-up: 21 % VAT is ``2100``."""
        bp = _require_int("basis_points", basis_points)
        return Money(_mul_div_half_up(self.minor, bp, 10_000), self.currency)


def _parse_locale_decimal(text: str, locale: str, field: str) -> Decimal:
    """Read a locale-formatted number strictly, or refuse it as ``field``."""
    group = babel_numbers.get_group_symbol(locale)
    decimal_symbol = babel_numbers.get_decimal_symbol(locale)
    candidate = text.replace("\u2212", "-")  # the typographic minus some locales print
    if group in _SPACES:
        candidate = _SPACE_RE.sub(group, candidate)
    allowed = set("0123456789+-") | {group, decimal_symbol}
    if not candidate or not set(candidate) <= allowed:
        raise ValidationError(field, _AMOUNT_EXAMPLE)
    try:
        number = babel_numbers.parse_decimal(candidate, locale=locale, strict=True)
    except babel_numbers.NumberFormatError as exc:
        raise ValidationError(field, _AMOUNT_EXAMPLE) from exc
    if not number.is_finite():
        raise ValidationError(field, _AMOUNT_EXAMPLE)
    return number


def sum_money(items: Iterable[Money], currency: str) -> Money:
    """Sum of ``items``, all in ``currency``; an empty sum is that currency's zero."""
    code = normalize_currency(currency)
    total = 0
    for item in items:
        if item.currency != code:
            raise CurrencyMismatch(code, item.currency)
        total += item.minor
    return Money(total, code)

"""Billing calendar: which period a local date falls in, and when that period starts in UTC.

This module owns billing cycles and their periods. Invoicing, prorating, prepaid renewals and
suspension all have to agree on where a period starts and ends, so this is the only place that
decides it. It is pure: no clock, no database. Callers pass the dates they care about.

A period is a half-open range of local dates ``[start, end)``. Its boundaries are local midnights
in the customer's billing timezone ("Billing period timezone: ... to close a customer's billing
period", PortaBilling). Instants are stored in UTC, so ``Period.start_instant`` converts.

The cycles follow the seed rules:

- PortaBilling: daily; weekly "Monday through Sunday"; semimonthly "from the 1st to the 15th or
  from the 16th to the last day of the month"; monthly "from the 1st of the month to the last day
  of that month".
- PortaBilling monthly (anniversary): "covers the period from the Nth day of the month to the day
  before the Nth day of the following month. N is the day of the month when the customer was
  created." And: "To avoid complications for customers who were created on the 29th, 30th or
  31st day of the month, their first billing period will cover the time until the 28th day of
  the following month, and thereafter will always cover the period from the 28th until the
  28th." So anchor days 29-31 are kept as given but act as 28; when the creation date is known
  (``origin``), the period holding it starts on it.
- PortaBilling 30 days: "covers exactly 30 days. If a customer was created on March 20th, his
  first invoice will cover the period from March 20th to April 18th, since March has 31 days,
  and the second invoice will cover the period from April 19th to May 18th, etc."
- Splynx prepaid custom period: "change the Prepaid Period of the service to Days amount and
  select the desired amount of days" -> every N days from an origin date.
- UISP: "the admin sets the billing period to three months ... the invoice will be created every
  three months" -> every N months on an anchor day, clamped to short months but computed from
  the anchor each time, so day 31 never drifts to 28.

Origin-based cycles are also defined before their origin (periods extend backwards), so any
date has exactly one period.
"""

from __future__ import annotations

import functools
import re
from calendar import monthrange
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from enum import StrEnum
from fractions import Fraction
from typing import assert_never
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from ispbill.domain.errors import ValidationError

__all__ = [
    "PERIOD_CYCLE_CHOICES",
    "BillingCycle",
    "CycleKind",
    "Period",
    "coverage",
    "first_period",
    "load_timezone",
    "local_date",
    "local_midnight",
    "next_period",
    "parse_customer_cycle",
    "period_bounds_days",
    "period_containing",
    "periods_between",
]


class CycleKind(StrEnum):
    """How a billing cycle cuts time into periods."""

    DAILY = "daily"
    WEEKLY = "weekly"
    SEMIMONTHLY = "semimonthly"
    MONTHLY = "monthly"
    MONTHLY_ANNIVERSARY = "monthly_anniversary"
    DAYS_30 = "days_30"
    EVERY_N_DAYS = "every_n_days"
    EVERY_N_MONTHS = "every_n_months"


# Aligned to the calendar: a service starting mid-period gets a partial first period.
_CALENDAR_KINDS = frozenset(
    {CycleKind.DAILY, CycleKind.WEEKLY, CycleKind.SEMIMONTHLY, CycleKind.MONTHLY}
)
_ANCHORED_KINDS = frozenset({CycleKind.MONTHLY_ANNIVERSARY, CycleKind.EVERY_N_MONTHS})
_ORIGIN_REQUIRED = frozenset({CycleKind.DAYS_30, CycleKind.EVERY_N_DAYS, CycleKind.EVERY_N_MONTHS})
_N_KINDS = frozenset({CycleKind.EVERY_N_DAYS, CycleKind.EVERY_N_MONTHS})
# The longest period is ten years: from any accepted date (domain/dates, up to 2200) a few
# hundred periods still end before year 9999, where Python's dates stop; a period of a million
# days made the first charge overflow.
_LONGEST_N = {CycleKind.EVERY_N_DAYS: 3660, CycleKind.EVERY_N_MONTHS: 120}

# PortaBilling: anniversaries on the 29th-31st run "from the 28th until the 28th".
_LAST_SAFE_ANCHOR_DAY = 28

PERIOD_CYCLE_CHOICES: tuple[str, ...] = (
    "daily",
    "weekly",
    "semimonthly",
    "monthly",
    "monthly_anniversary",
    "days_30",
    "every_<n>_days",
    "every_<n>_months",
)

_NAMED_KINDS: dict[str, CycleKind] = {
    "daily": CycleKind.DAILY,
    "weekly": CycleKind.WEEKLY,
    "semimonthly": CycleKind.SEMIMONTHLY,
    "monthly": CycleKind.MONTHLY,
    "monthly_anniversary": CycleKind.MONTHLY_ANNIVERSARY,
    "anniversary": CycleKind.MONTHLY_ANNIVERSARY,
    "days_30": CycleKind.DAYS_30,
    "30days": CycleKind.DAYS_30,
    "30_days": CycleKind.DAYS_30,
}
_EVERY_N = re.compile(r"every_([0-9]+)_(day|month)s?|([0-9]+)(d|m)")


@dataclass(frozen=True, slots=True)
class BillingCycle:
    """A billing cycle: its kind plus the parameters that kind needs, validated on creation.

    ``n`` is the count for every_n_days / every_n_months (1 elsewhere). ``anchor_day`` is the day
    of month for monthly_anniversary and every_n_months. ``origin`` is the date counted from:
    required for days_30, every_n_days and every_n_months (which take only its month as phase),
    optional for monthly_anniversary (the creation date, for the 29th-31st rule).
    """

    kind: CycleKind
    n: int = 1
    anchor_day: int | None = None
    origin: date | None = None

    def __post_init__(self) -> None:
        try:
            object.__setattr__(self, "kind", CycleKind(self.kind))
        except ValueError:
            raise ValidationError("cycle", f"unknown billing cycle kind {self.kind!r}") from None
        self._check_n()
        self._check_anchor_day()
        self._check_origin()

    def _check_n(self) -> None:
        longest = _LONGEST_N.get(self.kind)
        if longest is not None and not 1 <= self.n <= longest:
            raise ValidationError("n", f"must be between 1 and {longest} for {self.kind} cycles")
        if self.kind not in _N_KINDS and self.n != 1:
            raise ValidationError("n", f"not used by {self.kind} cycles; leave it at 1")

    def _check_anchor_day(self) -> None:
        if self.kind not in _ANCHORED_KINDS:
            if self.anchor_day is not None:
                raise ValidationError("anchor_day", f"not used by {self.kind} cycles")
            return
        if self.anchor_day is None:
            raise ValidationError("anchor_day", f"required for {self.kind}")
        if not 1 <= self.anchor_day <= 31:
            raise ValidationError("anchor_day", "must be between 1 and 31")

    def _check_origin(self) -> None:
        if self.kind in _ORIGIN_REQUIRED and self.origin is None:
            raise ValidationError("origin", f"required for {self.kind}")
        if self.kind in _CALENDAR_KINDS and self.origin is not None:
            raise ValidationError("origin", f"not used by {self.kind} cycles")
        # The creation date is what defines the anniversary day: the two cannot disagree.
        origin_day = None if self.origin is None else self.origin.day
        if self.kind is CycleKind.MONTHLY_ANNIVERSARY and origin_day not in (None, self.anchor_day):
            rule = f"creation day {origin_day} differs from anchor_day {self.anchor_day}"
            raise ValidationError("origin", rule)

    @property
    def calendar_aligned(self) -> bool:
        """True when periods follow the calendar, so a mid-period start is billed partially."""
        return self.kind in _CALENDAR_KINDS

    @classmethod
    def parse(
        cls, text: str, *, anchor_day: int | None = None, origin: date | None = None
    ) -> BillingCycle:
        """Read a cycle name as typed by an operator or stored in a plan.

        Accepts the names in ``PERIOD_CYCLE_CHOICES`` plus the aliases ``anniversary``,
        ``30days``, ``30_days``, ``7d`` (every 7 days) and ``3m`` (every 3 months). ``origin``
        is the service's own start date; calendar-aligned cycles ignore it, anchored cycles take
        their anchor day from it unless ``anchor_day`` is given.
        """
        kind, n = _parse_kind(text)
        if kind in _ANCHORED_KINDS and anchor_day is None and origin is not None:
            anchor_day = origin.day
        if kind in _CALENDAR_KINDS:
            origin = None
        return cls(kind=kind, n=n, anchor_day=anchor_day, origin=origin)

    def describe(self) -> str:
        """Human text for invoices and the CLI, e.g. "every 3 months on day 31"."""
        match self.kind:
            case CycleKind.DAILY:
                return "daily"
            case CycleKind.WEEKLY:
                return "weekly, Monday to Sunday"
            case CycleKind.SEMIMONTHLY:
                return "semimonthly, 1st to 15th and 16th to month end"
            case CycleKind.MONTHLY:
                return "monthly, calendar month"
            case CycleKind.MONTHLY_ANNIVERSARY:
                return _describe_anniversary(_anchor(self))
            case CycleKind.DAYS_30 | CycleKind.EVERY_N_DAYS:
                return f"every {_plural(_length_days(self), 'day')} from {_origin(self)}"
            case CycleKind.EVERY_N_MONTHS:
                return f"every {_plural(self.n, 'month')} on day {_anchor(self)}"
            case _:
                assert_never(self.kind)


@dataclass(frozen=True, slots=True, order=True)
class Period:
    """A half-open range of local dates ``[start, end)``; ``end`` is the next period's start."""

    start: date
    end: date

    def __post_init__(self) -> None:
        if self.end <= self.start:
            raise ValidationError("period", f"end {self.end} must be after start {self.start}")

    @property
    def days(self) -> int:
        """Number of local dates in the period (the proration denominator)."""
        return (self.end - self.start).days

    @property
    def last_day(self) -> date:
        """The last date in the period, as printed on an invoice ("March 20 to April 18")."""
        return self.end - timedelta(days=1)

    def contains(self, d: date) -> bool:
        """True when ``d`` is one of the period's dates."""
        return self.start <= d < self.end

    def start_instant(self, tz: str | ZoneInfo) -> datetime:
        """UTC instant the period opens: local midnight of ``start`` in the billing timezone."""
        return local_midnight(self.start, tz)

    def end_instant(self, tz: str | ZoneInfo) -> datetime:
        """UTC instant the period closes, equal to the next period's ``start_instant``."""
        return local_midnight(self.end, tz)


def load_timezone(name: str) -> ZoneInfo:
    """The IANA zone ``name``, refused with a ValidationError rather than a KeyError."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise ValidationError("timezone", f"unknown IANA timezone {name!r}") from None


@functools.lru_cache(maxsize=65536)  # pure; the engine asks for the same few instants often
def local_midnight(d: date, tz: str | ZoneInfo) -> datetime:
    """The UTC instant local date ``d`` begins: the first instant whose local date is ``d``.

    Where midnight is skipped by a DST change (America/Santiago, America/Havana, Asia/Beirut)
    that is the transition instant. Where midnight happens twice, the first one. A local date
    that never happens (Pacific/Apia skipped 2011-12-30) gets the next date's start, so the
    result never decreases and grows strictly on every date that exists.
    """
    zone = _zone(tz)
    at_midnight = datetime.combine(d, time(), tzinfo=zone)
    first, last = sorted(at_midnight.replace(fold=fold).astimezone(UTC) for fold in (0, 1))
    if local_date(first, zone) >= d:
        return first
    return _gap_end(d, zone, before=first, after=last)


def _gap_end(d: date, zone: ZoneInfo, *, before: datetime, after: datetime) -> datetime:
    """Bisect the DST gap for its transition; tz transitions fall on whole UTC seconds."""
    low, high = int(before.timestamp()), int(after.timestamp())
    while high - low > 1:
        middle = (low + high) // 2
        if local_date(datetime.fromtimestamp(middle, UTC), zone) >= d:
            high = middle
        else:
            low = middle
    return datetime.fromtimestamp(high, UTC)


def local_date(instant: datetime, tz: str | ZoneInfo) -> date:
    """The local date an aware instant falls on; naive instants are refused as ambiguous."""
    if instant.tzinfo is None or instant.utcoffset() is None:
        raise ValidationError("instant", "must be timezone-aware (UTC)")
    return instant.astimezone(_zone(tz)).date()


@functools.lru_cache(maxsize=65536)  # pure; 100k services share a handful of periods
def period_containing(cycle: BillingCycle, d: date) -> Period:
    """The one full period of ``cycle`` that holds ``d``."""
    match cycle.kind:
        case CycleKind.DAILY:
            return Period(d, d + timedelta(days=1))
        case CycleKind.WEEKLY:
            return _fixed_period(d, origin=d - timedelta(days=d.weekday()), length_days=7)
        case CycleKind.SEMIMONTHLY:
            return _semimonthly_period(d)
        case CycleKind.MONTHLY:
            return _month_period(d, months=1, anchor_day=1, phase=0)
        case CycleKind.MONTHLY_ANNIVERSARY:
            return _anniversary_period(cycle, d)
        case CycleKind.DAYS_30 | CycleKind.EVERY_N_DAYS:
            return _fixed_period(d, origin=_origin(cycle), length_days=_length_days(cycle))
        case CycleKind.EVERY_N_MONTHS:
            phase = _month_index(_origin(cycle))
            return _month_period(d, months=cycle.n, anchor_day=_anchor(cycle), phase=phase)
        case _:
            assert_never(cycle.kind)


def next_period(cycle: BillingCycle, period: Period) -> Period:
    """The period right after ``period``; also steps from a partial first period."""
    return period_containing(cycle, period.end)


def periods_between(cycle: BillingCycle, start: date, end: date) -> Iterator[Period]:
    """Every full period overlapping ``[start, end)``, in order and contiguous."""
    if end <= start:
        return
    period = period_containing(cycle, start)
    while period.start < end:
        yield period
        period = next_period(cycle, period)


def first_period(cycle: BillingCycle, start: date) -> Period:
    """What a service starting on ``start`` is first billed for.

    Calendar-aligned cycles bill the rest of the current period (prorated); origin-based cycles
    bill the full period holding ``start``, which begins on it when ``origin`` is ``start``.
    """
    period = period_containing(cycle, start)
    return Period(start, period.end) if cycle.calendar_aligned else period


def coverage(cycle: BillingCycle, start: date) -> Fraction:
    """Share of the period holding ``start`` that ``[start, period end)`` covers: the proration."""
    period = period_containing(cycle, start)
    return Fraction((period.end - start).days, period.days)


def period_bounds_days(cycle: BillingCycle) -> tuple[int, int]:
    """Shortest and longest full period of ``cycle`` in days, for sanity checks and pricing."""
    match cycle.kind:
        case CycleKind.DAILY:
            return (1, 1)
        case CycleKind.WEEKLY:
            return (7, 7)
        case CycleKind.SEMIMONTHLY:
            return (13, 16)  # 16th to the end of February / of a 31-day month
        case CycleKind.MONTHLY | CycleKind.MONTHLY_ANNIVERSARY:
            return (28, 31)
        case CycleKind.DAYS_30 | CycleKind.EVERY_N_DAYS:
            length = _length_days(cycle)
            return (length, length)
        case CycleKind.EVERY_N_MONTHS:
            return _every_n_months_bounds(cycle.n, _anchor(cycle))
        case _:
            assert_never(cycle.kind)


def _parse_kind(text: str) -> tuple[CycleKind, int]:
    """Map operator text to a kind and its ``n``."""
    key = text.strip().lower().replace("-", "_").replace(" ", "_")
    if key in _NAMED_KINDS:
        return _NAMED_KINDS[key], 1
    match = _EVERY_N.fullmatch(key)
    if match is None:
        expected = ", ".join(PERIOD_CYCLE_CHOICES)
        rule = f"unknown billing cycle {text!r}; expected one of {expected}"
        raise ValidationError("cycle", rule)
    count, unit = (match[1], match[2]) if match[1] else (match[3], match[4])
    kind = CycleKind.EVERY_N_DAYS if unit.startswith("d") else CycleKind.EVERY_N_MONTHS
    return kind, int(count)


def parse_customer_cycle(
    text: str, n: int | None = None, *, field: str = "billing_cycle"
) -> tuple[CycleKind, int]:
    """A customer's cycle as an operator gives it: a kind's name with an optional count ``n``.

    ``every_n_days`` / ``every_n_months`` take their count from ``n`` (required then; it was once
    silently 1, billing an "every 7 days" customer daily); ``every_7_days`` or ``7d`` carry it
    in the name. Any other kind refuses a count.
    """
    key = text.strip().lower().replace("-", "_").replace(" ", "_")
    if key in (CycleKind.EVERY_N_DAYS.value, CycleKind.EVERY_N_MONTHS.value):
        kind, named_n = CycleKind(key), None
    else:
        try:
            kind, parsed = _parse_kind(text)
        except ValidationError:
            expected = ", ".join(PERIOD_CYCLE_CHOICES)
            raise ValidationError(field, f"must be one of {expected} (got {text!r})") from None
        named_n = parsed if kind in _N_KINDS else None
    if kind not in _N_KINDS:
        if n is not None:
            raise ValidationError(
                "cycle_n",
                f"not used by {kind} cycles; only every_n_days and every_n_months take a count",
            )
        return kind, 1
    if n is None and named_n is None:
        raise ValidationError(
            "cycle_n",
            f"required for {kind} cycles: how many "
            f"{'days' if kind is CycleKind.EVERY_N_DAYS else 'months'}",
        )
    if n is not None and named_n is not None and n != named_n:
        raise ValidationError("cycle_n", f"{n} differs from the {named_n} in {text!r}")
    count = n if n is not None else named_n
    assert count is not None
    longest = _LONGEST_N[kind]
    if not 1 <= count <= longest:
        raise ValidationError("cycle_n", f"must be between 1 and {longest} for {kind} cycles")
    return kind, count


def _zone(tz: str | ZoneInfo) -> ZoneInfo:
    return tz if isinstance(tz, ZoneInfo) else load_timezone(tz)


def _anchor(cycle: BillingCycle) -> int:
    # Validation guarantees it for anchored kinds; this narrows the type for mypy.
    assert cycle.anchor_day is not None
    return cycle.anchor_day


def _origin(cycle: BillingCycle) -> date:
    assert cycle.origin is not None
    return cycle.origin


def _length_days(cycle: BillingCycle) -> int:
    return 30 if cycle.kind is CycleKind.DAYS_30 else cycle.n


def _plural(count: int, unit: str) -> str:
    return unit if count == 1 else f"{count} {unit}s"


def _describe_anniversary(anchor_day: int) -> str:
    if anchor_day <= _LAST_SAFE_ANCHOR_DAY:
        return f"monthly on day {anchor_day}"
    return f"monthly on day {_LAST_SAFE_ANCHOR_DAY} (created on day {anchor_day})"


def _fixed_period(d: date, *, origin: date, length_days: int) -> Period:
    """The ``length_days``-long period holding ``d`` in a grid starting at ``origin``."""
    index = (d - origin).days // length_days  # floor division: also right before the origin
    start = origin + timedelta(days=index * length_days)
    return Period(start, start + timedelta(days=length_days))


def _semimonthly_period(d: date) -> Period:
    if d.day < 16:
        return Period(d.replace(day=1), d.replace(day=16))
    return Period(d.replace(day=16), _month_anchor(_month_index(d) + 1, 1))


def _month_index(d: date) -> int:
    return d.year * 12 + d.month - 1


def _month_anchor(index: int, anchor_day: int) -> date:
    """The anchor day in month ``index``, clamped to its length.

    Computed from the anchor each time rather than from the previous start, so day 31 gives
    Jan 31, Feb 28, Mar 31 and never drifts down to the 28th.
    """
    year, month0 = divmod(index, 12)
    return date(year, month0 + 1, min(anchor_day, monthrange(year, month0 + 1)[1]))


def _month_period(d: date, *, months: int, anchor_day: int, phase: int) -> Period:
    """The period holding ``d`` among periods starting in months ``phase + k * months``."""
    k = (_month_index(d) - phase) // months
    if d < _month_anchor(phase + k * months, anchor_day):
        k -= 1  # d is in the start month but before the anchor day
    start = _month_anchor(phase + k * months, anchor_day)
    return Period(start, _month_anchor(phase + (k + 1) * months, anchor_day))


def _anniversary_period(cycle: BillingCycle, d: date) -> Period:
    """Anniversary periods, with PortaBilling's 29th-31st rule split at the creation date."""
    anchor_day = _anchor(cycle)
    regular = _month_period(d, months=1, anchor_day=min(anchor_day, _LAST_SAFE_ANCHOR_DAY), phase=0)
    origin = cycle.origin
    if origin is None or anchor_day <= _LAST_SAFE_ANCHOR_DAY:
        return regular
    split = _month_period(origin, months=1, anchor_day=_LAST_SAFE_ANCHOR_DAY, phase=0)
    if regular != split:
        return regular
    # The customer exists from origin; the days from the 28th before it form a stub period.
    return Period(split.start, origin) if d < origin else Period(origin, split.end)


# The Gregorian calendar repeats every 400 years (4800 months), so walking one such cycle sees
# every possible period length.
_GREGORIAN_CYCLE_MONTHS = 4800
_GREGORIAN_CYCLE_START = 2000 * 12


@functools.cache
def _every_n_months_bounds(months: int, anchor_day: int) -> tuple[int, int]:
    """Exact shortest and longest ``months``-month period on ``anchor_day``."""
    first = _GREGORIAN_CYCLE_START
    lengths = {
        (_month_anchor(i + months, anchor_day) - _month_anchor(i, anchor_day)).days
        for i in range(first, first + _GREGORIAN_CYCLE_MONTHS)
    }
    return min(lengths), max(lengths)

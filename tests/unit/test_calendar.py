"""Billing calendar: the seeds' worked examples, DST edges, refusals and tiling properties."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from fractions import Fraction
from itertools import pairwise

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ispbill.domain.calendar import (
    PERIOD_CYCLE_CHOICES,
    BillingCycle,
    CycleKind,
    Period,
    coverage,
    first_period,
    load_timezone,
    local_date,
    local_midnight,
    next_period,
    period_bounds_days,
    period_containing,
    periods_between,
)
from ispbill.domain.errors import ValidationError


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


def anniversary(created: date) -> BillingCycle:
    return BillingCycle(CycleKind.MONTHLY_ANNIVERSARY, anchor_day=created.day, origin=created)


def walk(cycle: BillingCycle, d: date, count: int) -> list[Period]:
    """``count`` successive periods, starting with the one holding ``d``."""
    periods = [period_containing(cycle, d)]
    while len(periods) < count:
        periods.append(next_period(cycle, periods[-1]))
    return periods


def spans(periods: list[Period]) -> list[tuple[date, date]]:
    """(start, last day) pairs: how the seeds state periods, inclusive of both ends."""
    return [(p.start, p.last_day) for p in periods]


# --- PortaBilling worked examples -------------------------------------------------------------


def test_anniversary_created_march_19_runs_19th_to_18th() -> None:
    """Seed: created on March 19th -> "from the 19th of the current month to the 18th"."""
    periods = walk(anniversary(date(2026, 3, 19)), date(2026, 3, 19), 3)
    assert spans(periods) == [
        (date(2026, 3, 19), date(2026, 4, 18)),
        (date(2026, 4, 19), date(2026, 5, 18)),
        (date(2026, 5, 19), date(2026, 6, 18)),
    ]


def test_anniversary_created_january_30_first_period_ends_before_february_28() -> None:
    periods = walk(anniversary(date(2026, 1, 30)), date(2026, 1, 30), 3)
    assert periods == [
        Period(date(2026, 1, 30), date(2026, 2, 28)),
        Period(date(2026, 2, 28), date(2026, 3, 28)),
        Period(date(2026, 3, 28), date(2026, 4, 28)),
    ]


@pytest.mark.parametrize("created", [date(2026, 1, 29), date(2026, 1, 30), date(2026, 1, 31)])
def test_anniversary_created_29th_to_31st_then_runs_28th_to_28th(created: date) -> None:
    """Seed: "first billing period will cover the time until the 28th day of the following month,
    and thereafter will always cover the period from the 28th until the 28th"."""
    cycle = anniversary(created)
    first, *rest = walk(cycle, created, 6)
    assert first == Period(created, date(2026, 2, 28))
    assert first_period(cycle, created) == first
    assert [p.start.day for p in rest] == [28] * 5
    assert [p.end.day for p in rest] == [28] * 5


def test_anniversary_rule_in_leap_year_2028_still_uses_the_28th() -> None:
    assert walk(anniversary(date(2028, 1, 30)), date(2028, 1, 30), 2) == [
        Period(date(2028, 1, 30), date(2028, 2, 28)),
        Period(date(2028, 2, 28), date(2028, 3, 28)),
    ]
    assert walk(anniversary(date(2028, 2, 29)), date(2028, 2, 29), 2) == [
        Period(date(2028, 2, 29), date(2028, 3, 28)),
        Period(date(2028, 3, 28), date(2028, 4, 28)),
    ]


def test_anniversary_across_new_year() -> None:
    assert period_containing(anniversary(date(2026, 12, 31)), date(2027, 1, 5)) == Period(
        date(2026, 12, 31), date(2027, 1, 28)
    )


def test_anniversary_days_before_creation_form_a_stub_so_periods_stay_contiguous() -> None:
    cycle = anniversary(date(2026, 1, 30))
    assert period_containing(cycle, date(2026, 1, 28)) == Period(
        date(2026, 1, 28), date(2026, 1, 30)
    )
    assert period_containing(cycle, date(2026, 1, 27)) == Period(
        date(2025, 12, 28), date(2026, 1, 28)
    )


def test_anniversary_without_creation_date_uses_the_28th() -> None:
    cycle = BillingCycle(CycleKind.MONTHLY_ANNIVERSARY, anchor_day=31)
    assert period_containing(cycle, date(2026, 1, 31)) == Period(
        date(2026, 1, 28), date(2026, 2, 28)
    )


def test_30_days_from_march_20() -> None:
    """Seed: "from March 20th to April 18th ... the second invoice ... April 19th to May 18th"."""
    cycle = BillingCycle(CycleKind.DAYS_30, origin=date(2026, 3, 20))
    periods = walk(cycle, date(2026, 3, 20), 2)
    assert spans(periods) == [
        (date(2026, 3, 20), date(2026, 4, 18)),
        (date(2026, 4, 19), date(2026, 5, 18)),
    ]
    assert all(p.days == 30 for p in periods)


def test_daily_covers_one_day() -> None:
    period = period_containing(BillingCycle(CycleKind.DAILY), date(2026, 3, 20))
    assert (period.start, period.end, period.days) == (date(2026, 3, 20), date(2026, 3, 21), 1)


def test_weekly_runs_monday_to_sunday() -> None:
    period = period_containing(BillingCycle(CycleKind.WEEKLY), date(2026, 3, 18))  # a Wednesday
    assert spans([period]) == [(date(2026, 3, 16), date(2026, 3, 22))]
    assert (period.start.weekday(), period.last_day.weekday()) == (0, 6)
    assert period_containing(BillingCycle(CycleKind.WEEKLY), date(2026, 3, 22)) == period


@pytest.mark.parametrize(
    ("month", "second_half_last_day"),
    [(date(2027, 2, 1), date(2027, 2, 28)), (date(2028, 2, 1), date(2028, 2, 29))],
)
def test_semimonthly_halves_in_february(month: date, second_half_last_day: date) -> None:
    cycle = BillingCycle(CycleKind.SEMIMONTHLY)
    assert spans(walk(cycle, month, 3)) == [
        (month, month.replace(day=15)),
        (month.replace(day=16), second_half_last_day),
        (month.replace(month=3), month.replace(month=3, day=15)),
    ]


def test_semimonthly_second_half_of_a_31_day_month() -> None:
    period = period_containing(BillingCycle(CycleKind.SEMIMONTHLY), date(2026, 3, 31))
    assert (period, period.days) == (Period(date(2026, 3, 16), date(2026, 4, 1)), 16)


def test_monthly_is_the_calendar_month() -> None:
    cycle = BillingCycle(CycleKind.MONTHLY)
    assert spans(walk(cycle, date(2026, 2, 10), 2)) == [
        (date(2026, 2, 1), date(2026, 2, 28)),
        (date(2026, 3, 1), date(2026, 3, 31)),
    ]


# --- Splynx days amount, UISP N months ------------------------------------------------------------


def test_every_7_days_from_origin_and_before_it() -> None:
    cycle = BillingCycle(CycleKind.EVERY_N_DAYS, n=7, origin=date(2026, 3, 20))
    assert [p.start for p in walk(cycle, date(2026, 3, 20), 3)] == [
        date(2026, 3, 20),
        date(2026, 3, 27),
        date(2026, 4, 3),
    ]
    assert period_containing(cycle, date(2026, 3, 19)) == Period(
        date(2026, 3, 13), date(2026, 3, 20)
    )


def test_every_3_months_on_day_31_does_not_drift() -> None:
    cycle = BillingCycle(CycleKind.EVERY_N_MONTHS, n=3, anchor_day=31, origin=date(2026, 1, 31))
    assert [p.start for p in walk(cycle, date(2026, 1, 31), 5)] == [
        date(2026, 1, 31),
        date(2026, 4, 30),
        date(2026, 7, 31),
        date(2026, 10, 31),
        date(2027, 1, 31),
    ]


def test_every_month_on_day_31_clamps_each_month_from_the_anchor() -> None:
    cycle = BillingCycle(CycleKind.EVERY_N_MONTHS, n=1, anchor_day=31, origin=date(2028, 1, 31))
    assert [p.start for p in walk(cycle, date(2028, 1, 31), 5)] == [
        date(2028, 1, 31),
        date(2028, 2, 29),
        date(2028, 3, 31),
        date(2028, 4, 30),
        date(2028, 5, 31),
    ]


def test_every_n_months_phase_comes_from_the_origin_month() -> None:
    cycle = BillingCycle(CycleKind.EVERY_N_MONTHS, n=6, anchor_day=1, origin=date(2026, 2, 1))
    assert period_containing(cycle, date(2026, 1, 15)) == Period(date(2025, 8, 1), date(2026, 2, 1))


# --- first periods, proration, ranges -----------------------------------------------------------


def test_partial_first_month_is_prorated_by_days() -> None:
    cycle = BillingCycle(CycleKind.MONTHLY)
    assert first_period(cycle, date(2026, 11, 10)) == Period(date(2026, 11, 10), date(2026, 12, 1))
    assert coverage(cycle, date(2026, 11, 10)) == Fraction(21, 30)
    assert coverage(cycle, date(2026, 11, 1)) == 1


def test_origin_based_first_period_is_full() -> None:
    cycle = BillingCycle(CycleKind.DAYS_30, origin=date(2026, 3, 20))
    assert first_period(cycle, date(2026, 3, 20)) == Period(date(2026, 3, 20), date(2026, 4, 19))
    assert coverage(cycle, date(2026, 3, 20)) == 1


def test_periods_between_lists_every_overlapping_period() -> None:
    cycle = BillingCycle(CycleKind.MONTHLY)
    assert [p.start for p in periods_between(cycle, date(2026, 1, 15), date(2026, 3, 2))] == [
        date(2026, 1, 1),
        date(2026, 2, 1),
        date(2026, 3, 1),
    ]
    assert list(periods_between(cycle, date(2026, 3, 1), date(2026, 3, 1))) == []
    assert list(periods_between(cycle, date(2026, 3, 2), date(2026, 3, 1))) == []


def test_period_bounds_days() -> None:
    monthly_on_31 = BillingCycle(
        CycleKind.EVERY_N_MONTHS, n=3, anchor_day=31, origin=date(2026, 1, 1)
    )
    assert period_bounds_days(BillingCycle(CycleKind.SEMIMONTHLY)) == (13, 16)
    assert period_bounds_days(monthly_on_31) == (89, 92)
    assert period_bounds_days(
        BillingCycle(CycleKind.EVERY_N_DAYS, n=45, origin=date(2026, 1, 1))
    ) == (
        45,
        45,
    )


def test_calendar_aligned() -> None:
    assert BillingCycle(CycleKind.MONTHLY).calendar_aligned
    assert BillingCycle(CycleKind.DAILY).calendar_aligned
    assert not anniversary(date(2026, 3, 19)).calendar_aligned
    assert not BillingCycle(CycleKind.DAYS_30, origin=date(2026, 3, 20)).calendar_aligned


# --- parsing and describing ---------------------------------------------------------------------

ORIGIN = date(2026, 3, 20)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("daily", BillingCycle(CycleKind.DAILY)),
        ("Weekly", BillingCycle(CycleKind.WEEKLY)),
        ("semimonthly", BillingCycle(CycleKind.SEMIMONTHLY)),
        ("monthly", BillingCycle(CycleKind.MONTHLY)),
        ("monthly_anniversary", anniversary(ORIGIN)),
        ("anniversary", anniversary(ORIGIN)),
        ("days_30", BillingCycle(CycleKind.DAYS_30, origin=ORIGIN)),
        ("30days", BillingCycle(CycleKind.DAYS_30, origin=ORIGIN)),
        ("30_days", BillingCycle(CycleKind.DAYS_30, origin=ORIGIN)),
        ("every_7_days", BillingCycle(CycleKind.EVERY_N_DAYS, n=7, origin=ORIGIN)),
        ("every 7 days", BillingCycle(CycleKind.EVERY_N_DAYS, n=7, origin=ORIGIN)),
        ("7d", BillingCycle(CycleKind.EVERY_N_DAYS, n=7, origin=ORIGIN)),
        (
            "every_3_months",
            BillingCycle(CycleKind.EVERY_N_MONTHS, n=3, anchor_day=20, origin=ORIGIN),
        ),
        ("12m", BillingCycle(CycleKind.EVERY_N_MONTHS, n=12, anchor_day=20, origin=ORIGIN)),
    ],
)
def test_parse(text: str, expected: BillingCycle) -> None:
    assert BillingCycle.parse(text, origin=ORIGIN) == expected


def test_parse_keeps_an_explicit_anchor_day() -> None:
    cycle = BillingCycle.parse("3m", anchor_day=31, origin=date(2026, 1, 15))
    assert (cycle.n, cycle.anchor_day, cycle.origin) == (3, 31, date(2026, 1, 15))


def test_parse_refuses_unknown_names() -> None:
    with pytest.raises(ValidationError) as refused:
        BillingCycle.parse("fortnightly")
    assert refused.value.field == "cycle"
    assert refused.value.rule.startswith("unknown billing cycle 'fortnightly'; expected one of ")
    assert all(choice in refused.value.rule for choice in PERIOD_CYCLE_CHOICES)


@pytest.mark.parametrize(
    ("cycle", "text"),
    [
        (BillingCycle(CycleKind.WEEKLY), "weekly, Monday to Sunday"),
        (anniversary(date(2026, 3, 19)), "monthly on day 19"),
        (anniversary(date(2026, 1, 30)), "monthly on day 28 (created on day 30)"),
        (BillingCycle(CycleKind.DAYS_30, origin=ORIGIN), "every 30 days from 2026-03-20"),
        (BillingCycle(CycleKind.EVERY_N_DAYS, n=7, origin=ORIGIN), "every 7 days from 2026-03-20"),
        (BillingCycle.parse("3m", anchor_day=31, origin=ORIGIN), "every 3 months on day 31"),
        (BillingCycle.parse("1m", origin=date(2026, 1, 31)), "every month on day 31"),
    ],
)
def test_describe(cycle: BillingCycle, text: str) -> None:
    assert cycle.describe() == text


# --- refusals ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("build", "field", "rule"),
    [
        (
            lambda: BillingCycle(CycleKind.MONTHLY_ANNIVERSARY, anchor_day=0),
            "anchor_day",
            "must be between 1 and 31",
        ),
        (
            lambda: BillingCycle(CycleKind.MONTHLY_ANNIVERSARY, anchor_day=32),
            "anchor_day",
            "must be between 1 and 31",
        ),
        (
            lambda: BillingCycle(CycleKind.EVERY_N_MONTHS, n=3, anchor_day=32, origin=ORIGIN),
            "anchor_day",
            "must be between 1 and 31",
        ),
        (
            lambda: BillingCycle(CycleKind.EVERY_N_DAYS, n=0, origin=ORIGIN),
            "n",
            "must be between 1 and 3660 for every_n_days cycles",
        ),
        (
            lambda: BillingCycle.parse("0d", origin=ORIGIN),
            "n",
            "must be between 1 and 3660 for every_n_days cycles",
        ),
        # a period of a million days overflowed the first charge (years past 9999)
        (
            lambda: BillingCycle.parse("every_1000000_days", origin=ORIGIN),
            "n",
            "must be between 1 and 3660 for every_n_days cycles",
        ),
        (
            lambda: BillingCycle.parse("121m", origin=ORIGIN),
            "n",
            "must be between 1 and 120 for every_n_months cycles",
        ),
        (
            lambda: BillingCycle(CycleKind.EVERY_N_DAYS, n=7),
            "origin",
            "required for every_n_days",
        ),
        (
            lambda: BillingCycle(CycleKind.EVERY_N_MONTHS, n=3, origin=ORIGIN),
            "anchor_day",
            "required for every_n_months",
        ),
        (
            lambda: BillingCycle(CycleKind.MONTHLY, n=2),
            "n",
            "not used by monthly cycles; leave it at 1",
        ),
        (
            lambda: BillingCycle(CycleKind.MONTHLY, anchor_day=5),
            "anchor_day",
            "not used by monthly cycles",
        ),
        (
            lambda: BillingCycle(CycleKind.WEEKLY, origin=ORIGIN),
            "origin",
            "not used by weekly cycles",
        ),
        (
            lambda: BillingCycle(CycleKind.MONTHLY_ANNIVERSARY, anchor_day=15, origin=ORIGIN),
            "origin",
            "creation day 20 differs from anchor_day 15",
        ),
        (
            lambda: BillingCycle("yearly"),  # type: ignore[arg-type]
            "cycle",
            "unknown billing cycle kind 'yearly'",
        ),
        (
            lambda: Period(date(2026, 3, 1), date(2026, 3, 1)),
            "period",
            "end 2026-03-01 must be after start 2026-03-01",
        ),
        (
            lambda: load_timezone("Mars/Base"),
            "timezone",
            "unknown IANA timezone 'Mars/Base'",
        ),
        (lambda: load_timezone(""), "timezone", "unknown IANA timezone ''"),
        (
            lambda: load_timezone("../etc/passwd"),
            "timezone",
            "unknown IANA timezone '../etc/passwd'",
        ),
        (
            lambda: local_midnight(ORIGIN, "Europe/Praha"),
            "timezone",
            "unknown IANA timezone 'Europe/Praha'",
        ),
        (
            lambda: local_date(datetime(2026, 3, 1, 12), "UTC"),
            "instant",
            "must be timezone-aware (UTC)",
        ),
    ],
)
def test_refusals(build: Callable[[], object], field: str, rule: str) -> None:
    with pytest.raises(ValidationError) as refused:
        build()
    assert (refused.value.field, refused.value.rule) == (field, rule)


# --- timezones and DST -------------------------------------------------------------------------


def test_prague_march_is_an_hour_short_in_utc() -> None:
    period = period_containing(BillingCycle(CycleKind.MONTHLY), date(2026, 3, 15))
    start, end = period.start_instant("Europe/Prague"), period.end_instant("Europe/Prague")
    assert (start, end) == (utc(2026, 2, 28, 23), utc(2026, 3, 31, 22))
    assert end - start == timedelta(hours=31 * 24 - 1)


def test_prague_october_is_an_hour_long_in_utc() -> None:
    period = period_containing(BillingCycle(CycleKind.MONTHLY), date(2026, 10, 15))
    prague = load_timezone("Europe/Prague")
    start, end = period.start_instant(prague), period.end_instant(prague)
    assert (start, end) == (utc(2026, 9, 30, 22), utc(2026, 10, 31, 23))
    assert end - start == timedelta(hours=31 * 24 + 1)


def test_prague_midnights_around_the_changes() -> None:
    assert local_midnight(date(2026, 3, 29), "Europe/Prague") == utc(2026, 3, 28, 23)
    assert local_midnight(date(2026, 3, 30), "Europe/Prague") == utc(2026, 3, 29, 22)
    assert local_midnight(date(2026, 10, 25), "Europe/Prague") == utc(2026, 10, 24, 22)
    assert local_midnight(date(2026, 10, 26), "Europe/Prague") == utc(2026, 10, 25, 23)


@pytest.mark.parametrize(
    ("zone", "gap_day", "transition"),
    [
        ("America/Santiago", date(2026, 9, 6), utc(2026, 9, 6, 4)),
        ("America/Havana", date(2026, 3, 8), utc(2026, 3, 8, 5)),
        ("Asia/Beirut", date(2026, 3, 29), utc(2026, 3, 28, 22)),
        # A gap from 23:30 to 00:30: the day starts at 00:30, not at the pre-gap offset's 01:00.
        ("America/Toronto", date(1919, 3, 31), utc(1919, 3, 31, 4, 30)),
    ],
)
def test_midnight_in_a_dst_gap_is_the_transition(
    zone: str, gap_day: date, transition: datetime
) -> None:
    assert local_date(transition - timedelta(seconds=1), zone) == gap_day - timedelta(days=1)
    assert local_date(transition, zone) == gap_day
    midnights = [local_midnight(gap_day + timedelta(days=k), zone) for k in (-1, 0, 1)]
    assert midnights[1] == transition
    assert midnights[0] < midnights[1] < midnights[2]


def test_santiago_gap_day_is_23_hours() -> None:
    day = period_containing(BillingCycle(CycleKind.DAILY), date(2026, 9, 6))
    assert day.end_instant("America/Santiago") - day.start_instant("America/Santiago") == timedelta(
        hours=23
    )


def test_midnight_that_happens_twice_is_the_first() -> None:
    """Havana falls back from 01:00 to 00:00, so 2026-11-01 00:00 happens at 04:00 and 05:00Z."""
    assert local_date(utc(2026, 11, 1, 5), "America/Havana") == date(2026, 11, 1)
    assert local_midnight(date(2026, 11, 1), "America/Havana") == utc(2026, 11, 1, 4)


def test_a_skipped_date_starts_where_the_next_one_does() -> None:
    """Samoa skipped 2011-12-30: that date has no instants, so it has zero length."""
    skipped, after = date(2011, 12, 30), date(2011, 12, 31)
    assert local_midnight(skipped, "Pacific/Apia") == local_midnight(after, "Pacific/Apia")
    assert local_midnight(date(2011, 12, 29), "Pacific/Apia") < local_midnight(
        skipped, "Pacific/Apia"
    )


def test_local_date_of_a_utc_instant() -> None:
    assert local_date(utc(2026, 3, 31, 22), "Europe/Prague") == date(2026, 4, 1)
    assert local_date(utc(2026, 3, 31, 21, 59), "Europe/Prague") == date(2026, 3, 31)


# --- properties -----------------------------------------------------------------------------------

DATES = st.dates(min_value=date(2000, 1, 1), max_value=date(2100, 12, 31))
TIMEZONES = st.sampled_from(
    [
        "UTC",
        "Europe/Prague",
        "America/Santiago",
        "America/Havana",
        "Asia/Beirut",
        "Asia/Kathmandu",
        "Pacific/Apia",
        "Australia/Lord_Howe",
    ]
)


@st.composite
def cycles(draw: st.DrawFn) -> BillingCycle:
    kind = draw(st.sampled_from(CycleKind))
    origin = draw(DATES)
    match kind:
        case CycleKind.MONTHLY_ANNIVERSARY if draw(st.booleans()):
            return anniversary(origin)
        case CycleKind.MONTHLY_ANNIVERSARY:
            return BillingCycle(kind, anchor_day=draw(st.integers(1, 31)))
        case CycleKind.DAYS_30:
            return BillingCycle(kind, origin=origin)
        case CycleKind.EVERY_N_DAYS:
            return BillingCycle(kind, n=draw(st.integers(1, 60)), origin=origin)
        case CycleKind.EVERY_N_MONTHS:
            n, anchor_day = draw(st.integers(1, 12)), draw(st.integers(1, 31))
            return BillingCycle(kind, n=n, anchor_day=anchor_day, origin=origin)
        case _:
            return BillingCycle(kind)


def is_anniversary_stub(cycle: BillingCycle, period: Period) -> bool:
    """The days from the 28th up to a 29th-31st creation date: before the customer existed."""
    return cycle.kind is CycleKind.MONTHLY_ANNIVERSARY and period.end == cycle.origin


@settings(max_examples=200, deadline=None)
@given(cycle=cycles(), d=DATES)
def test_periods_tile_the_calendar(cycle: BillingCycle, d: date) -> None:
    periods = walk(cycle, d, 20)
    low, high = period_bounds_days(cycle)
    assert periods[0].contains(d)
    for before, after in pairwise(periods):
        assert before.end == after.start
    for period in periods:
        # Only the stub is short; the first period after a 29th-31st creation is 28-30 days.
        assert is_anniversary_stub(cycle, period) or low <= period.days <= high
    for period in periods[:3]:
        for offset in range(period.days):
            assert period_containing(cycle, period.start + timedelta(days=offset)) == period
    for period in periods[3:]:
        assert period_containing(cycle, period.start) == period
        assert period_containing(cycle, period.last_day) == period


@settings(max_examples=200, deadline=None)
@given(cycle=cycles(), d=DATES, tz=TIMEZONES)
def test_period_instants_are_contiguous_and_increasing(
    cycle: BillingCycle, d: date, tz: str
) -> None:
    for before, after in pairwise(walk(cycle, d, 20)):
        assert before.end_instant(tz) == after.start_instant(tz)
        assert before.start_instant(tz) < before.end_instant(tz) or _never_happened(before, tz)


def _never_happened(period: Period, tz: str) -> bool:
    return local_date(period.start_instant(tz), tz) >= period.end


@settings(max_examples=200, deadline=None)
@given(d=DATES, tz=TIMEZONES)
def test_local_midnight_is_where_the_local_date_begins(d: date, tz: str) -> None:
    midnight = local_midnight(d, tz)
    assert midnight.utcoffset() == timedelta(0)
    assert local_date(midnight, tz) >= d
    assert local_date(midnight - timedelta(seconds=1), tz) < d
    assert midnight < local_midnight(d + timedelta(days=1), tz) or local_date(midnight, tz) > d


@settings(max_examples=200, deadline=None)
@given(cycle=cycles(), start=DATES)
def test_coverage_is_the_share_of_the_first_period(cycle: BillingCycle, start: date) -> None:
    period = period_containing(cycle, start)
    share = coverage(cycle, start)
    assert 0 < share <= 1
    assert (share == 1) == (start == period.start)
    assert first_period(cycle, start).end == period.end
    if cycle.calendar_aligned:
        assert first_period(cycle, start).days == share * period.days


@settings(max_examples=200, deadline=None)
@given(cycle=cycles(), start=DATES, length_days=st.integers(1, 400))
def test_periods_between_covers_the_range(
    cycle: BillingCycle, start: date, length_days: int
) -> None:
    end = start + timedelta(days=length_days)
    periods = list(periods_between(cycle, start, end))
    assert periods[0].contains(start)
    assert periods[-1].contains(end - timedelta(days=1))
    assert all(before.end == after.start for before, after in pairwise(periods))

"""Plans (tariffs): what is sold, at which price per period, speed and data limits.

ISPadmin seed: "Data limits (in GB). For each FUP (1 to 4), you can define automatic suspension
(Suspend) instead of Reduce speed." UISP seed: the admin "must enable the Billing periods ... in
the service plan" so a service may be billed every 1, 3, 6 or 12 months.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from enum import StrEnum
from itertools import pairwise

from ispbill.domain.calendar import BillingCycle, CycleKind
from ispbill.domain.errors import ValidationError
from ispbill.domain.ledger import check_amount_range
from ispbill.domain.money import Money

MAX_FUP_TIERS = 4
ALLOWED_PERIOD_MONTHS = (1, 2, 3, 4, 6, 12, 24)
MAX_SPEED_KBPS = 100_000_000  # 100 Gbit/s is beyond any access plan
MAX_DATA_BYTES = 10**18  # 1 EB: far beyond any data limit, well inside a 64-bit column
PLAN_FOLLOWS_CUSTOMER = "customer"  # the plan bills on each customer's own billing cycle
CYCLE_PLACEHOLDER_ORIGIN = date(2000, 1, 1)  # validates a cycle name before a service exists
_ANCHORED = (CycleKind.MONTHLY_ANNIVERSARY, CycleKind.EVERY_N_MONTHS)
_ORIGIN_BASED = (*_ANCHORED, CycleKind.DAYS_30, CycleKind.EVERY_N_DAYS)


@functools.lru_cache(maxsize=65536)  # pure and frozen: services share a few cycles
def instantiate_cycle(
    kind: CycleKind, n: int, start: date, *, anchor_day: int | None = None
) -> BillingCycle:
    """A plan's or customer's cycle made concrete for something starting on ``start``.

    Anniversary and N-month cycles anchor on the start's day of the month unless told
    otherwise (PortaBilling: "N is the day of the month when the customer was created");
    30-day and N-day cycles count from the start itself.
    """
    return BillingCycle(
        kind,
        n=n,
        anchor_day=(start.day if anchor_day is None else anchor_day) if kind in _ANCHORED else None,
        origin=start if kind in _ORIGIN_BASED else None,
    )


class FupAction(StrEnum):
    THROTTLE = "throttle"
    SUSPEND = "suspend"


@dataclass(frozen=True, slots=True)
class Speed:
    down_kbps: int
    up_kbps: int

    def __post_init__(self) -> None:
        for name, value in (("download_kbps", self.down_kbps), ("upload_kbps", self.up_kbps)):
            if value <= 0 or value > MAX_SPEED_KBPS:
                raise ValidationError(name, f"must be between 1 and {MAX_SPEED_KBPS}")


@dataclass(frozen=True, slots=True)
class FupTier:
    """Past ``limit_bytes`` of data in a billing period, throttle to ``speed`` or suspend."""

    tier: int
    limit_bytes: int
    action: FupAction
    speed: Speed | None = None

    def __post_init__(self) -> None:
        where = f"fup_tiers[{self.tier}]"
        if not 1 <= self.tier <= MAX_FUP_TIERS:
            raise ValidationError("fup_tiers", f"tier must be between 1 and {MAX_FUP_TIERS}")
        if self.limit_bytes <= 0:
            raise ValidationError(f"{where}.limit", "must be greater than zero")
        if self.action is FupAction.THROTTLE and self.speed is None:
            raise ValidationError(f"{where}.speed", "a throttle tier needs a speed")
        if self.action is FupAction.SUSPEND and self.speed is not None:
            raise ValidationError(f"{where}.speed", "a suspend tier takes no speed")


@dataclass(frozen=True, slots=True)
class PeriodOption:
    """A multi-month billing period a plan enables, with an optional discount."""

    months: int
    discount_bp: int = 0

    def __post_init__(self) -> None:
        if self.months not in ALLOWED_PERIOD_MONTHS:
            raise ValidationError(
                "period_months", f"must be one of {', '.join(map(str, ALLOWED_PERIOD_MONTHS))}"
            )
        if not 0 <= self.discount_bp < 10_000:
            raise ValidationError("discount", "must be at least 0% and below 100%")


def validate_price(price: Money) -> Money:
    if price.is_negative:
        raise ValidationError("price", "must not be negative")
    return check_amount_range(price, "price")


def validate_fup_tiers(tiers: Sequence[FupTier]) -> tuple[FupTier, ...]:
    """Tiers are numbered 1..n without gaps and their limits strictly increase."""
    ordered = sorted(tiers, key=lambda t: t.tier)
    for expected, tier in enumerate(ordered, start=1):
        if tier.tier != expected:
            raise ValidationError("fup_tiers", "tiers must be numbered 1, 2, ... without gaps")
    for lower, upper in pairwise(ordered):
        if upper.limit_bytes <= lower.limit_bytes:
            raise ValidationError("fup_tiers", "each tier's limit must exceed the previous one")
    return tuple(ordered)


def validate_period_options(options: Sequence[PeriodOption]) -> tuple[PeriodOption, ...]:
    """One month is always available; each period length appears once."""
    months = [o.months for o in options]
    if len(months) != len(set(months)):
        raise ValidationError("period_months", "each period length may appear only once")
    if 1 not in months:
        options = (PeriodOption(1), *options)
    return tuple(sorted(options, key=lambda o: o.months))


def parse_data_volume(text: str, field_name: str = "limit") -> int:
    """'50GB', '500 MB', '1.5TB' -> bytes (decimal units, as ISPs sell them)."""
    units = {"B": 1, "KB": 10**3, "MB": 10**6, "GB": 10**9, "TB": 10**12}
    cleaned = text.strip().upper().replace(" ", "")
    for unit in sorted(units, key=len, reverse=True):
        if cleaned.endswith(unit):
            number = cleaned[: -len(unit)]
            whole, _, frac = number.partition(".")
            if whole.isdigit() and (frac == "" or frac.isdigit()):
                scale = units[unit]
                value = int(whole) * scale + (int(frac) * scale // 10 ** len(frac) if frac else 0)
                if 0 < value <= MAX_DATA_BYTES:
                    return value
            break
    raise ValidationError(
        field_name, "must be a data volume from 1B to 1000000TB, such as '50GB' or '500MB'"
    )


def parse_speed(text: str, field_name: str = "speed") -> int:
    """'10M', '512k', '1G', or plain kbit/s -> kbit/s."""
    cleaned = text.strip().lower().removesuffix("bps").removesuffix("bit/s")
    factor = {"k": 1, "m": 1000, "g": 1_000_000}.get(cleaned[-1:])
    digits = cleaned[:-1] if factor else cleaned
    if digits.isdigit() and int(digits) > 0:
        return int(digits) * (factor or 1)
    raise ValidationError(field_name, "must be a speed such as '10M', '512k' or '20000' (kbit/s)")

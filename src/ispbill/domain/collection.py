"""Collections: when a non-payer is reminded, throttled, suspended, and let back online.

This module owns the non-payer policy (glossary: CollectionPolicy) and the one pure decision
built on it, ``evaluate``: given the policy, a customer's open invoices, today's local date and
the restrictions the customer is under now, it says what must happen today. It reads no clock
and no database, so a tick, a payment's re-evaluation and "turn the policy on, re-evaluate
everyone" all ask the same function. ``next_review_date`` tells the engine when the answer
could change without a payment, so it can schedule the customer instead of scanning daily.

Sources (ISPadmin, Invoicing Settings General):

* ``pozastavit_neplatice`` -> ``CollectionPolicy.enabled``. "If you set it to 0, automatic
  suspension is de-activated. If you change the settings when some of the clients are
  suspended, their suspension will be cancelled": a disabled policy lifts every automatic
  ``non_payer`` suspension (and throttle), with no reactivation fee, since the customer did not
  settle anything. Turning it on is simply ``evaluate`` for everyone.
* ``pozastavit_po_splatnosti`` -> ``days_after_due``. "Before this period expires, client still
  has an option to pay the debt after due date." Convention, one for every stage: an invoice due
  on day D is *unpaid N days after its due date* once the whole N days D+1 .. D+N have passed, so
  with N = 14 the customer is suspended on D+15, never on D+14. The grace period of the customer
  class (``grace_days``, seed 004) moves the due date: every count starts on D + grace + 1.
* ``pozastavit_neplatice_min_castka`` -> ``minimum_outstanding``. The overdue total (the sum
  still owed on invoices past due date and grace) *reaches* the minimum when it is ``>=`` it; a
  debt below it never suspends under the default rule.

Combination (``combine``). ISPadmin lists the two conditions with "or" (``EITHER``). The default
here is ``BOTH``: suspend when an invoice is N days overdue *and* the overdue total reaches the
minimum. Why: ISPadmin recommends a minimum below the cheapest tariff, so under "either" any
single unpaid invoice reaches it and the customer would be suspended the first day after the
due date, which voids ``pozastavit_po_splatnosti`` and its promise that the customer can still
pay during the countdown; and the minimum exists so that a small leftover debt does not cut a
customer off, which "either" would do anyway once the days pass. ``EITHER`` is kept for
operators who want ISPadmin's literal reading. Without a minimum, both rules are the days rule.

Staging: an optional throttle stage (speed limited after its own day count, same amount rule),
reminders ``reminder_days_before`` days before a stage starts, a reactivation fee charged when a
non-payer suspension is lifted because the debt was settled, and exclusion dates (holidays) on
which no suspension *starts*: it is postponed to the next non-excluded day. A holiday does not
postpone a throttle (access continues) nor stop a lift.

Lifting: "settled" is a setting (``settled_when``): no overdue debt at all, or an overdue total
below the minimum. A suspension is lifted only when the debt is settled *and* the suspension
rule no longer holds, so a decision never flaps between suspend and lift on the same data.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from enum import StrEnum

from ispbill.domain.errors import ValidationError
from ispbill.domain.lifecycle import SuspensionReason
from ispbill.domain.money import Money, normalize_currency, sum_money

__all__ = [
    "CollectionAction",
    "CollectionDecision",
    "CollectionFigures",
    "CollectionPolicy",
    "CollectionStage",
    "CollectionState",
    "CombineRule",
    "LiftReason",
    "OpenInvoice",
    "SettledWhen",
    "ThrottleStage",
    "evaluate",
    "figures",
    "is_settled",
    "next_non_excluded",
    "next_review_date",
    "stage_due",
    "stage_start",
]

MAX_DAYS = 3650  # a guard: no operator waits ten years to suspend anyone
MAX_GRACE_DAYS = 365  # the customer class's own bound (domain/customers.py)
_ONE_DAY = timedelta(days=1)


class CombineRule(StrEnum):
    """How the days rule and the minimum-amount rule combine."""

    BOTH = "both"
    EITHER = "either"


class SettledWhen(StrEnum):
    """What "the debt is settled" means when deciding to lift."""

    ZERO_OVERDUE = "zero_overdue"
    BELOW_MINIMUM = "below_minimum"


class CollectionStage(StrEnum):
    THROTTLE = "throttle"
    SUSPEND = "suspend"


class CollectionAction(StrEnum):
    NONE = "none"
    REMIND = "remind"
    THROTTLE = "throttle"
    SUSPEND = "suspend"
    POSTPONE = "postpone"
    LIFT = "lift"


class LiftReason(StrEnum):
    SETTLED = "settled"
    POLICY_DISABLED = "policy_disabled"


def _require_days(name: str, value: object, *, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValidationError(name, "must be a whole number of days")
    if not low <= value <= high:
        raise ValidationError(name, f"must be between {low} and {high}")
    return value


def _require_date(name: str, value: object) -> date:
    # datetime is a date subclass; a timestamp here would compare wrongly with local dates.
    if isinstance(value, datetime) or not isinstance(value, date):
        raise ValidationError(name, "must be a local date, not a timestamp")
    return value


@dataclass(frozen=True, slots=True)
class ThrottleStage:
    """Speed limited to a set rate once an invoice is unpaid ``after_days`` days after due."""

    after_days: int
    speed_kbps_down: int
    speed_kbps_up: int

    def __post_init__(self) -> None:
        _require_days("throttle.after_days", self.after_days, low=0, high=MAX_DAYS)
        for name in ("speed_kbps_down", "speed_kbps_up"):
            speed: object = getattr(self, name)
            if isinstance(speed, bool) or not isinstance(speed, int) or speed <= 0:
                raise ValidationError(f"throttle.{name}", "must be a positive whole number")


@dataclass(frozen=True, slots=True)
class CollectionPolicy:
    """The non-payer policy: one per operator, overridable per customer class.

    ``grace_days`` comes from the customer class; the caller resolves the override chain and
    passes the effective policy.
    """

    enabled: bool = True
    days_after_due: int = 14
    minimum_outstanding: Money | None = None
    grace_days: int = 0
    combine: CombineRule = CombineRule.BOTH
    settled_when: SettledWhen = SettledWhen.ZERO_OVERDUE
    throttle: ThrottleStage | None = None
    reminder_days_before: int | None = None
    reactivation_fee: Money | None = None
    exclusion_dates: frozenset[date] = field(default_factory=frozenset)
    # e-mail the subscriber when collections suspends/throttles or a payment restores
    notify_suspension: bool = True

    def __post_init__(self) -> None:
        if not isinstance(self.enabled, bool):
            raise ValidationError("enabled", "must be true or false")
        if not isinstance(self.notify_suspension, bool):
            raise ValidationError("notify_suspension", "must be true or false")
        _require_days("days_after_due", self.days_after_due, low=0, high=MAX_DAYS)
        _require_days("grace_days", self.grace_days, low=0, high=MAX_GRACE_DAYS)
        try:
            object.__setattr__(self, "combine", CombineRule(self.combine))
        except ValueError as exc:
            raise ValidationError("combine", "must be 'both' or 'either'") from exc
        try:
            object.__setattr__(self, "settled_when", SettledWhen(self.settled_when))
        except ValueError as exc:
            raise ValidationError(
                "settled_when", "must be 'zero_overdue' or 'below_minimum'"
            ) from exc
        minimum = self.minimum_outstanding
        if minimum is not None and (not isinstance(minimum, Money) or not minimum.is_positive):
            raise ValidationError("minimum_outstanding", "must be a positive amount or empty")
        if self.settled_when is SettledWhen.BELOW_MINIMUM and minimum is None:
            raise ValidationError(
                "settled_when", "'below_minimum' needs a minimum_outstanding amount"
            )
        if self.throttle is not None:
            if not isinstance(self.throttle, ThrottleStage):
                raise ValidationError("throttle", "must be a throttle stage or empty")
            if self.throttle.after_days >= self.days_after_due:
                raise ValidationError(
                    "throttle.after_days",
                    f"must be fewer than days_after_due ({self.days_after_due}): "
                    "the throttle comes before the suspension",
                )
        if self.reminder_days_before is not None:
            _require_days("reminder_days_before", self.reminder_days_before, low=1, high=MAX_DAYS)
        fee = self.reactivation_fee
        if fee is not None:
            if not isinstance(fee, Money) or not fee.is_positive:
                raise ValidationError("reactivation_fee", "must be a positive amount or empty")
            if minimum is not None and fee.currency != minimum.currency:
                raise ValidationError(
                    "reactivation_fee", f"must be in {minimum.currency}, like the minimum"
                )
        dates = frozenset(self.exclusion_dates)
        for day in dates:
            _require_date("exclusion_dates", day)
        object.__setattr__(self, "exclusion_dates", dates)


@dataclass(frozen=True, slots=True)
class OpenInvoice:
    """What collections needs of an invoice: its number, due date and what is still owed."""

    number: str
    due_date: date
    outstanding: Money

    def __post_init__(self) -> None:
        if not isinstance(self.number, str) or not self.number.strip():
            raise ValidationError("number", "is required")
        _require_date("due_date", self.due_date)
        if not isinstance(self.outstanding, Money) or self.outstanding.is_negative:
            raise ValidationError("outstanding", "must not be negative (credit is not an invoice)")


@dataclass(frozen=True, slots=True)
class CollectionState:
    """The restrictions collections put on the customer now, and the customer's currency.

    Only *automatic* ``non_payer`` suspensions belong here: a suspension an operator set by
    hand (any reason) is not collections' to lift.
    """

    currency: str
    suspended_non_payer: bool = False
    throttled: bool = False

    def __post_init__(self) -> None:
        object.__setattr__(self, "currency", normalize_currency(self.currency))


@dataclass(frozen=True, slots=True)
class CollectionFigures:
    """The figures behind a decision, for the event and "why is this customer offline?"."""

    days_overdue: int  # whole days since the oldest overdue invoice's due date
    overdue_total: Money  # owed on invoices past due date and grace
    oldest_invoice: str | None
    oldest_due_date: date | None


@dataclass(frozen=True, slots=True)
class CollectionDecision:
    """What must happen today. ``on`` is the date a reminded or postponed stage starts."""

    action: CollectionAction
    figures: CollectionFigures
    stage: CollectionStage | None = None
    on: date | None = None
    reason: SuspensionReason | None = None
    lift_reason: LiftReason | None = None
    lift_suspension: bool = False
    lift_throttle: bool = False
    reactivation_fee: Money | None = None
    throttle: ThrottleStage | None = None


# -- the rules ---------------------------------------------------------------------------------


def _counts_from(policy: CollectionPolicy, invoice: OpenInvoice) -> date:
    """First day an invoice is overdue for collections: the day after due date plus grace."""
    return invoice.due_date + timedelta(days=policy.grace_days + 1)


def _days_rule_from(policy: CollectionPolicy, invoice: OpenInvoice, days: int) -> date:
    """First day the invoice has been unpaid ``days`` whole days after due date and grace."""
    return invoice.due_date + timedelta(days=policy.grace_days + days + 1)


def _unpaid(invoices: Sequence[OpenInvoice]) -> list[OpenInvoice]:
    return [inv for inv in invoices if inv.outstanding.is_positive]


def _overdue(
    policy: CollectionPolicy, invoices: Sequence[OpenInvoice], today: date
) -> list[OpenInvoice]:
    return [inv for inv in _unpaid(invoices) if today >= _counts_from(policy, inv)]


def figures(
    policy: CollectionPolicy, *, invoices: Sequence[OpenInvoice], today: date, currency: str
) -> CollectionFigures:
    """Overdue total, and the oldest overdue invoice with its days past the due date."""
    overdue = _overdue(policy, invoices, today)
    total = sum_money((inv.outstanding for inv in overdue), currency)
    if not overdue:
        return CollectionFigures(0, total, None, None)
    oldest = min(overdue, key=lambda inv: (inv.due_date, inv.number))
    return CollectionFigures((today - oldest.due_date).days, total, oldest.number, oldest.due_date)


def _stage_days(policy: CollectionPolicy, stage: CollectionStage) -> int | None:
    if stage is CollectionStage.SUSPEND:
        return policy.days_after_due
    return policy.throttle.after_days if policy.throttle is not None else None


def stage_due(
    policy: CollectionPolicy,
    stage: CollectionStage,
    *,
    invoices: Sequence[OpenInvoice],
    today: date,
    currency: str,
) -> bool:
    """Whether the stage's rule holds today, holidays aside (monotone in ``today``)."""
    days = _stage_days(policy, stage)
    if days is None:
        return False
    overdue = _overdue(policy, invoices, today)
    days_rule = any(today >= _days_rule_from(policy, inv, days) for inv in overdue)
    minimum = policy.minimum_outstanding
    if minimum is None:
        return days_rule
    amount_rule = sum_money((inv.outstanding for inv in overdue), currency) >= minimum
    if policy.combine is CombineRule.BOTH:
        return days_rule and amount_rule
    return days_rule or amount_rule


def stage_start(
    policy: CollectionPolicy,
    stage: CollectionStage,
    *,
    invoices: Sequence[OpenInvoice],
    today: date,
    currency: str,
) -> date | None:
    """The first day on or after ``today`` the stage's rule holds if nothing is paid.

    For the suspension, holidays postpone it to the next non-excluded day. ``None`` when the
    open invoices alone can never trigger the stage (a debt below the minimum, say).
    """
    days = _stage_days(policy, stage)
    if days is None:
        return None
    # The rule only changes on the days an invoice starts counting or passes the day count.
    candidates = {today}
    for inv in _unpaid(invoices):
        candidates.add(_counts_from(policy, inv))
        candidates.add(_days_rule_from(policy, inv, days))
    for day in sorted(d for d in candidates if d >= today):
        if stage_due(policy, stage, invoices=invoices, today=day, currency=currency):
            if stage is CollectionStage.SUSPEND:
                return next_non_excluded(day, policy.exclusion_dates)
            return day
    return None


def next_non_excluded(day: date, excluded: Iterable[date]) -> date:
    """``day`` itself, or the first later day that is not an exclusion date."""
    blocked = excluded if isinstance(excluded, frozenset) else frozenset(excluded)
    while day in blocked:
        day += _ONE_DAY
    return day


def is_settled(
    policy: CollectionPolicy, *, invoices: Sequence[OpenInvoice], today: date, currency: str
) -> bool:
    """Whether the debt counts as settled under ``settled_when``."""
    total = figures(policy, invoices=invoices, today=today, currency=currency).overdue_total
    if policy.settled_when is SettledWhen.BELOW_MINIMUM:
        assert policy.minimum_outstanding is not None  # validated by CollectionPolicy
        return total < policy.minimum_outstanding
    return total.is_zero


# -- the decision ------------------------------------------------------------------------------


def evaluate(
    policy: CollectionPolicy,
    *,
    invoices: Sequence[OpenInvoice],
    today: date,
    current: CollectionState,
) -> CollectionDecision:
    """What collections must do for one customer today (local date in its billing timezone).

    Order of precedence: a disabled policy lifts; a due suspension starts (or is postponed by
    a holiday); a suspended customer is lifted once settled; a due throttle starts; a throttled
    customer is un-throttled once settled and below the throttle rule; otherwise a reminder
    when today is within ``reminder_days_before`` days of the next stage. A reminder is
    returned on every day of its window (so a tick after downtime still sends it); the engine
    emits it once per (customer, stage, ``on``, oldest invoice).
    """
    _require_date("today", today)
    currency = current.currency
    facts = figures(policy, invoices=invoices, today=today, currency=currency)

    if not policy.enabled:
        if current.suspended_non_payer or current.throttled:
            return CollectionDecision(
                CollectionAction.LIFT,
                facts,
                lift_reason=LiftReason.POLICY_DISABLED,
                lift_suspension=current.suspended_non_payer,
                lift_throttle=current.throttled,
            )
        return CollectionDecision(CollectionAction.NONE, facts)

    def due(stage: CollectionStage) -> bool:
        return stage_due(policy, stage, invoices=invoices, today=today, currency=currency)

    suspend_due = due(CollectionStage.SUSPEND)
    settled = is_settled(policy, invoices=invoices, today=today, currency=currency)

    if current.suspended_non_payer:
        if not suspend_due and settled:
            return CollectionDecision(
                CollectionAction.LIFT,
                facts,
                lift_reason=LiftReason.SETTLED,
                lift_suspension=True,
                lift_throttle=current.throttled,
                reactivation_fee=policy.reactivation_fee,
            )
        return CollectionDecision(CollectionAction.NONE, facts)

    if suspend_due:
        if today in policy.exclusion_dates:
            return CollectionDecision(
                CollectionAction.POSTPONE,
                facts,
                stage=CollectionStage.SUSPEND,
                on=next_non_excluded(today, policy.exclusion_dates),
                reason=SuspensionReason.NON_PAYER,
            )
        return CollectionDecision(
            CollectionAction.SUSPEND, facts, reason=SuspensionReason.NON_PAYER
        )

    throttle_due = due(CollectionStage.THROTTLE)
    if throttle_due and not current.throttled:
        return CollectionDecision(
            CollectionAction.THROTTLE,
            facts,
            stage=CollectionStage.THROTTLE,
            throttle=policy.throttle,
        )
    if current.throttled and not throttle_due and settled:
        return CollectionDecision(
            CollectionAction.LIFT, facts, lift_reason=LiftReason.SETTLED, lift_throttle=True
        )

    reminder = _reminder(policy, invoices=invoices, today=today, current=current)
    if reminder is not None:
        stage, on = reminder
        return CollectionDecision(CollectionAction.REMIND, facts, stage=stage, on=on)
    return CollectionDecision(CollectionAction.NONE, facts)


def _upcoming(
    policy: CollectionPolicy,
    *,
    invoices: Sequence[OpenInvoice],
    today: date,
    current: CollectionState,
) -> list[tuple[date, CollectionStage]]:
    """The stages not yet reached and the day each would start if nothing is paid."""
    stages = [CollectionStage.SUSPEND]
    if policy.throttle is not None and not current.throttled:
        stages.insert(0, CollectionStage.THROTTLE)
    found: list[tuple[date, CollectionStage]] = []
    for stage in stages:
        start = stage_start(
            policy, stage, invoices=invoices, today=today, currency=current.currency
        )
        if start is not None:
            found.append((start, stage))
    return found


def _reminder(
    policy: CollectionPolicy,
    *,
    invoices: Sequence[OpenInvoice],
    today: date,
    current: CollectionState,
) -> tuple[CollectionStage, date] | None:
    if policy.reminder_days_before is None:
        return None
    window = timedelta(days=policy.reminder_days_before)
    for start, stage in sorted(_upcoming(policy, invoices=invoices, today=today, current=current)):
        if start - window <= today < start:
            return stage, start
    return None


def next_review_date(
    policy: CollectionPolicy,
    *,
    invoices: Sequence[OpenInvoice],
    today: date,
    current: CollectionState,
) -> date | None:
    """The first day after ``today`` on which ``evaluate`` could answer differently, with no
    payment and no change to ``current``; ``None`` when only a payment (or a new invoice, or a
    policy change) can change it. It may be early (the engine then finds nothing to do), never
    late. When today's decision is an action (suspend, throttle, lift), the engine applies it
    and asks again with the new state.
    """
    _require_date("today", today)
    if not policy.enabled:
        return None
    currency = current.currency
    candidates: set[date] = set()
    if not current.suspended_non_payer and stage_due(
        policy, CollectionStage.SUSPEND, invoices=invoices, today=today, currency=currency
    ):
        # Suspension is due; a holiday only decides whether it starts today.
        candidates.add(next_non_excluded(today + _ONE_DAY, policy.exclusion_dates))
        candidates.add(today + _ONE_DAY)
    for inv in _unpaid(invoices):
        candidates.add(_counts_from(policy, inv))
        candidates.add(_days_rule_from(policy, inv, policy.days_after_due))
        if policy.throttle is not None:
            candidates.add(_days_rule_from(policy, inv, policy.throttle.after_days))
    for start, _stage in _upcoming(policy, invoices=invoices, today=today, current=current):
        candidates.add(start)
        if policy.reminder_days_before is not None:
            candidates.add(start - timedelta(days=policy.reminder_days_before))
    later = [day for day in candidates if day > today]
    return min(later) if later else None

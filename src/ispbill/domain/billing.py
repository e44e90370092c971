"""The billing engine's decisions: what is due for a customer's services up to an instant.

Pure and deterministic: given a customer's snapshot (balance, limits, timezone), the snapshots of
its services, the policy and ``now``, ``decide`` returns the charges, state transitions and new
service positions that must be stored. It reads no clock and no database, so a tick, a preview
(dry run) and a payment's re-evaluation all ask the same function.

Rules, with their sources:

* Forward mode charges a period at its start, backward mode at its end (UISP "invoicing type").
  A first partial period of a calendar-aligned cycle is prorated by days.
* Prepaid (CRM.COM, Splynx): at each period start the service is charged from the wallet when
  ``balance - price >= minimum balance``; otherwise it is deactivated, "billing is put on hold"
  and no debt is created. "Deactivated subscriptions are reactivated ... through an automatic
  activation process that verifies that there are sufficient funds in the wallet to cover the
  upcoming period": the activation pass charges a period starting on the reactivation date
  (``ReactivationAnchor.REACTIVATION_DATE``, the default) or the prorated rest of the period of
  the original cycle (``ORIGINAL``).
* Postpaid (PortaBilling): "When the customer's balance reaches that credit limit, this customer is
  no longer allowed to use the services": services are suspended with reason ``credit_limit`` and
  lifted as soon as the balance is back above minus the limit.
* UISP "active to": past that date the service is paused and receives no more invoices. The
  last period is cut at that date and prorated (forward, backward and prepaid alike); a pause
  mid-period (an "active to" moved earlier after its period was charged) refunds nothing unless
  the policy says so.
* ISPadmin "suspend service and invoicing": no charges for the days of such a suspension. A
  service carries its windows (``unbilled``: first day, end exclusive or ``None`` while open);
  a charged period is prorated by its billable days, one rounding as ever; a period whose every
  day is inside a window is skipped, not charged at zero. An open window (no TO date yet) holds
  the service's billing at its first day: nothing is charged from there until it is lifted,
  when the window gets its end and the engine charges the billable rest.
* Add-ons (issue 17): recurring extras on a service (a static IP at 3.00 a period) are charged
  with the service's own periods, each as its own charge, prorated by the days of the period it
  covers (from its first day, to its last) with one rounding, like the plan. A prepaid period
  is charged only when the wallet covers the plan and its add-ons together.
* Discounts (issue 17, ``domain/discounts.py``): each charge of a discounted period (the plan's
  and its add-ons') gets its own negative charge of kind ``discount``, taxed as that charge and
  never larger than it. A prepaid period is charged when the wallet covers it net of its
  discounts.
* Splynx deactivation period: a customer whose service stays deactivated longer than the set
  number of days becomes inactive and its services end (off by default).

Events are processed in time order across the customer's services (one wallet pays them all), so
a tick after downtime catches up period by period exactly as daily ticks would have.
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta
from enum import StrEnum
from fractions import Fraction
from zoneinfo import ZoneInfo

from ispbill.domain.calendar import (
    BillingCycle,
    Period,
    local_date,
    local_midnight,
    period_containing,
)
from ispbill.domain.customers import InvoicingMode
from ispbill.domain.discounts import Discount, off
from ispbill.domain.lifecycle import ServiceState, SuspensionReason, check_transition
from ispbill.domain.money import Money
from ispbill.domain.plans import instantiate_cycle
from ispbill.domain.taxes import TaxProfile, TaxSplit, split_tax

MAX_STEPS_PER_CUSTOMER = 100_000  # a guard against a cycle that never advances


class ReactivationAnchor(StrEnum):
    """Where the billing period of a reactivated prepaid service starts."""

    REACTIVATION_DATE = "reactivation_date"
    ORIGINAL = "original"


class ChargeKind(StrEnum):
    PERIOD = "period"
    REACTIVATION = "reactivation"
    REFUND = "refund"
    # The new plan's price for the rest of a period already charged in advance (a plan change,
    # domain/changes.py). Not "period": the unique (service, period start) of period charges
    # would refuse a change effective on the period's first day, whose period charge stays.
    CHANGE = "change"
    # A one-off fee (collections: the reactivation fee when a non-payer suspension is lifted).
    FEE = "fee"
    # A recurring add-on of a service for one of its periods (unique per add-on and period).
    ADDON = "addon"
    # A one-off extra charge an operator adds (installation, equipment, late fee).
    EXTRA = "extra"
    # A discount of one charge of a period: negative, taxed as the charge it reduces.
    DISCOUNT = "discount"


# Charges that are not the plan's own for a period: a change or a credit of the plan looks past
# them for the plan's charge.
NOT_PLAN_CHARGES = (
    ChargeKind.REFUND,
    ChargeKind.ADDON,
    ChargeKind.EXTRA,
    ChargeKind.FEE,
    ChargeKind.DISCOUNT,
)


class DueKind(StrEnum):
    ACTIVATE = "activate"
    CHARGE = "charge"
    PAUSE = "pause"
    EXPIRE_DEACTIVATED = "expire_deactivated"


@dataclass(frozen=True, slots=True)
class BillingPolicy:
    """Operator settings the engine obeys; data, not code (STYLE: policies are data)."""

    reactivation_anchor: ReactivationAnchor = ReactivationAnchor.REACTIVATION_DATE
    refund_on_pause: bool = False
    deactivation_period_days: int | None = None
    lift_reasons: frozenset[str] = frozenset({SuspensionReason.CREDIT_LIMIT.value})


@dataclass(frozen=True, slots=True)
class ServiceTerms:
    """What a service costs per full period and how its time is cut."""

    cycle: BillingCycle
    price: Money
    tax: TaxProfile
    mode: InvoicingMode
    description: str = ""
    # True when the cycle is the customer's billing cycle (PortaBilling), which a reactivation
    # keeps; False when it is the service's own (a plan's N days, a multi-month period).
    follows_customer: bool = False
    # The plan's price history as (first day, period price), oldest first (issue 17): a price
    # change applies to each service from its first billing period starting on or after its
    # day. Empty means ``price`` always; ``price`` is the latest (the plan's list price).
    prices: tuple[tuple[date, Money], ...] = ()

    def price_on(self, day: date) -> Money:
        """The period price of a billing period starting on ``day``: the last change on or
        before it (a day before every change takes the oldest price)."""
        if not self.prices:
            return self.price
        found = self.prices[0][1]
        for first_day, amount in self.prices:
            if first_day > day:
                break
            found = amount
        return found


@dataclass(frozen=True, slots=True)
class AddOn:
    """A recurring extra of a service, priced per full period of the service's cycle."""

    id: int
    description: str
    price: Money
    tax: TaxProfile
    starts_on: date
    ends_on: date | None = None  # the last day charged; None: until removed

    def within(self, period: Period) -> Period | None:
        """The part of ``period`` the add-on covers, or None."""
        start = max(period.start, self.starts_on)
        end = period.end
        if self.ends_on is not None:
            end = min(end, self.ends_on + timedelta(days=1))
        return Period(start, end) if start < end else None


@dataclass(frozen=True, slots=True)
class ServiceSnapshot:
    id: int
    state: ServiceState
    reason: str | None
    active_from: date
    active_to: date | None
    terms: ServiceTerms
    billed_until: date | None = None
    deactivated_on: date | None = None
    # Windows of "suspend service and invoicing": (first day, end exclusive or None if open).
    unbilled: tuple[tuple[date, date | None], ...] = ()
    addons: tuple[AddOn, ...] = ()
    discounts: tuple[Discount, ...] = ()  # this service's own


@dataclass(frozen=True, slots=True)
class CustomerSnapshot:
    id: int
    prepaid: bool
    timezone: ZoneInfo
    balance: Money
    minimum_balance: Money
    credit_limit: Money | None = None
    discounts: tuple[Discount, ...] = ()  # customer-wide: every service's periods


@dataclass(frozen=True, slots=True)
class Charge:
    """The debit (or, for a refund, the credit) of one service for one period."""

    service_id: int
    kind: ChargeKind
    period: Period
    quantity: Fraction
    unit_price: Money
    split: TaxSplit
    at: datetime
    tax: TaxProfile
    description: str
    addon_id: int | None = None
    discount_id: int | None = None

    @property
    def gross(self) -> Money:
        return self.split.gross

    @property
    def base(self) -> Money:
        """The amount the charge was priced from: gross when its tax is inclusive, else net."""
        return self.split.gross if self.tax.inclusive else self.split.net


@dataclass(frozen=True, slots=True)
class Transition:
    service_id: int
    from_state: ServiceState
    to_state: ServiceState
    reason: str | None
    at: datetime
    figures: dict[str, str] = field(default_factory=dict)


@dataclass
class Outcome:
    """Everything ``decide`` concluded for one customer."""

    customer_id: int
    balance: Money
    charges: list[Charge] = field(default_factory=list)
    transitions: list[Transition] = field(default_factory=list)
    services: dict[int, ServiceSnapshot] = field(default_factory=dict)
    next_due: dict[int, datetime | None] = field(default_factory=dict)
    customer_inactive: bool = False


def price_period(
    terms: ServiceTerms, period: Period, full: Period, *, days: int | None = None
) -> tuple[Fraction, TaxSplit]:
    """Prorate by days when ``period`` (or its ``days`` billable days) is part of ``full``;
    round once, half-up."""
    quantity = Fraction(period.days if days is None else days, full.days)
    amount = terms.price_on(period.start).prorate(quantity.numerator, quantity.denominator)
    return quantity, split_tax(amount, terms.tax)


def price_addon(
    addon: AddOn, part: Period, full: Period, *, days: int | None = None
) -> tuple[Fraction, TaxSplit]:
    """An add-on for ``part`` (its ``days`` billable days) of the full period: the plan's rule."""
    quantity = Fraction(part.days if days is None else days, full.days)
    amount = addon.price.prorate(quantity.numerator, quantity.denominator)
    return quantity, split_tax(amount, addon.tax)


def addon_parts(service: ServiceSnapshot, period: Period) -> list[tuple[AddOn, Period, int]]:
    """Each add-on's covered part of ``period`` with its billable days (none: left out)."""
    found = []
    for addon in service.addons:
        part = addon.within(period)
        if part is None:
            continue
        days = billable_days(service, part)
        if days:
            found.append((addon, part, days))
    return found


def addon_charge(
    service: ServiceSnapshot,
    addon: AddOn,
    part: Period,
    full: Period,
    at: datetime,
    *,
    days: int | None = None,
) -> Charge:
    quantity, split = price_addon(addon, part, full, days=days)
    return Charge(
        service.id,
        ChargeKind.ADDON,
        part,
        quantity,
        addon.price,
        split,
        at,
        addon.tax,
        addon.description,
        addon_id=addon.id,
    )


def charges_for_new_addon(service: ServiceSnapshot, addon: AddOn, *, at: datetime) -> list[Charge]:
    """An add-on attached inside periods already charged in advance: the prorated rest of
    each, from its first day to where the service is billed up to. Later periods are the
    tick's, with the plan's."""
    charges: list[Charge] = []
    billed = service.billed_until
    if billed is None or addon.starts_on >= billed:
        return charges
    start = addon.starts_on
    while start < billed:
        full = period_containing(service.terms.cycle, start)
        period = Period(start, min(full.end, billed))
        for found, part, days in addon_parts(replace(service, addons=(addon,)), period):
            charges.append(addon_charge(service, found, part, full, at, days=days))
        start = period.end
    return charges


def plan_charge(
    service: ServiceSnapshot,
    kind: ChargeKind,
    period: Period,
    full: Period,
    at: datetime,
    *,
    days: int | None = None,
) -> Charge:
    quantity, split = price_period(service.terms, period, full, days=days)
    return Charge(
        service.id,
        kind,
        period,
        quantity,
        service.terms.price_on(period.start),
        split,
        at,
        service.terms.tax,
        service.terms.description,
    )


def current_period(cycle: BillingCycle, start: date) -> tuple[Period, Period]:
    """The period billed from ``start`` (to the end of the cycle period holding it), and that
    full period."""
    full = period_containing(cycle, start)
    return Period(start, full.end), full


def first_billing_start(service: ServiceSnapshot) -> date:
    return service.billed_until or service.active_from


def held_from(service: ServiceSnapshot) -> date | None:
    """The first day of an open "suspend service and invoicing" window: billing stops there
    until the window is lifted (and so gets its end)."""
    starts = [start for start, end in service.unbilled if end is None]
    return min(starts) if starts else None


def billable_days(service: ServiceSnapshot, period: Period) -> int:
    """The days of ``period`` outside every window of suspended invoicing."""
    excluded: set[date] = set()
    for start, end in service.unbilled:
        first = max(start, period.start)
        stop = min(end or period.end, period.end)
        day = first
        while day < stop:
            excluded.add(day)
            day += timedelta(days=1)
    return period.days - len(excluded)


def next_due(
    service: ServiceSnapshot, customer: CustomerSnapshot, policy: BillingPolicy
) -> tuple[datetime, DueKind] | None:
    """When the next thing happens to ``service`` on its own (payments aside), and what."""
    zone = customer.timezone
    match service.state:
        case ServiceState.PENDING:
            kind = DueKind.CHARGE if customer.prepaid else DueKind.ACTIVATE
            return local_midnight(service.active_from, zone), kind
        case ServiceState.ACTIVE | ServiceState.SUSPENDED:
            return _next_billing_due(service, customer)
        case ServiceState.DEACTIVATED:
            days = policy.deactivation_period_days
            if days is None or service.deactivated_on is None:
                return None
            return local_midnight(service.deactivated_on + timedelta(days=days), zone), (
                DueKind.EXPIRE_DEACTIVATED
            )
        case ServiceState.PAUSED | ServiceState.ENDED:
            return None


def _next_billing_due(
    service: ServiceSnapshot, customer: CustomerSnapshot
) -> tuple[datetime, DueKind] | None:
    zone = customer.timezone
    start = first_billing_start(service)
    stop = service.active_to + timedelta(days=1) if service.active_to else None
    hold = held_from(service)
    if hold is not None and start >= hold and (stop is None or hold < stop):
        return None  # suspended with invoicing, no end yet: the lift schedules it again
    if stop is not None and start >= stop:
        return local_midnight(stop, zone), DueKind.PAUSE
    if service.terms.mode is InvoicingMode.FORWARD or customer.prepaid:
        return local_midnight(start, zone), DueKind.CHARGE
    period, _ = current_period(service.terms.cycle, start)
    end = min(d for d in (period.end, stop, hold) if d is not None and d > start)
    return local_midnight(end, zone), DueKind.CHARGE


class _Run:
    """Mutable state of one ``decide`` call: the running balance and service snapshots."""

    def __init__(self, customer: CustomerSnapshot, policy: BillingPolicy) -> None:
        self.customer = customer
        self.policy = policy
        self.outcome = Outcome(customer_id=customer.id, balance=customer.balance)
        # per discount: the period starts it reduced; per (discount, period start): what is
        # left of a fixed amount
        self.used: dict[int, set[date]] = {}
        self.left: dict[tuple[int, date], Money] = {}

    @property
    def balance(self) -> Money:
        return self.outcome.balance

    def move(
        self,
        service: ServiceSnapshot,
        target: ServiceState,
        reason: str | None,
        at: datetime,
        **figures: str,
    ) -> ServiceSnapshot:
        check_transition(service.state, target)
        self.outcome.transitions.append(
            Transition(service.id, service.state, target, reason, at, dict(figures))
        )
        updated = replace(service, state=target, reason=reason)
        self.outcome.services[service.id] = updated
        return updated

    def charge(
        self,
        service: ServiceSnapshot,
        kind: ChargeKind,
        period: Period,
        full: Period,
        at: datetime,
        *,
        days: int | None = None,
    ) -> Charge:
        item = plan_charge(service, kind, period, full, at, days=days)
        split = item.split
        self.outcome.charges.append(item)
        sign = -1 if kind is not ChargeKind.REFUND else 1
        self.outcome.balance = self.balance + split.gross * sign
        return item

    def record(self, charges: list[Charge]) -> None:
        for item in charges:
            self.outcome.charges.append(item)
            self.outcome.balance = self.balance - item.gross

    def discounts(
        self, service: ServiceSnapshot, bases: list[Charge]
    ) -> tuple[list[Charge], list[tuple[int, date, Money | None]]]:
        """The discount charges of a period's ``bases`` (the plan's charge first) and the
        discounts' new positions, for ``commit_discounts`` once the period is charged."""
        found: list[Charge] = []
        updates: list[tuple[int, date, Money | None]] = []
        if not bases:
            return found, updates
        start = bases[0].period.start
        room = [base.base for base in bases]
        for discount in (*service.discounts, *self.customer.discounts):
            if discount.service_id is not None and discount.service_id != service.id:
                continue
            used = self.used.get(discount.id, set(discount.used))
            if not discount.applies(start, used):
                continue
            left = self.left.get((discount.id, start), discount.amount)
            for index, base in enumerate(bases):
                if not room[index].is_positive:
                    continue
                take = off(discount, room[index], left)
                if not take.is_positive:
                    continue
                room[index] = room[index] - take
                if left is not None:
                    left = left - take
                split = split_tax(take, base.tax)
                found.append(
                    Charge(
                        service.id,
                        ChargeKind.DISCOUNT,
                        base.period,
                        Fraction(1),
                        -take,
                        TaxSplit(net=-split.net, tax=-split.tax),
                        base.at,
                        base.tax,
                        discount.label,
                        addon_id=base.addon_id,
                        discount_id=discount.id,
                    )
                )
            updates.append((discount.id, start, left))
        return found, updates

    def commit_discounts(
        self, service: ServiceSnapshot, updates: list[tuple[int, date, Money | None]]
    ) -> None:
        by_id = {d.id: d for d in (*service.discounts, *self.customer.discounts)}
        for discount_id, start, left in updates:
            self.used.setdefault(discount_id, set(by_id[discount_id].used)).add(start)
            if left is not None:
                self.left[(discount_id, start)] = left

    def affordable(self, amount: Money) -> bool:
        return self.balance - amount >= self.customer.minimum_balance


def decide(
    customer: CustomerSnapshot,
    services: list[ServiceSnapshot],
    *,
    now: datetime,
    policy: BillingPolicy,
) -> Outcome:
    """Everything due for ``customer`` up to ``now``, in time order, then the activation pass."""
    run = _Run(customer, policy)
    current = {s.id: s for s in services}
    run.outcome.services.update(current)
    queue: list[tuple[datetime, int, DueKind]] = []

    def schedule(service_id: int) -> None:
        found = next_due(run.outcome.services[service_id], customer, policy)
        if found is not None and found[0] <= now:
            heapq.heappush(queue, (found[0], service_id, found[1]))

    for service in services:
        schedule(service.id)
    steps = 0
    while queue:
        at, service_id, kind = heapq.heappop(queue)
        steps += 1
        if steps > MAX_STEPS_PER_CUSTOMER:
            raise RuntimeError(f"customer {customer.id}: billing does not advance at {at}")
        _handle(run, run.outcome.services[service_id], kind, at)
        if run.outcome.customer_inactive:
            break
        schedule(service_id)
    if not run.outcome.customer_inactive:
        reevaluate(run, now)
    for service_id, service in run.outcome.services.items():
        found = next_due(service, customer, policy)
        run.outcome.next_due[service_id] = found[0] if found else None
    return run.outcome


def _handle(run: _Run, service: ServiceSnapshot, kind: DueKind, at: datetime) -> None:
    match kind:
        case DueKind.ACTIVATE:
            run.move(service, ServiceState.ACTIVE, None, at, active_from=str(service.active_from))
        case DueKind.CHARGE:
            _charge_due(run, service, at)
        case DueKind.PAUSE:
            _pause(run, service, at)
        case DueKind.EXPIRE_DEACTIVATED:
            _expire_customer(run, at)


def _charge_due(run: _Run, service: ServiceSnapshot, at: datetime) -> None:
    start = first_billing_start(service)
    period, full = current_period(service.terms.cycle, start)
    period = _until_active_to(service, period)
    hold = held_from(service)
    if hold is not None and period.start < hold < period.end:
        period = Period(period.start, hold)
    days = billable_days(service, period)
    if days == 0:  # every day inside a window of suspended invoicing: nothing to charge
        run.outcome.services[service.id] = replace(service, billed_until=period.end)
        return
    parts = addon_parts(service, period)
    bases = [plan_charge(service, ChargeKind.PERIOD, period, full, at, days=days)]
    bases += [addon_charge(service, a, part, full, at, days=d) for a, part, d in parts]
    discounts, updates = run.discounts(service, bases)
    if run.customer.prepaid:
        price = bases[0].gross
        for item in (*bases[1:], *discounts):
            price = price + item.gross
        if not run.affordable(price):
            _deactivate(run, service, at, price)
            return
        if service.state is ServiceState.PENDING:
            service = run.move(
                service, ServiceState.ACTIVE, None, at, active_from=str(service.active_from)
            )
    run.record([*bases, *discounts])
    run.commit_discounts(service, updates)
    run.outcome.services[service.id] = replace(service, billed_until=period.end)
    if not run.customer.prepaid:
        _enforce_credit_limit(run, at)


def _until_active_to(service: ServiceSnapshot, period: Period) -> Period:
    """UISP "active to": the last period ends with the service, prorated, in either invoicing
    mode. The date is known when the period is charged, so a forward (or prepaid) charge never
    bills days after it; only an "active to" moved earlier later leaves days to refund."""
    if service.active_to is None:
        return period
    return Period(period.start, min(period.end, service.active_to + timedelta(days=1)))


def _deactivate(run: _Run, service: ServiceSnapshot, at: datetime, price: Money) -> None:
    updated = run.move(
        service,
        ServiceState.DEACTIVATED,
        "insufficient_funds",
        at,
        balance=str(run.balance),
        price=str(price),
        minimum_balance=str(run.customer.minimum_balance),
    )
    run.outcome.services[service.id] = replace(
        updated, deactivated_on=local_date(at, run.customer.timezone)
    )


def _pause(run: _Run, service: ServiceSnapshot, at: datetime) -> None:
    assert service.active_to is not None
    stop = service.active_to + timedelta(days=1)
    billed = first_billing_start(service)
    if run.policy.refund_on_pause and billed > stop:
        full = period_containing(service.terms.cycle, stop)
        unused = Period(stop, min(billed, full.end))
        run.charge(service, ChargeKind.REFUND, unused, full, at)
        service = replace(service, billed_until=stop)
    updated = run.move(
        service, ServiceState.PAUSED, "active_to", at, active_to=str(service.active_to)
    )
    run.outcome.services[service.id] = updated


def _expire_customer(run: _Run, at: datetime) -> None:
    days = run.policy.deactivation_period_days
    for service in list(run.outcome.services.values()):
        if service.state is not ServiceState.ENDED:
            run.move(
                service,
                ServiceState.ENDED,
                "deactivation_period",
                at,
                deactivation_period_days=str(days),
            )
    run.outcome.customer_inactive = True


def _enforce_credit_limit(run: _Run, at: datetime) -> None:
    limit = run.customer.credit_limit
    if limit is None or run.balance > -limit:
        return
    for service in list(run.outcome.services.values()):
        if service.state is ServiceState.ACTIVE:
            run.move(
                service,
                ServiceState.SUSPENDED,
                SuspensionReason.CREDIT_LIMIT.value,
                at,
                balance=str(run.balance),
                credit_limit=str(limit),
            )


def reevaluate(run: _Run, now: datetime) -> None:
    """The activation pass: reactivate what the wallet now covers; lift a settled block.

    A postpaid balance can also reach the credit limit without a charge (a payment reversed):
    the limit is enforced here too, so the block follows in the same unit of work."""
    if not run.customer.prepaid:
        _enforce_credit_limit(run, now)
    today = local_date(now, run.customer.timezone)
    for service in sorted(run.outcome.services.values(), key=lambda s: s.id):
        if service.state is ServiceState.DEACTIVATED:
            _try_reactivate(run, service, today, now)
        elif (
            service.state is ServiceState.SUSPENDED
            and service.reason in run.policy.lift_reasons
            and not _over_credit_limit(run)
        ):
            run.move(
                service,
                ServiceState.ACTIVE,
                None,
                now,
                balance=str(run.balance),
                lifted=str(service.reason),
            )


def _over_credit_limit(run: _Run) -> bool:
    limit = run.customer.credit_limit
    return limit is not None and run.balance <= -limit


def _try_reactivate(run: _Run, service: ServiceSnapshot, today: date, now: datetime) -> None:
    if service.active_to is not None and today > service.active_to:
        return
    terms = service.terms
    # The customer's own billing cycle keeps its grid (the first period back is prorated); a
    # cycle of the service's own starts afresh on the reactivation date.
    restart = run.policy.reactivation_anchor is ReactivationAnchor.REACTIVATION_DATE
    if restart and not terms.follows_customer:
        cycle = instantiate_cycle(terms.cycle.kind, terms.cycle.n, today)
        terms = replace(terms, cycle=cycle)
    period, full = current_period(terms.cycle, today)
    _, full_price = price_period(terms, full, full)
    needed = full_price.gross
    for addon, part, _days in addon_parts(service, full):
        needed = needed + price_addon(addon, part, full)[1].gross
    # "sufficient funds in the wallet to cover the upcoming period" (CRM.COM): a whole period,
    # even when only its prorated rest is charged, so a dwindling remainder never reactivates.
    if not run.affordable(needed):
        return
    period = _until_active_to(service, period)
    _, split = price_period(terms, period, full)
    service = replace(service, terms=terms)
    service = run.move(
        service,
        ServiceState.ACTIVE,
        None,
        now,
        balance=str(run.balance),
        price=str(split.gross),
        anchor=run.policy.reactivation_anchor.value,
    )
    bases = [plan_charge(service, ChargeKind.REACTIVATION, period, full, now)]
    bases += [
        addon_charge(service, a, p, full, now, days=d) for a, p, d in addon_parts(service, period)
    ]
    discounts, updates = run.discounts(service, bases)
    run.record([*bases, *discounts])
    run.commit_discounts(service, updates)
    run.outcome.services[service.id] = replace(
        service, billed_until=period.end, deactivated_on=None
    )

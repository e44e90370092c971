"""Pay N months: what a customer must pay now so its services run for the next N periods.

Used by the checkout (and later the portal and the walled garden): "pay 3 months" must be the
amount the engine will actually charge, so this module prices with the engine's own functions
(``price_period`` over ``current_period`` from each service's billing position, cut at
"active to") and mirrors its reactivation rule for a deactivated service:

* an active, suspended or pending service continues from its billing position (``billed_until``,
  or ``active_from`` before the first charge);
* a deactivated service starts again today, on a cycle restarted today or on the original grid,
  as the reactivation anchor says; and "sufficient funds in the wallet to cover the upcoming
  period" (CRM.COM) means a whole period, so when the N periods quoted are less than one whole
  period (a prorated first period) the difference is added, to stay as credit;
* paused and ended services are not billed, so they are not quoted; a paused service that the
  customer reactivates by paying (seed 000) is quoted as it will be once reactivated
  (``reactivated``): N whole periods from the reactivation day (``bought_periods``).

Then the prepaid minimum balance, and the wallet: credit reduces the amount, debt adds to it.
The total is never below zero. Every figure is a line, so the quote explains itself.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta

from ispbill.domain.billing import (
    BillingPolicy,
    CustomerSnapshot,
    ReactivationAnchor,
    ServiceSnapshot,
    current_period,
    first_billing_start,
    price_period,
)
from ispbill.domain.calendar import (
    BillingCycle,
    CycleKind,
    Period,
    local_date,
    period_containing,
)
from ispbill.domain.errors import ValidationError
from ispbill.domain.lifecycle import ServiceState
from ispbill.domain.money import Money, sum_money
from ispbill.domain.plans import instantiate_cycle

MAX_PERIODS = 36
QUOTED_STATES = frozenset(
    {
        ServiceState.PENDING,
        ServiceState.ACTIVE,
        ServiceState.SUSPENDED,
        ServiceState.DEACTIVATED,
    }
)


@dataclass(frozen=True, slots=True)
class QuoteLine:
    label: str
    amount: Money
    service_id: int | None = None
    period: Period | None = None


@dataclass(frozen=True, slots=True)
class Quote:
    periods: int
    lines: tuple[QuoteLine, ...]
    total: Money  # what to pay now: the sum of the lines, never below zero

    @property
    def due(self) -> Money:
        """The sum of the lines, which may be negative when the wallet already covers it."""
        return sum_money((line.amount for line in self.lines), self.total.currency)


def quote_periods(
    customer: CustomerSnapshot,
    services: Sequence[ServiceSnapshot],
    *,
    periods: int,
    now: datetime,
    policy: BillingPolicy,
) -> Quote:
    if not 1 <= periods <= MAX_PERIODS:
        raise ValidationError("months", f"must be between 1 and {MAX_PERIODS}")
    currency = customer.balance.currency
    today = local_date(now, customer.timezone)
    lines: list[QuoteLine] = []
    for service in sorted(services, key=lambda s: s.id):
        if service.state in QUOTED_STATES:
            lines.extend(_service_lines(service, periods=periods, today=today, policy=policy))
    if customer.prepaid and not customer.minimum_balance.is_zero:
        lines.append(QuoteLine("minimum balance kept in the wallet", customer.minimum_balance))
    if not customer.balance.is_zero:
        label = "wallet credit" if customer.balance.is_positive else "wallet debt"
        lines.append(QuoteLine(label, -customer.balance))
    due = sum_money((line.amount for line in lines), currency)
    total = due if due.is_positive else Money.zero(currency)
    return Quote(periods, tuple(lines), total)


def _service_lines(
    service: ServiceSnapshot, *, periods: int, today: date, policy: BillingPolicy
) -> list[QuoteLine]:
    terms = service.terms
    if service.state is ServiceState.DEACTIVATED:
        if service.active_to is not None and today > service.active_to:
            return []
        restart = policy.reactivation_anchor is ReactivationAnchor.REACTIVATION_DATE
        if restart and not terms.follows_customer:  # as the engine's reactivation does
            terms = replace(terms, cycle=instantiate_cycle(terms.cycle.kind, terms.cycle.n, today))
        start = today
    else:
        start = first_billing_start(service)
    stop = service.active_to + timedelta(days=1) if service.active_to else None
    lines: list[QuoteLine] = []
    whole: Money | None = None
    for _ in range(periods):
        if stop is not None and start >= stop:
            break
        period, full = current_period(terms.cycle, start)
        if stop is not None and period.end > stop:
            period = Period(period.start, stop)
        _, split = price_period(terms, period, full)
        if whole is None:
            whole = price_period(terms, full, full)[1].gross
        label = f"{terms.description} {period.start.isoformat()}..{period.last_day.isoformat()}"
        lines.append(QuoteLine(label, split.gross, service.id, period))
        start = period.end
    if service.state is ServiceState.DEACTIVATED and whole is not None:
        quoted = sum_money((line.amount for line in lines), whole.currency)
        if quoted < whole:
            lines.append(
                QuoteLine(
                    f"{terms.description}: a whole period must be in the wallet to reactivate",
                    whole - quoted,
                    service.id,
                )
            )
    return lines


# -- reactivating a paused service by paying N periods (seed 000) ------------------------------


def starts_on(cycle: BillingCycle, start: date) -> bool:
    """True when a period of ``cycle`` begins on ``start``, so periods bought from that day are
    whole ones (charged at the full price, never prorated)."""
    return period_containing(cycle, start).start == start


def is_one_month(cycle: BillingCycle) -> bool:
    """True when a period of ``cycle`` is one month (calendar, anniversary or every 1 month), so
    one month anchored on another day costs the same price per period."""
    one_month = cycle.kind is CycleKind.EVERY_N_MONTHS and cycle.n == 1
    return one_month or cycle.kind in (CycleKind.MONTHLY, CycleKind.MONTHLY_ANNIVERSARY)


def bought_periods(cycle: BillingCycle, start: date, count: int) -> tuple[Period, ...]:
    """The ``count`` consecutive periods of ``cycle`` billed from ``start``, as the engine bills
    them (``current_period``): all whole when ``starts_on(cycle, start)``, else the first is the
    prorated rest of the period holding ``start``. The last one's ``last_day`` is the "active to"
    day they pay for (UISP: "active to" is the last active day)."""
    if not 1 <= count <= MAX_PERIODS:
        raise ValidationError("months", f"must be between 1 and {MAX_PERIODS}")
    periods: list[Period] = []
    day = start
    for _ in range(count):
        period, _full = current_period(cycle, day)
        periods.append(period)
        day = period.end
    return tuple(periods)


def reactivated(
    customer: CustomerSnapshot,
    service: ServiceSnapshot,
    *,
    cycle: BillingCycle,
    start: date,
    active_to: date | None,
    today: date,
) -> ServiceSnapshot:
    """A paused service as the engine will hold it right after ``lifecycle.reactivate_service``
    restarts its billing on ``start`` on ``cycle``: active and billed from ``start``, or, when
    the first period is due today and a prepaid wallet cannot cover it, deactivated there and
    then (the engine's ``_charge_due`` rule). Quoting this snapshot is quoting what the
    reactivation will cost."""
    terms = service.terms
    if cycle != terms.cycle:  # a cycle of the service's own from now on (a one-month period)
        terms = replace(terms, cycle=cycle, follows_customer=False)
    ready = replace(
        service,
        state=ServiceState.ACTIVE,
        reason=None,
        active_to=active_to,
        terms=terms,
        billed_until=start,
        deactivated_on=None,
    )
    if not customer.prepaid or start > today:  # nothing is charged before ``start``
        return ready
    period, full = current_period(cycle, start)
    if active_to is not None and period.end > active_to + timedelta(days=1):
        period = Period(period.start, active_to + timedelta(days=1))
    _, split = price_period(terms, period, full)
    if customer.balance - split.gross >= customer.minimum_balance:
        return ready
    return replace(
        ready, state=ServiceState.DEACTIVATED, reason="insufficient_funds", deactivated_on=start
    )

"""What a customer may do for itself in the portal (and the walled garden), on top of the
operator's use cases: reactivate a paused service by paying months.

UISP: past "active to" the service is paused "and can be reactivated by the customer" from the
client zone, setting a new "active to" or none. Whether customers may do this at all is the
operator's setting ``self_service_reactivation``, as in UISP.

What N months buy (seed 000: "the smallest time unit clients can prepay is one month"; on
reactivation "the client can then choose one or more months to be paid"): N whole periods of
the service from the day its billing restarts (the reactivation day), for N times the period
price, quoted before anything is written or paid (``reactivation_quote``). "Active to" becomes
the last day of those N periods (the last active day), or stays empty when the operator allows
open-ended reactivation and the customer asks for it.

How the invoice periods fall: they are **re-anchored on the reactivation day**
(``restart_cycle``), whatever the ``reactivation_anchor`` setting says (that setting governs the
engine's own reactivations, where nobody chose a number of months):

* a cycle of the service's own (a multi-month period, a plan's N days or months, anniversary)
  restarts on that day;
* a one-month grid that does not start on that day (the calendar month, the customer's
  anniversary) becomes a one-month billing period of the service's own anchored on that day
  (``period_months`` 1, which every plan offers at its plain price), so 15 March for 2 months
  is billed 15 March-14 April and 15 April-14 May at the full price each, and "active to" is
  14 May. The service keeps that period afterwards, like any service with its own period;
* the alternative, splitting the months at the customer's billing day, would bill two stubs
  prorated by the days of two different months, which do not add up to one month's price;
* other grids (weekly, semimonthly, a customer's N-day or N-month cycle) cannot be re-anchored
  per service: there the first period is the prorated rest of the current one, as before.

The reactivation is committed first and billing restarts at once (``reactivate_service``): a
prepaid wallet that cannot cover the first period deactivates the service there and then, and
the checkout opened next pays exactly the quote shown (the same quote, now computed on the
stored service); its webhook reactivates the service (``gateways.handle_webhook``). Nothing is
granted that nobody paid for.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime
from types import SimpleNamespace

from ispbill.adapters.db import settings_store
from ispbill.adapters.db.billing_snapshots import load_snapshots, service_cycle
from ispbill.adapters.db.models import Customer, Service
from ispbill.adapters.db.unit_of_work import UnitOfWork
from ispbill.adapters.payments.gateway import PaymentGateway
from ispbill.domain.calendar import local_date
from ispbill.domain.errors import NotFound, ValidationError
from ispbill.domain.lifecycle import ServiceState
from ispbill.domain.prepayment import (
    MAX_PERIODS,
    Quote,
    bought_periods,
    is_one_month,
    quote_periods,
    reactivated,
    starts_on,
)
from ispbill.use_cases.payments.checkouts import StartedCheckout, pay_months_quote, start_checkout
from ispbill.use_cases.service_lifecycle.pauses import CycleRestart, reactivate_service, restart_day


def own_service(uow: UnitOfWork, customer_id: int, service_id: int) -> Service:
    """The customer's own service (another customer's is 'not found', never 'forbidden')."""
    service = uow.session.get(Service, service_id) if 0 < service_id < 2**63 else None
    if service is None or service.customer_id != customer_id:
        raise NotFound("service", service_id, field="service")
    return service


def restart_cycle(service: Service, customer: Customer, start: date) -> CycleRestart:
    """The cycle a service reactivated by paying months is billed on from ``start``, chosen so
    the periods sold from that day are whole (see the module docstring)."""
    fields = SimpleNamespace(
        cycle_origin=start, anchor_day=start.day, period_months=service.period_months
    )
    cycle = service_cycle(fields, customer, service.plan)
    if not starts_on(cycle, start) and is_one_month(cycle):
        fields.period_months = 1  # one month on the reactivation day, at the same price
        cycle = service_cycle(fields, customer, service.plan)
    return CycleRestart(start, fields.period_months, start, start.day, cycle)


def paid_until(restart: CycleRestart, months: int) -> date:
    """The "active to" day ``months`` periods from the restart pay for: their last day."""
    return bought_periods(restart.cycle, restart.start, months)[-1].last_day


@dataclass(frozen=True)
class ReactivationPlan:
    service: Service
    customer: Customer
    restart: CycleRestart
    active_to: date | None


def plan_reactivation(
    uow: UnitOfWork,
    *,
    customer_id: int,
    service_id: int,
    months: int,
    open_ended: bool,
    now: datetime,
) -> ReactivationPlan:
    """Check the customer may reactivate the service for ``months`` and work out how (reads
    only)."""
    operator = settings_store.load(uow)
    if not operator.self_service_reactivation:
        raise ValidationError("service", "reactivation is done by the operator; please contact us")
    if not 1 <= months <= MAX_PERIODS:
        raise ValidationError("months", f"must be between 1 and {MAX_PERIODS}")
    if open_ended and not operator.open_ended_reactivation:
        raise ValidationError("open_ended", "an end date is required")
    service = own_service(uow, customer_id, service_id)
    if service.state != ServiceState.PAUSED.value:
        raise ValidationError("state", f"service {service_id} is {service.state}, not paused")
    customer = uow.session.get(Customer, customer_id)
    assert customer is not None
    start = restart_day(service, local_date(now, customer.billing_timezone))
    restart = restart_cycle(service, customer, start)
    active_to = None if open_ended else paid_until(restart, months)
    return ReactivationPlan(service, customer, restart, active_to)


def reactivation_quote(
    uow: UnitOfWork,
    *,
    customer_id: int,
    service_id: int,
    months: int,
    open_ended: bool,
    now: datetime,
) -> Quote:
    """What reactivating the paused service for ``months`` costs, shown before paying and
    before anything is written: the customer's pay-N-months quote
    (``gateways.pay_months_quote``) with the service as it will be once reactivated, so the
    service's lines are N whole periods at the period price and the total is what the checkout
    will ask."""
    plan = plan_reactivation(
        uow,
        customer_id=customer_id,
        service_id=service_id,
        months=months,
        open_ended=open_ended,
        now=now,
    )
    policy = settings_store.load(uow).billing_policy()
    [(customer, services)] = load_snapshots(uow.session, [customer_id])
    quoted = [
        reactivated(
            customer,
            s,
            cycle=plan.restart.cycle,
            start=plan.restart.start,
            active_to=plan.active_to,
            today=local_date(now, plan.customer.billing_timezone),
        )
        if s.id == service_id
        else s
        for s in services
    ]
    return quote_periods(customer, quoted, periods=months, now=now, policy=policy)


@dataclass(frozen=True)
class SelfReactivation:
    service_id: int
    active_to: date | None
    state: str
    checkout: StartedCheckout | None  # None: the wallet already covered it


def reactivate_by_paying(
    uow: UnitOfWork,
    *,
    gateways: Mapping[str, PaymentGateway],
    gateway: str,
    customer_id: int,
    service_id: int,
    months: int,
    open_ended: bool,
    return_url: str,
    now: datetime,
    actor: str,
) -> SelfReactivation:
    plan = plan_reactivation(
        uow,
        customer_id=customer_id,
        service_id=service_id,
        months=months,
        open_ended=open_ended,
        now=now,
    )
    if gateway not in gateways:
        raise ValidationError("gateway", "online payment is not available")
    active_to = plan.active_to
    uow.session.rollback()  # reactivate_service opens its own write transaction
    done = reactivate_service(
        uow,
        service_id=service_id,
        active_to=active_to,
        now=now,
        actor=actor,
        restart=plan.restart,
    )
    state = done.service.state
    quote = pay_months_quote(uow, customer_id=customer_id, months=months, now=now)
    uow.session.rollback()
    if not quote.total.is_positive:
        return SelfReactivation(service_id, active_to, state, None)
    started = start_checkout(
        uow,
        gateways=gateways,
        gateway=gateway,
        customer_id=customer_id,
        months=months,
        now=now,
        actor=actor,
        return_url=return_url,
    )
    return SelfReactivation(service_id, active_to, state, started)

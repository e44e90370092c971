"""What a customer may do for itself in the portal (and the walled garden), on top of the
operator's use cases: reactivate a paused service by paying months.

UISP: past "active to" the service is paused "and can be reactivated by the customer" from the
client zone, setting a new "active to" or none. Here the customer picks how many periods to
pay; "active to" becomes the end of those periods (cycles restart on the reactivation day, as
``lifecycle.reactivate_service`` does with the default anchor), or stays empty when the operator
allows open-ended reactivation and the customer asks for it. Whether customers may do this at
all is the operator's setting ``self_service_reactivation``, as in UISP.

The reactivation is committed first and billing restarts at once (``reactivate_service``): a
prepaid wallet that cannot cover the first period deactivates the service there and then, and
the checkout opened next pays exactly the quoted periods; its webhook reactivates the service
(``gateways.handle_webhook``). Nothing is granted that nobody paid for.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime
from types import SimpleNamespace

from ispbill.adapters.db.models import Customer, Service
from ispbill.adapters.db.unit_of_work import UnitOfWork
from ispbill.adapters.payments.gateway import PaymentGateway
from ispbill.domain.calendar import first_period, local_date, next_period
from ispbill.domain.errors import NotFound, ValidationError
from ispbill.domain.lifecycle import ServiceState
from ispbill.domain.prepayment import MAX_PERIODS
from ispbill.services import settings as settings_store
from ispbill.services.billing import service_cycle
from ispbill.services.gateways import StartedCheckout, pay_months_quote, start_checkout
from ispbill.services.lifecycle import reactivate_service


def own_service(uow: UnitOfWork, customer_id: int, service_id: int) -> Service:
    """The customer's own service (another customer's is 'not found', never 'forbidden')."""
    service = uow.session.get(Service, service_id) if 0 < service_id < 2**63 else None
    if service is None or service.customer_id != customer_id:
        raise NotFound("service", service_id, field="service")
    return service


def paid_until(service: Service, customer: Customer, today: date, months: int) -> date:
    """The end of ``months`` periods of the service's cycle restarted ``today``."""
    restarted = SimpleNamespace(
        cycle_origin=today, anchor_day=today.day, period_months=service.period_months
    )
    cycle = service_cycle(restarted, customer, service.plan)
    period = first_period(cycle, today)
    for _ in range(months - 1):
        period = next_period(cycle, period)
    return period.end


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
    if gateway not in gateways:
        raise ValidationError("gateway", "online payment is not available")
    today = local_date(now, customer.billing_timezone)
    active_to = None if open_ended else paid_until(service, customer, today, months)
    uow.session.rollback()  # reactivate_service opens its own write transaction
    done = reactivate_service(
        uow, service_ref=service_id, active_to=active_to, now=now, actor=actor
    )
    state = done.service.state
    quote = pay_months_quote(uow, customer=str(customer_id), months=months, now=now)
    uow.session.rollback()
    if not quote.total.is_positive:
        return SelfReactivation(service_id, active_to, state, None)
    started = start_checkout(
        uow,
        gateways=gateways,
        gateway=gateway,
        customer=str(customer_id),
        months=months,
        now=now,
        actor=actor,
        return_url=return_url,
    )
    return SelfReactivation(service_id, active_to, state, started)

"""Loading what the billing decision needs: the due and activatable customers (claimed with row
locks), and each customer's and service's frozen snapshot for ``domain/billing.decide``.

The reads of the tick, the fast path, a payment's re-evaluation and the previews, in one place
under the unit of work: a use case asks for snapshots, the domain decides, a store writes.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import and_, exists, or_, select
from sqlalchemy.orm import Session
from sqlalchemy.sql.expression import ColumnElement

from ispbill.adapters.db import bulk
from ispbill.adapters.db.models import Charge as ChargeRow
from ispbill.adapters.db.models import (
    Customer,
    CustomerClass,
    DiscountRow,
    LedgerAccount,
    Plan,
    Service,
    ServiceAddOn,
    ServiceSuspension,
    TaxProfileRow,
)
from ispbill.domain.billing import (
    AddOn,
    BillingPolicy,
    ChargeKind,
    CustomerSnapshot,
    ServiceSnapshot,
    ServiceTerms,
)
from ispbill.domain.calendar import BillingCycle, CycleKind, load_timezone
from ispbill.domain.customers import BalanceControl, InvoicingMode
from ispbill.domain.discounts import Discount
from ispbill.domain.ledger import AccountKind
from ispbill.domain.lifecycle import ServiceState, SuspensionStatus
from ispbill.domain.money import Money
from ispbill.domain.plans import PLAN_FOLLOWS_CUSTOMER, instantiate_cycle
from ispbill.domain.ranges import IdRange
from ispbill.domain.taxes import NO_TAX, TaxProfile

LIVE_STATES = (
    ServiceState.PENDING.value,
    ServiceState.ACTIVE.value,
    ServiceState.SUSPENDED.value,
    ServiceState.DEACTIVATED.value,
    ServiceState.PAUSED.value,
)
Claim = Callable[[Session, datetime, int, set[int]], list[int]]


def due_customers(
    session: Session,
    now: datetime,
    limit: int,
    seen: set[int],
    *,
    policy: BillingPolicy | None = None,
    within: IdRange | None = None,
) -> list[int]:
    """Customers with a service due at or before ``now``, locked for this tick (only those
    ``within`` a range of customer ids, when given: the scheduled tick's jobs).

    A deactivated service's stored ``next_due_at`` reflects the deactivation period in force
    when it was stored; an operator may turn the period on (or shorten it) later, so services
    deactivated long enough under the current policy are claimed too (a superset by a day for
    timezones ahead of UTC; the domain decides exactly).
    """
    due: ColumnElement[bool] = exists().where(
        Service.customer_id == Customer.id, Service.next_due_at <= now
    )
    days = policy.deactivation_period_days if policy is not None else None
    if days is not None:
        expired = exists().where(
            Service.customer_id == Customer.id,
            Service.state == ServiceState.DEACTIVATED.value,
            Service.deactivated_on <= now.astimezone(UTC).date() + timedelta(days=1 - days),
        )
        due = or_(due, expired)
    query = select(Customer.id).where(due)
    if within is not None:
        query = query.where(Customer.id.between(within.low, within.high))
    if seen:  # a guard: a customer decided in this tick is never claimed twice. Claims go in
        # id order, so "after the last one claimed" says it with one bound parameter; NOT IN the
        # whole set broke PostgreSQL's 65,535-parameter limit past that many customers in one
        # tick and filled SQLite's statement cache with ever longer statements (RSS +450 MiB
        # at 100,000 customers).
        query = query.where(Customer.id > max(seen))
    query = query.order_by(Customer.id).limit(limit)
    if session.get_bind().dialect.name == "postgresql":
        query = query.with_for_update(skip_locked=True, of=Customer)
    return list(session.scalars(query))


def activation_candidates(
    session: Session,
    limit: int,
    seen: set[int],
    policy: BillingPolicy,
    within: IdRange | None = None,
) -> list[int]:
    """Customers whose wallet may now cover a deactivated service, or lift a credit block.

    A cheap superset (any headroom above the minimum balance, or above minus the credit limit);
    the domain decides exactly. Each customer is looked at once per tick. Locked like
    ``due_customers``: a payment re-evaluating the same customer waits (or is skipped), so
    neither overwrites the other's decision with a stale one.
    """
    headroom = LedgerAccount.balance_minor > Customer.minimum_balance_minor
    below_limit = or_(
        Customer.credit_limit_minor.is_(None),
        LedgerAccount.balance_minor > -Customer.credit_limit_minor,
    )
    waiting = exists().where(
        Service.customer_id == Customer.id,
        or_(
            and_(Service.state == ServiceState.DEACTIVATED.value, headroom),
            and_(
                Service.state == ServiceState.SUSPENDED.value,
                Service.state_reason.in_(sorted(policy.lift_reasons)),
                below_limit,
            ),
        ),
    )
    query = (
        select(Customer.id)
        .join(
            LedgerAccount,
            and_(
                LedgerAccount.customer_id == Customer.id,
                LedgerAccount.kind == AccountKind.WALLET.value,
                LedgerAccount.currency == Customer.currency,
            ),
        )
        .where(waiting)
    )
    if within is not None:
        query = query.where(Customer.id.between(within.low, within.high))
    if seen:  # in id order, like due_customers (one parameter, not the whole set)
        query = query.where(Customer.id > max(seen))
    query = query.order_by(Customer.id).limit(limit)
    if session.get_bind().dialect.name == "postgresql":
        query = query.with_for_update(skip_locked=True, of=Customer)
    return list(session.scalars(query))


CustomerRecord = Any
ServiceRecord = Any

CUSTOMER_COLUMNS = (
    Customer.id,
    Customer.class_id,
    Customer.tax_profile_id,
    Customer.currency,
    Customer.balance_control,
    Customer.billing_timezone,
    Customer.minimum_balance_minor,
    Customer.credit_limit_minor,
    Customer.invoicing_mode,
    Customer.cycle_kind,
    Customer.cycle_n,
    Customer.cycle_anchor_day,
    Customer.cycle_origin,
)
SERVICE_COLUMNS = (
    Service.id,
    Service.customer_id,
    Service.plan_id,
    Service.state,
    Service.state_reason,
    Service.active_from,
    Service.active_to,
    Service.cycle_origin,
    Service.anchor_day,
    Service.period_months,
    Service.invoicing_mode,
    Service.billed_until,
    Service.deactivated_on,
)


def load_snapshots(
    session: Session, customer_ids: list[int]
) -> list[tuple[CustomerSnapshot, list[ServiceSnapshot]]]:
    """Column rows, not ORM objects: the rows carry the same attribute names the snapshot
    builders read, at a fraction of the cost per row."""
    dialect = session.get_bind().dialect.name
    customers = session.execute(
        select(*CUSTOMER_COLUMNS)
        .where(bulk.id_in(Customer.id, customer_ids, dialect))
        .order_by(Customer.id)
    ).all()
    balances = dict(
        session.execute(
            select(LedgerAccount.customer_id, LedgerAccount.balance_minor).where(
                bulk.id_in(LedgerAccount.customer_id, customer_ids, dialect),
                LedgerAccount.kind == AccountKind.WALLET.value,
            )
        ).all()
    )
    services: dict[int, list[Any]] = {cid: [] for cid in customer_ids}
    for service in session.execute(
        select(*SERVICE_COLUMNS)
        .where(
            bulk.id_in(Service.customer_id, customer_ids, dialect), Service.state.in_(LIVE_STATES)
        )
        .order_by(Service.id)
    ):
        services[service.customer_id].append(service)
    plans = {row.id: row for row in session.scalars(select(Plan))}
    taxes = {row.id: row for row in session.scalars(select(TaxProfileRow))}
    classes = {row.id: row for row in session.scalars(select(CustomerClass))}
    windows = unbilled_windows(session, customer_ids)
    addons = service_addons(session, customer_ids, taxes)
    discounts = active_discounts(session, customer_ids)
    result = []
    for customer in customers:
        snapshot = replace(
            customer_snapshot(customer, balances.get(customer.id, 0)),
            discounts=tuple(d for d in discounts.get(customer.id, ()) if d.service_id is None),
        )
        tax = effective_tax(customer, classes[customer.class_id], taxes)
        result.append(
            (
                snapshot,
                [
                    replace(
                        service_snapshot(
                            s, customer, plans[s.plan_id], tax, taxes, windows.get(s.id, ())
                        ),
                        addons=_with_tax(addons.get(s.id, ()), tax, plans[s.plan_id], taxes),
                        discounts=tuple(
                            d for d in discounts.get(customer.id, ()) if d.service_id == s.id
                        ),
                    )
                    for s in services[customer.id]
                ],
            )
        )
    return result


def active_discounts(session: Session, customer_ids: list[int]) -> dict[int, list[Discount]]:
    """Per customer, its discounts with the period starts each already reduced (the plan
    charges' discount lines: add-on parts may start later in the same period)."""
    dialect = session.get_bind().dialect.name
    rows = list(
        session.scalars(
            select(DiscountRow)
            .where(bulk.id_in(DiscountRow.customer_id, customer_ids, dialect))
            .order_by(DiscountRow.id)
        )
    )
    if not rows:
        return {}
    used: dict[int, set[date]] = {}
    for discount_id, start in session.execute(
        select(ChargeRow.discount_id, ChargeRow.period_start)
        .where(
            ChargeRow.discount_id.in_([r.id for r in rows]),
            ChargeRow.kind == ChargeKind.DISCOUNT.value,
            ChargeRow.addon_id.is_(None),
        )
        .distinct()
    ):
        if discount_id is not None:
            used.setdefault(discount_id, set()).add(start)
    found: dict[int, list[Discount]] = {}
    for row in rows:
        ends = [d for d in (row.until, row.ended_on) if d is not None]
        found.setdefault(row.customer_id, []).append(
            Discount(
                id=row.id,
                service_id=row.service_id,
                percent=row.percent,
                amount=(
                    Money(row.amount_minor, row.currency) if row.amount_minor is not None else None
                ),
                starts_on=row.starts_on,
                periods=row.periods,
                until=min(ends) if ends else None,
                reason=row.reason,
                used=frozenset(used.get(row.id, ())),
            )
        )
    return found


def service_addons(
    session: Session, customer_ids: list[int], taxes: dict[int, TaxProfileRow]
) -> dict[int, tuple[AddOn, ...]]:
    """Per service, its add-ons still charged somewhere (every one: an ended add-on's last
    period may be due yet). An add-on without a tax profile of its own is taxed as its
    service (``_with_tax``)."""
    dialect = session.get_bind().dialect.name
    found: dict[int, list[AddOn]] = {}
    for row in session.execute(
        select(
            ServiceAddOn.id,
            ServiceAddOn.service_id,
            ServiceAddOn.description,
            ServiceAddOn.price_minor,
            ServiceAddOn.currency,
            ServiceAddOn.tax_profile_id,
            ServiceAddOn.starts_on,
            ServiceAddOn.ends_on,
        )
        .where(bulk.id_in(ServiceAddOn.customer_id, customer_ids, dialect))
        .order_by(ServiceAddOn.id)
    ):
        tax = _tax(taxes[row.tax_profile_id]) if row.tax_profile_id else _SERVICE_TAX
        found.setdefault(row.service_id, []).append(
            AddOn(
                id=row.id,
                description=row.description,
                price=Money(row.price_minor, row.currency),
                tax=tax,
                starts_on=row.starts_on,
                ends_on=row.ends_on,
            )
        )
    return {sid: tuple(a) for sid, a in found.items()}


# A marker: the add-on is taxed as its service is (resolved per service by ``_with_tax``).
_SERVICE_TAX = TaxProfile("(service)", 0)


def _with_tax(
    addons: tuple[AddOn, ...],
    customer_tax: TaxProfile | None,
    plan: Plan,
    taxes: dict[int, TaxProfileRow],
) -> tuple[AddOn, ...]:
    if not addons:
        return addons
    tax = customer_tax or (_tax(taxes[plan.tax_profile_id]) if plan.tax_profile_id else NO_TAX)
    return tuple(replace(a, tax=tax) if a.tax is _SERVICE_TAX else a for a in addons)


def unbilled_windows(
    session: Session, customer_ids: list[int]
) -> dict[int, tuple[tuple[date, date | None], ...]]:
    """Per service, the windows of "suspend service and invoicing" (first day, end exclusive,
    ``None`` while open). A suspension cancelled before its first day (lifted with no end)
    bills as if it never existed."""
    dialect = session.get_bind().dialect.name
    rows = session.execute(
        select(
            ServiceSuspension.service_id,
            ServiceSuspension.starts_on,
            ServiceSuspension.ends_on,
            ServiceSuspension.status,
        )
        .where(
            bulk.id_in(ServiceSuspension.customer_id, customer_ids, dialect),
            ServiceSuspension.suspend_invoicing.is_(True),
        )
        .order_by(ServiceSuspension.id)
    ).all()
    found: dict[int, list[tuple[date, date | None]]] = {}
    for service_id, starts_on, ends_on, status in rows:
        if ends_on is None and status not in (
            SuspensionStatus.PLANNED.value,
            SuspensionStatus.ACTIVE.value,
        ):
            continue
        end = ends_on + timedelta(days=1) if ends_on is not None else None
        found.setdefault(service_id, []).append((starts_on, end))
    return {sid: tuple(w) for sid, w in found.items()}


def customer_snapshot(customer: CustomerRecord, balance_minor: int) -> CustomerSnapshot:
    currency = customer.currency
    return CustomerSnapshot(
        id=customer.id,
        prepaid=customer.balance_control == BalanceControl.PREPAID.value,
        timezone=load_timezone(customer.billing_timezone),
        balance=Money(balance_minor, currency),
        minimum_balance=Money(customer.minimum_balance_minor, currency),
        credit_limit=(
            Money(customer.credit_limit_minor, currency)
            if customer.credit_limit_minor is not None
            else None
        ),
    )


def effective_tax(
    customer: CustomerRecord, klass: CustomerClass, taxes: dict[int, TaxProfileRow]
) -> TaxProfile | None:
    """Taxation follows the customer (PortaBilling: the class carries "taxation"); a
    customer's own profile wins over its class's. ``None`` lets the plan's profile apply."""
    tax_id = customer.tax_profile_id or klass.tax_profile_id
    return _tax(taxes[tax_id]) if tax_id else None


def _tax(row: TaxProfileRow) -> TaxProfile:
    return TaxProfile(row.name, row.rate_bp, row.inclusive)


def service_cycle(service: ServiceRecord, customer: CustomerRecord, plan: Plan) -> BillingCycle:
    """The cycle a service is billed on: N months if it picked a multi-month period (UISP),
    else its plan's own cycle, else the customer's billing cycle (PortaBilling)."""
    origin = service.cycle_origin
    if service.period_months:
        return instantiate_cycle(
            CycleKind.EVERY_N_MONTHS, service.period_months, origin, anchor_day=service.anchor_day
        )
    if plan.cycle_kind == PLAN_FOLLOWS_CUSTOMER:
        kind = CycleKind(customer.cycle_kind)
        if kind is CycleKind.MONTHLY_ANNIVERSARY and customer.cycle_anchor_day:
            # the customer's anniversary day, not the service's start, sets its periods
            return BillingCycle(
                kind, anchor_day=customer.cycle_anchor_day, origin=_anniversary_origin(customer)
            )
        return instantiate_cycle(kind, customer.cycle_n, customer.cycle_origin)
    return instantiate_cycle(
        CycleKind(plan.cycle_kind), plan.cycle_n, origin, anchor_day=service.anchor_day
    )


def _anniversary_origin(customer: CustomerRecord) -> date | None:
    origin = customer.cycle_origin
    return origin if origin.day == customer.cycle_anchor_day else None


def period_price(plan: Plan, service: ServiceRecord, price_minor: int | None = None) -> Money:
    """Price of one period: the plan price (``price_minor``, else the list price), times N
    months less the option's discount."""
    price = Money(plan.price_minor if price_minor is None else price_minor, plan.currency)
    months = service.period_months or 1
    if months == 1:
        return price
    discount_bp = next(
        (int(o.get("discount_bp", 0)) for o in plan.period_options if int(o["months"]) == months), 0
    )
    total = price * months
    return total - total.percent_bp(discount_bp)


def service_snapshot(
    service: ServiceRecord,
    customer: CustomerRecord,
    plan: Plan,
    customer_tax: TaxProfile | None,
    taxes: dict[int, TaxProfileRow],
    unbilled: tuple[tuple[date, date | None], ...] = (),
) -> ServiceSnapshot:
    tax = customer_tax or (_tax(taxes[plan.tax_profile_id]) if plan.tax_profile_id else NO_TAX)
    mode = InvoicingMode(service.invoicing_mode or customer.invoicing_mode)
    return ServiceSnapshot(
        id=service.id,
        state=ServiceState(service.state),
        reason=service.state_reason,
        active_from=service.active_from,
        active_to=service.active_to,
        terms=ServiceTerms(
            cycle=service_cycle(service, customer, plan),
            price=period_price(plan, service),
            prices=tuple(
                (row.valid_from, period_price(plan, service, row.price_minor))
                for row in sorted(plan.prices, key=lambda r: r.valid_from)
            ),
            tax=tax,
            mode=mode,
            description=plan.name,
            follows_customer=not service.period_months and plan.cycle_kind == PLAN_FOLLOWS_CUSTOMER,
        ),
        billed_until=service.billed_until,
        deactivated_on=service.deactivated_on,
        unbilled=unbilled,
    )

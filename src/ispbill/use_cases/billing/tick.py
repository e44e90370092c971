"""The tick: everything due up to an instant happens, in time order, exactly once.

Set-oriented and chunked (ARCHITECTURE section 5): a chunk of customers with something due is
claimed (row locks with SKIP LOCKED on PostgreSQL, so several ticks share the work; an immediate
write transaction on SQLite), loaded with a handful of queries, decided by the pure domain
(``domain/billing.decide``) and stored with batched writes, then committed. A crash loses at
most the chunk in flight, which the next tick redoes; uniqueness of charges and ledger keys
makes a repeat harmless.

One customer's bad data never stops the tick for the others: a customer whose decision or
writes raise is skipped (its writes rolled back to a savepoint), recorded as a
``tick.customer_failed`` event with the error, listed in the report, and everyone else is
billed. The next tick tries it again.
"""

from __future__ import annotations

import logging
import threading
import time
import traceback
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import and_, exists, or_, select
from sqlalchemy.exc import InterfaceError, OperationalError, SQLAlchemyError
from sqlalchemy.orm import Session
from sqlalchemy.sql.expression import ColumnElement

from ispbill.adapters.db import bulk, settings_store
from ispbill.adapters.db import event_log as events
from ispbill.adapters.db.billing_store import store_outcomes
from ispbill.adapters.db.models import (
    Customer,
    CustomerClass,
    LedgerAccount,
    Plan,
    Service,
    ServiceSuspension,
    TaxProfileRow,
)
from ispbill.adapters.db.unit_of_work import UnitOfWork
from ispbill.adapters.payments.gateway import PaymentGateway
from ispbill.domain.billing import (
    BillingPolicy,
    CustomerSnapshot,
    Outcome,
    ServiceSnapshot,
    ServiceTerms,
    decide,
)
from ispbill.domain.calendar import BillingCycle, CycleKind, load_timezone
from ispbill.domain.customers import BalanceControl, InvoicingMode
from ispbill.domain.dates import check_date
from ispbill.domain.ledger import AccountKind
from ispbill.domain.lifecycle import ServiceState
from ispbill.domain.money import Money
from ispbill.domain.plans import PLAN_FOLLOWS_CUSTOMER, instantiate_cycle
from ispbill.domain.taxes import NO_TAX, TaxProfile
from ispbill.use_cases.billing.statements import issue_monthly_statements

ENGINE = "engine"
CUSTOMER_FAILED = "tick.customer_failed"
log = logging.getLogger(__name__)
LIVE_STATES = (
    ServiceState.PENDING.value,
    ServiceState.ACTIVE.value,
    ServiceState.SUSPENDED.value,
    ServiceState.DEACTIVATED.value,
    ServiceState.PAUSED.value,
)


@dataclass(frozen=True)
class SkippedCustomer:
    """A customer the tick could not bill: ``stage`` is ``decide`` (loading its snapshot or the
    domain's decision raised) or ``store`` (writing the decision raised)."""

    customer_id: int
    stage: str
    error: str
    where: str = ""  # the innermost frame, for whoever fixes the data or the code


@dataclass
class TickReport:
    now: datetime
    customers: int = 0
    services: int = 0
    chunks: int = 0
    charges: int = 0
    invoices: int = 0
    cards_expired: int = 0
    transitions: dict[str, int] = field(default_factory=dict)
    collections: dict[str, int] = field(default_factory=dict)  # action -> customers
    skipped: list[SkippedCustomer] = field(default_factory=list)  # billed by nobody this tick
    seconds: float = 0.0

    def add(self, outcomes: Iterable[Outcome], invoices: int) -> None:
        for outcome in outcomes:
            self.customers += 1
            self.services += len(outcome.services)
            self.charges += len(outcome.charges)
            for t in outcome.transitions:
                self.transitions[t.to_state.value] = self.transitions.get(t.to_state.value, 0) + 1
        self.invoices += invoices
        self.chunks += 1

    def add_fast(self, charged: int) -> None:
        """A committed chunk of the fast path: one service of one customer per charge."""
        if charged:
            self.customers += charged
            self.services += charged
            self.charges += charged
            self.chunks += 1


def tick(
    uow_factory: Callable[[], UnitOfWork],
    *,
    now: datetime,
    chunk_size: int = 1000,
    actor: str = ENGINE,
    progress: Callable[[int], None] | None = None,
    gateways: Mapping[str, PaymentGateway] | None = None,
    workers: int = 1,
    report: TickReport | None = None,
) -> TickReport:
    """Run everything due up to ``now``; then the activation pass for funded customers.

    ``workers`` database connections share the set-based fast path (PostgreSQL). ``report``
    (a new one by default) counts each chunk as it commits, so a caller whose tick fails
    part-way can say what was committed: those chunks stand, and the next tick goes on.
    """
    check_date("at", now)
    started = time.perf_counter()
    report = report if report is not None else TickReport(now=now)
    counting = threading.Lock()  # the fast path's workers report from their threads

    def fast_chunk(charged: int) -> None:
        with counting:
            report.add_fast(charged)

    with uow_factory() as uow:
        policy_settings = settings_store.load(uow)
    policy = policy_settings.billing_policy()
    from ispbill.use_cases.billing.fast_path import (
        charge_alike_services,  # it builds on this module
    )

    charge_alike_services(
        uow_factory, now=now, policy=policy, workers=workers, committed=fast_chunk
    )
    for claim in (_due_customers(policy), _activation_candidates(policy)):
        seen: set[int] = set()
        while _run_chunk(uow_factory, now, chunk_size, policy_settings, actor, report, claim, seen):
            if progress:
                progress(report.customers)
    report.invoices += issue_monthly_statements(
        uow_factory, now=now, operator=policy_settings, chunk_size=chunk_size
    )
    # planned suspensions start and end, then collections looks at the customers due for
    # review (new invoices among them); both modules build on this one
    from ispbill.use_cases.collections.non_payers import run_collections
    from ispbill.use_cases.collections.suspensions import run_windows

    for action, count in run_windows(uow_factory, now=now, chunk_size=chunk_size).items():
        report.collections[action] = report.collections.get(action, 0) + count
    collected = run_collections(uow_factory, now=now, chunk_size=chunk_size, actor=actor)
    for action, count in collected.actions.items():
        report.collections[action] = report.collections.get(action, 0) + count
    from ispbill.use_cases.payments.refill_cards import (
        expire_cards,  # redemption re-evaluates via billing
    )

    with uow_factory() as uow:
        report.cards_expired = expire_cards(uow, now=now, actor=actor).cards
    if gateways:  # automatic top-ups of the wallets this tick's charges took under a threshold
        from ispbill.use_cases.payments.top_ups import request_due_top_ups  # it records payments

        request_due_top_ups(uow_factory, now=now, gateways=gateways, actor=actor)
    report.seconds = time.perf_counter() - started
    return report


Claim = Callable[[Session, datetime, int, set[int]], list[int]]


def _run_chunk(
    uow_factory: Callable[[], UnitOfWork],
    now: datetime,
    chunk_size: int,
    operator: settings_store.OperatorSettings,
    actor: str,
    report: TickReport,
    claim: Claim,
    seen: set[int],
) -> bool:
    with uow_factory() as uow:
        uow.begin_write()
        ids = claim(uow.session, now, chunk_size, seen)
        if not ids:
            return False
        seen.update(ids)
        skipped_before = {s.customer_id for s in report.skipped}  # failed in an earlier pass
        ids = [i for i in ids if i not in skipped_before]
        outcomes, failed = _decide_each(uow.session, ids, now=now, policy=operator.billing_policy())
        invoices, not_stored = _store_each(uow, outcomes, now=now, operator=operator, actor=actor)
        outcomes = [o for o in outcomes if o.customer_id not in not_stored]
        skipped = [*failed, *not_stored.values()]
        for one in skipped:
            events.record(
                uow,
                now=now,
                actor=actor,
                kind=CUSTOMER_FAILED,
                subject_type="customer",
                subject_id=one.customer_id,
                customer_id=one.customer_id,
                reason=one.error,
                figures={"stage": one.stage, "error": one.error, "where": one.where},
            )
        uow.commit()
    report.add(outcomes, invoices)
    report.skipped.extend(sorted(skipped, key=lambda one: one.customer_id))
    return True


def _skipped(customer_id: int, stage: str, exc: Exception) -> SkippedCustomer:
    text = " ".join(str(exc).split()) or "no message"
    error = f"{type(exc).__name__}: {text}"[:500]
    frames = traceback.extract_tb(exc.__traceback__)
    where = (
        f"{Path(frames[-1].filename).name}:{frames[-1].lineno} {frames[-1].name}" if frames else ""
    )
    log.error("tick: customer %s skipped (%s): %s at %s", customer_id, stage, error, where)
    log.debug("tick: customer %s skipped", customer_id, exc_info=exc)
    return SkippedCustomer(customer_id, stage, error, where)


def _decide_each(
    session: Session, customer_ids: list[int], *, now: datetime, policy: BillingPolicy
) -> tuple[list[Outcome], list[SkippedCustomer]]:
    """``evaluate_customers`` for the chunk; when that raises, customer by customer, so one
    customer's bad data (a row no snapshot can be built from, a decision that raises) is kept
    to that customer. A database error is not one customer's: it propagates."""
    try:
        return evaluate_customers(session, customer_ids, now=now, policy=policy), []
    except SQLAlchemyError:
        raise
    except Exception:
        pass
    outcomes: list[Outcome] = []
    skipped: list[SkippedCustomer] = []
    for customer_id in customer_ids:
        try:
            outcomes += evaluate_customers(session, [customer_id], now=now, policy=policy)
        except SQLAlchemyError:
            raise
        except Exception as exc:
            skipped.append(_skipped(customer_id, "decide", exc))
    return outcomes, skipped


def _store_each(
    uow: UnitOfWork,
    outcomes: list[Outcome],
    *,
    now: datetime,
    operator: settings_store.OperatorSettings,
    actor: str,
) -> tuple[int, dict[int, SkippedCustomer]]:
    """``store_outcomes`` in one batch; when the batch fails, customer by customer, each in its
    own savepoint, so only the customer whose writes fail is left out."""
    try:
        with uow.session.begin_nested():
            return store_outcomes(uow, outcomes, now=now, operator=operator, actor=actor), {}
    except (OperationalError, InterfaceError):
        raise  # the connection or a lock, not a customer's data
    except Exception:
        if not outcomes:
            raise
    invoices = 0
    skipped: dict[int, SkippedCustomer] = {}
    for outcome in outcomes:
        try:
            with uow.session.begin_nested():
                invoices += store_outcomes(uow, [outcome], now=now, operator=operator, actor=actor)
        except (OperationalError, InterfaceError):
            raise
        except Exception as exc:
            skipped[outcome.customer_id] = _skipped(outcome.customer_id, "store", exc)
    return invoices, skipped


def _due_customers(policy: BillingPolicy) -> Claim:
    def claim(session: Session, now: datetime, limit: int, seen: set[int]) -> list[int]:
        return due_customers(session, now, limit, seen, policy=policy)

    return claim


def due_customers(
    session: Session,
    now: datetime,
    limit: int,
    seen: set[int],
    *,
    policy: BillingPolicy | None = None,
) -> list[int]:
    """Customers with a service due at or before ``now``, locked for this tick.

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


def _activation_candidates(policy: BillingPolicy) -> Claim:
    def claim(session: Session, now: datetime, limit: int, seen: set[int]) -> list[int]:
        return activation_candidates(session, limit, seen, policy)

    return claim


def activation_candidates(
    session: Session, limit: int, seen: set[int], policy: BillingPolicy
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
    if seen:  # in id order, like due_customers (one parameter, not the whole set)
        query = query.where(Customer.id > max(seen))
    query = query.order_by(Customer.id).limit(limit)
    if session.get_bind().dialect.name == "postgresql":
        query = query.with_for_update(skip_locked=True, of=Customer)
    return list(session.scalars(query))


def evaluate_customers(
    session: Session, customer_ids: list[int], *, now: datetime, policy: BillingPolicy
) -> list[Outcome]:
    """Load what the decisions need in a few queries, then ask the domain for each customer."""
    snapshots = load_snapshots(session, customer_ids)
    return [decide(customer, services, now=now, policy=policy) for customer, services in snapshots]


# A Customer or Service ORM object, or a column row of CUSTOMER_COLUMNS / SERVICE_COLUMNS: the
# snapshot builders read attributes only, so the tick can skip building ORM objects.
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
    result = []
    for customer in customers:
        snapshot = customer_snapshot(customer, balances.get(customer.id, 0))
        tax = effective_tax(customer, classes[customer.class_id], taxes)
        result.append(
            (
                snapshot,
                [
                    service_snapshot(
                        s, customer, plans[s.plan_id], tax, taxes, windows.get(s.id, ())
                    )
                    for s in services[customer.id]
                ],
            )
        )
    return result


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
        if ends_on is None and status not in ("planned", "active"):
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


def period_price(plan: Plan, service: ServiceRecord) -> Money:
    """Price of one period: the plan price, times N months less the option's discount."""
    price = Money(plan.price_minor, plan.currency)
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
            tax=tax,
            mode=mode,
            description=plan.name,
            follows_customer=not service.period_months and plan.cycle_kind == PLAN_FOLLOWS_CUSTOMER,
        ),
        billed_until=service.billed_until,
        deactivated_on=service.deactivated_on,
        unbilled=unbilled,
    )

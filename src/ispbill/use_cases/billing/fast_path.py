"""The set-based fast path of the tick for the common case, on PostgreSQL.

Most of a prepaid ISP's services on a given night are alike: one active service per customer,
charged in advance, due for exactly one period, no "active to". For those the decision does not
depend on the customer except for one inequality, the CRM.COM/Splynx rule "charge when
``balance - price >= minimum balance``". So the pure domain decides once per *group* of alike
services (same cycle, period, price, tax and timezone: usually a handful of groups), by running
``domain.billing.decide`` on a representative snapshot, and one SQL statement applies that
decision to every service of the group whose wallet passes the inequality: it writes the ledger
transactions, their postings, the charges, the wallet balances and the services' new billing
positions together.

Each chunk first locks its candidate customers (``FOR UPDATE SKIP LOCKED``, in id order, like the
general path's claim; the customer row is the per-customer mutex a payment, a refund or a
correction takes), then reads and decides in later statements. Under READ COMMITTED each
statement sees what was committed before it started, so the decision (the service's position,
its state, the wallet) is read after the lock: a payment that charged the period, or a refund
that took the wallet under the price, and committed while the chunk was being locked is seen,
never overwritten. (Deciding in the locking statement itself read the rows as they were when
the statement started: the tick aborted on a charge key the payment had just written, or
charged a wallet a refund had just emptied.)

Everything else (services with a "suspend service and invoicing" window, an add-on or a discount, first charges, deactivations for lack of funds, several services sharing a
wallet, pauses, postpaid customers, SQLite) goes through the general path afterwards, which finds
exactly what this pass left. The result is the same ledger the general path writes: the same
keys, amounts, memos and instants (tests/scenarios/test_fast_path.py compares them).

A group this pass cannot decide or apply (bad data in a service, say) is left to the general
path too, which skips and reports just the customer that fails (``billing._run_chunk``).
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from types import SimpleNamespace
from typing import Any

from sqlalchemy import BigInteger, and_, exists, func, literal, or_, select, text
from sqlalchemy.dialects.postgresql import ARRAY, aggregate_order_by
from sqlalchemy.exc import InterfaceError, OperationalError
from sqlalchemy.orm import Session, aliased
from sqlalchemy.sql.expression import ColumnElement

from ispbill.adapters.db import ledger_store as ledger
from ispbill.adapters.db.billing_snapshots import (
    CUSTOMER_COLUMNS,
    LIVE_STATES,
    SERVICE_COLUMNS,
    effective_tax,
    service_snapshot,
)
from ispbill.adapters.db.billing_store import charge_key
from ispbill.adapters.db.models import (
    Customer,
    CustomerClass,
    DiscountRow,
    Plan,
    Service,
    ServiceAddOn,
    ServiceSuspension,
    TaxProfileRow,
)
from ispbill.adapters.db.unit_of_work import UnitOfWork
from ispbill.domain.billing import (
    BillingPolicy,
    ChargeKind,
    CustomerSnapshot,
    ServiceSnapshot,
    decide,
)
from ispbill.domain.calendar import load_timezone
from ispbill.domain.customers import BalanceControl, CustomerStatus
from ispbill.domain.errors import ValidationError
from ispbill.domain.ledger import AccountKind, AccountRef, EntryKind
from ispbill.domain.lifecycle import ServiceState
from ispbill.domain.money import Money

log = logging.getLogger(__name__)
# Service ids per statement: big statements amortise the round trips, and a range (not a
# LIMIT over a sort) keeps each chunk's cost its own, whatever the size of the base.
RANGE_SIZE = 20_000
REPRESENTATIVE_BALANCE_MINOR = 10**15
# (low, high): the customers with low < id <= high
CustomerRange = tuple[int, int]  # "funds suffice"; the inequality is applied per row in SQL

APPLY_GROUP = text(
    """
WITH eligible AS (  -- the customers are locked already (_lock_customers); this re-checks
    SELECT c.id AS customer_id, s.id AS service_id, w.id AS wallet_id
    FROM unnest(CAST(:service_ids AS bigint[])) AS wanted(id)
    JOIN services s ON s.id = wanted.id
    JOIN customers c ON c.id = s.customer_id
    JOIN ledger_accounts w ON w.customer_id = c.id AND w.kind = 'wallet' AND w.currency = c.currency
    WHERE s.id > :low AND s.id <= :high
      AND s.state = 'active' AND s.billed_until = :billed_until AND s.next_due_at <= :now
      AND s.active_to IS NULL
      AND NOT EXISTS (SELECT 1 FROM service_suspensions ss
                      WHERE ss.service_id = s.id AND ss.suspend_invoicing)
      AND NOT EXISTS (SELECT 1 FROM service_addons sa WHERE sa.service_id = s.id)
      AND NOT EXISTS (SELECT 1 FROM discounts d
                      WHERE (d.service_id = s.id OR (d.service_id IS NULL
                                                     AND d.customer_id = c.id))
                        AND (d.until IS NULL OR d.until >= s.billed_until)
                        AND (d.ended_on IS NULL OR d.ended_on >= s.billed_until))
      AND w.balance_minor - :gross >= c.minimum_balance_minor
    ORDER BY c.id
),
picked AS MATERIALIZED (
    SELECT eligible.*, nextval('ledger_transactions_id_seq') AS transaction_id FROM eligible
),
tx AS (
    INSERT INTO ledger_transactions
        (id, idempotency_key, kind, memo, customer_id, reverses_id, figures, recorded_at,
         effective_at)
    SELECT transaction_id, 'charge:' || service_id || :key_suffix, :entry_kind, :memo,
           customer_id, NULL, CAST('{}' AS json), :now, :at
    FROM picked
    RETURNING 1
),
legs AS (
    INSERT INTO ledger_postings (transaction_id, account_id, amount_minor, currency)
    SELECT transaction_id, wallet_id, -CAST(:gross AS bigint), :currency FROM picked
    UNION ALL
    SELECT transaction_id, :revenue_id, CAST(:net AS bigint), :currency FROM picked WHERE :net <> 0
    UNION ALL
    SELECT transaction_id, :tax_id, CAST(:tax AS bigint), :currency FROM picked WHERE :tax <> 0
    RETURNING 1
),
charged AS (
    INSERT INTO charges
        (service_id, customer_id, kind, period_start, period_end, quantity_num, quantity_den,
         unit_price_minor, net_minor, tax_minor, gross_minor, currency, tax_rate_bp,
         tax_inclusive, description, charged_at, transaction_id, invoice_id)
    SELECT service_id, customer_id, 'period', :period_start, :period_end,
           :quantity_num, :quantity_den, :unit_price, :net, :tax, :gross, :currency, :tax_rate_bp,
           :tax_inclusive, :description, :at, transaction_id, NULL
    FROM picked
    RETURNING 1
),
wallets AS (
    UPDATE ledger_accounts a SET balance_minor = a.balance_minor - :gross
    FROM picked WHERE a.id = picked.wallet_id
    RETURNING 1
),
positions AS (
    UPDATE services s SET billed_until = :new_billed_until, next_due_at = :next_due
    FROM picked WHERE s.id = picked.service_id
    RETURNING 1
)
SELECT (SELECT count(*) FROM tx), (SELECT count(*) FROM legs), (SELECT count(*) FROM charged),
       (SELECT count(*) FROM wallets), (SELECT count(*) FROM positions)
"""
)


def charge_alike_services(
    uow_factory: Callable[[], UnitOfWork],
    *,
    now: datetime,
    policy: BillingPolicy,
    chunk_size: int | None = None,
    workers: int = 1,
    committed: Callable[[int], None] | None = None,
    customers: CustomerRange | None = None,
) -> int:
    """Charge every eligible service due up to ``now``; returns how many were charged.
    ``committed`` hears each chunk's count once it is committed (from the workers' threads).
    ``customers`` (low, high) limits the pass to the customers with ``low < id <= high``, so
    a job per range of customers (issue 15) walks only its own services; None: everyone.

    The work is cut by service id modulo ``workers`` (an eligible service is its customer's
    only live one, so this cuts the customers too), one database connection each: the
    statements are the database's work, so on a machine with several cores the parts run side
    by side. The parts touch disjoint customers; they meet only on the revenue and tax
    accounts, updated last and in id order, so they serialise for an instant, never deadlock.
    """
    size = chunk_size or RANGE_SIZE
    if customers is not None and customers[0] >= customers[1]:
        raise ValidationError(
            "customers", f"the range {customers} is empty; low must be below high"
        )
    if workers <= 1:
        return _charge_part(uow_factory, now, policy, size, 0, 1, committed, customers)
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="fast-path") as pool:
        parts = [
            pool.submit(
                _charge_part, uow_factory, now, policy, size, part, workers, committed, customers
            )
            for part in range(workers)
        ]
        return sum(part.result() for part in parts)


def _charge_part(
    uow_factory: Callable[[], UnitOfWork],
    now: datetime,
    policy: BillingPolicy,
    chunk_size: int,
    part: int,
    parts: int,
    committed: Callable[[int], None] | None = None,
    customers: CustomerRange | None = None,
) -> int:
    """Walk the service ids in ranges of ``chunk_size``, every ``parts``-th range from
    ``part``: a range is an index range scan, so each chunk costs its own size, whatever the
    size of the whole base. With ``customers``, only the span of service ids those customers
    own is walked (one indexed min/max), and only their services are taken."""
    charged = 0
    with uow_factory() as uow:
        if uow.dialect != "postgresql":
            return 0
        span = select(func.min(Service.id), func.max(Service.id))
        if customers is not None:
            span = span.where(
                Service.customer_id > customers[0], Service.customer_id <= customers[1]
            )
        first, top = uow.session.execute(span).one()
    if first is None or top is None:
        return 0
    start = first - 1
    for low in range(start + part * chunk_size, top, chunk_size * parts):
        high = low + chunk_size
        with uow_factory() as uow:
            locked = _lock_customers(uow.session, now, low, high, customers)
            if not locked:
                continue
            # a new statement, so a new snapshot: it sees all that committed before the locks
            rows = _eligible_groups(uow.session, now, low, high, locked, customers)
            groups = _groups(uow.session, rows, now=now, policy=policy) if rows else {}
            count = 0
            for group, ids in groups.items():
                try:
                    with uow.session.begin_nested():
                        count += _apply(uow.session, group, ids, now=now, bounds=(low, high))
                except (OperationalError, InterfaceError):
                    raise
                except Exception:
                    log.exception("fast path: services %s left to the general path", ids)
            uow.commit()
        charged += count
        if committed is not None:
            committed(count)
    return charged


# What the decision depends on, besides the wallet inequality that SQL applies per row: the
# eligible rows are grouped by these in the database, so Python sees one row per distinct
# combination (a handful), not one per service. ``active_from``, ``state_reason`` and
# ``deactivated_on`` do not change an ordinary renewal of an active, already billed service.
_SERVICE_KEY = tuple(
    c
    for c in SERVICE_COLUMNS
    if c.key not in {"id", "customer_id", "active_from", "state_reason", "deactivated_on"}
)
_CUSTOMER_KEY = tuple(c for c in CUSTOMER_COLUMNS if c.key not in {"id", "minimum_balance_minor"})


def _eligible(
    now: datetime, low: int, high: int, customers: CustomerRange | None = None
) -> tuple[ColumnElement[bool], ...]:
    """What makes a service with an id in (low, high] (of a customer in ``customers``, when
    given) the fast path's (Service joined to its Customer); the wallet inequality comes last,
    per row, in ``APPLY_GROUP``."""
    other = aliased(Service)
    alone = ~exists().where(
        other.customer_id == Service.customer_id,
        other.id != Service.id,
        other.state.in_(LIVE_STATES),
    )
    mine = (
        (Customer.id > customers[0], Customer.id <= customers[1]) if customers is not None else ()
    )
    return (
        Service.id > low,
        Service.id <= high,
        *mine,
        Customer.balance_control == BalanceControl.PREPAID.value,
        Customer.status == CustomerStatus.ACTIVE.value,
        Service.state == ServiceState.ACTIVE.value,
        Service.next_due_at <= now,
        Service.billed_until.is_not(None),
        Service.active_to.is_(None),
        alone,
        # "suspend service and invoicing" windows prorate charges: the general path
        ~exists().where(
            ServiceSuspension.service_id == Service.id,
            ServiceSuspension.suspend_invoicing.is_(True),
        ),
        # add-ons are charged with the plan, each its own charge: the general path
        ~exists().where(ServiceAddOn.service_id == Service.id),
        # discounts are their own charges, taxed per charge: the general path (a discount
        # whose days are over, by date or by its end, no longer routes the service there)
        ~exists().where(
            or_(
                DiscountRow.service_id == Service.id,
                and_(DiscountRow.service_id.is_(None), DiscountRow.customer_id == Customer.id),
            ),
            or_(DiscountRow.until.is_(None), DiscountRow.until >= Service.billed_until),
            or_(DiscountRow.ended_on.is_(None), DiscountRow.ended_on >= Service.billed_until),
        ),
    )


def _lock_customers(
    session: Session, now: datetime, low: int, high: int, customers: CustomerRange | None
) -> list[int]:
    """Lock the chunk's candidate customers, in id order (the order of the general path's
    claim), skipping those another tick or a payment holds: the general path gets them later.
    This statement's own view may be stale by the time a row is locked; the statements after
    it read afresh. An eligible service is its customer's only live one: one row a customer."""
    query = (
        select(Customer.id)
        .join(Service, Service.customer_id == Customer.id)
        .where(*_eligible(now, low, high, customers))
        .order_by(Customer.id)
        .with_for_update(of=Customer, skip_locked=True)
    )
    return list(session.scalars(query))


def _eligible_groups(
    session: Session,
    now: datetime,
    low: int,
    high: int,
    locked: list[int],
    customers: CustomerRange | None,
) -> list[Any]:
    """The eligible services with ids in (low, high] of the ``locked`` customers, grouped by
    what decides them, as committed when the locks were taken."""
    customer_key = [column.label(f"c_{column.key}") for column in _CUSTOMER_KEY]
    # a join with the unnested array (a hash join), not "= ANY(array)": that compares every
    # row with every element, seconds per chunk
    mine = func.unnest(literal(locked, type_=ARRAY(BigInteger))).table_valued("id").render_derived()
    chunk = (
        select(
            Service.id,
            Service.active_from,
            *_SERVICE_KEY,
            Customer.id.label("c_id"),
            *customer_key,
        )
        .join(Customer, Customer.id == Service.customer_id)
        .join(mine, mine.c.id == Customer.id)
        .where(*_eligible(now, low, high, customers))
        .subquery()
    )
    keys = [chunk.c[c.key] for c in _SERVICE_KEY] + [chunk.c[f"c_{c.key}"] for c in _CUSTOMER_KEY]
    query = select(
        *keys,
        func.min(chunk.c.id).label("id"),
        func.min(chunk.c.active_from).label("active_from"),
        func.array_agg(aggregate_order_by(chunk.c.id, chunk.c.id)).label("ids"),
    ).group_by(*keys)
    return list(session.execute(query).all())


Group = tuple[Any, ...]


def _groups(
    session: Session, rows: list[Any], *, now: datetime, policy: BillingPolicy
) -> dict[Group, list[int]]:
    """Ask the domain once per distinct (terms, billed until, timezone); keep the groups whose
    whole due work is exactly one ordinary period charge."""
    plans = {row.id: row for row in session.scalars(select(Plan))}
    taxes = {row.id: row for row in session.scalars(select(TaxProfileRow))}
    classes = {row.id: row for row in session.scalars(select(CustomerClass))}
    decided: dict[tuple[Any, ...], Group | None] = {}
    groups: dict[Group, list[int]] = defaultdict(list)
    for row in rows:
        try:  # bad data in a row leaves its services to the general path, which reports them
            customer = SimpleNamespace(
                minimum_balance_minor=0,
                **{c.key: getattr(row, f"c_{c.key}") for c in _CUSTOMER_KEY},
            )
            service = SimpleNamespace(state_reason=None, deactivated_on=None, **row._mapping)
            tax = effective_tax(customer, classes[customer.class_id], taxes)
            snapshot = service_snapshot(service, customer, plans[row.plan_id], tax, taxes)
            key = (
                snapshot.terms,
                snapshot.billed_until,
                customer.billing_timezone,
                customer.currency,
            )
            if key not in decided:
                decided[key] = _decide_group(snapshot, customer, now=now, policy=policy)
        except Exception:
            log.exception("fast path: services %s left to the general path", row.ids)
            continue
        group = decided[key]
        if group is not None:
            groups[group].extend(row.ids)
    return groups


def _decide_group(
    service: ServiceSnapshot, customer: Any, *, now: datetime, policy: BillingPolicy
) -> Group | None:
    representative = CustomerSnapshot(
        id=0,
        prepaid=True,
        timezone=load_timezone(customer.billing_timezone),
        balance=Money(REPRESENTATIVE_BALANCE_MINOR, customer.currency),
        minimum_balance=Money.zero(customer.currency),
    )
    outcome = decide(representative, [service], now=now, policy=policy)
    if len(outcome.charges) != 1 or outcome.transitions:
        return None
    charge = outcome.charges[0]
    if charge.kind is not ChargeKind.PERIOD or charge.gross.is_zero or charge.gross.is_negative:
        return None
    after = outcome.services[service.id]
    next_due = outcome.next_due[service.id]
    if next_due is None or next_due <= now:
        return None
    key = charge_key(charge)
    return (
        key[key.index(":", len("charge:")) :],  # ":period:<start>", after the service id
        f"{charge.description} {charge.period.start}..{charge.period.last_day}",
        charge.at,
        charge.period.start,
        charge.period.end,
        charge.quantity.numerator,
        charge.quantity.denominator,
        charge.unit_price.minor,
        charge.split.net.minor,
        charge.split.tax.minor,
        charge.gross.minor,
        charge.gross.currency,
        charge.tax.rate_bp,
        charge.tax.inclusive,
        charge.description,
        service.billed_until,
        after.billed_until,
        next_due,
    )


def _apply(
    session: Session,
    group: Group,
    service_ids: list[int],
    *,
    now: datetime,
    bounds: tuple[int, int],
) -> int:
    (
        suffix,
        memo,
        at,
        start,
        end,
        q_num,
        q_den,
        unit,
        net,
        tax,
        gross,
        currency,
        rate_bp,
        inclusive,
        description,
        billed_until,
        new_billed_until,
        next_due,
    ) = group
    accounts = ledger.ensure_accounts(
        session,
        [
            AccountRef.system(AccountKind.REVENUE, currency),
            AccountRef.system(AccountKind.TAX_PAYABLE, currency),
        ],
        now=now,
    )
    revenue = accounts[AccountRef.system(AccountKind.REVENUE, currency)].id
    tax_payable = accounts[AccountRef.system(AccountKind.TAX_PAYABLE, currency)].id
    counts = session.execute(
        APPLY_GROUP,
        {
            "service_ids": service_ids,
            "low": bounds[0],
            "high": bounds[1],
            "billed_until": billed_until,
            "now": now,
            "gross": gross,
            "key_suffix": suffix,
            "entry_kind": EntryKind.CHARGE.value,
            "memo": memo,
            "at": at,
            "revenue_id": revenue,
            "tax_id": tax_payable,
            "net": net,
            "tax": tax,
            "currency": currency,
            "period_start": start,
            "period_end": end,
            "quantity_num": q_num,
            "quantity_den": q_den,
            "unit_price": unit,
            "tax_rate_bp": rate_bp,
            "tax_inclusive": inclusive,
            "description": description,
            "new_billed_until": new_billed_until,
            "next_due": next_due,
        },
    ).one()
    count = int(counts[0])
    ledger.apply_deltas(session, {revenue: net * count, tax_payable: tax * count})
    return count

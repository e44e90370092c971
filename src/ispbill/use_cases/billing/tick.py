"""The tick: everything due up to an instant happens, in time order, exactly once.

Set-oriented and chunked (ARCHITECTURE section 5): a chunk of customers with something due is
claimed (row locks with SKIP LOCKED on PostgreSQL, so several ticks share the work; an immediate
write transaction on SQLite), loaded with a handful of queries, decided by the pure domain
(``domain/billing.decide``) and stored with batched writes, then committed. A crash loses at
most the chunk in flight, which the next tick redoes; uniqueness of charges and ledger keys
makes a repeat harmless.

``ispbill run`` ticks every customer in one process; the schedule (``tick_runs.py``) cuts the
customers into ranges of ids and ticks each range in a job of its own (``within``).

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
from datetime import datetime
from pathlib import Path

from sqlalchemy.exc import InterfaceError, OperationalError, SQLAlchemyError
from sqlalchemy.orm import Session

from ispbill.adapters.db import event_log as events
from ispbill.adapters.db import settings_store
from ispbill.adapters.db.billing_snapshots import Claim, activation_candidates, due_customers
from ispbill.adapters.db.billing_store import store_outcomes
from ispbill.adapters.db.unit_of_work import UnitOfWork
from ispbill.adapters.payments.gateway import PaymentGateway
from ispbill.domain.billing import (
    BillingPolicy,
    Outcome,
)
from ispbill.domain.dates import check_date
from ispbill.domain.ranges import IdRange
from ispbill.use_cases.billing.customer_pending import apply_due
from ispbill.use_cases.billing.evaluation import evaluate_customers
from ispbill.use_cases.billing.fast_path import charge_alike_services
from ispbill.use_cases.billing.scheduled_changes import carry_out_due
from ispbill.use_cases.billing.statements import issue_monthly_statements
from ispbill.use_cases.collections.non_payers import run_collections
from ispbill.use_cases.collections.suspensions import run_windows
from ispbill.use_cases.network import access_changes
from ispbill.use_cases.payments.refill_cards import expire_cards
from ispbill.use_cases.payments.top_ups import request_due_top_ups

ENGINE = "engine"
CUSTOMER_FAILED = "tick.customer_failed"
log = logging.getLogger(__name__)


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
    scheduled_changes: int = 0  # planned plan changes and terminations carried out
    pending_changes: int = 0  # customers' timezone, cycle or invoicing mode applied
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
    within: IdRange | None = None,
) -> TickReport:
    """Run everything due up to ``now``; then the activation pass for funded customers.

    ``workers`` database connections share the set-based fast path (PostgreSQL). ``report``
    (a new one by default) counts each chunk as it commits, so a caller whose tick fails
    part-way can say what was committed: those chunks stand, and the next tick goes on.

    ``within`` a range of customer ids, only those customers' passes run (charges, activations,
    statements, windows, collections): the scheduled tick's ``tick_range`` job. Card expiry
    and automatic top-ups are not a customer range's; the scheduler runs them as tasks of
    their own (``entrypoints/jobs/tasks.py``), so they run here only for the whole base.
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
    # planned changes first: a plan change at the period's end switches before the new period
    # is billed, a termination ends the service before anything past its last day is due
    report.scheduled_changes = carry_out_due(uow_factory, now=now, actor=actor, within=within)
    # a customer's timezone, cycle or invoicing mode planned for this period (waits while a
    # charge of the old period is due: invoicing in arrears, billed below, then applied again)
    report.pending_changes = apply_due(uow_factory, now=now, actor=actor, within=within)
    charge_alike_services(
        uow_factory,
        now=now,
        policy=policy,
        workers=workers,
        committed=fast_chunk,
        # the fast path's range is (low, high]: one below the first id of ours
        customers=None if within is None else (within.low - 1, within.high),
    )
    for claim in (_due_customers(policy, within), _activation_candidates(policy, within)):
        seen: set[int] = set()
        while _run_chunk(uow_factory, now, chunk_size, policy_settings, actor, report, claim, seen):
            if progress:
                progress(report.customers)
    report.pending_changes += apply_due(uow_factory, now=now, actor=actor, within=within)
    report.invoices += issue_monthly_statements(
        uow_factory, now=now, operator=policy_settings, chunk_size=chunk_size, within=within
    )
    # planned suspensions start and end, then collections looks at the customers due for
    # review (new invoices among them)
    windows = run_windows(uow_factory, now=now, chunk_size=chunk_size, within=within)
    for action, count in windows.items():
        report.collections[action] = report.collections.get(action, 0) + count
    collected = run_collections(
        uow_factory, now=now, chunk_size=chunk_size, actor=actor, within=within
    )
    for action, count in collected.actions.items():
        report.collections[action] = report.collections.get(action, 0) + count
    if within is not None:
        report.seconds = time.perf_counter() - started
        return report
    with uow_factory() as uow:
        report.cards_expired = expire_cards(uow, now=now, actor=actor).cards
    if gateways:  # automatic top-ups of the wallets this tick's charges took under a threshold
        request_due_top_ups(uow_factory, now=now, gateways=gateways, actor=actor)
    report.seconds = time.perf_counter() - started
    return report


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
    """``store_outcomes`` and the CoA commands of its transitions in one batch; when the batch
    fails, customer by customer, each in its own savepoint, so only the customer whose writes
    fail is left out."""
    try:
        with uow.session.begin_nested():
            invoices = store_outcomes(
                uow, outcomes, now=now, operator=operator, actor=actor, number_at_commit=True
            )
            access_changes.enqueue_transitions(uow, outcomes)  # the network follows
            return invoices, {}
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
                invoices += store_outcomes(
                    uow, [outcome], now=now, operator=operator, actor=actor, number_at_commit=True
                )
                access_changes.enqueue_transitions(uow, [outcome])
        except (OperationalError, InterfaceError):
            raise
        except Exception as exc:
            skipped[outcome.customer_id] = _skipped(outcome.customer_id, "store", exc)
    return invoices, skipped


def _due_customers(policy: BillingPolicy, within: IdRange | None) -> Claim:
    def claim(session: Session, now: datetime, limit: int, seen: set[int]) -> list[int]:
        return due_customers(session, now, limit, seen, policy=policy, within=within)

    return claim


def _activation_candidates(policy: BillingPolicy, within: IdRange | None) -> Claim:
    def claim(session: Session, now: datetime, limit: int, seen: set[int]) -> list[int]:
        return activation_candidates(session, limit, seen, policy, within)

    return claim

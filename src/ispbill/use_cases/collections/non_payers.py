"""Collections in the engine: apply the non-payer policy to customers, in the tick and at once
after every payment.

The decision is the pure ``domain/collection.evaluate``; this module loads what it needs (the
effective policy, the customer's open invoices, its services), applies the answer (suspend
with reason ``non_payer``, throttle, lift, remind, postpone for a holiday, charge the
reactivation fee) with an event per state move, and schedules the next look with
``next_review_date`` in ``customers.collection_review_at``, so a tick never scans everyone:
it claims only customers whose review is due. Anything that can change the answer sooner moves
the review up: an invoice issued (``invoices.issue_from_charges``), a policy change, a lifted
manual suspension, the end of a promise to pay; a payment re-evaluates in its own transaction
(``engine.reevaluate_customer``).

What collections touches: only its own work. A service suspended by hand (any reason, even
non_payer) is the operator's until lifted; collections suspends only *active* services and
lifts only the ``non_payer`` suspensions it set. A promise to pay (``suspensions.py``) lifts a
suspension or throttle and holds the stage back until it runs out.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from fractions import Fraction
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from ispbill.adapters.db import bulk, settings_store
from ispbill.adapters.db import event_log as events
from ispbill.adapters.db import ledger_store as ledger
from ispbill.adapters.db.billing_snapshots import effective_tax
from ispbill.adapters.db.billing_store import charge_entry
from ispbill.adapters.db.invoice_store import OPEN, IssueRequest, apply_credit, issue_from_charges
from ispbill.adapters.db.models import Charge as ChargeRow
from ispbill.adapters.db.models import (
    Customer,
    CustomerClass,
    Invoice,
    Service,
    ServiceSuspension,
    TaxProfileRow,
)
from ispbill.adapters.db.unit_of_work import UnitOfWork
from ispbill.domain.billing import Charge, ChargeKind
from ispbill.domain.calendar import Period, local_date, local_midnight
from ispbill.domain.collection import (
    CollectionAction,
    CollectionDecision,
    CollectionPolicy,
    CollectionStage,
    CollectionState,
    LiftReason,
    OpenInvoice,
    evaluate,
    next_review_date,
)
from ispbill.domain.customers import BalanceControl
from ispbill.domain.invoicing import DocumentKind
from ispbill.domain.lifecycle import (
    ServiceEvent,
    ServiceState,
    SuspensionReason,
    SuspensionSource,
    SuspensionStatus,
)
from ispbill.domain.money import Money
from ispbill.domain.ranges import IdRange
from ispbill.domain.taxes import NO_TAX, split_tax
from ispbill.use_cases.collections.collection_policy import effective_policy, operator_document
from ispbill.use_cases.network import access_changes
from ispbill.use_cases.notifications import mail_outbox as notifications

ENGINE = "engine"
NON_PAYER = SuspensionReason.NON_PAYER.value


@dataclass
class CollectionReport:
    customers: int = 0
    actions: dict[str, int] = field(default_factory=dict)

    def count(self, action: str) -> None:
        self.actions[action] = self.actions.get(action, 0) + 1


@dataclass
class _Customer:
    """One customer's collection facts, loaded for a chunk."""

    row: Customer
    klass: CustomerClass
    invoices: list[OpenInvoice]
    services: list[Service]
    manual: set[int]  # services under an active manual suspension
    moved: list[Service] = field(default_factory=list)  # what this pass suspended or lifted

    @property
    def auto_suspended(self) -> list[Service]:
        return [
            s
            for s in self.services
            if s.state == ServiceState.SUSPENDED.value
            and s.state_reason == NON_PAYER
            and s.id not in self.manual
        ]

    @property
    def throttled(self) -> list[Service]:
        return [s for s in self.services if s.throttle_down_kbps is not None]

    def state(self) -> CollectionState:
        return CollectionState(
            self.row.currency,
            suspended_non_payer=bool(self.auto_suspended),
            throttled=bool(self.throttled),
        )


def review_customers(
    uow: UnitOfWork, customer_ids: Sequence[int], *, now: datetime, actor: str = ENGINE
) -> CollectionReport:
    """Evaluate and apply the policy for customers the caller holds locked; no commit."""
    report = CollectionReport()
    if not customer_ids:
        return report
    uow.session.flush()  # what the caller changed is read back below
    operator = operator_document(uow)
    settings = settings_store.load(uow)
    lifts_non_payer = NON_PAYER in settings.settled_debt_lifts
    policies: dict[tuple[int, str, int | None], CollectionPolicy] = {}
    for facts in _load(uow.session, list(customer_ids)):
        # one policy per (class, currency, own grace) in a chunk: building it validates
        key = (facts.klass.id, facts.row.currency, facts.row.grace_days)
        policy = policies.get(key)
        if policy is None:
            policy = policies[key] = effective_policy(operator, facts.row, facts.klass)
        _review_one(uow, facts, policy, now=now, actor=actor, lifts=lifts_non_payer, report=report)
        report.customers += 1
    uow.session.flush()
    return report


def _load(session: Session, ids: list[int]) -> list[_Customer]:
    dialect = session.get_bind().dialect.name
    customers = list(session.scalars(select(Customer).where(bulk.id_in(Customer.id, ids, dialect))))
    classes = {row.id: row for row in session.scalars(select(CustomerClass))}
    invoices: dict[int, list[OpenInvoice]] = {cid: [] for cid in ids}
    for row in session.execute(
        select(
            Invoice.customer_id,
            Invoice.number,
            Invoice.due_date,
            Invoice.gross_minor,
            Invoice.paid_minor,
            Invoice.currency,
        ).where(
            bulk.id_in(Invoice.customer_id, ids, dialect),
            Invoice.status.in_(OPEN),
            Invoice.kind == DocumentKind.INVOICE.value,
        )
    ):
        owed = Money(row.gross_minor - row.paid_minor, row.currency)
        invoices[row.customer_id].append(OpenInvoice(row.number, row.due_date, owed))
    services: dict[int, list[Service]] = {cid: [] for cid in ids}
    for service in session.scalars(
        select(Service).where(bulk.id_in(Service.customer_id, ids, dialect)).order_by(Service.id)
    ):
        services[service.customer_id].append(service)
    manual = set(
        session.scalars(
            select(ServiceSuspension.service_id).where(
                bulk.id_in(ServiceSuspension.customer_id, ids, dialect),
                ServiceSuspension.status == SuspensionStatus.ACTIVE.value,
                ServiceSuspension.source == SuspensionSource.MANUAL.value,
            )
        )
    )
    return [
        _Customer(
            c,
            classes[c.class_id],
            invoices[c.id],
            services[c.id],
            {s.id for s in services[c.id]} & manual,
        )
        for c in sorted(customers, key=lambda c: c.id)
    ]


def _review_one(
    uow: UnitOfWork,
    facts: _Customer,
    policy: CollectionPolicy,
    *,
    now: datetime,
    actor: str,
    lifts: bool,
    report: CollectionReport,
) -> None:
    customer = facts.row
    zone = customer.billing_timezone
    today = local_date(now, zone)
    promised = customer.promise_until is not None and customer.promise_until > now
    expired_promise = customer.promise_until is not None and not promised
    decision = evaluate(policy, invoices=facts.invoices, today=today, current=facts.state())
    action = decision.action
    if promised and action in (CollectionAction.SUSPEND, CollectionAction.THROTTLE):
        action = CollectionAction.NONE  # the promise holds the stage back until it runs out
    if action is CollectionAction.LIFT and decision.lift_suspension and not lifts:
        action = CollectionAction.NONE  # the operator lifts non-payers by hand
    moved = 0
    if action is CollectionAction.SUSPEND:
        moved = _suspend(
            uow, facts, decision, now=now, actor=actor, expired_promise=expired_promise
        )
    elif action is CollectionAction.THROTTLE:
        moved = _throttle(
            uow, facts, decision, now=now, actor=actor, expired_promise=expired_promise
        )
    elif action is CollectionAction.LIFT:
        moved = _lift(uow, facts, decision, now=now, actor=actor)
    if moved and policy.notify_suspension:
        _mail_the_move(uow, facts, decision, action, now=now, actor=actor)
    elif action in (CollectionAction.REMIND, CollectionAction.POSTPONE):
        moved = _notify(uow, facts, decision, now=now, actor=actor)
    if moved:
        report.count(action.value)
    if expired_promise or (promised and decision.figures.overdue_total.is_zero):
        customer.promise_until = None
        promised = False
    after = next_review_date(policy, invoices=facts.invoices, today=today, current=facts.state())
    review = local_midnight(after, zone) if after is not None else None
    if promised and customer.promise_until is not None:
        review = min(review, customer.promise_until) if review else customer.promise_until
    customer.collection_review_at = review


def _mail_the_move(
    uow: UnitOfWork,
    facts: _Customer,
    decision: CollectionDecision,
    action: CollectionAction,
    *,
    now: datetime,
    actor: str,
) -> None:
    """Tell the subscriber what this pass did to its services, in the pass's transaction: a
    suspension or throttle, or a lift because the debt was settled (a lift because the policy
    was turned off is the operator's doing and writes nothing)."""
    customer = facts.row
    moved = facts.moved
    if action in (CollectionAction.SUSPEND, CollectionAction.THROTTLE):
        throttled = action is CollectionAction.THROTTLE
        stage = CollectionStage.THROTTLE if throttled else CollectionStage.SUSPEND
        notifications.enqueue_suspension(
            uow, customer, decision, moved, stage=stage, now=now, actor=actor
        )
    elif decision.lift_reason is LiftReason.SETTLED:
        notifications.enqueue_restoration(
            uow, customer, moved, promise_until=None, now=now, actor=actor
        )


def _figures(decision: CollectionDecision, policy_days: int | None = None) -> dict[str, Any]:
    facts = decision.figures
    figures: dict[str, Any] = {
        "days_overdue": facts.days_overdue,
        "overdue_total": str(facts.overdue_total),
        "oldest_invoice": facts.oldest_invoice,
        "oldest_due_date": facts.oldest_due_date.isoformat() if facts.oldest_due_date else None,
    }
    if policy_days is not None:
        figures["days_after_due"] = policy_days
    return figures


def _move(
    uow: UnitOfWork,
    service: Service,
    *,
    to: ServiceState,
    reason: str | None,
    now: datetime,
    actor: str,
    event_reason: str,
    figures: dict[str, Any],
) -> None:
    access_changes.move_service(
        uow,
        service,
        to=to.value,
        reason=reason,
        now=now,
        actor=actor,
        event_reason=event_reason,
        figures=figures,
    )


def _suspend(
    uow: UnitOfWork,
    facts: _Customer,
    decision: CollectionDecision,
    *,
    now: datetime,
    actor: str,
    expired_promise: bool,
) -> int:
    """Suspend the customer's active services (not those an operator holds); how many."""
    figures = _figures(decision) | {"rule": "collection"}
    if expired_promise:
        figures["promise_expired"] = True
    moved = 0
    for service in facts.services:
        if service.state == ServiceState.ACTIVE.value and service.id not in facts.manual:
            moved += 1
            facts.moved.append(service)
            _move(
                uow,
                service,
                to=ServiceState.SUSPENDED,
                reason=NON_PAYER,
                now=now,
                actor=actor,
                event_reason=NON_PAYER,
                figures=figures,
            )
    return moved


def _throttle(
    uow: UnitOfWork,
    facts: _Customer,
    decision: CollectionDecision,
    *,
    now: datetime,
    actor: str,
    expired_promise: bool,
) -> int:
    stage = decision.throttle
    assert stage is not None
    figures = _figures(decision) | {
        "down_kbps": stage.speed_kbps_down,
        "up_kbps": stage.speed_kbps_up,
        "after_days": stage.after_days,
    }
    if expired_promise:
        figures["promise_expired"] = True
    moved = 0
    for service in facts.services:
        if service.state != ServiceState.ACTIVE.value or service.throttle_down_kbps is not None:
            continue
        moved += 1
        facts.moved.append(service)
        service.throttle_down_kbps = stage.speed_kbps_down
        service.throttle_up_kbps = stage.speed_kbps_up
        access_changes.enqueue(
            uow,
            events.record(
                uow,
                now=now,
                actor=actor,
                kind=ServiceEvent.THROTTLED.value,
                subject_type="service",
                subject_id=service.id,
                customer_id=service.customer_id,
                reason=NON_PAYER,
                figures=figures,
            ),
        )
    return moved


def _lift(
    uow: UnitOfWork, facts: _Customer, decision: CollectionDecision, *, now: datetime, actor: str
) -> int:
    assert decision.lift_reason is not None
    why = decision.lift_reason.value
    lifted = facts.auto_suspended if decision.lift_suspension else []
    throttled = facts.throttled if decision.lift_throttle else []
    facts.moved.extend(lifted + throttled)
    for service in lifted:
        _move(
            uow,
            service,
            to=ServiceState.ACTIVE,
            reason=None,
            now=now,
            actor=actor,
            event_reason=why,
            figures=_figures(decision) | {"lifted": NON_PAYER},
        )
    for service in throttled:
        down, up = service.throttle_down_kbps, service.throttle_up_kbps
        service.throttle_down_kbps = None
        service.throttle_up_kbps = None
        access_changes.enqueue(
            uow,
            events.record(
                uow,
                now=now,
                actor=actor,
                kind=ServiceEvent.UNTHROTTLED.value,
                subject_type="service",
                subject_id=service.id,
                customer_id=service.customer_id,
                reason=why,
                figures=_figures(decision) | {"down_kbps": down, "up_kbps": up},
            ),
        )
    if lifted and decision.reactivation_fee is not None:
        charge_reactivation_fee(uow, facts.row, lifted[0], decision.reactivation_fee, now=now)
    return len(lifted) + len(throttled)


def _notify(
    uow: UnitOfWork, facts: _Customer, decision: CollectionDecision, *, now: datetime, actor: str
) -> int:
    """A reminder (or a postponement by a holiday) once per stage, start day and invoice; a
    reminder's e-mail goes to the notifications outbox in the same transaction."""
    stage = decision.stage.value if decision.stage else ""
    on = decision.on.isoformat() if decision.on else ""
    key = f"{decision.action.value}:{stage}:{on}:{decision.figures.oldest_invoice or ''}"
    customer = facts.row
    if customer.collection_reminder == key:
        return 0
    customer.collection_reminder = key
    kind = (
        "collection.reminder"
        if decision.action is CollectionAction.REMIND
        else ("collection.postponed")
    )
    events.record(
        uow,
        now=now,
        actor=actor,
        kind=kind,
        subject_type="customer",
        subject_id=customer.id,
        customer_id=customer.id,
        reason=stage,
        figures=_figures(decision) | {"stage": stage, "starts_on": on},
    )
    if decision.action is CollectionAction.REMIND:
        notifications.enqueue_reminder(uow, customer, decision, key=key, now=now, actor=actor)
    return 1


def charge_reactivation_fee(
    uow: UnitOfWork, customer: Customer, service: Service, fee: Money, *, now: datetime
) -> ChargeRow | None:
    """A real charge through the ledger (wallet debited, revenue and tax credited), invoiced
    at once for a postpaid customer. Once per service and day (its ledger key)."""
    session = uow.session
    klass = session.get(CustomerClass, customer.class_id)
    assert klass is not None
    taxes = {row.id: row for row in session.scalars(select(TaxProfileRow))}
    tax = effective_tax(customer, klass, taxes) or NO_TAX
    today = local_date(now, customer.billing_timezone)
    charge = Charge(
        service_id=service.id,
        kind=ChargeKind.FEE,
        period=Period(today, today + timedelta(days=1)),
        quantity=Fraction(1),
        unit_price=fee,
        split=split_tax(fee, tax),
        at=now,
        tax=tax,
        description="Reactivation fee",
    )
    posted = ledger.post(uow, charge_entry(customer.id, charge), now=now)
    if not posted.created:
        return None
    row = ChargeRow(
        service_id=service.id,
        customer_id=customer.id,
        kind=charge.kind.value,
        period_start=charge.period.start,
        period_end=charge.period.end,
        quantity_num=1,
        quantity_den=1,
        unit_price_minor=fee.minor,
        net_minor=charge.split.net.minor,
        tax_minor=charge.split.tax.minor,
        gross_minor=charge.split.gross.minor,
        currency=fee.currency,
        tax_rate_bp=tax.rate_bp,
        tax_inclusive=tax.inclusive,
        description=charge.description,
        charged_at=now,
        transaction_id=posted.transaction.id,
        invoice_id=None,
    )
    session.add(row)
    session.flush()
    if customer.balance_control == BalanceControl.POSTPAID.value:
        operator = settings_store.load(uow)
        issue_from_charges(
            session,
            IssueRequest(
                customer=customer,
                charges=[row],
                issue_date=today,
                key=f"invoice:fee:{service.id}:{today.isoformat()}",
            ),
            now=now,
            operator=operator,
        )
        if customer.use_credit_automatically:
            apply_credit(session, customer, now=now)
    return row


# -- the tick's pass ---------------------------------------------------------------------------


def due_for_review(
    session: Session, now: datetime, limit: int, after: int, within: IdRange | None = None
) -> list[int]:
    """Customers whose review is due, in id order, locked like the billing passes."""
    high = within.high if within is not None else None
    after = max(after, within.low - 1) if within is not None else after
    query = (
        select(Customer.id)
        .where(
            Customer.collection_review_at <= now,
            Customer.id > after,
            *(() if high is None else (Customer.id <= high,)),
        )
        .order_by(Customer.id)
        .limit(limit)
    )
    if session.get_bind().dialect.name == "postgresql":
        query = query.with_for_update(skip_locked=True, of=Customer)
    return list(session.scalars(query))


def run_collections(
    uow_factory: Callable[[], UnitOfWork],
    *,
    now: datetime,
    chunk_size: int = 1000,
    actor: str = ENGINE,
    within: IdRange | None = None,
) -> CollectionReport:
    """The tick's collection pass: chunks of customers whose review is due (``within`` a range
    of ids, when given), each committed."""
    total = CollectionReport()
    after = 0
    while True:
        with uow_factory() as uow:
            uow.begin_write()
            ids = due_for_review(uow.session, now, chunk_size, after, within)
            if not ids:
                return total
            after = ids[-1]
            report = review_customers(uow, ids, now=now, actor=actor)
            uow.commit()
        total.customers += report.customers
        for action, count in report.actions.items():
            total.actions[action] = total.actions.get(action, 0) + count


def mark_for_review(session: Session, customer_id: int, at: datetime) -> None:
    """Move a customer's review up to ``at`` (never later than it already is)."""
    customer = session.get(Customer, customer_id)
    if customer is not None and (
        customer.collection_review_at is None or customer.collection_review_at > at
    ):
        customer.collection_review_at = at

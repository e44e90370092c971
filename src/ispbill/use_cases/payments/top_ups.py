"""Automatic top-up (CRM.COM): when a charge takes a wallet under its threshold, charge the
saved payment method once, retry a failure with back-off a bounded number of times, then give up
with a ``top_up.failed`` event.

A rule per wallet holds the threshold, the amount, the gateway and the saved method. The
*trigger* of a top-up is the ledger transaction of the charge that brought the balance under the
threshold; each request is a ``TopUpAttempt`` unique per (trigger, attempt number), so the same
trigger is never topped up twice, however many ticks run, concurrently or after a crash.

The tick calls ``request_due_top_ups`` after billing, in three steps:

1. open: for each wallet under its threshold whose latest crossing was a charge with no attempt
   yet, create attempt 1 (committed before the gateway is asked, under the customer's lock);
2. retry: for each failed attempt whose back-off has passed, create the next one, unless the
   rule was disabled or the balance recovered meanwhile;
3. send: ask the gateway for each requested attempt, outside any transaction, then store the
   answer under the customer's lock. Success credits the wallet (a ``gateway`` payment keyed by
   the gateway's charge id) in the same transaction; pending waits for the webhook; failure
   schedules the retry or gives up. When the gateway cannot be reached the attempt stays
   requested and is sent again on the next tick with the same reference, which the gateways
   treat as the same charge (Stripe's idempotency key; the sandbox derives the charge id).
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Select, and_, select
from sqlalchemy.exc import IntegrityError

from ispbill.adapters.db import event_log as events
from ispbill.adapters.db import ledger_store as ledger
from ispbill.adapters.db.lookups import by_id
from ispbill.adapters.db.models import (
    Customer,
    LedgerAccount,
    LedgerPosting,
    LedgerTransaction,
    TopUpAttempt,
    TopUpRule,
)
from ispbill.adapters.db.unit_of_work import UnitOfWork
from ispbill.adapters.payments.gateway import (
    GATEWAY_NAMES,
    ChargeResult,
    ChargeStatus,
    GatewayUnavailable,
    PaymentGateway,
    TopUpRequest,
)
from ispbill.domain.errors import Conflict, NotFound, ValidationError
from ispbill.domain.ledger import AccountKind, AccountRef, EntryKind
from ispbill.domain.money import Money
from ispbill.domain.payments import TopUpOutcome, TopUpStatus
from ispbill.use_cases.payments.gateway_credit import credit, lock

log = logging.getLogger(__name__)

ENGINE = "engine"
MAX_ATTEMPTS = 3
FIRST_RETRY_DELAY = timedelta(hours=1)
BACKOFF_FACTOR = 4  # 1 h after the first failure, 4 h after the second, ...


def retry_delay(attempt_no: int) -> timedelta:
    """How long after failed attempt ``attempt_no`` the next one is made."""
    factor: int = BACKOFF_FACTOR ** (attempt_no - 1)
    return FIRST_RETRY_DELAY * factor


# -- rules -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class TopUpRuleSpec:
    customer_id: int
    threshold: str
    amount: str
    method: str
    gateway: str = "sandbox"
    gateway_customer: str | None = None
    enabled: bool = True


def set_rule(uow: UnitOfWork, *, spec: TopUpRuleSpec, now: datetime, actor: str) -> TopUpRule:
    """Create or replace the rule of the customer's wallet; it is armed from ``now``."""
    uow.begin_write()
    customer = by_id(uow.session, Customer, spec.customer_id, field="customer")
    currency = customer.currency
    threshold = Money.from_major(spec.threshold, currency, field="threshold")
    amount = Money.from_major(spec.amount, currency, field="amount")
    if not amount.is_positive:
        raise ValidationError("amount", "must be greater than zero")
    if spec.gateway not in GATEWAY_NAMES:
        raise ValidationError("gateway", f"must be one of: {', '.join(GATEWAY_NAMES)}")
    method = spec.method.strip()
    if not method or len(method) > 255:
        raise ValidationError("method", "the saved payment method's reference, e.g. pm_1234")
    rule = uow.session.scalars(
        select(TopUpRule).where(
            TopUpRule.customer_id == customer.id, TopUpRule.currency == currency
        )
    ).one_or_none()
    if rule is None:
        rule = TopUpRule(customer_id=customer.id, currency=currency, created_at=now)
        uow.session.add(rule)
    rule.threshold_minor = threshold.minor
    rule.amount_minor = amount.minor
    rule.gateway = spec.gateway
    rule.method_reference = method
    rule.gateway_customer_reference = (spec.gateway_customer or "").strip() or None
    rule.enabled = spec.enabled
    rule.armed_at = now
    rule.updated_at = now
    uow.session.flush()
    events.record(
        uow,
        now=now,
        actor=actor,
        kind="top_up_rule.set",
        subject_type="top_up_rule",
        subject_id=rule.id,
        customer_id=customer.id,
        figures={
            "threshold": str(threshold),
            "amount": str(amount),
            "gateway": spec.gateway,
            "enabled": spec.enabled,
        },
    )
    uow.commit()
    return rule


def disable_rule(uow: UnitOfWork, *, customer_id: int, now: datetime, actor: str) -> TopUpRule:
    uow.begin_write()
    rule = _rule_of(uow, customer_id)
    rule.enabled = False
    rule.updated_at = now
    events.record(
        uow,
        now=now,
        actor=actor,
        kind="top_up_rule.disabled",
        subject_type="top_up_rule",
        subject_id=rule.id,
        customer_id=rule.customer_id,
    )
    uow.commit()
    return rule


def delete_rule(uow: UnitOfWork, *, customer_id: int, now: datetime, actor: str) -> None:
    """Delete a rule that never requested anything; one with attempts is kept (disable it)."""
    uow.begin_write()
    rule = _rule_of(uow, customer_id)
    used = uow.session.scalars(
        select(TopUpAttempt.id).where(TopUpAttempt.rule_id == rule.id).limit(1)
    ).first()
    if used is not None:
        raise Conflict("customer", "the rule has top-up history; disable it instead")
    events.record(
        uow,
        now=now,
        actor=actor,
        kind="top_up_rule.deleted",
        subject_type="top_up_rule",
        subject_id=rule.id,
        customer_id=rule.customer_id,
    )
    uow.session.delete(rule)
    uow.commit()


def _rule_of(uow: UnitOfWork, customer_id: int) -> TopUpRule:
    customer = by_id(uow.session, Customer, customer_id, field="customer")
    rule = uow.session.scalars(
        select(TopUpRule).where(
            TopUpRule.customer_id == customer.id, TopUpRule.currency == customer.currency
        )
    ).one_or_none()
    if rule is None:
        raise NotFound("top-up rule", customer_id, field="customer")
    return rule


@dataclass(frozen=True)
class RuleView:
    rule: TopUpRule
    customer: str
    balance: Money


def list_rules(uow: UnitOfWork) -> list[RuleView]:
    rows = uow.session.execute(
        select(TopUpRule, Customer.name)
        .join(Customer, Customer.id == TopUpRule.customer_id)
        .order_by(Customer.name)
    ).all()
    balances = ledger.wallet_balances(uow.session, [(r.customer_id, r.currency) for r, _ in rows])
    return [RuleView(rule, name, balances[rule.customer_id]) for rule, name in rows]


def attempts(uow: UnitOfWork, customer_id: int | None = None) -> list[TopUpAttempt]:
    query = select(TopUpAttempt).order_by(TopUpAttempt.id)
    if customer_id is not None:
        query = query.where(TopUpAttempt.customer_id == customer_id)
    return list(uow.session.scalars(query))


# -- the tick's step -------------------------------------------------------------------------


@dataclass
class TopUpReport:
    requested: int = 0
    retried: int = 0
    succeeded: int = 0
    pending: int = 0
    failed: int = 0
    gave_up: int = 0
    unreachable: int = 0


def request_due_top_ups(
    uow_factory: Callable[[], UnitOfWork],
    *,
    now: datetime,
    gateways: Mapping[str, PaymentGateway],
    actor: str = ENGINE,
) -> TopUpReport:
    """Open attempts for new triggers and due retries, then send every requested attempt."""
    report = TopUpReport()
    if not gateways:
        return report
    names = sorted(gateways)
    with uow_factory() as uow:
        under = list(uow.session.execute(_under_threshold(names)))
        retries = list(
            uow.session.execute(
                select(TopUpAttempt.id, TopUpAttempt.customer_id).where(
                    TopUpAttempt.status == TopUpStatus.FAILED.value,
                    TopUpAttempt.next_retry_at <= now,
                    TopUpAttempt.gateway.in_(names),
                )
            )
        )
    for rule_id, customer_id in under:
        with uow_factory() as uow:
            report.requested += _open_attempt(uow, rule_id, customer_id, now=now, actor=actor)
    for attempt_id, customer_id in retries:
        with uow_factory() as uow:
            report.retried += _open_retry(uow, attempt_id, customer_id, now=now, actor=actor)
    with uow_factory() as uow:
        requested = list(
            uow.session.execute(
                select(TopUpAttempt.id, TopUpAttempt.customer_id)
                .where(
                    TopUpAttempt.status == TopUpStatus.REQUESTED.value,
                    TopUpAttempt.gateway.in_(names),
                )
                .order_by(TopUpAttempt.id)
            )
        )
    for attempt_id, customer_id in requested:
        _send(uow_factory, attempt_id, customer_id, gateways, now=now, actor=actor, report=report)
    return report


def _under_threshold(gateways: list[str]) -> Select[int, int]:
    """Enabled rules whose wallet is below the threshold: a superset of the due triggers."""
    return (
        select(TopUpRule.id, TopUpRule.customer_id)
        .join(
            LedgerAccount,
            and_(
                LedgerAccount.customer_id == TopUpRule.customer_id,
                LedgerAccount.kind == AccountKind.WALLET.value,
                LedgerAccount.currency == TopUpRule.currency,
            ),
        )
        .where(
            TopUpRule.enabled.is_(True),
            TopUpRule.gateway.in_(gateways),
            LedgerAccount.balance_minor < TopUpRule.threshold_minor,
        )
        .order_by(TopUpRule.customer_id)
    )


def crossing_charge(uow: UnitOfWork, rule: TopUpRule) -> int | None:
    """The ledger transaction that last took the wallet from at or above the threshold to under
    it, when it is a charge recorded since the rule was armed; else ``None``.

    Walks the wallet's postings back from its current balance, newest first.
    """
    wallet = AccountRef.wallet(rule.customer_id, rule.currency)
    rows = uow.session.execute(
        select(LedgerTransaction.id, LedgerTransaction.kind, LedgerPosting.amount_minor)
        .join(LedgerPosting, LedgerPosting.transaction_id == LedgerTransaction.id)
        .join(LedgerAccount, LedgerAccount.id == LedgerPosting.account_id)
        .where(LedgerAccount.code == wallet.code, LedgerTransaction.recorded_at >= rule.armed_at)
        .order_by(LedgerTransaction.id.desc(), LedgerPosting.id.desc())
    )
    after = ledger.wallet_balance(uow.session, rule.customer_id, rule.currency).minor
    for transaction_id, kind, amount in rows:
        before = after - int(amount)
        if before >= rule.threshold_minor > after:
            return transaction_id if kind == EntryKind.CHARGE.value else None
        after = before
    return None


def trigger_key(rule: TopUpRule, transaction_id: int) -> str:
    return f"rule:{rule.id}:transaction:{transaction_id}"


def _open_attempt(
    uow: UnitOfWork, rule_id: int, customer_id: int, *, now: datetime, actor: str
) -> int:
    uow.begin_write()
    lock(uow, customer_id)
    rule = uow.session.get(TopUpRule, rule_id)
    if rule is None or not rule.enabled:
        return 0
    balance = ledger.wallet_balance(uow.session, rule.customer_id, rule.currency)
    if balance.minor >= rule.threshold_minor:
        return 0
    transaction_id = crossing_charge(uow, rule)
    if transaction_id is None:
        return 0
    key = trigger_key(rule, transaction_id)
    if uow.session.scalars(select(TopUpAttempt.id).where(TopUpAttempt.trigger_key == key)).first():
        return 0  # this trigger has been topped up (or is being): never twice
    attempt = _new_attempt(rule, key, 1, now)
    try:
        with uow.session.begin_nested():
            uow.session.add(attempt)
            uow.session.flush()
    except IntegrityError:  # another tick opened it first
        return 0
    events.record(
        uow,
        now=now,
        actor=actor,
        kind="top_up.requested",
        subject_type="top_up_attempt",
        subject_id=attempt.id,
        customer_id=rule.customer_id,
        reason="balance under threshold",
        figures={
            "balance": str(balance),
            "threshold": str(Money(rule.threshold_minor, rule.currency)),
            "amount": str(Money(rule.amount_minor, rule.currency)),
            "trigger_transaction": transaction_id,
            "attempt": 1,
        },
    )
    uow.commit()
    return 1


def _new_attempt(rule: TopUpRule, key: str, attempt_no: int, now: datetime) -> TopUpAttempt:
    return TopUpAttempt(
        rule_id=rule.id,
        customer_id=rule.customer_id,
        trigger_key=key,
        attempt_no=attempt_no,
        reference=f"tu_{uuid.uuid4().hex}",
        status=TopUpStatus.REQUESTED.value,
        amount_minor=rule.amount_minor,
        currency=rule.currency,
        gateway=rule.gateway,
        requested_at=now,
    )


def _open_retry(
    uow: UnitOfWork, attempt_id: int, customer_id: int, *, now: datetime, actor: str
) -> int:
    uow.begin_write()
    lock(uow, customer_id)
    failed = uow.session.get(TopUpAttempt, attempt_id)
    if failed is None or failed.status != TopUpStatus.FAILED.value or failed.next_retry_at is None:
        return 0
    if failed.next_retry_at > now:
        return 0
    failed.next_retry_at = None  # consumed: this failure is retried once
    rule = uow.session.get(TopUpRule, failed.rule_id)
    assert rule is not None
    balance = ledger.wallet_balance(uow.session, rule.customer_id, rule.currency)
    reason = None
    if not rule.enabled:
        reason = "rule disabled"
    elif balance.minor >= rule.threshold_minor:
        reason = "balance back at or above the threshold"
    if reason is not None:
        _event(uow, failed, "top_up.cancelled", now, actor, reason=reason, balance=str(balance))
        uow.commit()
        return 0
    attempt = _new_attempt(rule, failed.trigger_key, failed.attempt_no + 1, now)
    try:
        with uow.session.begin_nested():
            uow.session.add(attempt)
            uow.session.flush()
    except IntegrityError:
        return 0
    _event(uow, attempt, "top_up.requested", now, actor, reason="retry", balance=str(balance))
    uow.commit()
    return 1


def _send(
    uow_factory: Callable[[], UnitOfWork],
    attempt_id: int,
    customer_id: int,
    gateways: Mapping[str, PaymentGateway],
    *,
    now: datetime,
    actor: str,
    report: TopUpReport,
) -> None:
    with uow_factory() as uow:
        attempt = uow.session.get(TopUpAttempt, attempt_id)
        rule = uow.session.get(TopUpRule, attempt.rule_id) if attempt else None
        if attempt is None or rule is None or attempt.status != TopUpStatus.REQUESTED.value:
            return
        request = TopUpRequest(
            reference=attempt.reference,
            customer_id=attempt.customer_id,
            amount=Money(attempt.amount_minor, attempt.currency),
            method_reference=rule.method_reference,
            gateway_customer_reference=rule.gateway_customer_reference,
        )
        gateway = gateways[attempt.gateway]
    try:
        result = gateway.charge_saved_method(request)  # no transaction is open meanwhile
    except GatewayUnavailable as exc:
        log.warning("top-up %s: gateway unreachable, will resend: %s", request.reference, exc)
        report.unreachable += 1
        with uow_factory() as uow:
            uow.begin_write()
            row = uow.session.get(TopUpAttempt, attempt_id)
            if row is not None and row.status == TopUpStatus.REQUESTED.value:
                row.error = f"gateway unreachable: {exc}"
                uow.commit()
        return
    with uow_factory() as uow:
        uow.begin_write()
        lock(uow, customer_id)
        attempt = uow.session.get(TopUpAttempt, attempt_id)
        assert attempt is not None
        uow.session.refresh(attempt)
        if attempt.status != TopUpStatus.REQUESTED.value:
            return  # another tick (or the webhook) stored the answer first
        outcome = store_result(uow, attempt, result, now=now, actor=actor)
        uow.commit()
    if outcome == TopUpOutcome.SUCCEEDED.value:
        report.succeeded += 1
    elif outcome == TopUpOutcome.PENDING.value:
        report.pending += 1
    elif outcome == TopUpOutcome.GAVE_UP.value:
        report.gave_up += 1
    else:
        report.failed += 1


def store_result(
    uow: UnitOfWork, attempt: TopUpAttempt, result: ChargeResult, *, now: datetime, actor: str
) -> str:
    """Store the gateway's answer for a requested attempt (the caller holds the lock and
    commits). Returns succeeded, pending, retry_scheduled or gave_up."""
    if result.charge_id and attempt.gateway_charge_id is None:
        attempt.gateway_charge_id = result.charge_id
    match result.status:
        case ChargeStatus.SUCCEEDED:
            complete(uow, attempt, amount=None, received_at=now, now=now, actor=actor)
            return TopUpOutcome.SUCCEEDED.value
        case ChargeStatus.PENDING:
            attempt.status = TopUpStatus.PENDING.value
            _event(uow, attempt, "top_up.pending", now, actor, charge=result.charge_id)
            return TopUpOutcome.PENDING.value
        case ChargeStatus.FAILED:
            return fail(uow, attempt, error=result.error or "declined", now=now, actor=actor)


def complete(
    uow: UnitOfWork,
    attempt: TopUpAttempt,
    *,
    amount: Money | None,
    received_at: datetime,
    now: datetime,
    actor: str,
) -> bool:
    """Credit the attempt's money (once per gateway charge id) and mark it succeeded; a
    scheduled retry of it is cancelled. Returns whether a payment was created now."""
    if attempt.gateway_charge_id is None:
        raise ValidationError("charge", f"top-up {attempt.reference} has no gateway charge id")
    recorded = credit(
        uow,
        gateway=attempt.gateway,
        external_id=attempt.gateway_charge_id,
        customer_id=attempt.customer_id,
        amount=amount if amount is not None else Money(attempt.amount_minor, attempt.currency),
        received_at=received_at,
        now=now,
        actor=actor,
    )
    attempt.status = TopUpStatus.SUCCEEDED.value
    attempt.payment_id = recorded.payment.id
    attempt.completed_at = attempt.completed_at or now
    attempt.next_retry_at = None
    attempt.error = None
    _event(
        uow,
        attempt,
        "top_up.succeeded",
        now,
        actor,
        payment=recorded.payment.id,
        amount=str(Money(recorded.payment.amount_minor, recorded.payment.currency)),
    )
    return recorded.created


def fail(uow: UnitOfWork, attempt: TopUpAttempt, *, error: str, now: datetime, actor: str) -> str:
    """Mark a requested or pending attempt failed; schedule the next one with back-off, or give
    up after ``MAX_ATTEMPTS`` with a ``top_up.failed`` event."""
    attempt.status = TopUpStatus.FAILED.value
    attempt.error = error
    attempt.completed_at = now
    if attempt.attempt_no < MAX_ATTEMPTS:
        attempt.next_retry_at = now + retry_delay(attempt.attempt_no)
        _event(
            uow,
            attempt,
            "top_up.retry_scheduled",
            now,
            actor,
            reason=error,
            retry_at=attempt.next_retry_at.isoformat(),
        )
        return TopUpOutcome.RETRY_SCHEDULED.value
    attempt.next_retry_at = None
    _event(uow, attempt, "top_up.failed", now, actor, reason=error, attempts=attempt.attempt_no)
    return TopUpOutcome.GAVE_UP.value


def _event(
    uow: UnitOfWork,
    attempt: TopUpAttempt,
    kind: str,
    now: datetime,
    actor: str,
    *,
    reason: str = "",
    **figures: object,
) -> None:
    events.record(
        uow,
        now=now,
        actor=actor,
        kind=kind,
        subject_type="top_up_attempt",
        subject_id=attempt.id,
        customer_id=attempt.customer_id,
        reason=reason,
        figures={
            "attempt": attempt.attempt_no,
            "amount": str(Money(attempt.amount_minor, attempt.currency)),
            "trigger": attempt.trigger_key,
            **figures,
        },
    )

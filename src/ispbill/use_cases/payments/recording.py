"""Payments: money received, credited exactly once, with immediate effect on service state.

CRM.COM seed: "Credit wallet transactions are created when the wallet receives a payment" and
"Deactivated subscriptions are reactivated once the outstanding balance is settled". A payment
is applied to open invoices oldest first; the rest becomes credit (UISP). In the same unit of
work the customer is re-evaluated by the engine, so a deactivated prepaid service the wallet
now covers is charged and reactivated, and a credit-limit block whose debt is settled is lifted.

Exactly once. A payment is keyed by its idempotency key (the API's per-token key, a bank line's
or a gateway event's name) or, without one, by ``payment:<customer id>:<method>:<reference>``.
A reference is the payer's (a receipt number, a transfer id), not a global key: real bank data
repeats references across payers, so the stored rule is unique (customer, method, reference).
Recording again:

* with the same key, or the same customer, method and reference, *and* the same amount and
  currency is the same payment: it is answered with the stored payment (``created`` False) and
  nothing is credited;
* with the same customer, method and reference but another amount is refused (``Conflict`` on
  ``reference``: a typo, or a replay with altered figures), and so is a key already used for a
  payment with other figures (``Conflict`` on ``idempotency_key``);
* with a reference another customer's payment already carries is a new payment of its own.
  Another customer's payment is never looked at, so it can never be answered or revealed.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import select

from ispbill.adapters.db import event_log as events
from ispbill.adapters.db import ledger_store as ledger
from ispbill.adapters.db import settings_store
from ispbill.adapters.db.invoice_store import apply_credit
from ispbill.adapters.db.lookups import MAX_ID
from ispbill.adapters.db.models import Customer, Payment, Service
from ispbill.adapters.db.unit_of_work import UnitOfWork
from ispbill.domain.calendar import load_timezone, local_date, local_midnight
from ispbill.domain.dates import check_date
from ispbill.domain.errors import Conflict, NotFound, ValidationError
from ispbill.domain.ledger import AccountRef, EntryKind, transfer
from ispbill.domain.money import Money
from ispbill.domain.payments import BUILTIN_METHODS, PaymentMethod, method_account
from ispbill.use_cases.billing.reevaluation import reevaluate_customer

METHOD_ACCOUNTS = BUILTIN_METHODS  # plus the operator's own (setting payment_methods)


@dataclass(frozen=True)
class NewPayment:
    customer_id: int
    # what an operator typed (in ``currency``, else the customer's), or the Money a gateway or a
    # bank statement reported (its own currency; ``currency`` is then not read)
    amount: Money | str
    currency: str | None = None
    method: str = PaymentMethod.CASH.value
    reference: str | None = None
    idempotency_key: str | None = None
    received_at: datetime | None = None
    # the day the money arrived (the bank's value date, a receipt's day), separate from when it
    # was typed: its local midnight in the customer's billing timezone (issue 17)
    received_on: date | None = None


@dataclass(frozen=True)
class Recorded:
    payment: Payment
    created: bool
    applied: Money


def record_payment(uow: UnitOfWork, *, spec: NewPayment, now: datetime, actor: str) -> Recorded:
    """Credit the wallet once per key (or customer + method + reference); re-evaluate the
    customer. An exact repeat returns the stored payment; a clash is a ``Conflict``."""
    recorded = post_payment(uow, spec=spec, now=now, actor=actor)
    uow.commit()
    return recorded


def post_payment(uow: UnitOfWork, *, spec: NewPayment, now: datetime, actor: str) -> Recorded:
    """``record_payment`` without the commit, for use cases that store more in the same unit of
    work (a bank statement line and its payment commit together). It begins the write."""
    if spec.received_at is not None:
        check_date("received_at", spec.received_at)
    customer = lock_customer(uow, spec.customer_id)
    received_at = spec.received_at
    if spec.received_on is not None and received_at is not None:
        raise ValidationError("received_on", "give received_on or received_at, not both")
    if spec.received_on is not None:
        received_at = received_at_of(spec.received_on, customer, now=now)
    if isinstance(spec.amount, Money):
        amount = spec.amount
    else:
        currency = (spec.currency or customer.currency).strip().upper()
        amount = Money.from_major(spec.amount, currency, field="amount")
    return credit_wallet(
        uow,
        customer=customer,
        amount=amount,
        method=spec.method,
        reference=spec.reference,
        idempotency_key=spec.idempotency_key,
        received_at=received_at,
        now=now,
        actor=actor,
    )


def received_at_of(day: date, customer: Customer, *, now: datetime) -> datetime:
    """A received day as an instant: its local midnight (never a day after today)."""
    check_date("received_on", day)
    zone = load_timezone(customer.billing_timezone)
    if day > local_date(now, zone):
        raise ValidationError("received_on", f"{day} is in the future; money arrives by today")
    return local_midnight(day, zone)


def credit_wallet(
    uow: UnitOfWork,
    *,
    customer: Customer,
    amount: Money,
    method: str,
    reference: str | None,
    idempotency_key: str | None,
    received_at: datetime | None,
    now: datetime,
    actor: str,
) -> Recorded:
    """The core of a payment, inside a write the caller began and under the customer's lock
    (``lock_customer``): credit ``amount`` once, apply it to open invoices, re-evaluate the
    customer. It never commits; the use case that called it does (``record_payment``, a bank
    line's assignment, a gateway's webhook with its checkout)."""
    if received_at is not None:
        check_date("received_at", received_at)
    session = uow.session
    currency = amount.currency
    if currency != customer.currency:
        raise ValidationError(
            "currency",
            f"payment in {currency} refused: the wallet of {customer.name!r} is in {customer.currency}",
        )
    if not amount.is_positive:
        raise ValidationError("amount", "must be greater than zero")
    account = method_account(method, settings_store.load(uow).payment_methods)
    key = idempotency_key or (f"payment:{customer.id}:{method}:{reference}" if reference else None)
    if key is None:
        raise ValidationError("idempotency_key", "required when there is no reference")
    existing = _existing(uow, key, customer, method, reference, amount)
    if existing is not None:
        return Recorded(existing, created=False, applied=Money.zero(currency))
    received = received_at or now
    posted = ledger.post(
        uow,
        transfer(
            key=key,
            kind=EntryKind.PAYMENT,
            debit=AccountRef.system(account, currency),
            credit=AccountRef.wallet(customer.id, currency),
            amount=amount,
            effective_at=received,
            memo=f"{method} payment {reference or ''}".strip(),
            customer_id=customer.id,
        ),
        now=now,
    )
    payment = Payment(
        customer_id=customer.id,
        method=method,
        amount_minor=amount.minor,
        currency=currency,
        reference=reference,
        idempotency_key=key,
        received_at=received,
        recorded_at=now,
        transaction_id=posted.transaction.id,
        actor=actor,
    )
    session.add(payment)
    session.flush()
    applied = apply_credit(session, customer, now=now, payment_id=payment.id, limit=amount)
    events.record(
        uow,
        now=now,
        actor=actor,
        kind="payment.received",
        subject_type="payment",
        subject_id=payment.id,
        customer_id=customer.id,
        reason=method,
        figures={
            "amount": str(amount),
            "applied_to_invoices": str(applied),
            "reference": reference,
            "received_at": received.isoformat(),
        },
    )
    reevaluate_customer(uow, customer.id, now=now, actor=actor)
    return Recorded(payment, created=True, applied=applied)


def _existing(
    uow: UnitOfWork,
    key: str,
    customer: Customer,
    method: str,
    reference: str | None,
    amount: Money,
) -> Payment | None:
    """The payment this call repeats, if any; a reference or key already used with other
    figures is refused. Only this customer's payments are matched by reference."""
    session = uow.session
    if reference:
        by_reference = session.scalars(
            select(Payment).where(
                Payment.customer_id == customer.id,
                Payment.method == method,
                Payment.reference == reference,
            )
        ).first()
        if by_reference is not None:
            if not _same_amount(by_reference, amount):
                raise Conflict(
                    "reference",
                    f"{method} reference {reference!r} is already recorded for "
                    f"{customer.name!r} as payment {by_reference.id} of "
                    f"{Money(by_reference.amount_minor, by_reference.currency)}; a repeat must "
                    "have the same amount and currency, another payment needs its own reference",
                )
            return by_reference
    by_key = session.scalars(select(Payment).where(Payment.idempotency_key == key)).first()
    if by_key is None:
        return None
    same = (by_key.customer_id, by_key.method, by_key.reference) == (
        customer.id,
        method,
        reference,
    )
    if not (same and _same_amount(by_key, amount)):
        raise Conflict(
            "idempotency_key",
            "already used for a payment with other figures (customer, amount, method or "
            "reference); a new payment needs a new key",
        )
    return by_key


def _same_amount(payment: Payment, amount: Money) -> bool:
    return (payment.amount_minor, payment.currency) == (amount.minor, amount.currency)


def lock_customer(uow: UnitOfWork, customer_id: int) -> Customer:
    """Begin the write and take the customer's row lock, the per-customer mutex shared with the
    tick."""
    uow.begin_write()
    return take_customer_lock(uow, customer_id)


def lock_service(uow: UnitOfWork, service_id: int) -> tuple[Customer, Service]:
    """``lock_customer`` for the customer of a service, then the service, loaded under the lock.

    A service never changes customer, so its customer is read before the lock; that read is then
    ended, because the lock's transaction must be the first (SQLite: BEGIN IMMEDIATE)."""
    if not 0 < service_id <= MAX_ID:
        raise NotFound("service", service_id, field="service")
    customer_id = uow.session.scalar(select(Service.customer_id).where(Service.id == service_id))
    if customer_id is None:
        raise NotFound("service", service_id, field="service")
    uow.session.rollback()
    customer = lock_customer(uow, customer_id)
    service = uow.session.get(Service, service_id)
    assert service is not None  # services are never deleted
    return customer, service


def take_customer_lock(uow: UnitOfWork, customer_id: int) -> Customer:
    """The customer's row lock (PostgreSQL) inside a write the caller already began."""
    customer = uow.session.get(Customer, customer_id) if 0 < customer_id <= MAX_ID else None
    if customer is None:
        raise NotFound("customer", customer_id, field="customer")
    if uow.dialect == "postgresql":
        uow.session.execute(select(Customer.id).where(Customer.id == customer.id).with_for_update())
        uow.session.refresh(customer)
    return customer

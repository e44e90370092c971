"""Payments: money received, credited exactly once, with immediate effect on service state.

CRM.COM seed: "Credit wallet transactions are created when the wallet receives a payment" and
"Deactivated subscriptions are reactivated once the outstanding balance is settled". A payment
is applied to open invoices oldest first; the rest becomes credit (UISP). In the same unit of
work the customer is re-evaluated by the engine, so a deactivated prepaid service the wallet
now covers is charged and reactivated, and a credit-limit block whose debt is settled is lifted.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select

from ispbill.adapters.db.models import Customer, Payment
from ispbill.adapters.db.unit_of_work import UnitOfWork
from ispbill.domain.dates import check_date
from ispbill.domain.errors import ValidationError
from ispbill.domain.ledger import AccountRef, EntryKind, transfer
from ispbill.domain.money import Money
from ispbill.domain.payments import BUILTIN_METHODS, method_account
from ispbill.services import events, ledger
from ispbill.services import settings as settings_store
from ispbill.services.engine import reevaluate_customer
from ispbill.services.invoices import apply_credit
from ispbill.services.lookup import by_id_or_name

METHOD_ACCOUNTS = BUILTIN_METHODS  # plus the operator's own (setting payment_methods)


@dataclass(frozen=True)
class NewPayment:
    customer: str
    amount: str
    currency: str | None = None
    method: str = "cash"
    reference: str | None = None
    idempotency_key: str | None = None
    received_at: datetime | None = None


@dataclass(frozen=True)
class Recorded:
    payment: Payment
    created: bool
    applied: Money


def record_payment(uow: UnitOfWork, *, spec: NewPayment, now: datetime, actor: str) -> Recorded:
    """Credit the wallet once per key (or method + reference); re-evaluate the customer."""
    recorded = post_payment(uow, spec=spec, now=now, actor=actor)
    uow.commit()
    return recorded


def post_payment(uow: UnitOfWork, *, spec: NewPayment, now: datetime, actor: str) -> Recorded:
    """``record_payment`` without the commit, for use cases that store more in the same unit of
    work (a bank statement line and its payment commit together)."""
    if spec.received_at is not None:
        check_date("received_at", spec.received_at)
    session = uow.session
    customer = lock_customer(uow, spec.customer)
    currency = (spec.currency or customer.currency).strip().upper()
    amount = Money.from_major(spec.amount, currency, field="amount")
    if currency != customer.currency:
        raise ValidationError(
            "currency",
            f"payment in {currency} refused: the wallet of {customer.name!r} is in {customer.currency}",
        )
    if not amount.is_positive:
        raise ValidationError("amount", "must be greater than zero")
    account = method_account(spec.method, settings_store.load(uow).payment_methods)
    key = spec.idempotency_key or (
        f"payment:{spec.method}:{spec.reference}" if spec.reference else None
    )
    if key is None:
        raise ValidationError("idempotency_key", "required when there is no reference")
    existing = _existing(uow, key, spec)
    if existing is not None:
        return Recorded(existing, created=False, applied=Money.zero(currency))
    received = spec.received_at or now
    posted = ledger.post(
        uow,
        transfer(
            key=key,
            kind=EntryKind.PAYMENT,
            debit=AccountRef.system(account, currency),
            credit=AccountRef.wallet(customer.id, currency),
            amount=amount,
            effective_at=received,
            memo=f"{spec.method} payment {spec.reference or ''}".strip(),
            customer_id=customer.id,
        ),
        now=now,
    )
    payment = Payment(
        customer_id=customer.id,
        method=spec.method,
        amount_minor=amount.minor,
        currency=currency,
        reference=spec.reference,
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
        reason=spec.method,
        figures={
            "amount": str(amount),
            "applied_to_invoices": str(applied),
            "reference": spec.reference,
        },
    )
    reevaluate_customer(uow, customer.id, now=now, actor=actor)
    return Recorded(payment, created=True, applied=applied)


def _existing(uow: UnitOfWork, key: str, spec: NewPayment) -> Payment | None:
    query = select(Payment).where(Payment.idempotency_key == key)
    found = uow.session.scalars(query).first()
    if found is None and spec.reference:
        found = uow.session.scalars(
            select(Payment).where(
                Payment.method == spec.method, Payment.reference == spec.reference
            )
        ).first()
    return found


def lock_customer(uow: UnitOfWork, ref: str) -> Customer:
    """The customer row lock is the per-customer mutex shared with the tick."""
    uow.begin_write()
    customer = by_id_or_name(uow.session, Customer, ref, field="customer")
    if uow.dialect == "postgresql":
        uow.session.execute(select(Customer.id).where(Customer.id == customer.id).with_for_update())
        uow.session.refresh(customer)
    return customer

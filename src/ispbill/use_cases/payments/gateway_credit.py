"""Crediting money a payment gateway reports received, inside the caller's transaction.

A webhook's record, the checkout's (or top-up attempt's) new status and the payment must commit
together, or a crash between them would leave an event marked handled with no money credited,
or money credited twice. So the webhook's use case begins the write, takes the customer's lock
(``lock``), credits through the payments' non-committing core (``recording.credit_wallet``)
and commits once, itself.

The payment is keyed by the gateway's id of the checkout or charge, never by the event's: a
gateway may report one payment through several events (Stripe: the Checkout Session and its
PaymentIntent), and each must find the same payment.
"""

from __future__ import annotations

from datetime import datetime

from ispbill.adapters.db.models import Customer
from ispbill.adapters.db.unit_of_work import UnitOfWork
from ispbill.domain.money import Money
from ispbill.domain.payments import PaymentMethod
from ispbill.use_cases.payments.recording import Recorded, credit_wallet, take_customer_lock


def payment_reference(gateway: str, external_id: str) -> str:
    return f"{gateway}:{external_id}"


def lock(uow: UnitOfWork, customer_id: int) -> Customer:
    """The customer's row lock (PostgreSQL), inside a write the caller already began."""
    return take_customer_lock(uow, customer_id)


def credit(
    uow: UnitOfWork,
    *,
    gateway: str,
    external_id: str,
    customer_id: int,
    amount: Money,
    received_at: datetime,
    now: datetime,
    actor: str,
) -> Recorded:
    """Credit ``amount`` once per (gateway, external id), re-evaluating the customer (a
    deactivated service the wallet now covers comes back in this same transaction). The
    caller began the write and commits."""
    reference = payment_reference(gateway, external_id)
    recorded = credit_wallet(
        uow,
        customer=take_customer_lock(uow, customer_id),
        amount=amount,
        method=PaymentMethod.GATEWAY.value,
        reference=reference,
        idempotency_key=f"gateway:{reference}",
        received_at=min(received_at, now),
        now=now,
        actor=actor,
    )
    uow.session.flush()  # a refusal by the database surfaces here, in the caller's savepoint
    return recorded

"""Crediting money a payment gateway reports received, inside the caller's transaction.

A webhook's record, the checkout's (or top-up attempt's) new status and the payment must commit
together, or a crash between them would leave an event marked handled with no money credited,
or money credited twice. ``record_payment`` owns a unit of work of its own (it begins the write
and commits); ``Enclosed`` hands it the caller's instead, already writing, and leaves the commit
to the caller.

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
from ispbill.use_cases.payments.recording import NewPayment, Recorded, lock_customer, record_payment


class Enclosed(UnitOfWork):
    """The caller's unit of work seen by a use case that normally owns one: the write
    transaction is already begun, and the caller commits."""

    def __init__(self, outer: UnitOfWork) -> None:  # no session factory: never opens its own
        self.session = outer.session

    def begin_write(self) -> None:
        """The caller began the write transaction (and took SQLite's lock) already."""

    def commit(self) -> None:
        self.session.flush()


def payment_reference(gateway: str, external_id: str) -> str:
    return f"{gateway}:{external_id}"


def lock(uow: UnitOfWork, customer_id: int) -> Customer:
    """The customer's row lock (PostgreSQL), inside a write the caller already began."""
    return lock_customer(Enclosed(uow), str(customer_id))


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
    deactivated service the wallet now covers comes back in this same transaction)."""
    reference = payment_reference(gateway, external_id)
    spec = NewPayment(
        customer=str(customer_id),
        amount=f"{amount.to_decimal():f}",
        currency=amount.currency,
        method=PaymentMethod.GATEWAY.value,
        reference=reference,
        idempotency_key=f"gateway:{reference}",
        received_at=min(received_at, now),
    )
    return record_payment(Enclosed(uow), spec=spec, now=now, actor=actor)

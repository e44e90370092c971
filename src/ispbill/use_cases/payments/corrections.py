"""Correcting payments: reversal of a payment that should not have counted, and refunds.

Both are new ledger transactions that point at what they correct; nothing is edited
(ARCHITECTURE invariant 2, TigerBeetle's "correcting transfers").

* A reversal undoes a payment as a whole (a bounced transfer, a charge-back, a payment booked
  to the wrong customer): the opposite transaction, linked by ``reverses_id`` and by
  ``payment.reversed_by_id``. Allocations are document matching, not money, so the payment's
  allocations are marked reversed (never deleted) and each invoice's paid amount drops by what
  they had paid. If the customer's remaining money no longer covers what later allocations
  took from credit, the newest of those are undone too; then whatever credit is left pays open
  invoices oldest first again. The customer is re-evaluated at once: a postpaid customer now
  over the credit limit is blocked in the same transaction; a prepaid wallet that no longer
  covers the next period finds out at that period, as any other wallet does.
* A refund pays money back to the customer from credit (wallet to the method's account). It
  can never exceed the unallocated credit: money that pays an open invoice is not credit.

Exactly once. Like a payment's, a refund's reference (the receipt or transfer it went out by)
is the customer's, not a global key: a refund is keyed ``refund:<customer id>:<method>:<reference>``
(method names begin with a letter, so these never meet the keys stored before, which were
``refund:<method>:<reference>``; those are still found, but only as the same customer's). Making
it again:

* for the same customer, method and reference with the same amount is the same refund (unless
  it names another payment than the stored refund did): answered with the stored transaction
  (``created`` False), nothing paid;
* for the same customer, method and reference with another amount, or naming another payment,
  is refused (``Conflict`` on ``reference``);
* under a reference another customer's refund carries is a new refund of this customer's.
  Another customer's refund is never answered, and a payment a refund names is looked up among
  the customer's own payments only.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from ispbill.adapters.db import event_log as events
from ispbill.adapters.db import ledger_store as ledger
from ispbill.adapters.db import settings_store
from ispbill.adapters.db.invoice_store import apply_credit, open_invoices, unallocated_credit
from ispbill.adapters.db.lookups import by_id
from ispbill.adapters.db.models import Allocation, Customer, Invoice, LedgerTransaction, Payment
from ispbill.adapters.db.unit_of_work import UnitOfWork
from ispbill.domain.errors import Conflict, ValidationError
from ispbill.domain.invoicing import status_for
from ispbill.domain.ledger import AccountKind, AccountRef, EntryKind, transfer
from ispbill.domain.money import Money
from ispbill.domain.payments import PaymentMethod, method_account
from ispbill.use_cases.billing.reevaluation import reevaluate_customer
from ispbill.use_cases.payments.recording import lock_customer

REASON_MAX = 300


def find_payment(uow: UnitOfWork, payment_id: int) -> Payment:
    """A payment by its id (a reference typed at the command line is resolved to one first,
    ``name_lookups.payment_id_of``): an id is never read as another payment's reference."""
    return by_id(uow.session, Payment, payment_id, field="payment")


@dataclass(frozen=True)
class Reversed:
    payment: Payment
    transaction: LedgerTransaction
    created: bool
    invoices_reopened: Sequence[str]


def reverse_payment(
    uow: UnitOfWork, *, payment_id: int, reason: str, now: datetime, actor: str
) -> Reversed:
    """Undo a payment with a linked reversing transaction; once (a second call returns it)."""
    reason = reason.strip()
    if not reason:
        raise ValidationError("reason", "required: say why the payment is reversed")
    if len(reason) > REASON_MAX:
        raise ValidationError("reason", f"at most {REASON_MAX} characters")
    found = find_payment(uow, payment_id)
    session = uow.session
    customer_id = found.customer_id
    session.rollback()  # the read ends here; the write starts under the customer's lock
    lock_customer(uow, customer_id)
    payment = session.get(Payment, payment_id, populate_existing=True)
    assert payment is not None
    customer = session.get(Customer, payment.customer_id)
    assert customer is not None
    if payment.reversed_by_id is not None:
        done = session.get(LedgerTransaction, payment.reversed_by_id)
        assert done is not None
        return Reversed(payment, done, created=False, invoices_reopened=())
    original = session.get(LedgerTransaction, payment.transaction_id)
    assert original is not None
    posted = ledger.reverse(
        uow,
        original_key=original.idempotency_key,
        key=f"payment-reversal:{payment.id}",
        now=now,
        memo=f"reversal of payment {payment.id}: {reason}",
    )
    payment.reversed_by_id = posted.transaction.id
    touched = _unallocate(session, _allocations(session, payment_id=payment.id), now=now)
    touched |= _unallocate_uncovered(session, customer, now=now)
    apply_credit(session, customer, now=now)
    reopened = sorted(i.number for i in touched if i.paid_minor < i.gross_minor)
    amount = Money(payment.amount_minor, payment.currency)
    events.record(
        uow,
        now=now,
        actor=actor,
        kind="payment.reversed",
        subject_type="payment",
        subject_id=payment.id,
        customer_id=customer.id,
        reason=reason,
        figures={
            "amount": str(amount),
            "transaction": posted.transaction.id,
            "reverses_transaction": original.id,
            "invoices_reopened": reopened,
            "balance": str(ledger.wallet_balance(session, customer.id, customer.currency)),
        },
    )
    reevaluate_customer(uow, customer.id, now=now, actor=actor)
    uow.commit()
    return Reversed(payment, posted.transaction, created=True, invoices_reopened=reopened)


def _allocations(
    session: Session, *, payment_id: int | None = None, customer_id: int | None = None
) -> list[Allocation]:
    query = select(Allocation).where(Allocation.reversed_at.is_(None))
    if payment_id is not None:
        query = query.where(Allocation.payment_id == payment_id)
    if customer_id is not None:
        query = query.join(Invoice, Invoice.id == Allocation.invoice_id).where(
            Invoice.customer_id == customer_id
        )
    return list(session.scalars(query.order_by(Allocation.id.desc())))


def _unallocate(
    session: Session, allocations: Sequence[Allocation], *, now: datetime
) -> set[Invoice]:
    """Mark allocations reversed and take what they paid off their invoices."""
    touched: set[Invoice] = set()
    for allocation in allocations:
        invoice = session.get(Invoice, allocation.invoice_id, with_for_update=True)
        assert invoice is not None
        allocation.reversed_at = now
        invoice.paid_minor -= allocation.amount_minor
        invoice.status = status_for(
            Money(invoice.gross_minor, invoice.currency),
            Money(invoice.paid_minor, invoice.currency),
            voided=False,
        ).value
        touched.add(invoice)
    session.flush()
    return touched


def _unallocate_uncovered(session: Session, customer: Customer, *, now: datetime) -> set[Invoice]:
    """Undo the newest allocations until the money left covers what stays allocated.

    Allocated money is wallet money already spent on invoices; when the wallet plus what open
    invoices still owe falls below zero, some allocation is paying with money that is gone.
    """
    balance = ledger.wallet_balance(session, customer.id, customer.currency).minor
    owed = sum(i.gross_minor - i.paid_minor for i in open_invoices(session, customer.id))
    shortfall = -(balance + owed)
    undone: list[Allocation] = []
    for allocation in _allocations(session, customer_id=customer.id):
        if shortfall <= 0:
            break
        undone.append(allocation)
        shortfall -= allocation.amount_minor
    return _unallocate(session, undone, now=now)


@dataclass(frozen=True)
class Refunded:
    transaction: LedgerTransaction
    created: bool
    amount: Money


def refund(
    uow: UnitOfWork,
    *,
    customer_id: int,
    amount: str,
    method: str,
    reference: str,
    now: datetime,
    actor: str,
    payment_id: int | None = None,
) -> Refunded:
    """Pay ``amount`` of the customer's unallocated credit back through ``method``; once per
    (customer, method, reference). An exact repeat returns the stored refund; the same
    reference with other figures is a ``Conflict``."""
    reference = reference.strip()
    if not reference:
        raise ValidationError(
            "reference", "required: the receipt or transfer reference of the refund"
        )
    uow.session.rollback()  # any read ends here; the write starts under the customer's lock
    session = uow.session
    row = lock_customer(uow, customer_id)
    value = Money.from_major(amount, row.currency, field="amount")
    if not value.is_positive:
        raise ValidationError("amount", "must be greater than zero")
    if method == PaymentMethod.REFILL_CARD.value:
        raise ValidationError("method", "money is never paid back as a refill card")
    account = method_account(method, settings_store.load(uow).payment_methods)
    linked = _payment_of(session, row, payment_id) if payment_id is not None else None
    existing = _stored_refund(session, row, method, reference, value, linked)
    if existing is not None:
        return Refunded(existing, created=False, amount=_refunded(existing))
    figures: dict[str, str] = {"method": method, "reference": reference}
    if linked is not None:
        _check_refundable(session, linked, row, value)
        figures["payment_id"] = str(linked.id)
    available = unallocated_credit(session, row, open_invoices(session, row.id))
    if value > available:
        raise ValidationError(
            "amount",
            f"refund of {value} exceeds the unallocated credit of {available} of {row.name!r}",
        )
    posted = ledger.post(
        uow,
        transfer(
            key=refund_key(row.id, method, reference),
            kind=EntryKind.REFUND,
            debit=AccountRef.wallet(row.id, row.currency),
            credit=AccountRef.system(account, row.currency),
            amount=value,
            effective_at=now,
            memo=f"{method} refund {reference}" + (f" of payment {linked.id}" if linked else ""),
            customer_id=row.id,
            figures=figures,
        ),
        now=now,
    )
    events.record(
        uow,
        now=now,
        actor=actor,
        kind="payment.refunded",
        subject_type="customer",
        subject_id=row.id,
        customer_id=row.id,
        reason=method,
        figures={
            "amount": str(value),
            "transaction": posted.transaction.id,
            "payment": linked.id if linked else None,
            "reference": reference,
            "balance": str(ledger.wallet_balance(session, row.id, row.currency)),
        },
    )
    reevaluate_customer(uow, row.id, now=now, actor=actor)
    uow.commit()
    return Refunded(posted.transaction, created=True, amount=value)


def refund_key(customer_id: int, method: str, reference: str) -> str:
    """The ledger key of a refund: the reference is the customer's, not a global one."""
    return f"refund:{customer_id}:{method}:{reference}"


def _stored_refund(
    session: Session,
    customer: Customer,
    method: str,
    reference: str,
    value: Money,
    linked: Payment | None,
) -> LedgerTransaction | None:
    """This customer's refund under (method, reference), if one is stored; refused when its
    figures differ. A key of the old form (``refund:<method>:<reference>``, before references
    were the customer's) counts only when it is this customer's refund."""
    for key in (refund_key(customer.id, method, reference), f"refund:{method}:{reference}"):
        found = ledger.find_transaction(session, key)
        if (
            found is not None
            and found.customer_id == customer.id
            and found.kind == EntryKind.REFUND.value
        ):
            break
    else:
        return None
    stored = _refunded(found)
    of_payment = found.figures.get("payment_id")
    if stored != value or (linked is not None and of_payment != str(linked.id)):
        raise Conflict(
            "reference",
            f"{method} refund {reference!r} is already recorded for {customer.name!r} as "
            f"transaction {found.id} of {stored}"
            + (f" of payment {of_payment}" if of_payment else "")
            + "; a repeat must have the same amount (and name the same payment, if any), "
            "another refund needs its own reference",
        )
    return found


def _refunded(transaction: LedgerTransaction) -> Money:
    """What a refund transaction took out of the wallet."""
    (taken,) = [p for p in transaction.postings if p.account.kind == AccountKind.WALLET.value]
    return Money(-taken.amount_minor, taken.currency)


def _payment_of(session: Session, customer: Customer, payment_id: int) -> Payment:
    """The payment a refund names: one of the customer's own."""
    payment = by_id(session, Payment, payment_id, field="payment")
    if payment.customer_id != customer.id:
        raise ValidationError("payment", f"payment {payment.id} is not {customer.name!r}'s")
    return payment


def _check_refundable(session: Session, payment: Payment, customer: Customer, value: Money) -> None:
    """A refund that names a payment stays within what that payment brought in."""
    if payment.reversed_by_id is not None:
        raise Conflict("payment", f"payment {payment.id} is reversed; nothing to refund")
    refunded = sum(
        Money(-p.amount_minor, p.currency).minor
        for t in session.scalars(
            select(LedgerTransaction).where(
                LedgerTransaction.kind == EntryKind.REFUND.value,
                LedgerTransaction.customer_id == customer.id,
            )
        )
        if t.figures.get("payment_id") == str(payment.id)
        for p in t.postings
        if p.account.kind == AccountKind.WALLET.value
    )
    left = Money(payment.amount_minor - refunded, payment.currency)
    if value > left:
        raise ValidationError(
            "amount", f"refund of {value} exceeds what is left of payment {payment.id} ({left})"
        )


def refunds_of(uow: UnitOfWork, payment: Payment) -> list[LedgerTransaction]:
    """Refund transactions that name ``payment``."""
    return [
        t
        for t in uow.session.scalars(
            select(LedgerTransaction)
            .where(
                LedgerTransaction.kind == EntryKind.REFUND.value,
                LedgerTransaction.customer_id == payment.customer_id,
            )
            .order_by(LedgerTransaction.id)
        )
        if t.figures.get("payment_id") == str(payment.id)
    ]


def allocated_total(uow: UnitOfWork, payment_id: int) -> int:
    return int(
        uow.session.scalar(
            select(func.coalesce(func.sum(Allocation.amount_minor), 0)).where(
                Allocation.payment_id == payment_id, Allocation.reversed_at.is_(None)
            )
        )
        or 0
    )

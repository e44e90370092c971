"""Corrections of issued invoices and a customer's own payment terms (issue 17, item 6).

* ``credit_invoice``: a credit note (``CN`` series) for the whole invoice, one whole line, or an
  amount of one line (``domain/credit_notes.partial_credit_line``), with a required reason. The
  money goes back through the ledger as ``refund`` charges (wallet credited, revenue and tax
  payable debited, key ``invoice-credit:<invoice>:<n>:<line>``), documented by the credit note;
  credit notes together never give back more than the invoice's total
  (``invoicing.credit_note_for``). A postpaid customer that uses credit automatically has the
  credit applied to open invoices oldest first, as a payment would be.
* ``void_invoice``: an unpaid invoice (nothing paid or allocated) is cancelled by a full credit
  note and its status becomes ``void``; its number stays taken, so the invoice series has no gap.
* ``set_payment_terms``: days from issue to due for this customer's invoices, overriding the
  operator-wide ``payment_terms_days``; ``None`` goes back to the operator's. It applies to
  invoices issued from then on (an issued invoice is never edited).

Each is one unit of work under the customer's row lock, recorded as an event (``invoice.credited``,
``invoice.voided``, ``customer.payment_terms_set``) with the actor, the reason and the figures;
the engine then re-evaluates the customer (a credit may lift a credit-limit block, collections
reviews what is still overdue).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta
from fractions import Fraction

from sqlalchemy import func, select

from ispbill.adapters.db import event_log as events
from ispbill.adapters.db import ledger_store as ledger
from ispbill.adapters.db import settings_store
from ispbill.adapters.db.billing_store import charge_entry
from ispbill.adapters.db.invoice_store import apply_credit
from ispbill.adapters.db.lookups import MAX_ID
from ispbill.adapters.db.models import Customer, Invoice
from ispbill.adapters.db.unit_of_work import UnitOfWork
from ispbill.domain.billing import Charge, ChargeKind
from ispbill.domain.calendar import Period, local_date
from ispbill.domain.credit_notes import clean_reason, partial_credit_line
from ispbill.domain.customers import BalanceControl
from ispbill.domain.errors import NotFound, ValidationError
from ispbill.domain.invoicing import (
    MAX_PAYMENT_TERMS_DAYS,
    DocumentKind,
    InvoiceLine,
    InvoiceStatus,
)
from ispbill.domain.money import Money
from ispbill.domain.taxes import TaxSplit
from ispbill.use_cases.billing.extras import charge_row_of
from ispbill.use_cases.billing.invoice_documents import stored_draft
from ispbill.use_cases.billing.plan_changes import issue_credit_note
from ispbill.use_cases.billing.reevaluation import reevaluate_customer
from ispbill.use_cases.payments.recording import lock_customer

CREDITED = "invoice.credited"
VOIDED = "invoice.voided"
TERMS_SET = "customer.payment_terms_set"


@dataclass(frozen=True)
class CorrectionResult:
    invoice_number: str
    invoice_status: str
    credit_note_number: str
    credited: Money
    balance: Money


def credit_invoice(
    uow: UnitOfWork,
    *,
    invoice_id: int,
    reason: str,
    line: int | None = None,
    amount: str | None = None,
    now: datetime,
    actor: str,
) -> CorrectionResult:
    """A credit note for the whole invoice, its line number ``line``, or ``amount`` (gross, in
    major units) of that line."""
    text = clean_reason(reason)
    if amount is not None and line is None:
        raise ValidationError("line", "name the line an amount is credited from")
    customer, invoice = _begin(uow, invoice_id)
    lines = stored_draft(invoice).lines
    if line is None:
        chosen = list(lines)
    else:
        if not 1 <= line <= len(lines):
            raise ValidationError(
                "line", f"invoice {invoice.number} has lines 1 to {len(lines)}; no line {line}"
            )
        picked = lines[line - 1]
        if amount is not None:
            picked = partial_credit_line(
                picked, Money.from_major(amount, invoice.currency, field="amount")
            )
        chosen = [picked]
    note = _credit(uow, customer, invoice, chosen, reason=text, now=now, actor=actor, void=False)
    return _finish(uow, customer, invoice, note, now=now, actor=actor)


def void_invoice(
    uow: UnitOfWork, *, invoice_id: int, reason: str, now: datetime, actor: str
) -> CorrectionResult:
    """Cancel an unpaid invoice by a full credit note; it keeps its number, status ``void``."""
    text = clean_reason(reason)
    customer, invoice = _begin(uow, invoice_id)
    if invoice.status != InvoiceStatus.ISSUED.value or invoice.paid_minor != 0:
        raise ValidationError(
            "invoice",
            f"invoice {invoice.number} is {invoice.status} with "
            f"{Money(invoice.paid_minor, invoice.currency)} paid; only an unpaid invoice is "
            "voided (credit it instead)",
        )
    credited_before = _credited_before(uow, invoice)
    if credited_before:
        raise ValidationError(
            "invoice",
            f"invoice {invoice.number} already has credit notes; credit the rest instead",
        )
    lines = list(stored_draft(invoice).lines)
    note = _credit(uow, customer, invoice, lines, reason=text, now=now, actor=actor, void=True)
    return _finish(uow, customer, invoice, note, now=now, actor=actor)


def set_payment_terms(
    uow: UnitOfWork, *, customer_id: int, days: int | None, now: datetime, actor: str
) -> int | None:
    """The customer's own payment terms (``None``: the operator's setting again)."""
    if days is not None and (isinstance(days, bool) or not 0 <= days <= MAX_PAYMENT_TERMS_DAYS):
        raise ValidationError(
            "payment_terms_days", f"must be between 0 and {MAX_PAYMENT_TERMS_DAYS} days"
        )
    customer = lock_customer(uow, customer_id)
    previous = customer.payment_terms_days
    customer.payment_terms_days = days
    events.record(
        uow,
        now=now,
        actor=actor,
        kind=TERMS_SET,
        subject_type="customer",
        subject_id=customer.id,
        customer_id=customer.id,
        figures={
            "previous_days": previous,
            "days": days,
            "operator_days": settings_store.load(uow).payment_terms_days,
        },
    )
    uow.commit()
    return days


# -- the steps ------------------------------------------------------------------------------------


def _begin(uow: UnitOfWork, invoice_id: int) -> tuple[Customer, Invoice]:
    if not 0 < invoice_id <= MAX_ID:
        raise NotFound("invoice", invoice_id, field="invoice")
    customer_id = uow.session.scalar(select(Invoice.customer_id).where(Invoice.id == invoice_id))
    if customer_id is None:
        raise NotFound("invoice", invoice_id, field="invoice")
    uow.session.rollback()  # the lock's transaction must be the first (SQLite: BEGIN IMMEDIATE)
    customer = lock_customer(uow, customer_id)
    invoice = uow.session.get(Invoice, invoice_id)
    assert invoice is not None  # documents are never deleted
    if invoice.kind != DocumentKind.INVOICE.value:
        raise ValidationError("invoice", f"{invoice.number} is a credit note, not an invoice")
    if invoice.status == InvoiceStatus.VOID.value:
        raise ValidationError("invoice", f"invoice {invoice.number} is void")
    return customer, invoice


def _credited_before(uow: UnitOfWork, invoice: Invoice) -> int:
    return int(
        uow.session.scalar(
            select(func.coalesce(func.sum(Invoice.gross_minor), 0)).where(
                Invoice.corrects_id == invoice.id,
                Invoice.kind == DocumentKind.CREDIT_NOTE.value,
            )
        )
        or 0
    )


def _credit(
    uow: UnitOfWork,
    customer: Customer,
    invoice: Invoice,
    lines: list[InvoiceLine],
    *,
    reason: str,
    now: datetime,
    actor: str,
    void: bool,
) -> Invoice:
    session = uow.session
    today = max(local_date(now, customer.billing_timezone), invoice.issue_date)
    count = session.scalar(
        select(func.count(Invoice.id)).where(
            Invoice.corrects_id == invoice.id, Invoice.kind == DocumentKind.CREDIT_NOTE.value
        )
    )
    base = f"invoice-credit:{invoice.id}:{(count or 0) + 1}"
    operator = settings_store.load(uow)
    # the document first: it refuses a credit beyond the invoice's total before money moves
    note = issue_credit_note(
        uow,
        customer=customer,
        lines=lines,
        corrected=invoice,
        issue_date=today,
        key=f"{base}:credit-note",
        now=now,
        operator=operator,
    )
    session.flush()
    for position, item in enumerate(lines, start=1):
        charge = Charge(
            item.service_id or 0,
            ChargeKind.REFUND,
            _period_of(item, today),
            item.quantity if item.quantity > 0 else Fraction(1),
            item.unit_price,
            TaxSplit(item.net, item.tax),
            now,
            item.tax_profile,
            item.description,
        )
        entry = replace(
            charge_entry(customer.id, charge),
            key=f"{base}:{position}",
            memo=f"{note.number}: {item.description}",
        )
        posted = ledger.post(uow, entry, now=now)
        row = charge_row_of(customer.id, charge, posted.transaction.id, service_id=item.service_id)
        row.invoice_id = note.id  # the document that lists the credit
        session.add(row)
    if void:
        invoice.status = InvoiceStatus.VOID.value
    session.flush()
    credited = Money(note.gross_minor, note.currency)
    events.record(
        uow,
        now=now,
        actor=actor,
        kind=VOIDED if void else CREDITED,
        subject_type="invoice",
        subject_id=invoice.id,
        customer_id=customer.id,
        reason=reason,
        figures={
            "invoice": invoice.number,
            "credit_note": note.number,
            "credited": str(credited),
            "net": str(Money(note.net_minor, note.currency)),
            "tax": str(Money(note.tax_minor, note.currency)),
            "lines": len(lines),
            "invoice_total": str(Money(invoice.gross_minor, invoice.currency)),
        },
    )
    postpaid = customer.balance_control == BalanceControl.POSTPAID.value
    if postpaid and customer.use_credit_automatically and not void:
        apply_credit(session, customer, now=now)
    return note


def _period_of(item: InvoiceLine, today: date) -> Period:
    if item.period_start is not None and item.period_end is not None:
        return Period(item.period_start, item.period_end)
    return Period(today, today + timedelta(days=1))


def _finish(
    uow: UnitOfWork,
    customer: Customer,
    invoice: Invoice,
    note: Invoice,
    *,
    now: datetime,
    actor: str,
) -> CorrectionResult:
    session = uow.session
    session.flush()
    reevaluate_customer(uow, customer.id, now=now, actor=actor)
    uow.commit()
    session.refresh(invoice)
    return CorrectionResult(
        invoice_number=invoice.number,
        invoice_status=invoice.status,
        credit_note_number=note.number,
        credited=Money(note.gross_minor, note.currency),
        balance=ledger.wallet_balance(session, customer.id, customer.currency),
    )

"""Read models of the command line: what ``ispbill ... list|show`` prints, as rows of plain
values (ids, names, amounts as text, dates), so the CLI never touches the ORM.

Each function reads in the unit of work it is given and writes nothing. Rows are dicts, as a
table or a JSON array shows them (cosmicpython's views); their keys are the CLI's columns.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select

from ispbill.adapters.db import event_log as events
from ispbill.adapters.db import ledger_store as ledger
from ispbill.adapters.db.lookups import by_id
from ispbill.adapters.db.models import (
    Allocation,
    BankStatementLine,
    Charge,
    Customer,
    CustomerClass,
    Invoice,
    LedgerAccount,
    LedgerPosting,
    LedgerTransaction,
    Payment,
    Plan,
    Reseller,
    Service,
    TaxProfileRow,
)
from ispbill.adapters.db.unit_of_work import UnitOfWork
from ispbill.domain.ledger import AccountRef, Discrepancy
from ispbill.domain.money import Money
from ispbill.use_cases.billing import invoice_documents
from ispbill.use_cases.catalog import customer_accounts
from ispbill.use_cases.payments.bank_import import unmatched_lines
from ispbill.use_cases.payments.corrections import refunds_of
from ispbill.use_cases.service_lifecycle import new_services

Row = dict[str, Any]


def ledger_findings(uow: UnitOfWork) -> list[Discrepancy]:
    """The ledger check: every transaction sums to zero, every cached balance equals its
    postings; one finding per breach (none when the books balance)."""
    return ledger.check(uow.session)


# -- customers, services, wallets ---------------------------------------------------------------


def balance_of(uow: UnitOfWork, customer_id: int) -> Money:
    """The customer's wallet balance, in the customer's currency."""
    customer = by_id(uow.session, Customer, customer_id, field="customer")
    return ledger.wallet_balance(uow.session, customer.id, customer.currency)


def customer_name(uow: UnitOfWork, customer_id: int) -> str:
    return by_id(uow.session, Customer, customer_id, field="customer").name


def customer_row(c: Customer, balance: Money) -> Row:
    return {
        "id": c.id,
        "name": c.name,
        "class": c.customer_class.name,
        "balance_control": c.balance_control,
        "currency": c.currency,
        "balance": str(balance),
        "cycle": c.cycle_kind,
        "timezone": c.billing_timezone,
        "status": c.status,
    }


def customer_rows(uow: UnitOfWork, *, search: str | None, limit: int) -> list[Row]:
    return [
        customer_row(s.customer, s.balance) | {"services": s.services}
        for s in customer_accounts.list_customers(uow, search=search, limit=limit)
    ]


def customer_detail(uow: UnitOfWork, customer_id: int, *, events_shown: int = 20) -> Row:
    """One customer: terms, custom data, services and the latest events."""
    c = customer_accounts.get_customer(uow, customer_id)
    balance = ledger.wallet_balance(uow.session, c.id, c.currency)
    return customer_row(c, balance) | {
        "business_model": c.business_model,
        "reseller": c.reseller.name if c.reseller else None,
        "invoicing_mode": c.invoicing_mode,
        "use_credit_automatically": c.use_credit_automatically,
        "credit_limit": str(Money(c.credit_limit_minor, c.currency))
        if c.credit_limit_minor is not None
        else None,
        "minimum_balance": str(Money(c.minimum_balance_minor, c.currency)),
        "anchor_day": c.cycle_anchor_day,
        "cycle_origin": c.cycle_origin,
        "grace_days": c.grace_days if c.grace_days is not None else c.customer_class.grace_days,
        "custom_data": c.custom_data,
        "created_at": c.created_at,
        "services": service_rows(uow, customer_id=c.id),
        "events": [
            {
                "at": e.occurred_at,
                "kind": e.kind,
                "actor": e.actor,
                "reason": e.reason,
                "figures": e.figures,
            }
            for e in events.for_customer(uow, c.id, limit=events_shown)
        ],
    }


def service_row(s: Service) -> Row:
    return {
        "id": s.id,
        "customer_id": s.customer_id,
        "plan": s.plan.name,
        "state": s.state if not s.state_reason else f"{s.state} ({s.state_reason})",
        "active_from": s.active_from,
        "active_to": s.active_to,
        "period_months": s.period_months,
        "invoicing_mode": s.invoicing_mode,
        "throttle_kbps": (
            f"{s.throttle_down_kbps}/{s.throttle_up_kbps}" if s.throttle_down_kbps else None
        ),
    }


def service_rows(uow: UnitOfWork, *, customer_id: int | None = None) -> list[Row]:
    return [service_row(s) for s in new_services.list_services(uow, customer_id=customer_id)]


def wallet(uow: UnitOfWork, customer_id: int, *, limit: int) -> Row:
    """The customer's name and balance, and the wallet's latest postings (newest first)."""
    c = customer_accounts.get_customer(uow, customer_id)
    code = AccountRef.wallet(c.id, c.currency).code
    postings = uow.session.execute(
        select(LedgerTransaction, LedgerPosting.amount_minor)
        .join(LedgerPosting, LedgerPosting.transaction_id == LedgerTransaction.id)
        .join(LedgerAccount, LedgerAccount.id == LedgerPosting.account_id)
        .where(LedgerAccount.code == code)
        .order_by(LedgerTransaction.effective_at.desc(), LedgerTransaction.id.desc())
        .limit(limit)
    ).all()
    return {
        "customer": c.name,
        "balance": str(ledger.wallet_balance(uow.session, c.id, c.currency)),
        "postings": [
            {
                "transaction": t.id,
                "effective_at": t.effective_at,
                "kind": t.kind,
                "amount": str(Money(amount, c.currency)),
                "memo": t.memo,
            }
            for t, amount in postings
        ],
    }


# -- the catalogue --------------------------------------------------------------------------------


def tax_profile_rows(uow: UnitOfWork) -> list[Row]:
    return [
        {
            "id": t.id,
            "name": t.name,
            "rate": invoice_documents.rate_text(t.rate_bp),
            "inclusive": t.inclusive,
        }
        for t in uow.session.scalars(select(TaxProfileRow).order_by(TaxProfileRow.id))
    ]


def reseller_rows(uow: UnitOfWork) -> list[Row]:
    return [
        {"id": r.id, "name": r.name, "created_at": r.created_at}
        for r in uow.session.scalars(select(Reseller).order_by(Reseller.id))
    ]


def class_rows(uow: UnitOfWork) -> list[Row]:
    return [
        {
            "id": c.id,
            "name": c.name,
            "grace_days": c.grace_days,
            "invoice_template": c.invoice_template,
            "tax_profile_id": c.tax_profile_id,
            "notification_emails": c.notification_emails,
            "custom_fields": [
                f["name"] + ("" if f.get("required", True) else "?") for f in c.custom_fields
            ],
        }
        for c in uow.session.scalars(select(CustomerClass).order_by(CustomerClass.id))
    ]


def plan_rows(uow: UnitOfWork) -> list[Row]:
    return [
        {
            "id": p.id,
            "name": p.name,
            "price": str(Money(p.price_minor, p.currency)),
            "cycle": p.cycle_kind if p.cycle_n == 1 else f"{p.cycle_kind}:{p.cycle_n}",
            "download_kbps": p.download_kbps,
            "upload_kbps": p.upload_kbps,
            "periods_months": [o["months"] for o in p.period_options],
            "fup_tiers": [
                f"{t.tier}:{t.limit_bytes}B:{t.action}"
                + (f":{t.down_kbps}/{t.up_kbps}k" if t.down_kbps else "")
                for t in p.fup_tiers
            ],
        }
        for p in uow.session.scalars(select(Plan).order_by(Plan.id))
    ]


# -- payments ---------------------------------------------------------------------------------------


def payment_rows(uow: UnitOfWork, *, customer_id: int | None, limit: int) -> list[Row]:
    """Payments, newest first."""
    query = (
        select(Payment, Customer.name)
        .join(Customer, Customer.id == Payment.customer_id)
        .order_by(Payment.received_at.desc(), Payment.id.desc())
        .limit(limit)
    )
    if customer_id is not None:
        found = by_id(uow.session, Customer, customer_id, field="customer")
        query = query.where(Payment.customer_id == found.id)
    return [
        {
            "id": p.id,
            "customer": name,
            "received_at": p.received_at,
            "recorded_at": p.recorded_at,  # when it was typed, which may be days later
            "method": p.method,
            "amount": str(Money(p.amount_minor, p.currency)),
            "reference": p.reference,
            "key": p.idempotency_key,
            "actor": p.actor,
        }
        for p, name in uow.session.execute(query).all()
    ]


def payment_detail(uow: UnitOfWork, payment_id: int) -> Row:
    """Everything about one payment: where its money went and what corrected it."""
    session = uow.session
    payment = by_id(session, Payment, payment_id, field="payment")
    customer = by_id(session, Customer, payment.customer_id, field="customer")
    allocations = [
        {
            "invoice": number,
            "amount": str(Money(a.amount_minor, payment.currency)),
            "at": a.created_at,
            "reversed_at": a.reversed_at,
        }
        for a, number in session.execute(
            select(Allocation, Invoice.number)
            .join(Invoice, Invoice.id == Allocation.invoice_id)
            .where(Allocation.payment_id == payment.id)
            .order_by(Allocation.id)
        )
    ]
    reversal = None
    if payment.reversed_by_id is not None:
        row = session.get(LedgerTransaction, payment.reversed_by_id)
        assert row is not None
        reversal = {"transaction": row.id, "at": row.recorded_at, "memo": row.memo}
    line = session.scalars(
        select(BankStatementLine).where(BankStatementLine.payment_id == payment.id)
    ).first()
    return {
        "id": payment.id,
        "customer": customer.name,
        "customer_id": customer.id,
        "method": payment.method,
        "amount": str(Money(payment.amount_minor, payment.currency)),
        "reference": payment.reference,
        "key": payment.idempotency_key,
        "received_at": payment.received_at,
        "recorded_at": payment.recorded_at,
        "actor": payment.actor,
        "transaction": payment.transaction_id,
        "status": "reversed" if reversal else "posted",
        "allocations": allocations,
        "reversal": reversal,
        "refunds": [
            {"transaction": t.id, "at": t.recorded_at, "memo": t.memo}
            for t in refunds_of(uow, payment)
        ],
        "bank_statement_line": line.id if line else None,
        "wallet_balance": str(ledger.wallet_balance(session, customer.id, customer.currency)),
    }


def bank_line_rows(uow: UnitOfWork, line_ids: list[int]) -> list[Row]:
    """Bank statement lines by id, in the order given."""
    found = {
        line.id: line
        for line in uow.session.scalars(
            select(BankStatementLine).where(BankStatementLine.id.in_(line_ids))
        )
    }
    return [bank_line_row(found[i]) for i in line_ids if i in found]


def unmatched_bank_line_rows(uow: UnitOfWork, *, limit: int) -> list[Row]:
    """Incoming transfers no customer was found for, oldest first."""
    return [bank_line_row(line) for line in unmatched_lines(uow, limit=limit)]


def bank_line_row(line: BankStatementLine) -> Row:
    counterparty = " ".join(filter(None, (line.counterparty_name, line.counterparty_iban)))
    return {
        "line": line.id,
        "booked_on": line.booked_on,
        "amount": str(Money(line.amount_minor, line.currency)),
        "reference": line.reference,
        "description": line.description,
        "counterparty": counterparty or None,
        "account": line.account,
        "bank_transaction_id": line.bank_transaction_id,
        "file": line.file_name,
        "status": line.status,
        "reason": line.reason,
    }


# -- invoices -----------------------------------------------------------------------------------------


def invoice_row(i: Invoice) -> Row:
    currency = i.currency
    return {
        "number": i.number,
        "customer": i.customer.name,
        "kind": i.kind,
        "issue_date": i.issue_date,
        "due_date": i.due_date,
        "net": str(Money(i.net_minor, currency)),
        "tax": str(Money(i.tax_minor, currency)),
        "total": str(Money(i.gross_minor, currency)),
        "paid": str(Money(i.paid_minor, currency)),
        "due": str(Money(i.gross_minor - i.paid_minor, currency)),
        "status": i.status,
    }


def invoice_rows(
    uow: UnitOfWork, *, customer_id: int | None, status: str | None, limit: int
) -> list[Row]:
    """Invoices, newest first."""
    return [
        invoice_row(i)
        for i in invoice_documents.list_invoices(
            uow, customer_id=customer_id, status=status, limit=limit
        )
    ]


def invoice_detail(uow: UnitOfWork, number: str) -> Row:
    """One invoice's header (``invoice_row``) and its lines."""
    invoice = invoice_documents.get_invoice(uow, number)
    return {"header": invoice_row(invoice), "lines": invoice_lines(invoice)}


def invoice_lines(i: Invoice) -> list[Row]:
    currency = i.currency
    return [
        {
            "position": line.position,
            "description": line.description,
            "service": line.service_id,
            "period": (  # the stored end is exclusive; people read the last day
                f"{line.period_start}..{line.period_end - timedelta(days=1)}"
                if line.period_start and line.period_end
                else None
            ),
            "quantity": (
                str(line.quantity_num)
                if line.quantity_den == 1
                else f"{line.quantity_num}/{line.quantity_den}"
            ),
            "unit_price": str(Money(line.unit_price_minor, currency)),
            "tax_rate": invoice_documents.rate_text(line.tax_rate_bp)
            + (" incl." if line.tax_inclusive else ""),
            "net": str(Money(line.net_minor, currency)),
            "tax": str(Money(line.tax_minor, currency)),
            "total": str(Money(line.gross_minor, currency)),
        }
        for line in i.lines
    ]


def invoice_numbers_of_charges(
    uow: UnitOfWork, customer_id: int, service_ids: set[int]
) -> dict[tuple[int, str, str], str]:
    """Which invoice each of the customer's charges landed on, by (service, kind, period
    start): Charge & Invoice's own, or (postpaid) the one the engine issued for the date."""
    if not service_ids:
        return {}
    found = uow.session.execute(
        select(Charge.service_id, Charge.kind, Charge.period_start, Invoice.number)
        .join(Invoice, Invoice.id == Charge.invoice_id)
        .where(Charge.customer_id == customer_id, Charge.service_id.in_(service_ids))
    ).all()
    return {
        (sid, kind, start.isoformat()): number
        for sid, kind, start, number in found
        if sid is not None  # the service ids asked for; a one-off charge may name none
    }


def customers_due(uow: UnitOfWork, now: datetime) -> int:
    """How many customers have a service due at ``now`` (the size of a tick's work)."""
    return int(
        uow.session.scalar(
            select(func.count(func.distinct(Service.customer_id))).where(Service.next_due_at <= now)
        )
        or 0
    )

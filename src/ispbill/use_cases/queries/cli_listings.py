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
from ispbill.adapters.db.keyset import Slice, keyset_slice
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
    Notification,
    Payment,
    Plan,
    Reseller,
    Service,
    TaxProfileRow,
)
from ispbill.adapters.db.unit_of_work import UnitOfWork
from ispbill.domain.bank import LineStatus
from ispbill.domain.invoicing import InvoiceStatus
from ispbill.domain.ledger import AccountRef, Discrepancy
from ispbill.domain.money import Money
from ispbill.domain.notifications import NotificationStatus
from ispbill.use_cases.billing import customer_pending, invoice_documents
from ispbill.use_cases.catalog import customer_accounts
from ispbill.use_cases.catalog.customer_accounts import choice
from ispbill.use_cases.catalog.customer_records import record_values
from ispbill.use_cases.payments.corrections import refunds_of
from ispbill.use_cases.service_lifecycle import new_services

Row = dict[str, Any]
# One page of a listing: its rows and, when more follow, the cursor of the next page (the id
# of the last row shown; pages are keyset slices by id, adapters/db/keyset.py).
Page = Slice[Row]


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


def customer_rows(
    uow: UnitOfWork,
    *,
    search: str | None,
    limit: int,
    after: int | None = None,
    archived: bool = False,
) -> Page:
    """Customers by id; archived ones only when asked for (and then only those)."""
    query = select(Customer).where(
        Customer.archived_at.is_not(None) if archived else Customer.archived_at.is_(None)
    )
    if search:
        query = query.where(Customer.name.icontains(search, autoescape=True))  # '%' is a letter
    found = keyset_slice(uow.session, query, Customer.id, after=after, limit=limit)
    customers: list[Customer] = found.rows
    counts = dict(
        uow.session.execute(
            select(Service.customer_id, func.count())
            .where(Service.customer_id.in_([c.id for c in customers]))
            .group_by(Service.customer_id)
        ).all()
    )
    balances = ledger.wallet_balances(uow.session, [(c.id, c.currency) for c in customers])
    rows = [
        customer_row(c, balances[c.id])
        | {"services": int(counts.get(c.id, 0))}
        | ({"archived_at": c.archived_at} if archived else {})
        for c in customers
    ]
    return Slice(rows, found.last_id)


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
        "locale": c.locale,
        **record_values(c),
        "created_at": c.created_at,
        "archived_at": c.archived_at,
        "services": service_rows(uow, customer_id=c.id),
        "pending_changes": [p.as_json() for p in customer_pending.pending_of_customer(uow, c.id)],
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


def service_page(
    uow: UnitOfWork, *, customer_id: int | None = None, after: int | None, limit: int
) -> Page:
    query = select(Service)
    if customer_id is not None:
        query = query.where(Service.customer_id == customer_id)
    found = keyset_slice(uow.session, query, Service.id, after=after, limit=limit)
    return Slice([service_row(s) for s in found.rows], found.last_id)


def wallet(uow: UnitOfWork, customer_id: int, *, limit: int, after: int | None = None) -> Row:
    """The customer's name and balance, and the wallet's postings, newest first, a page at a
    time (``next_cursor`` when older ones follow)."""
    c = customer_accounts.get_customer(uow, customer_id)
    code = AccountRef.wallet(c.id, c.currency).code
    query = (
        select(LedgerTransaction, LedgerPosting.amount_minor, LedgerPosting.id)
        .join(LedgerPosting, LedgerPosting.transaction_id == LedgerTransaction.id)
        .join(LedgerAccount, LedgerAccount.id == LedgerPosting.account_id)
        .where(LedgerAccount.code == code)
    )
    found = keyset_slice(
        uow.session,
        query,
        LedgerPosting.id,
        after=after,
        limit=limit,
        newest_first=True,
        scalars=False,
        row_id=lambda r: int(r[2]),
    )
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
            for t, amount, _ in found.rows
        ],
        "next_cursor": found.last_id,
    }


# -- the catalogue --------------------------------------------------------------------------------


def tax_profile_rows(uow: UnitOfWork, *, after: int | None = None, limit: int = 200) -> Page:
    found = keyset_slice(
        uow.session, select(TaxProfileRow), TaxProfileRow.id, after=after, limit=limit
    )
    return Slice(
        [
            {
                "id": t.id,
                "name": t.name,
                "rate": invoice_documents.rate_text(t.rate_bp),
                "inclusive": t.inclusive,
            }
            for t in found.rows
        ],
        found.last_id,
    )


def reseller_rows(uow: UnitOfWork, *, after: int | None = None, limit: int = 200) -> Page:
    found = keyset_slice(uow.session, select(Reseller), Reseller.id, after=after, limit=limit)
    return Slice(
        [{"id": r.id, "name": r.name, "created_at": r.created_at} for r in found.rows],
        found.last_id,
    )


def class_rows(uow: UnitOfWork, *, after: int | None = None, limit: int = 200) -> Page:
    found = keyset_slice(
        uow.session, select(CustomerClass), CustomerClass.id, after=after, limit=limit
    )
    return Slice(
        [
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
            for c in found.rows
        ],
        found.last_id,
    )


def plan_rows(
    uow: UnitOfWork, *, after: int | None = None, limit: int = 200, archived: bool = False
) -> Page:
    """Plans by id; archived ones only when asked for (and then only those)."""
    query = select(Plan).where(
        Plan.archived_at.is_not(None) if archived else Plan.archived_at.is_(None)
    )
    found = keyset_slice(uow.session, query, Plan.id, after=after, limit=limit)
    return Slice(
        [
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
            for p in found.rows
        ],
        found.last_id,
    )


# -- payments ---------------------------------------------------------------------------------------


def payment_rows(
    uow: UnitOfWork, *, customer_id: int | None, limit: int, after: int | None = None
) -> Page:
    """Payments, newest (last recorded) first, a page at a time."""
    query = select(Payment, Customer.name).join(Customer, Customer.id == Payment.customer_id)
    if customer_id is not None:
        found_customer = by_id(uow.session, Customer, customer_id, field="customer")
        query = query.where(Payment.customer_id == found_customer.id)
    found = keyset_slice(
        uow.session,
        query,
        Payment.id,
        after=after,
        limit=limit,
        newest_first=True,
        scalars=False,
        row_id=lambda r: int(r[0].id),
    )
    return Slice(
        [
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
            for p, name in found.rows
        ],
        found.last_id,
    )


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


def unmatched_bank_line_rows(uow: UnitOfWork, *, limit: int, after: int | None = None) -> Page:
    """Incoming transfers no customer was found for, in the order they were imported."""
    query = select(BankStatementLine).where(BankStatementLine.status == LineStatus.UNMATCHED.value)
    found = keyset_slice(uow.session, query, BankStatementLine.id, after=after, limit=limit)
    return Slice([bank_line_row(line) for line in found.rows], found.last_id)


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
    uow: UnitOfWork,
    *,
    customer_id: int | None,
    status: str | None,
    limit: int,
    after: int | None = None,
) -> Page:
    """Invoices and credit notes, newest (last issued) first, a page at a time."""
    query = select(Invoice)
    if customer_id is not None:
        row = by_id(uow.session, Customer, customer_id, field="customer")
        query = query.where(Invoice.customer_id == row.id)
    if status is not None:
        query = query.where(Invoice.status == choice(InvoiceStatus, status, "status").value)
    found = keyset_slice(
        uow.session, query, Invoice.id, after=after, limit=limit, newest_first=True
    )
    return Slice([invoice_row(i) for i in found.rows], found.last_id)


def notification_rows(
    uow: UnitOfWork, *, status: str | None, limit: int, after: int | None = None
) -> Page:
    """Customer e-mail, newest first, a page at a time."""
    query = select(Notification)
    if status:
        query = query.where(
            Notification.status == choice(NotificationStatus, status, "status").value
        )
    found = keyset_slice(
        uow.session, query, Notification.id, after=after, limit=limit, newest_first=True
    )
    return Slice(
        [
            {
                "id": n.id,
                "customer": n.customer_id,
                "kind": n.kind,
                "to": ", ".join(n.recipients),
                "status": n.status,
                "attempts": n.attempts,
                "created_at": n.created_at,
                "sent_at": n.sent_at,
                "next_attempt_at": n.next_attempt_at
                if n.status == NotificationStatus.PENDING.value
                else None,
                "error": n.last_error,
            }
            for n in found.rows
        ],
        found.last_id,
    )


def rows_page(rows: list[Row], *, after: int | None, limit: int, key: str = "id") -> Page:
    """A page of a short list read whole (staff, tokens, NAS, top-up rules), by its ``key`` in
    ascending order: the CLI pages every listing the same way."""
    ordered = sorted(rows, key=lambda r: r[key])
    rest = [r for r in ordered if after is None or r[key] > after]
    page = rest[:limit]
    return Slice(page, page[-1][key] if len(rest) > limit and page else None)


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

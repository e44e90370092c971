"""Read models of ``ispbill demo``: what each simulated day needs to know (who owes what, a
service's state) and the year's figures the summary prints. Nothing here writes."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date

from sqlalchemy import func, select

from ispbill.adapters.db import ledger_store as ledger
from ispbill.adapters.db.invoice_store import OPEN
from ispbill.adapters.db.models import (
    Charge,
    Event,
    Invoice,
    LedgerAccount,
    LedgerPosting,
    LedgerTransaction,
    Payment,
    Service,
)
from ispbill.adapters.db.unit_of_work import UnitOfWork
from ispbill.domain.billing import ChargeKind
from ispbill.domain.invoicing import InvoiceStatus
from ispbill.domain.ledger import AccountKind, Discrepancy, EntryKind
from ispbill.domain.lifecycle import ServiceEvent


def open_invoice_dues(uow: UnitOfWork) -> dict[int, list[tuple[date, int]]]:
    """Per customer: (issue date, amount still due in minor units) of each open invoice."""
    dues: dict[int, list[tuple[date, int]]] = {}
    for customer_id, issued, due in uow.session.execute(
        select(
            Invoice.customer_id, Invoice.issue_date, Invoice.gross_minor - Invoice.paid_minor
        ).where(Invoice.status.in_(OPEN))
    ):
        dues.setdefault(customer_id, []).append((issued, int(due)))
    return dues


def service_state(uow: UnitOfWork, service_id: int) -> str | None:
    return uow.session.scalar(select(Service.state).where(Service.id == service_id))


@dataclass
class MonthFigures:
    revenue_net_minor: int = 0
    charges: int = 0
    payments: int = 0
    payments_minor: int = 0


@dataclass
class YearFigures:
    months: dict[str, MonthFigures]
    opening_funds_minor: int
    balances_minor: list[int]  # every wallet's closing balance
    services_by_state: dict[str, int]
    transitions: dict[str, int]  # "to state (by actor)" -> times, from the event log
    invoices: dict[str, tuple[int, int]]  # status -> (count, gross minor)
    open_due_minor: int
    findings: list[Discrepancy] = field(default_factory=list)


def year_figures(uow: UnitOfWork) -> YearFigures:
    """Revenue and payments per month, wallets, service states and their changes, invoices by
    status and the ledger check, read once at the end of the simulation."""
    session = uow.session
    months: dict[str, MonthFigures] = {}
    for charged_at, kind, net in session.execute(
        select(Charge.charged_at, Charge.kind, Charge.net_minor)
    ):
        figures = months.setdefault(f"{charged_at:%Y-%m}", MonthFigures())
        figures.revenue_net_minor += -net if kind == ChargeKind.REFUND.value else net
        figures.charges += 1
    for received_at, amount in session.execute(select(Payment.received_at, Payment.amount_minor)):
        figures = months.setdefault(f"{received_at:%Y-%m}", MonthFigures())
        figures.payments += 1
        figures.payments_minor += amount
    opening_minor = session.scalar(
        select(func.coalesce(func.sum(LedgerPosting.amount_minor), 0))
        .join(LedgerTransaction, LedgerTransaction.id == LedgerPosting.transaction_id)
        .join(LedgerAccount, LedgerAccount.id == LedgerPosting.account_id)
        .where(
            LedgerTransaction.kind == EntryKind.OPENING_FUNDS.value,
            LedgerAccount.kind == AccountKind.WALLET.value,
        )
    )
    balances = list(
        session.scalars(
            select(LedgerAccount.balance_minor).where(
                LedgerAccount.kind == AccountKind.WALLET.value
            )
        )
    )
    by_state = dict(
        session.execute(select(Service.state, func.count()).group_by(Service.state)).all()
    )
    invoices = {
        status: (int(count), int(gross))
        for status, count, gross in session.execute(
            select(Invoice.status, func.count(), func.sum(Invoice.gross_minor)).group_by(
                Invoice.status
            )
        )
    }
    open_due = session.scalar(
        select(func.coalesce(func.sum(Invoice.gross_minor - Invoice.paid_minor), 0)).where(
            Invoice.status.in_(OPEN)
        )
    )
    transitions = {
        f"{kind.removeprefix('service.')} (by {actor})": int(count)
        for kind, actor, count in session.execute(
            select(Event.kind, Event.actor, func.count())
            .where(Event.subject_type == "service", Event.kind != ServiceEvent.CREATED.value)
            .group_by(Event.kind, Event.actor)
            .order_by(Event.kind, Event.actor)
        )
    }
    return YearFigures(
        months=dict(sorted(months.items())),
        opening_funds_minor=int(opening_minor or 0),
        balances_minor=[int(b) for b in balances],
        services_by_state={str(k): int(v) for k, v in sorted(by_state.items())},
        transitions=transitions,
        invoices={status.value: invoices.get(status.value, (0, 0)) for status in InvoiceStatus},
        open_due_minor=int(open_due or 0),
        findings=ledger.check(session),
    )

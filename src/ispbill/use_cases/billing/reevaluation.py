"""Per-customer engine use cases: re-evaluate now (billing, then collections), Charge & Invoice, and the dry run.

All three ask the same pure function as the tick (``domain/billing.decide``), so a payment's
immediate effect, Splynx's "Charge & Invoice" button and the preview can never disagree with
what the tick would do.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select

from ispbill.adapters.db import settings_store
from ispbill.adapters.db.billing_snapshots import load_snapshots
from ispbill.adapters.db.billing_store import store_outcomes
from ispbill.adapters.db.invoice_store import IssueRequest, issue_from_charges
from ispbill.adapters.db.models import Charge as ChargeRow
from ispbill.adapters.db.models import Customer, Invoice
from ispbill.adapters.db.unit_of_work import UnitOfWork
from ispbill.domain.billing import ChargeKind, Outcome, decide
from ispbill.domain.calendar import local_date
from ispbill.domain.customers import BalanceControl
from ispbill.domain.dates import check_date
from ispbill.domain.invoicing import DocumentKind
from ispbill.use_cases.billing.evaluation import evaluate_customers
from ispbill.use_cases.collections.non_payers import review_customers
from ispbill.use_cases.network import access_changes


def reevaluate_customer(uow: UnitOfWork, customer_id: int, *, now: datetime, actor: str) -> Outcome:
    """Everything due for one customer up to ``now`` plus the activation pass, stored in the
    caller's unit of work (which holds the customer's row lock)."""
    operator = settings_store.load(uow)
    [outcome] = evaluate_customers(
        uow.session, [customer_id], now=now, policy=operator.billing_policy()
    )
    store_outcomes(uow, [outcome], now=now, operator=operator, actor=actor)
    access_changes.enqueue_transitions(uow, [outcome])  # the network follows
    # collections in the same transaction: a payment that settles the debt lifts a non-payer
    # suspension before it commits (use_cases/collections/non_payers.py)
    review_customers(uow, [customer_id], now=now, actor=actor)
    return outcome


@dataclass(frozen=True)
class ChargeAndInvoice:
    outcome: Outcome
    invoice_number: str | None


def charge_and_invoice(
    uow: UnitOfWork, *, customer: Customer, now: datetime, actor: str
) -> ChargeAndInvoice:
    """Splynx "Charge & Invoice": charge what the wallet covers now and invoice it at once.

    For a prepaid customer the invoice is issued paid (the wallet already paid it).
    """
    outcome = reevaluate_customer(uow, customer.id, now=now, actor=actor)
    operator = settings_store.load(uow)
    uninvoiced = list(
        uow.session.scalars(
            select(ChargeRow)
            .where(
                ChargeRow.customer_id == customer.id,
                ChargeRow.invoice_id.is_(None),
                ChargeRow.kind != ChargeKind.REFUND.value,
            )
            .order_by(ChargeRow.charged_at, ChargeRow.id)
        )
    )
    invoice = issue_from_charges(
        uow.session,
        IssueRequest(
            customer=customer,
            charges=uninvoiced,
            issue_date=local_date(now, customer.billing_timezone),
            key=f"charge-and-invoice:{customer.id}:{now.isoformat()}",
            kind=DocumentKind.INVOICE,
            paid_from_wallet=customer.balance_control == BalanceControl.PREPAID.value,
        ),
        now=now,
        operator=operator,
    )
    if invoice is None and outcome.charges:
        # postpaid: storing the outcome already invoiced these charges, per billing date
        invoice = uow.session.scalars(
            select(Invoice)
            .join(ChargeRow, ChargeRow.invoice_id == Invoice.id)
            .where(
                ChargeRow.customer_id == customer.id,
                ChargeRow.service_id.in_({c.service_id for c in outcome.charges}),
                ChargeRow.period_start.in_({c.period.start for c in outcome.charges}),
            )
            .order_by(Invoice.id.desc())
        ).first()
    uow.commit()
    return ChargeAndInvoice(outcome, invoice.number if invoice else None)


def preview(uow: UnitOfWork, *, customer_id: int, until: datetime) -> Outcome:
    """What the engine would do for a customer up to ``until``; writes nothing."""
    check_date("until", until)
    operator = settings_store.load(uow)
    [(snapshot, services)] = load_snapshots(uow.session, [customer_id])
    return decide(snapshot, services, now=until, policy=operator.billing_policy())

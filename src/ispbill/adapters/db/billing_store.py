"""Storing what the engine decided, in batches: charges with their ledger entries, invoices for
postpaid customers, state transitions as events, and each service's new billing position.

The network following those transitions (CoA commands, fresh RADIUS answers) is the calling use
case's next step (``use_cases/network/access_changes.enqueue_transitions``), not this store's."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import select, update

from ispbill.adapters.db import bulk
from ispbill.adapters.db import ledger_store as ledger
from ispbill.adapters.db.invoice_store import IssueRequest, apply_credit, issue_from_charges
from ispbill.adapters.db.models import Charge as ChargeRow
from ispbill.adapters.db.models import Customer, Event, LedgerAccount, Service, table_of
from ispbill.adapters.db.settings_store import OperatorSettings
from ispbill.adapters.db.unit_of_work import UnitOfWork
from ispbill.domain.billing import Charge, ChargeKind, Outcome
from ispbill.domain.calendar import local_date
from ispbill.domain.customers import BalanceControl, CustomerStatus
from ispbill.domain.ledger import AccountKind, AccountRef, Entry, EntryKind, Posting
from ispbill.domain.lifecycle import ServiceState


def charge_key(charge: Charge) -> str:
    kind = charge.kind.value
    if charge.discount_id is not None:  # per discount and per charge of the period it reduces
        kind = f"{kind}-{charge.discount_id}"
    if charge.addon_id is not None:  # a service may carry several add-ons
        kind = f"{kind}-{charge.addon_id}"
    return f"charge:{charge.service_id}:{kind}:{charge.period.start.isoformat()}"


def charge_entry(customer_id: int, charge: Charge) -> Entry:
    """Debit the wallet the gross; credit revenue the net and tax payable the tax. A refund is
    the mirror image."""
    sign = 1 if charge.kind is ChargeKind.REFUND else -1
    currency = charge.gross.currency
    legs = [Posting(AccountRef.wallet(customer_id, currency), charge.gross * sign)]
    for kind, amount in (
        (AccountKind.REVENUE, charge.split.net),
        (AccountKind.TAX_PAYABLE, charge.split.tax),
    ):
        if not amount.is_zero:
            legs.append(Posting(AccountRef.system(kind, currency), amount * -sign))
    return Entry(
        key=charge_key(charge),
        kind=EntryKind.CREDIT_NOTE if charge.kind is ChargeKind.REFUND else EntryKind.CHARGE,
        effective_at=charge.at,
        postings=tuple(legs),
        memo=f"{charge.description} {charge.period.start}..{charge.period.last_day}",
        customer_id=customer_id,
    )


def store_outcomes(
    uow: UnitOfWork,
    outcomes: Sequence[Outcome],
    *,
    now: datetime,
    operator: OperatorSettings,
    actor: str,
    number_at_commit: bool = False,
) -> int:
    """Write every outcome of a chunk; returns how many invoices were issued. With
    ``number_at_commit`` (the tick's chunks: nothing reads a number before the commit) the
    invoices are numbered as the transaction's last write (``invoice_store``)."""
    session = uow.session
    pairs = [(o.customer_id, c) for o in outcomes for c in o.charges]
    entries = [charge_entry(cid, c) for cid, c in pairs]
    ids = ledger.post_batch(session, entries, now=now, known=_wallet_ids(uow, outcomes), uow=uow)
    bulk.insert_rows(
        session.connection(),
        table_of(ChargeRow),
        [_charge_row(cid, c, ids[charge_key(c)]) for cid, c in pairs],
    )
    _store_transitions(uow, outcomes, actor)
    _store_positions(uow, outcomes, now)
    return _issue_invoices(
        uow, outcomes, now=now, operator=operator, number_at_commit=number_at_commit
    )


def _wallet_ids(uow: UnitOfWork, outcomes: Sequence[Outcome]) -> dict[AccountRef, int]:
    """The chunk's wallets by reference, in one query (their ids feed the batched postings)."""
    customer_ids = [o.customer_id for o in outcomes if o.charges]
    if not customer_ids:
        return {}
    rows = uow.session.execute(
        select(LedgerAccount.customer_id, LedgerAccount.currency, LedgerAccount.id).where(
            LedgerAccount.customer_id.in_(customer_ids),
            LedgerAccount.kind == AccountKind.WALLET.value,
        )
    )
    return {AccountRef.wallet(cid, currency): aid for cid, currency, aid in rows if cid is not None}


def _charge_row(customer_id: int, charge: Charge, transaction_id: int) -> dict[str, object]:
    return {
        "service_id": charge.service_id,
        "customer_id": customer_id,
        "kind": charge.kind.value,
        "addon_id": charge.addon_id,
        "discount_id": charge.discount_id,
        "period_start": charge.period.start,
        "period_end": charge.period.end,
        "quantity_num": charge.quantity.numerator,
        "quantity_den": charge.quantity.denominator,
        "unit_price_minor": charge.unit_price.minor,
        "net_minor": charge.split.net.minor,
        "tax_minor": charge.split.tax.minor,
        "gross_minor": charge.split.gross.minor,
        "currency": charge.gross.currency,
        "tax_rate_bp": charge.tax.rate_bp,
        "tax_inclusive": charge.tax.inclusive,
        "description": charge.description,
        "charged_at": charge.at,
        "transaction_id": transaction_id,
        "invoice_id": None,
    }


def _store_transitions(uow: UnitOfWork, outcomes: Sequence[Outcome], actor: str) -> None:
    rows = [
        {
            "occurred_at": t.at,
            "actor": actor,
            "subject_type": "service",
            "subject_id": t.service_id,
            "customer_id": o.customer_id,
            "kind": f"service.{t.to_state.value}",
            "reason": t.reason or "",
            "figures": {"from": t.from_state.value, **t.figures},
        }
        for o in outcomes
        for t in o.transitions
    ]
    # the customer's own status change is an event too (Splynx deactivation period), dated
    # with the services it ended
    rows += [
        {
            "occurred_at": o.transitions[-1].at,
            "actor": actor,
            "subject_type": "customer",
            "subject_id": o.customer_id,
            "customer_id": o.customer_id,
            "kind": f"customer.{CustomerStatus.INACTIVE.value}",
            "reason": o.transitions[-1].reason or "",
            "figures": {
                "from": CustomerStatus.ACTIVE.value,
                **o.transitions[-1].figures,
                "services_ended": sum(t.to_state is ServiceState.ENDED for t in o.transitions),
            },
        }
        for o in outcomes
        if o.customer_inactive and o.transitions
    ]
    bulk.insert_rows(uow.session.connection(), table_of(Event), rows)


def _store_positions(uow: UnitOfWork, outcomes: Sequence[Outcome], now: datetime) -> None:
    changed_at = {t.service_id: t.at for o in outcomes for t in o.transitions}
    rows = []
    for outcome in outcomes:
        for service_id, s in outcome.services.items():
            rows.append(
                {
                    "id": service_id,
                    "state": s.state.value,
                    "state_reason": s.reason,
                    "billed_until": s.billed_until,
                    "deactivated_on": s.deactivated_on,
                    "next_due_at": outcome.next_due.get(service_id),
                    "cycle_origin": s.terms.cycle.origin or s.active_from,
                    "anchor_day": s.terms.cycle.anchor_day,
                }
            )
    if not rows:
        return
    connection = uow.session.connection()
    bulk.update_rows(connection, table_of(Service), rows)
    bulk.update_rows(
        connection,
        table_of(Service),
        [{"id": sid, "state_since": at} for sid, at in changed_at.items()],
    )
    inactive = [o.customer_id for o in outcomes if o.customer_inactive]
    if inactive:
        uow.session.execute(
            update(Customer)
            .where(Customer.id.in_(inactive))
            .values(status=CustomerStatus.INACTIVE.value)
        )


def _issue_invoices(
    uow: UnitOfWork,
    outcomes: Sequence[Outcome],
    *,
    now: datetime,
    operator: OperatorSettings,
    number_at_commit: bool,
) -> int:
    """Postpaid customers get one invoice per billing date with that date's charges."""
    with_charges = [o.customer_id for o in outcomes if o.charges]
    if not with_charges:
        return 0
    session = uow.session
    customers = {
        c.id: c
        for c in session.scalars(
            select(Customer).where(
                Customer.id.in_(with_charges),
                Customer.balance_control == BalanceControl.POSTPAID.value,
            )
        )
    }
    if not customers:
        return 0
    rows = session.scalars(
        select(ChargeRow)
        .where(
            ChargeRow.customer_id.in_(list(customers)),
            ChargeRow.invoice_id.is_(None),
            # a refund credits the wallet; listed on an invoice it would be owed a second time
            ChargeRow.kind != ChargeKind.REFUND.value,
        )
        .order_by(ChargeRow.customer_id, ChargeRow.charged_at, ChargeRow.id)
    )
    groups: dict[tuple[int, object], list[ChargeRow]] = defaultdict(list)
    extras: dict[int, list[ChargeRow]] = defaultdict(list)
    for row in rows:
        customer = customers[row.customer_id]
        if row.kind == ChargeKind.EXTRA.value:
            extras[row.customer_id].append(row)  # one-off charges wait for the next invoice
            continue
        groups[(row.customer_id, local_date(row.charged_at, customer.billing_timezone))].append(row)
    for customer_id, waiting in extras.items():
        days = [day for cid, day in groups if cid == customer_id]
        if days:  # the next invoice is the latest billing date of this chunk's
            groups[(customer_id, max(days))].extend(waiting)  # type: ignore[type-var]
    issued = 0
    for (customer_id, day), charges in groups.items():
        customer = customers[customer_id]
        request = IssueRequest(
            customer=customer,
            charges=charges,
            issue_date=day,  # type: ignore[arg-type]
            key=f"invoice:{customer_id}:{day}",
        )
        numbering = uow if number_at_commit else None
        invoice = issue_from_charges(
            session, request, now=now, operator=operator, number_at_commit=numbering
        )
        if invoice is not None:
            issued += 1
    for customer in customers.values():
        if customer.use_credit_automatically:
            apply_credit(session, customer, now=now)
    return issued

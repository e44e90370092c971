"""Mid-period changes an operator asks for: changing a service's plan, and terminating it.

The pricing is the domain's (``domain/changes.py``: prorated by days, one rounding per amount,
parts that sum); this module stores it in one unit of work, under the customer's row lock shared
with the tick and payments (``payments.lock_customer``):

1. The customer is first billed up to ``now`` by the engine (``engine.reevaluate_customer``), so
   every period due under the old plan is charged under the old plan before anything changes.
2. The change is priced and refused, naming the field, when it breaks a rule; nothing is
   written then.
3. The credit and the charge are written as charge rows with their ledger entries (the credit
   as a ``refund`` charge: wallet credited, revenue and tax payable debited), keyed
   ``plan-change:<service>:<date>:<n>:credit`` / ``:charge`` (``n`` counts the service's plan
   changes, so changing back and forth on one day keeps distinct keys) and
   ``termination:<service>:<date>:credit`` / ``:charge``.
4. Documents. Invoices are "immutable once issued; corrections by credit notes": the credit is
   a credit note (its own ``CN`` series), correcting the invoice that lists the credited charge,
   issued settled (paid) because its amount reaches the wallet at once. A postpaid customer's
   new charge goes on an invoice of its own, and credit is applied to open invoices oldest first
   when the customer uses credit automatically (UISP). A prepaid wallet's period charges are not
   invoiced, so its credit note names no invoice (``invoicing.wallet_credit_note``) and the new
   charge waits, like every prepaid charge, for "Charge & Invoice" or the monthly statement.
5. The service moves (new plan; or ended, with "active to" the day before the effective date),
   with an event carrying the actor, the reason and the figures.
6. The engine re-evaluates the customer, so state follows the money: a prepaid refund may
   reactivate another deactivated service; a postpaid customer over its credit limit is blocked.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import date, datetime
from fractions import Fraction

from sqlalchemy import func, select
from sqlalchemy.orm import object_session

from ispbill.adapters.db import event_log as events
from ispbill.adapters.db import ledger_store as ledger
from ispbill.adapters.db import settings_store
from ispbill.adapters.db.billing_snapshots import effective_tax, load_snapshots, service_snapshot
from ispbill.adapters.db.billing_store import charge_entry
from ispbill.adapters.db.invoice_store import (
    IssueRequest,
    apply_credit,
    issue_from_charges,
    next_number,
    series_for,
)
from ispbill.adapters.db.lookups import by_id
from ispbill.adapters.db.models import Charge as ChargeRow
from ispbill.adapters.db.models import (
    Customer,
    Event,
    Invoice,
    InvoiceLineRow,
    Plan,
    Service,
    TaxProfileRow,
)
from ispbill.adapters.db.settings_store import OperatorSettings
from ispbill.adapters.db.unit_of_work import UnitOfWork
from ispbill.domain.billing import (
    NOT_PLAN_CHARGES,
    Charge,
    ChargeKind,
    CustomerSnapshot,
    Outcome,
    ServiceSnapshot,
    ServiceTerms,
)
from ispbill.domain.calendar import local_date
from ispbill.domain.changes import (
    ChangeQuote,
    ended_active_to,
    quote_plan_change,
    quote_termination,
)
from ispbill.domain.customers import BalanceControl
from ispbill.domain.dates import check_date
from ispbill.domain.errors import Conflict, ValidationError
from ispbill.domain.invoicing import (
    DocumentKind,
    InvoiceDraft,
    InvoiceLine,
    InvoiceStatus,
    credit_note_for,
    wallet_credit_note,
)
from ispbill.domain.lifecycle import ServiceEvent, ServiceState, check_transition
from ispbill.domain.money import Money
from ispbill.domain.taxes import TaxProfile
from ispbill.use_cases.billing.invoice_documents import rate_text, stored_draft
from ispbill.use_cases.billing.reevaluation import reevaluate_customer
from ispbill.use_cases.network import access_changes
from ispbill.use_cases.payments.recording import lock_service

PLAN_CHANGED = ServiceEvent.PLAN_CHANGED.value
ENDED = f"service.{ServiceState.ENDED.value}"
TERMINATED = "terminated"
REASON_MAX = 500


@dataclass(frozen=True)
class ChangeResult:
    """What a plan change or a termination did: the figures, the documents, the new state."""

    service: Service
    customer: str
    quote: ChangeQuote
    from_plan: str
    to_plan: str | None
    invoice_number: str | None
    credit_note_number: str | None
    corrected_number: str | None
    balance: Money
    outcome: Outcome


def change_plan(
    uow: UnitOfWork,
    *,
    service_id: int,
    plan_id: int,
    effective: date | None = None,
    now: datetime,
    actor: str,
) -> ChangeResult:
    """Move a service to another plan from ``effective`` (default: today, local), prorated.

    Refused, with nothing written, when the service has ended, the plan is the same one, is no
    longer sold, is priced in another currency than the customer pays in, bills on another
    cycle or lacks the service's multi-month period, when the date is in the future or before
    the last charged period, and (prepaid) when the wallet cannot cover an upgrade.
    """
    if effective is not None:
        check_date("effective", effective)
    customer, found = _begin(uow, service_id)
    session = uow.session
    plan = by_id(session, Plan, plan_id, field="plan")
    old_plan = found.plan
    if plan.id == old_plan.id:
        raise ValidationError("plan", f"service {found.id} is already on plan {plan.name!r}")
    if not plan.active:
        raise ValidationError("plan", f"plan {plan.name!r} is no longer sold")
    if plan.currency != customer.currency:
        raise ValidationError(
            "plan",
            f"plan {plan.name!r} is priced in {plan.currency}, the customer pays in "
            f"{customer.currency}",
        )
    months = found.period_months
    if months and months not in {int(o["months"]) for o in plan.period_options}:
        raise ValidationError(
            "plan",
            f"plan {plan.name!r} does not offer the service's billing period of {months} months",
        )
    work = _catch_up(uow, customer, found, now=now, actor=actor)
    today = local_date(now, work.customer.billing_timezone)
    day = effective or today
    charged = _charged(uow, work)
    new_terms = _terms(uow, work, plan)
    quote = quote_plan_change(
        work.snapshot,
        work.service_snapshot,
        new_terms=new_terms,
        charged=charge_as_line(charged) if charged is not None else None,
        effective=day,
        today=today,
        at=now,
    )
    count = session.scalar(
        select(func.count(Event.id)).where(
            Event.subject_type == "service",
            Event.subject_id == work.service.id,
            Event.kind == PLAN_CHANGED,
        )
    )
    base = f"plan-change:{work.service.id}:{day.isoformat()}:{(count or 0) + 1}"
    operator = settings_store.load(uow)
    documents = _store(
        uow, work, quote, charged, base=base, today=today, now=now, operator=operator
    )
    service = work.service
    service.plan_id = plan.id
    service.billed_until = quote.billed_until
    old_price = work.service_snapshot.terms.price_on(day)
    new_price = new_terms.price_on(day)
    balance = ledger.wallet_balance(session, work.customer.id, work.customer.currency)
    event = events.record(
        uow,
        now=now,
        actor=actor,
        kind=PLAN_CHANGED,
        subject_type="service",
        subject_id=service.id,
        customer_id=work.customer.id,
        reason=(
            "upgrade"
            if new_price > old_price
            else "downgrade"
            if new_price < old_price
            else "plan_change"
        ),
        figures={
            "from_plan": old_plan.name,
            "to_plan": plan.name,
            "from_price": str(old_price),
            "to_price": str(new_price),
            **quote.figures(),
            **documents.figures(),
            "balance": str(balance),
        },
    )
    access_changes.enqueue(uow, event)  # the new plan's speeds reach the network
    return _finish(uow, work, quote, documents, old_plan.name, plan.name, now=now, actor=actor)


def terminate_service(
    uow: UnitOfWork,
    *,
    service_id: int,
    effective: date | None = None,
    now: datetime,
    actor: str,
    reason: str | None = None,
) -> ChangeResult:
    """End a service from ``effective`` (default: today, local): credit the unused days paid in
    advance, or charge the used days owed in arrears; then the service is ended for good."""
    text = (reason or "").strip() or TERMINATED
    if len(text) > REASON_MAX:
        raise ValidationError("reason", f"at most {REASON_MAX} characters")
    if effective is not None:
        check_date("effective", effective)
    work = _catch_up(uow, *_begin(uow, service_id), now=now, actor=actor)
    session = uow.session
    today = local_date(now, work.customer.billing_timezone)
    day = effective or today
    charged = _charged(uow, work)
    quote = quote_termination(
        work.snapshot,
        work.service_snapshot,
        charged=charge_as_line(charged) if charged is not None else None,
        effective=day,
        today=today,
        at=now,
    )
    current = ServiceState(work.service.state)
    check_transition(current, ServiceState.ENDED)
    base = f"termination:{work.service.id}:{day.isoformat()}"
    operator = settings_store.load(uow)
    documents = _store(
        uow, work, quote, charged, base=base, today=today, now=now, operator=operator
    )
    service = work.service
    previous_to = service.active_to
    service.state = ServiceState.ENDED.value
    service.state_reason = TERMINATED
    service.state_since = now
    service.active_to = ended_active_to(work.service_snapshot, day)
    service.billed_until = quote.billed_until
    service.next_due_at = None
    balance = ledger.wallet_balance(session, work.customer.id, work.customer.currency)
    event = events.record(
        uow,
        now=now,
        actor=actor,
        kind=ENDED,
        subject_type="service",
        subject_id=service.id,
        customer_id=work.customer.id,
        reason=text,
        figures={
            "from": current.value,
            "plan": service.plan.name,
            "previous_active_to": previous_to.isoformat() if previous_to else None,
            "active_to": service.active_to.isoformat() if service.active_to else None,
            **quote.figures(),
            **documents.figures(),
            "balance": str(balance),
        },
    )
    access_changes.enqueue(uow, event)  # the network ends its access
    return _finish(uow, work, quote, documents, service.plan.name, None, now=now, actor=actor)


# -- the steps ------------------------------------------------------------------------------------


@dataclass
class _Work:
    customer: Customer
    service: Service
    snapshot: CustomerSnapshot
    service_snapshot: ServiceSnapshot


@dataclass(frozen=True)
class _Documents:
    invoice: Invoice | None = None
    credit_note: Invoice | None = None
    corrected: Invoice | None = None

    def figures(self) -> dict[str, str | None]:
        return {
            "invoice": self.invoice.number if self.invoice else None,
            "credit_note": self.credit_note.number if self.credit_note else None,
            "corrects": self.corrected.number if self.corrected else None,
        }


def _begin(uow: UnitOfWork, service_id: int) -> tuple[Customer, Service]:
    """Lock the service's customer, then load the service; refuse an ended one."""
    customer, service = lock_service(uow, service_id)
    _refuse_ended(service)
    return customer, service


def _catch_up(
    uow: UnitOfWork, customer: Customer, service: Service, *, now: datetime, actor: str
) -> _Work:
    """Bill the customer up to ``now`` under the terms in force, then load what the change is
    priced from (the engine may have charged, deactivated or ended something)."""
    reevaluate_customer(uow, customer.id, now=now, actor=actor)
    uow.session.flush()
    uow.session.expire_all()  # the engine writes with Core statements the ORM did not see
    _refuse_ended(service)
    [(snapshot, services)] = load_snapshots(uow.session, [customer.id])
    found = next(s for s in services if s.id == service.id)
    return _Work(customer, service, snapshot, found)


def _refuse_ended(service: Service) -> None:
    if service.state == ServiceState.ENDED.value:
        raise ValidationError(
            "service", f"service {service.id} has ended; an ended service cannot change"
        )


def _terms(uow: UnitOfWork, work: _Work, plan: Plan) -> ServiceTerms:
    """The service's terms on ``plan``: the engine's own builder, so the tick agrees."""
    taxes = {row.id: row for row in uow.session.scalars(select(TaxProfileRow))}
    customer_tax = effective_tax(work.customer, work.customer.customer_class, taxes)
    return service_snapshot(work.service, work.customer, plan, customer_tax, taxes).terms


def _charged(uow: UnitOfWork, work: _Work) -> ChargeRow | None:
    """The service's last charge, the one ending where it is billed up to (a credit gives back
    part of it): the period charge, a reactivation, or the charge of a previous change."""
    billed_until = work.service.billed_until
    if billed_until is None:
        return None
    return uow.session.scalars(
        select(ChargeRow)
        .where(
            ChargeRow.service_id == work.service.id,
            ChargeRow.period_end == billed_until,
            ChargeRow.kind.not_in([k.value for k in NOT_PLAN_CHARGES]),
        )
        .order_by(ChargeRow.id.desc())
        .limit(1)
    ).first()


def charge_as_line(row: ChargeRow) -> InvoiceLine:
    """A stored charge read as a line, with its stored amounts (never repriced). A period
    charge reduced by discounts (issue 17) reads as what was charged net of them: one unit at
    the discounted amount, so a credit of part of it (a plan change, a termination, a
    suspension of invoicing) gives back the discounted price of those days, one rounding."""
    currency = row.currency
    session = object_session(row)
    off = (
        session.execute(
            select(
                func.coalesce(func.sum(ChargeRow.net_minor), 0),
                func.coalesce(func.sum(ChargeRow.tax_minor), 0),
            ).where(
                ChargeRow.service_id == row.service_id,
                ChargeRow.kind == ChargeKind.DISCOUNT.value,
                ChargeRow.addon_id.is_(None),
                ChargeRow.period_start == row.period_start,
                ChargeRow.period_end == row.period_end,
            )
        ).one()
        if session is not None and row.kind != ChargeKind.DISCOUNT.value
        else (0, 0)
    )
    net_off, tax_off = int(off[0]), int(off[1])
    if net_off or tax_off:
        net, tax = row.net_minor + net_off, row.tax_minor + tax_off
        return InvoiceLine(
            description=row.description,
            service_id=row.service_id,
            period_start=row.period_start,
            period_end=row.period_end,
            quantity=Fraction(1),
            unit_price=Money(net + tax if row.tax_inclusive else net, currency),
            tax_profile=TaxProfile(rate_text(row.tax_rate_bp), row.tax_rate_bp, row.tax_inclusive),
            net=Money(net, currency),
            tax=Money(tax, currency),
        )
    return InvoiceLine(
        description=row.description,
        service_id=row.service_id,
        period_start=row.period_start,
        period_end=row.period_end,
        quantity=Fraction(row.quantity_num, row.quantity_den),
        unit_price=Money(row.unit_price_minor, currency),
        tax_profile=TaxProfile(rate_text(row.tax_rate_bp), row.tax_rate_bp, row.tax_inclusive),
        net=Money(row.net_minor, currency),
        tax=Money(row.tax_minor, currency),
    )


def _store(
    uow: UnitOfWork,
    work: _Work,
    quote: ChangeQuote,
    charged: ChargeRow | None,
    *,
    base: str,
    today: date,
    now: datetime,
    operator: OperatorSettings,
) -> _Documents:
    """Write the credit and the charge with their ledger entries, then their documents."""
    session = uow.session
    customer = work.customer
    postpaid = customer.balance_control == BalanceControl.POSTPAID.value
    # the credit first: the unused days are given back, then the new price is taken
    credit_row = (
        post_change_charge(uow, customer.id, quote.credit, f"{base}:credit", now)
        if quote.credit is not None
        else None
    )
    charge_row = (
        post_change_charge(uow, customer.id, quote.charge, f"{base}:charge", now)
        if quote.charge is not None
        else None
    )
    session.flush()
    invoice = None
    if charge_row is not None and postpaid:
        invoice = issue_from_charges(
            session,
            IssueRequest(
                customer=customer, charges=[charge_row], issue_date=today, key=f"{base}:invoice"
            ),
            now=now,
            operator=operator,
        )
    note = corrected = None
    if credit_row is not None:
        assert charged is not None
        assert quote.credit_line is not None
        corrected = session.get(Invoice, charged.invoice_id) if charged.invoice_id else None
        note = issue_credit_note(
            uow,
            customer=customer,
            line=quote.credit_line,
            corrected=corrected,
            issue_date=today,
            key=f"{base}:credit-note",
            now=now,
            operator=operator,
        )
        credit_row.invoice_id = note.id  # the document that lists the credit
    session.flush()
    if postpaid and customer.use_credit_automatically and (invoice or note):
        apply_credit(session, customer, now=now)
    return _Documents(invoice, note, corrected)


def post_change_charge(
    uow: UnitOfWork, customer_id: int, charge: Charge, key: str, now: datetime
) -> ChargeRow:
    entry = replace(charge_entry(customer_id, charge), key=key)
    posted = ledger.post(uow, entry, now=now)
    if not posted.created:  # the customer lock makes this a replay of a stored change
        raise Conflict("service", f"this change is already recorded (ledger entry {key})")
    row = ChargeRow(
        service_id=charge.service_id,
        customer_id=customer_id,
        kind=charge.kind.value,
        period_start=charge.period.start,
        period_end=charge.period.end,
        quantity_num=charge.quantity.numerator,
        quantity_den=charge.quantity.denominator,
        unit_price_minor=charge.unit_price.minor,
        net_minor=charge.split.net.minor,
        tax_minor=charge.split.tax.minor,
        gross_minor=charge.split.gross.minor,
        currency=charge.gross.currency,
        tax_rate_bp=charge.tax.rate_bp,
        tax_inclusive=charge.tax.inclusive,
        description=charge.description,
        charged_at=charge.at,
        transaction_id=posted.transaction.id,
        invoice_id=None,
    )
    uow.session.add(row)
    return row


def issue_credit_note(
    uow: UnitOfWork,
    *,
    customer: Customer,
    line: InvoiceLine | None = None,
    lines: Sequence[InvoiceLine] = (),
    corrected: Invoice | None,
    issue_date: date,
    key: str,
    now: datetime,
    operator: OperatorSettings,
) -> Invoice:
    """Number and store a credit note of ``line``: correcting ``corrected`` (never more than it
    minus what earlier credit notes gave back), or, with no invoice, a wallet credit note."""
    session = uow.session
    items = [line] if line is not None else list(lines)  # several: a whole invoice credited
    draft: InvoiceDraft
    if corrected is not None:
        credited_before = session.scalar(
            select(func.coalesce(func.sum(Invoice.gross_minor), 0)).where(
                Invoice.corrects_id == corrected.id,
                Invoice.kind == DocumentKind.CREDIT_NOTE.value,
            )
        )
        draft = credit_note_for(
            items,
            original=stored_draft(corrected),
            original_number=corrected.number,
            issue_date=issue_date,
            already_credited=Money(int(credited_before or 0), corrected.currency),
        )
    else:
        draft = wallet_credit_note(
            items, customer_id=customer.id, currency=customer.currency, issue_date=issue_date
        )
    gross = draft.gross.minor
    note = Invoice(
        number=next_number(session, series_for(DocumentKind.CREDIT_NOTE, operator), issue_date),
        idempotency_key=key,
        kind=DocumentKind.CREDIT_NOTE.value,
        customer_id=customer.id,
        issue_date=draft.issue_date,
        due_date=draft.due_date,
        currency=draft.currency,
        net_minor=draft.net.minor,
        tax_minor=draft.tax.minor,
        gross_minor=gross,
        # settled when issued: its amount reached the wallet in the same transaction
        paid_minor=gross,
        status=InvoiceStatus.PAID.value,
        corrects_id=corrected.id if corrected is not None else None,
        issued_at=now,
    )
    session.add(note)
    session.flush()
    session.add_all(
        InvoiceLineRow(
            invoice_id=note.id,
            position=position,
            description=item.description,
            service_id=item.service_id,
            period_start=item.period_start,
            period_end=item.period_end,
            quantity_num=item.quantity.numerator,
            quantity_den=item.quantity.denominator,
            unit_price_minor=item.unit_price.minor,
            net_minor=item.net.minor,
            tax_minor=item.tax.minor,
            gross_minor=item.gross.minor,
            tax_rate_bp=item.tax_profile.rate_bp,
            tax_inclusive=item.tax_profile.inclusive,
            kind=item.kind.value,  # a discount line credited stays a discount line
        )
        for position, item in enumerate(draft.lines, start=1)
    )
    return note


def _finish(
    uow: UnitOfWork,
    work: _Work,
    quote: ChangeQuote,
    documents: _Documents,
    from_plan: str,
    to_plan: str | None,
    *,
    now: datetime,
    actor: str,
) -> ChangeResult:
    """Let the engine re-evaluate the customer with the change in place, then commit."""
    session = uow.session
    session.flush()
    outcome = reevaluate_customer(uow, work.customer.id, now=now, actor=actor)
    uow.commit()
    session.refresh(work.service)
    return ChangeResult(
        service=work.service,
        customer=work.customer.name,
        quote=quote,
        from_plan=from_plan,
        to_plan=to_plan,
        invoice_number=documents.invoice.number if documents.invoice else None,
        credit_note_number=documents.credit_note.number if documents.credit_note else None,
        corrected_number=documents.corrected.number if documents.corrected else None,
        balance=ledger.wallet_balance(session, work.customer.id, work.customer.currency),
        outcome=outcome,
    )

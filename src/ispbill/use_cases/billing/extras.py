"""One-off extra charges and recurring add-ons (issue 17, item 4), stored under the customer's
row lock shared with the tick and payments.

* A one-off charge (installation, equipment, a late fee) is priced by
  ``domain/extra_charges.one_off_charge`` and posted at once through the ledger (wallet
  debited the gross, revenue and tax payable credited), under the key
  ``extra-charge:<customer>:<key>``: the same key with the same figures is the same charge
  (nothing posted twice), with other figures a ``Conflict`` on ``idempotency_key``. A prepaid
  wallet pays it at once and must cover it above its minimum balance (prepaid creates no
  debt); a postpaid customer's charge waits, uninvoiced, for the customer's next invoice, on
  which it is a line of its own (``billing_store._issue_invoices``; "Charge & Invoice"
  invoices it at once). The engine then re-evaluates the customer, so a postpaid credit limit
  the charge reaches blocks the services in the same transaction.
* A recurring add-on (a static IP at 3.00 a period) is attached to a service from a day
  (today by default); the tick charges it with each of the service's periods, prorated like
  the plan (``domain/billing``). When the add-on starts inside a period already charged in
  advance, the prorated rest of that period is charged at once (a postpaid customer gets an
  invoice for it at once, as for a plan change). Ending it stops it after its last day; days
  already charged are not given back, so the last day may not fall before them.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from sqlalchemy import select

from ispbill.adapters.db import event_log as events
from ispbill.adapters.db import ledger_store as ledger
from ispbill.adapters.db import settings_store
from ispbill.adapters.db.billing_snapshots import effective_tax, load_snapshots
from ispbill.adapters.db.billing_store import charge_entry, charge_key
from ispbill.adapters.db.invoice_store import IssueRequest, issue_from_charges
from ispbill.adapters.db.lookups import MAX_ID, by_id
from ispbill.adapters.db.models import Charge as ChargeRow
from ispbill.adapters.db.models import (
    Customer,
    Invoice,
    Service,
    ServiceAddOn,
    TaxProfileRow,
)
from ispbill.adapters.db.unit_of_work import UnitOfWork
from ispbill.domain.billing import AddOn, Charge, ChargeKind, charges_for_new_addon
from ispbill.domain.calendar import local_date
from ispbill.domain.customers import BalanceControl
from ispbill.domain.dates import check_date
from ispbill.domain.errors import Conflict, NotFound, ValidationError
from ispbill.domain.extra_charges import new_addon, one_off_charge
from ispbill.domain.ledger import Entry
from ispbill.domain.lifecycle import ServiceState
from ispbill.domain.money import Money
from ispbill.domain.taxes import NO_TAX, TaxProfile
from ispbill.use_cases.billing.reevaluation import reevaluate_customer
from ispbill.use_cases.payments.recording import lock_customer, lock_service

CHARGE_ADDED = "charge.added"
ADDON_ADDED = "service.addon_added"
ADDON_ENDED = "service.addon_ended"
KEY_MAX = 150


@dataclass(frozen=True)
class ExtraChargeView:
    """A one-off charge as the CLI, the API and the console show it."""

    id: int
    customer_id: int
    service_id: int | None
    description: str
    quantity: int
    unit_price: Money
    net: Money
    tax: Money
    gross: Money
    tax_rate_bp: int
    charged_at: datetime
    invoice_number: str | None


@dataclass(frozen=True)
class ExtraChargeResult:
    charge: ExtraChargeView
    created: bool
    paid_from_wallet: bool
    balance: Money


@dataclass(frozen=True)
class AddOnView:
    id: int
    service_id: int
    customer_id: int
    description: str
    price: Money
    tax_profile: str | None
    starts_on: date
    ends_on: date | None


@dataclass(frozen=True)
class AddOnResult:
    addon: AddOnView
    charged: Money  # charged at once for the rest of periods already charged in advance
    invoice_number: str | None
    balance: Money


# -- one-off charges --------------------------------------------------------------------------


def add_extra_charge(
    uow: UnitOfWork,
    *,
    customer_id: int,
    amount: str,
    description: str,
    currency: str | None = None,
    quantity: int = 1,
    service_id: int | None = None,
    tax_profile_id: int | None = None,
    key: str | None = None,
    now: datetime,
    actor: str,
) -> ExtraChargeResult:
    """Charge ``quantity`` x ``amount`` once: from a prepaid wallet at once, or on a postpaid
    customer's next invoice. Refused with nothing written when a rule breaks."""
    if key is not None:
        key = key.strip()
        if not key or len(key) > KEY_MAX:
            raise ValidationError("idempotency_key", f"must be 1 to {KEY_MAX} characters")
    customer = lock_customer(uow, customer_id)
    session = uow.session
    service = _service_of(uow, customer, service_id) if service_id is not None else None
    tax = _tax_for(uow, customer, service, tax_profile_id)
    price = parse_amount(amount, currency, customer.currency, "amount")
    day = local_date(now, customer.billing_timezone)
    charge = one_off_charge(
        service_id=service.id if service else None,
        description=description,
        unit_price=price,
        quantity=quantity,
        tax=tax,
        day=day,
        at=now,
    )
    ledger_key = f"extra-charge:{customer.id}:{key or secrets.token_hex(12)}"
    existing = ledger.find_transaction(session, ledger_key)
    if existing is not None:
        return _repeat(uow, customer, existing.id, charge, service)
    prepaid = customer.balance_control == BalanceControl.PREPAID.value
    balance = ledger.wallet_balance(session, customer.id, customer.currency)
    minimum = Money(customer.minimum_balance_minor, customer.currency)
    if prepaid and balance - charge.gross < minimum:
        raise ValidationError(
            "amount",
            f"the prepaid wallet holds {balance}; charging {charge.gross} would take it below "
            f"its minimum balance {minimum} (record a payment first)",
        )
    entry = _extra_entry(customer.id, charge, ledger_key)
    posted = ledger.post(uow, entry, now=now)
    row = charge_row_of(
        customer.id, charge, posted.transaction.id, service_id=charge_service(charge)
    )
    session.add(row)
    session.flush()
    balance = ledger.wallet_balance(session, customer.id, customer.currency)
    events.record(
        uow,
        now=now,
        actor=actor,
        kind=CHARGE_ADDED,
        subject_type="customer",
        subject_id=customer.id,
        customer_id=customer.id,
        reason=charge.description,
        figures={
            "charge": row.id,
            "service": row.service_id,
            "quantity": quantity,
            "unit_price": str(price),
            "net": str(charge.split.net),
            "tax": str(charge.split.tax),
            "gross": str(charge.gross),
            "tax_profile": tax.name,
            "paid_from": "wallet" if prepaid else "next_invoice",
            "balance": str(balance),
        },
    )
    reevaluate_customer(uow, customer.id, now=now, actor=actor)
    uow.commit()
    return ExtraChargeResult(
        charge=_charge_view(row, None),
        created=True,
        paid_from_wallet=prepaid,
        balance=ledger.wallet_balance(session, customer.id, customer.currency),
    )


def parse_amount(text: str, currency: str | None, customer_currency: str, field: str) -> Money:
    """Major units in the customer's currency (a currency named must be the customer's)."""
    if currency is not None and currency.strip().upper() != customer_currency:
        raise ValidationError(
            "currency",
            f"{currency.strip().upper()} given; the customer pays in {customer_currency}",
        )
    value = Money.from_major(text, customer_currency, field=field)
    if not value.is_positive:
        raise ValidationError(field, "must be greater than zero")
    return value


def charge_service(charge: Charge) -> int | None:
    return charge.service_id or None  # 0: the charge names no service


def list_extra_charges(uow: UnitOfWork, *, customer_id: int) -> list[ExtraChargeView]:
    """The customer's one-off charges, newest first, with the invoice each landed on."""
    by_id(uow.session, Customer, customer_id, field="customer")
    rows = uow.session.execute(
        select(ChargeRow, Invoice.number)
        .outerjoin(Invoice, Invoice.id == ChargeRow.invoice_id)
        .where(
            ChargeRow.customer_id == customer_id,
            ChargeRow.kind == ChargeKind.EXTRA.value,
        )
        .order_by(ChargeRow.id.desc())
    ).all()
    return [_charge_view(row, number) for row, number in rows]


def _repeat(
    uow: UnitOfWork,
    customer: Customer,
    transaction_id: int,
    charge: Charge,
    service: Service | None,
) -> ExtraChargeResult:
    session = uow.session
    row = session.scalars(
        select(ChargeRow).where(ChargeRow.transaction_id == transaction_id)
    ).one_or_none()
    same = (
        row is not None
        and row.kind == ChargeKind.EXTRA.value
        and row.gross_minor == charge.gross.minor
        and row.unit_price_minor == charge.unit_price.minor
        and row.description == charge.description
        and row.service_id == (service.id if service else None)
    )
    if row is None or not same:
        raise Conflict("idempotency_key", "this key was used for another charge with other figures")
    number = session.scalar(select(Invoice.number).where(Invoice.id == row.invoice_id))
    result = ExtraChargeResult(
        charge=_charge_view(row, number),
        created=False,
        paid_from_wallet=customer.balance_control == BalanceControl.PREPAID.value,
        balance=ledger.wallet_balance(session, customer.id, customer.currency),
    )
    uow.session.rollback()
    return result


def _extra_entry(customer_id: int, charge: Charge, key: str) -> Entry:
    entry = charge_entry(customer_id, charge)
    return Entry(
        key=key,
        kind=entry.kind,
        effective_at=entry.effective_at,
        postings=entry.postings,
        memo=f"{charge.description} x{charge.quantity}",
        customer_id=customer_id,
    )


def charge_row_of(
    customer_id: int,
    charge: Charge,
    transaction_id: int,
    *,
    service_id: int | None,
) -> ChargeRow:
    return ChargeRow(
        service_id=service_id,
        customer_id=customer_id,
        kind=charge.kind.value,
        addon_id=charge.addon_id,
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
        transaction_id=transaction_id,
        invoice_id=None,
    )


def _charge_view(row: ChargeRow, invoice_number: str | None) -> ExtraChargeView:
    currency = row.currency
    return ExtraChargeView(
        id=row.id,
        customer_id=row.customer_id,
        service_id=row.service_id,
        description=row.description,
        quantity=row.quantity_num // row.quantity_den,
        unit_price=Money(row.unit_price_minor, currency),
        net=Money(row.net_minor, currency),
        tax=Money(row.tax_minor, currency),
        gross=Money(row.gross_minor, currency),
        tax_rate_bp=row.tax_rate_bp,
        charged_at=row.charged_at,
        invoice_number=invoice_number,
    )


def _service_of(uow: UnitOfWork, customer: Customer, service_id: int) -> Service:
    service = uow.session.get(Service, service_id) if 0 < service_id <= MAX_ID else None
    if service is None or service.customer_id != customer.id:
        raise NotFound("service", service_id, field="service")
    return service


def _tax_for(
    uow: UnitOfWork, customer: Customer, service: Service | None, tax_profile_id: int | None
) -> TaxProfile:
    """The named profile, else as the service is taxed, else as the customer is (its own
    profile, its class's), else none."""
    session = uow.session
    if tax_profile_id is not None:
        row = by_id(session, TaxProfileRow, tax_profile_id, field="tax_profile")
        return TaxProfile(row.name, row.rate_bp, row.inclusive)
    if service is not None:
        [(_, services)] = load_snapshots(session, [customer.id])
        found = next((s for s in services if s.id == service.id), None)
        if found is not None:
            return found.terms.tax
    taxes = {row.id: row for row in session.scalars(select(TaxProfileRow))}
    return effective_tax(customer, customer.customer_class, taxes) or NO_TAX


# -- recurring add-ons ------------------------------------------------------------------------


def add_addon(
    uow: UnitOfWork,
    *,
    service_id: int,
    description: str,
    price: str,
    currency: str | None = None,
    tax_profile_id: int | None = None,
    starts_on: date | None = None,
    ends_on: date | None = None,
    now: datetime,
    actor: str,
) -> AddOnResult:
    """Attach a recurring add-on to a live service from ``starts_on`` (default today, local;
    never earlier), charging at once the prorated rest of periods already charged."""
    for field, value in (("starts_on", starts_on), ("ends_on", ends_on)):
        if value is not None:
            check_date(field, value)
    customer, service = _begin(uow, service_id)
    session = uow.session
    reevaluate_customer(uow, customer.id, now=now, actor=actor)  # due periods first, as they were
    session.flush()
    session.expire_all()
    today = local_date(now, customer.billing_timezone)
    first = starts_on or today
    if first < today:
        raise ValidationError(
            "starts_on", f"{first} is in the past; an add-on starts today or later"
        )
    tax_row = (
        by_id(session, TaxProfileRow, tax_profile_id, field="tax_profile")
        if tax_profile_id is not None
        else None
    )
    [(snapshot, services)] = load_snapshots(session, [customer.id])
    found = next((s for s in services if s.id == service.id), None)
    if found is None:
        raise ValidationError("service", f"service {service.id} is no longer billed")
    tax = (
        TaxProfile(tax_row.name, tax_row.rate_bp, tax_row.inclusive) if tax_row else found.terms.tax
    )
    draft = new_addon(
        description=description,
        price=parse_amount(price, currency, customer.currency, "price"),
        currency=customer.currency,
        tax=tax,
        starts_on=first,
        ends_on=ends_on,
    )
    row = ServiceAddOn(
        service_id=service.id,
        customer_id=customer.id,
        description=draft.description,
        price_minor=draft.price.minor,
        currency=draft.price.currency,
        tax_profile_id=tax_row.id if tax_row else None,
        starts_on=draft.starts_on,
        ends_on=draft.ends_on,
        created_at=now,
        actor=actor,
    )
    session.add(row)
    session.flush()
    addon = AddOn(row.id, draft.description, draft.price, tax, draft.starts_on, draft.ends_on)
    charges = charges_for_new_addon(found, addon, at=now)
    total = Money.zero(customer.currency)
    for charge in charges:
        total = total + charge.gross
    prepaid = customer.balance_control == BalanceControl.PREPAID.value
    minimum = Money(customer.minimum_balance_minor, customer.currency)
    if prepaid and charges and snapshot.balance - total < minimum:
        raise ValidationError(
            "price",
            f"the prepaid wallet holds {snapshot.balance}; the add-on's rest of the period "
            f"charged now ({total}) would take it below its minimum balance {minimum}",
        )
    rows = []
    for charge in charges:
        posted = ledger.post(uow, charge_entry(customer.id, charge), now=now)
        if not posted.created:
            raise Conflict(
                "addon", f"this add-on charge is already recorded ({charge_key(charge)})"
            )
        charge_row = charge_row_of(
            customer.id, charge, posted.transaction.id, service_id=service.id
        )
        session.add(charge_row)
        rows.append(charge_row)
    session.flush()
    invoice = None
    if rows and not prepaid:
        operator = settings_store.load(uow)
        invoice = issue_from_charges(
            session,
            IssueRequest(
                customer=customer, charges=rows, issue_date=today, key=f"addon:{row.id}:invoice"
            ),
            now=now,
            operator=operator,
        )
    balance = ledger.wallet_balance(session, customer.id, customer.currency)
    events.record(
        uow,
        now=now,
        actor=actor,
        kind=ADDON_ADDED,
        subject_type="service",
        subject_id=service.id,
        customer_id=customer.id,
        reason=draft.description,
        figures={
            "addon": row.id,
            "price": str(draft.price),
            "tax_profile": tax.name,
            "starts_on": draft.starts_on.isoformat(),
            "ends_on": draft.ends_on.isoformat() if draft.ends_on else None,
            "charged_now": str(total),
            "invoice": invoice.number if invoice else None,
            "balance": str(balance),
        },
    )
    reevaluate_customer(uow, customer.id, now=now, actor=actor)
    uow.commit()
    return AddOnResult(
        addon=_addon_view(row, tax_row.name if tax_row else None),
        charged=total,
        invoice_number=invoice.number if invoice else None,
        balance=ledger.wallet_balance(session, customer.id, customer.currency),
    )


def end_addon(
    uow: UnitOfWork,
    *,
    addon_id: int,
    ends_on: date | None = None,
    now: datetime,
    actor: str,
) -> AddOnView:
    """Stop an add-on after ``ends_on`` (its last charged day). By default the last day already
    charged, or today when nothing ahead is charged (today counts as used)."""
    if ends_on is not None:
        check_date("ends_on", ends_on)
    if not 0 < addon_id <= MAX_ID:
        raise NotFound("add-on", addon_id, field="addon")
    service_id = uow.session.scalar(
        select(ServiceAddOn.service_id).where(ServiceAddOn.id == addon_id)
    )
    if service_id is None:
        raise NotFound("add-on", addon_id, field="addon")
    uow.session.rollback()
    customer, service = _begin(uow, service_id, allow_ended=True)
    session = uow.session
    reevaluate_customer(uow, customer.id, now=now, actor=actor)
    session.flush()
    session.expire_all()
    row = session.get(ServiceAddOn, addon_id)
    assert row is not None
    if row.ends_on is not None and row.ends_on < local_date(now, customer.billing_timezone):
        raise ValidationError("addon", f"add-on {row.id} already ended on {row.ends_on}")
    today = local_date(now, customer.billing_timezone)
    charged_to = service.billed_until - timedelta(days=1) if service.billed_until else None
    floor = max(d for d in (today - timedelta(days=1), charged_to) if d is not None)
    last = ends_on or max(today, charged_to or today)
    if last < floor:
        raise ValidationError(
            "ends_on",
            f"{last} is before {floor}: days already charged or used are not given back",
        )
    if last < row.starts_on:
        raise ValidationError(
            "ends_on", f"the add-on starts on {row.starts_on}; it cannot end before it"
        )
    previous = row.ends_on
    row.ends_on = last
    events.record(
        uow,
        now=now,
        actor=actor,
        kind=ADDON_ENDED,
        subject_type="service",
        subject_id=service.id,
        customer_id=customer.id,
        reason=row.description,
        figures={
            "addon": row.id,
            "previous_ends_on": previous.isoformat() if previous else None,
            "ends_on": last.isoformat(),
        },
    )
    session.flush()
    reevaluate_customer(uow, customer.id, now=now, actor=actor)
    uow.commit()
    tax_name = _tax_name(uow, row)
    return _addon_view(row, tax_name)


def list_addons(
    uow: UnitOfWork, *, service_id: int | None = None, customer_id: int | None = None
) -> list[AddOnView]:
    query = select(ServiceAddOn).order_by(ServiceAddOn.id)
    if service_id is not None:
        by_id(uow.session, Service, service_id, field="service")
        query = query.where(ServiceAddOn.service_id == service_id)
    if customer_id is not None:
        by_id(uow.session, Customer, customer_id, field="customer")
        query = query.where(ServiceAddOn.customer_id == customer_id)
    return [_addon_view(row, _tax_name(uow, row)) for row in uow.session.scalars(query)]


def addon_customer(uow: UnitOfWork, addon_id: int) -> int:
    """The customer an add-on belongs to (for scope checks at the edge)."""
    found = (
        uow.session.scalar(select(ServiceAddOn.customer_id).where(ServiceAddOn.id == addon_id))
        if 0 < addon_id <= MAX_ID
        else None
    )
    if found is None:
        raise NotFound("add-on", addon_id, field="addon")
    return found


def _tax_name(uow: UnitOfWork, row: ServiceAddOn) -> str | None:
    if row.tax_profile_id is None:
        return None
    tax = uow.session.get(TaxProfileRow, row.tax_profile_id)
    return tax.name if tax else None


def _addon_view(row: ServiceAddOn, tax_name: str | None) -> AddOnView:
    return AddOnView(
        id=row.id,
        service_id=row.service_id,
        customer_id=row.customer_id,
        description=row.description,
        price=Money(row.price_minor, row.currency),
        tax_profile=tax_name,
        starts_on=row.starts_on,
        ends_on=row.ends_on,
    )


def _begin(
    uow: UnitOfWork, service_id: int, *, allow_ended: bool = False
) -> tuple[Customer, Service]:
    """Lock the service's customer (a service never changes customer), then load it."""
    customer, service = lock_service(uow, service_id)
    if not allow_ended and service.state == ServiceState.ENDED.value:
        raise ValidationError("service", f"service {service.id} has ended; it takes no add-on")
    return customer, service

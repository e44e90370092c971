"""Use cases for customers: create one with its wallet and opening funds, read it back.

A prepaid customer "has a wallet from the moment it exists" (CRM.COM: "A wallet is
automatically created when a prepaid subscription is registered"); every customer gets one in
its currency, so postpaid debt and prepaid funds are the same kind of number. PortaBilling's
"available funds" are posted to the ledger as a payment, never written into a balance column.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import func, select

from ispbill.adapters.db import event_log as events
from ispbill.adapters.db import ledger_store as ledger
from ispbill.adapters.db.lookups import by_id, require_unique_name
from ispbill.adapters.db.models import Customer, CustomerClass, Reseller, Service
from ispbill.adapters.db.unit_of_work import UnitOfWork
from ispbill.domain.calendar import CycleKind, load_timezone, local_date, parse_customer_cycle
from ispbill.domain.customers import (
    TEMPLATE_MAX,
    BalanceControl,
    BalanceTerms,
    BusinessModel,
    CustomerOverrides,
    InvoicingMode,
    check_custom_data,
    effective_terms,
    validate_emails,
    validate_grace_days,
    validate_locale,
    validate_name,
)
from ispbill.domain.errors import ValidationError
from ispbill.domain.ledger import AccountKind, AccountRef, EntryKind, transfer
from ispbill.domain.money import Money, normalize_currency
from ispbill.domain.plans import instantiate_cycle
from ispbill.use_cases.catalog.customer_records import ContactRecord, apply_record, checked_record
from ispbill.use_cases.catalog.offerings import class_defaults

FUNDS_METHODS = {"cash": AccountKind.CASH, "bank": AccountKind.BANK, "card": AccountKind.CARD}


def choice(enum: type[Any], value: str, field_name: str) -> Any:
    """Parse an enumerated option, listing the accepted values when it is wrong."""
    try:
        return enum(value.strip().lower())
    except ValueError:
        accepted = ", ".join(m.value for m in enum)
        raise ValidationError(field_name, f"must be one of: {accepted}") from None


@dataclass(frozen=True)
class NewCustomer:
    name: str
    customer_class_id: int
    currency: str
    balance_control: str = BalanceControl.PREPAID.value
    billing_cycle: str = "monthly"
    cycle_n: int | None = None
    anchor_day: int | None = None
    billing_timezone: str = "UTC"
    business_model: str = "internet_access"
    invoicing_mode: str = "forward"
    use_credit_automatically: bool = True
    credit_limit: str | None = None
    minimum_balance: str | None = None
    available_funds: str | None = None
    funds_method: str = "cash"
    reseller_id: int | None = None
    locale: str = "en_US"
    grace_days: int | None = None
    invoice_template: str | None = None
    notification_emails: Sequence[str] | None = None
    custom_data: Mapping[str, str] = field(default_factory=dict)
    record: ContactRecord = field(default_factory=ContactRecord)


def _amount(value: str | None, currency: str, field_name: str) -> Money | None:
    if value is None or value.strip() == "":
        return None
    return Money.from_major(value, currency, field=field_name)


def add_customer(uow: UnitOfWork, *, spec: NewCustomer, now: datetime, actor: str) -> Customer:
    """Validate everything first, then write customer, wallet, funds and event in one go."""
    session = uow.session
    name = validate_name(spec.name)
    klass = by_id(session, CustomerClass, spec.customer_class_id, field="customer_class")
    reseller = (
        by_id(session, Reseller, spec.reseller_id, field="reseller")
        if spec.reseller_id is not None
        else None
    )
    currency = normalize_currency(spec.currency)
    balance_control = choice(BalanceControl, spec.balance_control, "balance_control")
    terms = BalanceTerms(
        balance_control=balance_control,
        currency=currency,
        credit_limit=_amount(spec.credit_limit, currency, "credit_limit"),
        minimum_balance=_amount(spec.minimum_balance, currency, "minimum_balance"),
        available_funds=_amount(spec.available_funds, currency, "available_funds"),
    )
    zone = load_timezone(spec.billing_timezone)
    locale = validate_locale(spec.locale)
    created_on = local_date(now, zone)
    kind, cycle_n = parse_customer_cycle(spec.billing_cycle, spec.cycle_n)
    if spec.anchor_day is not None:
        if kind is not CycleKind.MONTHLY_ANNIVERSARY:
            raise ValidationError(
                "anchor_day", "only monthly_anniversary cycles take an anchor day"
            )
        if not 1 <= spec.anchor_day <= 31:
            raise ValidationError("anchor_day", "must be between 1 and 31")
        if spec.anchor_day != created_on.day:
            # PortaBilling: "N is the day of the month when the customer was created".
            raise ValidationError(
                "anchor_day",
                f"a monthly_anniversary cycle runs from the creation day "
                f"({created_on.day} in {zone.key}); leave it out or give {created_on.day}",
            )
    cycle = instantiate_cycle(kind, cycle_n, created_on, anchor_day=spec.anchor_day)
    defaults = class_defaults(klass)
    custom_data = check_custom_data(defaults.custom_fields, spec.custom_data)
    overrides = CustomerOverrides(
        grace_days=validate_grace_days(spec.grace_days) if spec.grace_days is not None else None,
        invoice_template=(
            validate_name(spec.invoice_template, "invoice_template", TEMPLATE_MAX)
            if spec.invoice_template is not None
            else None
        ),
        notification_emails=(
            validate_emails(spec.notification_emails)
            if spec.notification_emails is not None
            else None
        ),
    )
    effective_terms(defaults, overrides)
    funds_account = choice_method(spec.funds_method)
    record = checked_record(spec.record)
    require_unique_name(session, Customer, name)

    customer = Customer(
        name=name,
        reseller_id=reseller.id if reseller else None,
        class_id=klass.id,
        business_model=choice(BusinessModel, spec.business_model, "business_model").value,
        balance_control=balance_control.value,
        currency=currency,
        cycle_kind=cycle.kind.value,
        cycle_n=cycle.n,
        cycle_anchor_day=cycle.anchor_day,
        cycle_origin=created_on,
        billing_timezone=zone.key,
        locale=locale,
        credit_limit_minor=terms.credit_limit.minor if terms.credit_limit else None,
        minimum_balance_minor=terms.minimum_balance.minor if terms.minimum_balance else 0,
        invoicing_mode=choice(InvoicingMode, spec.invoicing_mode, "invoicing_mode").value,
        use_credit_automatically=spec.use_credit_automatically,
        grace_days=overrides.grace_days,
        invoice_template=overrides.invoice_template,
        notification_emails=(
            list(overrides.notification_emails)
            if overrides.notification_emails is not None
            else None
        ),
        custom_data=custom_data,
        created_at=now,
    )
    apply_record(customer, record)
    session.add(customer)
    session.flush()
    wallet = AccountRef.wallet(customer.id, currency)
    ledger.ensure_accounts(session, [wallet], now=now)
    events.record(
        uow,
        now=now,
        actor=actor,
        kind="customer.created",
        subject_type="customer",
        subject_id=customer.id,
        customer_id=customer.id,
        figures={
            "balance_control": customer.balance_control,
            "currency": currency,
            "billing_cycle": cycle.describe(),
        },
    )
    if terms.available_funds is not None and terms.available_funds.is_positive:
        ledger.post(
            uow,
            transfer(
                key=f"opening-funds:{customer.id}",
                kind=EntryKind.OPENING_FUNDS,
                debit=AccountRef.system(funds_account, currency),
                credit=wallet,
                amount=terms.available_funds,
                effective_at=now,
                memo="available funds at sign-up",
                customer_id=customer.id,
            ),
            now=now,
        )
        events.record(
            uow,
            now=now,
            actor=actor,
            kind="wallet.funded",
            subject_type="customer",
            subject_id=customer.id,
            customer_id=customer.id,
            reason="available funds",
            figures={"amount": str(terms.available_funds), "method": spec.funds_method},
        )
    uow.commit()
    return customer


def choice_method(method: str) -> AccountKind:
    if method not in FUNDS_METHODS:
        raise ValidationError("funds_method", f"must be one of: {', '.join(FUNDS_METHODS)}")
    return FUNDS_METHODS[method]


def get_customer(uow: UnitOfWork, customer_id: int) -> Customer:
    return by_id(uow.session, Customer, customer_id, field="customer")


@dataclass(frozen=True)
class CustomerSummary:
    customer: Customer
    balance: Money
    services: int


def list_customers(
    uow: UnitOfWork, *, search: str | None = None, limit: int = 200
) -> list[CustomerSummary]:
    query = select(Customer).order_by(Customer.id).limit(limit)
    if search:
        query = query.where(Customer.name.icontains(search, autoescape=True))  # '%' is a letter
    customers = list(uow.session.scalars(query))
    counts = dict(
        uow.session.execute(
            select(Service.customer_id, func.count())
            .where(Service.customer_id.in_([c.id for c in customers]))
            .group_by(Service.customer_id)
        ).all()
    )
    balances = ledger.wallet_balances(uow.session, [(c.id, c.currency) for c in customers])
    return [CustomerSummary(c, balances[c.id], int(counts.get(c.id, 0))) for c in customers]

"""Editing a customer, archiving and restoring one (issue 17).

An edit is validated as a new customer is (the same domain rules, the refusal naming the field
and the rule, nothing written), then recorded as one ``customer.updated`` event with the old
and new value of each field it changed.

When each change takes effect:

* money limits (minimum balance, credit limit, automatic use of credit), the class, grace days,
  notification list, language, custom data and the contact record: at once; the next tick (or
  the next payment's re-evaluation) decides with them.
* the billing timezone, cycle and invoicing mode cut time into periods: changing them in the
  middle of a charged period would bill a day twice or never. While no service of the customer
  is running (none yet, or every one ended or not started) they change at once; otherwise the
  edit is accepted as a pending change from the customer's next billing period, applied by the
  tick before it bills that period (``use_cases/billing/customer_pending.py``).

An archived customer keeps every record and its history, takes no new services and leaves the
default lists; only a customer whose services have all ended may be archived.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from sqlalchemy import select

from ispbill.adapters.db import event_log as events
from ispbill.adapters.db.lookups import by_id, require_unique_name
from ispbill.adapters.db.models import Customer, CustomerClass, Service
from ispbill.adapters.db.unit_of_work import UnitOfWork
from ispbill.domain.calendar import (
    CycleKind,
    load_timezone,
    local_date,
    parse_customer_cycle,
)
from ispbill.domain.customers import (
    BalanceControl,
    BalanceTerms,
    BusinessModel,
    InvoicingMode,
    check_custom_data,
    validate_emails,
    validate_grace_days,
    validate_locale,
    validate_name,
)
from ispbill.domain.errors import ValidationError
from ispbill.domain.lifecycle import ServiceState
from ispbill.domain.money import Money
from ispbill.domain.plans import instantiate_cycle
from ispbill.use_cases.billing import customer_pending as pending
from ispbill.use_cases.catalog.customer_accounts import choice
from ispbill.use_cases.catalog.customer_records import (
    ContactRecord,
    apply_record,
    checked_record,
    record_values,
)
from ispbill.use_cases.catalog.edit_log import diff, record_edit
from ispbill.use_cases.catalog.offerings import class_defaults
from ispbill.use_cases.payments.recording import lock_customer

PERIOD_FIELDS = ("billing_timezone", "billing_cycle", "invoicing_mode")  # from the next period


@dataclass(frozen=True)
class CustomerChanges:
    """What to change; ``None`` leaves a field as it is. ``credit_limit`` "" removes the limit,
    ``minimum_balance`` "" sets it to zero, ``notification_emails`` [] falls back to the
    class's list, a ``custom_data`` value "" removes that field."""

    name: str | None = None
    customer_class_id: int | None = None
    credit_limit: str | None = None
    minimum_balance: str | None = None
    use_credit_automatically: bool | None = None
    grace_days: int | None = None
    locale: str | None = None
    notification_emails: Sequence[str] | None = None
    custom_data: Mapping[str, str] = field(default_factory=dict)
    business_model: str | None = None
    billing_timezone: str | None = None
    billing_cycle: str | None = None
    cycle_n: int | None = None
    invoicing_mode: str | None = None
    record: ContactRecord = field(default_factory=ContactRecord)


def _minor(value: Money | None) -> str | None:
    return None if value is None else str(value)


def customer_values(customer: Customer) -> dict[str, Any]:
    """What an edit compares and an event records, as plain JSON values."""
    credit = (
        Money(customer.credit_limit_minor, customer.currency)
        if customer.credit_limit_minor is not None
        else None
    )
    return {
        "name": customer.name,
        "customer_class": customer.class_id,
        "credit_limit": _minor(credit),
        "minimum_balance": str(Money(customer.minimum_balance_minor, customer.currency)),
        "use_credit_automatically": customer.use_credit_automatically,
        "grace_days": customer.grace_days,
        "locale": customer.locale,
        "notification_emails": customer.notification_emails,
        "custom_data": dict(customer.custom_data),
        "business_model": customer.business_model,
        "billing_timezone": customer.billing_timezone,
        "billing_cycle": f"{customer.cycle_kind}:{customer.cycle_n}",
        "invoicing_mode": customer.invoicing_mode,
        **record_values(customer),
    }


def _amount(text: str, currency: str, field_name: str) -> Money | None:
    return None if not text.strip() else Money.from_major(text, currency, field=field_name)


def update_customer(
    uow: UnitOfWork,
    *,
    customer_id: int,
    changes: CustomerChanges,
    now: datetime,
    actor: str,
    reason: str = "",
) -> Customer:
    """Validate every change, then apply them all and record one event; refuses (writing
    nothing) on the first broken rule."""
    customer = lock_customer(uow, customer_id)  # the tick's per-customer mutex
    session = uow.session
    before = customer_values(customer)
    updates: dict[str, Any] = {}

    if changes.name is not None:
        name = validate_name(changes.name)
        if name != customer.name:
            require_unique_name(session, Customer, name)
        updates["name"] = name
    klass = customer.customer_class
    if changes.customer_class_id is not None:
        klass = by_id(session, CustomerClass, changes.customer_class_id, field="customer_class")
        updates["class_id"] = klass.id
    custom_data = dict(customer.custom_data)
    for key, value in changes.custom_data.items():
        if value == "":
            custom_data.pop(key, None)
        else:
            custom_data[key] = value
    if changes.custom_data or changes.customer_class_id is not None:
        updates["custom_data"] = check_custom_data(class_defaults(klass).custom_fields, custom_data)

    control = BalanceControl(customer.balance_control)
    credit = (
        _amount(changes.credit_limit, customer.currency, "credit_limit")
        if changes.credit_limit is not None
        else (
            Money(customer.credit_limit_minor, customer.currency)
            if customer.credit_limit_minor is not None
            else None
        )
    )
    minimum = (
        _amount(changes.minimum_balance, customer.currency, "minimum_balance")
        if changes.minimum_balance is not None
        else Money(customer.minimum_balance_minor, customer.currency)
    )
    if minimum is not None and minimum.is_negative:
        raise ValidationError("minimum_balance", "must not be negative")
    BalanceTerms(control, customer.currency, credit_limit=credit, minimum_balance=minimum)
    if changes.credit_limit is not None:
        updates["credit_limit_minor"] = credit.minor if credit is not None else None
    if changes.minimum_balance is not None:
        updates["minimum_balance_minor"] = minimum.minor if minimum is not None else 0
    if changes.use_credit_automatically is not None:
        updates["use_credit_automatically"] = changes.use_credit_automatically
    if changes.grace_days is not None:
        updates["grace_days"] = validate_grace_days(changes.grace_days)
    if changes.locale is not None:
        updates["locale"] = validate_locale(changes.locale)
    if changes.notification_emails is not None:
        emails = validate_emails([e.strip() for e in changes.notification_emails if e.strip()])
        updates["notification_emails"] = list(emails) or None
    if changes.business_model is not None:
        updates["business_model"] = choice(
            BusinessModel, changes.business_model, "business_model"
        ).value

    try:
        zone = load_timezone(changes.billing_timezone or customer.billing_timezone)
    except ValidationError as exc:
        raise ValidationError("billing_timezone", exc.rule) from None
    if changes.billing_timezone is not None:
        updates["billing_timezone"] = zone.key
    if changes.invoicing_mode is not None:
        updates["invoicing_mode"] = choice(
            InvoicingMode, changes.invoicing_mode, "invoicing_mode"
        ).value
    if changes.billing_cycle is not None or changes.cycle_n is not None:
        kind, n = parse_customer_cycle(
            changes.billing_cycle or customer.cycle_kind,
            changes.cycle_n,
        )
        if (kind.value, n) != (customer.cycle_kind, customer.cycle_n):
            today = local_date(now, zone)
            cycle = instantiate_cycle(kind, n, today)
            updates.update(
                cycle_kind=cycle.kind.value,
                cycle_n=cycle.n,
                cycle_anchor_day=cycle.anchor_day
                if kind is CycleKind.MONTHLY_ANNIVERSARY
                else None,
                cycle_origin=today,
            )
    record = checked_record(changes.record, customer)

    _defer_period_changes(uow, customer, updates, now=now, actor=actor, reason=reason)

    for column, value in updates.items():
        setattr(customer, column, value)
    apply_record(customer, record)
    session.flush()
    changed = diff(before, customer_values(customer))
    if changed:
        record_edit(
            uow,
            kind="customer.updated",
            subject_type="customer",
            subject_id=customer.id,
            customer_id=customer.id,
            changed=changed,
            now=now,
            actor=actor,
            reason=reason,
        )
    uow.commit()
    return customer


_PERIOD_COLUMNS = {
    "billing_timezone": ("billing_timezone",),
    "billing_cycle": ("cycle_kind", "cycle_n", "cycle_anchor_day", "cycle_origin"),
    "invoicing_mode": ("invoicing_mode",),
}


def _shown(field_name: str, values: Mapping[str, Any]) -> str:
    if field_name == "billing_cycle":
        return f"{values['cycle_kind']}:{values['cycle_n']}"
    return str(values[field_name])


def _defer_period_changes(
    uow: UnitOfWork,
    customer: Customer,
    updates: dict[str, Any],
    *,
    now: datetime,
    actor: str,
    reason: str,
) -> None:
    """Timezone, cycle and invoicing mode: at once while no service runs (a planned change of
    the field is dropped), else from the next period (``billing/customer_pending.py``): taken
    out of ``updates`` and recorded as a pending change."""
    # a value equal to the current one (a form sends every field back) changes nothing and
    # leaves a planned change alone
    edited = [
        name
        for name, columns in _PERIOD_COLUMNS.items()
        if any(c in updates and updates[c] != getattr(customer, c) for c in columns)
    ]
    if not edited:
        return
    running = _running(uow, customer, now)
    for name in edited:
        columns = _PERIOD_COLUMNS[name]
        if not running:
            pending.drop_planned(
                uow, customer, name, now=now, actor=actor, reason="changed at once"
            )
            continue
        new = {column: updates.pop(column) for column in columns if column in updates}
        old = {column: getattr(customer, column) for column in columns}
        pending.plan_change(
            uow,
            customer,
            field=name,
            columns={k: v.isoformat() if isinstance(v, date) else v for k, v in new.items()},
            old_value=_shown(name, old),
            new_value=_shown(name, {**old, **new}),
            now=now,
            actor=actor,
            reason=reason,
        )


def _running(uow: UnitOfWork, customer: Customer, now: datetime) -> bool:
    """A service of the customer has started and not ended."""
    today = local_date(now, customer.billing_timezone)
    found = uow.session.scalar(
        select(Service.id).where(
            Service.customer_id == customer.id,
            Service.state != ServiceState.ENDED.value,
            Service.active_from <= today,
        )
    )
    return found is not None


def archive_customer(
    uow: UnitOfWork, *, customer_id: int, now: datetime, actor: str, reason: str = ""
) -> Customer:
    """Hide a customer whose services have all ended; its records and history stay."""
    uow.begin_write()
    customer = by_id(uow.session, Customer, customer_id, field="customer")
    if customer.archived_at is not None:
        raise ValidationError("customer", f"{customer.name!r} is already archived")
    open_services = uow.session.scalars(
        select(Service.id)
        .where(Service.customer_id == customer.id, Service.state != ServiceState.ENDED.value)
        .order_by(Service.id)
    ).all()
    if open_services:
        listed = ", ".join(str(i) for i in open_services)
        raise ValidationError(
            "customer", f"has services not ended ({listed}); terminate them before archiving"
        )
    customer.archived_at = now
    events.record(
        uow,
        now=now,
        actor=actor,
        kind="customer.archived",
        subject_type="customer",
        subject_id=customer.id,
        customer_id=customer.id,
        reason=reason,
    )
    uow.commit()
    return customer


def restore_customer(
    uow: UnitOfWork, *, customer_id: int, now: datetime, actor: str, reason: str = ""
) -> Customer:
    """Bring an archived customer back to the lists; it may take services again."""
    uow.begin_write()
    customer = by_id(uow.session, Customer, customer_id, field="customer")
    if customer.archived_at is None:
        raise ValidationError("customer", f"{customer.name!r} is not archived")
    customer.archived_at = None
    events.record(
        uow,
        now=now,
        actor=actor,
        kind="customer.restored",
        subject_type="customer",
        subject_id=customer.id,
        customer_id=customer.id,
        reason=reason,
    )
    uow.commit()
    return customer

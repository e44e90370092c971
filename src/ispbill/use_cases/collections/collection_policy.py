"""The collection policy as stored: one document per operator, overridable per customer class.

ISPadmin keeps the non-payer rules in "Invoicing Settings General" (one set per operator);
seed 004 puts the grace period on the customer class. Here the operator's document is the
settings row ``collection_policy`` and a class may override any of its keys
(``customer_classes.collection_policy``); the grace period comes from the customer (or its
class). ``effective_policy`` resolves that chain into the pure ``CollectionPolicy`` the domain
decides with. The policy is off until the operator turns it on (ISPadmin recommends turning it
on only once the invoice module and the routers are understood).
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from pydantic import ValidationError as PydanticError
from sqlalchemy import exists, or_, select, update

from ispbill.adapters.db import event_log as events
from ispbill.adapters.db.invoice_store import OPEN
from ispbill.adapters.db.lookups import by_id
from ispbill.adapters.db.models import Customer, CustomerClass, Invoice, Service, SettingRow
from ispbill.adapters.db.unit_of_work import UnitOfWork
from ispbill.domain.collection import CollectionPolicy, CombineRule, SettledWhen, ThrottleStage
from ispbill.domain.errors import ValidationError
from ispbill.domain.invoicing import DocumentKind
from ispbill.domain.lifecycle import SuspensionReason
from ispbill.domain.money import Money

SETTING_KEY = "collection_policy"


class CollectionSettings(BaseModel):
    """The stored policy; amounts are decimal strings in each customer's currency."""

    model_config = ConfigDict(extra="forbid")

    enabled: bool = Field(False, description="Suspend non-payers automatically.")
    days_after_due: int = Field(
        14,
        ge=0,
        le=3650,
        description="Suspend once an invoice is unpaid this many whole days "
        "after its due date (and grace): 14 suspends on day 15.",
    )
    minimum_outstanding: str | None = Field(
        None, description="Overdue total that must be reached (empty: no amount rule)."
    )
    combine: CombineRule = Field(
        CombineRule.BOTH, description="'both' rules must hold (default) or 'either'."
    )
    settled_when: SettledWhen = Field(
        SettledWhen.ZERO_OVERDUE,
        description="When a suspension is lifted: 'zero_overdue' or 'below_minimum'.",
    )
    throttle_after_days: int | None = Field(
        None, ge=0, le=3650, description="Throttle stage: days after due (empty: no throttle)."
    )
    throttle_down_kbps: int | None = Field(None, gt=0, le=10_000_000)
    throttle_up_kbps: int | None = Field(None, gt=0, le=10_000_000)
    reminder_days_before: int | None = Field(
        None, ge=1, le=3650, description="Remind this many days before each stage."
    )
    reactivation_fee: str | None = Field(
        None, description="Charged when a non-payer suspension is lifted by payment."
    )
    exclusion_dates: list[date] = Field(
        default_factory=list, description="Holidays: no suspension starts on these dates."
    )
    notify_suspension: bool = Field(
        True,
        description="E-mail the subscriber when collections suspends or throttles a service, "
        "and when a payment or a promise to pay restores it (reminders have their own key).",
    )
    promise_days_max: int = Field(
        14, ge=1, le=90, description="Longest promise to pay an operator may grant."
    )
    subscriber_promise_days: int = Field(
        3, ge=0, le=30, description="Days a subscriber's own promise lasts (0: not offered)."
    )

    def policy(self, *, currency: str, grace_days: int) -> CollectionPolicy:
        """The domain policy for a customer in ``currency``; refuses inconsistent settings
        (a throttle after the suspension, a half-set throttle speed) naming the key."""
        throttle: ThrottleStage | None = None
        speeds = (self.throttle_down_kbps, self.throttle_up_kbps)
        if self.throttle_after_days is not None:
            if None in speeds:
                raise ValidationError(
                    "throttle_down_kbps", "the throttle stage needs both speeds (kbps)"
                )
            throttle = ThrottleStage(
                self.throttle_after_days, self.throttle_down_kbps or 0, self.throttle_up_kbps or 0
            )
        return CollectionPolicy(
            enabled=self.enabled,
            days_after_due=self.days_after_due,
            minimum_outstanding=_money(self.minimum_outstanding, currency, "minimum_outstanding"),
            grace_days=grace_days,
            combine=self.combine,
            settled_when=self.settled_when,
            throttle=throttle,
            reminder_days_before=self.reminder_days_before,
            reactivation_fee=_money(self.reactivation_fee, currency, "reactivation_fee"),
            exclusion_dates=frozenset(self.exclusion_dates),
            notify_suspension=self.notify_suspension,
        )


def _money(raw: str | None, currency: str, field: str) -> Money | None:
    return None if raw is None else Money.from_major(raw, currency, field=field)


def operator_document(uow: UnitOfWork) -> dict[str, Any]:
    row = uow.session.get(SettingRow, SETTING_KEY)
    return dict(row.value) if row is not None and isinstance(row.value, dict) else {}


def load(uow: UnitOfWork, *, klass: CustomerClass | None = None) -> CollectionSettings:
    """The operator's policy, with a class's overrides on top when given."""
    document = operator_document(uow)
    if klass is not None and klass.collection_policy:
        document |= klass.collection_policy
    return CollectionSettings.model_validate(document)


def resolve(operator: dict[str, Any], klass: CustomerClass | None) -> CollectionSettings:
    """Like ``load`` from an already read operator document (the tick reads it once)."""
    document = dict(operator)
    if klass is not None and klass.collection_policy:
        document |= klass.collection_policy
    return CollectionSettings.model_validate(document)


def grace_days(customer: Customer, klass: CustomerClass) -> int:
    """PortaBilling: the grace period is the class's unless the customer overrides it."""
    return customer.grace_days if customer.grace_days is not None else klass.grace_days


def effective_policy(
    operator: dict[str, Any], customer: Customer, klass: CustomerClass
) -> CollectionPolicy:
    return resolve(operator, klass).policy(
        currency=customer.currency, grace_days=grace_days(customer, klass)
    )


def _parse(key: str, raw: str | None) -> Any:
    """One key's raw text as the document stores it ('' or 'none' clears it)."""
    if raw is None or raw.strip().lower() in ("", "none", "null"):
        return None
    text = raw.strip()
    if key == "exclusion_dates":
        return [part.strip() for part in text.split(",") if part.strip()]
    return text


def set_values(
    uow: UnitOfWork,
    *,
    changes: dict[str, str | None],
    customer_class_id: int | None,
    now: datetime,
    actor: str,
) -> CollectionSettings:
    """Change keys of the operator's policy (or a class's overrides; a cleared key falls back
    to the operator's). Every customer concerned (an open invoice, or a non-payer suspension,
    throttle or promise) is then due for review: turning the policy
    off lifts every automatic non-payer suspension and throttle, turning it on re-evaluates
    everyone, at the next tick (``ispbill collection set`` runs that pass at once)."""
    if not changes:
        raise ValidationError("key", "give at least one key=value")
    for key in changes:
        if key not in CollectionSettings.model_fields:
            known = ", ".join(CollectionSettings.model_fields)
            raise ValidationError(key, f"unknown collection setting; known: {known}")
    uow.begin_write()
    klass = (
        by_id(uow.session, CustomerClass, customer_class_id, field="class")
        if customer_class_id is not None
        else None
    )
    own = dict(klass.collection_policy or {}) if klass else operator_document(uow)
    for key, raw in changes.items():
        value = _parse(key, raw)
        if value is None:
            own.pop(key, None)  # back to the operator's value, or the default
        else:
            own[key] = value
    base = operator_document(uow) if klass else {}
    try:
        merged = CollectionSettings.model_validate(base | own)
    except PydanticError as exc:
        error = exc.errors()[0]
        field = ".".join(str(p) for p in error["loc"]) or "policy"
        raise ValidationError(field, error["msg"]) from None
    _check_for_currencies(uow, merged)
    stored = {k: v for k, v in merged.model_dump(mode="json").items() if k in own}
    if klass is not None:
        klass.collection_policy = stored or None
    else:
        row = uow.session.get(SettingRow, SETTING_KEY)
        if row is None:
            uow.session.add(SettingRow(key=SETTING_KEY, value=stored, updated_at=now))
        else:
            row.value = stored
            row.updated_at = now
    # only customers the policy can act on: an open invoice, or a non-payer suspension,
    # throttle or promise to undo (a prepaid base without debt costs nothing)
    concerned = or_(
        exists().where(
            Invoice.customer_id == Customer.id,
            Invoice.status.in_(OPEN),
            Invoice.kind == DocumentKind.INVOICE.value,
        ),
        exists().where(
            Service.customer_id == Customer.id,
            or_(
                Service.state_reason == SuspensionReason.NON_PAYER.value,
                Service.throttle_down_kbps.is_not(None),
            ),
        ),
        Customer.promise_until.is_not(None),
    )
    review = update(Customer).where(concerned).values(collection_review_at=now)
    if klass is not None:
        review = review.where(Customer.class_id == klass.id)
    uow.session.execute(review)
    events.record(
        uow,
        now=now,
        actor=actor,
        kind="collection.policy_changed",
        subject_type="customer_class" if klass else "setting",
        subject_id=klass.id if klass else 0,
        reason=", ".join(sorted(changes)),
        figures={"class": klass.name if klass else None, "policy": stored},
    )
    uow.commit()
    return merged


def _check_for_currencies(uow: UnitOfWork, merged: CollectionSettings) -> None:
    """Amounts are read in each customer's currency: refuse one that some currency in use
    cannot hold (three decimals in USD, say)."""
    currencies = set(uow.session.scalars(select(Customer.currency).distinct())) or {"USD"}
    for currency in sorted(currencies):
        merged.policy(currency=currency, grace_days=0)

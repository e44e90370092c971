"""Editing what the operator set up once: tax profiles, customer classes, resellers and plans;
archiving a plan (issue 17).

Each edit is validated as the creation is (the same domain rules), writes nothing when refused,
and records one ``<kind>.updated`` event with the old and new value of each changed field. All
take effect at once: the next charge uses the new tax rate, grace days, speeds or FUP tiers
(charges already made keep their figures). A plan's price is not edited here: a price change
needs an effective date so charged periods never change (issue 17, item 2).

An archived plan keeps its services and history, is sold to no one (no new service, no plan
change onto it) and leaves the default lists.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select

from ispbill.adapters.db import event_log as events
from ispbill.adapters.db.lookups import by_id, require_unique_name
from ispbill.adapters.db.models import (
    CustomerClass,
    Plan,
    PlanFupTier,
    Reseller,
    Service,
    TaxProfileRow,
)
from ispbill.adapters.db.unit_of_work import UnitOfWork
from ispbill.domain.customers import (
    TEMPLATE_MAX,
    ClassDefaults,
    validate_emails,
    validate_grace_days,
    validate_name,
)
from ispbill.domain.errors import ValidationError
from ispbill.domain.plans import (
    Speed,
    parse_speed,
    validate_fup_tiers,
    validate_period_options,
)
from ispbill.domain.taxes import NAME_MAX as TAX_NAME_MAX
from ispbill.domain.taxes import TaxProfile, parse_rate_bp
from ispbill.use_cases.catalog.edit_log import diff, record_edit
from ispbill.use_cases.catalog.offerings import (
    parse_custom_field,
    parse_fup_tier,
    parse_period_option,
)


def _apply(row: Any, updates: dict[str, Any]) -> None:
    for column, value in updates.items():
        setattr(row, column, value)


def _finish(
    uow: UnitOfWork,
    *,
    kind: str,
    subject_type: str,
    row: Any,
    before: dict[str, Any],
    after: dict[str, Any],
    now: datetime,
    actor: str,
) -> None:
    uow.session.flush()
    changed = diff(before, after)
    if changed:
        record_edit(
            uow,
            kind=kind,
            subject_type=subject_type,
            subject_id=row.id,
            changed=changed,
            now=now,
            actor=actor,
        )
    uow.commit()


# -- tax profiles ------------------------------------------------------------------------------


def _tax_values(row: TaxProfileRow) -> dict[str, Any]:
    return {"name": row.name, "rate_bp": row.rate_bp, "inclusive": row.inclusive}


def update_tax_profile(
    uow: UnitOfWork,
    *,
    tax_profile_id: int,
    name: str | None = None,
    rate: str | None = None,
    inclusive: bool | None = None,
    now: datetime,
    actor: str,
) -> TaxProfileRow:
    """A new rate applies to charges made from now on; issued documents keep theirs."""
    uow.begin_write()
    row = by_id(uow.session, TaxProfileRow, tax_profile_id, field="tax_profile")
    before = _tax_values(row)
    updates: dict[str, Any] = {}
    if name is not None:
        updates["name"] = validate_name(name, max_length=TAX_NAME_MAX)
        if updates["name"] != row.name:
            require_unique_name(uow.session, TaxProfileRow, updates["name"])
    profile = TaxProfile(
        name=updates.get("name", row.name),
        rate_bp=parse_rate_bp(rate) if rate is not None else row.rate_bp,
        inclusive=row.inclusive if inclusive is None else inclusive,
    )
    updates.update(rate_bp=profile.rate_bp, inclusive=profile.inclusive)
    _apply(row, updates)
    _finish(
        uow,
        kind="tax_profile.updated",
        subject_type="tax_profile",
        row=row,
        before=before,
        after=_tax_values(row),
        now=now,
        actor=actor,
    )
    return row


# -- resellers ---------------------------------------------------------------------------------


def update_reseller(
    uow: UnitOfWork, *, reseller_id: int, name: str, now: datetime, actor: str
) -> Reseller:
    uow.begin_write()
    row = by_id(uow.session, Reseller, reseller_id, field="reseller")
    before = {"name": row.name}
    cleaned = validate_name(name)
    if cleaned != row.name:
        require_unique_name(uow.session, Reseller, cleaned)
    row.name = cleaned
    _finish(
        uow,
        kind="reseller.updated",
        subject_type="reseller",
        row=row,
        before=before,
        after={"name": row.name},
        now=now,
        actor=actor,
    )
    return row


# -- customer classes --------------------------------------------------------------------------


@dataclass(frozen=True)
class ClassChanges:
    """``None`` leaves a field; ``tax_profile_id`` 0 removes the class's tax profile."""

    name: str | None = None
    grace_days: int | None = None
    invoice_template: str | None = None
    tax_profile_id: int | None = None
    notification_emails: Sequence[str] | None = None
    custom_fields: Sequence[str] | None = None


def _class_values(row: CustomerClass) -> dict[str, Any]:
    return {
        "name": row.name,
        "grace_days": row.grace_days,
        "invoice_template": row.invoice_template,
        "tax_profile": row.tax_profile_id,
        "notification_emails": list(row.notification_emails),
        "custom_fields": [dict(f) for f in row.custom_fields],
    }


def update_class(
    uow: UnitOfWork, *, class_id: int, changes: ClassChanges, now: datetime, actor: str
) -> CustomerClass:
    """A new custom field is asked of each customer at its next edit; grace days, the tax
    profile and the notification list apply at once to customers without their own."""
    uow.begin_write()
    session = uow.session
    row = by_id(session, CustomerClass, class_id, field="customer_class")
    before = _class_values(row)
    updates: dict[str, Any] = {}
    if changes.name is not None:
        updates["name"] = validate_name(changes.name)
        if updates["name"] != row.name:
            require_unique_name(session, CustomerClass, updates["name"])
    if changes.grace_days is not None:
        updates["grace_days"] = validate_grace_days(changes.grace_days)
    if changes.invoice_template is not None:
        updates["invoice_template"] = validate_name(
            changes.invoice_template, "invoice_template", TEMPLATE_MAX
        )
    if changes.tax_profile_id is not None:
        updates["tax_profile_id"] = (
            by_id(session, TaxProfileRow, changes.tax_profile_id, field="tax_profile").id
            if changes.tax_profile_id
            else None
        )
    if changes.notification_emails is not None:
        updates["notification_emails"] = list(
            validate_emails([e.strip() for e in changes.notification_emails if e.strip()])
        )
    if changes.custom_fields is not None:
        fields = tuple(parse_custom_field(s) for s in changes.custom_fields)
        ClassDefaults(custom_fields=fields)  # unique names
        updates["custom_fields"] = [
            {"name": f.name, "required": f.required, "pattern": f.pattern, "label": f.label}
            for f in fields
        ]
    _apply(row, updates)
    _finish(
        uow,
        kind="customer_class.updated",
        subject_type="customer_class",
        row=row,
        before=before,
        after=_class_values(row),
        now=now,
        actor=actor,
    )
    return row


# -- plans -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PlanChanges:
    """``None`` leaves a field; ``fup_tiers`` and ``period_months`` replace the whole list
    (empty removes them); ``tax_profile_id`` 0 removes the plan's tax profile."""

    name: str | None = None
    download: str | None = None
    upload: str | None = None
    fup_tiers: Sequence[str] | None = None
    period_months: Sequence[str] | None = None
    tax_profile_id: int | None = None


def _plan_values(row: Plan) -> dict[str, Any]:
    return {
        "name": row.name,
        "download_kbps": row.download_kbps,
        "upload_kbps": row.upload_kbps,
        "tax_profile": row.tax_profile_id,
        "period_options": [dict(o) for o in row.period_options],
        "fup_tiers": [
            {
                "tier": t.tier,
                "limit_bytes": t.limit_bytes,
                "action": t.action,
                "down_kbps": t.down_kbps,
                "up_kbps": t.up_kbps,
            }
            for t in sorted(row.fup_tiers, key=lambda t: t.tier)
        ],
    }


def update_plan(
    uow: UnitOfWork, *, plan_id: int, changes: PlanChanges, now: datetime, actor: str
) -> Plan:
    """Name, speeds, FUP tiers, period options and tax profile; in force at once (the RADIUS
    answers of the plan's services are rebuilt in the same transaction)."""
    uow.begin_write()
    session = uow.session
    row = by_id(session, Plan, plan_id, field="plan")
    before = _plan_values(row)
    updates: dict[str, Any] = {}
    if changes.name is not None:
        updates["name"] = validate_name(changes.name)
        if updates["name"] != row.name:
            require_unique_name(session, Plan, updates["name"])
    if changes.download is not None or changes.upload is not None:
        speed = Speed(
            parse_speed(changes.download, "download_kbps")
            if changes.download is not None
            else row.download_kbps,
            parse_speed(changes.upload, "upload_kbps")
            if changes.upload is not None
            else row.upload_kbps,
        )
        updates.update(download_kbps=speed.down_kbps, upload_kbps=speed.up_kbps)
    tiers = (
        validate_fup_tiers([parse_fup_tier(i, s) for i, s in enumerate(changes.fup_tiers, 1)])
        if changes.fup_tiers is not None
        else None
    )
    if changes.period_months is not None:
        options = validate_period_options([parse_period_option(s) for s in changes.period_months])
        updates["period_options"] = [
            {"months": o.months, "discount_bp": o.discount_bp} for o in options
        ]
    if changes.tax_profile_id is not None:
        updates["tax_profile_id"] = (
            by_id(session, TaxProfileRow, changes.tax_profile_id, field="tax_profile").id
            if changes.tax_profile_id
            else None
        )
    _apply(row, updates)
    if tiers is not None:
        # rows are reused by tier number, so (plan, tier) is never inserted twice in a flush
        existing = {t.tier: t for t in row.fup_tiers}
        kept = []
        for tier in tiers:
            stored = existing.pop(tier.tier, None) or PlanFupTier(tier=tier.tier)
            stored.limit_bytes = tier.limit_bytes
            stored.action = tier.action.value
            stored.down_kbps = tier.speed.down_kbps if tier.speed else None
            stored.up_kbps = tier.speed.up_kbps if tier.speed else None
            kept.append(stored)
        row.fup_tiers = kept
    # speeds and FUP tiers are in the plan's services' RADIUS answers
    served = session.scalars(select(Service.id).where(Service.plan_id == row.id)).all()
    uow.mark_answers_stale(served, now)
    _finish(
        uow,
        kind="plan.updated",
        subject_type="plan",
        row=row,
        before=before,
        after=_plan_values(row),
        now=now,
        actor=actor,
    )
    return row


def archive_plan(
    uow: UnitOfWork, *, plan_id: int, now: datetime, actor: str, reason: str = ""
) -> Plan:
    """Stop selling a plan: its services go on, no new service or plan change may pick it."""
    uow.begin_write()
    row = by_id(uow.session, Plan, plan_id, field="plan")
    if row.archived_at is not None:
        raise ValidationError("plan", f"{row.name!r} is already archived")
    row.archived_at, row.active = now, False
    events.record(
        uow,
        now=now,
        actor=actor,
        kind="plan.archived",
        subject_type="plan",
        subject_id=row.id,
        reason=reason,
    )
    uow.commit()
    return row


def restore_plan(
    uow: UnitOfWork, *, plan_id: int, now: datetime, actor: str, reason: str = ""
) -> Plan:
    uow.begin_write()
    row = by_id(uow.session, Plan, plan_id, field="plan")
    if row.archived_at is None:
        raise ValidationError("plan", f"{row.name!r} is not archived")
    row.archived_at, row.active = None, True
    events.record(
        uow,
        now=now,
        actor=actor,
        kind="plan.restored",
        subject_type="plan",
        subject_id=row.id,
        reason=reason,
    )
    uow.commit()
    return row

"""Use cases for what the operator sets up once: tax profiles, classes, resellers, plans."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

from ispbill.adapters.db import event_log as events
from ispbill.adapters.db.lookups import by_id, require_unique_name
from ispbill.adapters.db.models import (
    CustomerClass,
    Plan,
    PlanFupTier,
    PlanPrice,
    Reseller,
    TaxProfileRow,
)
from ispbill.adapters.db.unit_of_work import UnitOfWork
from ispbill.domain.calendar import BillingCycle
from ispbill.domain.customers import (
    TEMPLATE_MAX,
    ClassDefaults,
    CustomField,
    validate_emails,
    validate_name,
)
from ispbill.domain.errors import ValidationError
from ispbill.domain.money import Money
from ispbill.domain.plans import (
    CYCLE_PLACEHOLDER_ORIGIN,
    PLAN_FOLLOWS_CUSTOMER,
    FupAction,
    FupTier,
    PeriodOption,
    Speed,
    parse_data_volume,
    parse_speed,
    validate_fup_tiers,
    validate_period_options,
    validate_price,
)
from ispbill.domain.taxes import NAME_MAX as TAX_NAME_MAX
from ispbill.domain.taxes import TaxProfile, parse_rate_bp


def add_tax_profile(
    uow: UnitOfWork, *, name: str, rate: str, inclusive: bool, now: datetime, actor: str
) -> TaxProfileRow:
    name = validate_name(name, max_length=TAX_NAME_MAX)
    profile = TaxProfile(name=name, rate_bp=parse_rate_bp(rate), inclusive=inclusive)
    require_unique_name(uow.session, TaxProfileRow, name)
    row = TaxProfileRow(name=name, rate_bp=profile.rate_bp, inclusive=profile.inclusive)
    uow.session.add(row)
    uow.session.flush()
    events.record(
        uow,
        now=now,
        actor=actor,
        kind="tax_profile.created",
        subject_type="tax_profile",
        subject_id=row.id,
        figures={"rate_bp": row.rate_bp, "inclusive": row.inclusive},
    )
    uow.commit()
    return row


def add_reseller(uow: UnitOfWork, *, name: str, now: datetime, actor: str) -> Reseller:
    name = validate_name(name)
    require_unique_name(uow.session, Reseller, name)
    row = Reseller(name=name, created_at=now)
    uow.session.add(row)
    uow.session.flush()
    events.record(
        uow,
        now=now,
        actor=actor,
        kind="reseller.created",
        subject_type="reseller",
        subject_id=row.id,
    )
    uow.commit()
    return row


def parse_custom_field(spec: str) -> CustomField:
    """``name[:required|optional][:regex]`` as typed on the command line."""
    name, _, rest = spec.partition(":")
    flag, _, pattern = rest.partition(":")
    if flag not in ("", "required", "optional"):
        raise ValidationError(
            "custom_fields", f"{spec!r}: expected name[:required|optional][:regex]"
        )
    return CustomField(name=name.strip(), required=flag != "optional", pattern=pattern or None)


@dataclass(frozen=True)
class NewClass:
    name: str
    grace_days: int = 0
    invoice_template: str = "default"
    tax_profile_id: int | None = None
    notification_emails: Sequence[str] = ()
    custom_fields: Sequence[str] = ()


def add_class(uow: UnitOfWork, *, spec: NewClass, now: datetime, actor: str) -> CustomerClass:
    name = validate_name(spec.name)
    tax = _tax_profile(uow, spec.tax_profile_id)
    defaults = ClassDefaults(
        grace_days=spec.grace_days,
        invoice_template=validate_name(spec.invoice_template, "invoice_template", TEMPLATE_MAX),
        tax_profile_id=tax.id if tax else None,
        notification_emails=validate_emails(spec.notification_emails),
        custom_fields=tuple(parse_custom_field(s) for s in spec.custom_fields),
    )
    require_unique_name(uow.session, CustomerClass, name)
    row = CustomerClass(
        name=name,
        grace_days=defaults.grace_days,
        invoice_template=defaults.invoice_template,
        tax_profile_id=defaults.tax_profile_id,
        notification_emails=list(defaults.notification_emails),
        custom_fields=[
            {"name": f.name, "required": f.required, "pattern": f.pattern, "label": f.label}
            for f in defaults.custom_fields
        ],
        created_at=now,
    )
    uow.session.add(row)
    uow.session.flush()
    events.record(
        uow,
        now=now,
        actor=actor,
        kind="customer_class.created",
        subject_type="customer_class",
        subject_id=row.id,
        figures={"grace_days": row.grace_days},
    )
    uow.commit()
    return row


def class_defaults(row: CustomerClass) -> ClassDefaults:
    return ClassDefaults(
        grace_days=row.grace_days,
        invoice_template=row.invoice_template,
        tax_profile_id=row.tax_profile_id,
        notification_emails=tuple(row.notification_emails),
        custom_fields=tuple(
            CustomField(
                f["name"], bool(f.get("required", True)), f.get("pattern"), f.get("label", "")
            )
            for f in row.custom_fields
        ),
    )


def _tax_profile(uow: UnitOfWork, tax_profile_id: int | None) -> TaxProfileRow | None:
    if tax_profile_id is None:
        return None
    return by_id(uow.session, TaxProfileRow, tax_profile_id, field="tax_profile")


def parse_fup_tier(tier: int, spec: str) -> FupTier:
    """``50GB:throttle:2M/1M`` or ``200GB:suspend``."""
    parts = spec.split(":")
    where = f"fup_tiers[{tier}]"
    if len(parts) not in (2, 3):
        raise ValidationError(where, "expected LIMIT:throttle:DOWN/UP or LIMIT:suspend")
    limit = parse_data_volume(parts[0], f"{where}.limit")
    try:
        action = FupAction(parts[1].strip().lower())
    except ValueError:
        raise ValidationError(f"{where}.action", "must be 'throttle' or 'suspend'") from None
    speed = None
    if len(parts) == 3:
        down, _, up = parts[2].partition("/")
        speed = Speed(
            parse_speed(down, f"{where}.speed"), parse_speed(up or down, f"{where}.speed")
        )
    return FupTier(tier=tier, limit_bytes=limit, action=action, speed=speed)


def parse_period_option(spec: str) -> PeriodOption:
    """``3`` or ``12:10%`` (months, optional discount)."""
    months, _, discount = spec.partition(":")
    if not months.strip().isdigit():
        raise ValidationError("period_months", f"{spec!r}: expected MONTHS[:DISCOUNT%]")
    return PeriodOption(int(months), parse_rate_bp(discount) if discount else 0)


@dataclass(frozen=True)
class NewPlan:
    name: str
    price: str
    currency: str
    download: str
    upload: str
    cycle: str = PLAN_FOLLOWS_CUSTOMER
    tax_profile_id: int | None = None
    fup_tiers: Sequence[str] = ()
    period_months: Sequence[str] = field(default_factory=tuple)


def add_plan(uow: UnitOfWork, *, spec: NewPlan, now: datetime, actor: str) -> Plan:
    name = validate_name(spec.name)
    price = validate_price(Money.from_major(spec.price, spec.currency, field="price"))
    cycle_kind, cycle_n = plan_cycle(spec.cycle)
    speed = Speed(
        parse_speed(spec.download, "download_kbps"), parse_speed(spec.upload, "upload_kbps")
    )
    tiers = validate_fup_tiers([parse_fup_tier(i, s) for i, s in enumerate(spec.fup_tiers, 1)])
    options = validate_period_options([parse_period_option(s) for s in spec.period_months])
    tax = _tax_profile(uow, spec.tax_profile_id)
    require_unique_name(uow.session, Plan, name)
    row = Plan(
        name=name,
        price_minor=price.minor,
        currency=price.currency,
        cycle_kind=cycle_kind,
        cycle_n=cycle_n,
        download_kbps=speed.down_kbps,
        upload_kbps=speed.up_kbps,
        tax_profile_id=tax.id if tax else None,
        period_options=[{"months": o.months, "discount_bp": o.discount_bp} for o in options],
        active=True,
        created_at=now,
        prices=[PlanPrice(price_minor=price.minor, valid_from=now.date(), created_at=now)],
        fup_tiers=[
            PlanFupTier(
                tier=t.tier,
                limit_bytes=t.limit_bytes,
                action=t.action.value,
                down_kbps=t.speed.down_kbps if t.speed else None,
                up_kbps=t.speed.up_kbps if t.speed else None,
            )
            for t in tiers
        ],
    )
    uow.session.add(row)
    uow.session.flush()
    events.record(
        uow,
        now=now,
        actor=actor,
        kind="plan.created",
        subject_type="plan",
        subject_id=row.id,
        figures={"price": str(price), "cycle": cycle_kind, "cycle_n": cycle_n},
    )
    uow.commit()
    return row


def plan_cycle(text: str) -> tuple[str, int]:
    """A plan's cycle as (kind, n): ``customer`` (follow each customer's billing cycle, the
    PortaBilling model) or a cycle of its own (Splynx prepaid periods of N days). Each service
    later gives it an origin: its start date."""
    if text.strip().lower() == PLAN_FOLLOWS_CUSTOMER:
        return PLAN_FOLLOWS_CUSTOMER, 1
    cycle = BillingCycle.parse(text, origin=CYCLE_PLACEHOLDER_ORIGIN)
    return cycle.kind.value, cycle.n

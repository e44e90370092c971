"""Operator settings kept in the database, typed and validated (policies are data).

One set per operator. Each key has a type and a default; ``set_value`` refuses unknown keys and
bad values naming the key, so a typo can never silently change billing.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator
from pydantic import ValidationError as PydanticError
from sqlalchemy import select

from ispbill.adapters.db import event_log as events
from ispbill.adapters.db.models import SettingRow
from ispbill.adapters.db.unit_of_work import UnitOfWork
from ispbill.domain.billing import BillingPolicy, ReactivationAnchor
from ispbill.domain.errors import ValidationError
from ispbill.domain.invoicing import parse_series_format
from ispbill.domain.lifecycle import SuspensionReason
from ispbill.domain.payments import parse_method_map
from ispbill.domain.radius import (
    DEFAULT_ATTRIBUTE_MAP,
    GardenRule,
    RadiusPolicy,
    parse_attribute_map,
    parse_garden_map,
    parse_rate,
    parse_reason_list,
)

SETTLED_DEBT_REASONS: tuple[str, ...] = (
    SuspensionReason.NON_PAYER.value,
    SuspensionReason.CREDIT_LIMIT.value,
)
PROFILE_REASONS: tuple[str, ...] = tuple(f"profile_{n}" for n in range(1, 10))


class OperatorSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    reactivation_anchor: ReactivationAnchor = Field(
        ReactivationAnchor.REACTIVATION_DATE,
        description="Where a reactivated prepaid service's new period starts.",
    )
    refund_on_pause: bool = Field(
        False, description="Credit unused days when 'active to' pauses mid-period."
    )
    deactivation_period_days: int | None = Field(
        None,
        ge=1,
        le=3650,
        description="Splynx deactivation period: days deactivated before the customer becomes inactive (off when empty).",
    )
    prepaid_monthly_statement: bool = Field(
        False,
        description="Splynx: on the 1st, invoice the prepaid charges of the previous month.",
    )
    payment_terms_days: int = Field(
        14, ge=0, le=365, description="Due date = issue date + these days."
    )
    invoice_number_format: str = Field(
        "{year}-{seq:06}", description="Invoice numbers, e.g. 2026-000123."
    )
    credit_note_number_format: str = Field("CN{year}-{seq:05}", description="Credit note numbers.")
    seller_name: str = Field("ispbill demo ISP", description="Printed on invoices.")
    seller_address: str = Field("", description="Printed on invoices (lines separated by ';').")
    self_service_reactivation: bool = Field(
        False,
        description="UISP client zone: a customer may reactivate a paused service in the portal.",
    )
    open_ended_reactivation: bool = Field(
        False,
        description="A customer reactivating in the portal may leave 'active to' empty (no end).",
    )
    payment_methods: dict[str, str] = Field(
        default_factory=dict,
        description="Operator-defined payment methods, name=account (cash, bank, card, "
        "gateway_clearing), e.g. 'cheque=bank, mpesa=gateway_clearing'.",
    )

    settled_debt_lifts: list[str] = Field(
        default_factory=lambda: list(SETTLED_DEBT_REASONS),
        description="Suspension reasons a settled debt lifts by itself: non_payer (collections) "
        "and credit_limit (the engine). A payment never lifts any other reason.",
    )
    suspension_profile_names: dict[str, str] = Field(
        default_factory=dict,
        description="Names of the operator's suspension reasons profile_1..profile_9, "
        "e.g. 'profile_1=Spam, profile_3=Copyright'.",
    )

    radius_reject_reasons: list[str] = Field(
        default_factory=list,
        description="Blocked states answered with Access-Reject instead of the walled garden: "
        "suspension reasons, 'deactivated' or 'paused', e.g. 'unregistered, paused'.",
    )
    radius_walled_garden: dict[str, str] = Field(
        default_factory=dict,
        description="Walled garden per reason: reason=address_list:NAME or reason=pool:NAME, "
        "e.g. 'non_payer=address_list:unpaid, fup=pool:fup-pool'.",
    )
    radius_walled_garden_default: str = Field(
        "address_list:walled-garden", description="Walled garden for reasons not listed."
    )
    radius_walled_garden_rate: str | None = Field(
        None, description="Speed inside the walled garden, DOWN/UP such as '1M/512k'."
    )
    radius_active_address_list: str | None = Field(
        None,
        description="Address list (MikroTik; Filter-Id elsewhere) given to subscribers with "
        "access; when set, lifting a block is a CoA, otherwise a Disconnect.",
    )
    radius_attribute_map: dict[str, str] = Field(
        default_factory=lambda: dict(DEFAULT_ATTRIBUTE_MAP),
        description="Rate attributes for generic NAS: NAME=TEMPLATE with {down_kbps} {up_kbps} "
        "{down_bps} {up_bps} {rate_limit}.",
    )
    radius_interim_interval_seconds: int | None = Field(
        300, ge=60, le=86400, description="Acct-Interim-Interval sent on accept (off when empty)."
    )

    @field_validator("payment_methods", mode="before")
    @classmethod
    def _methods(cls, value: object) -> dict[str, str]:
        return parse_method_map(value)

    @field_validator("radius_reject_reasons", mode="before")
    @classmethod
    def _reject_reasons(cls, value: object) -> list[str]:
        return parse_reason_list(value)

    @field_validator("radius_walled_garden", mode="before")
    @classmethod
    def _garden(cls, value: object) -> dict[str, str]:
        return parse_garden_map(value)

    @field_validator("radius_walled_garden_default", mode="before")
    @classmethod
    def _garden_default(cls, value: object) -> str:
        return str(GardenRule.parse(str(value), "radius_walled_garden_default"))

    @field_validator("radius_walled_garden_rate", mode="before")
    @classmethod
    def _garden_rate(cls, value: object) -> str | None:
        if value is None:
            return None
        parse_rate(str(value), "radius_walled_garden_rate")
        return str(value).strip()

    @field_validator("radius_attribute_map", mode="before")
    @classmethod
    def _attribute_map(cls, value: object) -> dict[str, str]:
        return parse_attribute_map(value)

    def radius_policy(self) -> RadiusPolicy:
        rate = self.radius_walled_garden_rate
        return RadiusPolicy(
            reject_reasons=frozenset(self.radius_reject_reasons),
            garden={
                key: GardenRule.parse(value, "radius_walled_garden")
                for key, value in self.radius_walled_garden.items()
            },
            garden_default=GardenRule.parse(
                self.radius_walled_garden_default, "radius_walled_garden_default"
            ),
            garden_speed=parse_rate(rate, "radius_walled_garden_rate") if rate else None,
            active_list=self.radius_active_address_list,
            attribute_map=dict(self.radius_attribute_map),
            interim_interval_s=self.radius_interim_interval_seconds,
        )

    @field_validator("settled_debt_lifts", mode="before")
    @classmethod
    def _lifts(cls, value: object) -> list[str]:
        return parse_settled_debt_lifts(value)

    @field_validator("suspension_profile_names", mode="before")
    @classmethod
    def _profiles(cls, value: object) -> dict[str, str]:
        return parse_profile_names(value)

    def billing_policy(self) -> BillingPolicy:
        return BillingPolicy(
            reactivation_anchor=self.reactivation_anchor,
            refund_on_pause=self.refund_on_pause,
            deactivation_period_days=self.deactivation_period_days,
            lift_reasons=frozenset(self.settled_debt_lifts) & {SuspensionReason.CREDIT_LIMIT.value},
        )

    def reason_name(self, reason: str) -> str:
        """How the operator calls a suspension reason (profile_N by its set name)."""
        return self.suspension_profile_names.get(reason) or reason.replace("_", " ")


def parse_settled_debt_lifts(value: object) -> list[str]:
    """'non_payer, credit_limit' or a list; only debt reasons: ISPadmin's operator-set causes
    (unregistered, the abuse profiles) are never lifted by a payment."""
    if value is None:
        return []
    items = value.split(",") if isinstance(value, str) else list(value)  # type: ignore[call-overload]
    reasons = [str(item).strip().lower() for item in items if str(item).strip()]
    for reason in reasons:
        if reason not in SETTLED_DEBT_REASONS:
            raise ValueError(
                f"{reason!r} cannot be lifted by a payment; choose from "
                f"{', '.join(SETTLED_DEBT_REASONS)}"
            )
    return sorted(set(reasons))


def parse_profile_names(value: object) -> dict[str, str]:
    if value is None:
        return {}
    if isinstance(value, dict):
        pairs = [(str(k), str(v)) for k, v in value.items()]
    else:
        pairs = []
        for item in str(value).split(","):
            if not item.strip():
                continue
            if "=" not in item:
                raise ValueError(f"{item.strip()!r}: write profile_N=Name")
            key, name = item.split("=", 1)
            pairs.append((key, name))
    names: dict[str, str] = {}
    for key, name in pairs:
        key, name = key.strip().lower(), name.strip()
        if key not in PROFILE_REASONS:
            raise ValueError(f"{key!r} is not one of profile_1..profile_9")
        if not name or len(name) > 60:
            raise ValueError(f"the name of {key} must be 1 to 60 characters")
        names[key] = name
    return dict(sorted(names.items()))


def load(uow: UnitOfWork) -> OperatorSettings:
    stored = {row.key: row.value for row in uow.session.scalars(select(SettingRow))}
    known = {k: v for k, v in stored.items() if k in OperatorSettings.model_fields}
    return OperatorSettings.model_validate(known)


def set_value(
    uow: UnitOfWork, *, key: str, raw: str, now: datetime, actor: str
) -> OperatorSettings:
    """Parse ``raw`` as the key's type ('' or 'none' clears an optional value)."""
    if key not in OperatorSettings.model_fields:
        raise ValidationError(
            key, f"unknown setting; known: {', '.join(OperatorSettings.model_fields)}"
        )
    current = load(uow)
    value: Any = None if raw.strip().lower() in ("", "none", "null") else raw.strip()
    try:
        updated = current.model_validate(current.model_dump() | {key: value})
    except PydanticError as exc:
        raise ValidationError(key, exc.errors()[0]["msg"]) from None
    if key.endswith("number_format"):
        parse_series_format(str(getattr(updated, key)))
    stored = updated.model_dump(mode="json")[key]
    row = uow.session.get(SettingRow, key)
    if row is None:
        uow.session.add(SettingRow(key=key, value=stored, updated_at=now))
    else:
        row.value = stored
        row.updated_at = now
    if key.startswith("radius_"):
        uow.mark_answers_stale(None, now)  # every precomputed RADIUS answer, at commit
    events.record(
        uow,
        now=now,
        actor=actor,
        kind="setting.changed",
        subject_type="setting",
        subject_id=0,
        reason=key,
        figures={"key": key, "value": stored},
    )
    uow.commit()
    return updated

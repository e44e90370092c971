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

from ispbill.adapters.db.models import SettingRow
from ispbill.adapters.db.unit_of_work import UnitOfWork
from ispbill.domain.billing import BillingPolicy, ReactivationAnchor
from ispbill.domain.errors import ValidationError
from ispbill.domain.invoicing import parse_series_format
from ispbill.domain.lifecycle import SuspensionReason
from ispbill.domain.payments import parse_method_map
from ispbill.services import events

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

    @field_validator("payment_methods", mode="before")
    @classmethod
    def _methods(cls, value: object) -> dict[str, str]:
        return parse_method_map(value)

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

"""Request and response bodies of the REST API (``/api/v1``).

Money crosses the API as a string of major units (``"30.00"``) next to its currency, never as a
JSON number (no float ever touches an amount). Integers in bodies are strict: ``"3"`` is not 3.
Unknown fields are refused, so a typo is a 422 rather than a silently ignored option.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, StrictInt

from ispbill.domain.money import Money

AMOUNT_PATTERN = r"^-?[0-9]+(\.[0-9]+)?$"
INPUT_AMOUNT_PATTERN = r"^[0-9]{1,15}(\.[0-9]{1,3})?$"
Id = Annotated[StrictInt, Field(ge=1, le=2**31 - 1)]
Text200 = Annotated[str, Field(min_length=1, max_length=200)]
Currency = Annotated[str, Field(pattern=r"^[A-Za-z]{3}$", examples=["USD"])]
AmountIn = Annotated[str, Field(pattern=INPUT_AMOUNT_PATTERN, examples=["30.00"])]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Amount(BaseModel):
    amount: str = Field(pattern=AMOUNT_PATTERN, examples=["30.00"])
    currency: str = Field(examples=["USD"])

    @classmethod
    def of(cls, money: Money) -> Amount:
        return cls(amount=str(money.to_decimal()), currency=money.currency)


class ProblemOut(BaseModel):
    """RFC 9457 problem details, naming the field and the rule when input was refused."""

    type: str = "about:blank"
    title: str
    status: int
    detail: str
    field: str | None = None
    rule: str | None = None


class Health(BaseModel):
    status: str
    version: str


# --- customers ---------------------------------------------------------------------------


class CustomerIn(Strict):
    name: Text200
    customer_class: Text200 = Field(description="Customer class id or name.")
    currency: Currency
    balance_control: str = "prepaid"
    billing_cycle: str = "monthly"
    billing_timezone: Annotated[str, Field(max_length=64)] = "UTC"
    business_model: str = "internet_access"
    invoicing_mode: str = "forward"
    locale: Annotated[str, Field(max_length=16)] = "en_US"
    reseller: Text200 | None = Field(None, description="Reseller id or name (admin only).")
    credit_limit: AmountIn | None = None
    available_funds: AmountIn | None = None
    funds_method: str = "cash"
    grace_days: Annotated[StrictInt, Field(ge=0, le=365)] | None = None


class CustomerOut(BaseModel):
    id: int
    name: str
    status: str
    reseller_id: int | None
    class_id: int
    currency: str
    balance_control: str
    billing_timezone: str
    created_at: datetime
    balance: Amount


class CustomerPage(BaseModel):
    items: list[CustomerOut]
    next_cursor: str | None = Field(description="Pass as ?cursor= for the next page; null at end.")


# --- plans -------------------------------------------------------------------------------


class PlanIn(Strict):
    name: Text200
    price: AmountIn
    currency: Currency
    download: Annotated[str, Field(min_length=1, max_length=32, examples=["50M"])]
    upload: Annotated[str, Field(min_length=1, max_length=32, examples=["10M"])]
    cycle: Annotated[str, Field(max_length=32)] = "customer"
    period_months: list[Annotated[str, Field(max_length=16)]] = Field(default_factory=list)


class PlanOut(BaseModel):
    id: int
    name: str
    price: Amount
    cycle_kind: str
    cycle_n: int
    download_kbps: int
    upload_kbps: int
    active: bool
    created_at: datetime


# --- services ----------------------------------------------------------------------------


class ServiceIn(Strict):
    customer_id: Id
    plan_id: Id
    active_from: date | None = None
    active_to: date | None = None
    period_months: Annotated[StrictInt, Field(ge=1, le=120)] | None = None


class ServiceOut(BaseModel):
    id: int
    customer_id: int
    plan_id: int
    state: str
    active_from: date
    active_to: date | None
    period_months: int | None
    billed_until: date | None
    created_at: datetime


# --- payments and wallet -----------------------------------------------------------------


class PaymentIn(Strict):
    customer_id: Id
    amount: AmountIn
    currency: Currency
    method: Annotated[str, Field(min_length=1, max_length=32)] = "cash"
    reference: Annotated[str, Field(min_length=1, max_length=120)] | None = None
    received_at: AwareDatetime | None = None


class PaymentOut(BaseModel):
    id: int
    customer_id: int
    amount: Amount
    method: str
    reference: str | None
    received_at: datetime
    recorded_at: datetime
    applied_to_invoices: Amount


class PostingOut(BaseModel):
    transaction_id: int
    kind: str
    memo: str
    amount: Amount
    effective_at: datetime


class WalletOut(BaseModel):
    customer_id: int
    balance: Amount
    postings: list[PostingOut] = Field(description="The most recent postings, newest first.")


# --- engine ------------------------------------------------------------------------------


class TickIn(Strict):
    at: AwareDatetime | None = Field(None, description="The instant to run at (default: now).")
    chunk_size: Annotated[StrictInt, Field(ge=1, le=100_000)] = 1000


class TickOut(BaseModel):
    now: datetime
    customers: int
    services: int
    charges: int
    invoices: int
    cards_expired: int
    transitions: dict[str, int]


class ChargePreview(BaseModel):
    service_id: int
    kind: str
    period_start: date
    period_end: date
    amount: Amount
    description: str


class TransitionPreview(BaseModel):
    service_id: int
    from_state: str
    to_state: str
    reason: str | None
    at: datetime


class PreviewOut(BaseModel):
    customer_id: int
    until: datetime
    balance: Amount
    charges: list[ChargePreview]
    transitions: list[TransitionPreview]


# --- collections and suspensions ---------------------------------------------------------


class SuspendIn(Strict):
    reason: Annotated[str, Field(min_length=1, max_length=32, examples=["profile_3"])]
    suspend_invoicing: bool = False
    starts_on: date | None = Field(None, description="FROM; today when left out.")
    ends_on: date | None = Field(None, description="TO, the last suspended day.")
    repeat_yearly: bool = False
    note: Annotated[str, Field(max_length=500)] = ""


class SuspensionOut(BaseModel):
    id: int
    service_id: int
    reason: str
    suspend_invoicing: bool
    starts_on: date
    ends_on: date | None
    repeat_yearly: bool
    status: str
    actor: str
    lifted_by: str | None


class LiftIn(Strict):
    note: Annotated[str, Field(max_length=500)] = ""


class PromiseIn(Strict):
    days: Annotated[StrictInt, Field(ge=1, le=90)]


class PromiseOut(BaseModel):
    customer_id: int
    until: datetime
    services: list[int]


class WhyOut(BaseModel):
    service_id: int
    state: str
    reason: str | None
    text: str
    overdue_total: Amount
    days_overdue: int


class CollectionPolicyOut(BaseModel):
    customer_class: str | None
    policy: dict[str, object]
    overrides: dict[str, object]


class CollectionPolicyIn(Strict):
    """Keys of the policy to change, each as text (as the CLI takes it); null clears a key
    (a class then falls back to the operator's value)."""

    changes: dict[
        Annotated[str, Field(max_length=40)], Annotated[str, Field(max_length=2000)] | None
    ]
    customer_class: Text200 | None = None


class InfoPageOut(BaseModel):
    reason: str
    title: str
    body_markdown: str
    body_html: str
    custom: bool


class InfoPageIn(Strict):
    title: Annotated[str, Field(min_length=1, max_length=200)]
    body_markdown: Annotated[str, Field(min_length=1, max_length=20_000)]

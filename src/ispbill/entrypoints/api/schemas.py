"""Request and response bodies of the REST API (``/api/v1``).

Money crosses the API as a string of major units (``"30.00"``) next to its currency, never as a
JSON number (no float ever touches an amount). Integers in bodies are strict: ``"3"`` is not 3.
Unknown fields are refused, so a typo is a 422 rather than a silently ignored option.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import date, datetime
from typing import Annotated, Any, TypeVar

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictBool,
    StrictInt,
    field_validator,
)

from ispbill.domain.dates import check_date
from ispbill.domain.errors import ValidationError
from ispbill.domain.money import Money
from ispbill.domain.radius import Vendor

AMOUNT_PATTERN = r"^-?[0-9]+(\.[0-9]+)?$"
TEXT = r"^[^\x00]*$"  # query text: anything storable (PostgreSQL refuses NUL)


def _plain_text(value: Any) -> Any:
    """Text both databases can store: no NUL (PostgreSQL refuses it) and no lone surrogates."""
    if isinstance(value, str):
        if "\x00" in value:
            raise ValueError("must not contain NUL characters")
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise ValueError("must be valid Unicode text") from None
    elif isinstance(value, list | tuple):
        for item in value:
            _plain_text(item)
    elif isinstance(value, dict):
        for key, item in value.items():
            _plain_text(key)
            _plain_text(item)
    return value


D = TypeVar("D", bound=date)


def _in_range(value: D) -> D:
    """The domain's range of accepted dates (``domain/dates``); pydantic names the field."""
    try:
        return check_date("date", value)
    except ValidationError as exc:
        raise ValueError(exc.rule) from None


_ISO_DAY = re.compile(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}")


def _iso(rule: str) -> Callable[[Any], Any]:
    """Only ISO 8601 text (or a value already parsed): pydantic would also read a number, or a
    string of digits, as seconds since 1970, so ``until=0.5`` became 1970-01-01."""

    def check(value: Any) -> Any:
        if isinstance(value, date):  # a datetime too: built in code, not read from a request
            return value
        if not isinstance(value, str) or not _ISO_DAY.match(value):
            raise ValueError(rule)
        return value

    return check


Day = Annotated[
    date,
    BeforeValidator(_iso("must be an ISO 8601 date like 2026-12-01")),
    AfterValidator(_in_range),
]
Instant = Annotated[
    AwareDatetime,
    BeforeValidator(_iso("must be an ISO 8601 instant with an offset like 2026-12-01T00:00:00Z")),
    AfterValidator(_in_range),
]
INPUT_AMOUNT_PATTERN = r"^[0-9]{1,15}(\.[0-9]{1,3})?$"
Id = Annotated[StrictInt, Field(ge=1, le=2**31 - 1)]
Text200 = Annotated[str, Field(min_length=1, max_length=200)]
Currency = Annotated[str, Field(pattern=r"^[A-Za-z]{3}$", examples=["USD"])]
AmountIn = Annotated[str, Field(pattern=INPUT_AMOUNT_PATTERN, examples=["30.00"])]
VENDOR_PATTERN = f"^({'|'.join(Vendor)})$"
Email = Annotated[str, Field(min_length=1, max_length=254)]
Phone = Annotated[str, Field(min_length=1, max_length=30)]
Address = Annotated[str, Field(max_length=500)]
Notes = Annotated[str, Field(max_length=5000)]
Gps = Annotated[str, Field(max_length=40, examples=["50.087451,14.420671"])]
VatId = Annotated[str, Field(max_length=32, examples=["CZ12345678"])]


class Strict(BaseModel):
    """A request body: unknown fields refused, text storable as given."""

    model_config = ConfigDict(extra="forbid")

    @field_validator("*", mode="after")
    @classmethod
    def _storable(cls, value: Any) -> Any:
        return _plain_text(value)


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
    background: dict[str, str] = Field(
        default_factory=dict,
        description="This process's background loops by name: running, retrying: <error> "
        "(the database is away, it reconnects) or stopped.",
    )


# --- customers ---------------------------------------------------------------------------


class CustomerIn(Strict):
    name: Text200
    customer_class: Text200 = Field(description="Customer class id or name.")
    currency: Currency
    balance_control: str = "prepaid"
    billing_cycle: str = Field(
        "monthly",
        max_length=32,
        description="daily, weekly, semimonthly, monthly, monthly_anniversary, days_30, "
        "every_n_days or every_n_months (with cycle_n), every_7_days, 3m.",
    )
    cycle_n: Annotated[StrictInt, Field(ge=1, le=3660)] | None = Field(
        None, description="every_n_days / every_n_months: the count N."
    )
    billing_timezone: Annotated[str, Field(max_length=64)] = "UTC"
    business_model: str = "internet_access"
    invoicing_mode: str = "forward"
    locale: Annotated[str, Field(max_length=16)] = "en_US"
    reseller: Text200 | None = Field(None, description="Reseller id or name (admin only).")
    credit_limit: AmountIn | None = None
    available_funds: AmountIn | None = None
    funds_method: str = "cash"
    grace_days: Annotated[StrictInt, Field(ge=0, le=365)] | None = None
    minimum_balance: AmountIn | None = None
    anchor_day: Annotated[StrictInt, Field(ge=1, le=31)] | None = None
    use_credit_automatically: StrictBool = True
    custom_data: dict[
        Annotated[str, Field(max_length=100)], Annotated[str, Field(max_length=500)]
    ] = Field(default_factory=dict, max_length=50)
    emails: list[Email] = Field(
        default_factory=list, max_length=10, description="Contact e-mails; the first is primary."
    )
    phones: list[Phone] = Field(
        default_factory=list, max_length=10, description="Contact phones; the first is primary."
    )
    billing_address: Address | None = None
    service_address: Address | None = None
    service_gps: Gps | None = None
    company_registration_number: Annotated[str, Field(max_length=64)] | None = None
    vat_id: VatId | None = None
    internal_notes: Notes | None = None


class CustomerPatch(Strict):
    """Only the fields given change; each is validated as on creation. ``credit_limit`` and
    ``minimum_balance`` apply at once; ``billing_timezone``, ``billing_cycle``/``cycle_n`` and
    ``invoicing_mode`` from the customer's next billing period while a service runs (listed in
    ``pending_changes``; at once when none runs). An empty
    text or list clears; a ``custom_data`` value "" removes that field."""

    name: Text200 | None = None
    customer_class: Text200 | None = Field(None, description="Customer class id or name.")
    credit_limit: Annotated[str, Field(pattern=r"^$|" + INPUT_AMOUNT_PATTERN)] | None = Field(
        None, description='Postpaid; "" removes the limit.'
    )
    minimum_balance: Annotated[str, Field(pattern=r"^$|" + INPUT_AMOUNT_PATTERN)] | None = None
    use_credit_automatically: StrictBool | None = None
    grace_days: Annotated[StrictInt, Field(ge=0, le=365)] | None = None
    locale: Annotated[str, Field(max_length=16)] | None = None
    notification_emails: list[Email] | None = Field(None, max_length=20)
    custom_data: dict[
        Annotated[str, Field(max_length=100)], Annotated[str, Field(max_length=500)]
    ] = Field(default_factory=dict, max_length=50)
    business_model: Annotated[str, Field(max_length=32)] | None = None
    billing_timezone: Annotated[str, Field(max_length=64)] | None = None
    billing_cycle: Annotated[str, Field(max_length=32)] | None = None
    cycle_n: Annotated[StrictInt, Field(ge=1, le=3660)] | None = None
    invoicing_mode: Annotated[str, Field(max_length=16)] | None = None
    emails: list[Email] | None = Field(None, max_length=10)
    phones: list[Phone] | None = Field(None, max_length=10)
    billing_address: Address | None = None
    service_address: Address | None = None
    service_gps: Gps | None = None
    company_registration_number: Annotated[str, Field(max_length=64)] | None = None
    vat_id: VatId | None = None
    internal_notes: Notes | None = None
    reason: Annotated[str, Field(max_length=200)] = ""


class ArchiveIn(Strict):
    reason: Annotated[str, Field(max_length=200)] = ""


class CustomerOut(BaseModel):
    id: int
    name: str
    status: str
    reseller_id: int | None
    class_id: int
    currency: str
    balance_control: str
    billing_timezone: str
    invoicing_mode: str
    locale: str
    credit_limit: Amount | None
    minimum_balance: Amount
    created_at: datetime
    balance: Amount
    billing_cycle: str
    cycle_n: int
    emails: list[str]
    phones: list[str]
    billing_address: str | None
    service_address: str | None
    service_gps: str | None = Field(description="LAT,LON in decimal degrees.")
    company_registration_number: str | None
    vat_id: str | None
    internal_notes: str | None = Field(description="Staff only: null for a customer's own session.")
    archived_at: datetime | None
    pending_changes: list[PendingChangeOut] | None = Field(
        default=None,
        description="Timezone, cycle or invoicing mode changes planned from the next billing "
        "period (on GET and PATCH of one customer; null in lists).",
    )


class PendingChangeOut(BaseModel):
    id: int
    customer_id: int
    field: str
    old_value: str
    new_value: str
    effective_on: date
    due_at: datetime
    status: str
    reason: str


# --- plans -------------------------------------------------------------------------------


class PlanIn(Strict):
    name: Text200
    price: AmountIn
    currency: Currency
    download: Annotated[str, Field(min_length=1, max_length=32, examples=["50M"])]
    upload: Annotated[str, Field(min_length=1, max_length=32, examples=["10M"])]
    cycle: Annotated[str, Field(max_length=32)] = "customer"
    tax_profile: Text200 | None = Field(None, description="Tax profile id or name.")
    fup_tiers: list[Annotated[str, Field(max_length=64)]] = Field(
        default_factory=list,
        max_length=4,
        description="LIMIT:ACTION[:SPEED], e.g. '100G:throttle:5M/1M'.",
    )
    period_months: list[Annotated[str, Field(max_length=16)]] = Field(
        default_factory=list, max_length=24
    )


class PlanPatch(Strict):
    """Name, speeds, FUP tiers, period options, tax profile: in force at once. The price is
    not edited here (a price change needs an effective date)."""

    name: Text200 | None = None
    download: Annotated[str, Field(min_length=1, max_length=32, examples=["100M"])] | None = None
    upload: Annotated[str, Field(min_length=1, max_length=32, examples=["20M"])] | None = None
    tax_profile: Annotated[str, Field(max_length=200)] | None = Field(
        None, description='Tax profile id or name; "" removes it.'
    )
    fup_tiers: list[Annotated[str, Field(max_length=64)]] | None = Field(
        None, max_length=4, description="Replaces the tiers; [] removes them."
    )
    period_months: list[Annotated[str, Field(max_length=16)]] | None = Field(
        None, max_length=24, description="Replaces the options; [] removes them."
    )


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
    archived_at: datetime | None = None


# --- services ----------------------------------------------------------------------------


class PlanPriceIn(Strict):
    amount: AmountIn = Field(description="Price per period in the plan's currency.")
    valid_from: Day = Field(
        description="Each service pays the price from its first billing period starting on or "
        "after this day; charged periods never change."
    )


class PlanPriceOut(BaseModel):
    price: Amount
    valid_from: date
    valid_to: date | None = Field(description="The next price's first day; null: current.")


class ServiceIn(Strict):
    customer_id: Id
    plan_id: Id
    active_from: Day | None = None
    active_to: Day | None = None
    period_months: Annotated[StrictInt, Field(ge=1, le=120)] | None = None


class ServicePatch(Strict):
    """Only before the service starts (pending, first day not reached)."""

    active_from: Day | None = None
    period_months: Annotated[StrictInt, Field(ge=1, le=120)] | None = None
    invoicing_mode: Annotated[str, Field(max_length=16)] | None = Field(
        None, description='forward or backward; "" follows the customer\'s.'
    )


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
    received_at: Instant | None = None
    received_on: Day | None = Field(
        None, description="The day the money arrived (its local midnight); not with received_at."
    )


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
    at: Instant | None = Field(None, description="The instant to run at (default: now).")
    chunk_size: Annotated[StrictInt, Field(ge=1, le=100_000)] = 1000


class SkippedCustomerOut(BaseModel):
    customer_id: int
    stage: str = Field(description="decide (loading or deciding) or store (writing).")
    error: str


class TickOut(BaseModel):
    now: datetime
    customers: int
    services: int
    charges: int
    invoices: int
    cards_expired: int
    transitions: dict[str, int]
    skipped: list[SkippedCustomerOut] = Field(
        description="Customers this tick could not bill (each a tick.customer_failed event); "
        "everyone else was billed. The next tick tries them again."
    )


class TickRunOut(BaseModel):
    id: int = Field(description="The run's id: GET /api/v1/ticks/{id} tells its state.")
    trigger: str = Field(description="schedule (the periodic plan) or request (asked for).")
    status: str = Field(description="queued, running, succeeded or failed.")
    requested_by: str
    requested_at: datetime
    job_id: int | None = Field(description="The plan's job (PostgreSQL), else null.")
    now: datetime | None = Field(description="The instant the run ticks up to, once planned.")
    started_at: datetime | None
    finished_at: datetime | None
    ranges_total: int | None = Field(description="Ranges of customer ids the run was cut into.")
    ranges_done: int
    ranges_failed: int
    figures: dict[str, Any] = Field(
        description="The committed ranges' report added up: customers, services, charges, "
        "invoices, skipped, transitions and collections by kind."
    )
    last_error: str | None


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


class ChargeAndInvoiceOut(BaseModel):
    """Splynx "Charge & Invoice": what was charged now, the invoice issued for it, the balance."""

    customer_id: int
    charges: list[ChargePreview]
    transitions: list[TransitionPreview]
    invoice_number: str | None = Field(
        description="The invoice issued now; null when every charge was already invoiced."
    )
    balance: Amount


class CheckoutIn(Strict):
    """Pay ``months`` billing periods of the customer's services (the quote) through a gateway."""

    months: Annotated[StrictInt, Field(ge=1, le=120)]
    gateway: Annotated[str, Field(min_length=1, max_length=32)] = "sandbox"
    return_url: Annotated[str, Field(max_length=2000)] | None = Field(
        None, description="Where the gateway sends the payer back (default: the public base URL)."
    )


class QuoteLineOut(BaseModel):
    line: str
    amount: Amount


class CheckoutOut(BaseModel):
    checkout: str = Field(
        description="The checkout's reference, as the gateway's webhook names it."
    )
    url: str = Field(description="The gateway's page the payer opens.")
    quote: list[QuoteLineOut]
    total: Amount


class PreviewOut(BaseModel):
    customer_id: int
    until: datetime
    balance: Amount
    charges: list[ChargePreview]
    transitions: list[TransitionPreview]


# --- catalogue: resellers, customer classes, tax profiles --------------------------------


class ResellerIn(Strict):
    name: Text200


class ResellerPatch(Strict):
    name: Text200


class ResellerOut(BaseModel):
    id: int
    name: str
    created_at: datetime


class CustomerClassIn(Strict):
    name: Text200
    grace_days: Annotated[StrictInt, Field(ge=0, le=365)] = 0
    invoice_template: Annotated[str, Field(min_length=1, max_length=100)] = "default"
    tax_profile: Text200 | None = Field(None, description="Tax profile id or name.")
    notification_emails: list[Annotated[str, Field(max_length=254)]] = Field(
        default_factory=list, max_length=20
    )
    custom_fields: list[Annotated[str, Field(max_length=200)]] = Field(
        default_factory=list, max_length=50, description="name[:required], e.g. 'ico:required'."
    )


class CustomerClassPatch(Strict):
    name: Text200 | None = None
    grace_days: Annotated[StrictInt, Field(ge=0, le=365)] | None = None
    invoice_template: Annotated[str, Field(min_length=1, max_length=100)] | None = None
    tax_profile: Annotated[str, Field(max_length=200)] | None = Field(
        None, description='Tax profile id or name; "" removes it.'
    )
    notification_emails: list[Annotated[str, Field(max_length=254)]] | None = Field(
        None, max_length=20
    )
    custom_fields: list[Annotated[str, Field(max_length=200)]] | None = Field(
        None, max_length=50, description="Replaces the fields; [] removes them."
    )


class CustomerClassOut(BaseModel):
    id: int
    name: str
    grace_days: int
    invoice_template: str
    tax_profile_id: int | None
    notification_emails: list[str]
    custom_fields: list[dict[str, Any]]
    created_at: datetime


class TaxProfileIn(Strict):
    name: Text200
    rate: Annotated[str, Field(pattern=r"^[0-9]{1,3}(\.[0-9]{1,2})?%?$", examples=["21"])]
    inclusive: StrictBool = False


class TaxProfilePatch(Strict):
    name: Text200 | None = None
    rate: (
        Annotated[str, Field(pattern=r"^[0-9]{1,3}(\.[0-9]{1,2})?%?$", examples=["21"])] | None
    ) = Field(None, description="Applies to charges made from now on.")
    inclusive: StrictBool | None = None


class TaxProfileOut(BaseModel):
    id: int
    name: str
    rate_bp: int = Field(description="The rate in basis points (2100 = 21%).")
    inclusive: bool


# --- service actions ---------------------------------------------------------------------


class ChangePlanIn(Strict):
    plan_id: Id
    effective: Day | None = Field(None, description="Local date (default: today).")


class TerminateIn(Strict):
    effective: Day | None = Field(None, description="Local date (default: today).")
    reason: Annotated[str, Field(min_length=1, max_length=200)] | None = None


class ActiveToIn(Strict):
    active_to: Day | None = Field(
        None, description="The last day of service; the service pauses after it. Null clears."
    )


class ChangeOut(BaseModel):
    service: ServiceOut
    from_plan: str
    to_plan: str | None
    invoice_number: str | None
    credit_note_number: str | None
    balance: Amount


# --- ledger ------------------------------------------------------------------------------


class LedgerEntryOut(BaseModel):
    posting_id: int
    transaction_id: int
    kind: str
    memo: str
    amount: Amount
    effective_at: datetime
    recorded_at: datetime


# --- invoices ----------------------------------------------------------------------------


class InvoiceLineOut(BaseModel):
    position: int
    description: str
    service_id: int | None
    period_start: date | None
    period_end: date | None
    quantity: str
    unit_price: Amount
    net: Amount
    tax: Amount
    gross: Amount
    tax_rate_bp: int
    tax_inclusive: bool


class InvoiceOut(BaseModel):
    id: int
    number: str
    kind: str
    customer_id: int
    issue_date: date
    due_date: date
    status: str
    net: Amount
    tax: Amount
    gross: Amount
    paid: Amount
    corrects_id: int | None
    issued_at: datetime
    lines: list[InvoiceLineOut] | None = Field(None, description="Only on the single invoice.")


# --- payments ----------------------------------------------------------------------------


class PaymentDetailOut(BaseModel):
    id: int
    customer_id: int
    amount: Amount
    method: str
    reference: str | None
    received_at: datetime
    recorded_at: datetime
    reversed: bool
    allocated: Amount


class ReverseIn(Strict):
    reason: Annotated[str, Field(min_length=1, max_length=200)]


class ReversedOut(BaseModel):
    payment: PaymentDetailOut
    transaction_id: int
    created: bool
    invoices_reopened: list[str]


class RefundIn(Strict):
    customer_id: Id
    amount: AmountIn
    method: Annotated[str, Field(min_length=1, max_length=32)] = "bank_transfer"
    reference: Annotated[str, Field(min_length=1, max_length=120)]
    payment_id: Id | None = Field(None, description="The payment refunded, when one.")


class RefundOut(BaseModel):
    transaction_id: int
    created: bool
    amount: Amount


class StatementIn(Strict):
    file_name: Annotated[str, Field(min_length=1, max_length=255)]
    content_base64: Annotated[str, Field(min_length=1, max_length=14_000_000)]
    format: Annotated[str, Field(pattern=r"^(auto|csv|camt053|mt940)$")] = "auto"


class StatementOut(BaseModel):
    file_name: str
    format: str
    rows_read: int
    payments_created: int
    duplicates_skipped: int
    unmatched: int
    ignored: int
    unmatched_line_ids: list[int]


class BankLineOut(BaseModel):
    id: int
    booked_on: date
    amount: Amount
    reference: str | None
    counterparty_name: str | None
    counterparty_iban: str | None
    description: str
    status: str
    reason: str
    customer_id: int | None
    payment_id: int | None


class AssignIn(Strict):
    customer_id: Id


# --- refill cards ------------------------------------------------------------------------


class CardBatchIn(Strict):
    count: Annotated[StrictInt, Field(ge=1, le=10_000)]
    value: AmountIn
    currency: Currency
    expires_on: Day | None = None
    prefix: Annotated[str, Field(pattern=r"^[A-Z][A-Z0-9]{0,7}$")] = "RC"
    timezone: Annotated[str, Field(min_length=1, max_length=64)] = "UTC"


class IssuedCardOut(BaseModel):
    serial: str
    code: str


class CardBatchOut(BaseModel):
    batch_id: int
    name: str
    value: Amount
    total: Amount
    expires_on: date | None
    cards: list[IssuedCardOut] = Field(description="The codes, shown this once and never again.")


class CardOut(BaseModel):
    id: int
    serial: str
    batch_id: int
    value: Amount
    status: str
    expires_on: date | None
    redeemed_at: datetime | None
    customer_id: int | None


class VoidIn(Strict):
    serial: Annotated[str, Field(min_length=1, max_length=40)] | None = None
    batch: Annotated[str, Field(min_length=1, max_length=40)] | None = None
    reason: Annotated[str, Field(max_length=200)] = ""


class VoidOut(BaseModel):
    serials: list[str]
    totals: list[Amount]


class RedeemIn(Strict):
    code: Annotated[str, Field(min_length=1, max_length=64)]
    customer_id: Id


class RedeemOut(BaseModel):
    serial: str
    customer_id: int
    amount: Amount
    applied: Amount
    payment_id: int
    balance: Amount


class LiabilityOut(BaseModel):
    currency: str
    ledger: Amount
    outstanding: Amount
    unexpired: Amount
    awaiting_expiry: Amount
    active_cards: int
    cards_awaiting_expiry: int


# --- top-up rules ------------------------------------------------------------------------


class TopUpRuleIn(Strict):
    customer_id: Id
    threshold: AmountIn
    amount: AmountIn
    method: Annotated[str, Field(min_length=1, max_length=255)]
    gateway: Annotated[str, Field(pattern=r"^(sandbox|stripe)$")] = "sandbox"
    gateway_customer: Annotated[str, Field(min_length=1, max_length=255)] | None = None
    enabled: StrictBool = True


class TopUpRuleOut(BaseModel):
    id: int
    customer_id: int
    threshold: Amount
    amount: Amount
    gateway: str
    enabled: bool
    created_at: datetime
    updated_at: datetime


# --- events, settings, sessions ----------------------------------------------------------


class EventOut(BaseModel):
    id: int
    occurred_at: datetime
    actor: str
    kind: str
    subject_type: str
    subject_id: int
    customer_id: int | None
    reason: str
    figures: dict[str, Any]


class SettingIn(Strict):
    value: Annotated[str, Field(max_length=2000)] | None = Field(
        description="The new value as text, parsed as the setting's type; null clears it."
    )


class SessionIn(Strict):
    customer_id: Id
    minutes: Annotated[StrictInt, Field(ge=1, le=60 * 24 * 90)] | None = Field(
        None, description="Lifetime (default: the customer_session_minutes setting)."
    )


class SessionOut(BaseModel):
    token: str = Field(description="The bearer secret, shown this once.")
    customer_id: int
    expires_at: datetime


class WhoAmI(BaseModel):
    token_id: int
    role: str
    reseller_id: int | None
    customer_id: int | None


# --- notifications (customer e-mail) -----------------------------------------------------


class NotificationOut(BaseModel):
    id: int
    customer_id: int
    kind: str
    recipients: list[str]
    subject: str = Field(description="Rendered from the stored figures in the customer's locale.")
    status: str = Field(description="pending (queued for the sender), sent or failed.")
    attempts: int
    created_at: datetime
    next_attempt_at: datetime | None = Field(description="When a pending message is due.")
    sent_at: datetime | None
    last_error: str | None


class NotificationRetryIn(Strict):
    reason: Annotated[str, Field(min_length=1, max_length=200)]


# --- the CoA outbox -------------------------------------------------------------------------


class OutboxCommandOut(BaseModel):
    id: int
    service_id: int
    event_kind: str = Field(description="The access-changing event that queued the command.")
    reason: str
    status: str = Field(description="pending, done, or dead (attempts exhausted; retry it).")
    attempts: int
    created_at: datetime
    next_attempt_at: datetime | None = Field(description="When a pending command is due.")
    completed_at: datetime | None
    last_error: str | None
    sessions: int = Field(description="Sessions the command has answers for.")


class OutboxRetryIn(Strict):
    reason: Annotated[str, Field(min_length=1, max_length=200)]


# --- collections and suspensions ---------------------------------------------------------


class SuspendIn(Strict):
    reason: Annotated[str, Field(min_length=1, max_length=32, examples=["profile_3"])]
    suspend_invoicing: bool = False
    starts_on: Day | None = Field(None, description="FROM; today when left out.")
    ends_on: Day | None = Field(None, description="TO, the last suspended day.")
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
    end_repetition: bool = Field(
        False, description="A yearly window: end the repetition, not only this year's."
    )


class LiftOut(SuspensionOut):
    next_occurrence: SuspensionOut | None = Field(
        None, description="Next year's window when a yearly repetition goes on."
    )


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


# --- network: NAS and a service's network identity ---------------------------------------


class NasIn(Strict):
    name: Annotated[str, Field(min_length=1, max_length=100, examples=["edge-1"])]
    address: Annotated[str, Field(min_length=1, max_length=45, examples=["10.0.0.1"])] = Field(
        description="The NAS's IP address (its NAS-IP-Address)."
    )
    secret: Annotated[str, Field(min_length=8, max_length=128)] = Field(
        description="The RADIUS shared secret; stored for clients.conf and CoA, never returned."
    )
    coa_port: Annotated[StrictInt, Field(ge=1, le=65535)] = 3799
    vendor: Annotated[str, Field(pattern=VENDOR_PATTERN)] = "mikrotik"
    require_message_authenticator: StrictBool = True


class NasPatch(Strict):
    name: Annotated[str, Field(min_length=1, max_length=100)] | None = None
    address: Annotated[str, Field(min_length=1, max_length=45)] | None = None
    secret: Annotated[str, Field(min_length=8, max_length=128)] | None = None
    coa_port: Annotated[StrictInt, Field(ge=1, le=65535)] | None = None
    vendor: Annotated[str, Field(pattern=VENDOR_PATTERN)] | None = None
    require_message_authenticator: StrictBool | None = None


class NasOut(BaseModel):
    """A NAS without its shared secret."""

    id: int
    name: str
    address: str
    coa_port: int
    vendor: str
    require_message_authenticator: bool
    created_at: datetime


class NetworkIdentityIn(Strict):
    """Replaces the whole identity: a field left out is cleared."""

    username: Annotated[str, Field(min_length=1, max_length=253)] | None = None
    password: Annotated[str, Field(min_length=1, max_length=128)] | None = Field(
        None, description="With a username; never returned."
    )
    mac_address: Annotated[str, Field(min_length=1, max_length=32)] | None = None
    circuit_id: Annotated[str, Field(min_length=1, max_length=253)] | None = None
    static_ip: Annotated[str, Field(min_length=1, max_length=45)] | None = None
    nas: Annotated[str, Field(min_length=1, max_length=100)] | None = Field(
        None, description="Only this NAS (name, id or address) may log the service in."
    )
    pap_only: StrictBool = Field(
        False, description="Store a salted SHA-512 instead of the password (CHAP then fails)."
    )


class NetworkIdentityOut(BaseModel):
    service_id: int
    username: str | None
    password_scheme: str | None = Field(
        description="cleartext or ssha512; null without a password (which is never returned)."
    )
    mac_address: str | None
    circuit_id: str | None
    static_ip: str | None
    nas_id: int | None
    updated_at: datetime


# --- extra charges and add-ons (issue 17) --------------------------------------------------


class ExtraChargeIn(Strict):
    amount: AmountIn = Field(description="Unit price in major units.")
    currency: Currency | None = Field(None, description="The customer's currency (default).")
    description: Annotated[str, Field(min_length=1, max_length=300)]
    quantity: Annotated[StrictInt, Field(ge=1, le=10_000)] = 1
    service_id: Id | None = None
    tax_profile_id: Id | None = Field(
        None, description="Default: as the service, else the customer, is taxed."
    )


class ExtraChargeOut(BaseModel):
    id: int
    customer_id: int
    service_id: int | None
    description: str
    quantity: int
    unit_price: Amount
    net: Amount
    tax: Amount
    gross: Amount
    charged_at: datetime
    invoice_number: str | None
    created: bool = True
    paid_from: str | None = Field(None, description="wallet or next_invoice (on creation).")
    balance: Amount | None = None


class AddOnIn(Strict):
    description: Annotated[str, Field(min_length=1, max_length=300)]
    price: AmountIn = Field(description="Per full period of the service's cycle.")
    currency: Currency | None = None
    tax_profile_id: Id | None = Field(None, description="Default: as the service is taxed.")
    starts_on: Day | None = Field(None, description="First day charged (default: today).")
    ends_on: Day | None = Field(None, description="Last day charged (default: none).")


class AddOnEndIn(Strict):
    ends_on: Day | None = Field(
        None, description="The last day (default: the last day already charged, or today)."
    )


class AddOnOut(BaseModel):
    id: int
    service_id: int
    customer_id: int
    description: str
    price: Amount
    tax_profile: str | None
    starts_on: date
    ends_on: date | None
    charged_now: Amount | None = None
    invoice_number: str | None = None
    balance: Amount | None = None


# --- corrections (issue 17) ----------------------------------------------------------------


class CreditIn(Strict):
    reason: Annotated[str, Field(min_length=1, max_length=500)]
    line: Annotated[StrictInt, Field(ge=1, le=10_000)] | None = Field(
        None, description="Only this line (1 = the first); default the whole invoice."
    )
    amount: AmountIn | None = Field(None, description="Only this gross amount of the line.")


class VoidInvoiceIn(Strict):
    reason: Annotated[str, Field(min_length=1, max_length=500)]


class CorrectionOut(BaseModel):
    invoice_number: str
    invoice_status: str
    credit_note_number: str
    credited: Amount
    balance: Amount


class PaymentTermsIn(Strict):
    payment_terms_days: Annotated[StrictInt, Field(ge=0, le=365)] | None = Field(
        description="Days from issue to due; null: the operator's setting."
    )


class PaymentTermsOut(BaseModel):
    customer_id: int
    payment_terms_days: int | None


# --- scheduled changes (issue 17) ----------------------------------------------------------


class ScheduleIn(Strict):
    kind: Annotated[str, Field(pattern="^(plan_change|termination)$")]
    plan_id: Id | None = Field(None, description="The new plan (a plan change only).")
    on: Day | None = Field(
        None,
        description="A plan change: the new plan's first day (default: the end of the "
        "period). A termination: the last day (default: today, which counts as used).",
    )
    at_period_end: bool = Field(False, description="A termination at the period's end.")
    reason: Annotated[str, Field(max_length=500)] = ""


class CancelScheduledIn(Strict):
    reason: Annotated[str, Field(max_length=500)] = ""


class ScheduledOut(BaseModel):
    id: int
    service_id: int
    customer_id: int
    kind: str
    plan: str | None
    effective_on: date
    last_day: date | None
    due_at: datetime
    status: str
    reason: str
    note: str | None


class DiscountIn(Strict):
    """Exactly one of customer_id and service_id, of percent and amount, of periods and until
    (a refusal names the field)."""

    customer_id: Id | None = Field(None, description="Every service of this customer.")
    service_id: Id | None = Field(None, description="This service only.")
    percent: StrictInt | None = Field(None, description="Percent off, 1 to 100.")
    amount: str | None = Field(
        None, max_length=40, description="Amount off each period, in the customer's currency."
    )
    periods: StrictInt | None = Field(None, description="For this many periods.")
    until: Day | None = Field(None, description="For periods starting on or before this day.")
    reason: Annotated[str, Field(max_length=300)] = ""


class DiscountOut(BaseModel):
    id: int
    customer_id: int
    service_id: int | None
    percent: int | None
    amount: Amount | None
    periods: int | None
    until: date | None
    starts_on: date
    ended_on: date | None
    reason: str
    given: Amount

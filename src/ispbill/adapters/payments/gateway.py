"""The payment gateway interface: what ispbill asks of a card processor, and what it hears back.

Three things, whatever the processor: open a hosted checkout page for a one-off payment, charge
a saved payment method (automatic top-up), and turn a signed webhook delivery into a
``GatewayEvent`` after verifying its signature. Verification belongs to the adapter because each
processor signs differently; a delivery that fails it raises ``WebhookRefused`` and nothing
downstream ever sees it.

Events carry ispbill's own ``reference`` (sent as metadata when the checkout or charge was
created), so the services find the checkout or top-up attempt an event is about even when the
gateway reports one payment through several events (Stripe: the Checkout Session and its
PaymentIntent).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Protocol

from ispbill.domain.errors import ValidationError
from ispbill.domain.ledger import check_amount_range
from ispbill.domain.money import Money
from ispbill.domain.text import refuse_nul

GATEWAY_NAMES = ("sandbox", "stripe")
WEBHOOK_TOLERANCE_SECONDS = 300
# what a verified event may carry, checked before anything is looked up or stored: the bounds
# are those of the columns it lands in (webhook_events, checkouts, customers)
MAX_EVENT_TEXT = 255
MAX_EVENT_TYPE = 64
MAX_EVENT_ERROR = 1000
MAX_CUSTOMER_ID = 2**31 - 1  # an INTEGER id
LATEST_CREATED = 253_402_300_799  # 9999-12-31T23:59:59Z, the last second a datetime holds


class WebhookRefused(ValidationError):
    """A webhook delivery failed verification (signature, secret or timestamp); nothing of it is
    trusted or stored."""

    def __init__(self, rule: str) -> None:
        super().__init__("signature", rule)


class GatewayUnavailable(Exception):
    """The gateway could not be reached or gave no usable answer: the outcome is unknown, so
    the request must be sent again later with the same reference (idempotent at the gateway)."""


class PaymentPurpose(StrEnum):
    PAY_MONTHS = "pay_months"
    TOP_UP = "top_up"


@dataclass(frozen=True, slots=True)
class CheckoutRequest:
    reference: str
    customer_id: int
    amount: Money
    purpose: PaymentPurpose
    description: str
    success_url: str
    cancel_url: str
    save_method: bool = False


@dataclass(frozen=True, slots=True)
class Checkout:
    id: str
    url: str


@dataclass(frozen=True, slots=True)
class TopUpRequest:
    reference: str
    customer_id: int
    amount: Money
    method_reference: str
    gateway_customer_reference: str | None = None


class ChargeStatus(StrEnum):
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    PENDING = "pending"  # the gateway answers later, through a webhook


@dataclass(frozen=True, slots=True)
class ChargeResult:
    status: ChargeStatus
    charge_id: str | None
    error: str | None = None


class GatewayEventType(StrEnum):
    PAYMENT_SUCCEEDED = "payment_succeeded"
    PAYMENT_FAILED = "payment_failed"
    IGNORED = "ignored"  # verified, but about nothing ispbill acts on


@dataclass(frozen=True, slots=True)
class GatewayEvent:
    id: str
    type: GatewayEventType
    source_type: str  # the gateway's own name for the event, kept for the record
    created: datetime
    reference: str | None = None  # ispbill's checkout or top-up reference, from metadata
    checkout_id: str | None = None
    charge_id: str | None = None
    amount: Money | None = None
    customer_id: int | None = None
    error: str | None = None

    def __post_init__(self) -> None:
        """Whatever the adapter, an event out of these bounds never reaches the database."""
        event_text(self.id, "id", required=True)
        event_text(self.source_type, "type", required=True, limit=MAX_EVENT_TYPE)
        for name in ("reference", "checkout_id", "charge_id"):
            event_text(getattr(self, name), name)
        event_text(self.error, "error", limit=MAX_EVENT_ERROR)
        if self.customer_id is not None:
            event_customer(self.customer_id, "customer_id")
        if self.amount is not None:
            check_amount_range(self.amount, "amount")


class PaymentGateway(Protocol):
    name: str

    def create_checkout(self, request: CheckoutRequest) -> Checkout: ...

    def charge_saved_method(self, request: TopUpRequest) -> ChargeResult: ...

    def parse_webhook(self, payload: bytes, headers: Mapping[str, str]) -> GatewayEvent: ...


def header(headers: Mapping[str, str], name: str) -> str | None:
    """A header by name, case-insensitively (HTTP header names are)."""
    wanted = name.lower()
    for key, value in headers.items():
        if key.lower() == wanted:
            return value
    return None


def int_or_none(value: object) -> int | None:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    # at most 19 digits (a 64-bit integer): Python refuses to read a few thousand
    if isinstance(value, str) and value.isascii() and value.isdigit() and len(value) <= 19:
        return int(value)
    return None


# -- the fields of a verified event, each refused with its name and the rule --------------


def event_text(
    value: object, field: str, *, required: bool = False, limit: int = MAX_EVENT_TEXT
) -> str | None:
    """A string of at most ``limit`` characters without NUL; ``None`` (or "") when optional."""
    if value is None or value == "":
        if required:
            raise ValidationError(field, "is required")
        return None
    if not isinstance(value, str):
        raise ValidationError(field, "must be a string")
    if len(value) > limit:
        raise ValidationError(field, f"must be at most {limit} characters")
    return refuse_nul(value, field)


def event_id(value: object, field: str = "id") -> str:
    text = event_text(value, field, required=True)
    assert text is not None
    return text


def event_object(value: object, field: str) -> Mapping[str, object]:
    if not isinstance(value, Mapping):
        raise ValidationError(field, "must be an object")
    return value


def event_created(value: object, field: str = "created") -> datetime:
    """Seconds since the epoch, a whole number a datetime can hold."""
    if not isinstance(value, int) or isinstance(value, bool):
        raise ValidationError(field, "must be a whole number of seconds since 1970")
    if not 0 <= value <= LATEST_CREATED:
        raise ValidationError(field, f"must be between 0 and {LATEST_CREATED}")
    return datetime.fromtimestamp(value, UTC)


def event_customer(value: object, field: str = "customer_id") -> int | None:
    """A customer id (a whole number, or its digits as text) within the id column's range."""
    if value is None or value == "":
        return None
    if isinstance(value, str) and value.isascii() and value.isdigit():
        value = int(value) if len(value) <= 19 else MAX_CUSTOMER_ID + 1
    if not isinstance(value, int) or isinstance(value, bool):
        raise ValidationError(field, "must be a customer id (a whole number)")
    if not 0 < value <= MAX_CUSTOMER_ID:
        raise ValidationError(field, f"must be between 1 and {MAX_CUSTOMER_ID}")
    return value

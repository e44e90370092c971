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
from datetime import datetime
from enum import StrEnum
from typing import Protocol

from ispbill.domain.errors import ValidationError
from ispbill.domain.money import Money

GATEWAY_NAMES = ("sandbox", "stripe")
WEBHOOK_TOLERANCE_SECONDS = 300


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
    if isinstance(value, str) and value.isascii() and value.isdigit():
        return int(value)
    return None

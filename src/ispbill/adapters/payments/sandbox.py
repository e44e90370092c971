"""The sandbox gateway: a pretend card processor that runs inside ispbill, for demos and tests.

It behaves like a real one where it matters to ispbill: a hosted checkout page (served by
ispbill's own web app at ``/sandbox/checkout/{id}``), saved payment methods for top-ups, and
webhooks signed with HMAC-SHA256 that reach the same webhook handler a real gateway's would,
verified the same way (a signature over ``f"{t}.{body}"``, a timestamp within five minutes of
the injected clock).

Cards behave deterministically, after the usual test-card conventions:

* a number (or saved method reference) ending ``0002`` is declined;
* a saved method ending ``3155`` answers "pending": the result arrives later, by webhook;
* anything else with 12 to 19 digits is accepted (a saved method needs no digits at all).

The sandbox credits wallets with money that does not exist, so it runs only when its secret is
configured (``ISPBILL_SANDBOX_SECRET``); see ``adapters/payments/__init__.py``.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ispbill.adapters.payments.gateway import (
    MAX_EVENT_ERROR,
    WEBHOOK_TOLERANCE_SECONDS,
    ChargeResult,
    ChargeStatus,
    Checkout,
    CheckoutRequest,
    GatewayEvent,
    GatewayEventType,
    TopUpRequest,
    WebhookRefused,
    event_created,
    event_customer,
    event_id,
    event_object,
    event_text,
    header,
    int_or_none,
)
from ispbill.clock import Clock
from ispbill.domain.errors import ValidationError
from ispbill.domain.ledger import check_amount_range
from ispbill.domain.money import Money

SIGNATURE_HEADER = "Ispbill-Signature"
DECLINE_SUFFIX = "0002"
PENDING_SUFFIX = "3155"


@dataclass(frozen=True, slots=True)
class Delivery:
    """A signed webhook, ready to be delivered: the raw body and its headers."""

    payload: bytes
    headers: dict[str, str]


def card_outcome(card_number: str) -> tuple[ChargeStatus, str | None]:
    """What the pretend processor answers for a card number typed on the hosted page."""
    digits = "".join(card_number.split()).replace("-", "")
    if not digits.isascii() or not digits.isdigit() or not 12 <= len(digits) <= 19:
        return ChargeStatus.FAILED, "invalid card number (12 to 19 digits)"
    if digits.endswith(DECLINE_SUFFIX):
        return ChargeStatus.FAILED, f"card declined (sandbox card ending {DECLINE_SUFFIX})"
    return ChargeStatus.SUCCEEDED, None


class SandboxGateway:
    name = "sandbox"

    def __init__(self, *, secret: str, clock: Clock, base_url: str) -> None:
        if not secret.strip():
            raise ValidationError("sandbox_secret", "must not be empty")
        self._key = secret.strip().encode("utf-8")
        self._clock = clock
        self._base_url = base_url.rstrip("/")
        # where the hosted page sends the payer back (ispbill's own pages only); kept in memory:
        # the sandbox is for demos and tests, served by the process that opened the checkout
        self._returns: dict[str, str] = {}

    def return_url(self, checkout_id: str) -> str | None:
        """Where to send the payer after the hosted page, if ispbill asked for it."""
        return self._returns.get(checkout_id)

    # -- the gateway interface --------------------------------------------------------------

    def create_checkout(self, request: CheckoutRequest) -> Checkout:
        # derived from the reference: creating the same checkout twice gives the same page
        checkout_id = "sbx_cs_" + self._digest(f"checkout:{request.reference}")[:24]
        if request.success_url.startswith(self._base_url + "/"):
            self._returns[checkout_id] = request.success_url
        return Checkout(checkout_id, f"{self._base_url}/sandbox/checkout/{checkout_id}")

    def charge_saved_method(self, request: TopUpRequest) -> ChargeResult:
        # derived from the reference: a retried request is the same charge (idempotent)
        charge_id = "sbx_ch_" + self._digest(f"charge:{request.reference}")[:24]
        method = request.method_reference.strip()
        if method.endswith(DECLINE_SUFFIX):
            return ChargeResult(
                ChargeStatus.FAILED,
                charge_id,
                f"card declined (sandbox method ending {DECLINE_SUFFIX})",
            )
        if method.endswith(PENDING_SUFFIX):
            return ChargeResult(ChargeStatus.PENDING, charge_id)
        return ChargeResult(ChargeStatus.SUCCEEDED, charge_id)

    def parse_webhook(self, payload: bytes, headers: Mapping[str, str]) -> GatewayEvent:
        self._verify(payload, header(headers, SIGNATURE_HEADER))
        try:
            body = event_object(json.loads(payload), "payload")
        except (ValueError, RecursionError):  # signed, yet not JSON (the API bounds depth)
            raise ValidationError("payload", "not a sandbox event (not JSON)") from None
        # signed, yet each field is checked before use: the secret may sit on a demo machine
        data = event_object(body.get("data"), "data")
        kinds = {kind.value: kind for kind in GatewayEventType}
        kind = kinds.get(str(body.get("type")))
        if kind is None:
            raise ValidationError("type", f"must be one of {', '.join(kinds)}")
        amount_minor, currency = data.get("amount_minor"), data.get("currency")
        amount = None
        if amount_minor is not None:
            if not isinstance(amount_minor, int) or isinstance(amount_minor, bool):
                raise ValidationError("data.amount_minor", "must be a whole number")
            if not isinstance(currency, str):
                raise ValidationError("data.currency", "must be a currency code")
            amount = check_amount_range(Money(amount_minor, currency), "data.amount_minor")
        return GatewayEvent(
            id=event_id(body.get("id")),
            type=kind,
            source_type=kind.value,
            created=event_created(body.get("created")),
            reference=event_text(data.get("reference"), "data.reference"),
            checkout_id=event_text(data.get("checkout_id"), "data.checkout_id"),
            charge_id=event_text(data.get("charge_id"), "data.charge_id"),
            amount=amount,
            customer_id=event_customer(data.get("customer_id"), "data.customer_id"),
            error=event_text(data.get("error"), "data.error", limit=MAX_EVENT_ERROR),
        )

    # -- what the hosted checkout and the tests use ----------------------------------------

    def event(
        self,
        kind: GatewayEventType,
        *,
        amount: Money,
        customer_id: int,
        reference: str,
        checkout_id: str | None = None,
        charge_id: str | None = None,
        error: str | None = None,
        event_id: str | None = None,
    ) -> Delivery:
        """A signed delivery of one event, as the sandbox processor would send it."""
        body: dict[str, Any] = {
            "id": event_id or f"sbx_evt_{uuid.uuid4().hex}",
            "type": kind.value,
            "created": int(self._clock.now().timestamp()),
            "data": {
                "reference": reference,
                "checkout_id": checkout_id,
                "charge_id": charge_id,
                "amount_minor": amount.minor,
                "currency": amount.currency,
                "customer_id": customer_id,
                "error": error,
            },
        }
        payload = json.dumps(body, separators=(",", ":"), sort_keys=True).encode("utf-8")
        return Delivery(payload, {SIGNATURE_HEADER: self.sign(payload)})

    def sign(self, payload: bytes, timestamp: int | None = None) -> str:
        stamp = int(self._clock.now().timestamp()) if timestamp is None else timestamp
        return f"t={stamp},v1={self._mac(stamp, payload)}"

    # -- internals --------------------------------------------------------------------------

    def _mac(self, timestamp: int, payload: bytes) -> str:
        signed = str(timestamp).encode("ascii") + b"." + payload
        return hmac.new(self._key, signed, hashlib.sha256).hexdigest()

    def _digest(self, text: str) -> str:
        return hmac.new(self._key, text.encode("utf-8"), hashlib.sha256).hexdigest()

    def _verify(self, payload: bytes, value: str | None) -> None:
        if not value:
            raise WebhookRefused(f"missing {SIGNATURE_HEADER} header")
        timestamp: int | None = None
        signatures: list[str] = []
        for part in value.split(","):
            name, _, content = part.strip().partition("=")
            if name == "t":
                timestamp = int_or_none(content)
            elif name == "v1":
                signatures.append(content)
        if timestamp is None or not signatures:
            raise WebhookRefused(f"malformed {SIGNATURE_HEADER} header (want t=...,v1=...)")
        expected = self._mac(timestamp, payload)
        if not any(hmac.compare_digest(expected, s) for s in signatures):
            raise WebhookRefused(
                "does not match the payload (tampered, or signed with another secret)"
            )
        age = int(self._clock.now().timestamp()) - timestamp
        if abs(age) > WEBHOOK_TOLERANCE_SECONDS:
            raise WebhookRefused(
                f"timestamp is {age} s away from now; at most {WEBHOOK_TOLERANCE_SECONDS} s "
                "is accepted (a replay of an old delivery?)"
            )

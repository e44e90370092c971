"""Stripe, through the official ``stripe`` library (pinned in pyproject.toml).

* One-off payments (pay N months, a wallet top-up) are Checkout Sessions. ispbill's reference,
  the customer id and the purpose go into the metadata of the session *and* of its
  PaymentIntent, so ``checkout.session.completed`` and ``payment_intent.succeeded`` both lead
  back to the same checkout row, whose payment is then credited once.
* Automatic top-ups confirm a PaymentIntent off-session on the saved payment method, with the
  attempt's reference as Stripe's idempotency key: a request sent again after a crash or a
  network failure is the same charge at Stripe, never a second one.
* Webhooks are verified by ``stripe.Webhook.construct_event`` (HMAC-SHA256 over
  ``f"{t}.{body}"`` with the endpoint secret). The library checks the timestamp against the
  machine's wall clock; ispbill's rule is that the clock is injected, so the library's own
  tolerance is switched off (``tolerance=0``) and the same five minutes are checked here against
  the injected clock, after the library has verified the signature.

Amounts are in Stripe's smallest currency unit, which is ispbill's minor unit for every
currency ispbill bills in (Stripe's few exceptions, such as ISK or HUF payouts, are not
handled).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import stripe
from stripe.params import PaymentIntentCreateParams
from stripe.params.checkout import SessionCreateParams, SessionCreateParamsPaymentIntentData

from ispbill.adapters.payments.gateway import (
    MAX_EVENT_TYPE,
    WEBHOOK_TOLERANCE_SECONDS,
    ChargeResult,
    ChargeStatus,
    Checkout,
    CheckoutRequest,
    GatewayEvent,
    GatewayEventType,
    GatewayUnavailable,
    TopUpRequest,
    WebhookRefused,
    event_created,
    event_id,
    event_object,
    event_text,
    header,
    int_or_none,
)
from ispbill.clock import Clock
from ispbill.domain.errors import ValidationError
from ispbill.domain.money import Money

SIGNATURE_HEADER = "Stripe-Signature"
SUCCEEDED_TYPES = frozenset(
    {
        "checkout.session.completed",
        "checkout.session.async_payment_succeeded",
        "payment_intent.succeeded",
    }
)
FAILED_TYPES = frozenset({"checkout.session.async_payment_failed", "payment_intent.payment_failed"})
PAID_STATUSES = frozenset({"paid", "no_payment_required"})
# Errors after which the outcome of a request is unknown: send it again with the same key.
UNKNOWN_OUTCOME = (stripe.APIConnectionError, stripe.RateLimitError, stripe.APIError)


class StripeGateway:
    name = "stripe"

    def __init__(
        self,
        *,
        api_key: str,
        webhook_secret: str,
        clock: Clock,
        http_client: stripe.HTTPClient | None = None,
        max_network_retries: int = 2,
    ) -> None:
        if not webhook_secret.strip():
            raise ValidationError("stripe_webhook_secret", "must not be empty")
        self._secret = webhook_secret.strip()
        self._clock = clock
        self._client = stripe.StripeClient(
            api_key, http_client=http_client, max_network_retries=max_network_retries
        )

    def create_checkout(self, request: CheckoutRequest) -> Checkout:
        metadata = _metadata(request.reference, request.customer_id, request.purpose.value)
        intent: SessionCreateParamsPaymentIntentData = {"metadata": metadata}
        if request.save_method:
            intent["setup_future_usage"] = "off_session"
        params: SessionCreateParams = {
            "mode": "payment",
            "client_reference_id": request.reference,
            "line_items": [
                {
                    "quantity": 1,
                    "price_data": {
                        "currency": request.amount.currency.lower(),
                        "unit_amount": request.amount.minor,
                        "product_data": {"name": request.description},
                    },
                }
            ],
            "metadata": metadata,
            "payment_intent_data": intent,
            "success_url": request.success_url,
            "cancel_url": request.cancel_url,
        }
        try:
            session = self._client.v1.checkout.sessions.create(
                params, options={"idempotency_key": f"ispbill-checkout-{request.reference}"}
            )
        except UNKNOWN_OUTCOME as exc:
            raise GatewayUnavailable(f"stripe: {exc.user_message or exc}") from exc
        except stripe.StripeError as exc:
            raise ValidationError(
                "gateway", f"stripe refused the checkout: {_message(exc)}"
            ) from None
        if not session.url:
            raise GatewayUnavailable(f"stripe returned checkout session {session.id} without a URL")
        return Checkout(session.id, session.url)

    def charge_saved_method(self, request: TopUpRequest) -> ChargeResult:
        metadata = _metadata(request.reference, request.customer_id, "top_up")
        params: PaymentIntentCreateParams = {
            "amount": request.amount.minor,
            "currency": request.amount.currency.lower(),
            "payment_method": request.method_reference,
            "off_session": True,
            "confirm": True,
            "metadata": metadata,
            "description": "ispbill automatic top-up",
        }
        if request.gateway_customer_reference:
            params["customer"] = request.gateway_customer_reference
        try:
            intent = self._client.v1.payment_intents.create(
                params,
                options={"idempotency_key": f"ispbill-topup-{request.reference}"},
            )
        except stripe.CardError as exc:
            declined = exc.error.payment_intent if exc.error is not None else None
            return ChargeResult(
                ChargeStatus.FAILED, declined.id if declined is not None else None, _message(exc)
            )
        except UNKNOWN_OUTCOME as exc:
            raise GatewayUnavailable(f"stripe: {exc.user_message or exc}") from exc
        except stripe.StripeError as exc:
            return ChargeResult(ChargeStatus.FAILED, None, _message(exc))
        if intent.status == "succeeded":
            return ChargeResult(ChargeStatus.SUCCEEDED, intent.id)
        if intent.status == "processing":
            return ChargeResult(ChargeStatus.PENDING, intent.id)
        return ChargeResult(ChargeStatus.FAILED, intent.id, f"payment intent is {intent.status}")

    def parse_webhook(self, payload: bytes, headers: Mapping[str, str]) -> GatewayEvent:
        signature = header(headers, SIGNATURE_HEADER)
        try:
            # tolerance=0: the library would compare with the wall clock; see the module doc
            event = stripe.Webhook.construct_event(payload, signature, self._secret, tolerance=0)
        except stripe.SignatureVerificationError as exc:
            raise WebhookRefused(str(exc.user_message or exc)) from None
        except ValueError as exc:  # signed, but not JSON or not an event
            raise ValidationError("payload", f"not a Stripe event ({exc})") from None
        assert signature is not None  # construct_event refuses a missing header
        self._check_timestamp(signature)
        return _to_event(event.to_dict())

    def _check_timestamp(self, signature: str) -> None:
        stamps = [int_or_none(p.strip()[2:]) for p in signature.split(",") if p.strip()[:2] == "t="]
        stamp = stamps[0] if stamps else None
        if stamp is None:
            raise WebhookRefused(f"malformed {SIGNATURE_HEADER} header")
        age = int(self._clock.now().timestamp()) - stamp
        if abs(age) > WEBHOOK_TOLERANCE_SECONDS:
            raise WebhookRefused(
                f"timestamp is {age} s away from now; at most {WEBHOOK_TOLERANCE_SECONDS} s "
                "is accepted (a replay of an old delivery?)"
            )


def _metadata(reference: str, customer_id: int, purpose: str) -> dict[str, str]:
    return {"ispbill_reference": reference, "customer_id": str(customer_id), "purpose": purpose}


def _message(exc: stripe.StripeError) -> str:
    return str(exc.user_message or exc.code or type(exc).__name__)


def _to_event(event: Mapping[str, Any]) -> GatewayEvent:
    """Map a verified Stripe event onto ispbill's; anything else is verified but ignored."""
    kind = event_text(event.get("type"), "type", required=True, limit=MAX_EVENT_TYPE)
    assert kind is not None
    obj: Mapping[str, Any] = event_object(
        event_object(event.get("data"), "data").get("object"), "data.object"
    )
    created = event_created(event.get("created"))
    metadata: Mapping[str, Any] = event_object(obj.get("metadata") or {}, "data.object.metadata")
    base: dict[str, Any] = {
        "id": event_id(event.get("id")),
        "source_type": kind,
        "created": created,
        "customer_id": int_or_none(metadata.get("customer_id")),
    }
    if kind.startswith("checkout.session."):
        base |= {
            "reference": metadata.get("ispbill_reference") or obj.get("client_reference_id"),
            "checkout_id": obj.get("id"),
            "charge_id": _id_of(obj.get("payment_intent")),
            "amount": _money(obj.get("amount_total"), obj.get("currency")),
        }
        if kind == "checkout.session.completed" and obj.get("payment_status") not in PAID_STATUSES:
            # an asynchronous method (a bank debit): the money arrives with a later event
            return GatewayEvent(type=GatewayEventType.IGNORED, **base)
    elif kind.startswith("payment_intent."):
        failure = event_object(obj.get("last_payment_error") or {}, "last_payment_error")
        base |= {
            "reference": metadata.get("ispbill_reference"),
            "charge_id": obj.get("id"),
            "amount": _money(obj.get("amount_received") or obj.get("amount"), obj.get("currency")),
            "error": failure.get("message") if kind in FAILED_TYPES else None,
        }
    if kind in SUCCEEDED_TYPES:
        return GatewayEvent(type=GatewayEventType.PAYMENT_SUCCEEDED, **base)
    if kind in FAILED_TYPES:
        return GatewayEvent(type=GatewayEventType.PAYMENT_FAILED, **base)
    return GatewayEvent(type=GatewayEventType.IGNORED, **base)


def _id_of(value: Any) -> str | None:
    if isinstance(value, str):
        return value
    if isinstance(value, Mapping) and isinstance(value.get("id"), str):
        return str(value["id"])
    return None


def _money(amount: Any, currency: Any) -> Money | None:
    if not isinstance(amount, int) or isinstance(amount, bool) or not isinstance(currency, str):
        return None
    try:
        return Money(amount, currency.upper())
    except (ValueError, ValidationError):  # a currency ispbill does not know
        return None

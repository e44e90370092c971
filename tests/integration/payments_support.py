"""Shared by the gateway, top-up and webhook API tests: an app with both gateways configured
(Stripe behind a fake HTTP client, since its API is unreachable here), builders, Stripe payloads
signed locally with a test secret, and row counts to prove that a refusal wrote nothing."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any
from urllib.parse import parse_qsl

import stripe
from sqlalchemy import func, select

from ispbill.adapters.db.models import (
    CheckoutRow,
    Event,
    LedgerTransaction,
    Payment,
    TopUpAttempt,
    WebhookEventRow,
)
from ispbill.adapters.payments.sandbox import SandboxGateway
from ispbill.adapters.payments.stripe_gateway import StripeGateway
from ispbill.bootstrap import App, bootstrap
from ispbill.clock import FixedClock
from ispbill.settings import Settings
from scenarios.helpers import add_class, add_customer, add_plan, add_service

SANDBOX_SECRET = "sandbox-test-secret-0123456789abcdef"
STRIPE_SECRET = "whsec_test_0123456789abcdef"
STRIPE_KEY = "sk_test_ispbill"
BASE_URL = "http://testserver"


@dataclass
class StripeCall:
    method: str
    url: str
    headers: dict[str, str]
    params: dict[str, str]


Responder = Callable[[StripeCall], tuple[int, Mapping[str, Any]]]


class FakeStripeHTTP(stripe.HTTPClient):
    """Stands in for the network under the official library: records each request as the
    library built it and answers with what the test scripted (or raises a connection error)."""

    name = "fake"

    def __init__(self, responder: Responder | None = None) -> None:
        super().__init__()
        self.responder = responder
        self.calls: list[StripeCall] = []

    def request(
        self,
        method: str,
        url: str,
        headers: Mapping[str, str] | None,
        post_data: Any = None,
        *,
        _usage: list[str] | None = None,
    ) -> tuple[str, int, Mapping[str, str]]:
        body = post_data.decode() if isinstance(post_data, bytes) else (post_data or "")
        call = StripeCall(method, url, dict(headers or {}), dict(parse_qsl(body)))
        self.calls.append(call)
        if self.responder is None:
            raise stripe.APIConnectionError("no network in tests")
        status, answer = self.responder(call)
        return json.dumps(answer), status, {"Request-Id": f"req_{len(self.calls)}"}

    def close(self) -> None:
        pass


def make_app(
    database_url: str, clock: FixedClock, stripe_http: FakeStripeHTTP | None = None
) -> App:
    settings = Settings(
        database_url=database_url,
        sandbox_secret=SANDBOX_SECRET,
        stripe_api_key=STRIPE_KEY,
        stripe_webhook_secret=STRIPE_SECRET,
        public_base_url=BASE_URL,
    )
    app = bootstrap(settings=settings, clock=clock)
    app.gateways["stripe"] = StripeGateway(
        api_key=STRIPE_KEY,
        webhook_secret=STRIPE_SECRET,
        clock=clock,
        http_client=stripe_http or FakeStripeHTTP(),
        max_network_retries=0,
    )
    return app


def sandbox(app: App) -> SandboxGateway:
    gateway = app.gateways["sandbox"]
    assert isinstance(gateway, SandboxGateway)
    return gateway


def setup_prepaid(
    app: App,
    now: datetime,
    *,
    name: str = "Dora",
    funds: str = "10.00",
    cycle: str = "1m",
    price: str = "30.00",
    active_from: date | None = None,
    minimum_balance: str | None = None,
) -> tuple[int, int]:
    """A class, a plan of ``price`` on ``cycle``, and a prepaid customer with ``funds`` and one
    service; returns (customer id, service id)."""
    add_class(app, now)
    add_plan(app, now, "Home 30", price, cycle=cycle)
    terms: dict[str, Any] = {"available_funds": funds}
    if minimum_balance is not None:
        terms["minimum_balance"] = minimum_balance
    customer = add_customer(app, now, name, **terms)
    service = add_service(app, now, customer, "Home 30", active_from=active_from or now.date())
    return customer, service


COUNTED = (Payment, LedgerTransaction, WebhookEventRow, Event, CheckoutRow, TopUpAttempt)


def counts(app: App) -> dict[str, int]:
    """Rows in every table a payment path writes to."""
    with app.uow() as uow:
        return {
            model.__tablename__: int(
                uow.session.scalar(select(func.count()).select_from(model)) or 0
            )
            for model in COUNTED
        }


def stripe_event(event_id: str, kind: str, obj: Mapping[str, Any], created: datetime) -> bytes:
    body = {
        "id": event_id,
        "object": "event",
        "type": kind,
        "created": int(created.timestamp()),
        "livemode": False,
        "data": {"object": dict(obj)},
    }
    return json.dumps(body).encode()


def stripe_signed(payload: bytes, *, at: datetime, secret: str = STRIPE_SECRET) -> dict[str, str]:
    """Sign as Stripe does (``t=TS,v1=HMAC_SHA256(secret, f"{TS}.{payload}")``), offline,
    with the official library's own helper."""
    header = stripe.WebhookSignature.generate_signature_header(
        payload.decode(), secret, timestamp=int(at.timestamp())
    )
    return {"Stripe-Signature": header}

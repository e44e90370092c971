"""The HTTP side of gateway payments, on both databases, through httpx's ASGI transport (the
app in process, no socket): the webhook endpoint (raw body, problem+json refusals, 200 for replays) and the sandbox's hosted
checkout, whose POST reactivates a deactivated prepaid customer before the response returns.
After every test the books are checked."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from payments_support import (
    FakeStripeHTTP,
    StripeCall,
    counts,
    make_app,
    sandbox,
    setup_prepaid,
    stripe_event,
    stripe_signed,
)
from sqlalchemy import select

from ispbill.adapters.db.models import CheckoutRow
from ispbill.adapters.payments.gateway import GatewayEventType
from ispbill.adapters.payments.sandbox import SIGNATURE_HEADER, Delivery
from ispbill.bootstrap import App, bootstrap
from ispbill.clock import FixedClock
from ispbill.domain.money import Money
from ispbill.entrypoints.asgi_app import create_app
from ispbill.settings import Settings
from ispbill.use_cases.payments import checkouts as gateways
from scenarios.helpers import check_books, state, tick, wallet

T0 = datetime(2026, 1, 1, 9, 0, tzinfo=UTC)
PROBLEM = "application/problem+json"


@pytest.fixture
def stripe_http() -> FakeStripeHTTP:
    def answer(call: StripeCall) -> tuple[int, dict[str, str]]:
        return 200, {
            "id": "cs_http_1",
            "object": "checkout.session",
            "url": "https://stripe.test/cs",
        }

    return FakeStripeHTTP(answer)


@pytest.fixture
def app(database_url: str, clock: FixedClock, stripe_http: FakeStripeHTTP) -> Iterator[App]:
    application = make_app(database_url, clock, stripe_http)
    try:
        yield application
        check_books(application)
    finally:
        application.close()


class AsgiClient:
    """A synchronous face on ``httpx.AsyncClient`` over ``ASGITransport`` (starlette's own
    TestClient now warns that it wants the ``httpx2`` package, and warnings are errors here)."""

    def __init__(self, app: App) -> None:
        self.transport = httpx.ASGITransport(app=create_app(app))

    def request(self, method: str, url: str, **options: Any) -> httpx.Response:
        async def send() -> httpx.Response:
            async with httpx.AsyncClient(
                transport=self.transport, base_url="http://testserver"
            ) as client:
                return await client.request(method, url, **options)

        return asyncio.run(send())

    def get(self, url: str, **options: Any) -> httpx.Response:
        return self.request("GET", url, **options)

    def post(self, url: str, **options: Any) -> httpx.Response:
        return self.request("POST", url, **options)


@pytest.fixture
def client(app: App) -> AsgiClient:
    return AsgiClient(app)


def deactivated_checkout(app: App, gateway: str = "sandbox") -> tuple[int, int, CheckoutRow]:
    customer, service = setup_prepaid(app, T0)
    tick(app, T0)
    assert state(app, service) == ("deactivated", "insufficient_funds")
    with app.uow() as uow:
        started = gateways.start_checkout(
            uow,
            gateways=app.gateways,
            gateway=gateway,
            customer_id=customer,
            months=1,
            now=T0,
            actor="test",
        )
    return customer, service, started.checkout


def test_the_same_webhook_posted_three_times_credits_once(app: App, client: AsgiClient) -> None:
    customer, service, checkout = deactivated_checkout(app)
    delivery = sandbox(app).event(
        GatewayEventType.PAYMENT_SUCCEEDED,
        amount=Money(20_00, "USD"),
        customer_id=customer,
        reference=checkout.reference,
        checkout_id=checkout.external_id,
    )
    answers = [
        client.post("/api/v1/webhooks/sandbox", content=delivery.payload, headers=delivery.headers)
        for _ in range(3)
    ]
    assert [a.status_code for a in answers] == [200, 200, 200]
    assert [(a.json()["outcome"], a.json()["duplicate"]) for a in answers] == [
        ("credited", False),
        ("credited", True),
        ("credited", True),
    ]
    assert counts(app)["payments"] == 1
    assert state(app, service) == ("active", None)


def test_a_tampered_webhook_is_a_400_problem_and_writes_nothing(
    app: App, client: AsgiClient
) -> None:
    customer, service, checkout = deactivated_checkout(app)
    delivery = sandbox(app).event(
        GatewayEventType.PAYMENT_SUCCEEDED,
        amount=Money(20_00, "USD"),
        customer_id=customer,
        reference=checkout.reference,
        checkout_id=checkout.external_id,
    )
    before = counts(app)
    tampered = delivery.payload.replace(b'"amount_minor":2000', b'"amount_minor":9000')
    answer = client.post("/api/v1/webhooks/sandbox", content=tampered, headers=delivery.headers)
    assert answer.status_code == 400
    assert answer.headers["content-type"] == PROBLEM
    assert answer.json()["field"] == "signature"
    unsigned = client.post("/api/v1/webhooks/sandbox", content=delivery.payload)
    assert unsigned.status_code == 400
    assert counts(app) == before
    assert state(app, service) == ("deactivated", "insufficient_funds")


def _resigned(app: App, payload: bytes, change: Callable[[dict[str, Any]], str]) -> Delivery:
    """The sandbox's own event with one field changed (``change`` edits the parsed body and
    answers a marker; the marker's JSON is replaced by raw text if the edit returned any), then
    signed with the sandbox's secret: the signature is valid, the content is not."""
    body = json.loads(payload)
    raw = change(body)
    text = json.dumps(body, separators=(",", ":"))
    if raw:
        text = text.replace('"@raw"', raw)
    data = text.encode()
    return Delivery(data, {SIGNATURE_HEADER: sandbox(app).sign(data)})


def _created_beyond_a_float(body: dict[str, Any]) -> str:
    body["created"] = "@raw"
    return "1e400"  # a float JSON allows; Python reads it as infinity


def _data_a_list(body: dict[str, Any]) -> str:
    body["data"] = []
    return ""


def _long_event_id(body: dict[str, Any]) -> str:
    body["id"] = "e" * 5000
    return ""


def _customer_beyond_any_id(body: dict[str, Any]) -> str:
    # unmatched (no such reference or checkout), so the event's own customer id is what is kept
    body["data"] |= {"customer_id": 10**23, "reference": "nope", "checkout_id": None}
    return ""


@pytest.mark.parametrize(
    ("change", "field"),
    [
        (_created_beyond_a_float, "created"),
        (_data_a_list, "data"),
        (_long_event_id, "id"),
        (_customer_beyond_any_id, "data.customer_id"),
    ],
)
def test_a_signed_webhook_with_a_field_out_of_bounds_is_a_400_and_writes_nothing(
    app: App, client: AsgiClient, change: Callable[[dict[str, Any]], str], field: str
) -> None:
    customer, service, checkout = deactivated_checkout(app)
    delivery = sandbox(app).event(
        GatewayEventType.PAYMENT_SUCCEEDED,
        amount=Money(20_00, "USD"),
        customer_id=customer,
        reference=checkout.reference,
        checkout_id=checkout.external_id,
    )
    before = counts(app)
    bad = _resigned(app, delivery.payload, change)
    answer = client.post("/api/v1/webhooks/sandbox", content=bad.payload, headers=bad.headers)
    assert (answer.status_code, answer.headers["content-type"]) == (400, PROBLEM)
    assert answer.json()["field"] == field
    assert counts(app) == before
    assert state(app, service) == ("deactivated", "insufficient_funds")
    # the same event, well formed, still goes through
    good = client.post(
        "/api/v1/webhooks/sandbox", content=delivery.payload, headers=delivery.headers
    )
    assert (good.status_code, good.json()["outcome"]) == (200, "credited")


STRIPE_CREATED = f'"created": {int(T0.timestamp())}'.encode()


@pytest.mark.parametrize(
    ("old", "new", "field"),
    [
        (STRIPE_CREATED, b'"created": 1e400', "created"),
        (b'"metadata": {"customer_id": "1"}', b'"metadata": ["1"]', "data.object.metadata"),
        (b'"id": "evt_bad"', b'"id": "' + b"e" * 5000 + b'"', "id"),
    ],
    ids=["created-1e400", "metadata-a-list", "id-5000-characters"],
)
def test_a_signed_stripe_event_with_a_field_out_of_bounds_is_a_400_and_writes_nothing(
    app: App, client: AsgiClient, old: bytes, new: bytes, field: str
) -> None:
    event = stripe_event(
        "evt_bad",
        "checkout.session.completed",
        {"id": "cs_x", "object": "checkout.session", "metadata": {"customer_id": "1"}},
        T0,
    )
    assert old in event
    payload = event.replace(old, new)
    before = counts(app)
    answer = client.post(
        "/api/v1/webhooks/stripe", content=payload, headers=stripe_signed(payload, at=T0)
    )
    assert (answer.status_code, answer.headers["content-type"]) == (400, PROBLEM)
    assert answer.json()["field"] == field
    assert counts(app) == before


@pytest.mark.parametrize("gateway", ["sandbox", "stripe"])
def test_a_signature_with_a_timestamp_of_thousands_of_digits_is_a_400(
    client: AsgiClient, gateway: str
) -> None:
    name = "Stripe-Signature" if gateway == "stripe" else SIGNATURE_HEADER
    answer = client.post(
        f"/api/v1/webhooks/{gateway}", content=b"{}", headers={name: f"t={'9' * 5000},v1=00"}
    )
    assert (answer.status_code, answer.headers["content-type"]) == (400, PROBLEM)


def test_an_unknown_gateway_is_a_404_problem(client: AsgiClient) -> None:
    answer = client.post("/api/v1/webhooks/paypal", content=b"{}")
    assert (answer.status_code, answer.headers["content-type"]) == (404, PROBLEM)


def test_a_stripe_webhook_over_http(app: App, client: AsgiClient) -> None:
    customer, service, checkout = deactivated_checkout(app, gateway="stripe")
    payload = stripe_event(
        "evt_http",
        "checkout.session.completed",
        {
            "id": "cs_http_1",
            "object": "checkout.session",
            "amount_total": 2000,
            "currency": "usd",
            "payment_status": "paid",
            "metadata": {"ispbill_reference": checkout.reference, "customer_id": str(customer)},
        },
        T0,
    )
    answer = client.post(
        "/api/v1/webhooks/stripe", content=payload, headers=stripe_signed(payload, at=T0)
    )
    assert (answer.status_code, answer.json()["outcome"]) == (200, "credited")
    assert state(app, service) == ("active", None)
    wrong = client.post(
        "/api/v1/webhooks/stripe",
        content=payload,
        headers=stripe_signed(payload, at=T0, secret="whsec_no"),
    )
    assert (wrong.status_code, wrong.headers["content-type"]) == (400, PROBLEM)


def test_the_sandbox_checkout_page_pays_and_reactivates_before_it_answers(
    app: App, client: AsgiClient
) -> None:
    """The page shows the quote and a card form; a declined card credits nothing (402, the
    checkout stays payable); a good card answers once the payment and the reactivation are
    committed: a fresh unit of work sees the service active."""
    customer, service, checkout = deactivated_checkout(app)
    path = f"/sandbox/checkout/{checkout.external_id}"
    page = client.get(path)
    assert page.status_code == 200
    assert "Pay $20.00" in page.text
    assert "Home 30 2026-01-01..2026-01-31" in page.text
    assert 'name="card_number"' in page.text
    declined = client.post(path, data={"card_number": "4000 0000 0000 0002"})
    assert declined.status_code == 402
    assert "declined" in declined.text
    assert wallet(app, customer) == 10_00
    paid = client.post(path, data={"card_number": "4242 4242 4242 4242"})
    assert paid.status_code == 200
    assert "Payment received" in paid.text
    assert state(app, service) == ("active", None)  # committed when the response came back
    assert wallet(app, customer) == 0
    with app.uow() as uow:
        [row] = uow.session.scalars(select(CheckoutRow))
        assert row.status == "completed"
    assert "Already paid" in client.get(path).text
    assert client.post(path, data={"card_number": "4242 4242 4242 4242"}).status_code == 200
    assert counts(app)["payments"] == 1


def test_the_sandbox_pages_do_not_exist_without_a_sandbox(
    database_url: str, clock: FixedClock
) -> None:
    application = bootstrap(settings=Settings(database_url=database_url), clock=clock)
    try:
        assert "sandbox" not in application.gateways
        bare = AsgiClient(application)
        answer = bare.get("/sandbox/checkout/sbx_cs_anything")
        assert (answer.status_code, answer.headers["content-type"]) == (404, PROBLEM)
        assert bare.post("/api/v1/webhooks/sandbox", content=b"{}").status_code == 404
    finally:
        application.close()


def test_an_unknown_sandbox_checkout_is_a_404(client: AsgiClient) -> None:
    assert client.get("/sandbox/checkout/sbx_cs_nope").status_code == 404

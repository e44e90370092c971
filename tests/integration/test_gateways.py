"""Gateway payments on both databases: the pay-N-months quote, checkouts, and webhooks from the
sandbox and from Stripe (payloads signed locally with a test secret) delivered once, three
times, tampered, signed with another secret, stale, and out of order.

Stripe's API is unreachable here: the official library runs on a fake HTTP client, so what is
proven is the request the library builds and how ispbill reads the answers and the webhooks,
not Stripe's behaviour. After every test on every database the books are checked.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime, timedelta
from fractions import Fraction
from typing import Any

import pytest
from payments_support import (
    BASE_URL,
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

from ispbill.adapters.db.models import CheckoutRow, Payment, WebhookEventRow
from ispbill.adapters.payments.gateway import (
    ChargeStatus,
    GatewayEventType,
    GatewayUnavailable,
    TopUpRequest,
    WebhookRefused,
)
from ispbill.adapters.payments.sandbox import SandboxGateway
from ispbill.adapters.payments.stripe_gateway import StripeGateway
from ispbill.bootstrap import App
from ispbill.clock import FixedClock
from ispbill.domain.errors import ValidationError
from ispbill.domain.money import Money
from ispbill.use_cases.payments import checkouts as gateways
from scenarios.helpers import charges, check_books, state, tick, wallet

T0 = datetime(2026, 1, 1, 9, 0, tzinfo=UTC)
JAN15 = datetime(2026, 1, 15, 9, 0, tzinfo=UTC)


@pytest.fixture
def stripe_http() -> FakeStripeHTTP:
    return FakeStripeHTTP()


@pytest.fixture
def app(database_url: str, clock: FixedClock, stripe_http: FakeStripeHTTP) -> Iterator[App]:
    """Both gateways configured; after every scenario, on every database, the books balance."""
    application = make_app(database_url, clock, stripe_http)
    try:
        yield application
        check_books(application)
    finally:
        application.close()


def start(
    app: App, customer: int, months: int, gateway: str = "sandbox"
) -> gateways.StartedCheckout:
    with app.uow() as uow:
        return gateways.start_checkout(
            uow,
            gateways=app.gateways,
            gateway=gateway,
            customer_id=customer,
            months=months,
            now=app.clock.now(),
            actor="test",
            return_url=f"{BASE_URL}/done",
        )


def deliver(
    app: App, gateway: str, payload: bytes, headers: dict[str, str]
) -> gateways.WebhookResult:
    with app.uow() as uow:
        return gateways.handle_webhook(
            uow,
            gateways=app.gateways,
            gateway=gateway,
            payload=payload,
            headers=headers,
            now=app.clock.now(),
        )


def quote(app: App, customer: int, months: int) -> list[tuple[str, int]]:
    with app.uow() as uow:
        found = gateways.pay_months_quote(
            uow, customer_id=customer, months=months, now=app.clock.now()
        )
    return [(line.label, line.amount.minor) for line in found.lines] + [
        ("total", found.total.minor)
    ]


def deactivated_dora(app: App) -> tuple[int, int]:
    """Dora: 10.00 in the wallet, a 30.00 monthly service from January 1: deactivated at once."""
    dora, service = setup_prepaid(app, T0)
    tick(app, T0)
    assert state(app, service) == ("deactivated", "insufficient_funds")
    return dora, service


def payments(app: App) -> list[tuple[str, int, str | None]]:
    with app.uow() as uow:
        rows = uow.session.scalars(select(Payment).where(Payment.method == "gateway"))
        return [(p.method, p.amount_minor, p.reference) for p in rows]


# --- the pay-N-months quote --------------------------------------------------------------------


def test_quote_continues_from_each_billing_position_less_the_credit(
    app: App, clock: FixedClock
) -> None:
    """January is paid (100.00 - 30.00); three more months are February to April, less the
    70.00 credit, plus the 5.00 minimum balance the wallet must keep."""
    dora, _ = setup_prepaid(app, T0, funds="100.00", minimum_balance="5.00")
    tick(app, T0)
    assert quote(app, dora, 3) == [
        ("Home 30 2026-02-01..2026-02-28", 30_00),
        ("Home 30 2026-03-01..2026-03-31", 30_00),
        ("Home 30 2026-04-01..2026-04-30", 30_00),
        ("minimum balance kept in the wallet", 5_00),
        ("wallet credit", -70_00),
        ("total", 25_00),
    ]
    assert quote(app, dora, 2)[-1] == ("total", 0)  # covered already: never below zero


def test_quote_for_a_deactivated_service_covers_a_whole_period_and_paying_it_reactivates(
    app: App, clock: FixedClock
) -> None:
    """On the customer's calendar-month cycle, a service deactivated on January 15 comes back
    for the prorated rest of January (17/31 of 30.00 = 16.45), but only once a whole period is
    in the wallet (CRM.COM: "sufficient funds ... to cover the upcoming period"), so the quote
    adds the 13.55 difference, which stays as credit."""
    clock.set(JAN15)
    dora, service = setup_prepaid(app, JAN15, cycle="customer", active_from=date(2026, 1, 15))
    tick(app, JAN15)
    assert state(app, service) == ("deactivated", "insufficient_funds")
    assert quote(app, dora, 1) == [
        ("Home 30 2026-01-15..2026-01-31", 16_45),
        ("Home 30: a whole period must be in the wallet to reactivate", 13_55),
        ("wallet credit", -10_00),
        ("total", 20_00),
    ]
    assert quote(app, dora, 2) == [
        ("Home 30 2026-01-15..2026-01-31", 16_45),
        ("Home 30 2026-02-01..2026-02-28", 30_00),
        ("wallet credit", -10_00),
        ("total", 36_45),
    ]
    started = start(app, dora, 1)
    paid = gateways.sandbox_pay(
        app.uow,
        gateways=app.gateways,
        checkout_id=started.checkout.external_id or "",
        card_number="4242 4242 4242 4242",
        now=JAN15,
    )
    assert paid.paid
    assert state(app, service) == ("active", None)
    [reactivation] = charges(app, dora)
    assert (reactivation.kind, reactivation.start, reactivation.quantity, reactivation.gross) == (
        "reactivation",
        date(2026, 1, 15),
        Fraction(17, 31),
        16_45,
    )
    assert wallet(app, dora) == 13_55


def test_quote_refuses_a_silly_number_of_months_and_nothing_to_pay_opens_no_checkout(
    app: App,
) -> None:
    dora, _ = setup_prepaid(app, T0, funds="100.00")
    tick(app, T0)
    with pytest.raises(ValidationError) as caught:
        quote(app, dora, 0)
    assert caught.value.field == "months"
    before = counts(app)
    with pytest.raises(ValidationError, match="nothing to pay") as refused:
        start(app, dora, 1)  # February is covered by the 70.00 credit
    assert refused.value.field == "months"
    assert counts(app) == before


# --- the sandbox ---------------------------------------------------------------------------


def test_the_same_sandbox_webhook_delivered_three_times_credits_once(app: App) -> None:
    dora, service = deactivated_dora(app)
    started = start(app, dora, 1)
    assert started.url == f"{BASE_URL}/sandbox/checkout/{started.checkout.external_id}"
    assert started.checkout.amount_minor == 20_00
    delivery = sandbox(app).event(
        GatewayEventType.PAYMENT_SUCCEEDED,
        amount=Money(20_00, "USD"),
        customer_id=dora,
        reference=started.checkout.reference,
        checkout_id=started.checkout.external_id,
    )
    results = [deliver(app, "sandbox", delivery.payload, delivery.headers) for _ in range(3)]
    assert [(r.outcome, r.duplicate) for r in results] == [
        ("credited", False),
        ("credited", True),
        ("credited", True),
    ]
    assert payments(app) == [("gateway", 20_00, f"sandbox:{started.checkout.external_id}")]
    assert state(app, service) == ("active", None)
    assert wallet(app, dora) == 0  # 10.00 + 20.00 - 30.00 for the period from today
    assert counts(app)["webhook_events"] == 1


def _sandbox_refusals(app: App, dora: int, reference: str, checkout_id: str) -> list[Any]:
    box = sandbox(app)
    good = box.event(
        GatewayEventType.PAYMENT_SUCCEEDED,
        amount=Money(20_00, "USD"),
        customer_id=dora,
        reference=reference,
        checkout_id=checkout_id,
    )
    other = SandboxGateway(
        secret="another-secret-entirely-0123456789", clock=app.clock, base_url=""
    )
    now = int(app.clock.now().timestamp())
    return [
        (
            "tampered body",
            good.payload.replace(b'"amount_minor":2000', b'"amount_minor":200000'),
            good.headers,
        ),
        ("another secret", good.payload, {"Ispbill-Signature": other.sign(good.payload)}),
        ("stale", good.payload, {"Ispbill-Signature": box.sign(good.payload, now - 301)}),
        ("from the future", good.payload, {"Ispbill-Signature": box.sign(good.payload, now + 301)}),
        ("no signature", good.payload, {}),
        ("malformed", good.payload, {"Ispbill-Signature": "t=yesterday,v1=00"}),
    ]


def test_refused_sandbox_webhooks_change_nothing(app: App) -> None:
    dora, service = deactivated_dora(app)
    started = start(app, dora, 1)
    before = counts(app)
    cases = _sandbox_refusals(
        app, dora, started.checkout.reference, started.checkout.external_id or ""
    )
    for name, payload, headers in cases:
        with pytest.raises(WebhookRefused) as refused:
            deliver(app, "sandbox", payload, headers)
        assert refused.value.field == "signature", name
    assert counts(app) == before
    assert wallet(app, dora) == 10_00
    assert state(app, service) == ("deactivated", "insufficient_funds")


def test_pay_months_through_the_sandbox_checkout_declined_then_paid(app: App) -> None:
    """A declined card credits nothing and leaves the checkout open to another card; a good
    card pays it and the service is active when ``sandbox_pay`` returns; paying again does
    nothing."""
    dora, service = deactivated_dora(app)
    started = start(app, dora, 1)
    checkout_id = started.checkout.external_id or ""

    def pay(card: str) -> gateways.SandboxPayment:
        return gateways.sandbox_pay(
            app.uow, gateways=app.gateways, checkout_id=checkout_id, card_number=card, now=T0
        )

    declined = pay("4000 0000 0000 0002")
    assert (declined.paid, declined.checkout.status) == (False, "failed")
    assert "declined" in declined.message
    assert payments(app) == []
    assert state(app, service) == ("deactivated", "insufficient_funds")
    paid = pay("4242424242424242")
    assert (paid.paid, paid.checkout.status) == (True, "completed")
    assert state(app, service) == ("active", None)
    again = pay("4242424242424242")
    assert (again.paid, again.webhook) == (True, None)
    assert len(payments(app)) == 1


def test_an_unconfigured_gateway_is_refused_by_name(app: App) -> None:
    dora, _ = deactivated_dora(app)
    with pytest.raises(ValidationError) as caught:
        start(app, dora, 1, gateway="paypal")
    assert caught.value.field == "gateway"


# --- Stripe: the requests the official library builds -------------------------------------


def _session_answer(call: StripeCall) -> tuple[int, dict[str, Any]]:
    assert call.url.endswith("/v1/checkout/sessions")
    return 200, {
        "id": "cs_test_1",
        "object": "checkout.session",
        "url": "https://checkout.stripe.com/c/pay/cs_test_1",
    }


def test_a_stripe_checkout_session_is_built_with_ispbill_metadata(
    app: App, stripe_http: FakeStripeHTTP
) -> None:
    dora, _ = deactivated_dora(app)
    stripe_http.responder = _session_answer
    started = start(app, dora, 1, gateway="stripe")
    assert (started.checkout.external_id, started.url) == (
        "cs_test_1",
        "https://checkout.stripe.com/c/pay/cs_test_1",
    )
    [call] = stripe_http.calls
    reference = started.checkout.reference
    assert call.method == "post"
    assert call.headers["Authorization"] == "Bearer sk_test_ispbill"
    assert call.headers["Idempotency-Key"] == f"ispbill-checkout-{reference}"
    assert call.params == {
        "mode": "payment",
        "client_reference_id": reference,
        "line_items[0][quantity]": "1",
        "line_items[0][price_data][currency]": "usd",
        "line_items[0][price_data][unit_amount]": "2000",
        "line_items[0][price_data][product_data][name]": "Dora: 1 period(s) of service",
        "metadata[ispbill_reference]": reference,
        "metadata[customer_id]": str(dora),
        "metadata[purpose]": "pay_months",
        "payment_intent_data[metadata][ispbill_reference]": reference,
        "payment_intent_data[metadata][customer_id]": str(dora),
        "payment_intent_data[metadata][purpose]": "pay_months",
        "success_url": f"{BASE_URL}/done",
        "cancel_url": f"{BASE_URL}/done",
    }


def test_a_stripe_checkout_that_cannot_be_opened_is_kept_as_failed(
    app: App, stripe_http: FakeStripeHTTP
) -> None:
    dora, _ = deactivated_dora(app)
    stripe_http.responder = None  # the network is down
    with pytest.raises(ValidationError, match="did not open the checkout"):
        start(app, dora, 1, gateway="stripe")
    with app.uow() as uow:
        [row] = uow.session.scalars(select(CheckoutRow))
        assert (row.status, row.external_id) == ("failed", None)


def _intent_answer(status: int, body: dict[str, Any]) -> Any:
    def answer(call: StripeCall) -> tuple[int, dict[str, Any]]:
        assert call.url.endswith("/v1/payment_intents")
        return status, body

    return answer


@pytest.mark.parametrize(
    ("status", "body", "expected"),
    [
        (
            200,
            {"id": "pi_ok", "object": "payment_intent", "status": "succeeded"},
            (ChargeStatus.SUCCEEDED, "pi_ok", None),
        ),
        (
            200,
            {"id": "pi_slow", "object": "payment_intent", "status": "processing"},
            (ChargeStatus.PENDING, "pi_slow", None),
        ),
        (
            200,
            {"id": "pi_3ds", "object": "payment_intent", "status": "requires_action"},
            (ChargeStatus.FAILED, "pi_3ds", "payment intent is requires_action"),
        ),
        (
            402,
            {
                "error": {
                    "type": "card_error",
                    "code": "card_declined",
                    "message": "Your card was declined.",
                    "payment_intent": {
                        "id": "pi_no",
                        "object": "payment_intent",
                        "status": "requires_payment_method",
                    },
                }
            },
            (ChargeStatus.FAILED, "pi_no", "Your card was declined."),
        ),
    ],
    ids=["succeeded", "processing", "needs-authentication", "declined"],
)
def test_a_stripe_top_up_confirms_a_payment_intent_off_session(
    status: int, body: dict[str, Any], expected: tuple[ChargeStatus, str, str | None]
) -> None:
    http = FakeStripeHTTP(_intent_answer(status, body))
    gateway = StripeGateway(
        api_key="sk_test_ispbill",
        webhook_secret="whsec_x",
        clock=FixedClock(T0),
        http_client=http,
        max_network_retries=0,
    )
    result = gateway.charge_saved_method(
        TopUpRequest(
            reference="tu_1",
            customer_id=7,
            amount=Money(50_00, "USD"),
            method_reference="pm_card_visa",
            gateway_customer_reference="cus_42",
        )
    )
    assert (result.status, result.charge_id, result.error) == expected
    [call] = http.calls
    assert call.headers["Idempotency-Key"] == "ispbill-topup-tu_1"
    assert call.params == {
        "amount": "5000",
        "currency": "usd",
        "payment_method": "pm_card_visa",
        "customer": "cus_42",
        "off_session": "true",
        "confirm": "true",
        "metadata[ispbill_reference]": "tu_1",
        "metadata[customer_id]": "7",
        "metadata[purpose]": "top_up",
        "description": "ispbill automatic top-up",
    }


def test_an_unreachable_stripe_leaves_the_top_up_outcome_unknown() -> None:
    gateway = StripeGateway(
        api_key="sk_test_ispbill",
        webhook_secret="whsec_x",
        clock=FixedClock(T0),
        http_client=FakeStripeHTTP(None),
        max_network_retries=0,
    )
    request = TopUpRequest("tu_1", 7, Money(50_00, "USD"), "pm_card_visa")
    with pytest.raises(GatewayUnavailable):
        gateway.charge_saved_method(request)


# --- Stripe: webhooks signed locally with the test secret -----------------------------------


def _stripe_checkout(app: App, stripe_http: FakeStripeHTTP) -> tuple[int, int, str]:
    dora, service = deactivated_dora(app)
    stripe_http.responder = _session_answer
    started = start(app, dora, 1, gateway="stripe")
    return dora, service, started.checkout.reference


def _metadata(reference: str, customer: int) -> dict[str, str]:
    return {"ispbill_reference": reference, "customer_id": str(customer), "purpose": "pay_months"}


def session_completed(reference: str, customer: int, event_id: str = "evt_session") -> bytes:
    return stripe_event(
        event_id,
        "checkout.session.completed",
        {
            "id": "cs_test_1",
            "object": "checkout.session",
            "amount_total": 2000,
            "currency": "usd",
            "payment_status": "paid",
            "payment_intent": "pi_1",
            "client_reference_id": reference,
            "metadata": _metadata(reference, customer),
        },
        T0,
    )


def intent_event(reference: str, customer: int, kind: str, event_id: str) -> bytes:
    obj: dict[str, Any] = {
        "id": "pi_1",
        "object": "payment_intent",
        "amount": 2000,
        "amount_received": 2000 if kind.endswith("succeeded") else 0,
        "currency": "usd",
        "metadata": _metadata(reference, customer),
    }
    if kind.endswith("payment_failed"):
        obj["last_payment_error"] = {"message": "Your card was declined."}
    return stripe_event(event_id, kind, obj, T0)


def test_stripe_webhooks_credit_one_checkout_once_whatever_reports_it(
    app: App, stripe_http: FakeStripeHTTP
) -> None:
    """The session event credits; its replay does nothing; the PaymentIntent's own event for
    the same payment finds the same checkout and credits nothing more."""
    dora, service, reference = _stripe_checkout(app, stripe_http)
    completed = session_completed(reference, dora)
    intent = intent_event(reference, dora, "payment_intent.succeeded", "evt_intent")
    results = [
        deliver(app, "stripe", completed, stripe_signed(completed, at=T0)),
        deliver(app, "stripe", completed, stripe_signed(completed, at=T0 + timedelta(seconds=60))),
        deliver(app, "stripe", intent, stripe_signed(intent, at=T0)),
    ]
    assert [(r.event_id, r.outcome, r.duplicate) for r in results] == [
        ("evt_session", "credited", False),
        ("evt_session", "credited", True),
        ("evt_intent", "already_credited", False),
    ]
    assert payments(app) == [("gateway", 20_00, "stripe:cs_test_1")]
    assert state(app, service) == ("active", None)
    with app.uow() as uow:
        [checkout] = uow.session.scalars(select(CheckoutRow))
        assert checkout.status == "completed"
        stored = [(e.event_id, e.outcome) for e in uow.session.scalars(select(WebhookEventRow))]
    assert stored == [("evt_session", "credited"), ("evt_intent", "already_credited")]


def test_tampered_wrongly_signed_and_stale_stripe_webhooks_change_nothing(
    app: App, stripe_http: FakeStripeHTTP
) -> None:
    dora, service, reference = _stripe_checkout(app, stripe_http)
    completed = session_completed(reference, dora)
    signed = stripe_signed(completed, at=T0)
    before = counts(app)
    cases = [
        ("tampered", completed.replace(b'"amount_total": 2000', b'"amount_total": 200000'), signed),
        ("another secret", completed, stripe_signed(completed, at=T0, secret="whsec_other")),
        ("stale", completed, stripe_signed(completed, at=T0 - timedelta(seconds=301))),
        ("no signature", completed, {}),
    ]
    for name, payload, headers in cases:
        assert payload != completed or name != "tampered"
        with pytest.raises(WebhookRefused):
            deliver(app, "stripe", payload, headers)
    assert counts(app) == before
    assert state(app, service) == ("deactivated", "insufficient_funds")


def test_stripe_events_out_of_order(app: App, stripe_http: FakeStripeHTTP) -> None:
    """A failure reported after the success changes nothing; a success after a failure still
    credits (the customer may have paid with another card on the same page)."""
    dora, service, reference = _stripe_checkout(app, stripe_http)
    failed = intent_event(reference, dora, "payment_intent.payment_failed", "evt_failed")
    completed = session_completed(reference, dora)
    late_failure = intent_event(reference, dora, "payment_intent.payment_failed", "evt_late")
    outcomes = [
        deliver(app, "stripe", payload, stripe_signed(payload, at=T0)).outcome
        for payload in (failed, completed, late_failure)
    ]
    assert outcomes == ["payment_failed", "credited", "ignored_after_success"]
    assert payments(app) == [("gateway", 20_00, "stripe:cs_test_1")]
    assert wallet(app, dora) == 0
    assert state(app, service) == ("active", None)
    with app.uow() as uow:
        [checkout] = uow.session.scalars(select(CheckoutRow))
        assert (checkout.status, checkout.error) == ("completed", None)


def test_stripe_events_ispbill_does_not_act_on_are_recorded_once(
    app: App, stripe_http: FakeStripeHTTP
) -> None:
    dora, _, reference = _stripe_checkout(app, stripe_http)
    other = stripe_event("evt_other", "customer.created", {"id": "cus_1", "object": "customer"}, T0)
    unpaid = stripe_event(
        "evt_unpaid",
        "checkout.session.completed",
        {
            "id": "cs_test_1",
            "object": "checkout.session",
            "payment_status": "unpaid",
            "amount_total": 2000,
            "currency": "usd",
            "metadata": _metadata(reference, dora),
        },
        T0,
    )
    stranger = stripe_event(
        "evt_stranger",
        "payment_intent.succeeded",
        {
            "id": "pi_9",
            "object": "payment_intent",
            "amount_received": 999,
            "currency": "usd",
            "metadata": {},
        },
        T0,
    )
    outcomes = [
        deliver(app, "stripe", p, stripe_signed(p, at=T0)).outcome
        for p in (other, unpaid, stranger)
    ]
    assert outcomes == ["ignored", "ignored", "unmatched"]
    assert payments(app) == []
    again = deliver(app, "stripe", other, stripe_signed(other, at=T0))
    assert (again.outcome, again.duplicate) == ("ignored", True)


# --- concurrency (PostgreSQL) -----------------------------------------------------------------


def _together(*calls: Callable[[], gateways.WebhookResult]) -> list[gateways.WebhookResult]:
    """Run the calls in threads released at the same instant; return their results."""
    barrier = threading.Barrier(len(calls))
    results: list[gateways.WebhookResult] = []
    failures: list[BaseException] = []

    def run(call: Callable[[], gateways.WebhookResult]) -> None:
        try:
            barrier.wait()
            results.append(call())
        except BaseException as exc:  # pragma: no cover - reported below
            failures.append(exc)

    threads = [threading.Thread(target=run, args=(call,)) for call in calls]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert failures == []
    return results


@pytest.mark.postgres_only
def test_the_same_webhook_delivered_concurrently_credits_once(app: App) -> None:
    dora, service = deactivated_dora(app)
    started = start(app, dora, 1)
    delivery = sandbox(app).event(
        GatewayEventType.PAYMENT_SUCCEEDED,
        amount=Money(20_00, "USD"),
        customer_id=dora,
        reference=started.checkout.reference,
        checkout_id=started.checkout.external_id,
    )

    def once() -> gateways.WebhookResult:
        return deliver(app, "sandbox", delivery.payload, delivery.headers)

    results = _together(once, once, once)
    assert sorted(r.duplicate for r in results) == [False, True, True]
    assert len(payments(app)) == 1
    assert state(app, service) == ("active", None)


@pytest.mark.postgres_only
def test_two_stripe_events_for_one_checkout_at_once_credit_once(
    app: App, stripe_http: FakeStripeHTTP
) -> None:
    dora, service, reference = _stripe_checkout(app, stripe_http)
    completed = session_completed(reference, dora)
    intent = intent_event(reference, dora, "payment_intent.succeeded", "evt_intent")
    results = _together(
        lambda: deliver(app, "stripe", completed, stripe_signed(completed, at=T0)),
        lambda: deliver(app, "stripe", intent, stripe_signed(intent, at=T0)),
    )
    assert sorted(r.outcome for r in results) == ["already_credited", "credited"]
    assert payments(app) == [("gateway", 20_00, "stripe:cs_test_1")]
    assert state(app, service) == ("active", None)

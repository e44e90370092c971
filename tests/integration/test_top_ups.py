"""Automatic top-up on both databases: a charge that takes the wallet under the threshold
requests exactly one top-up, however often the tick runs; a declined card is retried with
back-off on later ticks and given up after the bound with an event; a pending charge is
completed by the webhook; an unreachable gateway is asked again with the same reference.

The sandbox gateway decides deterministically: a saved method ending 0002 is declined, one
ending 3155 answers "pending". After every test the books are checked.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from payments_support import SANDBOX_SECRET, counts, make_app, sandbox, setup_prepaid
from sqlalchemy import select
from typer.testing import CliRunner

from ispbill.adapters.db.models import Payment
from ispbill.adapters.payments.gateway import (
    ChargeResult,
    GatewayEventType,
    GatewayUnavailable,
    PaymentGateway,
    TopUpRequest,
)
from ispbill.bootstrap import App
from ispbill.clock import FixedClock
from ispbill.domain.errors import Conflict, ValidationError
from ispbill.domain.money import Money
from ispbill.entrypoints.cli.main import app as cli
from ispbill.use_cases.billing import tick as billing
from ispbill.use_cases.catalog.name_lookups import customer_id_of
from ispbill.use_cases.payments import checkouts as gateways
from ispbill.use_cases.payments import top_ups
from scenarios.helpers import check_books, events, pay, state, wallet

T0 = datetime(2026, 1, 1, 9, 0, tzinfo=UTC)
HOUR = timedelta(hours=1)


@pytest.fixture
def app(database_url: str, clock: FixedClock) -> Iterator[App]:
    application = make_app(database_url, clock)
    try:
        yield application
        check_books(application)
    finally:
        application.close()


def run_tick(app: App, now: datetime) -> None:
    assert isinstance(app.clock, FixedClock)
    app.clock.set(now)
    billing.tick(app.uow, now=now, chunk_size=2, gateways=app.gateways)


def set_rule(app: App, customer: int, method: str, **extra: Any) -> None:
    spec = top_ups.TopUpRuleSpec(
        customer_id=customer, threshold="40.00", amount="50.00", method=method, **extra
    )
    with app.uow() as uow:
        top_ups.set_rule(uow, spec=spec, now=app.clock.now(), actor="test")


def attempts(app: App) -> list[tuple[int, str, str | None, datetime | None]]:
    with app.uow() as uow:
        return [(a.attempt_no, a.status, a.error, a.next_retry_at) for a in top_ups.attempts(uow)]


def top_up_events(app: App, customer: int) -> list[tuple[str, int, datetime]]:
    return [(e.kind, e.figures["attempt"], e.at) for e in events(app, customer, prefix="top_up.")]


def gateway_payments(app: App) -> list[int]:
    with app.uow() as uow:
        return [
            p.amount_minor
            for p in uow.session.scalars(select(Payment).where(Payment.method == "gateway"))
        ]


def tom(app: App, method: str) -> tuple[int, int]:
    """Tom: 65.00 in the wallet, a 30.00 monthly service from January 1, and a rule: under
    40.00, top up 50.00."""
    customer, service = setup_prepaid(app, T0, name="Tom", funds="65.00")
    set_rule(app, customer, method)
    return customer, service


def test_a_charge_crossing_the_threshold_tops_up_once_however_often_the_tick_runs(
    app: App,
) -> None:
    """January's 30.00 takes 65.00 to 35.00, under 40.00: one top-up of 50.00 (85.00). Ticks
    again the same day change nothing; February's charge leaves 55.00 (no crossing); March's
    leaves 25.00, a new crossing and a new top-up."""
    customer, service = tom(app, "pm_sandbox_4242")
    run_tick(app, T0)
    run_tick(app, T0)
    run_tick(app, T0 + HOUR)
    assert wallet(app, customer) == 85_00
    assert attempts(app) == [(1, "succeeded", None, None)]
    for day in (datetime(2026, 2, 1, 6, tzinfo=UTC), datetime(2026, 3, 1, 6, tzinfo=UTC)):
        run_tick(app, day)
        run_tick(app, day)
    assert wallet(app, customer) == 75_00  # 85 - 30 = 55; 55 - 30 = 25 + 50
    assert gateway_payments(app) == [50_00, 50_00]
    assert [a[:2] for a in attempts(app)] == [(1, "succeeded"), (1, "succeeded")]  # one per trigger
    assert [kind for kind, _, _ in top_up_events(app, customer)] == [
        "top_up.requested",
        "top_up.succeeded",
        "top_up.requested",
        "top_up.succeeded",
    ]
    assert state(app, service) == ("active", None)


def test_a_declined_card_is_retried_with_back_off_then_given_up_with_an_event(app: App) -> None:
    """Attempt 1 fails at 09:00 and is retried one hour later; attempt 2 fails at 10:00 and is
    retried four hours later; attempt 3 fails at 14:00: the bound is reached, ``top_up.failed``.
    Ticks in between, and later ones, request nothing."""
    customer, _ = tom(app, "pm_card_0002")
    declined = "card declined (sandbox method ending 0002)"
    run_tick(app, T0)
    assert attempts(app) == [(1, "failed", declined, T0 + HOUR)]
    run_tick(app, T0 + 30 * timedelta(minutes=1))  # too early: nothing
    assert len(attempts(app)) == 1
    run_tick(app, T0 + HOUR)
    run_tick(app, T0 + 3 * HOUR)  # too early for the second retry
    run_tick(app, T0 + 5 * HOUR)
    run_tick(app, T0 + 48 * HOUR)
    assert attempts(app) == [
        (1, "failed", declined, None),
        (2, "failed", declined, None),
        (3, "failed", declined, None),
    ]
    assert top_up_events(app, customer) == [
        ("top_up.requested", 1, T0),
        ("top_up.retry_scheduled", 1, T0),
        ("top_up.requested", 2, T0 + HOUR),
        ("top_up.retry_scheduled", 2, T0 + HOUR),
        ("top_up.requested", 3, T0 + 5 * HOUR),
        ("top_up.failed", 3, T0 + 5 * HOUR),
    ]
    [*_, gave_up] = events(app, customer, prefix="top_up.failed")
    assert gave_up.reason == declined
    assert gateway_payments(app) == []
    assert wallet(app, customer) == 35_00


def test_a_pending_top_up_is_completed_by_its_webhook_once(app: App) -> None:
    customer, _ = tom(app, "pm_sandbox_3155")
    run_tick(app, T0)
    with app.uow() as uow:
        [attempt] = top_ups.attempts(uow)
    assert (attempt.status, attempt.gateway_charge_id is not None) == ("pending", True)
    assert wallet(app, customer) == 35_00
    delivery = sandbox(app).event(
        GatewayEventType.PAYMENT_SUCCEEDED,
        amount=Money(50_00, "USD"),
        customer_id=customer,
        reference=attempt.reference,
        charge_id=attempt.gateway_charge_id,
    )
    outcomes = []
    for _ in range(3):
        with app.uow() as uow:
            result = gateways.handle_webhook(
                uow,
                gateways=app.gateways,
                gateway="sandbox",
                payload=delivery.payload,
                headers=delivery.headers,
                now=T0,
            )
        outcomes.append((result.outcome, result.duplicate))
    assert outcomes == [("credited", False), ("credited", True), ("credited", True)]
    run_tick(app, T0 + HOUR)
    assert attempts(app) == [(1, "succeeded", None, None)]
    assert gateway_payments(app) == [50_00]
    assert wallet(app, customer) == 85_00


def test_a_pending_top_up_that_fails_later_is_retried(app: App) -> None:
    customer, _ = tom(app, "pm_sandbox_3155")
    run_tick(app, T0)
    with app.uow() as uow:
        [attempt] = top_ups.attempts(uow)
    failure = sandbox(app).event(
        GatewayEventType.PAYMENT_FAILED,
        amount=Money(50_00, "USD"),
        customer_id=customer,
        reference=attempt.reference,
        charge_id=attempt.gateway_charge_id,
        error="insufficient funds",
    )
    with app.uow() as uow:
        result = gateways.handle_webhook(
            uow,
            gateways=app.gateways,
            gateway="sandbox",
            payload=failure.payload,
            headers=failure.headers,
            now=T0,
        )
    assert result.outcome == "retry_scheduled"
    assert attempts(app) == [(1, "failed", "insufficient funds", T0 + HOUR)]
    run_tick(app, T0 + HOUR)
    assert [a[:2] for a in attempts(app)] == [(1, "failed"), (2, "pending")]


def test_a_rule_armed_after_the_crossing_does_not_fire_on_it(app: App) -> None:
    customer, _ = setup_prepaid(app, T0, name="Tom", funds="65.00")
    run_tick(app, T0)  # 35.00 before any rule
    assert isinstance(app.clock, FixedClock)
    app.clock.set(T0 + HOUR)
    set_rule(app, customer, "pm_sandbox_4242")
    run_tick(app, T0 + 2 * HOUR)
    assert attempts(app) == []


def test_a_retry_is_cancelled_when_the_balance_recovered_or_the_rule_was_disabled(
    app: App,
) -> None:
    customer, _ = tom(app, "pm_card_0002")
    run_tick(app, T0)
    pay(app, T0 + HOUR / 2, customer, "20.00", "cash-1")  # 55.00: above the threshold
    run_tick(app, T0 + HOUR)
    assert attempts(app) == [(1, "failed", "card declined (sandbox method ending 0002)", None)]
    assert [kind for kind, _, _ in top_up_events(app, customer)][-1] == "top_up.cancelled"


def test_disabled_rules_and_unconfigured_gateways_request_nothing(app: App) -> None:
    customer, _ = tom(app, "pm_sandbox_4242")
    with app.uow() as uow:
        top_ups.disable_rule(uow, customer_id=customer, now=T0, actor="test")
    run_tick(app, T0)
    assert attempts(app) == []
    set_rule(app, customer, "pm_1", gateway="stripe")
    without_stripe = {"sandbox": app.gateways["sandbox"]}
    billing.tick(app.uow, now=T0 + HOUR, chunk_size=2, gateways=without_stripe)
    assert attempts(app) == []


class Unreachable:
    """The sandbox behind a network that fails the first time."""

    name = "sandbox"

    def __init__(self, inner: PaymentGateway) -> None:
        self.inner = inner
        self.requests: list[TopUpRequest] = []

    def create_checkout(self, request: Any) -> Any:
        return self.inner.create_checkout(request)

    def parse_webhook(self, payload: bytes, headers: Any) -> Any:
        return self.inner.parse_webhook(payload, headers)

    def charge_saved_method(self, request: TopUpRequest) -> ChargeResult:
        self.requests.append(request)
        if len(self.requests) == 1:
            raise GatewayUnavailable("connection reset")
        return self.inner.charge_saved_method(request)


def test_an_unreachable_gateway_is_asked_again_with_the_same_reference(app: App) -> None:
    customer, _ = tom(app, "pm_sandbox_4242")
    flaky = Unreachable(app.gateways["sandbox"])
    app.gateways["sandbox"] = flaky
    run_tick(app, T0)
    assert attempts(app) == [(1, "requested", "gateway unreachable: connection reset", None)]
    run_tick(app, T0 + HOUR)
    assert attempts(app) == [(1, "succeeded", None, None)]
    assert len(flaky.requests) == 2
    assert len({r.reference for r in flaky.requests}) == 1
    assert gateway_payments(app) == [50_00]
    assert wallet(app, customer) == 85_00


@pytest.mark.postgres_only
def test_concurrent_ticks_request_one_top_up(app: App) -> None:
    """Two top-up runs at the same instant on PostgreSQL: the customer's row lock and the
    unique (trigger, attempt) make one request and one payment."""
    customer, _ = tom(app, "pm_sandbox_4242")
    billing.tick(app.uow, now=T0, chunk_size=2)  # the charge, without top-ups
    barrier = threading.Barrier(2)
    failures: list[BaseException] = []

    def run() -> None:
        try:
            barrier.wait()
            top_ups.request_due_top_ups(app.uow, now=T0, gateways=app.gateways)
        except BaseException as exc:  # pragma: no cover - reported below
            failures.append(exc)

    threads = [threading.Thread(target=run) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert failures == []
    assert [a[:2] for a in attempts(app)] == [(1, "succeeded")]
    assert gateway_payments(app) == [50_00]
    assert wallet(app, customer) == 85_00


# --- rules --------------------------------------------------------------------------------


def test_rules_one_per_wallet_replaced_listed_disabled_and_deleted(app: App) -> None:
    customer, _ = setup_prepaid(app, T0, name="Tom", funds="65.00")
    set_rule(app, customer, "pm_a")
    set_rule(app, customer, "pm_b", gateway="stripe", gateway_customer="cus_1")
    with app.uow() as uow:
        [view] = top_ups.list_rules(uow)
    assert (view.customer, view.rule.method_reference, view.rule.gateway) == (
        "Tom",
        "pm_b",
        "stripe",
    )
    assert (view.rule.gateway_customer_reference, view.balance) == ("cus_1", Money(65_00, "USD"))
    with app.uow() as uow:
        top_ups.delete_rule(uow, customer_id=customer_id_of(uow, "Tom"), now=T0, actor="test")
    with app.uow() as uow:
        assert top_ups.list_rules(uow) == []


def test_rules_refuse_bad_input_and_a_rule_with_history_is_not_deleted(app: App) -> None:
    customer, _ = tom(app, "pm_card_0002")
    for extra, field in (
        ({"gateway": "paypal"}, "gateway"),
        ({"amount": "0"}, "amount"),
        ({"threshold": "ten"}, "threshold"),
        ({"method": " "}, "method"),
    ):
        spec = top_ups.TopUpRuleSpec(
            **({"customer_id": customer, "threshold": "40", "amount": "50", "method": "pm"} | extra)
        )
        before = counts(app)
        with pytest.raises(ValidationError) as caught, app.uow() as uow:
            top_ups.set_rule(uow, spec=spec, now=T0, actor="test")
        assert caught.value.field == field
        assert counts(app) == before
    run_tick(app, T0)
    with pytest.raises(Conflict), app.uow() as uow:
        top_ups.delete_rule(uow, customer_id=customer, now=T0, actor="test")


def test_the_cli_sets_and_lists_rules_and_opens_a_checkout(
    app: App, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    customer, service = setup_prepaid(app, T0, name="Tom", funds="10.00")
    run_tick(app, T0)
    assert state(app, service) == ("deactivated", "insufficient_funds")
    monkeypatch.setenv("ISPBILL_SANDBOX_SECRET", SANDBOX_SECRET)
    monkeypatch.setenv("ISPBILL_PUBLIC_BASE_URL", "http://billing.example")
    runner = CliRunner()
    base = ["--database-url", database_url, "--now", "2026-01-01T09:00:00Z"]

    def ok(*args: str) -> str:
        result = runner.invoke(cli, [*base, *args])
        assert result.exit_code == 0, (args, result.output)
        return result.stdout

    said = ok("topups", "set", "Tom", "--threshold", "10", "--amount", "30", "--method", "pm_x")
    assert "under 10.00 USD charge 30.00 USD to pm_x via sandbox" in said
    [row] = json.loads(ok("topups", "list", "--json"))
    assert (row["customer"], row["threshold"], row["balance"]) == ("Tom", "10.00 USD", "10.00 USD")
    [opened] = json.loads(ok("checkout", "Tom", "--months", "1", "--json"))
    assert opened["url"].startswith("http://billing.example/sandbox/checkout/sbx_cs_")
    assert opened["quote"][-1] == {"line": "to pay now", "amount": "20.00 USD"}
    refused = runner.invoke(cli, [*base, "checkout", "Tom", "--months", "1", "--gateway", "stripe"])
    assert refused.exit_code == 2
    assert "gateway: 'stripe' is not configured" in refused.stderr
    del customer

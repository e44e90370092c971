"""Payments through a gateway: the pay-N-months quote, opening a checkout, and the webhook.

``handle_webhook`` is the one door through which a gateway's word changes anything:

1. the adapter verifies the signature (and the timestamp, against the injected clock); a
   refused delivery raises ``WebhookRefused`` before a single row is read or written, and so
   does a signed event whose fields are out of bounds (``ValidationError``: the adapter
   checks types and ranges before anything uses them);
2. the event is stored once per (gateway, event id): a replayed delivery finds its row and
   returns the first outcome, changing nothing;
3. the event is matched to ispbill's checkout or top-up attempt by ispbill's reference (sent as
   metadata) or the gateway's checkout or charge id; a success credits a ``gateway`` payment
   keyed by the gateway's checkout (or charge) id, so the two events Stripe sends for one
   checkout credit it once; ``record_payment`` re-evaluates the customer in the same
   transaction, so a deactivated prepaid service comes back when the request returns;
4. events out of order are harmless: a failure after a success changes nothing, a success after
   a failure still credits.

All of it (the event row, the checkout's status, the payment, the reactivation) is one
transaction.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import or_, select
from sqlalchemy.exc import IntegrityError

from ispbill.adapters.db import event_log as events
from ispbill.adapters.db import settings_store
from ispbill.adapters.db.billing_snapshots import load_snapshots
from ispbill.adapters.db.lookups import by_id
from ispbill.adapters.db.models import CheckoutRow, Customer, TopUpAttempt, WebhookEventRow
from ispbill.adapters.db.unit_of_work import UnitOfWork
from ispbill.adapters.payments.gateway import (
    CheckoutRequest,
    GatewayEvent,
    GatewayEventType,
    GatewayUnavailable,
    PaymentGateway,
    PaymentPurpose,
)
from ispbill.adapters.payments.sandbox import SandboxGateway, card_outcome
from ispbill.domain.errors import IspbillError, NotFound, ValidationError
from ispbill.domain.money import Money
from ispbill.domain.payments import CheckoutStatus, TopUpStatus
from ispbill.domain.prepayment import Quote, QuoteLine, quote_periods
from ispbill.use_cases.payments import top_ups
from ispbill.use_cases.payments.gateway_credit import credit, lock

log = logging.getLogger(__name__)


def gateway_named(gateways: Mapping[str, PaymentGateway], name: str) -> PaymentGateway:
    found = gateways.get(name)
    if found is None:
        configured = ", ".join(sorted(gateways)) or "none"
        raise ValidationError(
            "gateway", f"{name!r} is not configured (configured: {configured}); see the settings"
        )
    return found


# -- pay N months -----------------------------------------------------------------------------


def pay_months_quote(uow: UnitOfWork, *, customer_id: int, months: int, now: datetime) -> Quote:
    """What the customer pays now for ``months`` periods of its live services (see
    ``domain/prepayment.py``): priced as the engine prices, less the wallet's credit."""
    row = by_id(uow.session, Customer, customer_id, field="customer")
    policy = settings_store.load(uow).billing_policy()
    [(snapshot, services)] = load_snapshots(uow.session, [row.id])
    return quote_periods(snapshot, services, periods=months, now=now, policy=policy)


@dataclass(frozen=True)
class StartedCheckout:
    checkout: CheckoutRow
    url: str
    quote: Quote | None


def start_checkout(
    uow: UnitOfWork,
    *,
    gateways: Mapping[str, PaymentGateway],
    gateway: str,
    customer_id: int,
    now: datetime,
    actor: str,
    months: int | None = None,
    amount: str | None = None,
    return_url: str = "",
    save_method: bool = False,
) -> StartedCheckout:
    """Open a hosted checkout for ``months`` periods (the quote) or a one-off ``amount``.

    The checkout row is committed before the gateway is asked (so its reference exists when
    the first event arrives) and updated with the gateway's id and URL after; the gateway is
    never called with a transaction open.
    """
    adapter = gateway_named(gateways, gateway)
    if (months is None) == (amount is None):
        raise ValidationError("months", "give either a number of months or an amount")
    uow.begin_write()
    row = by_id(uow.session, Customer, customer_id, field="customer")
    quote: Quote | None = None
    if months is not None:
        quote = pay_months_quote(uow, customer_id=row.id, months=months, now=now)
        if not quote.total.is_positive:
            raise ValidationError(
                "months", f"nothing to pay: the wallet already covers {months} period(s)"
            )
        total, purpose = quote.total, PaymentPurpose.PAY_MONTHS
        description = f"{row.name}: {months} period(s) of service"
    else:
        assert amount is not None
        total = Money.from_major(amount, row.currency, field="amount")
        if not total.is_positive:
            raise ValidationError("amount", "must be greater than zero")
        purpose, description = PaymentPurpose.TOP_UP, f"{row.name}: wallet top-up"
    checkout = CheckoutRow(
        reference=f"co_{uuid.uuid4().hex}",
        gateway=adapter.name,
        customer_id=row.id,
        amount_minor=total.minor,
        currency=total.currency,
        purpose=purpose.value,
        months=months,
        quote=[_line_json(line) for line in quote.lines] if quote else [],
        status=CheckoutStatus.CREATING.value,
        created_at=now,
        actor=actor,
    )
    uow.session.add(checkout)
    uow.commit()
    request = CheckoutRequest(
        reference=checkout.reference,
        customer_id=row.id,
        amount=total,
        purpose=purpose,
        description=description,
        success_url=return_url or "about:blank",
        cancel_url=return_url or "about:blank",
        save_method=save_method,
    )
    try:
        opened = adapter.create_checkout(request)
    except (GatewayUnavailable, IspbillError) as exc:
        uow.begin_write()
        checkout.status, checkout.error = CheckoutStatus.FAILED.value, str(exc)
        uow.commit()
        raise ValidationError(
            "gateway", f"{adapter.name} did not open the checkout: {exc}"
        ) from None
    uow.begin_write()
    checkout.external_id, checkout.url, checkout.status = (
        opened.id,
        opened.url,
        CheckoutStatus.OPEN.value,
    )
    events.record(
        uow,
        now=now,
        actor=actor,
        kind="checkout.opened",
        subject_type="checkout",
        subject_id=checkout.id,
        customer_id=row.id,
        reason=purpose.value,
        figures={"amount": str(total), "gateway": adapter.name, "months": months},
    )
    uow.commit()
    return StartedCheckout(checkout, opened.url, quote)


def _line_json(line: QuoteLine) -> dict[str, object]:
    return {
        "label": line.label,
        "amount": str(line.amount),
        "service_id": line.service_id,
        "start": line.period.start.isoformat() if line.period else None,
        "end": line.period.end.isoformat() if line.period else None,
    }


# -- webhooks ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class WebhookResult:
    event_id: str
    event_type: str
    outcome: str
    duplicate: bool
    payment_id: int | None = None
    customer_id: int | None = None


def handle_webhook(
    uow: UnitOfWork,
    *,
    gateways: Mapping[str, PaymentGateway],
    gateway: str,
    payload: bytes,
    headers: Mapping[str, str],
    now: datetime,
) -> WebhookResult:
    """Verify, store once, and act on one webhook delivery (see the module docstring)."""
    adapter = gateway_named(gateways, gateway)
    try:
        event = adapter.parse_webhook(payload, headers)
    except ValidationError as exc:  # the signature, or a signed event out of bounds
        log.warning("%s webhook refused, nothing recorded: %s", gateway, exc)
        raise
    uow.begin_write()
    session = uow.session
    seen = _seen(uow, adapter.name, event.id)
    if seen is not None:
        return _duplicate(seen)
    row = WebhookEventRow(
        gateway=adapter.name,
        event_id=event.id,
        event_type=event.source_type,
        occurred_at=event.created,
        received_at=now,
        outcome="received",
        detail="",
        external_id=event.checkout_id or event.charge_id,
    )
    try:
        with session.begin_nested():
            session.add(row)
            session.flush()
    except IntegrityError:  # the same event, delivered concurrently, committed first
        again = _seen(uow, adapter.name, event.id)
        if again is None:
            raise
        return _duplicate(again)
    actor = f"gateway:{adapter.name}"
    outcome, detail, customer_id, payment_id = _apply(uow, adapter.name, event, now, actor)
    row.outcome, row.detail = outcome, detail
    row.customer_id, row.payment_id, row.processed_at = customer_id, payment_id, now
    uow.commit()
    log.info("%s webhook %s (%s): %s", gateway, event.id, event.source_type, outcome)
    return WebhookResult(event.id, event.source_type, outcome, False, payment_id, customer_id)


def _seen(uow: UnitOfWork, gateway: str, event_id: str) -> WebhookEventRow | None:
    return uow.session.scalars(
        select(WebhookEventRow).where(
            WebhookEventRow.gateway == gateway, WebhookEventRow.event_id == event_id
        )
    ).one_or_none()


def _duplicate(row: WebhookEventRow) -> WebhookResult:
    return WebhookResult(
        row.event_id, row.event_type, row.outcome, True, row.payment_id, row.customer_id
    )


Applied = tuple[str, str, int | None, int | None]  # outcome, detail, customer, payment


def _apply(
    uow: UnitOfWork, gateway: str, event: GatewayEvent, now: datetime, actor: str
) -> Applied:
    if event.type is GatewayEventType.IGNORED:
        return "ignored", f"{event.source_type} needs no action", None, None
    checkout = _find_checkout(uow, gateway, event)
    if checkout is not None:
        return _apply_to_checkout(uow, gateway, checkout, event, now, actor)
    attempt = _find_attempt(uow, gateway, event)
    if attempt is not None:
        return _apply_to_attempt(uow, attempt, event, now, actor)
    detail = f"no checkout or top-up for reference {event.reference!r}"
    log.warning("%s webhook %s unmatched: %s", gateway, event.id, detail)
    return "unmatched", detail, event.customer_id, None


def _find_checkout(uow: UnitOfWork, gateway: str, event: GatewayEvent) -> CheckoutRow | None:
    matches = []
    if event.checkout_id:
        matches.append(CheckoutRow.external_id == event.checkout_id)
    if event.reference:
        matches.append(CheckoutRow.reference == event.reference)
    if not matches:
        return None
    return uow.session.scalars(
        select(CheckoutRow).where(CheckoutRow.gateway == gateway, or_(*matches))
    ).first()


def _find_attempt(uow: UnitOfWork, gateway: str, event: GatewayEvent) -> TopUpAttempt | None:
    matches = []
    if event.charge_id:
        matches.append(TopUpAttempt.gateway_charge_id == event.charge_id)
    if event.reference:
        matches.append(TopUpAttempt.reference == event.reference)
    if not matches:
        return None
    return uow.session.scalars(
        select(TopUpAttempt).where(TopUpAttempt.gateway == gateway, or_(*matches))
    ).first()


def _apply_to_checkout(
    uow: UnitOfWork,
    gateway: str,
    checkout: CheckoutRow,
    event: GatewayEvent,
    now: datetime,
    actor: str,
) -> Applied:
    lock(uow, checkout.customer_id)
    uow.session.refresh(checkout)  # its status as committed, now that the customer is locked
    customer_id = checkout.customer_id
    if event.type is GatewayEventType.PAYMENT_FAILED:
        if checkout.status == CheckoutStatus.COMPLETED.value:
            return (
                "ignored_after_success",
                "a failure reported after the payment",
                customer_id,
                None,
            )
        checkout.status, checkout.error = (
            CheckoutStatus.FAILED.value,
            event.error or "payment failed",
        )
        _checkout_event(uow, checkout, "checkout.payment_failed", now, actor, checkout.error)
        return "payment_failed", checkout.error, customer_id, None
    external_id = checkout.external_id or event.checkout_id
    if external_id is None:
        return "refused", "the checkout has no gateway id yet", customer_id, None
    amount = (
        event.amount
        if event.amount is not None
        else Money(checkout.amount_minor, checkout.currency)
    )
    try:
        with uow.session.begin_nested():
            recorded = credit(
                uow,
                gateway=gateway,
                external_id=external_id,
                customer_id=customer_id,
                amount=amount,
                received_at=event.created,
                now=now,
                actor=actor,
            )
    except IspbillError as exc:  # e.g. a currency the wallet is not in: kept, for an operator
        log.error("%s webhook %s: payment refused: %s", gateway, event.id, exc)
        return "refused", str(exc), customer_id, None
    if checkout.status != CheckoutStatus.COMPLETED.value:
        checkout.status, checkout.error = CheckoutStatus.COMPLETED.value, None
        checkout.payment_id, checkout.completed_at = recorded.payment.id, now
        _checkout_event(uow, checkout, "checkout.completed", now, actor, str(amount))
    outcome = "credited" if recorded.created else "already_credited"
    return outcome, str(amount), customer_id, recorded.payment.id


def _apply_to_attempt(
    uow: UnitOfWork, attempt: TopUpAttempt, event: GatewayEvent, now: datetime, actor: str
) -> Applied:
    lock(uow, attempt.customer_id)
    uow.session.refresh(attempt)
    customer_id = attempt.customer_id
    if event.type is GatewayEventType.PAYMENT_FAILED:
        if attempt.status == TopUpStatus.SUCCEEDED.value:
            return (
                "ignored_after_success",
                "a failure reported after the payment",
                customer_id,
                None,
            )
        if attempt.status == TopUpStatus.FAILED.value:
            return "already_failed", attempt.error or "", customer_id, None
        outcome = top_ups.fail(
            uow, attempt, error=event.error or "payment failed", now=now, actor=actor
        )
        return outcome, attempt.error or "", customer_id, None
    if attempt.gateway_charge_id is None:
        attempt.gateway_charge_id = event.charge_id
    try:
        with uow.session.begin_nested():
            created = top_ups.complete(
                uow, attempt, amount=event.amount, received_at=event.created, now=now, actor=actor
            )
    except IspbillError as exc:
        log.error("top-up %s: payment refused: %s", attempt.reference, exc)
        return "refused", str(exc), customer_id, None
    return ("credited" if created else "already_credited"), "", customer_id, attempt.payment_id


def _checkout_event(
    uow: UnitOfWork, checkout: CheckoutRow, kind: str, now: datetime, actor: str, reason: str
) -> None:
    events.record(
        uow,
        now=now,
        actor=actor,
        kind=kind,
        subject_type="checkout",
        subject_id=checkout.id,
        customer_id=checkout.customer_id,
        reason=reason,
        figures={
            "amount": str(Money(checkout.amount_minor, checkout.currency)),
            "purpose": checkout.purpose,
            "months": checkout.months,
            "gateway": checkout.gateway,
        },
    )


# -- the sandbox's hosted checkout -------------------------------------------------------------


@dataclass(frozen=True)
class SandboxPayment:
    checkout: CheckoutRow
    customer: str
    paid: bool
    message: str
    webhook: WebhookResult | None


def sandbox_checkout(uow: UnitOfWork, *, checkout_id: str) -> tuple[CheckoutRow, str]:
    """The sandbox checkout shown on the hosted page, and its customer's name."""
    row = uow.session.scalars(
        select(CheckoutRow).where(
            CheckoutRow.gateway == "sandbox", CheckoutRow.external_id == checkout_id
        )
    ).one_or_none()
    if row is None:
        raise NotFound("checkout", checkout_id)
    customer = uow.session.get(Customer, row.customer_id)
    assert customer is not None
    return row, customer.name


def sandbox_pay(
    uow_factory: Callable[[], UnitOfWork],
    *,
    gateways: Mapping[str, PaymentGateway],
    checkout_id: str,
    card_number: str,
    now: datetime,
) -> SandboxPayment:
    """The pretend processor charges the card typed on the hosted page, then delivers the signed
    webhook to ispbill's webhook handler, in process: the same verification path, the same
    store-once, the same transaction as a real gateway's delivery."""
    sandbox = gateway_named(gateways, "sandbox")
    assert isinstance(sandbox, SandboxGateway)
    with uow_factory() as uow:
        checkout, customer = sandbox_checkout(uow, checkout_id=checkout_id)
    if checkout.status == CheckoutStatus.COMPLETED.value:
        return SandboxPayment(checkout, customer, True, "this checkout is already paid", None)
    _, error = card_outcome(card_number)
    kind = GatewayEventType.PAYMENT_FAILED if error else GatewayEventType.PAYMENT_SUCCEEDED
    delivery = sandbox.event(
        kind,
        amount=Money(checkout.amount_minor, checkout.currency),
        customer_id=checkout.customer_id,
        reference=checkout.reference,
        checkout_id=checkout_id,
        error=error,
    )
    with uow_factory() as uow:
        result = handle_webhook(
            uow,
            gateways=gateways,
            gateway="sandbox",
            payload=delivery.payload,
            headers=delivery.headers,
            now=now,
        )
    with uow_factory() as uow:
        checkout, customer = sandbox_checkout(uow, checkout_id=checkout_id)
    paid = checkout.status == CheckoutStatus.COMPLETED.value
    message = "payment received" if paid else f"payment declined: {error or result.outcome}"
    return SandboxPayment(checkout, customer, paid, message, result)

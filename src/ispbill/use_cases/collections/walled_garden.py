"""The walled garden: signed links that match a suspended subscriber to its service, and what
the info page shows (reason, amount due, pay N months, promise to pay).

A link carries the service id and an expiry, signed with HMAC-SHA256 under
``ISPBILL_GARDEN_SECRET``; it is checked in constant time against the injected clock. The
RADIUS issue adds matching by the subscriber's address from accounting; the route asks one
function (``entrypoints/web/garden.match_subscriber``) for the service either way.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from datetime import datetime, timedelta
from urllib.parse import urlencode

from ispbill.adapters.db.models import Customer
from ispbill.adapters.db.unit_of_work import UnitOfWork
from ispbill.domain.errors import ValidationError
from ispbill.domain.lifecycle import ServiceState, SuspensionReason
from ispbill.domain.money import Money
from ispbill.use_cases.collections.info_pages import Page, get_page
from ispbill.use_cases.collections.suspensions import find_service
from ispbill.use_cases.service_lifecycle.explain import Explanation, explain_service

MAX_LINK_DAYS = 90


def _signature(secret: str, service_id: int, expires: int) -> str:
    message = f"garden:{service_id}:{expires}".encode()
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def signed_query(secret: str, service_id: int, expires_at: datetime) -> dict[str, str]:
    expires = int(expires_at.timestamp())
    return {"s": str(service_id), "e": str(expires), "sig": _signature(secret, service_id, expires)}


def garden_link(
    *, secret: str | None, base_url: str, service_id: int, now: datetime, days: int = 7
) -> str:
    if not secret:
        raise ValidationError("garden_secret", "set ISPBILL_GARDEN_SECRET to sign garden links")
    if not 1 <= days <= MAX_LINK_DAYS:
        raise ValidationError("days", f"must be between 1 and {MAX_LINK_DAYS}")
    query = signed_query(secret, service_id, now + timedelta(days=days))
    return f"{base_url.rstrip('/')}/garden?{urlencode(query)}"


def verify(
    secret: str | None, *, service: str, expires: str, signature: str, now: datetime
) -> int | None:
    """The service id of a valid, unexpired link; ``None`` for anything else."""
    if not secret or not (service.isascii() and service.isdigit()):
        return None
    if not (expires.isascii() and expires.isdigit()) or len(expires) > 12:
        return None
    service_id, expiry = int(service), int(expires)
    if expiry < now.timestamp():
        return None
    expected = _signature(secret, service_id, expiry)
    return service_id if hmac.compare_digest(expected, signature) else None


@dataclass(frozen=True)
class GardenView:
    service_id: int
    customer_id: int
    customer: str
    state: str
    reason: str | None
    page: Page | None
    explanation: Explanation
    amount_due: Money
    may_promise: bool


def garden_view(uow: UnitOfWork, *, service_id: int, now: datetime) -> GardenView:
    service = find_service(uow, service_id)
    customer = uow.session.get(Customer, service.customer_id)
    assert customer is not None
    explanation = explain_service(uow, service_id=service_id, now=now)
    overdue = Money.parse(explanation.facts["overdue_total"])
    suspended = service.state == ServiceState.SUSPENDED.value
    page = (
        get_page(uow, reason=service.state_reason or SuspensionReason.NOT_SET.value)
        if suspended
        else None
    )
    return GardenView(
        service_id=service.id,
        customer_id=customer.id,
        customer=customer.name,
        state=service.state,
        reason=service.state_reason,
        page=page,
        explanation=explanation,
        amount_due=overdue,
        may_promise=suspended and service.state_reason == SuspensionReason.NON_PAYER.value,
    )

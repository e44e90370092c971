"""Evaluating customers: their snapshots, loaded by the billing store, decided by the domain.

The one question the tick, a payment's immediate effect and the previews all ask
(``domain/billing.decide``).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.orm import Session

from ispbill.adapters.db.billing_snapshots import load_snapshots
from ispbill.domain.billing import (
    BillingPolicy,
    Outcome,
    decide,
)


def evaluate_customers(
    session: Session, customer_ids: list[int], *, now: datetime, policy: BillingPolicy
) -> list[Outcome]:
    """Load what the decisions need in a few queries, then ask the domain for each customer."""
    snapshots = load_snapshots(session, customer_ids)
    return [decide(customer, services, now=now, policy=policy) for customer, services in snapshots]

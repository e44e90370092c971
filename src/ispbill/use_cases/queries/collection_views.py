"""Read models of collections for the API: a service's suspensions and the collection policy
in force (the operator's, or a customer class's overrides on top of it)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

from ispbill.adapters.db.lookups import by_id
from ispbill.adapters.db.models import CustomerClass, ServiceSuspension
from ispbill.adapters.db.unit_of_work import UnitOfWork
from ispbill.use_cases.collections import collection_policy, suspensions


@dataclass(frozen=True)
class SuspensionView:
    id: int
    service_id: int
    reason: str
    suspend_invoicing: bool
    starts_on: date
    ends_on: date | None
    repeat_yearly: bool
    status: str
    actor: str
    lifted_by: str | None


@dataclass(frozen=True)
class PolicyView:
    customer_class: str | None  # None: the operator's own policy
    policy: dict[str, Any]  # in force: the operator's with the class's overrides on top
    overrides: dict[str, Any]  # what this level itself sets


def suspension_view(row: ServiceSuspension) -> SuspensionView:
    """A suspension as read (also one a use case has just written)."""
    return SuspensionView(
        id=row.id,
        service_id=row.service_id,
        reason=row.reason,
        suspend_invoicing=row.suspend_invoicing,
        starts_on=row.starts_on,
        ends_on=row.ends_on,
        repeat_yearly=row.repeat_yearly,
        status=row.status,
        actor=row.actor,
        lifted_by=row.lifted_by,
    )


def next_manual(uow: UnitOfWork, service_id: int) -> SuspensionView | None:
    """The service's manual suspension now in place or planned (a yearly window's next one)."""
    row = suspensions.current_manual(uow, service_id)
    return suspension_view(row) if row is not None else None


def policy_view(uow: UnitOfWork, customer_class_id: int | None) -> PolicyView:
    """The policy in force for the customer class, or the operator's (None)."""
    klass = (
        by_id(uow.session, CustomerClass, customer_class_id, field="customer_class")
        if customer_class_id is not None
        else None
    )
    merged = collection_policy.load(uow, klass=klass)
    own = (klass.collection_policy or {}) if klass else collection_policy.operator_document(uow)
    return PolicyView(
        customer_class=klass.name if klass else None,
        policy=merged.model_dump(mode="json"),
        overrides=dict(own),
    )

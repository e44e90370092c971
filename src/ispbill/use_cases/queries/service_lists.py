"""Read models of services for the API: the service list and one service, as its customer's
reader may see them (another reader's service is ``None``: "not found", never "forbidden")."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from ispbill.adapters.db.keyset import Slice, keyset_slice, mapped
from ispbill.adapters.db.models import Service
from ispbill.adapters.db.unit_of_work import UnitOfWork
from ispbill.use_cases.queries.customer_lists import visible_row
from ispbill.use_cases.queries.dashboard import Scope
from ispbill.use_cases.queries.operator_lists import scoped


@dataclass(frozen=True)
class ServiceView:
    id: int
    customer_id: int
    plan_id: int
    state: str
    active_from: date
    active_to: date | None
    period_months: int | None
    billed_until: date | None
    created_at: datetime


@dataclass(frozen=True)
class ServiceFilter:
    customer_id: int | None = None
    plan_id: int | None = None
    state: str | None = None


def service_view(row: Service) -> ServiceView:
    """A service as read (also one a use case has just written)."""
    return ServiceView(
        id=row.id,
        customer_id=row.customer_id,
        plan_id=row.plan_id,
        state=row.state,
        active_from=row.active_from,
        active_to=row.active_to,
        period_months=row.period_months,
        billed_until=row.billed_until,
        created_at=row.created_at,
    )


def visible_service_row(session: Session, scope: Scope, service_id: int) -> Service | None:
    """The service when it exists and its customer is the reader's."""
    row = session.get(Service, service_id)
    if row is None or visible_row(session, scope, row.customer_id) is None:
        return None
    return row


def find_service(uow: UnitOfWork, scope: Scope, service_id: int) -> ServiceView | None:
    row = visible_service_row(uow.session, scope, service_id)
    return service_view(row) if row is not None else None


def list_services(
    uow: UnitOfWork, scope: Scope, wanted: ServiceFilter, *, after: int | None, limit: int
) -> Slice[ServiceView]:
    """Services by id, of the reader's customers."""
    query = scoped(select(Service), Service.customer_id, scope)
    if wanted.customer_id is not None:
        query = query.where(Service.customer_id == wanted.customer_id)
    if wanted.plan_id is not None:
        query = query.where(Service.plan_id == wanted.plan_id)
    if wanted.state is not None:
        query = query.where(Service.state == wanted.state)
    found = keyset_slice(uow.session, query, Service.id, after=after, limit=limit)
    return mapped(found, lambda rows: [service_view(r) for r in rows])

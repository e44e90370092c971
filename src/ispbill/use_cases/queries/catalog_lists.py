"""Read models of the catalogue for the API: plans, resellers, customer classes and tax
profiles, listed by id (optionally by part of the name) and one at a time.

A reseller's reader sees only its own reseller record; the rest of the catalogue is everyone's.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

from sqlalchemy import select

from ispbill.adapters.db.keyset import Slice, keyset_slice, mapped
from ispbill.adapters.db.models import CustomerClass, Plan, Reseller, TaxProfileRow
from ispbill.adapters.db.unit_of_work import UnitOfWork
from ispbill.domain.money import Money
from ispbill.use_cases.queries.dashboard import Scope

V = TypeVar("V")


@dataclass(frozen=True)
class PlanView:
    id: int
    name: str
    price: Money
    cycle_kind: str
    cycle_n: int
    download_kbps: int
    upload_kbps: int
    active: bool
    created_at: datetime
    archived_at: datetime | None = None


@dataclass(frozen=True)
class PlanFilter:
    search: str | None = None
    currency: str | None = None
    active: bool | None = None
    archived: bool = False  # the archived plans instead of the others


@dataclass(frozen=True)
class ResellerView:
    id: int
    name: str
    created_at: datetime


@dataclass(frozen=True)
class ClassView:
    id: int
    name: str
    grace_days: int
    invoice_template: str
    tax_profile_id: int | None
    notification_emails: list[str]
    custom_fields: list[dict[str, Any]]
    created_at: datetime


@dataclass(frozen=True)
class TaxProfileView:
    id: int
    name: str
    rate_bp: int
    inclusive: bool


def plan_view(row: Plan) -> PlanView:
    return PlanView(
        id=row.id,
        name=row.name,
        price=Money(row.price_minor, row.currency),
        cycle_kind=row.cycle_kind,
        cycle_n=row.cycle_n,
        download_kbps=row.download_kbps,
        upload_kbps=row.upload_kbps,
        active=row.active,
        created_at=row.created_at,
        archived_at=row.archived_at,
    )


def reseller_view(row: Reseller) -> ResellerView:
    return ResellerView(id=row.id, name=row.name, created_at=row.created_at)


def class_view(row: CustomerClass) -> ClassView:
    return ClassView(
        id=row.id,
        name=row.name,
        grace_days=row.grace_days,
        invoice_template=row.invoice_template,
        tax_profile_id=row.tax_profile_id,
        notification_emails=list(row.notification_emails or []),
        custom_fields=list(row.custom_fields or []),
        created_at=row.created_at,
    )


def tax_profile_view(row: TaxProfileRow) -> TaxProfileView:
    return TaxProfileView(id=row.id, name=row.name, rate_bp=row.rate_bp, inclusive=row.inclusive)


def _by_name(model: Any, search: str | None) -> Any:
    query = select(model)
    if search:
        query = query.where(model.name.icontains(search, autoescape=True))
    return query


def _slice(
    uow: UnitOfWork, query: Any, model: Any, view: Callable[[Any], V], after: int | None, limit: int
) -> Slice[V]:
    found = keyset_slice(uow.session, query, model.id, after=after, limit=limit)
    return mapped(found, lambda rows: [view(r) for r in rows])


def list_plans(
    uow: UnitOfWork, wanted: PlanFilter, *, after: int | None, limit: int
) -> Slice[PlanView]:
    query = _by_name(Plan, wanted.search).where(
        Plan.archived_at.is_not(None) if wanted.archived else Plan.archived_at.is_(None)
    )
    if wanted.currency:
        query = query.where(Plan.currency == wanted.currency.upper())
    if wanted.active is not None:
        query = query.where(Plan.active == wanted.active)
    return _slice(uow, query, Plan, plan_view, after, limit)


def find_plan(uow: UnitOfWork, plan_id: int) -> PlanView | None:
    row = uow.session.get(Plan, plan_id)
    return plan_view(row) if row is not None else None


def list_resellers(
    uow: UnitOfWork, scope: Scope, search: str | None, *, after: int | None, limit: int
) -> Slice[ResellerView]:
    """Resellers by id; a reseller's reader only its own."""
    query = _by_name(Reseller, search)
    if scope.reseller_id is not None:
        query = query.where(Reseller.id == scope.reseller_id)
    return _slice(uow, query, Reseller, reseller_view, after, limit)


def find_reseller(uow: UnitOfWork, scope: Scope, reseller_id: int) -> ResellerView | None:
    row = uow.session.get(Reseller, reseller_id)
    if row is None or (scope.reseller_id is not None and row.id != scope.reseller_id):
        return None
    return reseller_view(row)


def list_classes(
    uow: UnitOfWork, search: str | None, *, after: int | None, limit: int
) -> Slice[ClassView]:
    return _slice(uow, _by_name(CustomerClass, search), CustomerClass, class_view, after, limit)


def find_class(uow: UnitOfWork, class_id: int) -> ClassView | None:
    row = uow.session.get(CustomerClass, class_id)
    return class_view(row) if row is not None else None


def list_tax_profiles(
    uow: UnitOfWork, search: str | None, *, after: int | None, limit: int
) -> Slice[TaxProfileView]:
    query = _by_name(TaxProfileRow, search)
    return _slice(uow, query, TaxProfileRow, tax_profile_view, after, limit)


def find_tax_profile(uow: UnitOfWork, tax_profile_id: int) -> TaxProfileView | None:
    row = uow.session.get(TaxProfileRow, tax_profile_id)
    return tax_profile_view(row) if row is not None else None

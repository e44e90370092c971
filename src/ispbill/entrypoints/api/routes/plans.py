"""``/api/v1/plans``: the catalogue of plans (admins add them; every role reads)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Request

from ispbill.adapters.db.lookups import MAX_ID
from ispbill.entrypoints.api.auth import Admin, Caller, not_found
from ispbill.entrypoints.api.deps import container
from ispbill.entrypoints.api.errors import call
from ispbill.entrypoints.api.pagination import Page, Paging, page_of
from ispbill.entrypoints.api.schemas import (
    TEXT,
    Amount,
    PlanIn,
    PlanOut,
    PlanPriceIn,
    PlanPriceOut,
)
from ispbill.use_cases.catalog import plan_prices
from ispbill.use_cases.catalog.name_lookups import tax_profile_id_of
from ispbill.use_cases.catalog.offerings import NewPlan, add_plan
from ispbill.use_cases.queries import catalog_lists
from ispbill.use_cases.queries.catalog_lists import PlanView, plan_view

router = APIRouter(prefix="/api/v1/plans", tags=["plans"])


def plan_out(plan: PlanView) -> PlanOut:
    return PlanOut(
        id=plan.id,
        name=plan.name,
        price=Amount.of(plan.price),
        cycle_kind=plan.cycle_kind,
        cycle_n=plan.cycle_n,
        download_kbps=plan.download_kbps,
        upload_kbps=plan.upload_kbps,
        active=plan.active,
        created_at=plan.created_at,
    )


@router.get("", response_model=Page[PlanOut])
async def list_plans(
    request: Request,
    _caller: Caller,
    paging: Paging,
    search: Annotated[str | None, Query(max_length=200, pattern=TEXT)] = None,
    currency: Annotated[str | None, Query(pattern=r"^[A-Za-z]{3}$")] = None,
    active: Annotated[bool | None, Query()] = None,
) -> Page[PlanOut]:
    """Plans by id; filter by part of the name, currency, or whether still sold."""
    app = container(request)

    def work() -> Page[PlanOut]:
        wanted = catalog_lists.PlanFilter(search or None, currency or None, active)
        with app.uow() as uow:
            found = catalog_lists.list_plans(uow, wanted, after=paging.after(), limit=paging.limit)
            return page_of(found, plan_out)

    return await call(work)


@router.post("", response_model=PlanOut, status_code=201)
async def create_plan(body: PlanIn, request: Request, caller: Admin) -> PlanOut:
    """A new plan (admin only)."""
    app = container(request)
    fields = {
        **body.model_dump(exclude={"tax_profile"}),
        "period_months": tuple(body.period_months),
    }

    def work() -> PlanOut:
        with app.uow() as uow:  # names are looked up here, at the edge
            tax_id = tax_profile_id_of(uow, body.tax_profile) if body.tax_profile else None
            spec = NewPlan(**fields, tax_profile_id=tax_id)
            plan = add_plan(uow, spec=spec, now=app.clock.now(), actor=caller.actor)
            return plan_out(plan_view(plan))

    return await call(work)


@router.get("/{plan_id}", response_model=PlanOut)
async def get_plan(
    plan_id: Annotated[int, Path(ge=1, le=MAX_ID)], request: Request, _caller: Caller
) -> PlanOut:
    """One plan."""
    app = container(request)

    def work() -> PlanOut:
        with app.uow() as uow:
            plan = catalog_lists.find_plan(uow, plan_id)
        if plan is None:
            raise not_found("plan", plan_id)
        return plan_out(plan)

    return await call(work)


def price_out(row: plan_prices.PriceRow) -> PlanPriceOut:
    return PlanPriceOut(
        price=Amount.of(row.amount), valid_from=row.valid_from, valid_to=row.valid_to
    )


@router.get("/{plan_id}/prices", response_model=list[PlanPriceOut])
async def list_plan_prices(
    plan_id: Annotated[int, Path(ge=1, le=MAX_ID)], request: Request, _caller: Caller
) -> list[PlanPriceOut]:
    """The plan's price history, oldest first; the last (no ``valid_to``) is the current one."""
    app = container(request)

    def work() -> list[PlanPriceOut]:
        with app.uow() as uow:
            return [price_out(row) for row in plan_prices.price_history(uow, plan_id=plan_id)]

    return await call(work)


@router.post("/{plan_id}/prices", response_model=PlanPriceOut, status_code=201)
async def change_plan_price(
    plan_id: Annotated[int, Path(ge=1, le=MAX_ID)],
    body: PlanPriceIn,
    request: Request,
    caller: Admin,
) -> PlanPriceOut:
    """A new price from a day (admin only): each service pays it from its first billing period
    starting on or after ``valid_from``; charged periods never change."""
    app = container(request)

    def work() -> PlanPriceOut:
        with app.uow() as uow:
            row = plan_prices.change_plan_price(
                uow,
                plan_id=plan_id,
                amount=body.amount,
                effective=body.valid_from,
                now=app.clock.now(),
                actor=caller.actor,
            )
            return price_out(row)

    return await call(work)

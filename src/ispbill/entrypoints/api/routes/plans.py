"""``/api/v1/plans``: the catalogue of plans (admins add them; every role reads)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Request

from ispbill.adapters.db.lookups import MAX_ID
from ispbill.adapters.db.unit_of_work import UnitOfWork
from ispbill.entrypoints.api.auth import Admin, Caller, not_found
from ispbill.entrypoints.api.deps import container
from ispbill.entrypoints.api.errors import call
from ispbill.entrypoints.api.pagination import Page, Paging, page_of
from ispbill.entrypoints.api.schemas import TEXT, Amount, ArchiveIn, PlanIn, PlanOut, PlanPatch
from ispbill.use_cases.catalog import catalog_edits as edits
from ispbill.use_cases.catalog.name_lookups import tax_profile_id_of
from ispbill.use_cases.catalog.offerings import NewPlan, add_plan
from ispbill.use_cases.queries import catalog_lists
from ispbill.use_cases.queries.catalog_lists import PlanView, plan_view

router = APIRouter(prefix="/api/v1/plans", tags=["plans"])
PlanId = Annotated[int, Path(ge=1, le=MAX_ID)]


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
        archived_at=plan.archived_at,
    )


@router.get("", response_model=Page[PlanOut])
async def list_plans(
    request: Request,
    _caller: Caller,
    paging: Paging,
    search: Annotated[str | None, Query(max_length=200, pattern=TEXT)] = None,
    currency: Annotated[str | None, Query(pattern=r"^[A-Za-z]{3}$")] = None,
    active: Annotated[bool | None, Query()] = None,
    archived: Annotated[bool, Query(description="The archived plans instead.")] = False,
) -> Page[PlanOut]:
    """Plans by id; filter by part of the name, currency, or whether still sold."""
    app = container(request)

    def work() -> Page[PlanOut]:
        wanted = catalog_lists.PlanFilter(search or None, currency or None, active, archived)
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


def optional_tax_id(uow: UnitOfWork, text: str | None) -> int | None:
    """None: unchanged; "": remove (0); else the profile's id by id or name."""
    if text is None:
        return None
    return tax_profile_id_of(uow, text) if text.strip() else 0


@router.patch("/{plan_id}", response_model=PlanOut)
async def update_plan(plan_id: PlanId, body: PlanPatch, request: Request, caller: Admin) -> PlanOut:
    """Change a plan's name, speeds, FUP tiers, period options or tax profile, at once; one
    ``plan.updated`` event with the old and new values (admin only)."""
    app = container(request)

    def work() -> PlanOut:
        with app.uow() as uow:
            tax_id = optional_tax_id(uow, body.tax_profile)
        changes = edits.PlanChanges(
            name=body.name,
            download=body.download,
            upload=body.upload,
            fup_tiers=body.fup_tiers,
            period_months=body.period_months,
            tax_profile_id=tax_id,
        )
        with app.uow() as uow:
            row = edits.update_plan(
                uow, plan_id=plan_id, changes=changes, now=app.clock.now(), actor=caller.actor
            )
            return plan_out(plan_view(row))

    return await call(work)


@router.post("/{plan_id}/archive", response_model=PlanOut)
async def archive_plan(
    plan_id: PlanId, body: ArchiveIn, request: Request, caller: Admin
) -> PlanOut:
    """Stop selling a plan: its services go on; no new service or plan change may pick it;
    it leaves the default list (``?archived=true`` lists it)."""
    app = container(request)

    def work() -> PlanOut:
        with app.uow() as uow:
            row = edits.archive_plan(
                uow, plan_id=plan_id, now=app.clock.now(), actor=caller.actor, reason=body.reason
            )
            return plan_out(plan_view(row))

    return await call(work)


@router.post("/{plan_id}/restore", response_model=PlanOut)
async def restore_plan(
    plan_id: PlanId, body: ArchiveIn, request: Request, caller: Admin
) -> PlanOut:
    """Sell an archived plan again."""
    app = container(request)

    def work() -> PlanOut:
        with app.uow() as uow:
            row = edits.restore_plan(
                uow, plan_id=plan_id, now=app.clock.now(), actor=caller.actor, reason=body.reason
            )
            return plan_out(plan_view(row))

    return await call(work)

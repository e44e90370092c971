"""``GET/POST /api/v1/plans``: the catalogue of plans (admins add them; every role reads)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from sqlalchemy import select

from ispbill.adapters.db.models import Plan
from ispbill.domain.money import Money
from ispbill.entrypoints.api.auth import Admin, Caller
from ispbill.entrypoints.api.deps import container
from ispbill.entrypoints.api.errors import call, documented
from ispbill.entrypoints.api.schemas import Amount, PlanIn, PlanOut
from ispbill.services.catalog import NewPlan, add_plan

router = APIRouter(prefix="/api/v1/plans", tags=["plans"])


def plan_out(plan: Plan) -> PlanOut:
    return PlanOut(
        id=plan.id,
        name=plan.name,
        price=Amount.of(Money(plan.price_minor, plan.currency)),
        cycle_kind=plan.cycle_kind,
        cycle_n=plan.cycle_n,
        download_kbps=plan.download_kbps,
        upload_kbps=plan.upload_kbps,
        active=plan.active,
        created_at=plan.created_at,
    )


@router.get("", response_model=list[PlanOut], responses=documented(401))
async def list_plans(request: Request, _caller: Caller) -> list[PlanOut]:
    """Every plan, by id."""
    app = container(request)

    def work() -> list[PlanOut]:
        with app.uow() as uow:
            return [plan_out(p) for p in uow.session.scalars(select(Plan).order_by(Plan.id))]

    return await call(work)


@router.post("", response_model=PlanOut, status_code=201, responses=documented(401, 403, 404, 409))
async def create_plan(body: PlanIn, request: Request, caller: Admin) -> PlanOut:
    """A new plan (admin only)."""
    app = container(request)
    spec = NewPlan(**{**body.model_dump(), "period_months": tuple(body.period_months)})

    def work() -> PlanOut:
        with app.uow() as uow:
            return plan_out(add_plan(uow, spec=spec, now=app.clock.now(), actor=caller.actor))

    return await call(work)

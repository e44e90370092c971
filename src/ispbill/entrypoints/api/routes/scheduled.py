"""Scheduled changes (issue 17): ``/api/v1/services/{id}/scheduled-changes`` (plan, list) and
``/api/v1/scheduled-changes/{id}/cancel`` (use case: ``use_cases/billing/scheduled_changes.py``).
A reseller's token reaches its own customers' services only (404 otherwise)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Request

from ispbill.adapters.db.lookups import MAX_ID
from ispbill.domain.errors import ValidationError
from ispbill.entrypoints.api.auth import Caller, Staff, require_customer
from ispbill.entrypoints.api.deps import container
from ispbill.entrypoints.api.errors import call
from ispbill.entrypoints.api.routes.services import visible_service
from ispbill.entrypoints.api.schemas import CancelScheduledIn, ScheduledOut, ScheduleIn
from ispbill.use_cases.billing import scheduled_changes as scheduled

router = APIRouter(prefix="/api/v1", tags=["services"])
ServiceId = Annotated[int, Path(ge=1, le=MAX_ID)]
ChangeId = Annotated[int, Path(ge=1, le=MAX_ID)]


def scheduled_out(v: scheduled.ScheduledView) -> ScheduledOut:
    return ScheduledOut(
        id=v.id,
        service_id=v.service_id,
        customer_id=v.customer_id,
        kind=v.kind,
        plan=v.plan,
        effective_on=v.effective_on,
        last_day=v.last_day,
        due_at=v.due_at,
        status=v.status,
        reason=v.reason,
        note=v.note,
    )


@router.get("/services/{service_id}/scheduled-changes", response_model=list[ScheduledOut])
async def list_scheduled(
    service_id: ServiceId, request: Request, caller: Caller
) -> list[ScheduledOut]:
    """The service's scheduled changes, newest first."""
    app = container(request)

    def work() -> list[ScheduledOut]:
        with app.uow() as uow:
            visible_service(uow, caller, service_id)
            return [scheduled_out(v) for v in scheduled.list_scheduled(uow, service_id=service_id)]

    return await call(work)


@router.post(
    "/services/{service_id}/scheduled-changes", response_model=ScheduledOut, status_code=201
)
async def schedule(
    service_id: ServiceId, body: ScheduleIn, request: Request, caller: Staff
) -> ScheduledOut:
    """Plan a plan change (from the end of the period or a future day) or a termination (after
    a last day: today by default, or the end of the period); the tick carries it out."""
    app = container(request)

    def work() -> ScheduledOut:
        with app.uow() as uow:
            visible_service(uow, caller, service_id)
        with app.uow() as uow:
            now = app.clock.now()
            if body.kind == scheduled.PLAN_CHANGE:
                if body.plan_id is None:
                    raise ValidationError("plan_id", "required for a plan change")
                done = scheduled.schedule_plan_change(
                    uow,
                    service_id=service_id,
                    plan_id=body.plan_id,
                    on=body.on,
                    now=now,
                    actor=caller.actor,
                    reason=body.reason,
                )
            else:
                if body.plan_id is not None:
                    raise ValidationError("plan_id", "a termination takes no plan")
                done = scheduled.schedule_termination(
                    uow,
                    service_id=service_id,
                    last_day=body.on,
                    at_period_end=body.at_period_end,
                    now=now,
                    actor=caller.actor,
                    reason=body.reason,
                )
            return scheduled_out(done)

    return await call(work)


@router.post("/scheduled-changes/{change_id}/cancel", response_model=ScheduledOut)
async def cancel(
    change_id: ChangeId, body: CancelScheduledIn, request: Request, caller: Staff
) -> ScheduledOut:
    """Cancel a planned change before it happens."""
    app = container(request)

    def work() -> ScheduledOut:
        with app.uow() as uow:
            require_customer(uow, caller, scheduled.change_customer(uow, change_id))
        with app.uow() as uow:
            return scheduled_out(
                scheduled.cancel_scheduled(
                    uow,
                    change_id=change_id,
                    now=app.clock.now(),
                    actor=caller.actor,
                    reason=body.reason,
                )
            )

    return await call(work)

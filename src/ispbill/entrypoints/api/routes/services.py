"""``/api/v1/services``: plans delivered to customers, and their lifecycle moves.

Create, change plan and terminate (priced by ``use_cases/billing/plan_changes.py``), set or clear the "active
to" day after which the service pauses, and reactivate a paused service (also from the
customer's portal session). A reseller token reaches the services of its own customers only.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Request

from ispbill.adapters.db.lookups import MAX_ID
from ispbill.adapters.db.unit_of_work import UnitOfWork
from ispbill.domain.lifecycle import ServiceState
from ispbill.entrypoints.api.auth import Caller, Principal, Staff, not_found, require_customer
from ispbill.entrypoints.api.deps import container
from ispbill.entrypoints.api.errors import call
from ispbill.entrypoints.api.pagination import Page, Paging, page_of
from ispbill.entrypoints.api.schemas import (
    ActiveToIn,
    Amount,
    ChangeOut,
    ChangePlanIn,
    ServiceIn,
    ServiceOut,
    ServicePatch,
    TerminateIn,
)
from ispbill.use_cases.billing.plan_changes import ChangeResult, change_plan, terminate_service
from ispbill.use_cases.queries import service_lists
from ispbill.use_cases.queries.service_lists import ServiceView, service_view
from ispbill.use_cases.service_lifecycle import pauses as lifecycle
from ispbill.use_cases.service_lifecycle import service_edits
from ispbill.use_cases.service_lifecycle.new_services import NewService, add_service

router = APIRouter(prefix="/api/v1/services", tags=["services"])
ServiceId = Annotated[int, Path(ge=1, le=MAX_ID)]


def service_out(service: ServiceView) -> ServiceOut:
    return ServiceOut(
        id=service.id,
        customer_id=service.customer_id,
        plan_id=service.plan_id,
        state=service.state,
        active_from=service.active_from,
        active_to=service.active_to,
        period_months=service.period_months,
        billed_until=service.billed_until,
        created_at=service.created_at,
    )


def visible_service(uow: UnitOfWork, caller: Principal, service_id: int) -> ServiceView:
    """The service, or a 404 when absent or under a customer this caller may not see."""
    service = service_lists.find_service(uow, caller.reader, service_id)
    if service is None:
        raise not_found("service", service_id)
    return service


def change_out(result: ChangeResult) -> ChangeOut:
    return ChangeOut(
        service=service_out(service_view(result.service)),
        from_plan=result.from_plan,
        to_plan=result.to_plan,
        invoice_number=result.invoice_number,
        credit_note_number=result.credit_note_number,
        balance=Amount.of(result.balance),
    )


@router.get("", response_model=Page[ServiceOut])
async def list_services(
    request: Request,
    caller: Caller,
    paging: Paging,
    customer_id: Annotated[int | None, Query(ge=1, le=MAX_ID)] = None,
    plan_id: Annotated[int | None, Query(ge=1, le=MAX_ID)] = None,
    state: Annotated[ServiceState | None, Query()] = None,
) -> Page[ServiceOut]:
    """Services by id; filter by customer, plan or state."""
    app = container(request)

    def work() -> Page[ServiceOut]:
        with app.uow() as uow:
            if customer_id is not None:
                require_customer(uow, caller, customer_id)
            found = service_lists.list_services(
                uow,
                caller.reader,
                service_lists.ServiceFilter(
                    customer_id, plan_id, state.value if state is not None else None
                ),
                after=paging.after(),
                limit=paging.limit,
            )
            return page_of(found, service_out)

    return await call(work)


@router.post("", response_model=ServiceOut, status_code=201)
async def create_service(body: ServiceIn, request: Request, caller: Staff) -> ServiceOut:
    """A pending service; the engine activates it when its first period is paid."""
    app = container(request)

    def work() -> ServiceOut:
        with app.uow() as uow:
            require_customer(uow, caller, body.customer_id)
            spec = NewService(
                customer_id=body.customer_id,
                plan_id=body.plan_id,
                active_from=body.active_from,
                active_to=body.active_to,
                period_months=body.period_months,
            )
            service = add_service(uow, spec=spec, now=app.clock.now(), actor=caller.actor)
            return service_out(service_view(service))

    return await call(work)


@router.get("/{service_id}", response_model=ServiceOut)
async def get_service(service_id: ServiceId, request: Request, caller: Caller) -> ServiceOut:
    """One service."""
    app = container(request)

    def work() -> ServiceOut:
        with app.uow() as uow:
            return service_out(visible_service(uow, caller, service_id))

    return await call(work)


@router.post("/{service_id}/change-plan", response_model=ChangeOut)
async def change_service_plan(
    service_id: ServiceId, body: ChangePlanIn, request: Request, caller: Staff
) -> ChangeOut:
    """Move the service to another plan from a local date: unused days credited, the new
    plan's price charged for them (prorated, one rounding)."""
    app = container(request)

    def work() -> ChangeOut:
        with app.uow() as uow:
            visible_service(uow, caller, service_id)
        with app.uow() as uow:  # a fresh unit of work: the use case takes the lock itself
            result = change_plan(
                uow,
                service_id=service_id,
                plan_id=body.plan_id,
                effective=body.effective,
                now=app.clock.now(),
                actor=caller.actor,
            )
            return change_out(result)

    return await call(work)


@router.post("/{service_id}/terminate", response_model=ChangeOut)
async def terminate(
    service_id: ServiceId, body: TerminateIn, request: Request, caller: Staff
) -> ChangeOut:
    """End the service for good from a local date, crediting unused prepaid days."""
    app = container(request)

    def work() -> ChangeOut:
        with app.uow() as uow:
            visible_service(uow, caller, service_id)
        with app.uow() as uow:  # a fresh unit of work: the use case takes the lock itself
            result = terminate_service(
                uow,
                service_id=service_id,
                effective=body.effective,
                now=app.clock.now(),
                actor=caller.actor,
                reason=body.reason,
            )
            return change_out(result)

    return await call(work)


@router.post("/{service_id}/active-to", response_model=ServiceOut)
async def set_active_to(
    service_id: ServiceId, body: ActiveToIn, request: Request, caller: Staff
) -> ServiceOut:
    """Schedule a pause (UISP "active to"): the service pauses after this day; null clears."""
    app = container(request)

    def work() -> ServiceOut:
        with app.uow() as uow:
            visible_service(uow, caller, service_id)
        with app.uow() as uow:  # a fresh unit of work: the use case takes the lock itself
            service = lifecycle.schedule_pause(
                uow,
                service_id=service_id,
                active_to=body.active_to,
                now=app.clock.now(),
                actor=caller.actor,
            )
            return service_out(service_view(service))

    return await call(work)


@router.post("/{service_id}/reactivate", response_model=ServiceOut)
async def reactivate_service(
    service_id: ServiceId, body: ActiveToIn, request: Request, caller: Caller
) -> ServiceOut:
    """Reactivate a paused service (its customer may, from the portal); billing restarts at
    once and a prepaid wallet that cannot cover the period deactivates it instead."""
    app = container(request)

    def work() -> ServiceOut:
        with app.uow() as uow:
            visible_service(uow, caller, service_id)
        with app.uow() as uow:  # a fresh unit of work: the use case takes the lock itself
            done = lifecycle.reactivate_service(
                uow,
                service_id=service_id,
                active_to=body.active_to,
                now=app.clock.now(),
                actor=caller.actor,
            )
            return service_out(service_view(done.service))

    return await call(work)


@router.patch("/{service_id}", response_model=ServiceOut)
async def update_service(
    service_id: ServiceId, body: ServicePatch, request: Request, caller: Staff
) -> ServiceOut:
    """Change a service that has not started: first day, period in months, invoicing mode.
    A running service is refused (change its plan, pause or terminate it instead)."""
    app = container(request)
    changes = service_edits.ServiceChanges(
        active_from=body.active_from,
        period_months=body.period_months,
        invoicing_mode=body.invoicing_mode,
    )

    def work() -> ServiceOut:
        with app.uow() as uow:
            visible_service(uow, caller, service_id)
        with app.uow() as uow:
            row = service_edits.update_service(
                uow,
                service_id=service_id,
                changes=changes,
                now=app.clock.now(),
                actor=caller.actor,
            )
            return service_out(service_view(row))

    return await call(work)

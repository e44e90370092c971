"""Collections over ``/api/v1``: suspend, lift, promise and "why" for a service; the collection
policy; the walled-garden info pages. Thin: each route calls one use case.

A reseller token acts on services of its own customers only (another's is a 404); the policy
and the pages are the operator's (admin to change, any token to read). Suspend, lift and
promise take an optional ``Idempotency-Key``: a retry with the same key replays the first
answer (without one, a repeat is refused with 409/422 and writes nothing).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import JSONResponse

from ispbill.adapters.db.lookups import MAX_ID
from ispbill.adapters.db.unit_of_work import UnitOfWork
from ispbill.domain.money import Money
from ispbill.entrypoints.api.auth import Admin, Caller, Principal
from ispbill.entrypoints.api.deps import container
from ispbill.entrypoints.api.errors import ApiProblem, call, documented
from ispbill.entrypoints.api.schemas import (
    Amount,
    CollectionPolicyIn,
    CollectionPolicyOut,
    InfoPageIn,
    InfoPageOut,
    LiftIn,
    LiftOut,
    PromiseIn,
    PromiseOut,
    SuspendIn,
    SuspensionOut,
    WhyOut,
)
from ispbill.use_cases.catalog.name_lookups import customer_class_id_of
from ispbill.use_cases.collections import collection_policy, info_pages, suspensions
from ispbill.use_cases.collections.non_payers import run_collections
from ispbill.use_cases.queries import collection_views, service_lists
from ispbill.use_cases.queries.collection_views import SuspensionView, suspension_view
from ispbill.use_cases.service_lifecycle.explain import explain_service

router = APIRouter(prefix="/api/v1", tags=["collections"])
ServiceId = Annotated[int, Path(ge=1, le=MAX_ID)]


def _visible_service(uow: UnitOfWork, caller: Principal, service_id: int) -> None:
    if service_lists.find_service(uow, caller.reader, service_id) is None:
        raise ApiProblem(
            404, f"service: no service {service_id}", field="service", rule="not found"
        )


def suspension_out(row: SuspensionView) -> SuspensionOut:
    return SuspensionOut(
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


@router.post(
    "/services/{service_id}/suspend",
    response_model=SuspensionOut,
    status_code=201,
    responses=documented(401, 403, 404, 409),
)
async def suspend(
    service_id: ServiceId,
    body: SuspendIn,
    request: Request,
    caller: Caller,
) -> Any:
    """Suspend now, or plan a FROM-TO window (optionally yearly, optionally with invoicing)."""
    app = container(request)

    def work() -> SuspensionOut:
        with app.uow() as uow:
            _visible_service(uow, caller, service_id)
        with app.uow() as uow:
            row = suspensions.suspend_service(
                uow,
                spec=suspensions.SuspendRequest(
                    service_id=service_id,
                    reason=body.reason,
                    suspend_invoicing=body.suspend_invoicing,
                    starts_on=body.starts_on,
                    ends_on=body.ends_on,
                    repeat_yearly=body.repeat_yearly,
                    note=body.note,
                ),
                now=app.clock.now(),
                actor=caller.actor,
            )
            return suspension_out(suspension_view(row))

    return JSONResponse((await call(work)).model_dump(mode="json"), status_code=201)


@router.post(
    "/services/{service_id}/lift",
    response_model=LiftOut,
    responses=documented(401, 403, 404),
)
async def lift(
    service_id: ServiceId,
    body: LiftIn,
    request: Request,
    caller: Caller,
) -> Any:
    """Lift the service's manual suspension (or cancel a planned one); a yearly window comes
    back next year (``next_occurrence``) unless ``end_repetition``."""
    app = container(request)

    def work() -> LiftOut:
        with app.uow() as uow:
            _visible_service(uow, caller, service_id)
        with app.uow() as uow:
            row = suspensions.lift_service(
                uow,
                service_id=service_id,
                now=app.clock.now(),
                actor=caller.actor,
                note=body.note,
                end_repetition=body.end_repetition,
            )
            following = collection_views.next_manual(uow, row.service_id)
            return LiftOut(
                **suspension_out(suspension_view(row)).model_dump(),
                next_occurrence=suspension_out(following) if following else None,
            )

    return JSONResponse((await call(work)).model_dump(mode="json"), status_code=200)


@router.post(
    "/services/{service_id}/promise",
    response_model=PromiseOut,
    status_code=201,
    responses=documented(401, 403, 404, 409),
)
async def promise(
    service_id: ServiceId,
    body: PromiseIn,
    request: Request,
    caller: Caller,
) -> Any:
    """Restore a non-payer for ``days`` (a suspended service is active again, a throttled one
    at full speed); the stage returns if the debt is still open. A customer's own session
    makes the subscriber's promise (once per billing period, the policy's days; ``days`` is
    ignored), as the garden and the portal do."""
    app = container(request)
    own = caller.role == "customer"

    def work() -> PromiseOut:
        with app.uow() as uow:
            _visible_service(uow, caller, service_id)
        with app.uow() as uow:
            made = suspensions.promise_to_pay(
                uow,
                service_id=service_id,
                days=None if own else body.days,
                now=app.clock.now(),
                actor=caller.actor,
                by_subscriber=own,
            )
        return PromiseOut(customer_id=made.customer_id, until=made.until, services=made.services)

    return JSONResponse((await call(work)).model_dump(mode="json"), status_code=201)


@router.get("/services/{service_id}/why", response_model=WhyOut, responses=documented(401, 404))
async def why(service_id: ServiceId, request: Request, caller: Caller) -> WhyOut:
    """Why the service is in its state now, and what would restore it."""
    app = container(request)

    def work() -> WhyOut:
        with app.uow() as uow:
            _visible_service(uow, caller, service_id)
            found = explain_service(uow, service_id=service_id, now=app.clock.now())
        return WhyOut(
            service_id=found.service_id,
            state=found.state,
            reason=found.reason,
            text=found.text,
            overdue_total=Amount.of(Money.parse(found.facts["overdue_total"])),
            days_overdue=found.facts["days_overdue"],
        )

    return await call(work)


def _class_id(uow: UnitOfWork, customer_class: str | None) -> int | None:
    return customer_class_id_of(uow, customer_class) if customer_class else None


def _policy_out(uow: UnitOfWork, customer_class: str | None) -> CollectionPolicyOut:
    found = collection_views.policy_view(uow, _class_id(uow, customer_class))
    return CollectionPolicyOut(
        customer_class=found.customer_class, policy=found.policy, overrides=found.overrides
    )


@router.get(
    "/collection/policy", response_model=CollectionPolicyOut, responses=documented(401, 404)
)
async def get_policy(
    request: Request,
    caller: Caller,
    customer_class: Annotated[str | None, Query(max_length=200)] = None,
) -> CollectionPolicyOut:
    """The operator's collection policy, or a class's (its overrides on the operator's)."""
    app = container(request)

    def work() -> CollectionPolicyOut:
        with app.uow() as uow:
            return _policy_out(uow, customer_class)

    return await call(work)


@router.put(
    "/collection/policy", response_model=CollectionPolicyOut, responses=documented(401, 403, 404)
)
async def put_policy(
    body: CollectionPolicyIn, request: Request, caller: Admin
) -> CollectionPolicyOut:
    """Change keys of the policy; every customer concerned is reviewed at once (turning it off
    lifts automatic non-payer suspensions, turning it on re-evaluates everyone)."""
    app = container(request)

    def work() -> CollectionPolicyOut:
        now = app.clock.now()
        with app.uow() as uow:
            collection_policy.set_values(
                uow,
                changes=dict(body.changes),
                customer_class_id=_class_id(uow, body.customer_class),
                now=now,
                actor=caller.actor,
            )
        run_collections(app.uow, now=now, actor=caller.actor)
        with app.uow() as uow:
            return _policy_out(uow, body.customer_class)

    return await call(work)


def page_out(page: info_pages.Page) -> InfoPageOut:
    return InfoPageOut(
        reason=page.reason,
        title=page.title,
        body_markdown=page.body_markdown,
        body_html=page.body_html,
        custom=page.custom,
    )


@router.get("/pages", response_model=list[InfoPageOut], responses=documented(401))
async def list_pages(request: Request, caller: Caller) -> list[InfoPageOut]:
    """Every reason's walled-garden page (the built-in default where none was written)."""
    app = container(request)

    def work() -> list[InfoPageOut]:
        with app.uow() as uow:
            return [page_out(p) for p in info_pages.list_pages(uow)]

    return await call(work)


@router.get("/pages/{reason}", response_model=InfoPageOut, responses=documented(401))
async def get_page(
    reason: Annotated[str, Path(max_length=32)], request: Request, caller: Caller
) -> InfoPageOut:
    """One reason's page."""
    app = container(request)

    def work() -> InfoPageOut:
        with app.uow() as uow:
            return page_out(info_pages.get_page(uow, reason=reason))

    return await call(work)


@router.put("/pages/{reason}", response_model=InfoPageOut, responses=documented(401, 403))
async def put_page(
    reason: Annotated[str, Path(max_length=32)], body: InfoPageIn, request: Request, caller: Admin
) -> InfoPageOut:
    """Write a reason's page: a title and a Markdown body (sanitised when served)."""
    app = container(request)

    def work() -> InfoPageOut:
        with app.uow() as uow:
            page = info_pages.edit_page(
                uow,
                reason=reason,
                title=body.title,
                body=body.body_markdown,
                now=app.clock.now(),
                actor=caller.actor,
            )
        return page_out(page)

    return await call(work)

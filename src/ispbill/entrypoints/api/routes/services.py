"""``GET/POST /api/v1/services`` and ``GET /api/v1/services/{id}``: plans delivered to
customers. A reseller token sees and creates services of its own customers only."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Request
from sqlalchemy import select

from ispbill.adapters.db.models import Customer, Service
from ispbill.entrypoints.api.auth import Caller
from ispbill.entrypoints.api.deps import container
from ispbill.entrypoints.api.errors import ApiProblem, call, documented
from ispbill.entrypoints.api.routes.customers import visible_customer
from ispbill.entrypoints.api.schemas import ServiceIn, ServiceOut
from ispbill.services.lookup import MAX_ID
from ispbill.services.services import NewService, add_service

router = APIRouter(prefix="/api/v1/services", tags=["services"])


def service_out(service: Service) -> ServiceOut:
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


@router.get("", response_model=list[ServiceOut], responses=documented(401, 404))
async def list_services(
    request: Request,
    caller: Caller,
    customer_id: Annotated[int | None, Query(ge=1, le=MAX_ID)] = None,
) -> list[ServiceOut]:
    """Services by id, optionally of one customer."""
    app = container(request)

    def work() -> list[ServiceOut]:
        with app.uow() as uow:
            query = select(Service).order_by(Service.id)
            if customer_id is not None:
                visible_customer(uow.session, caller, customer_id)
                query = query.where(Service.customer_id == customer_id)
            if caller.role == "reseller":
                query = query.join(Customer, Customer.id == Service.customer_id).where(
                    Customer.reseller_id == caller.reseller_id
                )
            return [service_out(s) for s in uow.session.scalars(query)]

    return await call(work)


@router.post("", response_model=ServiceOut, status_code=201, responses=documented(401, 403, 404))
async def create_service(body: ServiceIn, request: Request, caller: Caller) -> ServiceOut:
    """A pending service; the engine activates it when its first period is paid."""
    app = container(request)

    def work() -> ServiceOut:
        with app.uow() as uow:
            visible_customer(uow.session, caller, body.customer_id)
            spec = NewService(
                customer=str(body.customer_id),
                plan=str(body.plan_id),
                active_from=body.active_from,
                active_to=body.active_to,
                period_months=body.period_months,
            )
            service = add_service(uow, spec=spec, now=app.clock.now(), actor=caller.actor)
            return service_out(service)

    return await call(work)


@router.get("/{service_id}", response_model=ServiceOut, responses=documented(401, 404))
async def get_service(
    service_id: Annotated[int, Path(ge=1, le=MAX_ID)], request: Request, caller: Caller
) -> ServiceOut:
    """One service."""
    app = container(request)

    def work() -> ServiceOut:
        with app.uow() as uow:
            service = uow.session.get(Service, service_id)
            customer = uow.session.get(Customer, service.customer_id) if service else None
            if service is None or customer is None or not caller.may_see(customer):
                raise ApiProblem(
                    404, f"service: no service {service_id}", field="service", rule="not found"
                )
            return service_out(service)

    return await call(work)

"""The ``/api/v1`` resources: their routers and their problem+json error handlers."""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError

from ispbill.entrypoints.api.errors import (
    ApiProblem,
    handle_api_problem,
    handle_request_validation,
)
from ispbill.entrypoints.api.routes import (
    collections,
    customers,
    engine,
    health,
    payments,
    plans,
    services,
)


def include_v1(api: FastAPI) -> None:
    api.add_exception_handler(ApiProblem, handle_api_problem)
    api.add_exception_handler(RequestValidationError, handle_request_validation)
    for module in (health, customers, plans, services, payments, engine, collections):
        api.include_router(module.router)

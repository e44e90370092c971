"""The ``/api/v1`` resources: their routers, middleware, problem+json handlers and contract.

The OpenAPI document is finished here, in one place, rather than route by route: every
operation documents the problem answers it may give (401, 403, 404, 409, 415, 422 as
``application/problem+json``) and every write the optional ``Idempotency-Key`` header that the
idempotency middleware honours.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from starlette.exceptions import HTTPException as StarletteHTTPException

from ispbill.bootstrap import App
from ispbill.entrypoints.api.errors import (
    TITLES,
    ApiProblem,
    JsonBodyMiddleware,
    handle_api_problem,
    handle_http_error,
    handle_request_validation,
    handle_unexpected,
)
from ispbill.entrypoints.api.idempotency import HEADER, MAX_KEY, IdempotencyMiddleware
from ispbill.entrypoints.api.problems import MEDIA_TYPE
from ispbill.entrypoints.api.routes import (
    cards,
    catalog,
    collections,
    corrections,
    customers,
    discounts,
    engine,
    extra_charges,
    health,
    invoices,
    network,
    notifications,
    operations,
    outbox,
    payments,
    plans,
    scheduled,
    services,
    topups,
)
from ispbill.entrypoints.api.schemas import ProblemOut
from ispbill.entrypoints.api.strict_json import DuplicateKeysMiddleware
from ispbill.entrypoints.api.unrouted import UnroutedWritesMiddleware

ROUTERS = (
    health.router,
    *catalog.routers,
    customers.router,
    plans.router,
    services.router,
    extra_charges.router,
    discounts.router,
    scheduled.router,
    *network.routers,
    invoices.router,
    corrections.router,
    payments.router,
    cards.router,
    topups.router,
    operations.router,
    engine.router,
    collections.router,
    notifications.router,
    outbox.router,
)
PROBLEM_REF = {"$ref": "#/components/schemas/ProblemOut"}
WRITES = ("post", "put", "patch", "delete")


def include_v1(api: FastAPI, container: App) -> None:
    api.add_exception_handler(ApiProblem, handle_api_problem)
    api.add_exception_handler(RequestValidationError, handle_request_validation)
    api.add_exception_handler(StarletteHTTPException, handle_http_error)
    api.add_exception_handler(Exception, handle_unexpected)
    for router in ROUTERS:
        api.include_router(router)
    # outermost last: the body checks run before the idempotency key is claimed, and a write
    # no route takes is a 405/404 before any of them
    api.add_middleware(IdempotencyMiddleware, container=container)
    api.add_middleware(DuplicateKeysMiddleware)
    api.add_middleware(JsonBodyMiddleware)
    api.add_middleware(UnroutedWritesMiddleware)

    def openapi() -> dict[str, Any]:
        if api.openapi_schema is None:
            document = get_openapi(
                title=api.title,
                version=api.version,
                description=api.description,
                routes=api.routes,
            )
            finish_contract(document)
            api.openapi_schema = document
        return api.openapi_schema

    api.openapi = openapi  # type: ignore[method-assign]


def _problem(status: int) -> dict[str, Any]:
    return {
        "description": TITLES.get(status, "A problem"),
        "content": {MEDIA_TYPE: {"schema": PROBLEM_REF}},
    }


def finish_contract(document: dict[str, Any]) -> None:
    """Problem answers and the idempotency header on every ``/api/v1`` operation."""
    schemas = document.setdefault("components", {}).setdefault("schemas", {})
    for unused in ("HTTPValidationError", "ValidationError"):
        schemas.pop(unused, None)
    if "ProblemOut" not in schemas:  # pragma: no cover - a route always refers to it
        schemas["ProblemOut"] = ProblemOut.model_json_schema()
    for path, methods in document.get("paths", {}).items():
        if not path.startswith("/api/v1/") or path.startswith("/api/v1/webhooks/"):
            continue
        for method, operation in methods.items():
            responses = operation.setdefault("responses", {})
            statuses = [422] if path == "/api/v1/health" else [401, 403, 404, 409, 422]
            if method in WRITES:
                statuses.append(415)
            for status in statuses:
                responses[str(status)] = _problem(status)
            if method in WRITES:
                parameters = operation.setdefault("parameters", [])
                if not any(p.get("name") == HEADER for p in parameters):
                    parameters.append(
                        {
                            "name": HEADER,
                            "in": "header",
                            "required": False,
                            "description": "Makes the write safe to retry: a repeat with the "
                            "same key and request replays the first answer.",
                            "schema": {
                                "type": "string",
                                "minLength": 1,
                                "maxLength": MAX_KEY,
                                "pattern": r"^[\x21-\x7e]([\x20-\x7e]*[\x21-\x7e])?$",
                            },
                        }
                    )

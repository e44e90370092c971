"""Problem+json answers of the ``/api/v1`` resources (RFC 9457), with ``field`` and ``rule``.

A domain refusal maps to a status by its kind: ``ValidationError`` 422, ``Conflict`` 409,
``NotFound`` 404. Request bodies FastAPI cannot parse are 422 problems too, naming the field.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from ispbill.domain.errors import Conflict, IspbillError, NotFound, ValidationError
from ispbill.entrypoints.api.problems import MEDIA_TYPE
from ispbill.entrypoints.api.schemas import ProblemOut

T = TypeVar("T")

TITLES = {
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not found",
    409: "Conflict",
    422: "Invalid input",
}


class ApiProblem(Exception):
    def __init__(
        self, status: int, detail: str, *, field: str | None = None, rule: str | None = None
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.field = field
        self.rule = rule

    def response(self) -> JSONResponse:
        body = ProblemOut(
            title=TITLES.get(self.status, "Error"),
            status=self.status,
            detail=self.detail,
            field=self.field,
            rule=self.rule,
        )
        headers = {"WWW-Authenticate": "Bearer"} if self.status == 401 else None
        return JSONResponse(
            body.model_dump(exclude_none=True),
            status_code=self.status,
            media_type=MEDIA_TYPE,
            headers=headers,
        )


def from_domain(exc: IspbillError) -> ApiProblem:
    if isinstance(exc, NotFound):
        return ApiProblem(404, str(exc), field=exc.field, rule="not found")
    if isinstance(exc, Conflict):
        return ApiProblem(409, str(exc), field=exc.field, rule=exc.rule)
    if isinstance(exc, ValidationError):
        return ApiProblem(422, str(exc), field=exc.field, rule=exc.rule)
    return ApiProblem(422, str(exc))


async def call(work: Callable[[], T]) -> T:
    """Run a synchronous use case in a worker thread; domain refusals become problems."""
    try:
        return await run_in_threadpool(work)
    except IspbillError as exc:
        raise from_domain(exc) from exc


async def handle_api_problem(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ApiProblem)
    return exc.response()


async def handle_request_validation(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = exc.errors()
    first: dict[str, Any] = errors[0] if errors else {}
    location = [str(part) for part in first.get("loc", ())]
    if location and location[0] in ("body", "query", "path", "header"):
        location = location[1:]
    field = ".".join(location) or "body"
    if first.get("loc", ("",))[0] == "header" and field.lower() == "idempotency-key":
        field = "Idempotency-Key"
    rule = str(first.get("msg", "invalid"))
    return ApiProblem(422, f"{field}: {rule}", field=field, rule=rule).response()


def documented(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI entries for the problem responses a route may give (422 always: bad input)."""
    wanted = sorted({*statuses, 422})
    return {
        status: {
            "model": ProblemOut,
            "content": {MEDIA_TYPE: {"schema": {"$ref": "#/components/schemas/ProblemOut"}}},
            "description": TITLES.get(status, "A problem"),
        }
        for status in wanted
    }

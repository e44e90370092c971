"""Problem+json answers of the ``/api/v1`` resources (RFC 9457), with ``field`` and ``rule``.

A domain refusal maps to a status by its kind: ``ValidationError`` 422, ``Conflict`` 409,
``NotFound`` 404. Request bodies FastAPI cannot parse are 422 problems too, naming the field.
Unknown routes (404), wrong methods (405) and bodies that are not JSON (415) are problems as
well, and so is a bug: ``handle_unexpected`` logs it and answers a 500 problem that shows no
internals (the test suite and the fuzzer require that none ever happens).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, TypeVar

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Receive, Scope, Send

from ispbill.domain.errors import Conflict, IspbillError, NotFound, ValidationError
from ispbill.entrypoints.api.problems import MEDIA_TYPE
from ispbill.entrypoints.api.schemas import ProblemOut

T = TypeVar("T")

log = logging.getLogger(__name__)

TITLES = {
    400: "Bad request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not found",
    405: "Method not allowed",
    409: "Conflict",
    413: "Content too large",
    415: "Unsupported media type",
    422: "Invalid input",
    500: "Internal error",
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
        self.headers: dict[str, str] = {}

    def response(self) -> JSONResponse:
        body = ProblemOut(
            title=TITLES.get(self.status, "Error"),
            status=self.status,
            detail=self.detail,
            field=self.field,
            rule=self.rule,
        )
        headers = {"WWW-Authenticate": "Bearer"} if self.status == 401 else {}
        headers.update(self.headers)
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
    if first.get("type") == "json_invalid":
        field, rule = "body", "must be valid JSON"
    return ApiProblem(422, f"{field}: {rule}", field=field, rule=rule).response()


async def handle_http_error(request: Request, exc: Exception) -> JSONResponse:
    """Starlette's own refusals (no such route, wrong method) as problems."""
    assert isinstance(exc, StarletteHTTPException)
    if exc.status_code == 404:
        problem = ApiProblem(
            404, f"path: no route {request.url.path!r}", field="path", rule="no such route"
        )
    elif exc.status_code == 405:
        problem = ApiProblem(
            405,
            f"method: {request.method} is not allowed on {request.url.path!r}",
            field="method",
            rule="not allowed",
        )
        if exc.headers and "Allow" in exc.headers:
            problem.headers["Allow"] = exc.headers["Allow"]
    elif exc.status_code == 400:  # a body FastAPI could not even decode (not UTF-8 JSON)
        problem = ApiProblem(
            422, "body: must be valid JSON in UTF-8", field="body", rule="must be valid JSON"
        )
    else:
        problem = ApiProblem(exc.status_code, str(exc.detail), field="request", rule="refused")
    return problem.response()


async def handle_unexpected(request: Request, exc: Exception) -> JSONResponse:
    """A bug: logged with its traceback; the caller sees a problem without internals."""
    log.exception("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    return ApiProblem(
        500, "an unexpected error occurred; it was logged", field="request", rule="internal error"
    ).response()


def _is_json(content_type: str) -> bool:
    media = content_type.split(";", 1)[0].strip().lower()
    return media == "application/json" or (
        media.startswith("application/") and media.endswith("+json")
    )


class JsonBodyMiddleware:
    """A write to ``/api/v1`` whose body is not JSON is a 415 problem (a webhook's raw body,
    verified byte for byte, is exempt)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] == "http"
            and scope["method"] in ("POST", "PUT", "PATCH", "DELETE")
            and scope["path"].startswith("/api/v1/")
            and not scope["path"].startswith("/api/v1/webhooks/")
        ):
            headers = {k.lower(): v for k, v in scope.get("headers", [])}
            length = headers.get(b"content-length", b"0").strip()
            has_body = b"transfer-encoding" in headers or (length.isdigit() and int(length) > 0)
            content_type = headers.get(b"content-type", b"").decode("latin-1")
            if has_body and not _is_json(content_type):
                problem = ApiProblem(
                    415,
                    "Content-Type: the body must be application/json",
                    field="Content-Type",
                    rule="must be application/json",
                )
                await problem.response()(scope, receive, send)
                return
        await self.app(scope, receive, send)


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

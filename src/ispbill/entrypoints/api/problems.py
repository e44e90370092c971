"""Errors as ``application/problem+json`` (RFC 9457), naming the field and the rule broken."""

from __future__ import annotations

from typing import Any

from fastapi import Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from ispbill.domain.errors import IspbillError, NotFound, ValidationError

MEDIA_TYPE = "application/problem+json"


class Problem(BaseModel):
    type: str = "about:blank"
    title: str
    status: int
    detail: str
    field: str | None = None


def problem(status: int, title: str, detail: str, field: str | None = None) -> JSONResponse:
    body = Problem(title=title, status=status, detail=detail, field=field)
    return JSONResponse(
        body.model_dump(exclude_none=True), status_code=status, media_type=MEDIA_TYPE
    )


def from_error(exc: IspbillError) -> JSONResponse:
    if isinstance(exc, NotFound):
        return problem(404, "Not found", str(exc), exc.field)
    if isinstance(exc, ValidationError):
        return problem(400, "Refused", str(exc), exc.field)
    return problem(400, "Refused", str(exc))


async def handle_domain_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, IspbillError)
    return from_error(exc)


def documented(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI entries for the problem responses a route may give."""
    return {
        status: {"model": Problem, "content": {MEDIA_TYPE: {}}, "description": "A problem"}
        for status in statuses
    }

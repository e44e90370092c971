"""``GET /api/v1/health``: the API answers and its database is reachable (no token needed)."""

from __future__ import annotations

from fastapi import APIRouter, Request

from ispbill import __version__
from ispbill.entrypoints.api.deps import container
from ispbill.entrypoints.api.errors import call
from ispbill.entrypoints.api.schemas import Health
from ispbill.use_cases.admin.health import ping_database

router = APIRouter(prefix="/api/v1", tags=["health"])


@router.get("/health", response_model=Health)
async def health(request: Request) -> Health:
    app = container(request)

    def ping() -> None:
        with app.uow() as uow:
            ping_database(uow)

    await call(ping)
    return Health(status="ok", version=__version__)

"""``GET /api/v1/health``: the API answers, its database is reachable and this process's
background loops (the scheduler or the job worker of ``ispbill serve``) still run (no token
needed). A loop that has stopped answers 503 with its last error."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from ispbill import __version__
from ispbill.entrypoints.api.deps import container
from ispbill.entrypoints.api.errors import call
from ispbill.entrypoints.api.schemas import Health
from ispbill.use_cases.admin.health import ping_database

router = APIRouter(prefix="/api/v1", tags=["health"])


@router.get(
    "/health",
    response_model=Health,
    responses={503: {"model": Health, "description": "A background loop has stopped."}},
)
async def health(request: Request) -> Health | JSONResponse:
    app = container(request)

    def ping() -> None:
        with app.uow() as uow:
            ping_database(uow)

    await call(ping)
    background = {name: loop.state() for name, loop in app.background.items()}
    stopped = [name for name, state in background.items() if state.startswith("stopped")]
    if stopped:
        body = Health(status="background stopped", version=__version__, background=background)
        return JSONResponse(body.model_dump(), status_code=503)
    return Health(status="ok", version=__version__, background=background)

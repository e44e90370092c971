"""``POST /api/v1/webhooks/{gateway}``: where payment gateways report payments.

The raw body is handed to the use case untouched: the signature is computed over those exact
bytes, so nothing may parse or re-encode it first (the input guard only reads it: at most
1 MiB, JSON at most 32 levels deep, no NUL). A refused signature is a 400 problem and writes
nothing; so is a signed event whose fields are out of bounds (a creation time that is not a
whole number of seconds, ``data`` that is not an object, an event id over 255 characters, a
customer id beyond the id column). A verified event answers 200 whether it was new or a replay,
so the gateway stops resending it.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool

from ispbill.domain.errors import ValidationError
from ispbill.entrypoints.api.deps import container
from ispbill.entrypoints.api.problems import documented, problem
from ispbill.use_cases.payments.checkouts import WebhookResult, handle_webhook

router = APIRouter(prefix="/api/v1/webhooks", tags=["webhooks"])


class WebhookAck(BaseModel):
    event_id: str
    event_type: str
    outcome: str
    duplicate: bool
    payment_id: int | None = None


@router.post("/{gateway}", response_model=WebhookAck, responses=documented(400, 404))
async def receive_webhook(gateway: str, request: Request) -> WebhookAck | JSONResponse:
    """Verify and apply one gateway event, exactly once."""
    app = container(request)
    if gateway not in app.gateways:
        return problem(404, "Not found", f"gateway: {gateway!r} is not configured", "gateway")
    payload = await request.body()
    headers = dict(request.headers)

    def work() -> WebhookResult:
        with app.uow() as uow:
            return handle_webhook(
                uow,
                gateways=app.gateways,
                gateway=gateway,
                payload=payload,
                headers=headers,
                now=app.clock.now(),
            )

    try:
        result = await run_in_threadpool(work)
    except ValidationError as exc:  # the signature, or a signed event out of bounds
        return problem(400, "Webhook refused", str(exc), exc.field)
    return WebhookAck(
        event_id=result.event_id,
        event_type=result.event_type,
        outcome=result.outcome,
        duplicate=result.duplicate,
        payment_id=result.payment_id,
    )

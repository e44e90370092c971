"""``POST /api/v1/payments``: record a payment, exactly once per ``Idempotency-Key``.

The first answer to a key is stored (``idempotency_records``, per token); sending the same key
and body again replays that answer, status and body, without recording anything. The same key
with a different body is refused (422 naming the header). The payment itself is also keyed in
the ledger by the token and the key, so a crash between the payment and the stored answer still
cannot credit the wallet twice.
"""

from __future__ import annotations

import hashlib
import json
from typing import Annotated, Any

from fastapi import APIRouter, Header, Request
from fastapi.responses import JSONResponse
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from ispbill.adapters.db.models import IdempotencyRecord
from ispbill.domain.money import Money
from ispbill.entrypoints.api.auth import Caller, Principal
from ispbill.entrypoints.api.deps import container
from ispbill.entrypoints.api.errors import ApiProblem, call, documented
from ispbill.entrypoints.api.routes.customers import visible_customer
from ispbill.entrypoints.api.schemas import Amount, PaymentIn, PaymentOut
from ispbill.services.payments import NewPayment, Recorded, record_payment

router = APIRouter(prefix="/api/v1/payments", tags=["payments"])
KEY_HEADER = "Idempotency-Key"
ROUTE = "POST /api/v1/payments"


def request_hash(body: PaymentIn) -> str:
    canonical = json.dumps(body.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def payment_out(recorded: Recorded) -> PaymentOut:
    p = recorded.payment
    return PaymentOut(
        id=p.id,
        customer_id=p.customer_id,
        amount=Amount.of(Money(p.amount_minor, p.currency)),
        method=p.method,
        reference=p.reference,
        received_at=p.received_at,
        recorded_at=p.recorded_at,
        applied_to_invoices=Amount.of(recorded.applied),
    )


def stored(caller: Principal, key: str, digest: str, record: IdempotencyRecord) -> JSONResponse:
    if record.method_path != ROUTE or record.request_hash != digest:
        raise ApiProblem(
            422,
            f"{KEY_HEADER}: {key!r} was already used for a different request",
            field=KEY_HEADER,
            rule="reused with a different body",
        )
    return JSONResponse(record.body, status_code=record.status)


@router.post(
    "",
    response_model=PaymentOut,
    status_code=201,
    responses=documented(401, 403, 404, 409),
)
async def create_payment(
    body: PaymentIn,
    request: Request,
    caller: Caller,
    idempotency_key: Annotated[
        str,
        Header(
            alias=KEY_HEADER,
            min_length=1,
            max_length=120,
            description="Unique per payment; a retry with the same key replays the answer.",
        ),
    ],
) -> Any:
    """Credit a customer's wallet; the engine re-evaluates the customer at once."""
    app = container(request)
    key = idempotency_key.strip()
    digest = request_hash(body)

    def find() -> IdempotencyRecord | None:
        with app.uow() as uow:
            return uow.session.scalars(
                select(IdempotencyRecord).where(
                    IdempotencyRecord.token_id == caller.token_id, IdempotencyRecord.key == key
                )
            ).one_or_none()

    def work() -> tuple[int, dict[str, Any]]:
        now = app.clock.now()
        with app.uow() as uow:  # a read first: the payment's own transaction begins writing
            visible_customer(uow.session, caller, body.customer_id)
        with app.uow() as uow:
            recorded = record_payment(
                uow,
                spec=NewPayment(
                    customer=str(body.customer_id),
                    amount=body.amount,
                    currency=body.currency.upper(),
                    method=body.method,
                    reference=body.reference,
                    idempotency_key=f"api:{caller.token_id}:{key}",
                    received_at=body.received_at,
                ),
                now=now,
                actor=caller.actor,
            )
            answer = payment_out(recorded).model_dump(mode="json")
        with app.uow() as uow:
            uow.session.add(
                IdempotencyRecord(
                    key=key,
                    token_id=caller.token_id,
                    method_path=ROUTE,
                    request_hash=digest,
                    status=201,
                    body=answer,
                    created_at=now,
                )
            )
            try:
                uow.commit()
            except IntegrityError:  # a concurrent request with the same key stored first
                uow.session.rollback()
        return 201, answer

    existing = await call(find)
    if existing is not None:
        return stored(caller, key, digest, existing)
    status, answer = await call(work)
    winner = await call(find)
    if winner is not None:
        return stored(caller, key, digest, winner)
    return JSONResponse(answer, status_code=status)

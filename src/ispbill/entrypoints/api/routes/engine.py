"""``POST /api/v1/ticks``: run the billing engine at an instant (admin only). The dry run of
one customer is ``GET /api/v1/customers/{id}/preview``."""

from __future__ import annotations

from datetime import timedelta

from fastapi import APIRouter, Request

from ispbill.entrypoints.api.auth import Admin
from ispbill.entrypoints.api.deps import container
from ispbill.entrypoints.api.errors import ApiProblem, call
from ispbill.entrypoints.api.schemas import SkippedCustomerOut, TickIn, TickOut
from ispbill.use_cases.billing.tick import TickReport, tick

router = APIRouter(prefix="/api/v1/ticks", tags=["engine"])
# How far ahead of the clock a tick or a preview may look. The engine catches up on everything
# due up to the instant, so an instant decades ahead would be a long, meaningless run.
HORIZON = timedelta(days=400)


def within_horizon(instant: timedelta, field: str) -> None:
    if instant > HORIZON:
        raise ApiProblem(
            422,
            f"{field}: at most {HORIZON.days} days after now",
            field=field,
            rule=f"at most {HORIZON.days} days ahead",
        )


@router.post("", response_model=TickOut)
async def run_tick(body: TickIn, request: Request, caller: Admin) -> TickOut:
    """Everything due up to ``at`` happens, exactly once (a repeat finds nothing due)."""
    app = container(request)
    now = body.at or app.clock.now()
    within_horizon(now - app.clock.now(), "at")

    def work() -> TickReport:
        return tick(
            app.uow_factory,
            now=now,
            chunk_size=body.chunk_size,
            actor=caller.actor,
            gateways=app.gateways,
        )

    report = await call(work)
    return TickOut(
        now=report.now,
        customers=report.customers,
        services=report.services,
        charges=report.charges,
        invoices=report.invoices,
        cards_expired=report.cards_expired,
        transitions=dict(report.transitions),
        skipped=[
            SkippedCustomerOut(customer_id=one.customer_id, stage=one.stage, error=one.error)
            for one in report.skipped
        ],
    )

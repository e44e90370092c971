"""The billing engine's runs (admin only): ``POST /api/v1/ticks`` queues a run of the scheduled
tick (202, its id) and ``GET /api/v1/ticks/{id}`` tells its state; ``POST /api/v1/ticks/run``
runs the engine at an instant and answers with its report when done. The dry run of one customer
is ``GET /api/v1/customers/{id}/preview``."""

from __future__ import annotations

from dataclasses import asdict
from datetime import timedelta
from typing import Annotated

from fastapi import APIRouter, Path, Request, Response

from ispbill.adapters.db.lookups import MAX_ID
from ispbill.entrypoints.api.auth import Admin
from ispbill.entrypoints.api.deps import container
from ispbill.entrypoints.api.errors import ApiProblem, call
from ispbill.entrypoints.api.schemas import SkippedCustomerOut, TickIn, TickOut, TickRunOut
from ispbill.entrypoints.jobs.tasks import request_tick as request_run
from ispbill.use_cases.billing.tick import TickReport, tick
from ispbill.use_cases.billing.tick_runs import TickRunView, run_of

router = APIRouter(prefix="/api/v1/ticks", tags=["engine"])
# How far ahead of the clock a tick or a preview may look. The engine catches up on everything
# due up to the instant, so an instant decades ahead would be a long, meaningless run.
HORIZON = timedelta(days=400)
RunId = Annotated[int, Path(ge=1, le=MAX_ID)]


def within_horizon(instant: timedelta, field: str) -> None:
    if instant > HORIZON:
        raise ApiProblem(
            422,
            f"{field}: at most {HORIZON.days} days after now",
            field=field,
            rule=f"at most {HORIZON.days} days ahead",
        )


def run_out(run: TickRunView) -> TickRunOut:
    return TickRunOut(**asdict(run))


@router.post("", response_model=TickRunOut, status_code=202)
async def request_tick(request: Request, response: Response, caller: Admin) -> TickRunOut:
    """Queue a run of the tick up to now: a worker (PostgreSQL) or the in-process scheduler
    (SQLite) plans it, cuts the customers into ranges and ticks each; poll ``Location``."""
    app = container(request)
    run = await call(lambda: request_run(app, actor=caller.actor))
    response.headers["Location"] = f"/api/v1/ticks/{run.id}"
    return run_out(run)


@router.get("/{run_id}", response_model=TickRunOut)
async def get_tick(run_id: RunId, request: Request, caller: Admin) -> TickRunOut:
    """A run's state (queued, running, succeeded, failed) and its figures so far."""
    app = container(request)

    def read() -> TickRunView:
        with app.uow() as uow:
            return run_of(uow, run_id)

    return run_out(await call(read))


@router.post("/run", response_model=TickOut)
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

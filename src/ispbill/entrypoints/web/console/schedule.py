"""The engine's schedule in the console (``/console/schedule``): the periodic tasks and their
periods, this process's background loop, the last runs of the tick, and the failed jobs with a
retry button (PostgreSQL's procrastinate jobs; on SQLite a failed run is run again)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

from ispbill.adapters.db.unit_of_work import UnitOfWork
from ispbill.adapters.job_queue import job_records
from ispbill.adapters.job_queue.job_deferral import jobs_enabled
from ispbill.domain.errors import NotFound
from ispbill.entrypoints.jobs import tasks
from ispbill.entrypoints.pages import app_of, redirect
from ispbill.entrypoints.web.common import Staff, form_of, staff_page, work
from ispbill.entrypoints.web.session import require_admin, require_global
from ispbill.use_cases.billing import tick_runs

router = APIRouter(prefix="/console", include_in_schema=False)


@router.get("/schedule")
async def schedule_page(request: Request, staff: Staff) -> Response:
    require_global(staff)
    app = app_of(request)

    def read(uow: UnitOfWork, _now: datetime) -> dict[str, Any]:
        jobs = jobs_enabled(uow.session)
        return {
            "jobs": jobs,
            "periodic": tasks.schedule(app.settings, jobs=jobs),
            "runs": tick_runs.last_runs(uow, limit=20),
            "failed_jobs": job_records.failed_jobs(uow.session),
            "job_counts": job_records.job_counts(uow.session),
            "background": [(s.name, s.state()) for s in app.background.values()],
        }

    context = await work(request, read)
    return staff_page(request, staff, "console/schedule.html", context)


@router.post("/schedule/tick")
async def request_tick(request: Request, staff: Staff) -> Response:
    """Queue a run of the tick, as ``POST /api/v1/ticks`` does (admin only)."""
    require_admin(staff)
    await form_of(request)
    app = app_of(request)
    await work(request, lambda _uow, _now: tasks.request_tick(app, actor=staff.actor))
    return redirect(request, "/console/schedule")


@router.post("/schedule/jobs/{job_id}/retry")
async def retry_job(job_id: int, request: Request, staff: Staff) -> Response:
    """Queue a failed job again (admin only)."""
    require_admin(staff)
    await form_of(request)

    def retry(uow: UnitOfWork, _now: datetime) -> None:
        if not job_records.retry_failed(uow.session, job_id):
            raise NotFound("failed job", job_id, field="job_id")
        uow.commit()

    await work(request, retry)
    return redirect(request, "/console/schedule")

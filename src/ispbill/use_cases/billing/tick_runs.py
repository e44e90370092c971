"""The scheduled tick: a run is planned, cut into ranges of customer ids, and each range is
ticked in a job of its own; ``tick_runs`` keeps the record of every run on both databases.

A run is queued (asked for through the API or the console) or starts at once (the schedule's
periodic plan). ``plan_run`` fixes the instant the run ticks up to (the clock's now, so after
downtime the next plan catches up on everything due, once), cuts the customers into ranges and
hands them to ``defer`` in the plan's own transaction (PostgreSQL: one ``tick_range`` job each,
``entrypoints/jobs/tasks.py``) or returns them to be ticked in the caller's process (SQLite's
in-process scheduler). ``tick_range`` ticks one range and adds its report to the run's figures;
a range ticked again (a retried job) finds nothing due: charges and ledger keys are unique.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import select

from ispbill.adapters.db import event_log as events
from ispbill.adapters.db.models import Customer, TickRun
from ispbill.adapters.db.unit_of_work import UnitOfWork
from ispbill.adapters.payments.gateway import PaymentGateway
from ispbill.domain.errors import NotFound, ValidationError
from ispbill.domain.ranges import IdRange, cut
from ispbill.use_cases.billing.tick import TickReport, tick

QUEUED, RUNNING, SUCCEEDED, FAILED = "queued", "running", "succeeded", "failed"
SCHEDULE, REQUEST = "schedule", "request"
DEFAULT_RANGE_SIZE = 1000
ERROR_MAX = 500
COUNTED = "ranges_counted"  # in a run's figures: the ranges already added up

UowFactory = Callable[[], UnitOfWork]
# what the plan does with its ranges in its own transaction (PostgreSQL: defers their jobs)
Deferrer = Callable[[UnitOfWork, int, list[IdRange], datetime], None]


@dataclass(frozen=True)
class TickRunView:
    id: int
    trigger: str
    requested_by: str
    requested_at: datetime
    status: str
    job_id: int | None
    now: datetime | None
    started_at: datetime | None
    finished_at: datetime | None
    ranges_total: int | None
    ranges_done: int
    ranges_failed: int
    figures: dict[str, Any] = field(default_factory=dict)
    last_error: str | None = None


@dataclass(frozen=True)
class PlannedRun:
    run_id: int
    now: datetime
    ranges: list[IdRange]


def request_run(uow: UnitOfWork, *, now: datetime, actor: str) -> TickRun:
    """A queued run (in the caller's transaction, which commits it): the API's and the
    console's "tick now". Its plan job is deferred by the caller in the same transaction."""
    row = TickRun(
        trigger=REQUEST,
        requested_by=actor[:200],
        requested_at=now,
        status=QUEUED,
        ranges_done=0,
        ranges_failed=0,
        figures={},
    )
    uow.session.add(row)
    uow.session.flush()
    events.record(
        uow,
        now=now,
        actor=actor,
        kind="tick.requested",
        subject_type="tick_run",
        subject_id=row.id,
        reason="a tick was asked for",
    )
    return row


def set_job(uow: UnitOfWork, run_id: int, job_id: int | None) -> None:
    run = uow.session.get(TickRun, run_id)
    if run is not None:
        run.job_id = job_id


def plan_run(
    uow_factory: UowFactory,
    *,
    now: datetime,
    actor: str,
    run_id: int | None = None,
    range_size: int = DEFAULT_RANGE_SIZE,
    defer: Deferrer | None = None,
) -> PlannedRun:
    """Start a run (the queued ``run_id``, or a new scheduled one): fix its instant, cut the
    customers into ranges of ``range_size`` ids and ``defer`` them, all in one transaction."""
    if range_size < 1:
        raise ValidationError("tick_range_size", "must be at least 1")
    with uow_factory() as uow:
        uow.begin_write()
        if run_id is None:
            run = TickRun(
                trigger=SCHEDULE,
                requested_by=actor[:200],
                requested_at=now,
                status=QUEUED,
                ranges_done=0,
                ranges_failed=0,
                figures={},
            )
            uow.session.add(run)
            uow.session.flush()
        else:
            found = uow.session.get(TickRun, run_id)
            if found is None:
                raise NotFound("tick run", run_id, field="run_id")
            run = found
            if run.status != QUEUED:  # a retried plan job: the first one planned it
                return PlannedRun(run.id, run.now or now, [])
        ids = list(uow.session.scalars(select(Customer.id).order_by(Customer.id)))
        ranges = cut(ids, range_size)
        run.status = RUNNING if ranges else SUCCEEDED
        run.now = now
        run.started_at = now
        run.ranges_total = len(ranges)
        if not ranges:
            run.finished_at = now
        # a requested run's plan is an event (someone asked for it); the schedule's, every
        # minute, is recorded by its tick_runs row only, not 1,440 events a day
        if run.trigger == REQUEST:
            _planned_event(uow, run, now=now, actor=actor, ranges=len(ranges), customers=len(ids))
        if defer is not None and ranges:
            defer(uow, run.id, ranges, now)
        uow.commit()
        return PlannedRun(run.id, now, ranges)


def _planned_event(
    uow: UnitOfWork, run: TickRun, *, now: datetime, actor: str, ranges: int, customers: int
) -> None:
    events.record(
        uow,
        now=now,
        actor=actor,
        kind="tick.planned",
        subject_type="tick_run",
        subject_id=run.id,
        reason=f"{ranges} range(s) of customers",
        figures={"at": now.isoformat(), "ranges": ranges, "customers": customers},
    )


def tick_range(
    uow_factory: UowFactory,
    *,
    run_id: int | None,
    within: IdRange,
    now: datetime,
    actor: str,
    gateways: Mapping[str, PaymentGateway] | None = None,
) -> TickReport:
    """Tick one range of customers up to ``now``; add its report to the run's figures."""
    report = tick(uow_factory, now=now, actor=actor, gateways=gateways, within=within)
    if run_id is not None:
        with uow_factory() as uow:
            uow.begin_write()
            _count(uow, run_id, within=within, failed=False, figures=figures_of(report), now=now)
            uow.commit()
    return report


def range_failed(
    uow_factory: UowFactory, *, run_id: int, within: IdRange, error: str, now: datetime
) -> None:
    """A range whose job gave up: the run ends failed once every range is accounted for."""
    with uow_factory() as uow:
        uow.begin_write()
        _count(
            uow, run_id, within=within, failed=True, figures={}, now=now, error=error[:ERROR_MAX]
        )
        uow.commit()


def plan_failed(uow_factory: UowFactory, *, run_id: int, error: str, now: datetime) -> None:
    with uow_factory() as uow:
        uow.begin_write()
        run = uow.session.get(TickRun, run_id)
        if run is not None and run.status in (QUEUED, RUNNING):
            run.status = FAILED
            run.finished_at = now
            run.last_error = error[:ERROR_MAX]
        uow.commit()


def _count(
    uow: UnitOfWork,
    run_id: int,
    *,
    within: IdRange,
    failed: bool,
    figures: dict[str, Any],
    now: datetime,
    error: str | None = None,
) -> None:
    """Count one range once in its run: the run's row is locked (ranges finish side by side on
    several workers), and a range already counted (a job retried after its first attempt
    committed) is not counted again."""
    query = select(TickRun).where(TickRun.id == run_id).execution_options(populate_existing=True)
    if uow.dialect == "postgresql":
        query = query.with_for_update()
    run = uow.session.scalars(query).first()
    if run is None:
        return
    key = f"{within.low}-{within.high}"
    counted = list((run.figures or {}).get(COUNTED, []))
    if key in counted:
        return
    merged = merge_figures({k: v for k, v in (run.figures or {}).items() if k != COUNTED}, figures)
    merged[COUNTED] = [*counted, key]
    run.figures = merged
    if failed:
        run.ranges_failed += 1
        run.last_error = error
    else:
        run.ranges_done += 1
    if run.ranges_total is not None and run.ranges_done + run.ranges_failed >= run.ranges_total:
        run.status = FAILED if run.ranges_failed else SUCCEEDED
        run.finished_at = now


def figures_of(report: TickReport) -> dict[str, Any]:
    return {
        "customers": report.customers,
        "services": report.services,
        "charges": report.charges,
        "invoices": report.invoices,
        "cards_expired": report.cards_expired,
        "skipped": len(report.skipped),
        "transitions": dict(report.transitions),
        "collections": dict(report.collections),
    }


def merge_figures(total: Mapping[str, Any], more: Mapping[str, Any]) -> dict[str, Any]:
    """Sums, key by key (nested counts too)."""
    merged: dict[str, Any] = dict(total)
    for key, value in more.items():
        if isinstance(value, Mapping):
            merged[key] = merge_figures(merged.get(key) or {}, value)
        elif isinstance(value, int):
            merged[key] = int(merged.get(key) or 0) + int(value)
    return merged


def view(row: TickRun) -> TickRunView:
    return TickRunView(
        id=row.id,
        trigger=row.trigger,
        requested_by=row.requested_by,
        requested_at=row.requested_at,
        status=row.status,
        job_id=row.job_id,
        now=row.now,
        started_at=row.started_at,
        finished_at=row.finished_at,
        ranges_total=row.ranges_total,
        ranges_done=row.ranges_done,
        ranges_failed=row.ranges_failed,
        figures=dict(row.figures or {}),
        last_error=row.last_error,
    )


def run_of(uow: UnitOfWork, run_id: int) -> TickRunView:
    row = uow.session.get(TickRun, run_id)
    if row is None:
        raise NotFound("tick run", run_id, field="id")
    return view(row)


def last_runs(uow: UnitOfWork, *, limit: int = 20) -> list[TickRunView]:
    rows = uow.session.scalars(select(TickRun).order_by(TickRun.id.desc()).limit(limit))
    return [view(row) for row in rows]


def queued_runs(uow: UnitOfWork, *, limit: int = 10) -> list[int]:
    """Requested runs nobody planned yet (SQLite's scheduler plans them in its process)."""
    return list(
        uow.session.scalars(
            select(TickRun.id).where(TickRun.status == QUEUED).order_by(TickRun.id).limit(limit)
        )
    )

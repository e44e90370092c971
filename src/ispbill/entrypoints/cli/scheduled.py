"""CLI for scheduled changes (issue 17): ``services schedule-change|schedule-termination|
scheduled|cancel-change`` (use case: ``use_cases/billing/scheduled_changes.py``).
Registered by ``main.py``."""

from __future__ import annotations

from typing import Any

import typer

from ispbill.entrypoints.cli.base import (
    ACTOR,
    emit,
    emit_object,
    find,
    parse_day,
    unit_of_work,
)
from ispbill.use_cases.billing import scheduled_changes as scheduled
from ispbill.use_cases.catalog.name_lookups import plan_id_of, service_id_of

JSON = typer.Option(False, "--json", help="Print JSON instead of a table.")


def row_of(v: scheduled.ScheduledView) -> dict[str, Any]:
    return {
        "id": v.id,
        "service": v.service_id,
        "kind": v.kind,
        "plan": v.plan,
        "effective_on": v.effective_on,
        "last_day": v.last_day,
        "due_at": v.due_at,
        "status": v.status,
        "reason": v.reason,
        "note": v.note,
    }


def services_schedule_change(
    service: str = typer.Argument(..., help="Service id."),
    plan: str = typer.Argument(..., help="The new plan's id or name."),
    on: str | None = typer.Option(
        None, "--on", help="The new plan's first day (default: the end of the current period)."
    ),
    reason: str = typer.Option("", "--reason", help="Why (kept with the event)."),
    as_json: bool = JSON,
) -> None:
    """Plan a plan change for the end of the period or a future day; the tick carries it out."""
    with unit_of_work() as (uow, now):
        done = scheduled.schedule_plan_change(
            uow,
            service_id=find(service_id_of, service),
            plan_id=find(plan_id_of, plan),
            on=parse_day(on, "on"),
            now=now,
            actor=ACTOR,
            reason=reason,
        )
    emit_object(row_of(done), as_json=as_json, title=f"Scheduled change {done.id}")


def services_schedule_termination(
    service: str = typer.Argument(..., help="Service id."),
    on: str | None = typer.Option(
        None, "--on", help="The service's last day (default: today, which counts as used)."
    ),
    at_period_end: bool = typer.Option(
        False, "--at-period-end", help="The last day of the current period."
    ),
    reason: str = typer.Option("", "--reason", help="Why (kept with the event)."),
    as_json: bool = JSON,
) -> None:
    """Plan a termination: the service ends after its last day; the tick carries it out."""
    with unit_of_work() as (uow, now):
        done = scheduled.schedule_termination(
            uow,
            service_id=find(service_id_of, service),
            last_day=parse_day(on, "on"),
            at_period_end=at_period_end,
            now=now,
            actor=ACTOR,
            reason=reason,
        )
    emit_object(row_of(done), as_json=as_json, title=f"Scheduled termination {done.id}")


def services_scheduled(
    service: str = typer.Argument(..., help="Service id."),
    as_json: bool = JSON,
) -> None:
    """A service's scheduled changes, newest first (planned, done, cancelled, failed)."""
    with unit_of_work() as (uow, _):
        rows = scheduled.list_scheduled(uow, service_id=find(service_id_of, service))
    emit([row_of(r) for r in rows], as_json=as_json, title=f"Scheduled changes of {service}")


def services_cancel_change(
    change: int = typer.Argument(..., help="The scheduled change's id."),
    reason: str = typer.Option("", "--reason", help="Why (kept with the event)."),
    as_json: bool = JSON,
) -> None:
    """Cancel a planned change before it happens."""
    with unit_of_work() as (uow, now):
        done = scheduled.cancel_scheduled(
            uow, change_id=change, now=now, actor=ACTOR, reason=reason
        )
    emit_object(row_of(done), as_json=as_json, title=f"Scheduled change {done.id}")


def register(services_app: typer.Typer) -> None:
    services_app.command("schedule-change")(services_schedule_change)
    services_app.command("schedule-termination")(services_schedule_termination)
    services_app.command("scheduled")(services_scheduled)
    services_app.command("cancel-change")(services_cancel_change)

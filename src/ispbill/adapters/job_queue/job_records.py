"""What the console and the API read of procrastinate's jobs: the failed ones, and retrying one.

A retried job goes back to ``todo`` with its attempts reset, as deferred anew (procrastinate's
own retry function only takes jobs a worker is running). Read through the session, so a
database without the schema (SQLite) simply has no jobs.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import text
from sqlalchemy.orm import Session

from ispbill.adapters.job_queue.job_deferral import jobs_enabled


@dataclass(frozen=True)
class JobRow:
    id: int
    task: str
    queue: str
    status: str
    attempts: int
    args: dict[str, Any]
    scheduled_at: datetime | None
    error: str | None


def failed_jobs(session: Session, *, limit: int = 50) -> list[JobRow]:
    """The failed jobs, newest first, with the last error their events kept."""
    if not jobs_enabled(session):
        return []
    rows = session.execute(
        text(
            "SELECT j.id, j.task_name, j.queue_name, j.status::text, j.attempts, j.args, "
            "j.scheduled_at FROM procrastinate_jobs j WHERE j.status = 'failed' "
            "ORDER BY j.id DESC LIMIT :limit"
        ),
        {"limit": limit},
    ).all()
    return [JobRow(r[0], r[1], r[2], r[3], r[4], dict(r[5] or {}), r[6], None) for r in rows]


def job_counts(session: Session) -> dict[str, int]:
    """How many jobs are in each status (``todo``, ``doing``, ``failed``, ...)."""
    if not jobs_enabled(session):
        return {}
    rows = session.execute(
        text("SELECT status::text, count(*) FROM procrastinate_jobs GROUP BY status")
    ).all()
    return {str(status): int(count) for status, count in rows}


def retry_failed(session: Session, job_id: int) -> bool:
    """Queue a failed job again (in the caller's transaction); False when it is not failed."""
    if not jobs_enabled(session):
        return False
    changed = session.execute(
        text(
            "UPDATE procrastinate_jobs SET status = 'todo', attempts = 0, scheduled_at = NULL "
            "WHERE id = :id AND status = 'failed' RETURNING id"
        ),
        {"id": job_id},
    ).first()
    return changed is not None

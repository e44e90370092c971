"""Deferring procrastinate jobs with SQL on the unit of work's own connection, so the job and
the state change that causes it commit together (or not at all).

The outboxes (the CoA commands and the customer e-mail) say, on the session, that this
transaction wrote to them (``adapters/db/outbox.mark_written``); ``defer_outbox_jobs``, one of
bootstrap's pre-commit steps, then defers one ``deliver_coa`` or ``send_mail`` job per new row,
through procrastinate's own SQL function ``procrastinate_defer_jobs_v1`` (procrastinate 3.x).
On SQLite, or on a PostgreSQL database without procrastinate's schema, nothing is deferred:
the in-process scheduler drains the outboxes there.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import text
from sqlalchemy.orm import Session

from ispbill.adapters.db.models import Notification, OutboxCommand
from ispbill.adapters.db.outbox import CHANNEL as COA_CHANNEL
from ispbill.adapters.db.outbox import MAIL_CHANNEL, written_channels
from ispbill.adapters.db.unit_of_work import UnitOfWork
from ispbill.adapters.job_queue.procrastinate_app import schema_installed

DELIVER_COA = "deliver_coa"
SEND_MAIL = "send_mail"
TICK_PLAN = "tick_plan"
TICK_RANGE = "tick_range"
COA_QUEUE = "coa"
MAIL_QUEUE = "mail"
TICK_QUEUE = "tick"

# one job per pending, never attempted row that has no job waiting yet: the rows this
# transaction wrote, and any a database without the schema left behind
_DEFER_FOR_ROWS = """
SELECT coalesce(array_length(procrastinate_defer_jobs_v1(ARRAY(
    SELECT ROW(CAST(:queue AS varchar), CAST(:task AS varchar), 0, NULL, NULL,
               jsonb_build_object(CAST(:arg AS text), t.id), NULL)
           ::procrastinate_job_to_defer_v1
    FROM {table} t
    WHERE t.status = 'pending' AND t.attempts = 0
      AND NOT EXISTS (
          SELECT 1 FROM procrastinate_jobs j
          WHERE j.task_name = CAST(:task AS varchar) AND j.status IN ('todo', 'doing')
            AND j.args = jsonb_build_object(CAST(:arg AS text), t.id)
      )
    ORDER BY t.id
)), 1), 0)
"""

_OUTBOXES = (
    (COA_CHANNEL, OutboxCommand.__tablename__, COA_QUEUE, DELIVER_COA, "command_id"),
    (MAIL_CHANNEL, Notification.__tablename__, MAIL_QUEUE, SEND_MAIL, "notification_id"),
)


def jobs_enabled(session: Session) -> bool:
    """Whether this database runs procrastinate (PostgreSQL with its schema installed)."""
    connection = session.connection()
    cached = session.info.get("ispbill_jobs_enabled")
    if cached is None:
        cached = schema_installed(connection)
        session.info["ispbill_jobs_enabled"] = cached
    return bool(cached)


def defer_outbox_jobs(uow: UnitOfWork) -> None:
    """Bootstrap's pre-commit step: a job for each outbox row this transaction wrote."""
    channels = written_channels(uow.session)
    if not channels or uow.dialect != "postgresql" or not jobs_enabled(uow.session):
        return
    uow.session.flush()
    for channel, table, queue, task, arg in _OUTBOXES:
        if channel in channels:
            uow.session.execute(
                text(_DEFER_FOR_ROWS.format(table=table)),
                {"queue": queue, "task": task, "arg": arg},
            )


def defer_outbox_backlog(session: Session) -> int:
    """Jobs for every pending, never attempted outbox row without one (the sweeper's safety
    net); returns how many were deferred."""
    if not jobs_enabled(session):
        return 0
    deferred = 0
    for _channel, table, queue, task, arg in _OUTBOXES:
        deferred += int(
            session.scalar(
                text(_DEFER_FOR_ROWS.format(table=table)),
                {"queue": queue, "task": task, "arg": arg},
            )
            or 0
        )
    return deferred


def defer(
    session: Session,
    task: str,
    args: dict[str, Any],
    *,
    queue: str,
    lock: str | None = None,
    queueing_lock: str | None = None,
    scheduled_at: datetime | None = None,
) -> int | None:
    """One job in the session's transaction; its id. With a ``queueing_lock`` already held by
    a waiting job, nothing is deferred and the answer is None."""
    if queueing_lock is not None:
        waiting = session.scalar(
            text(
                "SELECT 1 FROM procrastinate_jobs WHERE queueing_lock = CAST(:q AS text) "
                "AND status = 'todo'"
            ),
            {"q": queueing_lock},
        )
        if waiting:
            return None
    job_id = session.scalar(
        text(
            "SELECT (procrastinate_defer_jobs_v1(ARRAY[ROW(CAST(:queue AS varchar), "
            "CAST(:task AS varchar), 0, CAST(:lock AS text), CAST(:qlock AS text), "
            "CAST(:args AS jsonb), CAST(:at AS timestamptz))::procrastinate_job_to_defer_v1]))[1]"
        ),
        {
            "queue": queue,
            "task": task,
            "lock": lock,
            "qlock": queueing_lock,
            "args": json.dumps(args),
            "at": scheduled_at,
        },
    )
    return None if job_id is None else int(job_id)


def defer_many(
    session: Session, task: str, args: Sequence[dict[str, Any]], *, queue: str
) -> list[int]:
    """Several jobs of one task in the session's transaction, in one statement."""
    if not args:
        return []
    ids = session.scalar(
        text(
            "SELECT procrastinate_defer_jobs_v1(ARRAY(SELECT ROW(CAST(:queue AS varchar), "
            "CAST(:task AS varchar), 0, NULL, NULL, "
            "a, NULL)::procrastinate_job_to_defer_v1 FROM jsonb_array_elements(CAST(:args AS "
            "jsonb)) AS a))"
        ),
        {"queue": queue, "task": task, "args": json.dumps(list(args))},
    )
    return list(ids or [])


def defer_retry(session: Session, channel: str, row_id: int) -> int | None:
    """A job for an outbox row a delivery left pending (a NAS that did not answer, a relay
    that was down), scheduled at the row's next attempt: the retry waits for its back-off,
    not for the sweeper. Nothing when the row is no longer pending."""
    for outbox_channel, table, queue, task, arg in _OUTBOXES:
        if outbox_channel == channel:
            ids = session.scalar(
                text(
                    "SELECT procrastinate_defer_jobs_v1(ARRAY("
                    "SELECT ROW(CAST(:queue AS varchar), CAST(:task AS varchar), 0, NULL, NULL, "
                    "jsonb_build_object(CAST(:arg AS text), t.id), t.next_attempt_at)"
                    f"::procrastinate_job_to_defer_v1 FROM {table} t "
                    "WHERE t.id = :id AND t.status = 'pending'))"
                ),
                {"queue": queue, "task": task, "arg": arg, "id": row_id},
            )
            return int(ids[0]) if ids else None
    raise ValueError(f"no outbox on channel {channel!r}")

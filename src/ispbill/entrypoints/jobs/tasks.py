"""The background work, as plain task functions that call use cases.

The same functions run in two ways (docs/architecture.md, "Runtime"):

* on PostgreSQL, as procrastinate jobs (``queue_worker.py``): ``tick_plan`` periodically, which
  defers one ``tick_range`` job per range of customer ids in its own transaction; one
  ``deliver_coa`` job per CoA command and one ``send_mail`` per e-mail, deferred in the
  transaction that wrote the row (``adapters/job_queue/job_deferral``); and the periodic
  maintenance below;
* on SQLite (the embedded default), from the in-process scheduler (``scheduler.py``), which calls
  them on their periods in one process: ``tick_plan`` ticks its ranges itself, and
  ``sweep_outboxes`` drains both outboxes.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from ispbill.adapters.db.outbox import CHANNEL as COA_CHANNEL
from ispbill.adapters.db.unit_of_work import UnitOfWork
from ispbill.adapters.job_queue import job_deferral
from ispbill.adapters.radius.coa import CoaSender
from ispbill.bootstrap import App
from ispbill.domain.radius import CommandStatus
from ispbill.domain.ranges import IdRange
from ispbill.settings import Settings
from ispbill.use_cases.admin import retention
from ispbill.use_cases.billing import tick_runs
from ispbill.use_cases.billing.tick import TickReport
from ispbill.use_cases.network import enforcement, usage
from ispbill.use_cases.notifications import mail_outbox
from ispbill.use_cases.notifications.mail_outbox import Mailer
from ispbill.use_cases.payments.refill_cards import expire_cards
from ispbill.use_cases.payments.top_ups import request_due_top_ups

ACTOR = "engine:schedule"
PENDING = CommandStatus.PENDING.value  # a notification's too
log = logging.getLogger(__name__)


@dataclass
class Runtime:
    """What the tasks need: the bootstrapped app, the NAS sender and the SMTP relay (None
    when none is configured: e-mail then waits in its outbox), and whether jobs are deferred
    to procrastinate (PostgreSQL with its schema) or run here."""

    app: App
    coa: CoaSender
    mailer: Mailer | None
    portal_url: str
    jobs: bool = False
    ticked: list[TickReport] = field(default_factory=list)  # the last plan's, in-process

    @property
    def now(self) -> datetime:
        return self.app.clock.now()


def _defer_ranges(uow: UnitOfWork, run_id: int, ranges: list[IdRange], now: datetime) -> None:
    job_deferral.defer_many(
        uow.session,
        job_deferral.TICK_RANGE,
        [{"run_id": run_id, "low": r.low, "high": r.high, "now": now.isoformat()} for r in ranges],
        queue=job_deferral.TICK_QUEUE,
    )


def tick_plan(rt: Runtime, run_id: int | None = None) -> tick_runs.PlannedRun:
    """Plan a run up to now (the queued ``run_id``, or a new scheduled one). With jobs, its
    ranges become ``tick_range`` jobs in the plan's transaction; without, they are ticked here,
    one after the other."""
    planned = tick_runs.plan_run(
        rt.app.uow_factory,
        now=rt.now,
        actor=ACTOR,
        run_id=run_id,
        range_size=rt.app.settings.tick_range_size,
        defer=_defer_ranges if rt.jobs else None,
    )
    if not rt.jobs:
        rt.ticked = []
        for within in planned.ranges:
            try:
                rt.ticked.append(
                    tick_range(rt, planned.run_id, within.low, within.high, planned.now)
                )
            except Exception as exc:
                log.exception(
                    "tick run %s: range %s..%s failed", planned.run_id, within.low, within.high
                )
                tick_runs.range_failed(
                    rt.app.uow_factory,
                    run_id=planned.run_id,
                    within=within,
                    error=_error(exc),
                    now=rt.now,
                )
    return planned


def tick_range(rt: Runtime, run_id: int | None, low: int, high: int, now: datetime) -> TickReport:
    """Tick the customers with ids in low..high up to ``now`` (the plan's instant)."""
    return tick_runs.tick_range(
        rt.app.uow_factory,
        run_id=run_id,
        within=IdRange(low, high),
        now=now,
        actor=ACTOR,
        gateways=rt.app.gateways,
    )


def deliver_coa(rt: Runtime, command_id: int) -> str:
    """Deliver one CoA command to the NAS (if it is still due); left pending (no final answer
    yet), its retry is a job scheduled at the command's next attempt."""
    delivery = enforcement.deliver_command(
        rt.app.uow_factory, rt.coa, command_id, now=rt.now, retry=coa_retry(rt)
    )
    # sent and left pending (no final answer), or not sent for a busy NAS: due again later
    if delivery.status in (PENDING, enforcement.BUSY) and rt.jobs:
        _retry_later(rt, COA_CHANNEL, command_id)
    return delivery.status


def coa_retry(rt: Runtime) -> enforcement.RetryPolicy:
    return enforcement.RetryPolicy.from_settings(rt.app.settings)


def _retry_later(rt: Runtime, channel: str, row_id: int) -> None:
    # only after an attempt: a row "not due" (leased elsewhere, or early) is the sweeper's,
    # so a job never chases a row it cannot take
    with rt.app.uow() as uow:
        job_deferral.defer_retry(uow.session, channel, row_id)
        uow.commit()


def send_mail(rt: Runtime, notification_id: int) -> str:
    """Send one customer e-mail (if it is still due and a relay is configured)."""
    if rt.mailer is None:
        return "no relay"
    outcome = mail_outbox.send_notification(
        rt.app.uow_factory, rt.mailer, notification_id, now=rt.now, portal_url=rt.portal_url
    )
    if outcome is None:
        return "not due"
    if outcome.status == PENDING and rt.jobs:
        _retry_later(rt, mail_outbox.CHANNEL, notification_id)
    return outcome.status


def sweep_outboxes(rt: Runtime) -> int:
    """Deliver what is due in both outboxes (retries, and everything on SQLite); with jobs,
    also defer a job for any new row that has none (a safety net: rows are deferred when
    written). Returns how many rows were worked on or deferred."""
    done = enforcement.process_due(rt.app.uow_factory, rt.coa, now=rt.now, retry=coa_retry(rt))
    if rt.mailer is not None:
        done += mail_outbox.process_due(
            rt.app.uow_factory, rt.mailer, now=rt.now, portal_url=rt.portal_url
        )
    if rt.jobs:
        with rt.app.uow() as uow:
            done += job_deferral.defer_outbox_backlog(uow.session)
            uow.commit()
    return done


def reset_fup_periods(rt: Runtime) -> int:
    """Lift the FUP limits of finished periods (their CoA commands follow as jobs)."""
    with rt.app.uow() as uow:
        return usage.reset_finished_periods(uow, now=rt.now, actor=ACTOR)


def expire_refill_cards(rt: Runtime) -> int:
    with rt.app.uow() as uow:
        return expire_cards(uow, now=rt.now, actor=ACTOR).cards


def retry_top_ups(rt: Runtime) -> int:
    """Automatic top-ups: new triggers and due retries."""
    if not rt.app.gateways:
        return 0
    report = request_due_top_ups(
        rt.app.uow_factory, now=rt.now, gateways=rt.app.gateways, actor=ACTOR
    )
    return report.requested + report.retried


def purge_retention(rt: Runtime) -> int:
    """Delete what is past its retention age (``use_cases/admin/retention.py``: sign-in and
    redemption attempts, expired sessions and sign-in links, idempotency records, delivered
    outbox rows; never money or events); how many rows went."""
    with rt.app.uow() as uow:
        counts = retention.purge_expired(
            uow, rt.now, retention.RetentionAges.from_settings(rt.app.settings)
        )  # commits
    return sum(counts.values())


def queued_ticks(rt: Runtime) -> int:
    """Plan the runs asked for through the API or the console (the in-process scheduler's;
    with jobs, each request defers its own plan job)."""
    with rt.app.uow() as uow:
        waiting = tick_runs.queued_runs(uow)
    for run_id in waiting:
        tick_plan(rt, run_id)
    return len(waiting)


def request_tick(app: App, *, actor: str) -> tick_runs.TickRunView:
    """Queue a run of the tick (the API's ``POST /api/v1/ticks``, the console's button): with
    jobs, its ``tick_plan`` job is deferred in the same transaction; without, the in-process
    scheduler plans it within a second."""
    with app.uow() as uow:
        uow.begin_write()
        run = tick_runs.request_run(uow, now=app.clock.now(), actor=actor)
        if job_deferral.jobs_enabled(uow.session):
            job_id = job_deferral.defer(
                uow.session,
                job_deferral.TICK_PLAN,
                {"run_id": run.id},
                queue=job_deferral.TICK_QUEUE,
                lock="tick_plan",
            )
            tick_runs.set_job(uow, run.id, job_id)
        uow.commit()
        return tick_runs.view(run)


def _error(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {' '.join(str(exc).split())}"[: tick_runs.ERROR_MAX]


@dataclass(frozen=True)
class Periodic:
    """A task the schedule runs every ``period_s`` seconds, with what it does."""

    name: str
    period_s: int
    doc: str


def schedule(settings: Settings, *, jobs: bool) -> list[Periodic]:
    """The periodic tasks and their periods (the console's schedule page shows this list)."""
    return [
        Periodic(
            "tick_plan", settings.tick_every_s, "plan a tick: one tick_range per customer range"
        ),
        Periodic(
            "sweep_outboxes", 60 if jobs else 1, "deliver due CoA commands and e-mail (retries)"
        ),
        Periodic("reset_fup_periods", 60, "lift FUP limits of finished periods"),
        Periodic("expire_refill_cards", settings.maintenance_every_s, "expire refill cards"),
        Periodic(
            "purge_retention",
            settings.maintenance_every_s,
            "delete what is past its retention age (never money or events)",
        ),
        Periodic(
            "retry_top_ups", settings.maintenance_every_s, "automatic top-ups and their retries"
        ),
    ]


RUNNERS: dict[str, Callable[[Runtime], object]] = {
    "tick_plan": tick_plan,
    "sweep_outboxes": sweep_outboxes,
    "reset_fup_periods": reset_fup_periods,
    "expire_refill_cards": expire_refill_cards,
    "retry_top_ups": retry_top_ups,
    "purge_retention": purge_retention,
    "queued_ticks": queued_ticks,
}

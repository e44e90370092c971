"""The task functions of ``tasks.py`` as procrastinate tasks, and the worker that runs them
(PostgreSQL: ``ispbill worker``, and ``ispbill serve`` unless ``--no-background``).

* ``tick_plan`` (a request's, with its run id) and ``scheduled_tick_plan`` (periodic, every
  ``tick_every_s``) share the lock ``tick_plan``: one plan runs at a time. The periodic one also
  has a queueing lock, so a plan waiting in the queue is never joined by another; after
  downtime the first plan ticks everything due up to now, once.
* ``tick_range`` is retried with exponential back-off; a range ticked again finds nothing due
  (unique charges and ledger keys). When its last attempt fails the run records the failure.
* ``deliver_coa`` and ``send_mail`` are deferred by the transaction that wrote the row.
* ``sweep_outboxes``, ``reset_fup_periods`` every minute; card expiry, top-ups and the
  retention purge hourly.

A worker that loses its database (a restart, a network cut) logs it, backs off (1 s doubling to
30 s) and starts again; its ``LoopStatus`` says so for health.

A worker that dies (``kill -9``, a lost machine) or whose connection was cut leaves its jobs in
``doing``; ``retry_stalled_jobs`` (every ``STALLED_CHECK_S``) puts the jobs of workers whose
heartbeat (every 10 s) is older than ``STALLED_AFTER_S`` back in the queue, where another worker
takes them: every task is safe to run again (tests/integration/test_runtime_proofs.py).
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Awaitable, Callable, Iterable
from datetime import datetime

import procrastinate
from procrastinate import JobContext, RetryStrategy
from procrastinate.app import WorkerOptions

from ispbill.adapters.job_queue import job_deferral
from ispbill.adapters.job_queue.procrastinate_app import new_app, probe
from ispbill.bootstrap import LoopStatus
from ispbill.domain.ranges import IdRange
from ispbill.entrypoints.jobs import tasks
from ispbill.entrypoints.jobs.tasks import Runtime
from ispbill.use_cases.billing import tick_runs

log = logging.getLogger(__name__)
RANGE_ATTEMPTS = 5
PLAN_LOCK = "tick_plan"
BACKOFF_MAX_S = 30.0
STALLED_CHECK_S = 15
STALLED_AFTER_S = 30.0  # procrastinate's own stalled-worker timeout: three missed heartbeats


def cron_every(seconds: int) -> str:
    """A cron line for "every ``seconds``": a seconds step under a minute, else minutes."""
    if seconds < 60:
        return f"* * * * * */{seconds}"
    if seconds >= 3600:
        hours = min(seconds // 3600, 23)
        return "0 * * * *" if hours == 1 else f"0 */{hours} * * *"
    minutes = seconds // 60
    return "* * * * *" if minutes == 1 else f"*/{minutes} * * * *"


def build(rt: Runtime, *, periodic_tasks: bool = True) -> procrastinate.App:
    """A procrastinate app whose tasks run ``tasks.py`` with ``rt`` (without the periodic
    schedule when ``periodic_tasks`` is off: the tests defer what they run)."""
    app = new_app(rt.app.settings.database_url)
    settings = rt.app.settings

    @app.task(name=job_deferral.TICK_PLAN, queue=job_deferral.TICK_QUEUE, lock=PLAN_LOCK)
    def tick_plan(run_id: int) -> None:
        try:
            tasks.tick_plan(rt, run_id)
        except Exception as exc:
            tick_runs.plan_failed(rt.app.uow_factory, run_id=run_id, error=str(exc), now=rt.now)
            raise

    @app.task(
        name="scheduled_tick_plan",
        queue=job_deferral.TICK_QUEUE,
        lock=PLAN_LOCK,
        queueing_lock="scheduled_tick_plan",
    )
    def scheduled_tick_plan(timestamp: int) -> None:
        tasks.tick_plan(rt)

    if periodic_tasks:
        app.periodic(cron=cron_every(settings.tick_every_s), periodic_id="schedule")(
            scheduled_tick_plan
        )

    @app.task(
        name=job_deferral.TICK_RANGE,
        queue=job_deferral.TICK_QUEUE,
        pass_context=True,
        retry=RetryStrategy(max_attempts=RANGE_ATTEMPTS, exponential_wait=2),
    )
    def tick_range(context: JobContext, run_id: int, low: int, high: int, now: str) -> None:
        try:
            tasks.tick_range(rt, run_id, low, high, datetime.fromisoformat(now))
        except Exception as exc:
            job = context.job
            if job.attempts >= RANGE_ATTEMPTS:  # the last one: the run records the failure
                tick_runs.range_failed(
                    rt.app.uow_factory,
                    run_id=run_id,
                    within=IdRange(low, high),
                    error=str(exc),
                    now=rt.now,
                )
            raise

    @app.task(
        name=job_deferral.DELIVER_COA,
        queue=job_deferral.COA_QUEUE,
        retry=RetryStrategy(max_attempts=3, exponential_wait=2),
    )
    def deliver_coa(command_id: int) -> None:
        tasks.deliver_coa(rt, command_id)

    @app.task(
        name=job_deferral.SEND_MAIL,
        queue=job_deferral.MAIL_QUEUE,
        retry=RetryStrategy(max_attempts=3, exponential_wait=2),
    )
    def send_mail(notification_id: int) -> None:
        tasks.send_mail(rt, notification_id)

    def periodic(name: str, seconds: int) -> None:
        runner = tasks.RUNNERS[name]

        def run(timestamp: int) -> None:
            runner(rt)

        run.__name__ = name
        task = app.task(name=name, queue="default", queueing_lock=name)(run)
        if periodic_tasks:
            app.periodic(cron=cron_every(seconds), periodic_id=name)(task)

    stalled = app.task(
        name="retry_stalled_jobs", queue="default", queueing_lock="retry_stalled_jobs"
    )(retry_stalled_jobs_of(app))
    if periodic_tasks:
        app.periodic(cron=cron_every(STALLED_CHECK_S), periodic_id="retry_stalled_jobs")(stalled)
    periodic("sweep_outboxes", 60)
    periodic("reset_fup_periods", 60)
    periodic("expire_refill_cards", settings.maintenance_every_s)
    periodic("retry_top_ups", settings.maintenance_every_s)
    periodic("purge_retention", settings.maintenance_every_s)
    return app


def retry_stalled_jobs_of(app: procrastinate.App) -> Callable[[int], Awaitable[int]]:
    """The periodic task that re-queues the jobs of dead workers, on ``app``."""

    async def retry_stalled_jobs(timestamp: int) -> int:
        jobs = list(await app.job_manager.get_stalled_jobs(seconds_since_heartbeat=STALLED_AFTER_S))
        for job in jobs:
            log.warning(
                "job %s[%s] of a stalled worker goes back to the queue", job.task_name, job.id
            )
            await app.job_manager.retry_job(job)
        return len(jobs)

    return retry_stalled_jobs


async def work(
    app: procrastinate.App,
    *,
    status: LoopStatus,
    concurrency: int = 1,
    queues: Iterable[str] | None = None,
    wait: bool = True,
    stop: threading.Event | None = None,
    polling_s: float = 5.0,
    database_url: str,
) -> None:
    """Run the worker until stopped (or, without ``wait``, until the queues are empty);
    a lost database is logged and retried after a back-off, never the end of the worker."""
    stop = stop or threading.Event()
    backoff = 1.0
    status.running = True
    try:
        while not stop.is_set():
            try:
                await probe(database_url)
                async with app.open_async():
                    status.error = None
                    options: WorkerOptions = {
                        "concurrency": concurrency,
                        "wait": wait,
                        "fetch_job_polling_interval": polling_s,
                        "install_signal_handlers": False,
                    }
                    if queues:
                        options["queues"] = list(queues)
                    runner = asyncio.create_task(app.run_worker_async(**options))
                    while not runner.done():
                        if stop.is_set():
                            runner.cancel()
                        await asyncio.wait({runner}, timeout=0.5)
                    if not runner.cancelled():
                        runner.result()  # raises what ended the worker
                backoff = 1.0
                if not wait:
                    return
            except asyncio.CancelledError:
                return
            except Exception as exc:
                status.error = f"{type(exc).__name__}: {' '.join(str(exc).split())}"[:300]
                log.warning("worker: %s; retrying in %.0f s", status.error, backoff)
                for _ in range(int(backoff * 2)):
                    if stop.is_set():
                        return
                    await asyncio.sleep(0.5)
                backoff = min(backoff * 2, BACKOFF_MAX_S)
    finally:
        status.running = False
        status.stopped = True


def run(
    rt: Runtime,
    *,
    status: LoopStatus,
    concurrency: int = 1,
    queues: Iterable[str] | None = None,
    wait: bool = True,
    stop: threading.Event | None = None,
) -> None:
    """``work`` on an event loop of its own (the command's, or a thread's)."""
    asyncio.run(
        work(
            build(rt),
            status=status,
            concurrency=concurrency,
            queues=queues,
            wait=wait,
            stop=stop,
            database_url=rt.app.settings.database_url,
        )
    )

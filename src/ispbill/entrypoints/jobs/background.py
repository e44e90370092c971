"""A process's background work: procrastinate's worker on PostgreSQL, the in-process
scheduler on SQLite (``ispbill serve`` in a thread, ``ispbill worker`` in the foreground)."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable

from ispbill.adapters.job_queue.procrastinate_app import jobs_available
from ispbill.adapters.mail import SmtpMailer
from ispbill.adapters.radius.coa import PyradSender
from ispbill.bootstrap import App, LoopStatus
from ispbill.entrypoints.jobs import queue_worker
from ispbill.entrypoints.jobs.scheduler import Scheduler
from ispbill.entrypoints.jobs.tasks import Runtime

log = logging.getLogger(__name__)


def portal_url(app: App) -> str:
    return f"{app.settings.public_base_url.rstrip('/')}/portal"


def runtime(app: App) -> Runtime:
    """The tasks' runtime for ``app``: the NAS sender, the SMTP relay when one is set."""
    return Runtime(
        app=app,
        coa=PyradSender(),
        mailer=SmtpMailer(app.settings) if app.settings.smtp_host else None,
        portal_url=portal_url(app),
        jobs=jobs_available(app.settings.database_url),
    )


def run(
    rt: Runtime,
    stop: threading.Event,
    *,
    concurrency: int = 1,
    queues: Iterable[str] | None = None,
) -> None:
    """Run the background work of ``rt`` until ``stop``; its status is in ``app.background``."""
    if rt.jobs:
        status = rt.app.background.setdefault("worker", LoopStatus("worker"))
        queue_worker.run(rt, status=status, concurrency=concurrency, queues=queues, stop=stop)
    else:
        status = rt.app.background.setdefault("scheduler", LoopStatus("scheduler"))
        Scheduler(rt, status=status).run(stop)


def start(rt: Runtime, stop: threading.Event) -> threading.Thread:
    """``run`` in a daemon thread, started: ``ispbill serve``'s background."""
    name = "worker" if rt.jobs else "scheduler"
    rt.app.background.setdefault(name, LoopStatus(name))
    thread = threading.Thread(target=run, args=(rt, stop), name=name, daemon=True)
    thread.start()
    log.info("background %s running", name)
    return thread

"""The mail sender job: delivers the customer e-mail outbox through the SMTP relay until
stopped.

Each pass claims and sends the due messages (``mail_outbox.process_due``); idle, it waits for
the NOTIFY a queued message sends at commit (PostgreSQL) or polls every ``poll_s``.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import datetime

from ispbill.entrypoints.jobs.waiting import Waiter
from ispbill.use_cases.network.enforcement import RetryPolicy
from ispbill.use_cases.notifications.mail_outbox import (
    CHANNEL,
    MAIL_RETRY,
    Mailer,
    UowFactory,
    process_due,
)


def run_sender(
    uow_factory: UowFactory,
    mailer: Mailer,
    *,
    clock: Callable[[], datetime],
    portal_url: str,
    stop: threading.Event | None = None,
    once: bool = False,
    retry: RetryPolicy = MAIL_RETRY,
    poll_s: float = 5.0,
    database_url: str = "",
) -> int:
    """Send until ``stop`` is set (or, with ``once``, until nothing is due now); how many
    messages were tried. Idle, it waits for a NOTIFY on ``CHANNEL`` when ``database_url`` is
    PostgreSQL (a queued message goes out at once), else it polls every ``poll_s``."""
    stop = stop or threading.Event()
    total = 0
    waiter = None if once else Waiter(database_url, poll_s, CHANNEL)
    try:
        while not stop.is_set():
            now = clock()
            done = process_due(uow_factory, mailer, now=now, portal_url=portal_url, retry=retry)
            total += done
            if once and done == 0:
                break
            if waiter is not None and done == 0:
                waiter.wait(stop)
    finally:
        if waiter is not None:
            waiter.close()
    return total


def thread(
    uow_factory: UowFactory,
    mailer: Mailer,
    *,
    clock: Callable[[], datetime],
    portal_url: str,
    database_url: str,
    stop: threading.Event,
) -> threading.Thread:
    """The job as a daemon thread (not started), stopped by ``stop``: ``ispbill serve``'s."""
    return threading.Thread(
        target=run_sender,
        kwargs={
            "uow_factory": uow_factory,
            "mailer": mailer,
            "clock": clock,
            "portal_url": portal_url,
            "stop": stop,
            "database_url": database_url,
        },
        name="mail",
        daemon=True,
    )

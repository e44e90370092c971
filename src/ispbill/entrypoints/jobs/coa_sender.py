"""The CoA sender job: delivers the enforcement outbox to the NAS until stopped.

Each pass claims and delivers the due commands (``enforcement.process_due``); idle, it waits
for the NOTIFY the use cases' commands send at commit (PostgreSQL) or polls. Every
``reset_every_s`` it also lifts the FUP limits of finished periods
(``usage.reset_finished_periods``), whose CoA commands it then delivers.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import datetime

from ispbill.adapters.db.outbox import CHANNEL
from ispbill.adapters.radius.coa import CoaSender
from ispbill.entrypoints.jobs.waiting import Waiter
from ispbill.use_cases.network import usage
from ispbill.use_cases.network.enforcement import ACTOR, RetryPolicy, UowFactory, process_due


def run_worker(
    uow_factory: UowFactory,
    sender: CoaSender,
    *,
    clock: Callable[[], datetime],
    database_url: str,
    stop: threading.Event | None = None,
    once: bool = False,
    retry: RetryPolicy | None = None,
    poll_s: float = 0.5,
    reset_every_s: float = 60.0,
) -> int:
    """Deliver commands until ``stop`` is set (or, with ``once``, until nothing is due now).
    Also lifts FUP limits of finished periods every ``reset_every_s``. Returns how many
    deliveries were made."""
    stop = stop or threading.Event()
    retry = retry or RetryPolicy()
    total = 0
    last_reset = 0.0
    waiter = None if once else Waiter(database_url, poll_s, CHANNEL)
    try:
        while not stop.is_set():
            if time.monotonic() - last_reset >= reset_every_s:
                with uow_factory() as uow:
                    usage.reset_finished_periods(uow, now=clock(), actor=ACTOR)
                last_reset = time.monotonic()
            done = process_due(uow_factory, sender, now=clock(), retry=retry)
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
    sender: CoaSender,
    *,
    clock: Callable[[], datetime],
    database_url: str,
    stop: threading.Event,
    retry: RetryPolicy | None = None,
) -> threading.Thread:
    """The job as a daemon thread (not started), stopped by ``stop``: ``ispbill serve``'s."""
    return threading.Thread(
        target=run_worker,
        kwargs={
            "uow_factory": uow_factory,
            "sender": sender,
            "clock": clock,
            "database_url": database_url,
            "stop": stop,
            "retry": retry,
        },
        name="outbox",
        daemon=True,
    )

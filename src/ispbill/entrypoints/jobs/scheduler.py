"""The in-process scheduler: the embedded (SQLite) default's background work, in one process.

Not a job queue: a loop that calls the task functions of ``tasks.py`` on their periods
(``tasks.schedule``), the requested ticks as soon as they are queued, and the outboxes every
second. A task that raises is logged, retried after a back-off (doubling up to its period) and
never ends the loop; the loop's ``LoopStatus`` is what health reports. ``ispbill serve`` runs it
in a thread, ``ispbill worker`` in the foreground.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from ispbill.bootstrap import LoopStatus
from ispbill.entrypoints.jobs import tasks
from ispbill.entrypoints.jobs.tasks import Runtime

log = logging.getLogger(__name__)
POLL_S = 1.0


@dataclass
class Entry:
    name: str
    period_s: float
    run: Callable[[Runtime], object]
    next_at: float = 0.0
    failures: int = 0
    last_error: str | None = None


class Scheduler:
    def __init__(
        self,
        rt: Runtime,
        *,
        status: LoopStatus | None = None,
        monotonic: Callable[[], float] = time.monotonic,
        poll_s: float = POLL_S,
    ) -> None:
        self.rt = rt
        self.status = status or LoopStatus("scheduler")
        self.monotonic = monotonic
        self.poll_s = poll_s
        # the runs asked for first (within a second), then the schedule
        self.entries = [Entry("queued_ticks", poll_s, tasks.queued_ticks)]
        self.entries += [
            Entry(p.name, float(p.period_s), tasks.RUNNERS[p.name])
            for p in tasks.schedule(rt.app.settings, jobs=rt.jobs)
        ]

    def run_due(self) -> list[str]:
        """Run every entry whose time has come; the names of those that ran."""
        ran: list[str] = []
        for entry in self.entries:
            now = self.monotonic()
            if now < entry.next_at:
                continue
            ran.append(entry.name)
            try:
                entry.run(self.rt)
            except Exception as exc:
                entry.failures += 1
                entry.last_error = f"{type(exc).__name__}: {exc}"[:300]
                delay = min(entry.period_s, 2.0 ** min(entry.failures, 10))
                entry.next_at = self.monotonic() + delay
                log.exception("scheduler: %s failed (retry in %.0f s)", entry.name, delay)
                continue
            entry.failures = 0
            entry.last_error = None
            entry.next_at = now + entry.period_s
        errors = [f"{e.name}: {e.last_error}" for e in self.entries if e.last_error]
        self.status.error = "; ".join(errors) or None
        self.status.beats += 1
        return ran

    def run(self, stop: threading.Event) -> None:
        self.status.running = True
        try:
            while not stop.is_set():
                self.run_due()
                stop.wait(self.poll_s)
        except BaseException as exc:
            self.status.error = f"{type(exc).__name__}: {exc}"
            raise
        finally:
            self.status.running = False
            self.status.stopped = True

    def thread(self, stop: threading.Event) -> threading.Thread:
        return threading.Thread(target=self.run, args=(stop,), name="scheduler", daemon=True)

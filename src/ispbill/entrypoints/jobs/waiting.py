"""Idle time of a job: until a NOTIFY on its channel (PostgreSQL) or the poll interval."""

from __future__ import annotations

import threading
import time

from ispbill.adapters.db.listen import Listener, listener

STOP_CHECK_S = 0.5  # how often a waiting job looks at its stop event


class Waiter:
    """Sleeps until a NOTIFY on ``channel`` (PostgreSQL) or the poll interval (SQLite)."""

    def __init__(self, database_url: str, poll_s: float, channel: str) -> None:
        self.poll_s = poll_s
        self._listener: Listener | None = listener(database_url, channel)

    def wait(self, stop: threading.Event) -> None:
        if self._listener is None:
            stop.wait(self.poll_s)
            return
        # in slices, so a long poll interval still lets ``stop`` end the loop within a slice
        deadline = time.monotonic() + self.poll_s
        while not stop.is_set() and (left := deadline - time.monotonic()) > 0:
            if self._listener.notified(timeout=min(left, STOP_CHECK_S)):
                break
        self._listener.drain()

    def close(self) -> None:
        if self._listener is not None:
            self._listener.close()

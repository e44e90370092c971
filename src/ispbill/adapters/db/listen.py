"""PostgreSQL LISTEN: hearing the NOTIFY an outbox's writer sends at commit.

The CoA outbox (``outbox.CHANNEL``) and the e-mail outbox notify their channel in the
transaction that queues a row, so PostgreSQL delivers the wake-up when (and only if) it
commits. A listener holds a connection of its own, in autocommit, outside SQLAlchemy's pool.
SQLite has no such thing: its senders poll (``listener`` answers ``None``).
"""

from __future__ import annotations

import psycopg
from sqlalchemy.engine import make_url


class Listener:
    """A connection listening on ``channel``."""

    def __init__(self, database_url: str, channel: str) -> None:
        url = make_url(database_url).set(drivername="postgresql")
        self._connection = psycopg.connect(
            url.render_as_string(hide_password=False), autocommit=True
        )
        self._connection.execute(f"LISTEN {channel}")

    def notified(self, timeout: float) -> bool:
        """Whether a notification arrives within ``timeout`` seconds."""
        return any(True for _ in self._connection.notifies(timeout=timeout, stop_after=1))

    def drain(self) -> None:
        """Forget what else has arrived: one pass of the sender serves them all."""
        for _ in self._connection.notifies(timeout=0.001):
            pass

    def close(self) -> None:
        self._connection.close()


def listener(database_url: str, channel: str) -> Listener | None:
    """A listener on PostgreSQL; ``None`` on SQLite, whose senders poll."""
    if not database_url.startswith(("postgresql", "postgres")):
        return None
    return Listener(database_url, channel)

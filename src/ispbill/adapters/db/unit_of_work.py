"""Unit of work: one database transaction per use case (cosmicpython).

A use case opens it, reads and writes through ``session`` and calls ``commit``; leaving the
block without commit rolls everything back, so a failure half-way writes nothing
(ARCHITECTURE invariant 5).
"""

from __future__ import annotations

from types import TracebackType
from typing import Self

from sqlalchemy.orm import Session, sessionmaker


class UnitOfWork:
    session: Session

    def __init__(self, session_factory: sessionmaker[Session]) -> None:
        self._session_factory = session_factory

    def __enter__(self) -> Self:
        self.session = self._session_factory()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        # close() rolls back what was not committed and detaches objects without expiring them,
        # so a caller can still print what a committed use case returned.
        self.session.close()

    def begin_write(self) -> None:
        """Start a transaction that will write: on SQLite take the write lock up front
        (BEGIN IMMEDIATE) so a reader-turned-writer cannot fail on a stale snapshot."""
        if self.dialect == "sqlite":
            self.session.connection(execution_options={"sqlite_begin": "BEGIN IMMEDIATE"})

    def commit(self) -> None:
        self.session.commit()

    @property
    def dialect(self) -> str:
        return self.session.get_bind().dialect.name

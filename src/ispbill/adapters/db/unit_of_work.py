"""Unit of work: one database transaction per use case (cosmicpython).

A use case opens it, reads and writes through ``session`` and calls ``commit``; leaving the
block without commit rolls everything back, so a failure half-way writes nothing
(ARCHITECTURE invariant 5).

It also carries what the transaction's effects still need before it commits. A use case that
changes what a service may do on the network marks that service's precomputed RADIUS answer
stale (``use_cases/network/access_changes.py``; the answers are rlm_sql's fast path), and
``commit`` runs the pre-commit steps it was built with, in order, before the database commits:
the composition root (``bootstrap.BEFORE_COMMIT``) gives the one that rebuilds the stale
answers, so they can never disagree with the committed state. A commit that would leave marked
answers unrebuilt is refused: a unit of work built without that step is a wiring error, not a
reason to serve stale answers.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from types import TracebackType
from typing import Self

from sqlalchemy.orm import Session, sessionmaker


@dataclass
class StaleAnswers:
    """Services whose precomputed RADIUS answers this transaction changed (``None``: every
    service's, after a ``radius_*`` setting), and the latest instant of those changes."""

    service_ids: set[int] | None
    now: datetime


class UnitOfWork:
    session: Session
    stale_answers: StaleAnswers | None = None
    # Writes a store asks to make as the transaction's very last statements, by name (one
    # each): rows every writer shares (the system accounts' cached balances, ledger_store) are
    # then locked for the instant before the commit, not for the whole use case.
    last_steps: dict[str, tuple[int, Callable[[UnitOfWork], None]]]

    def __init__(
        self,
        session_factory: sessionmaker[Session],
        *,
        before_commit: Sequence[Callable[[UnitOfWork], None]] = (),
    ) -> None:
        self._session_factory = session_factory
        self._before_commit = tuple(before_commit)

    def __enter__(self) -> Self:
        self.session = self._session_factory()
        self.stale_answers = None
        self.last_steps = {}
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

    def mark_answers_stale(self, service_ids: Iterable[int] | None, now: datetime) -> None:
        """These services' precomputed RADIUS answers (``None``: every service's) must be
        rebuilt before this transaction commits."""
        stale = self.stale_answers
        if stale is None:
            self.stale_answers = StaleAnswers(
                None if service_ids is None else set(service_ids), now
            )
            return
        stale.now = max(stale.now, now)
        if service_ids is None or stale.service_ids is None:
            stale.service_ids = None
        else:
            stale.service_ids.update(service_ids)

    def last_step(self, name: str, step: Callable[[UnitOfWork], None], *, order: int) -> None:
        """Run ``step`` once, just before this transaction commits, after every other write;
        the steps go by ``order`` (the order their rows are locked in everywhere, so two
        committers cannot deadlock)."""
        self.last_steps.setdefault(name, (order, step))

    def commit(self) -> None:
        """Run the pre-commit steps (after the use case's last write) and the stores' last
        steps, then commit."""
        for step in self._before_commit:
            step(self)
        if self.stale_answers is not None:
            raise RuntimeError(
                "RADIUS answers were marked stale but no pre-commit step rebuilt them: build "
                "the unit of work with bootstrap's BEFORE_COMMIT steps"
            )
        steps, self.last_steps = self.last_steps, {}
        for _order, last in sorted(steps.values(), key=lambda pair: pair[0]):
            last(self)
        self.session.commit()

    @property
    def dialect(self) -> str:
        return self.session.get_bind().dialect.name

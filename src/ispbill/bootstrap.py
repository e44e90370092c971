"""Wires settings, database, clock and adapters; the only place a real clock is created.

Every unit of work is built here with the pre-commit steps of ``BEFORE_COMMIT``: the effects a
use case collects on its unit of work that must happen in its transaction, after its last write
(docs/architecture.md, "Effects").
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from ispbill.adapters.db.engine import make_engine, make_session_factory
from ispbill.adapters.db.unit_of_work import UnitOfWork
from ispbill.adapters.job_queue import job_deferral
from ispbill.adapters.payments import build_gateways
from ispbill.adapters.payments.gateway import PaymentGateway
from ispbill.clock import Clock, FileClock, SystemClock
from ispbill.settings import Settings
from ispbill.use_cases.network import radius_answers

# What ``uow.commit()`` does before the database commits, in order: rebuild the precomputed
# RADIUS answers (FreeRADIUS rlm_sql reads them) of the services the transaction marked stale;
# defer the jobs that deliver the outbox rows it wrote (PostgreSQL with procrastinate).
BEFORE_COMMIT = (radius_answers.refresh_stale, job_deferral.defer_outbox_jobs)


@dataclass
class LoopStatus:
    """A background loop of this process (the scheduler, the job worker), as health reports
    it: ``stopped`` once it has ended, ``error`` while it is retrying after a failure."""

    name: str
    running: bool = False
    stopped: bool = False
    error: str | None = None
    beats: int = 0

    def state(self) -> str:
        if self.stopped or not self.running:
            return f"stopped: {self.error}" if self.error else "stopped"
        return f"retrying: {self.error}" if self.error else "running"


@dataclass
class App:
    settings: Settings
    engine: Engine
    session_factory: sessionmaker[Session]
    clock: Clock
    # by name ("sandbox", "stripe"): only the gateways whose settings are present
    gateways: dict[str, PaymentGateway] = field(default_factory=dict)
    # the background loops this process runs (``ispbill serve``), by name, for health
    background: dict[str, LoopStatus] = field(default_factory=dict)

    def uow(self) -> UnitOfWork:
        return UnitOfWork(self.session_factory, before_commit=BEFORE_COMMIT)

    @property
    def uow_factory(self) -> Callable[[], UnitOfWork]:
        return self.uow

    def close(self) -> None:
        self.engine.dispose()


def bootstrap(
    *, database_url: str | None = None, clock: Clock | None = None, settings: Settings | None = None
) -> App:
    settings = settings or Settings()
    if database_url:
        settings = settings.model_copy(update={"database_url": database_url})
    engine = make_engine(settings.database_url)
    clock = clock or default_clock(settings)
    return App(
        settings=settings,
        engine=engine,
        session_factory=make_session_factory(engine),
        clock=clock,
        gateways=build_gateways(settings, clock),
    )


def default_clock(settings: Settings) -> Clock:
    """The real clock, unless a test set ``ISPBILL_CLOCK_FILE`` (clock.FileClock)."""
    return FileClock(Path(settings.clock_file)) if settings.clock_file else SystemClock()

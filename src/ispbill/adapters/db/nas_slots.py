"""Slots per NAS: at most N commands in flight to one NAS, across every sender process.

A NAS answers CoA one packet at a time on modest hardware; a burst (a tick that suspends a
thousand subscribers of one router) must not send it a thousand packets at once, however many
workers deliver the outbox. On PostgreSQL a slot is a transaction-scoped advisory lock
(``pg_try_advisory_xact_lock(hash of the address, slot)``) on a connection held for the send:
the lock takes no row, and it goes when the transaction ends, on purpose or because the sender
died, so a crashed sender never keeps a slot. On SQLite (one process) it is a process-local
semaphore per address.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager

from sqlalchemy import text

from ispbill.adapters.db.unit_of_work import UnitOfWork

_TRY = text("SELECT pg_try_advisory_xact_lock(hashtext(:key), :slot)")
_local: dict[str, threading.BoundedSemaphore] = {}
_local_guard = threading.Lock()


@contextmanager
def nas_slots(
    uow_factory: Callable[[], UnitOfWork], addresses: Iterable[str], limit: int
) -> Iterator[bool]:
    """Hold one of ``limit`` slots of every NAS in ``addresses`` for the block; yields False
    (holding none) when one of them has no free slot."""
    wanted = sorted(set(addresses))
    with uow_factory() as uow:
        if uow.dialect == "postgresql":
            held = all(_take_pg(uow, address, limit) for address in wanted)
            try:
                yield held
            finally:
                uow.session.rollback()  # ends the transaction: its advisory locks go with it
            return
    yield from _local_slots(wanted, limit)


def _take_pg(uow: UnitOfWork, address: str, limit: int) -> bool:
    key = f"ispbill.nas:{address}"
    return any(
        bool(uow.session.execute(_TRY, {"key": key, "slot": slot}).scalar_one())
        for slot in range(limit)
    )


def _local_slots(wanted: list[str], limit: int) -> Iterator[bool]:
    taken: list[threading.BoundedSemaphore] = []
    try:
        for address in wanted:
            with _local_guard:
                semaphore = _local.setdefault(
                    f"{address}/{limit}", threading.BoundedSemaphore(limit)
                )
            if not semaphore.acquire(blocking=False):
                yield False
                return
            taken.append(semaphore)
        yield True
    finally:
        for semaphore in taken:
            semaphore.release()

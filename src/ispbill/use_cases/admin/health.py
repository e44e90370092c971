"""Is the application healthy: its database answers (``GET /api/v1/health``)."""

from __future__ import annotations

from sqlalchemy import text

from ispbill.adapters.db.unit_of_work import UnitOfWork


def ping_database(uow: UnitOfWork) -> None:
    """One trivial round trip; a database that cannot be reached raises."""
    uow.session.execute(text("SELECT 1"))

"""Alembic environment: one migration history for PostgreSQL and SQLite."""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection

from ispbill.adapters.db.engine import make_engine
from ispbill.adapters.db.models import Base

config = context.config
target_metadata = Base.metadata


def ours(obj: object, name: str | None, type_: str, reflected: bool, compare_to: object) -> bool:
    """Alembic compares ispbill's tables only: procrastinate's job tables (PostgreSQL) are
    installed and upgraded by procrastinate's own schema (``adapters/job_queue``)."""
    table = getattr(obj, "table", None)
    owner = name if type_ == "table" else getattr(table, "name", "") or ""
    return not str(owner).startswith("procrastinate_")


def run_migrations_online() -> None:
    url = config.attributes.get("url") or config.get_main_option("sqlalchemy.url")
    if not url:
        raise RuntimeError("no database URL given to Alembic")
    engine = make_engine(url)
    try:
        with engine.connect() as connection:
            sqlite = connection.dialect.name == "sqlite"
            if sqlite:
                _foreign_keys_off(connection)
            context.configure(
                connection=connection,
                target_metadata=target_metadata,
                render_as_batch=sqlite,
                compare_type=True,
                include_object=ours,
            )
            with context.begin_transaction():
                context.run_migrations()
                if sqlite:
                    _check_foreign_keys(connection)
    finally:
        engine.dispose()


def _foreign_keys_off(connection: Connection) -> None:
    """SQLite batch mode rebuilds a table by copy, drop and rename; with foreign keys on, the
    drop of a table other rows point at (``payments``, by allocations) fails. The pragma only
    takes effect outside a transaction, so it is sent on the driver connection before Alembic
    begins; the connection is discarded with the engine afterwards."""
    driver = connection.connection.driver_connection
    assert driver is not None
    driver.execute("PRAGMA foreign_keys=OFF")


def _check_foreign_keys(connection: Connection) -> None:
    """Every foreign key must hold again before the migrations commit (or nothing is kept)."""
    broken = connection.exec_driver_sql("PRAGMA foreign_key_check").all()
    if broken:
        raise RuntimeError(f"migration left rows whose foreign keys do not hold: {broken[:10]}")


run_migrations_online()

"""procrastinate's ``App`` for ispbill's database, and its schema, installed once."""

from __future__ import annotations

import procrastinate
import psycopg
from procrastinate.schema import SchemaManager
from sqlalchemy import Connection, text
from sqlalchemy.engine import make_url

from ispbill.adapters.db.engine import normalize_url

SCHEMA_TABLE = "procrastinate_jobs"
POOL_TIMEOUT_S = 5.0


def conninfo(database_url: str) -> str:
    """The libpq URL psycopg connects with, from ispbill's SQLAlchemy URL."""
    parsed = make_url(normalize_url(database_url))
    return parsed.set(drivername="postgresql").render_as_string(hide_password=False)


def is_postgresql(database_url: str) -> bool:
    return make_url(normalize_url(database_url)).get_backend_name() == "postgresql"


def new_app(database_url: str) -> procrastinate.App:
    """An app (not open) whose connector talks to ``database_url``; tasks are added by the
    entry point that registers them (``entrypoints/jobs/tasks.py``)."""
    # a database that is away fails the pool in seconds (not psycopg's 30), so the worker
    # says so and retries (``entrypoints/jobs/queue_worker.work``)
    connector = procrastinate.PsycopgConnector(
        conninfo=conninfo(database_url), timeout=POOL_TIMEOUT_S, min_size=1, max_size=4
    )
    return procrastinate.App(connector=connector)


def schema_installed(connection: Connection) -> bool:
    if connection.dialect.name != "postgresql":
        return False
    return bool(connection.scalar(text("SELECT to_regclass(:t) IS NOT NULL"), {"t": SCHEMA_TABLE}))


def install_schema(database_url: str) -> bool:
    """Install procrastinate's tables and functions unless they are there (PostgreSQL only;
    its schema cannot be applied twice). Returns whether it installed them."""
    if not is_postgresql(database_url):
        return False
    with psycopg.connect(conninfo(database_url)) as connection:
        found = connection.execute("SELECT to_regclass(%s) IS NOT NULL", (SCHEMA_TABLE,)).fetchone()
        if found and found[0]:
            return False
        connection.execute(SchemaManager.get_schema())  # one transaction, committed on exit
    return True


def jobs_available(database_url: str) -> bool:
    """Whether background work runs as procrastinate jobs: PostgreSQL with the schema
    installed (``ispbill init``), or PostgreSQL that cannot be reached right now. Otherwise
    (SQLite) the in-process scheduler runs it."""
    if not is_postgresql(database_url):
        return False
    try:
        with psycopg.connect(conninfo(database_url), connect_timeout=5) as connection:
            found = connection.execute(
                "SELECT to_regclass(%s) IS NOT NULL", (SCHEMA_TABLE,)
            ).fetchone()
            return bool(found and found[0])
    except psycopg.OperationalError:
        return True  # away for now (a restart): the worker waits for it and reconnects


async def probe(database_url: str, timeout_s: float = POOL_TIMEOUT_S) -> None:
    """One connection and ``SELECT 1``: raises ``psycopg.OperationalError`` within seconds
    when the database is away (the pool would wait its 30 s before saying so)."""
    connection = await psycopg.AsyncConnection.connect(
        conninfo(database_url), connect_timeout=max(1, int(timeout_s))
    )
    async with connection:
        await connection.execute("SELECT 1")

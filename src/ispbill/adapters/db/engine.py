"""Engines for the two supported databases, configured the same way everywhere.

SQLite is the embedded default: foreign keys on, WAL so readers never wait for the writer, a busy
timeout instead of instant "database is locked", and explicit BEGIN so SQLAlchemy's transaction
boundaries (and SAVEPOINTs) are the real ones. PostgreSQL goes through psycopg 3.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

from ispbill.domain.errors import ValidationError


def normalize_url(url: str) -> str:
    """Accept ``postgresql://`` and ``postgres://`` and use psycopg 3 for them."""
    try:
        parsed = make_url(url)
    except Exception as exc:
        raise ValidationError("database_url", f"not a database URL: {url!r}") from exc
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    if parsed.get_backend_name() not in ("postgresql", "sqlite"):
        raise ValidationError("database_url", "only postgresql:// and sqlite:/// are supported")
    return parsed.render_as_string(hide_password=False)


def sqlite_file(url: str) -> str | None:
    """The file a SQLite URL names ("" or ":memory:" for none); None for PostgreSQL."""
    parsed = make_url(normalize_url(url))
    if parsed.get_backend_name() != "sqlite":
        return None
    return parsed.database or ""


def missing_sqlite_file(url: str) -> bool:
    """A SQLite URL whose file does not exist (checking its schema would create it)."""
    path = sqlite_file(url)
    if not path or path == ":memory:":
        return False
    return not path.startswith("file:") and not Path(path).exists()


def make_engine(url: str, **kwargs: Any) -> Engine:
    url = normalize_url(url)
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"timeout": 30}, **kwargs)
        _configure_sqlite(engine)
        return engine
    return create_engine(url, pool_pre_ping=True, **kwargs)


def _configure_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # let SQLAlchemy emit BEGIN itself
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        connection.exec_driver_sql(connection.get_execution_options().get("sqlite_begin", "BEGIN"))


def make_session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)

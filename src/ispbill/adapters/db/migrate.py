"""Create or migrate a database with Alembic, from code (``ispbill init``) or tests."""

from __future__ import annotations

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine

from ispbill.adapters.db.engine import make_engine, normalize_url
from ispbill.adapters.job_queue.procrastinate_app import install_schema

SCRIPT_LOCATION = "ispbill.adapters.db:migrations"


def alembic_config(url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", SCRIPT_LOCATION)
    config.attributes["url"] = normalize_url(url)
    return config


def upgrade(url: str, revision: str = "head") -> None:
    """Migrate to ``revision``; on PostgreSQL also install the job engine's schema (once)."""
    command.upgrade(alembic_config(url), revision)
    install_schema(url)


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def head_revision(url: str) -> str | None:
    return ScriptDirectory.from_config(alembic_config(url)).get_current_head()


def is_up_to_date(url: str) -> bool:
    engine = make_engine(url)
    try:
        return current_revision(engine) == head_revision(url)
    finally:
        engine.dispose()

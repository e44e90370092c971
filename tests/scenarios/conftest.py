"""Fixtures shared by the scenario tests: a second, empty database of the same kind."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from ispbill.adapters.db.migrate import upgrade
from ispbill.adapters.db.models import Base
from ispbill.bootstrap import App, bootstrap
from ispbill.clock import FixedClock

from .helpers import at

T0 = at(2026, 1, 1, 9)


@pytest.fixture(scope="session")
def postgres_twin_url(postgres_url: str) -> Iterator[str]:
    admin_url = os.environ.get(
        "ISPBILL_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
    )
    name = f"{make_url(postgres_url).database}_twin"
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    url = make_url(postgres_url).set(database=name).render_as_string(hide_password=False)
    upgrade(url)
    try:
        yield url
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture
def twin(database_url: str, tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[App]:
    """An empty database of the same kind as ``app``'s."""
    if database_url.startswith("sqlite"):
        target = tmp_path / "twin.db"
        shutil.copyfile(request.getfixturevalue("sqlite_template"), target)
        url = f"sqlite:///{target}"
    else:
        url = request.getfixturevalue("postgres_twin_url")
        engine = create_engine(url)
        tables = ", ".join(f'"{t.name}"' for t in Base.metadata.sorted_tables)
        with engine.begin() as connection:
            connection.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
        engine.dispose()
    application = bootstrap(database_url=url, clock=FixedClock(T0))
    try:
        yield application
    finally:
        application.close()

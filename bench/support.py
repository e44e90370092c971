"""What the benchmark scripts share: throwaway databases, bulk-built rows, a uvicorn server.

Imported as ``from support import ...``: ``python bench/X.py`` puts this folder on sys.path.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import create_engine, insert, text
from sqlalchemy.engine import make_url

from ispbill.adapters.db import ledger_store as ledger
from ispbill.adapters.db.models import Customer, Service
from ispbill.bootstrap import App
from ispbill.domain.ledger import AccountKind, AccountRef, EntryKind, transfer
from ispbill.domain.money import Money
from ispbill.use_cases.catalog import offerings as catalog

PG_ADMIN_URL = os.environ.get(
    "ISPBILL_BENCH_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)
SETUP_AT = datetime(2026, 1, 1, 0, 0, tzinfo=UTC)
TICK_AT = datetime(2026, 2, 1, 0, 0, tzinfo=UTC)
ACTOR = "bench"
BATCH = 5_000


@contextmanager
def postgres_database() -> Iterator[str]:
    """A new, empty PostgreSQL database, dropped afterwards, so no run sees another's rows."""
    name = f"ispbill_bench_{uuid.uuid4().hex[:10]}"
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(PG_ADMIN_URL).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@contextmanager
def fresh_database(kind: str, workdir: Path) -> Iterator[str]:
    """An empty database of ``kind``: a new SQLite file in ``workdir`` or a PostgreSQL one."""
    if kind == "sqlite":
        yield f"sqlite:///{workdir / f'bench-{uuid.uuid4().hex[:8]}.db'}"
        return
    with postgres_database() as url:
        yield url


def add_class_and_plan(
    app: App, class_name: str, plan: catalog.NewPlan, *, now: datetime, actor: str = ACTOR
) -> tuple[int, int]:
    """A customer class and a plan, through the use cases; returns their ids for bulk rows."""
    with app.uow() as uow:
        class_id = catalog.add_class(
            uow, spec=catalog.NewClass(name=class_name), now=now, actor=actor
        ).id
    with app.uow() as uow:
        plan_id = catalog.add_plan(uow, spec=plan, now=now, actor=actor).id
    return class_id, plan_id


def customer_row(
    name: str,
    class_id: int,
    *,
    currency: str,
    reseller_id: int | None = None,
    timezone: str = "UTC",
    locale: str = "en_US",
) -> dict[str, Any]:
    """A prepaid monthly customer as a bulk-insert row, skipping the use case for speed."""
    return {
        "name": name,
        "reseller_id": reseller_id,
        "class_id": class_id,
        "business_model": "internet_access",
        "balance_control": "prepaid",
        "currency": currency,
        "cycle_kind": "monthly",
        "cycle_n": 1,
        "cycle_anchor_day": None,
        "cycle_origin": SETUP_AT.date(),
        "billing_timezone": timezone,
        "locale": locale,
        "credit_limit_minor": None,
        "minimum_balance_minor": 0,
        "invoicing_mode": "forward",
        "use_credit_automatically": True,
        "custom_data": {},
        "status": "active",
        "created_at": SETUP_AT,
    }


def service_row(customer_id: int, plan_id: int) -> dict[str, Any]:
    """Active, January already billed: the tick at February 1 charges February."""
    return {
        "customer_id": customer_id,
        "plan_id": plan_id,
        "active_from": SETUP_AT.date(),
        "state": "active",
        "state_since": SETUP_AT,
        "created_at": SETUP_AT,
        "cycle_origin": SETUP_AT.date(),
        "anchor_day": 1,
        "billed_until": TICK_AT.date(),
        "next_due_at": TICK_AT,
    }


def funds_entry(customer_id: int, amount: Money) -> Any:
    """Opening funds into the customer's wallet, so the charges can be paid from it."""
    return transfer(
        key=f"opening-funds:{customer_id}",
        kind=EntryKind.OPENING_FUNDS,
        debit=AccountRef.system(AccountKind.CASH, amount.currency),
        credit=AccountRef.wallet(customer_id, amount.currency),
        amount=amount,
        effective_at=SETUP_AT,
        memo="bench funds",
        customer_id=customer_id,
    )


def bulk_fill(
    app: App, count: int, plan_id: int, row: Callable[[int], dict[str, Any]], funds: Money
) -> None:
    """``count`` customers (``row(n)``), one service and funds each, in set-based batches.

    The use cases would take hours at 100,000 customers; ANALYZE at the end, as autovacuum
    would in production.
    """
    for first in range(0, count, BATCH):
        numbers = range(first, min(first + BATCH, count))
        with app.uow() as uow:
            session = uow.session
            ids = list(
                session.scalars(
                    insert(Customer).returning(Customer.id, sort_by_parameter_order=True),
                    [row(n) for n in numbers],
                )
            )
            session.execute(insert(Service), [service_row(cid, plan_id) for cid in ids])
            ledger.ensure_accounts(
                session, [AccountRef.wallet(cid, funds.currency) for cid in ids], now=SETUP_AT
            )
            ledger.post_batch(session, [funds_entry(cid, funds) for cid in ids], now=SETUP_AT)
            uow.commit()
    # A live database has planner statistics (autovacuum keeps them); a freshly bulk-loaded
    # one has none, and PostgreSQL then picks plans that are ten times slower. Gather them
    # as autovacuum would, so the measured part runs as it would in production.
    with app.engine.connect() as connection:
        connection.execute(text("ANALYZE"))
        connection.commit()


def free_port(kind: int = socket.SOCK_STREAM) -> int:
    """A loopback port nothing listens on, so parallel runs do not collide."""
    with socket.socket(socket.AF_INET, kind) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextmanager
def uvicorn_server(
    url: str,
    workers: int,
    *,
    port: int | None = None,
    env: dict[str, str] | None = None,
    log: Path | None = None,
) -> Iterator[str]:
    """ispbill's web application under uvicorn on ``url``, as in production; yields its base.

    Waits until ``/api/v1/health`` answers, so no measurement includes the start-up.
    """
    port = port or free_port()
    base = f"http://127.0.0.1:{port}"
    command = [sys.executable, "-m", "uvicorn", "ispbill.entrypoints.asgi_app:application"]
    options = ["--factory", "--host", "127.0.0.1", "--port", str(port)]
    quiet = ["--workers", str(workers), "--log-level", "warning", "--no-access-log"]
    process = subprocess.Popen(
        command + options + quiet,
        env={**os.environ, "ISPBILL_DATABASE_URL": url, **(env or {})},
        stdout=log.open("w") if log else None,
        stderr=subprocess.STDOUT if log else None,
    )
    try:
        _wait_healthy(base, process, log)
        yield base
    finally:
        process.terminate()
        process.wait(timeout=30)


def _wait_healthy(base: str, process: subprocess.Popen[bytes], log: Path | None) -> None:
    """Poll the health route for up to a minute; stop with the server's log if it never answers."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and process.poll() is None:
        try:
            if httpx.get(f"{base}/api/v1/health", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise SystemExit("ispbill did not start" + (f":\n{log.read_text()}" if log else ""))

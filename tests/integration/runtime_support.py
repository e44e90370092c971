"""What the runtime proofs (test_runtime_proofs.py) and bench/tick.py --processes share: a
private PostgreSQL cluster the test may restart, a prepaid customer base written in bulk, the
books compared between two databases, and ``ispbill worker`` processes whose clock the test
moves (ISPBILL_CLOCK_FILE)."""

from __future__ import annotations

import glob
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, insert, select, text
from sqlalchemy.engine import make_url

from ispbill.adapters.db import ledger_store as ledger
from ispbill.adapters.db.models import Customer, Service
from ispbill.bootstrap import App
from ispbill.domain.ledger import AccountKind, AccountRef, EntryKind, transfer
from ispbill.domain.money import Money
from ispbill.use_cases.catalog import offerings as catalog

ISPBILL = Path(sys.executable).with_name("ispbill")
SETUP_AT = datetime(2026, 1, 1, tzinfo=UTC)
FIRST_DAY = datetime(2026, 2, 1, 0, 5, tzinfo=UTC)  # the first simulated day's instant
ACTOR = "proof"
BATCH = 5_000


def postgres_tool(name: str) -> str | None:
    """A PostgreSQL server program (initdb, pg_ctl): on PATH or in Debian's versioned folder."""
    found = shutil.which(name)
    if found:
        return found
    candidates = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    return candidates[-1] if candidates else None


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class PrivateCluster:
    """A PostgreSQL cluster of the test's own (initdb in a temporary folder, a free port), so
    the test can restart it without disturbing the machine's shared server. As root, the
    server programs run as the ``postgres`` OS user (PostgreSQL refuses to run as root)."""

    def __init__(self) -> None:
        initdb, pg_ctl = postgres_tool("initdb"), postgres_tool("pg_ctl")
        assert initdb, "initdb is needed"
        assert pg_ctl, "pg_ctl is needed"
        self.initdb, self.pg_ctl = initdb, pg_ctl
        # /tmp itself, not pytest's tmp_path: the postgres user must reach the folder
        self.base = Path(tempfile.mkdtemp(prefix="ispbill-pg-"))
        self.data = self.base / "data"
        self.log = self.base / "server.log"
        self.port = free_port()
        self.as_postgres = os.geteuid() == 0
        if self.as_postgres:
            shutil.chown(self.base, "postgres", "postgres")
        self._run(self.initdb, "-D", str(self.data), "-A", "trust", "-U", "postgres", "-E", "UTF8")

    def _run(self, *command: str) -> None:
        prefix = ["runuser", "-u", "postgres", "--"] if self.as_postgres else []
        done = subprocess.run(
            [*prefix, *command], capture_output=True, text=True, timeout=120, check=False
        )
        assert done.returncode == 0, f"{command}: {done.stdout}{done.stderr}"

    def _ctl(self, action: str, *extra: str) -> None:
        options = (
            f"-p {self.port} -k {self.base} -c listen_addresses=127.0.0.1 -c fsync=off "
            "-c synchronous_commit=off -c full_page_writes=off -c max_connections=200"
        )
        self._run(
            self.pg_ctl,
            "-D",
            str(self.data),
            "-l",
            str(self.log),
            "-o",
            options,
            "-w",
            action,
            *extra,
        )

    def start(self) -> None:
        self._ctl("start")

    def stop(self) -> None:
        self._ctl("stop", "-m", "fast")

    def restart(self) -> None:
        """A fast restart: every connection is cut, the server is back when this returns."""
        self._ctl("restart", "-m", "fast")

    def url(self, database: str = "postgres", **query: str) -> str:
        return (
            make_url(f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{database}")
            .update_query_dict(query)
            .render_as_string(hide_password=False)
        )

    def create_database(self, name: str) -> str:
        admin = create_engine(self.url(), isolation_level="AUTOCOMMIT")
        try:
            with admin.connect() as connection:
                connection.execute(text(f'CREATE DATABASE "{name}"'))
        finally:
            admin.dispose()
        return self.url(name)

    def close(self) -> None:
        with suppress(AssertionError):
            self.stop()
        shutil.rmtree(self.base, ignore_errors=True)


@contextmanager
def private_cluster() -> Iterator[PrivateCluster]:
    cluster = PrivateCluster()
    cluster.start()
    try:
        yield cluster
    finally:
        cluster.close()


# --- the customer base ---------------------------------------------------------------------

MONTHLY = catalog.NewPlan(
    name="Home 30", price="30.00", currency="USD", download="50M", upload="10M"
)
DAILY = catalog.NewPlan(
    name="Day pass", price="1.00", currency="USD", download="20M", upload="5M", cycle="daily"
)


def seed(app: App, customers: int) -> None:
    """``customers`` prepaid USD customers with one active service each, billed up to
    1 February 2026, written in bulk: even numbers on a monthly plan (30.00, funds 100.00:
    charged on the 1st of each month), odd numbers on a daily pass (1.00 a day, funds of 5 to
    34.00: charged every day, then deactivated for lack of funds). Two databases seeded with
    the same count hold the same rows under the same ids."""
    with app.uow() as uow:
        class_id = catalog.add_class(
            uow, spec=catalog.NewClass(name="Home"), now=SETUP_AT, actor=ACTOR
        ).id
    with app.uow() as uow:
        monthly = catalog.add_plan(uow, spec=MONTHLY, now=SETUP_AT, actor=ACTOR).id
    with app.uow() as uow:
        daily = catalog.add_plan(uow, spec=DAILY, now=SETUP_AT, actor=ACTOR).id
    billed_until = FIRST_DAY.date()
    for first in range(0, customers, BATCH):
        numbers = list(range(first, min(first + BATCH, customers)))
        with app.uow() as uow:
            ids = list(
                uow.session.scalars(
                    insert(Customer).returning(Customer.id, sort_by_parameter_order=True),
                    [_customer(n, class_id) for n in numbers],
                )
            )
            uow.session.execute(
                insert(Service),
                [
                    _service(cid, monthly if n % 2 == 0 else daily, billed_until)
                    for n, cid in zip(numbers, ids, strict=True)
                ],
            )
            ledger.ensure_accounts(
                uow.session, [AccountRef.wallet(cid, "USD") for cid in ids], now=SETUP_AT
            )
            ledger.post_batch(
                uow.session,
                [_funds(cid, _opening(n)) for n, cid in zip(numbers, ids, strict=True)],
                now=SETUP_AT,
            )
            uow.commit()
    with app.engine.connect() as connection:
        connection.execute(text("ANALYZE"))
        connection.commit()


def _opening(number: int) -> Money:
    if number % 2 == 0:
        return Money.from_major("100.00", "USD")
    return Money.from_major(f"{5 + number % 30}.00", "USD")


def _customer(number: int, class_id: int) -> dict[str, Any]:
    return {
        "name": f"proof-{number:07d}",
        "reseller_id": None,
        "class_id": class_id,
        "business_model": "internet_access",
        "balance_control": "prepaid",
        "currency": "USD",
        "cycle_kind": "monthly",
        "cycle_n": 1,
        "cycle_anchor_day": None,
        "cycle_origin": SETUP_AT.date(),
        "billing_timezone": "UTC",
        "locale": "en_US",
        "credit_limit_minor": None,
        "minimum_balance_minor": 0,
        "invoicing_mode": "forward",
        "use_credit_automatically": True,
        "custom_data": {},
        "status": "active",
        "created_at": SETUP_AT,
    }


def _service(customer_id: int, plan_id: int, billed_until: date) -> dict[str, Any]:
    due = datetime.combine(billed_until, datetime.min.time(), tzinfo=UTC)
    return {
        "customer_id": customer_id,
        "plan_id": plan_id,
        "active_from": SETUP_AT.date(),
        "state": "active",
        "state_since": SETUP_AT,
        "created_at": SETUP_AT,
        "cycle_origin": SETUP_AT.date(),
        "anchor_day": 1,
        "billed_until": billed_until,
        "next_due_at": due,
    }


def _funds(customer_id: int, amount: Money) -> Any:
    return transfer(
        key=f"opening-funds:{customer_id}",
        kind=EntryKind.OPENING_FUNDS,
        debit=AccountRef.system(AccountKind.CASH, amount.currency),
        credit=AccountRef.wallet(customer_id, amount.currency),
        amount=amount,
        effective_at=SETUP_AT,
        memo="proof funds",
        customer_id=customer_id,
    )


def days(count: int) -> list[datetime]:
    """The simulated days' instants: 00:05 UTC on 1 February 2026 and the days after."""
    return [FIRST_DAY + timedelta(days=n) for n in range(count)]


# --- the books -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Books:
    """What two runs must agree on, keyed by what does not depend on who wrote it first."""

    postings: list[tuple[str, str, int]]  # (transaction key, account code, amount)
    balances: dict[str, int]  # account code -> cached balance
    charges: list[tuple[int, str, str, int]]  # (service, kind, period start, gross)
    services: dict[int, tuple[str, str | None]]  # service -> (state, billed until)
    repeated_charges: int  # period charges written more than once for one period
    findings: list[str] = field(default_factory=list)  # ledger check


def books(app: App) -> Books:
    with app.uow() as uow:
        s = uow.session
        postings = [
            (str(k), str(c), int(a))
            for k, c, a in s.execute(
                text(
                    "SELECT t.idempotency_key, a.code, p.amount_minor FROM ledger_postings p "
                    "JOIN ledger_transactions t ON t.id = p.transaction_id "
                    "JOIN ledger_accounts a ON a.id = p.account_id "
                    "ORDER BY 1, 2, 3"
                )
            )
        ]
        balances = {
            str(c): int(b)
            for c, b in s.execute(text("SELECT code, balance_minor FROM ledger_accounts"))
        }
        charges = [
            (int(sid), str(kind), str(start), int(gross))
            for sid, kind, start, gross in s.execute(
                text(
                    "SELECT service_id, kind, period_start, gross_minor FROM charges "
                    "ORDER BY 1, 2, 3, 4"
                )
            )
        ]
        repeated = int(
            s.scalar(
                text(
                    "SELECT count(*) FROM (SELECT 1 FROM charges GROUP BY service_id, kind, "
                    "period_start HAVING count(*) > 1) AS twice"
                )
            )
            or 0
        )
        services = {
            int(sid): (str(state), None if until is None else str(until))
            for sid, state, until in s.execute(
                select(Service.id, Service.state, Service.billed_until)
            )
        }
        findings = [f.describe() for f in ledger.check(s)]
    return Books(postings, balances, charges, services, repeated, findings)


# --- worker processes ----------------------------------------------------------------------


class ClockFile:
    """The instant every process started with ISPBILL_CLOCK_FILE reads as now."""

    def __init__(self, folder: Path, start: datetime) -> None:
        self.path = folder / "now"
        self.set(start)

    def set(self, instant: datetime) -> None:
        partial = self.path.with_suffix(".part")
        partial.write_text(instant.isoformat())
        partial.replace(self.path)  # atomic: a reader never sees half an instant


@dataclass
class Workers:
    """``ispbill worker`` processes on one database, each under its own application_name
    (``w1``, ``w2``...) so the test can tell which one is inside a transaction."""

    database_url: str
    clock: ClockFile
    logs: Path
    settings: dict[str, str] = field(default_factory=dict)
    running: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    def env(self, name: str, **extra: str) -> dict[str, str]:
        url = make_url(self.database_url).update_query_dict({"application_name": name})
        return {
            **os.environ,
            "ISPBILL_DATABASE_URL": url.render_as_string(hide_password=False),
            "ISPBILL_CLOCK_FILE": str(self.clock.path),
            **{f"ISPBILL_{k.upper()}": v for k, v in {**self.settings, **extra}.items()},
        }

    def start(self, name: str, *args: str, **extra: str) -> subprocess.Popen[bytes]:
        with (self.logs / f"{name}.log").open("wb") as log:
            process = subprocess.Popen(
                [str(ISPBILL), "worker", *args],
                env=self.env(name, **extra),
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        self.running[name] = process
        return process

    def kill(self, name: str) -> None:
        """``kill -9``: no clean-up, no goodbye to the database."""
        process = self.running.pop(name)
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=30)

    def running_job(self, name: str) -> str | None:
        """The job (``task[id]``) the worker's log says it started last and has not ended."""
        started = None
        for line in (self.logs / f"{name}.log").read_text().splitlines():
            found = re.search(r"Starting job (\w+\[\d+\])", line)
            if found:
                started = found.group(1)
            elif started and f"{started}(" in line and "ended with status" in line:
                started = None
        return started

    def alive(self) -> list[str]:
        return [name for name, p in self.running.items() if p.poll() is None]

    def log_tail(self) -> str:
        return "\n".join(
            f"--- {p.name}\n{p.read_text()[-3000:]}" for p in sorted(self.logs.glob("*.log"))
        )

    def stop(self) -> None:
        for process in self.running.values():
            if process.poll() is None:
                process.terminate()
        for process in self.running.values():
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=30)
        self.running.clear()


def wait_until(
    condition: Callable[[], Any], timeout_s: float, what: str, *, on_fail: Callable[[], str]
) -> Any:
    """Poll ``condition`` until it is truthy; fail naming ``what`` (with the workers' logs)."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            value = condition()
        except Exception as exc:  # the database may be restarting: keep polling
            value, last = None, exc
        else:
            last = None
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what} ({last})\n{on_fail()}")
        time.sleep(0.1)

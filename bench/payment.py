"""Benchmark: payment posted -> service state committed, on SQLite and/or PostgreSQL.

    python bench/payment.py [--payments 200] [--db sqlite|postgresql|both]

For each database: a fresh database (a SQLite file in a temporary folder, or a new PostgreSQL
database ``ispbill_bench_<random>`` on 127.0.0.1:5432 as user postgres, dropped at the end),
migrated like production; N prepaid customers, each with one 30.00 USD monthly service and no
funds, so the first tick deactivates every service. Then N payments of 30.00, one per customer,
each through ``record_payment`` in its own unit of work, the way the CLI, the API and a gateway
webhook post one: lock the customer, credit the wallet, allocate, re-evaluate (the reactivation
charge and the service back to active), commit. Each payment is timed from the call to the
return of the committed transaction: the time an operator or a subscriber waits before the
network may be told the service is back. Every service must be active afterwards and the ledger
balanced. Figures are printed, never asserted: machines differ (target: p99 under 1 s).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from datetime import UTC, date, datetime
from pathlib import Path

from sqlalchemy import func, select

sys.path.insert(0, str(Path(__file__).resolve().parent))
from support import ACTOR, SETUP_AT, add_class_and_plan, fresh_database

from ispbill.adapters.db import ledger_store as ledger
from ispbill.adapters.db.migrate import upgrade
from ispbill.adapters.db.models import Service
from ispbill.bootstrap import App, bootstrap
from ispbill.use_cases.billing.tick import tick
from ispbill.use_cases.catalog import customer_accounts as customer_cases
from ispbill.use_cases.catalog import offerings as catalog
from ispbill.use_cases.catalog.name_lookups import customer_class_id_of, plan_id_of
from ispbill.use_cases.payments.recording import NewPayment, record_payment
from ispbill.use_cases.service_lifecycle import new_services as services

PAID_AT = datetime(2026, 1, 10, 12, 0, tzinfo=UTC)
PLAN = catalog.NewPlan(name="Home 30", price="30.00", currency="USD", download="50M", upload="10M")


def build(app: App, customers: int) -> list[int]:
    """N prepaid customers with a service each, all deactivated by the first tick."""
    add_class_and_plan(app, "Bench", PLAN, now=SETUP_AT)
    ids = []
    for n in range(customers):
        with app.uow() as uow:
            spec = customer_cases.NewCustomer(
                name=f"bench-{n:05d}",
                customer_class_id=customer_class_id_of(uow, "Bench"),
                currency="USD",
            )
            ids.append(customer_cases.add_customer(uow, spec=spec, now=SETUP_AT, actor=ACTOR).id)
        with app.uow() as uow:
            services.add_service(
                uow,
                spec=services.NewService(
                    customer_id=ids[-1],
                    plan_id=plan_id_of(uow, "Home 30"),
                    active_from=date(2026, 1, 1),
                ),
                now=SETUP_AT,
                actor=ACTOR,
            )
    tick(app.uow, now=SETUP_AT, chunk_size=500)
    assert _states(app) == {"deactivated": customers}, _states(app)
    return ids


def _states(app: App) -> dict[str, int]:
    with app.uow() as uow:
        rows = uow.session.execute(select(Service.state, func.count()).group_by(Service.state))
        return {state: int(count) for state, count in rows}


def measure(app: App, customer_ids: list[int]) -> list[float]:
    latencies_ms = []
    for cid in customer_ids:
        spec = NewPayment(customer_id=cid, amount="30.00", method="cash", reference=f"bench-{cid}")
        started = time.perf_counter()
        with app.uow() as uow:
            recorded = record_payment(uow, spec=spec, now=PAID_AT, actor=ACTOR)
        latencies_ms.append((time.perf_counter() - started) * 1000)
        assert recorded.created
    return latencies_ms


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))
    return ordered[index]


def run(kind: str, payments: int, workdir: Path) -> dict[str, object]:
    with fresh_database(kind, workdir) as url:
        upgrade(url)
        app = bootstrap(database_url=url)
        try:
            ids = build(app, payments)
            latencies = measure(app, ids)
            assert _states(app) == {"active": payments}, _states(app)
            with app.uow() as uow:
                assert ledger.check(uow.session) == []
        finally:
            app.close()
    return {
        "db": kind,
        "payments": payments,
        "latency_ms_p50": round(percentile(latencies, 0.50), 2),
        "latency_ms_p99": round(percentile(latencies, 0.99), 2),
        "latency_ms_max": round(max(latencies), 2),
        "latency_ms_mean": round(statistics.fmean(latencies), 2),
        "all_reactivated": True,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--payments", type=int, default=200)
    parser.add_argument("--db", choices=("sqlite", "postgresql", "both"), default="both")
    args = parser.parse_args()
    kinds = ("sqlite", "postgresql") if args.db == "both" else (args.db,)
    with tempfile.TemporaryDirectory(prefix="ispbill-bench-") as workdir:
        for kind in kinds:
            print(json.dumps(run(kind, args.payments, Path(workdir))), flush=True)


if __name__ == "__main__":
    main()

"""Benchmark: the REST API under load, over real HTTP, against uvicorn on PostgreSQL.

    python bench/api.py [--customers 200] [--requests 2000] [--concurrency 16] [--workers 2]

A fresh PostgreSQL database ``ispbill_bench_<random>`` on 127.0.0.1:5432 (user postgres,
dropped at the end), migrated like production, with N prepaid customers holding funds and an
admin token. ``uvicorn ispbill.entrypoints.asgi_app:application --factory`` serves it with W
worker processes. Then, at a fixed concurrency C (asyncio tasks sharing one httpx client, each
sending its next request when the previous answered):

* balance read: ``GET /api/v1/customers/{id}`` (token check, customer, wallet balance);
* payment post: ``POST /api/v1/payments`` with a fresh ``Idempotency-Key`` (idempotency claim,
  customer lock, ledger entry, allocation, engine re-evaluation, stored answer).

For each: requests per second over the run and p50/p99 latency per request. Every answer must be
200/201 and the ledger balanced afterwards. The load generator runs on the same machine as the
server and the database, so the figures are a floor. Printed, never asserted.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import create_engine
from sqlalchemy.orm import Session

sys.path.insert(0, str(Path(__file__).resolve().parent))
from support import ACTOR, SETUP_AT, postgres_database, uvicorn_server

from ispbill.adapters.db import ledger_store as ledger
from ispbill.adapters.db.migrate import upgrade
from ispbill.bootstrap import bootstrap
from ispbill.clock import FixedClock
from ispbill.use_cases.admin.api_tokens import create_token
from ispbill.use_cases.catalog import customer_accounts as customer_cases
from ispbill.use_cases.catalog import offerings as catalog
from ispbill.use_cases.catalog.name_lookups import customer_class_id_of


def seed(url: str, customers: int) -> str:
    """N prepaid customers with 1000.00 USD each; returns an admin token."""
    upgrade(url)
    app = bootstrap(database_url=url, clock=FixedClock(SETUP_AT))
    try:
        with app.uow() as uow:
            catalog.add_class(uow, spec=catalog.NewClass(name="Home"), now=SETUP_AT, actor=ACTOR)
        for n in range(customers):
            with app.uow() as uow:
                customer_cases.add_customer(
                    uow,
                    spec=customer_cases.NewCustomer(
                        name=f"Customer {n:05d}",
                        customer_class_id=customer_class_id_of(uow, "Home"),
                        currency="USD",
                        available_funds="1000.00",
                    ),
                    now=SETUP_AT,
                    actor=ACTOR,
                )
        with app.uow() as uow:
            created = create_token(
                uow, name="bench", role="admin", reseller_id=None, now=SETUP_AT, actor=ACTOR
            )
        return created.plaintext
    finally:
        app.close()


async def load(
    base: str,
    token: str,
    *,
    requests: int,
    concurrency: int,
    make: Any,
) -> dict[str, float]:
    """Send ``requests`` requests built by ``make(i)`` from ``concurrency`` tasks."""
    latencies: list[float] = []
    failures: list[str] = []
    counter = iter(range(requests))
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(
        base_url=base,
        headers={"Authorization": f"Bearer {token}"},
        limits=limits,
        timeout=60,
    ) as client:

        async def worker() -> None:
            for i in counter:
                method, path, options = make(i)
                started = time.perf_counter()
                response = await client.request(method, path, **options)
                latencies.append(time.perf_counter() - started)
                if response.status_code >= 300:
                    failures.append(f"{response.status_code} {response.text[:200]}")

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        elapsed = time.perf_counter() - started
    if failures:
        raise RuntimeError(f"{len(failures)} failed requests, e.g. {failures[0]}")
    ordered = sorted(latencies)
    return {
        "requests": len(latencies),
        "seconds": round(elapsed, 2),
        "requests_per_s": round(len(latencies) / elapsed, 1),
        "latency_ms_p50": round(statistics.median(ordered) * 1000, 1),
        "latency_ms_p99": round(ordered[int(len(ordered) * 0.99) - 1] * 1000, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--customers", type=int, default=200)
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    figures: dict[str, Any] = {
        "concurrency": args.concurrency,
        "workers": args.workers,
        "customers": args.customers,
    }
    with postgres_database() as url:
        token = seed(url, args.customers)
        with uvicorn_server(url, args.workers) as base:

            def read(i: int) -> tuple[str, str, dict[str, Any]]:
                return "GET", f"/api/v1/customers/{i % args.customers + 1}", {}

            def pay(i: int) -> tuple[str, str, dict[str, Any]]:
                body = {"customer_id": i % args.customers + 1, "amount": "1.00", "currency": "USD"}
                headers = {"Idempotency-Key": f"bench-{i}"}
                return "POST", "/api/v1/payments", {"json": body, "headers": headers}

            asyncio.run(load(base, token, requests=50, concurrency=4, make=read))  # warm up
            figures["balance_read"] = asyncio.run(
                load(base, token, requests=args.requests, concurrency=args.concurrency, make=read)
            )
            figures["payment_post"] = asyncio.run(
                load(base, token, requests=args.requests, concurrency=args.concurrency, make=pay)
            )
        engine = create_engine(url)
        with engine.connect() as connection, Session(connection) as session:
            findings = ledger.check(session)
        engine.dispose()
        figures["ledger_balanced"] = not findings
    print(json.dumps(figures, indent=2))
    if findings:
        raise SystemExit("ledger check failed")


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
    main()

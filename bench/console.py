"""Benchmark: the operator console's customer list and search with 100,000 customers.

    python bench/console.py [--customers 100000] [--db postgresql|sqlite] [--repeat 5]

A fresh database (PostgreSQL ``ispbill_bench_<random>`` on 127.0.0.1:5432, dropped at the
end, or a SQLite file), migrated like production, filled with set-based bulk inserts: N
prepaid customers with varied names (first name, surname, number), two resellers, one active
service and a funded wallet each; then ANALYZE, as autovacuum would.

Measured end to end through the real web application (the ASGI app in process, a signed-in
admin, and a reseller's user): each page is fetched ``--repeat`` times and the median and worst
latency printed, for the first page, a deep keyset page, searches by part of a name (common,
rare, none), by id, and the CSV-less reseller listing. Figures are printed, never asserted;
the target is under 300 ms per page.
"""

from __future__ import annotations

import argparse
import asyncio
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from support import SETUP_AT, add_class_and_plan, bulk_fill, customer_row, fresh_database

from ispbill.adapters.db.migrate import upgrade
from ispbill.bootstrap import App, bootstrap
from ispbill.domain.money import Money
from ispbill.entrypoints.asgi_app import create_app
from ispbill.settings import Settings
from ispbill.use_cases.admin.web_auth import add_staff
from ispbill.use_cases.catalog import offerings as catalog
from ispbill.use_cases.catalog.name_lookups import reseller_id_of
from ispbill.use_cases.catalog.offerings import NewPlan

CURRENCY = "CZK"
FIRST = [
    "Jan",
    "Petr",
    "Pavel",
    "Tomáš",
    "Martin",
    "Jiří",
    "Josef",
    "Lukáš",
    "Jakub",
    "David",
    "Eva",
    "Jana",
    "Marie",
    "Anna",
    "Lucie",
    "Tereza",
    "Hana",
    "Petra",
    "Lenka",
    "Kateřina",
]
LAST = [
    "Novák",
    "Svoboda",
    "Novotný",
    "Dvořák",
    "Černý",
    "Procházka",
    "Kučera",
    "Veselý",
    "Horák",
    "Němec",
    "Marek",
    "Pokorný",
    "Pospíšil",
    "Hájek",
    "Král",
    "Jelínek",
    "Růžička",
    "Beneš",
    "Fiala",
    "Sedláček",
]
PASSWORD = "bench password 123"


def name_of(number: int) -> str:
    return f"{FIRST[number % len(FIRST)]} {LAST[(number // len(FIRST)) % len(LAST)]} {number:06d}"


def build(url: str, customers: int) -> float:
    started = time.perf_counter()
    upgrade(url)
    app = bootstrap(database_url=url)
    try:
        plan = NewPlan(name="Fiber", price="500", currency=CURRENCY, download="100M", upload="20M")
        class_id, plan_id = add_class_and_plan(app, "Home", plan, now=SETUP_AT, actor="b")
        resellers = []
        for reseller in ("North", "South"):
            with app.uow() as uow:
                resellers.append(
                    catalog.add_reseller(uow, name=reseller, now=SETUP_AT, actor="b").id
                )
        for username, role, reseller in [("admin", "admin", None), ("north", "reseller", "North")]:
            with app.uow() as uow:
                add_staff(
                    uow,
                    username=username,
                    password=PASSWORD,
                    role=role,
                    reseller_id=reseller_id_of(uow, reseller) if reseller else None,
                    now=SETUP_AT,
                    actor="b",
                )
        bulk_fill(
            app,
            customers,
            plan_id,
            lambda n: _customer(n, class_id, resellers[n % 2]),
            Money.from_major("1000", CURRENCY),
        )
    finally:
        app.close()
    return time.perf_counter() - started


def _customer(number: int, class_id: int, reseller_id: int) -> dict[str, Any]:
    """A Czech customer with a searchable name, alternating between the two resellers."""
    return customer_row(
        name_of(number),
        class_id,
        currency=CURRENCY,
        reseller_id=reseller_id,
        timezone="Europe/Prague",
        locale="cs_CZ",
    )


class Client:
    """A signed-in browser stand-in over the in-process ASGI app."""

    def __init__(self, app: App) -> None:
        self.transport = httpx.ASGITransport(app=create_app(app))
        self.cookies = httpx.Cookies()

    async def _send(self, method: str, url: str, **options: Any) -> httpx.Response:
        async with httpx.AsyncClient(
            transport=self.transport, base_url="https://bench", cookies=self.cookies
        ) as client:
            response = await client.request(method, url, **options)
            self.cookies.update(client.cookies)
            return response

    def get(self, url: str) -> httpx.Response:
        return asyncio.run(self._send("GET", url))

    def sign_in(self, username: str) -> None:
        page = self.get("/console/login")
        token = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
        assert token
        form = {"csrf_token": token.group(1), "username": username, "password": PASSWORD}
        answer = asyncio.run(self._send("POST", "/console/login", data=form))
        assert answer.status_code == 303, answer.text


def timed(client: Client, url: str, repeat: int) -> tuple[float, float, int]:
    client.get(url)  # warm: templates compiled, connections opened
    samples = []
    for _ in range(repeat):
        started = time.perf_counter()
        answer = client.get(url)
        samples.append((time.perf_counter() - started) * 1000)
        assert answer.status_code == 200, (url, answer.status_code)
    rows = answer.text.count('<a href="/console/customers/') - 0
    return statistics.median(samples), max(samples), rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--customers", type=int, default=100_000)
    parser.add_argument("--db", choices=["postgresql", "sqlite"], default="postgresql")
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder, fresh_database(args.db, Path(folder)) as url:
        seconds = build(url, args.customers)
        print(f"{args.db}: {args.customers:,} customers loaded in {seconds:.1f} s")
        app = bootstrap(settings=Settings(database_url=url))
        try:
            admin, north = Client(app), Client(app)
            admin.sign_in("admin")
            north.sign_in("north")
            deep = args.customers - 1000
            pages = [
                ("admin", admin, "/console/customers", "first page"),
                ("admin", admin, f"/console/customers?after={deep}", "deep keyset page"),
                ("admin", admin, "/console/customers?q=Nov%C3%A1k", "search: common surname"),
                ("admin", admin, "/console/customers?q=Lucie+Fiala", "search: first + last name"),
                ("admin", admin, "/console/customers?q=004242", "search: rare number"),
                ("admin", admin, "/console/customers?q=nobody-by-this-name", "search: no match"),
                ("admin", admin, f"/console/customers?q={args.customers // 2}", "search: by id"),
                ("north", north, "/console/customers", "reseller: first page"),
                ("north", north, "/console/customers?q=Hana", "reseller: search"),
            ]
            print(f"{'page':32} {'median ms':>10} {'worst ms':>10} {'links':>6}")
            for _who, client, url, label in pages:
                median, worst, rows = timed(client, url, args.repeat)
                flag = "" if worst < 300 else "  (over 300 ms)"
                print(f"{label:32} {median:10.1f} {worst:10.1f} {rows:6d}{flag}")
        finally:
            app.close()


if __name__ == "__main__":
    main()

"""Benchmark: the console's operator-wide lists (event log, payments, invoices) at scale.

    python bench/lists.py [--customers 100000] [--events 2000000] [--payments 500000]
                          [--invoices 300000] [--repeat 3]

A fresh PostgreSQL database (``ispbill_bench_<random>``, dropped at the end), migrated like
production, filled by set-based SQL (``generate_series``) with three resellers (one with ten
customers), and the rows the lists read; then VACUUM ANALYZE, as autovacuum would. Each page
query of ``use_cases/queries/operator_lists.py`` (the read model behind ``/console/events``,
``/console/payments`` and ``/console/invoices``) is timed ``--repeat`` times and the best
printed: the first page, a deep keyset page, a reseller's scope, a single customer, rare and
absent filter values and an old day range. Figures are printed, never asserted.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Select, create_engine, text

sys.path.insert(0, str(Path(__file__).resolve().parent))
from support import postgres_database

from ispbill.adapters.db.migrate import upgrade
from ispbill.adapters.db.models import Event, Invoice, Payment
from ispbill.bootstrap import App, bootstrap
from ispbill.use_cases.catalog.offerings import NewClass, add_class, add_reseller
from ispbill.use_cases.queries import operator_lists as lists
from ispbill.use_cases.queries.dashboard import Scope

T0 = datetime(2025, 1, 1, tzinfo=UTC)
DOCUMENTS = ("invoice", "statement", "credit_note")


def seed_sql(args: argparse.Namespace, klass: int, resellers: dict[str, int]) -> list[str]:
    """Rows spread over customers by a multiplicative hash; rare kinds and methods 1 in 100+."""
    n = args.customers
    owner = (
        f"CASE WHEN g <= 10 THEN {resellers['Tiny']} WHEN g % 2 = 1 THEN {resellers['North']}"
        f" ELSE {resellers['South']} END"
    )
    spread = f"1 + (g::bigint * 7919) % {n}"
    return [
        f"""INSERT INTO customers (name, reseller_id, class_id, business_model, balance_control,
        currency, cycle_kind, cycle_n, cycle_origin, billing_timezone, locale,
        minimum_balance_minor, invoicing_mode, use_credit_automatically, custom_data, status,
        created_at)
        SELECT 'Customer ' || g, {owner}, {klass}, 'internet_access', 'prepaid', 'CZK',
        'monthly', 1, '2025-01-01', 'Europe/Prague', 'cs_CZ', 0, 'forward', true, '{{}}',
        'active', '2025-01-01' FROM generate_series(1, {n}) g""",
        f"""INSERT INTO payments (customer_id, method, amount_minor, currency, reference,
        idempotency_key, received_at, recorded_at, transaction_id, reversed_by_id, actor)
        SELECT {spread}, CASE WHEN g % 100 = 0 THEN 'gopay' WHEN g % 3 = 0 THEN 'cash'
        ELSE 'bank' END, 50000, 'CZK', 'r' || g, 'k' || g,
        timestamptz '2025-01-01' + g * interval '1 minute',
        timestamptz '2025-01-01' + g * interval '1 minute', 1,
        CASE WHEN g % 500 = 0 THEN 1 END, 'bench' FROM generate_series(1, {args.payments}) g""",
        f"""INSERT INTO events (occurred_at, actor, subject_type, subject_id, customer_id, kind,
        reason, figures)
        SELECT timestamptz '2025-01-01' + g * interval '15 seconds', 'engine', 'service',
        g % {n}, CASE WHEN g % 10 = 0 THEN NULL ELSE {spread} END,
        CASE WHEN g % 1000 = 0 THEN 'service.suspended' WHEN g % 3 = 0
        THEN 'payment.received' ELSE 'service.charged' END, 'r', '{{"balance": 100}}'
        FROM generate_series(1, {args.events}) g""",
        f"""INSERT INTO invoices (number, idempotency_key, kind, customer_id, issue_date,
        due_date, currency, net_minor, tax_minor, gross_minor, paid_minor, status, issued_at)
        SELECT 'N' || g, 'i' || g, CASE WHEN g % 200 = 0 THEN 'credit_note' ELSE 'invoice' END,
        {spread}, date '2025-01-01' + (g / 1000), date '2025-01-15' + (g / 1000), 'CZK', 100,
        21, 121, 121, CASE WHEN g % 100 = 0 THEN 'issued' ELSE 'paid' END,
        timestamptz '2025-01-01' + g * interval '1 minute'
        FROM generate_series(1, {args.invoices}) g""",
    ]


def seed(app: App, url: str, args: argparse.Namespace) -> dict[str, int]:
    with app.uow() as uow:
        klass = add_class(uow, spec=NewClass(name="Home"), now=T0, actor="bench").id
    resellers = {}
    for name in ("North", "South", "Tiny"):
        with app.uow() as uow:
            resellers[name] = add_reseller(uow, name=name, now=T0, actor="bench").id
    engine = create_engine(url)
    with engine.begin() as connection:
        connection.execute(text("SET session_replication_role = replica"))  # no FK triggers
        for statement in seed_sql(args, klass, resellers):
            started = time.perf_counter()
            connection.execute(text(statement))
            print(f"seeded {statement.split()[2]} in {time.perf_counter() - started:.1f} s")
    with engine.connect() as connection:
        connection.execution_options(isolation_level="AUTOCOMMIT").execute(text("VACUUM ANALYZE"))
    engine.dispose()
    return resellers


Case = tuple[str, Select[Any], Any, int | None]


def cases(resellers: dict[str, int]) -> list[Case]:
    everyone, north, tiny = Scope(None), Scope(resellers["North"]), Scope(resellers["Tiny"])
    old_from, old_to = datetime(2025, 1, 2, tzinfo=UTC), datetime(2025, 1, 3, tzinfo=UTC)
    ev: Callable[..., Select[Any]] = lambda scope, **f: lists.events_query(  # noqa: E731
        scope, lists.EventFilter(**f)
    )
    pay: Callable[..., Select[Any]] = lambda scope, **f: lists.payments_query(  # noqa: E731
        scope, lists.PaymentFilter(**f)
    )
    doc: Callable[..., Select[Any]] = lambda scope, **f: lists.documents_query(  # noqa: E731
        scope, lists.DocumentFilter(**{"kinds": DOCUMENTS, **f})
    )
    return [
        ("events: first page", ev(everyone), Event, None),
        ("events: deep page", ev(everyone), Event, 100_000),
        ("events: reseller", ev(north), Event, None),
        ("events: small reseller", ev(tiny), Event, None),
        ("events: rare kind", ev(everyone, kind="service.suspended"), Event, None),
        ("events: absent kind", ev(everyone, kind="nothing.here"), Event, None),
        ("events: kind prefix", ev(everyone, kind_prefix="service."), Event, None),
        ("events: one customer", ev(everyone, customer_id=4242), Event, None),
        ("events: old day", ev(everyone, occurred_from=old_from, occurred_to=old_to), Event, None),
        ("payments: first page", pay(everyone), Payment, None),
        ("payments: small reseller", pay(tiny), Payment, None),
        ("payments: reseller", pay(north), Payment, None),
        ("payments: one customer", pay(everyone, customer_id=4242), Payment, None),
        ("payments: rare method", pay(everyone, method="gopay"), Payment, None),
        ("payments: absent method", pay(everyone, method="none"), Payment, None),
        ("payments: reversed", pay(everyone, reversed=True), Payment, None),
        (
            "payments: old day",
            pay(everyone, received_from=old_from, received_to=old_to),
            Payment,
            None,
        ),
        ("invoices: first page", doc(everyone), Invoice, None),
        ("invoices: small reseller", doc(tiny), Invoice, None),
        ("invoices: status issued", doc(everyone, status="issued"), Invoice, None),
        ("invoices: credit notes", doc(everyone, kinds=("credit_note",)), Invoice, None),
        ("invoices: absent status", doc(everyone, status="void"), Invoice, None),
        (
            "invoices: old day",
            doc(everyone, issued_from=date(2025, 1, 2), issued_to=date(2025, 1, 2)),
            Invoice,
            None,
        ),
    ]


def measure(app: App, case: Case, repeat: int) -> tuple[float, int]:
    """The best of ``repeat`` runs of one page query, in ms, and its row count."""
    _label, query, model, back = case
    with app.uow() as uow:
        before = None
        if back:
            table = model.__tablename__
            before = uow.session.scalar(text(f"SELECT max(id) - {back} FROM {table}"))
        best, rows = float("inf"), 0
        for _ in range(repeat):
            started = time.perf_counter()
            page = lists.page(uow.session, query, model, before=before)
            best = min(best, time.perf_counter() - started)
            rows = len(page.rows)
    return best * 1000, rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--customers", type=int, default=100_000)
    parser.add_argument("--events", type=int, default=2_000_000)
    parser.add_argument("--payments", type=int, default=500_000)
    parser.add_argument("--invoices", type=int, default=300_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    with postgres_database() as url:
        upgrade(url)
        app = bootstrap(database_url=url)
        try:
            resellers = seed(app, url, args)
            print(f"{'page':32s} {'best ms':>8s} {'rows':>5s}")
            for case in cases(resellers):
                best, rows = measure(app, case, args.repeat)
                print(f"{case[0]:32s} {best:8.1f} {rows:5d}")
        finally:
            app.close()


if __name__ == "__main__":
    main()

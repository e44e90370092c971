"""The ``ispbill`` command end to end, through Typer's test runner, on both databases.

The happy path builds a small catalogue and two customers and reads every listing back as JSON;
refusals exit with status 2 and one line on stderr that names the field; nothing is written.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import typer
from sqlalchemy import create_engine, func, select, text
from sqlalchemy.engine import make_url
from typer.testing import CliRunner, Result

from ispbill.adapters.db.engine import make_engine
from ispbill.adapters.db.models import Base, LedgerAccount
from ispbill.bootstrap import App
from ispbill.entrypoints.cli.main import app as cli
from ispbill.use_cases.catalog import customer_accounts as customer_cases
from ispbill.use_cases.catalog import offerings as catalog
from ispbill.use_cases.catalog.customer_accounts import NewCustomer
from ispbill.use_cases.catalog.name_lookups import customer_class_id_of, tax_profile_id_of
from ispbill.use_cases.catalog.offerings import NewClass, NewPlan

NOW = "2026-01-01T09:00:00Z"
runner = CliRunner()


def invoke(url: str, *args: str) -> Result:
    return runner.invoke(cli, ["--database-url", url, "--now", NOW, *args])


def ok(url: str, *args: str) -> Result:
    result = invoke(url, *args)
    assert result.exit_code == 0, (args, result.output)
    return result


def ok_json(url: str, *args: str) -> Any:
    return json.loads(ok(url, *args, "--json").stdout)


def snapshot(app: App) -> tuple[dict[str, int], dict[str, int]]:
    """Row counts of every table and every cached balance, read beside the CLI's own engine."""
    with app.engine.connect() as connection:
        counts = {
            t.name: connection.execute(select(func.count()).select_from(t)).scalar_one()
            for t in Base.metadata.sorted_tables
        }
        balances = connection.execute(select(LedgerAccount.code, LedgerAccount.balance_minor))
        return counts, {code: int(value) for code, value in balances}


SETUP = [
    ["taxes", "add", "VAT 21", "--rate", "21"],
    [
        "classes",
        "add",
        "Residential",
        "--grace-days",
        "7",
        "--tax-profile",
        "VAT 21",
        "--field",
        "national_id:required:[0-9]{6,10}",
        "--notify",
        "billing@example.com",
    ],
    [
        "plans",
        "add",
        "Home 50",
        "--price",
        "30.00",
        "--currency",
        "USD",
        "--download",
        "50M",
        "--upload",
        "10M",
        "--fup",
        "200GB:throttle:5M/1M",
        "--fup",
        "500GB:suspend",
        "--period",
        "3",
        "--period",
        "12:10%",
    ],
    [
        "customers",
        "add",
        "Alice Novak",
        "--class",
        "Residential",
        "--currency",
        "USD",
        "--available-funds",
        "90.00",
        "--timezone",
        "Europe/Prague",
        "--field",
        "national_id=1234567",
    ],
    [
        "customers",
        "add",
        "Acme s.r.o.",
        "--class",
        "Residential",
        "--currency",
        "USD",
        "--balance-control",
        "postpaid",
        "--credit-limit",
        "100",
        "--invoicing",
        "backward",
        "--field",
        "national_id=7654321",
    ],
    ["services", "add", "--customer", "Alice Novak", "--plan", "Home 50", "--period-months", "3"],
    ["resellers", "add", "North"],
]


@pytest.fixture
def seeded_url(app: App, database_url: str) -> str:
    """The state SETUP builds, made through the use cases (much faster than the CLI)."""
    now = app.clock.now()
    with app.uow() as uow:
        catalog.add_tax_profile(uow, name="VAT 21", rate="21", inclusive=False, now=now, actor="t")
    with app.uow() as uow:
        spec = NewClass(
            name="Residential",
            grace_days=7,
            tax_profile_id=tax_profile_id_of(uow, "VAT 21"),
            custom_fields=["national_id:required:[0-9]{6,10}"],
        )
        catalog.add_class(uow, spec=spec, now=now, actor="t")
    with app.uow() as uow:
        plan = NewPlan(
            name="Home 50",
            price="30.00",
            currency="USD",
            download="50M",
            upload="10M",
            period_months=["3", "12:10%"],
        )
        catalog.add_plan(uow, spec=plan, now=now, actor="t")
    with app.uow() as uow:
        alice = NewCustomer(
            name="Alice Novak",
            customer_class_id=customer_class_id_of(uow, "Residential"),
            currency="USD",
            available_funds="90.00",
            custom_data={"national_id": "1234567"},
        )
        customer_cases.add_customer(uow, spec=alice, now=now, actor="t")
    return database_url


def test_init_creates_an_empty_sqlite_database(tmp_path: Path) -> None:
    path = tmp_path / "fresh.db"
    url = f"sqlite:///{path}"
    result = ok(url, "init")
    assert "database ready" in result.stdout
    assert path.exists()
    assert ok_json(url, "customers", "list") == []
    assert "ledger balanced" in ok(url, "ledger", "check").stdout
    ok(url, "init")  # running it again is harmless


def test_init_on_a_migrated_database_changes_nothing(app: App, seeded_url: str) -> None:
    before = snapshot(app)
    ok(seeded_url, "init")
    assert snapshot(app) == before


def test_happy_path_and_every_listing_as_json(database_url: str) -> None:
    url = database_url
    for args in SETUP:
        ok(url, *args)
    assert ok_json(url, "taxes", "list") == [
        {"id": 1, "name": "VAT 21", "rate": "21%", "inclusive": False}
    ]
    [klass] = ok_json(url, "classes", "list")
    assert klass["name"] == "Residential"
    assert klass["grace_days"] == 7
    assert klass["tax_profile_id"] == 1
    assert klass["notification_emails"] == ["billing@example.com"]
    assert klass["custom_fields"] == ["national_id"]

    [plan] = ok_json(url, "plans", "list")
    assert plan["name"] == "Home 50"
    assert plan["price"] == "30.00 USD"
    assert (plan["download_kbps"], plan["upload_kbps"]) == (50_000, 10_000)
    assert plan["periods_months"] == [1, 3, 12]
    throttle, suspend = plan["fup_tiers"]
    assert "200000000000" in throttle
    assert "throttle" in throttle
    assert "500000000000" in suspend
    assert "suspend" in suspend

    [reseller] = ok_json(url, "resellers", "list")
    assert reseller["name"] == "North"

    alice, acme = ok_json(url, "customers", "list")
    assert (alice["name"], alice["balance_control"], alice["balance"]) == (
        "Alice Novak",
        "prepaid",
        "90.00 USD",
    )
    assert (alice["timezone"], alice["services"], alice["class"]) == (
        "Europe/Prague",
        1,
        "Residential",
    )
    assert (acme["name"], acme["balance_control"], acme["balance"]) == (
        "Acme s.r.o.",
        "postpaid",
        "0.00 USD",
    )
    assert ok_json(url, "customers", "list", "--search", "acme") == [acme]
    assert ok_json(url, "customers", "list", "--search", "%") == []  # a letter, not a wildcard
    assert ok_json(url, "customers", "list", "--search", "e_N") == []
    assert ok_json(url, "customers", "list", "--search", "ce N") == [alice]

    shown = ok_json(url, "customers", "show", "Alice Novak")
    assert shown["custom_data"] == {"national_id": "1234567"}
    assert shown["grace_days"] == 7  # inherited from the class
    assert shown["credit_limit"] is None
    assert shown["anchor_day"] is None  # the default cycle is the calendar month
    assert shown["cycle_origin"] == "2026-01-01"
    assert [s["plan"] for s in shown["services"]] == ["Home 50"]
    assert shown["services"][0]["period_months"] == 3
    assert shown["services"][0]["state"] == "pending"
    assert {"customer.created", "wallet.funded", "service.created"} <= {
        e["kind"] for e in shown["events"]
    }
    shown_acme = ok_json(url, "customers", "show", str(acme["id"]))
    assert shown_acme["credit_limit"] == "100.00 USD"
    assert shown_acme["invoicing_mode"] == "backward"

    services = ok_json(url, "services", "list")
    assert [(s["customer_id"], s["plan"], s["active_from"]) for s in services] == [
        (alice["id"], "Home 50", "2026-01-01")
    ]
    assert ok_json(url, "services", "list", "--customer", "Acme s.r.o.") == []

    wallet = ok_json(url, "wallet", "show", "Alice Novak")
    assert wallet["balance"] == "90.00 USD"
    assert [(p["kind"], p["amount"]) for p in wallet["postings"]] == [
        ("opening_funds", "90.00 USD")
    ]
    assert ok_json(url, "wallet", "show", "Acme s.r.o.")["postings"] == []

    check = ok(url, "ledger", "check")
    assert "ledger balanced" in check.stdout

    # the same listings as tables still work
    for group in ("taxes", "classes", "plans", "resellers", "services"):
        assert ok(url, group, "list").stdout.strip()
    assert "Alice" in ok(url, "customers", "list").stdout
    assert "90.00 USD" in ok(url, "wallet", "show", "Alice Novak").stdout


def _commands(group: typer.Typer) -> Iterator[tuple[str, Any]]:
    command = typer.main.get_command(group)
    for name, sub in command.commands.items():  # type: ignore[attr-defined]
        if hasattr(sub, "commands"):
            for sub_name, leaf in sub.commands.items():
                yield f"{name} {sub_name}", leaf
        else:
            yield name, sub


def test_every_listing_has_json() -> None:
    listings = [(n, c) for n, c in _commands(cli) if n.endswith((" list", " show"))]
    assert len(listings) >= 8
    missing = [n for n, c in listings if "--json" not in {o for p in c.params for o in p.opts}]
    assert missing == []


def test_names_are_data_not_markup(database_url: str) -> None:
    """A name with Rich markup in it is printed as typed, in messages and tables."""
    added = ok(database_url, "classes", "add", "P [/] [b]")
    assert "'P [/] [b]' created" in added.stdout
    assert "P [/] [b]" in ok(database_url, "classes", "list").stdout
    added = ok(database_url, "customers", "add", "A [/]", "--class", "1", "--currency", "EUR")
    assert "'A [/]' created" in added.stdout
    assert "A [/]" in ok(database_url, "customers", "list").stdout
    assert "A [/]" in ok(database_url, "customers", "show", "A [/]").stdout


REFUSALS = [
    (
        "credit_limit",
        [
            "customers",
            "add",
            "Carol",
            "--class",
            "Residential",
            "--currency",
            "USD",
            "--credit-limit",
            "50",
            "--field",
            "national_id=1234567",
        ],
    ),
    ("customer_class", ["customers", "add", "Carol", "--class", "Gold", "--currency", "USD"]),
    (
        "name",
        [
            "customers",
            "add",
            "Alice Novak",
            "--class",
            "Residential",
            "--currency",
            "USD",
            "--field",
            "national_id=1234567",
        ],
    ),
    (
        "currency",
        [
            "customers",
            "add",
            "Carol",
            "--class",
            "Residential",
            "--currency",
            "XYZ",
            "--field",
            "national_id=1234567",
        ],
    ),
    (
        "custom_data.national_id",
        ["customers", "add", "Carol", "--class", "Residential", "--currency", "USD"],
    ),
    (
        "custom_data",
        [
            "customers",
            "add",
            "Carol",
            "--class",
            "Residential",
            "--currency",
            "USD",
            "--field",
            "national_id",
        ],
    ),
    (
        "anchor_day",
        [
            "customers",
            "add",
            "Carol",
            "--class",
            "Residential",
            "--currency",
            "USD",
            "--cycle",
            "monthly_anniversary",
            "--anchor-day",
            "32",
            "--field",
            "national_id=1234567",
        ],
    ),
    (
        "timezone",
        [
            "customers",
            "add",
            "Carol",
            "--class",
            "Residential",
            "--currency",
            "USD",
            "--timezone",
            "Europe/Atlantis",
            "--field",
            "national_id=1234567",
        ],
    ),
    (
        "available_funds",
        [
            "customers",
            "add",
            "Carol",
            "--class",
            "Residential",
            "--currency",
            "USD",
            "--available-funds=-5",
            "--field",
            "national_id=1234567",
        ],
    ),
    (
        "price",
        [
            "plans",
            "add",
            "Bad",
            "--price=-1",
            "--currency",
            "USD",
            "--download",
            "10M",
            "--upload",
            "1M",
        ],
    ),
    (
        "fup_tiers",
        [
            "plans",
            "add",
            "Bad",
            "--price",
            "1",
            "--currency",
            "USD",
            "--download",
            "10M",
            "--upload",
            "1M",
            "--fup",
            "100GB:suspend",
            "--fup",
            "50GB:suspend",
        ],
    ),
    ("custom_fields", ["classes", "add", "Bad", "--field", "tax_code:required:[0-9"]),
    ("tax_profile", ["classes", "add", "Bad", "--tax-profile", "VAT 99"]),
    ("rate", ["taxes", "add", "Bad", "--rate", "150"]),
    ("plan", ["services", "add", "--customer", "Alice Novak", "--plan", "Nope"]),
    ("customer", ["services", "add", "--customer", "Nobody", "--plan", "Home 50"]),
    (
        "active_to",
        [
            "services",
            "add",
            "--customer",
            "Alice Novak",
            "--plan",
            "Home 50",
            "--from",
            "2026-02-01",
            "--to",
            "2026-01-15",
        ],
    ),
    (
        "active_from",
        [
            "services",
            "add",
            "--customer",
            "Alice Novak",
            "--plan",
            "Home 50",
            "--from",
            "2026-13-01",
        ],
    ),
    (
        "period_months",
        [
            "services",
            "add",
            "--customer",
            "Alice Novak",
            "--plan",
            "Home 50",
            "--period-months",
            "6",
        ],
    ),
    # a negative amount is a value refused by its rule, not an unknown option "-1"
    ("amount", ["payments", "add", "Alice Novak", "-1", "--key", "negative"]),
    ("amount", ["payments", "add", "Alice Novak", "-0.50", "--reference", "r-negative"]),
    ("amount", ["payments", "add", "Alice Novak", "--key", "negative", "--", "-1"]),
    ("customer", ["customers", "show", "Nobody"]),
    ("customer", ["customers", "show", "99999999999999999999999"]),
    ("customer", ["wallet", "show", "Nobody"]),
    ("customer", ["services", "list", "--customer", "Nobody"]),
]


def assert_refused(result: Result, field: str) -> None:
    assert result.exit_code == 2, result.output
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(f"error: {field}: "), lines[0]
    assert len(lines[0]) > len(f"error: {field}: ") + 5  # a rule follows the field
    assert result.stdout == ""


def test_refusals_exit_2_with_one_line_and_write_nothing(
    app: App, seeded_url: str, subtests: pytest.Subtests
) -> None:
    for field, args in REFUSALS:
        with subtests.test(" ".join(args[:2]) + f" -> {field}"):
            before = snapshot(app)
            assert_refused(invoke(seeded_url, *args), field)
            assert snapshot(app) == before


def test_a_bad_now_is_refused_like_any_input(app: App, seeded_url: str) -> None:
    before = snapshot(app)
    result = runner.invoke(
        cli,
        ["--database-url", seeded_url, "--now", "yesterday", "taxes", "add", "X", "--rate", "1"],
    )
    assert_refused(result, "now")
    assert snapshot(app) == before


def test_missing_sqlite_database_is_refused_and_not_created(tmp_path: Path) -> None:
    path = tmp_path / "nowhere.db"
    result = invoke(f"sqlite:///{path}", "customers", "list")
    assert_refused(result, "database")
    assert "ispbill init" in result.stderr
    assert not path.exists()


def test_empty_sqlite_database_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "empty.db"
    path.touch()
    result = invoke(f"sqlite:///{path}", "taxes", "add", "VAT", "--rate", "21")
    assert_refused(result, "database")
    assert "not initialised" in result.stderr


@pytest.fixture
def empty_postgres_url(postgres_url: str) -> Iterator[str]:
    name = f"ispbill_empty_{uuid.uuid4().hex[:8]}"
    admin = create_engine(
        make_url(postgres_url).set(database="postgres"), isolation_level="AUTOCOMMIT"
    )
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(postgres_url).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def test_empty_postgres_database_is_refused_then_initialised(empty_postgres_url: str) -> None:
    result = invoke(empty_postgres_url, "customers", "list", "--json")
    assert_refused(result, "database")
    assert "not initialised" in result.stderr
    ok(empty_postgres_url, "init")
    assert ok_json(empty_postgres_url, "customers", "list") == []


def test_unreachable_postgres_database_is_one_line(postgres_url: str) -> None:
    url = make_url(postgres_url).set(database=f"missing_{uuid.uuid4().hex[:8]}")
    result = invoke(url.render_as_string(hide_password=False), "customers", "list")
    assert_refused(result, "database")


def test_tampered_balance_fails_ledger_check(seeded_url: str) -> None:
    engine = make_engine(seeded_url)
    try:
        with engine.begin() as connection:
            connection.execute(
                text(
                    "UPDATE ledger_accounts SET balance_minor = balance_minor + 1 WHERE code = :c"
                ),
                {"c": "wallet:1:USD"},
            )
    finally:
        engine.dispose()
    result = invoke(seeded_url, "ledger", "check")
    assert result.exit_code == 1, result.output
    assert "wallet:1:USD" in result.stdout
    assert "expected 9000, found 9001" in result.stdout


def periods(result: Result) -> list[tuple[str, str]]:
    return [(row["start"], row["last_day"]) for row in json.loads(result.stdout)]


def test_calendar_anniversary_follows_portabilling() -> None:
    result = runner.invoke(
        cli, ["calendar", "monthly_anniversary", "--start", "2026-01-30", "--count", "3", "--json"]
    )
    assert result.exit_code == 0, result.output
    assert periods(result) == [
        ("2026-01-30", "2026-02-27"),
        ("2026-02-28", "2026-03-27"),
        ("2026-03-28", "2026-04-27"),
    ]


def test_calendar_30_days_follows_portabilling() -> None:
    result = runner.invoke(
        cli, ["calendar", "days_30", "--start", "2026-03-20", "--count", "2", "--json"]
    )
    assert result.exit_code == 0, result.output
    assert periods(result) == [("2026-03-20", "2026-04-18"), ("2026-04-19", "2026-05-18")]
    assert [row["days"] for row in json.loads(result.stdout)] == [30, 30]


def test_calendar_refuses_an_unknown_cycle() -> None:
    result = runner.invoke(cli, ["calendar", "fortnightly", "--start", "2026-03-20"])
    assert_refused(result, "cycle")

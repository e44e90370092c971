"""Bank statement import on both databases, for each format banks export: CSV with a column
map, ISO 20022 camt.053 and SWIFT MT940 (hand-written samples in ``tests/fixtures/bank``).

Each sample has a credit matched by variable symbol, one matched by the payer's IBAN, an
unmatched credit, a debit (the bank's fee), and a credit in USD for a EUR wallet. Matched credits
become payments through the payment use case (so Alice's deactivated service comes back);
importing the same file again creates nothing; unmatched lines are listed and assignable.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select
from typer.testing import CliRunner

from ispbill.adapters.bank import ColumnMap, read_statement
from ispbill.adapters.db import ledger_store as ledger
from ispbill.adapters.db.models import BankStatementLine, Charge, Payment
from ispbill.bootstrap import App
from ispbill.domain.errors import Conflict, ValidationError
from ispbill.entrypoints.cli.main import app as cli
from ispbill.use_cases.catalog import customer_accounts as customer_cases
from ispbill.use_cases.catalog import offerings as catalog
from ispbill.use_cases.catalog.name_lookups import customer_class_id_of, customer_id_of, plan_id_of
from ispbill.use_cases.payments.bank_import import ImportReport, assign_line, import_statement
from ispbill.use_cases.service_lifecycle import new_services as services
from scenarios.helpers import at, check_books, state, tick

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "bank"
CAMT = FIXTURES / "statement.camt053.xml"
MT940 = FIXTURES / "statement.mt940.sta"
CSV = FIXTURES / "statement.csv"
CSV_MAP = FIXTURES / "statement-map.toml"
T0 = at(2026, 1, 1, 9)
IMPORTED_AT = at(2026, 1, 16, 8)
ACTOR = "test"


@pytest.fixture
def app(app: App) -> Iterator[App]:
    """Alice (variable symbol 1001, a prepaid EUR service she cannot pay: deactivated) and Bob
    (customer number C-0002, his IBAN typed with spaces); the books are checked afterwards."""
    with app.uow() as uow:
        catalog.add_class(uow, spec=catalog.NewClass(name="Home"), now=T0, actor=ACTOR)
    spec = catalog.NewPlan(
        name="Net 30", price="30.00", currency="EUR", download="50M", upload="10M"
    )
    with app.uow() as uow:
        catalog.add_plan(uow, spec=spec, now=T0, actor=ACTOR)
    for name, data in (
        ("Alice", {"variable_symbol": "1001"}),
        ("Bob", {"customer_number": "C-0002", "iban": "de89 3704 0044 0532 0130 00"}),
    ):
        with app.uow() as uow:
            customer_cases.add_customer(
                uow,
                spec=customer_cases.NewCustomer(
                    name=name,
                    customer_class_id=customer_class_id_of(uow, "Home"),
                    currency="EUR",
                    custom_data=data,
                ),
                now=T0,
                actor=ACTOR,
            )
    with app.uow() as uow:
        services.add_service(
            uow,
            spec=services.NewService(
                customer_id=customer_id_of(uow, "Alice"),
                plan_id=plan_id_of(uow, "Net 30"),
                active_from=date(2026, 1, 1),
            ),
            now=T0,
            actor=ACTOR,
        )
    tick(app, T0)
    assert state(app, 1) == ("deactivated", "insufficient_funds")
    yield app
    check_books(app)


def run_import(app: App, path: Path, **options: Any) -> ImportReport:
    if path.suffix == ".csv" and "column_map" not in options:
        options["column_map"] = ColumnMap.load(CSV_MAP)
    return import_statement(
        app.uow,
        data=path.read_bytes(),
        file_name=path.name,
        now=IMPORTED_AT,
        actor=ACTOR,
        **options,
    )


def figures(report: ImportReport) -> tuple[int, int, int, int, int]:
    return (
        report.rows_read,
        report.payments_created,
        report.duplicates_skipped,
        report.unmatched,
        report.ignored,
    )


def balances(app: App) -> dict[str, int]:
    with app.uow() as uow:
        return {
            name: ledger.wallet_balance(uow.session, cid, "EUR").minor
            for cid, name in ((1, "Alice"), (2, "Bob"))
        }


def lines(app: App) -> list[tuple[str, str, int | None, str]]:
    """(status, amount, customer, reason start) of every stored line, in import order."""
    with app.uow() as uow:
        rows = uow.session.scalars(select(BankStatementLine).order_by(BankStatementLine.id))
        return [
            (r.status, f"{r.amount_minor} {r.currency}", r.customer_id, r.reason.split(",")[0])
            for r in rows
        ]


def reactivation_gross(app: App) -> int:
    with app.uow() as uow:
        return int(
            uow.session.scalar(select(Charge.gross_minor).where(Charge.kind == "reactivation")) or 0
        )


EXPECTED = {
    # rows read, payments created, duplicates skipped, unmatched, ignored (debits)
    CAMT: (7, 4, 0, 2, 1),
    MT940: (6, 3, 0, 2, 1),
    CSV: (5, 2, 0, 2, 1),
}
PAID = {
    CAMT: {"Alice": 50_00, "Bob": 75_00},
    MT940: {"Alice": 50_00, "Bob": 45_00},
    CSV: {"Alice": 30_00, "Bob": 45_00},
}


@pytest.mark.parametrize("path", [CAMT, MT940, CSV], ids=["camt053", "mt940", "csv"])
def test_import_matches_payments_and_a_second_run_creates_nothing(app: App, path: Path) -> None:
    first = run_import(app, path)
    assert figures(first) == EXPECTED[path]
    assert first.format == {CAMT: "camt053", MT940: "mt940", CSV: "csv"}[path]
    # Alice's payments went through the payment use case: her service is back at once
    assert state(app, 1) == ("active", None)
    paid = PAID[path]
    assert balances(app) == {"Alice": paid["Alice"] - reactivation_gross(app), "Bob": paid["Bob"]}
    stored = lines(app)
    assert [s for s, *_ in stored].count("matched") == EXPECTED[path][1]
    foreign = [row for row in stored if row[1].endswith("USD")]
    assert foreign == [("unmatched", "1000 USD", 1, "matched by variable_symbol 1001")]
    with app.uow() as uow:
        [reason] = uow.session.scalars(
            select(BankStatementLine.reason).where(BankStatementLine.currency == "USD")
        ).all()
    assert "refused: currency: payment in USD refused" in reason

    before = (balances(app), lines(app))
    second = run_import(app, path)
    rows = EXPECTED[path][0]
    assert figures(second) == (rows, 0, rows, 0, 0)
    assert (balances(app), lines(app)) == before


def test_the_same_bank_transaction_in_two_formats_is_one_payment(app: App) -> None:
    """The bank's camt.053 and MT940 exports of one day name transactions alike: importing both
    pays each transfer once; only what the MT940 adds (a cash deposit, the USD account) is new."""
    run_import(app, CAMT)
    report = run_import(app, MT940)
    assert figures(report) == (6, 1, 4, 1, 0)
    with app.uow() as uow:
        assert uow.session.scalar(select(func.count()).select_from(Payment)) == 5


def test_unmatched_lines_are_listed_and_assignable(app: App) -> None:
    report = run_import(app, CAMT)
    with app.uow() as uow:
        unmatched = uow.session.scalars(
            select(BankStatementLine)
            .where(BankStatementLine.status == "unmatched")
            .order_by(BankStatementLine.id)
        ).all()
    assert [u.id for u in unmatched] == report.unmatched_line_ids
    unknown, usd = unmatched
    assert (unknown.amount_minor, unknown.reference, unknown.counterparty_name) == (
        25_00,
        "9999",
        "Unknown Payer",
    )

    with app.uow() as uow:
        done = assign_line(
            uow,
            line_id=unknown.id,
            customer_id=customer_id_of(uow, "Bob"),
            now=IMPORTED_AT,
            actor=ACTOR,
        )
    assert done.recorded.created
    assert balances(app)["Bob"] == 75_00 + 25_00
    with app.uow() as uow:
        row = uow.session.get(BankStatementLine, unknown.id)
        assert row is not None
        assert (row.status, row.customer_id, row.payment_id) == (
            "matched",
            2,
            done.recorded.payment.id,
        )

    with app.uow() as uow, pytest.raises(Conflict):
        assign_line(
            uow,
            line_id=unknown.id,
            customer_id=customer_id_of(uow, "Alice"),
            now=IMPORTED_AT,
            actor=ACTOR,
        )
    with app.uow() as uow, pytest.raises(ValidationError) as foreign:
        assign_line(
            uow,
            line_id=usd.id,
            customer_id=customer_id_of(uow, "Alice"),
            now=IMPORTED_AT,
            actor=ACTOR,
        )
    assert foreign.value.field == "currency"
    with app.uow() as uow:
        debit = uow.session.scalars(
            select(BankStatementLine.id).where(BankStatementLine.status == "ignored")
        ).one()
    with app.uow() as uow, pytest.raises(ValidationError) as out:
        assign_line(
            uow, line_id=debit, customer_id=customer_id_of(uow, "Bob"), now=IMPORTED_AT, actor=ACTOR
        )
    assert out.value.field == "line"
    # a re-import after the assignment still creates nothing
    assert figures(run_import(app, CAMT))[1] == 0


def test_a_file_breaking_its_schema_is_refused_before_anything_is_written(app: App) -> None:
    broken = CAMT.read_bytes().replace(
        b"<IBAN>DE89370400440532013000</IBAN>", b"<IBAN>DE89 3704 0044</IBAN>"
    )
    with pytest.raises(ValidationError) as refused:
        import_statement(app.uow, data=broken, file_name="x.xml", now=IMPORTED_AT, actor=ACTOR)
    assert refused.value.field == "file"
    assert "DbtrAcct/Id/IBAN" in refused.value.rule
    with app.uow() as uow:
        assert uow.session.scalar(select(func.count()).select_from(BankStatementLine)) == 0


def test_the_readers_agree_on_what_the_samples_say() -> None:
    """The three samples describe the same day; the readers give the same first line."""
    camt = read_statement(CAMT.read_bytes())[1][0]
    mt = read_statement(MT940.read_bytes())[1][0]
    csv_line = read_statement(CSV.read_bytes(), column_map=ColumnMap.load(CSV_MAP))[1][0]
    for line in (camt, mt, csv_line):
        assert (line.booked_on, str(line.amount), line.counterparty_iban) == (
            date(2026, 1, 15),
            "30.00 EUR",
            "DE75512108001245126199",
        )
    assert camt.external_id == mt.external_id == "DE02120300000000202051/2026011500001"


def test_csv_column_map_from_the_command_line_and_refusals() -> None:
    data = b"when,what,ref\n2026-01-15,12.50,1001\n"
    cmap = ColumnMap.from_pairs(
        None, ["date=when", "amount=what", "reference=ref", "default_currency=EUR"]
    )
    [line] = read_statement(data, format="csv", column_map=cmap)[1]
    assert (str(line.amount), line.reference, line.external_id[:2]) == ("12.50 EUR", "1001", "h:")
    with pytest.raises(ValidationError) as unknown:
        ColumnMap.from_pairs(None, ["amout=x"])
    assert unknown.value.field == "column_map.amout"
    with pytest.raises(ValidationError) as missing:
        read_statement(b"a,b\n1,2\n", format="csv", column_map=cmap)
    assert missing.value.field == "column_map.date"


def test_cli_import_twice_then_list_and_assign(app: App, database_url: str) -> None:
    runner = CliRunner()

    def run(*args: str) -> Any:
        return runner.invoke(
            cli, ["--database-url", database_url, "--now", "2026-01-16T08:00:00Z", *args]
        )

    first = run("payments", "import", str(CSV), "--column-map", str(CSV_MAP), "--json")
    assert first.exit_code == 0, first.output
    report = json.loads(first.stdout)
    assert [report[k] for k in ("rows_read", "payments_created", "unmatched", "ignored")] == [
        5,
        2,
        2,
        1,
    ]
    assert [u["amount"] for u in report["unmatched_lines"]] == ["1250.00 EUR", "10.00 USD"]

    second = run("payments", "import", str(CSV), "--column-map", str(CSV_MAP))
    assert second.exit_code == 0, second.output
    assert "duplicates skipped" in second.stdout

    listed = run("payments", "unmatched", "--json")
    assert listed.exit_code == 0, listed.output
    [big, _usd] = json.loads(listed.stdout)
    assigned = run("payments", "assign", str(big["line"]), "Bob")
    assert assigned.exit_code == 0, assigned.output
    assert len(json.loads(run("payments", "unmatched", "--json").stdout)) == 1

    wrong = run("payments", "import", str(CAMT), "--format", "mt940")
    assert wrong.exit_code == 2
    assert "file:" in wrong.stderr

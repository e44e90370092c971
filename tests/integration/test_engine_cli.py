"""The engine's commands end to end through Typer's test runner, on both databases: a tick at an
instant, Charge & Invoice, the preview that writes nothing, payments exactly once, invoices
(list, show, PDF), operator settings, reactivating a paused service, and the demo.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.exc import OperationalError
from typer.testing import CliRunner, Result

from ispbill.adapters.db.engine import make_engine
from ispbill.adapters.db.models import Base, LedgerAccount
from ispbill.entrypoints.cli.main import app as cli
from ispbill.use_cases.billing import tick as billing

START = "2026-01-01T09:00:00Z"
runner = CliRunner()

CATALOGUE = [
    ["taxes", "add", "VAT 21", "--rate", "21"],
    ["classes", "add", "Residential", "--tax-profile", "VAT 21"],
    [
        "plans",
        "add",
        "Home 30",
        "--price",
        "30.00",
        "--currency",
        "USD",
        "--download",
        "50M",
        "--upload",
        "10M",
    ],
]


def invoke(url: str, now: str, *args: str) -> Result:
    return runner.invoke(cli, ["--database-url", url, "--now", now, *args])


def ok(url: str, now: str, *args: str) -> Result:
    result = invoke(url, now, *args)
    assert result.exit_code == 0, (args, result.output)
    return result


def ok_json(url: str, now: str, *args: str) -> Any:
    return json.loads(ok(url, now, *args, "--json").stdout)


def refused(url: str, now: str, *args: str) -> str:
    """The one-line refusal on stderr of a command that must exit 2."""
    result = invoke(url, now, *args)
    assert result.exit_code == 2, (args, result.output)
    return result.stderr


def seed(url: str, *customers: list[str]) -> None:
    """The catalogue, then each customer (``customers add`` arguments) with a Home 30 service
    from 2026-01-01."""
    for args in CATALOGUE:
        ok(url, START, *args)
    for number, args in enumerate(customers, start=1):
        ok(url, START, "customers", "add", *args, "--class", "Residential", "--currency", "USD")
        ok(url, START, "services", "add", "--customer", str(number), "--plan", "Home 30")


PREPAID = ["Alice", "--available-funds", "100.00"]
POSTPAID = ["Bob", "--balance-control", "postpaid", "--credit-limit", "100"]


def balance(url: str, customer: str) -> str:
    return str(ok_json(url, START, "customers", "show", customer)["balance"])


def row_counts(url: str) -> tuple[dict[str, int], dict[str, int]]:
    engine = make_engine(url)
    try:
        with engine.connect() as connection:
            counts = {
                t.name: connection.execute(select(func.count()).select_from(t)).scalar_one()
                for t in Base.metadata.sorted_tables
            }
            balances = {
                code: int(value)
                for code, value in connection.execute(
                    select(LedgerAccount.code, LedgerAccount.balance_minor)
                )
            }
    finally:
        engine.dispose()
    return counts, balances


def test_run_charges_what_is_due_at_the_instant_exactly_once(database_url: str) -> None:
    seed(database_url, PREPAID)
    first = ok_json(database_url, START, "run", "--at", "2026-01-01T09:00:00Z")
    assert (first["customers"], first["charges"], first["transitions"]) == (1, 1, {"active": 1})
    assert balance(database_url, "Alice") == "63.70 USD"  # 100 - 30 - 21 % VAT
    again = ok_json(database_url, START, "run", "--at", "2026-01-01T09:00:00Z")
    assert again["charges"] == 0
    # without --at the tick runs at the CLI clock (the global --now): February is charged
    february = ok_json(database_url, "2026-02-01T00:00:00Z", "run", "--chunk-size", "1")
    assert february["charges"] == 1
    assert february["services_per_second"] >= 0
    assert balance(database_url, "Alice") == "27.40 USD"
    table = ok(database_url, START, "run", "--at", "2026-03-01T00:00:00Z").stdout
    assert "deactivated" in table  # 27.40 USD no longer covers March


def test_a_run_that_fails_part_way_says_what_it_had_committed(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each chunk of a tick is its own transaction: when the database fails under the second one
    (a lost connection: not one customer's data, so the tick stops rather than skipping the
    customer), the first stays, and the message says so instead of "nothing was written"."""
    seed(database_url, PREPAID, ["Carol", "--available-funds", "100.00"])
    real = billing.store_outcomes
    calls: list[int] = []

    def refused_second(*args: Any, **kwargs: Any) -> int:
        calls.append(1)
        if len(calls) == 2:
            raise OperationalError("INSERT", {}, Exception("server closed the connection (a test)"))
        return real(*args, **kwargs)

    monkeypatch.setattr(billing, "store_outcomes", refused_second)
    message = refused(database_url, START, "run", "--chunk-size", "1").strip()
    assert message == (
        "error: database: cannot be used (server closed the connection (a test)); the tick "
        "stopped after committing 1 chunk (1 customer, 1 charge, 0 invoices); those stand, "
        "and the next tick carries on from there"
    )
    assert (balance(database_url, "Alice"), balance(database_url, "Carol")) == (
        "63.70 USD",
        "100.00 USD",
    )
    monkeypatch.undo()
    rerun = ok_json(database_url, START, "run", "--chunk-size", "1")
    assert (rerun["customers"], rerun["charges"]) == (1, 1)
    assert balance(database_url, "Carol") == "63.70 USD"


def test_preview_lists_each_period_and_writes_nothing(database_url: str) -> None:
    seed(database_url, PREPAID)
    before = row_counts(database_url)
    result = ok_json(database_url, START, "preview", "Alice", "--until", "2026-04-01")
    assert row_counts(database_url) == before
    steps = [(s["event"], s["period"], s["amount"]) for s in result["steps"]]
    assert steps == [
        ("charge (period)", "2026-01-01..2026-01-31", "-36.30 USD"),
        ("pending -> active", None, None),
        ("charge (period)", "2026-02-01..2026-02-28", "-36.30 USD"),
        ("active -> deactivated", None, None),  # 27.40 USD left for March
    ]
    assert (result["balance_now"], result["balance_after"]) == ("100.00 USD", "27.40 USD")
    table = ok(database_url, START, "preview", "Alice", "--until", "2026-04-01").stdout
    assert "nothing written" in table
    assert row_counts(database_url) == before


OUT_OF_RANGE = "is out of range; must be between 1970-01-01 and 2200-12-31"


def test_dates_out_of_range_are_refused_with_one_line(
    database_url: str, tmp_path: Path, subtests: pytest.Subtests
) -> None:
    """Issue 13: dates the CLI accepted overflowed every later tick (--to 9999-12-31), made a
    postpaid tick catch up for minutes (--from 0001-01-01) or ended in a traceback. One range
    for every command: exit 2, one line naming the field and the rule, nothing written."""
    url = database_url
    seed(url, POSTPAID)
    out = tmp_path / "cards"
    out.mkdir()
    card = ["cards", "generate", "--count", "1", "--value", "10", "--currency", "USD"]
    service = ["services", "add", "--customer", "Bob", "--plan", "Home 30"]
    cases = [
        ("active_to", [*service, "--to", "9999-12-31"]),
        ("active_from", [*service, "--from", "0001-01-01"]),
        ("from", ["services", "suspend", "1", "--reason", "not_set", "--from", "9999-12-30"]),
        ("expires", [*card, "--expires", "9999-12-31", "--out", str(out)]),
        ("start", ["calendar", "monthly", "--start", "9999-12-01"]),
        ("active_to", ["services", "reactivate", "1", "--active-to", "9999-12-31"]),
        ("on", ["services", "terminate", "1", "--on", "1969-12-31"]),
        ("until", ["preview", "Bob", "--until", "2201-01-01"]),
        ("at", ["run", "--at", "9999-12-31T23:00:00-05:00"]),
        ("now", ["--now", "0001-01-01", "customers", "list"]),
    ]
    before = row_counts(url)
    for field, args in cases:
        with subtests.test(" ".join(args[:2])):
            result = runner.invoke(
                cli,
                ["--database-url", url, "--now", START, *args],
                env={"ISPBILL_REFILL_CARD_SECRET": "cli-refill-card-secret-0123456789abcdef"},
            )
            assert result.exit_code == 2, result.output
            [line] = result.stderr.splitlines()
            assert line.startswith(f"error: {field}: "), line
            assert line.endswith(OUT_OF_RANGE), line
            assert result.stdout == ""
    assert row_counts(url) == before
    assert list(out.iterdir()) == []  # no card files either
    # the edges of the range are accepted
    ok(url, START, *service, "--to", "2200-12-31")
    ok(url, START, "calendar", "monthly", "--start", "2200-12-01", "--count", "2")


def test_run_skips_a_customer_whose_data_is_bad_and_says_so(database_url: str) -> None:
    """A row written past validation (an old version, an import, a hand edit) fails only its
    customer: the others are billed, the skipped one is an error line and the exit status 1."""
    seed(database_url, PREPAID, ["Carol", "--available-funds", "100.00"])
    engine = make_engine(database_url)
    try:
        with engine.begin() as connection:
            connection.execute(text("UPDATE services SET active_to = '9999-12-31' WHERE id = 1"))
    finally:
        engine.dispose()
    result = invoke(database_url, START, "run", "--json")
    assert result.exit_code == 1, result.output
    report = json.loads(result.stdout)
    assert (report["customers"], report["charges"]) == (1, 1)
    assert report["skipped"] == [
        {"customer": 1, "stage": "decide", "error": "OverflowError: date value out of range"}
    ]
    assert [line for line in result.stderr.splitlines() if line.strip()] == [  # after the bar
        "error: customer 1: skipped by the tick (decide): OverflowError: date value out of range"
    ]
    assert balance(database_url, "Alice") == "100.00 USD"
    assert balance(database_url, "Carol") == "63.70 USD"
    events = ok_json(database_url, START, "customers", "show", "Alice")["events"]
    assert [(e["kind"], e["actor"]) for e in events if e["kind"].startswith("tick.")] == [
        ("tick.customer_failed", "engine")
    ]


def test_charge_and_invoice_for_a_prepaid_customer(database_url: str) -> None:
    seed(database_url, PREPAID)
    result = ok_json(database_url, "2026-01-05T10:00:00Z", "charge", "Alice")
    assert result["invoice"] == "2026-000001"
    assert [(c["period"], c["amount"], c["invoice"]) for c in result["charges"]] == [
        ("2026-01-01..2026-01-31", "-36.30 USD", "2026-000001")
    ]
    assert result["balance"] == "63.70 USD"
    listed = ok_json(database_url, START, "invoices", "list", "--customer", "Alice")
    assert [(i["number"], i["total"], i["status"]) for i in listed] == [
        ("2026-000001", "36.30 USD", "paid")
    ]
    # a postpaid customer's charges are invoiced per billing date; the result names that invoice
    ok(
        database_url,
        START,
        "customers",
        "add",
        *POSTPAID,
        "--class",
        "Residential",
        "--currency",
        "USD",
    )
    ok(database_url, START, "services", "add", "--customer", "Bob", "--plan", "Home 30")
    postpaid = ok_json(database_url, "2026-01-05T10:00:00Z", "charge", "Bob")
    assert postpaid["invoice"] == "2026-000002"
    assert [c["invoice"] for c in postpaid["charges"]] == ["2026-000002"]
    assert postpaid["balance"] == "-36.30 USD"
    # nothing new to charge or invoice the same day
    again = ok(database_url, "2026-01-05T11:00:00Z", "charge", "Alice").stdout
    assert "no new charges" in again
    assert "no new invoice" in again


def test_payment_with_the_same_key_credits_once(database_url: str) -> None:
    seed(database_url, PREPAID)
    first = ok(database_url, START, "payments", "add", "Alice", "25.50", "--key", "receipt-7")
    assert "recorded" in first.stdout
    second = ok(database_url, START, "payments", "add", "Alice", "25.50", "--key", "receipt-7")
    assert "already recorded" in second.stdout
    # 100 + 25.50, less January (36.30), which the payment's re-evaluation charged at once
    assert balance(database_url, "Alice") == "89.20 USD"
    payments = ok_json(database_url, START, "payments", "list", "--customer", "Alice")
    assert [(p["amount"], p["method"], p["key"]) for p in payments] == [
        ("25.50 USD", "cash", "receipt-7")
    ]
    bank = ["payments", "add", "1", "10", "--method", "bank_transfer", "--reference", "TX-1"]
    ok(database_url, START, *bank)
    ok(database_url, START, *bank)
    assert balance(database_url, "Alice") == "99.20 USD"
    assert "key" in refused(database_url, START, "payments", "add", "Alice", "5")
    assert "method" in refused(
        database_url, START, "payments", "add", "Alice", "5", "--key", "x", "--method", "cheque"
    )


def test_a_reference_repeated_for_another_customer_is_their_payment(database_url: str) -> None:
    """``--reference`` is the payer's: another customer's receipt with the same number is
    recorded for them; the same customer's with another amount is refused naming it."""
    seed(database_url, PREPAID, POSTPAID)
    ok(database_url, START, "payments", "add", "Alice", "5.00", "--reference", "RCPT-1")
    bob = ok(database_url, START, "payments", "add", "Bob", "250.00", "--reference", "RCPT-1")
    assert "payment 2 recorded: 250.00 USD" in bob.stdout
    assert "already" not in bob.stdout
    again = ok(database_url, START, "payments", "add", "Bob", "250.00", "--reference", "RCPT-1")
    assert "already recorded as payment 2 (250.00 USD" in again.stdout
    message = refused(database_url, START, "payments", "add", "Alice", "6", "--reference", "RCPT-1")
    assert "reference" in message
    assert "5.00 USD" in message
    payments = ok_json(database_url, START, "payments", "list")
    assert sorted((p["customer"], p["amount"], p["reference"]) for p in payments) == [
        ("Alice", "5.00 USD", "RCPT-1"),
        ("Bob", "250.00 USD", "RCPT-1"),
    ]


def test_invoices_list_show_and_pdf(database_url: str, tmp_path: Path) -> None:
    seed(database_url, POSTPAID)
    ok(database_url, START, "run", "--at", START)
    [invoice] = ok_json(database_url, START, "invoices", "list", "--status", "issued")
    assert (invoice["number"], invoice["customer"], invoice["total"]) == (
        "2026-000001",
        "Bob",
        "36.30 USD",
    )
    ok(database_url, START, "payments", "add", "Bob", "20", "--key", "bob-1")
    shown = ok_json(database_url, START, "invoices", "show", "2026-000001")
    assert (shown["paid"], shown["due"], shown["status"]) == (
        "20.00 USD",
        "16.30 USD",
        "partially_paid",
    )
    [line] = shown["lines"]
    assert (line["period"], line["quantity"], line["net"], line["tax"], line["tax_rate"]) == (
        "2026-01-01..2026-01-31",
        "1",
        "30.00 USD",
        "6.30 USD",
        "21%",
    )
    assert ok_json(database_url, START, "invoices", "list", "--status", "paid") == []
    assert "status" in refused(database_url, START, "invoices", "list", "--status", "late")
    assert "number" in refused(database_url, START, "invoices", "show", "2026-999999")
    target = tmp_path / "invoice.pdf"
    ok(database_url, START, "invoices", "pdf", "2026-000001", "--out", str(target))
    assert target.read_bytes().startswith(b"%PDF")


def test_settings_show_and_set(database_url: str) -> None:
    settings = {s["key"]: s["value"] for s in ok_json(database_url, START, "settings", "show")}
    assert settings["payment_terms_days"] == 14
    error = refused(database_url, START, "settings", "set", "payment_terms_days", "soon")
    assert error.startswith("error: payment_terms_days:")
    assert "nope" in refused(database_url, START, "settings", "set", "nope", "1")
    ok(database_url, START, "settings", "set", "payment_terms_days", "30")
    settings = {s["key"]: s["value"] for s in ok_json(database_url, START, "settings", "show")}
    assert settings["payment_terms_days"] == 30


def test_reactivate_a_paused_service(database_url: str) -> None:
    for args in CATALOGUE:
        ok(database_url, START, *args)
    ok(
        database_url,
        START,
        "customers",
        "add",
        *PREPAID,
        "--class",
        "Residential",
        "--currency",
        "USD",
    )
    ok(
        database_url,
        START,
        "services",
        "add",
        "--customer",
        "Alice",
        "--plan",
        "Home 30",
        "--to",
        "2026-01-15",
    )
    ok(
        database_url, START, "run", "--at", START
    )  # January 1-15: 15/31 of 30.00 USD is 14.52, plus 3.05 VAT
    assert balance(database_url, "Alice") == "82.43 USD"
    refusal = refused(database_url, START, "services", "reactivate", "1", "--no-active-to")
    assert refusal.startswith("error: state:")
    ok(database_url, START, "run", "--at", "2026-01-16T00:00:00Z")
    [service] = ok_json(database_url, START, "services", "list")
    assert service["state"] == "paused (active_to)"

    later = "2026-02-15T10:00:00Z"
    assert "active_to" in refused(database_url, later, "services", "reactivate", "1")
    assert "active_to" in refused(
        database_url, later, "services", "reactivate", "1", "--active-to", "2026-02-01"
    )
    out = ok(database_url, later, "services", "reactivate", "1", "--no-active-to").stdout
    assert "billing from 2026-02-15" in out
    [service] = ok_json(database_url, later, "services", "list")
    assert (service["state"], service["active_to"]) == ("active", None)
    # February 15-28 is 14/28 of the month, 18.15 USD with VAT, charged at once
    assert balance(database_url, "Alice") == "64.28 USD"
    assert ok_json(database_url, later, "run", "--at", later)["charges"] == 0
    march = ok_json(database_url, later, "run", "--at", "2026-03-01T00:00:00Z")
    assert march["charges"] == 1
    assert balance(database_url, "Alice") == "27.98 USD"


def test_demo_builds_a_balanced_year(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'demo.db'}"
    args = ["demo", "--customers", "8", "--months", "2", "--database-url", url]
    result = runner.invoke(cli, args)
    assert result.exit_code == 0, result.output
    assert "ledger balanced" in result.stdout
    assert "2026-02" in result.stdout
    # the ledger check of the CLI agrees, and a second run recreates the same demo
    assert (
        "ledger balanced" in runner.invoke(cli, ["--database-url", url, "ledger", "check"]).stdout
    )
    again = runner.invoke(cli, args)
    assert again.exit_code == 0, again.output
    assert _without_timings(again.stdout) == _without_timings(result.stdout)


def _without_timings(text: str) -> list[str]:
    return [line for line in text.splitlines() if " s (ticks " not in line]

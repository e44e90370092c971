"""``ispbill charges add|list`` and ``services addon-add|addons|addon-end`` end to end through
Typer's runner, on both databases: a one-off charge from a prepaid wallet (once per key), one
waiting for a postpaid invoice, refusals that write nothing, and an add-on charged with the
plan by the tick."""

from __future__ import annotations

import json
from typing import Any

from typer.testing import CliRunner, Result

from ispbill.entrypoints.cli.main import app as cli

runner = CliRunner()
START = "2026-01-01T09:00:00Z"
JAN15 = "2026-01-15T10:00:00Z"
FEB1 = "2026-02-01T06:00:00Z"


def invoke(url: str, now: str, *args: str) -> Result:
    return runner.invoke(cli, ["--database-url", url, "--now", now, *args])


def ok(url: str, now: str, *args: str) -> Result:
    result = invoke(url, now, *args)
    assert result.exit_code == 0, (args, result.output)
    return result


def ok_json(url: str, now: str, *args: str) -> Any:
    return json.loads(ok(url, now, *args, "--json").stdout)


def refused(url: str, now: str, *args: str) -> str:
    result = invoke(url, now, *args)
    assert result.exit_code == 2, (args, result.output)
    return result.stderr


def seed(url: str) -> None:
    ok(url, START, "taxes", "add", "VAT 21", "--rate", "21")
    ok(url, START, "classes", "add", "Residential")
    ok(url, START, "plans", "add", "Home 31", "--price", "31.00", "--currency", "USD",
       "--download", "50M", "--upload", "10M")  # fmt: skip
    ok(url, START, "customers", "add", "Alice", "--class", "Residential", "--currency", "USD",
       "--available-funds", "100.00")  # fmt: skip
    ok(url, START, "customers", "add", "Bob", "--class", "Residential", "--currency", "USD",
       "--balance-control", "postpaid")  # fmt: skip
    ok(url, START, "services", "add", "--customer", "Alice", "--plan", "Home 31")
    ok(url, START, "services", "add", "--customer", "Bob", "--plan", "Home 31")
    ok(url, START, "run")


def balance(url: str, customer: str) -> str:
    return str(ok_json(url, START, "customers", "show", customer)["balance"])


def test_prepaid_charge_once_per_key_and_refusals(database_url: str) -> None:
    seed(database_url)
    assert balance(database_url, "Alice") == "69.00 USD"
    args = ("charges", "add", "Alice", "--amount", "10.00", "--quantity", "2",
            "--description", "Installation", "--tax-profile", "VAT 21", "--key", "inst-1")  # fmt: skip
    first = ok_json(database_url, JAN15, *args)
    assert (first["gross"], first["tax"], first["created"], first["paid_from"]) == (
        "24.20 USD",
        "4.20 USD",
        True,
        "wallet",
    )
    assert ok_json(database_url, JAN15, *args)["created"] is False
    assert balance(database_url, "Alice") == "44.80 USD"
    assert "amount: must be greater than zero" in refused(
        database_url, JAN15, "charges", "add", "Alice", "--amount", "0", "--description", "x"
    )
    assert "quantity: must be between 1 and 10000" in refused(
        database_url, JAN15, "charges", "add", "Alice", "--amount", "1", "--description", "x",
        "--quantity", "0",
    )  # fmt: skip
    assert "service: no service 2" in refused(
        database_url, JAN15, "charges", "add", "Alice", "--amount", "1", "--description", "x",
        "--service", "2",
    )  # fmt: skip
    assert "amount: the prepaid wallet holds 44.80 USD" in refused(
        database_url, JAN15, "charges", "add", "Alice", "--amount", "44.81", "--description", "x"
    )
    assert balance(database_url, "Alice") == "44.80 USD"
    [listed] = ok_json(database_url, JAN15, "charges", "list", "Alice")
    assert (listed["description"], listed["quantity"], listed["invoice"]) == (
        "Installation",
        2,
        None,
    )
    assert "balanced" in ok(database_url, JAN15, "ledger", "check").stdout


def test_postpaid_charge_and_addon_reach_the_next_invoice(database_url: str) -> None:
    seed(database_url)
    ok(database_url, JAN15, "charges", "add", "Bob", "--amount", "50", "--description", "Router")
    added = ok_json(
        database_url, JAN15, "services", "addon-add", "2", "--price", "3.10",
        "--description", "Static IP",
    )  # fmt: skip
    # 17 of January's 31 days of 3.10 = 1.70, invoiced at once
    assert (added["charged_now"], added["invoice"] is not None) == ("1.70 USD", True)
    ok(database_url, FEB1, "run")
    invoices = ok_json(database_url, FEB1, "invoices", "list")
    totals = sorted(i["total"] for i in invoices if i["customer"] == "Bob")
    # January's plan; the add-on's rest of January; February: plan, add-on and the router
    assert totals == ["1.70 USD", "31.00 USD", "84.10 USD"]
    [addon] = ok_json(database_url, FEB1, "services", "addons", "2")
    ended = ok_json(database_url, FEB1, "services", "addon-end", str(addon["id"]))
    assert ended["ends_on"] == "2026-02-28"
    assert "ends_on: 2026-02-10 is before 2026-02-28" in refused(
        database_url, FEB1, "services", "addon-end", str(addon["id"]), "--on", "2026-02-10"
    )
    assert "balanced" in ok(database_url, FEB1, "ledger", "check").stdout


def test_credit_void_payment_terms_and_received_day(database_url: str) -> None:
    seed(database_url)  # Bob (postpaid) has January's invoice 2026-000001 of 31.00
    assert "reason: required" in refused(
        database_url, JAN15, "invoices", "credit", "2026-000001", "--reason", " "
    )
    note = ok_json(
        database_url, JAN15, "invoices", "credit", "2026-000001", "--line", "1",
        "--amount", "10.00", "--reason", "outage",
    )  # fmt: skip
    assert (note["credit_note"], note["credited"], note["status"]) == (
        "CN2026-00001",
        "10.00 USD",
        "partially_paid",
    )
    assert "only an unpaid invoice is voided" in refused(
        database_url, JAN15, "invoices", "void", "2026-000001", "--reason", "x", "--yes"
    )
    ok(database_url, JAN15, "customers", "payment-terms", "Bob", "30")
    assert "payment_terms_days: must be between 0 and 365" in refused(
        database_url, JAN15, "customers", "payment-terms", "Bob", "366"
    )
    ok(database_url, FEB1, "run")
    february = [
        i for i in ok_json(database_url, FEB1, "invoices", "list") if i["number"] == "2026-000002"
    ]
    assert february[0]["due_date"] == "2026-03-03"  # 30 days after 1 February
    aborted = invoke(database_url, FEB1, "invoices", "void", "2026-000002", "--reason", "error")
    assert aborted.exit_code == 1  # asked to confirm, no answer: nothing voided
    voided = ok_json(
        database_url, FEB1, "invoices", "void", "2026-000002", "--reason", "error", "--yes"
    )
    assert (voided["status"], voided["credit_note"]) == ("void", "CN2026-00002")
    ok(database_url, FEB1, "payments", "add", "Bob", "21.00", "--reference", "VS-1",
       "--received-on", "2026-01-30")  # fmt: skip
    [payment] = ok_json(database_url, FEB1, "payments", "list", "--customer", "Bob")
    assert payment["received_at"].startswith("2026-01-30")
    assert payment["recorded_at"].startswith("2026-02-01")
    assert "balanced" in ok(database_url, FEB1, "ledger", "check").stdout


def test_scheduled_change_and_termination(database_url: str) -> None:
    seed(database_url)
    ok(database_url, START, "plans", "add", "Home 62", "--price", "62.00", "--currency", "USD",
       "--download", "100M", "--upload", "20M")  # fmt: skip
    planned = ok_json(database_url, JAN15, "services", "schedule-change", "1", "Home 62")
    assert (planned["effective_on"], planned["status"]) == ("2026-02-01", "planned")
    assert "already has planned change" in refused(
        database_url, JAN15, "services", "schedule-termination", "1"
    )
    ok(database_url, FEB1, "run")
    [done] = ok_json(database_url, FEB1, "services", "scheduled", "1")
    assert done["status"] == "done"
    assert balance(database_url, "Alice") == "7.00 USD"  # 100 - 31 - 62
    ending = ok_json(database_url, FEB1, "services", "schedule-termination", "2", "--at-period-end")
    assert ending["last_day"] == "2026-02-28"
    cancelled = ok_json(database_url, FEB1, "services", "cancel-change", str(ending["id"]))
    assert cancelled["status"] == "cancelled"
    assert "balanced" in ok(database_url, FEB1, "ledger", "check").stdout

"""Editing and archiving at the command line (issue 17), on both databases: the customer record
(contacts, addresses, GPS, company numbers, notes), every ``... update`` validated as on
creation (a refusal names the field and the rule and changes nothing), one event with the old
and new values, archive instead of delete, listings that page and say when more rows exist, and
an edited minimum balance that changes the next tick's decision."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
import typer
from sqlalchemy import func, select
from typer.testing import CliRunner, Result

from ispbill.adapters.db.models import Base, Event
from ispbill.bootstrap import App
from ispbill.entrypoints.cli.main import app as cli

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


def refused(url: str, field: str, *args: str) -> None:
    result = invoke(url, *args)
    assert result.exit_code == 2, (args, result.output)
    assert result.stderr.startswith(f"error: {field}: "), (args, result.stderr)
    assert len(result.stderr.strip()) > len(f"error: {field}: ") + 5  # a rule follows


def snapshot(app: App) -> dict[str, Any]:
    """Every row of every table: a refusal must leave all of them as they were."""
    with app.engine.connect() as connection:
        return {
            t.name: sorted(map(repr, connection.execute(select(t)).all()))
            for t in Base.metadata.sorted_tables
        }


def setup(url: str) -> None:
    ok(url, "taxes", "add", "VAT 21", "--rate", "21")
    ok(url, "classes", "add", "Home")
    ok(url, "classes", "add", "Business", "--field", "ico:optional:[0-9]{8}")
    ok(
        url,
        *("plans", "add", "Fiber", "--price", "30.00", "--currency", "USD"),
        *("--download", "50M", "--upload", "10M"),
    )
    ok(
        url,
        *("customers", "add", "Acme s.r.o.", "--class", "Business", "--currency", "USD"),
        *("--balance-control", "postpaid", "--credit-limit", "100"),
        *("--email", "billing@acme.example", "--email", "ceo@acme.example"),
        *("--phone", "+420 601 123 456", "--billing-address", "Main St 1\nPrague"),
        *("--service-address", "Depot 7", "--gps", "50.087451,14.420671"),
        *("--company-number", "12345678", "--vat-id", "cz 12345678"),
        *("--notes", "gate code 1234; ask for Eva"),
    )


def test_a_customer_record_is_kept_and_edited_with_one_event(app: App, database_url: str) -> None:
    url = database_url
    setup(url)
    shown = ok_json(url, "customers", "show", "Acme s.r.o.")
    assert shown["emails"] == ["billing@acme.example", "ceo@acme.example"]
    assert shown["phones"] == ["+420 601 123 456"]
    assert shown["billing_address"] == "Main St 1\nPrague"
    assert shown["service_gps"] == "50.087451,14.420671"
    assert shown["vat_id"] == "CZ12345678"
    assert shown["internal_notes"] == "gate code 1234; ask for Eva"

    updated = ok_json(
        url,
        *("customers", "update", "Acme s.r.o.", "--name", "Acme a.s."),
        *("--email", "ceo@acme.example", "--email", "ap@acme.example"),
        *("--credit-limit", "250.00", "--gps", "-33.8688,151.2093", "--vat-id", ""),
        *("--field", "ico=87654321", "--reason", "new contract"),
    )
    assert updated["name"] == "Acme a.s."
    assert updated["emails"] == ["ceo@acme.example", "ap@acme.example"]  # the first is primary
    assert updated["credit_limit"] == "250.00 USD"
    assert updated["service_gps"] == "-33.868800,151.209300"
    assert updated["vat_id"] is None
    assert updated["custom_data"] == {"ico": "87654321"}
    assert updated["phones"] == ["+420 601 123 456"]  # not given: kept
    with app.uow() as uow:
        [event] = uow.session.scalars(select(Event).where(Event.kind == "customer.updated"))
        changes = event.figures["changes"]
        assert event.reason == "new contract"
        assert changes["name"] == {"old": "Acme s.r.o.", "new": "Acme a.s."}
        assert changes["vat_id"] == {"old": "CZ12345678", "new": None}
        assert changes["emails"]["old"] == ["billing@acme.example", "ceo@acme.example"]
        assert set(changes) == {
            "name",
            "emails",
            "credit_limit",
            "service_gps",
            "vat_id",
            "custom_data",
        }


@pytest.mark.parametrize(
    ("field", "args"),
    [
        ("vat_id", ["--vat-id", "12345678"]),  # no country prefix
        ("vat_id", ["--vat-id", "CZ12-34!"]),
        ("service_gps.latitude", ["--gps", "91.0,14.4"]),
        ("service_gps.longitude", ["--gps", "50.1,-180.5"]),
        ("service_gps", ["--gps", "50.1"]),
        ("phones", ["--phone", "call me"]),
        ("emails", ["--email", "not-an-address"]),
        ("emails", ["--email", "a@b.example", "--email", "A@b.example"]),
        ("minimum_balance", ["--minimum-balance", "5"]),  # postpaid customers have none
        ("credit_limit", ["--credit-limit", "-1"]),
        ("custom_data.ico", ["--field", "ico=12"]),
        ("name", ["--name", "Nina"]),  # taken
        ("customer_class", ["--class", "Nowhere"]),
        ("locale", ["--locale", "xx_YY_ZZ_QQ"]),
        ("billing_cycle", ["--cycle", "fortnightly"]),
        ("internal_notes", ["--notes", "x" * 5001]),
    ],
)
def test_a_refused_customer_edit_names_the_field_and_changes_nothing(
    app: App, database_url: str, field: str, args: list[str]
) -> None:
    setup(database_url)
    ok(database_url, "customers", "add", "Nina", "--class", "Home", "--currency", "USD")
    before = snapshot(app)
    refused(database_url, field, "customers", "update", "Acme s.r.o.", *args)
    assert snapshot(app) == before


def test_cycle_timezone_and_invoicing_change_from_the_next_period(
    app: App, database_url: str
) -> None:
    url = database_url
    setup(url)
    ok(url, "customers", "add", "Nina", "--class", "Home", "--currency", "USD")
    # no service yet: the next period is the first, so the change is taken at once
    ok(url, "customers", "update", "Nina", "--cycle", "every_n_days", "--cycle-n", "14")
    ok(url, "customers", "update", "Nina", "--timezone", "Europe/Prague", "--invoicing", "backward")
    shown = ok_json(url, "customers", "show", "Nina")
    assert (shown["cycle"], shown["timezone"], shown["invoicing_mode"]) == (
        "every_n_days",
        "Europe/Prague",
        "backward",
    )
    assert shown["pending_changes"] == []
    ok(url, "services", "add", "--customer", "Nina", "--plan", "Fiber")
    # a service runs: each is accepted as a pending change from the next period
    before = snapshot(app)
    for args, field in (
        (["--cycle", "fortnightly"], "billing_cycle"),
        (["--timezone", "Mars/Olympus"], "billing_timezone"),
        (["--invoicing", "sideways"], "invoicing_mode"),
    ):
        refused(url, field, "customers", "update", "Nina", *args)
    assert snapshot(app) == before
    said = ok(url, "customers", "update", "Nina", "--cycle", "monthly", "--timezone", "UTC")
    assert "billing_cycle: every_n_days:14 -> monthly:1 from " in said.stdout
    ok(url, "customers", "update", "Nina", "--invoicing", "forward")
    shown = ok_json(url, "customers", "show", "Nina")
    assert (shown["cycle"], shown["timezone"], shown["invoicing_mode"]) == (
        "every_n_days",
        "Europe/Prague",
        "backward",
    )
    planned = {p["field"]: p for p in shown["pending_changes"]}
    assert {f: (p["old_value"], p["new_value"]) for f, p in planned.items()} == {
        "billing_cycle": ("every_n_days:14", "monthly:1"),
        "billing_timezone": ("Europe/Prague", "UTC"),
        "invoicing_mode": ("backward", "forward"),
    }
    assert len({p["effective_on"] for p in planned.values()}) == 1
    change = str(planned["invoicing_mode"]["id"])
    cancelled = ok_json(url, "customers", "cancel-change", change, "--reason", "no")
    assert cancelled["status"] == "cancelled"
    refused(url, "change", "customers", "cancel-change", change)
    refused(url, "change", "customers", "cancel-change", "9999")
    shown = ok_json(url, "customers", "show", "Nina")
    assert sorted(p["field"] for p in shown["pending_changes"]) == [
        "billing_cycle",
        "billing_timezone",
    ]


def test_a_minimum_balance_edit_decides_the_next_tick(app: App, database_url: str) -> None:
    """Two prepaid customers, each with 35.00 and a minimum balance of 10.00, on a 30.00 plan:
    the charge would leave 5.00. One has the minimum lowered to 0 before the tick: the tick
    charges and activates its service; the other's stays unpaid and not active."""
    url = database_url
    setup(url)
    for name in ("Kept", "Edited"):
        ok(
            url,
            *("customers", "add", name, "--class", "Home", "--currency", "USD"),
            *("--available-funds", "35.00", "--minimum-balance", "10.00"),
        )
        ok(url, "services", "add", "--customer", name, "--plan", "Fiber")
    ok(url, "customers", "update", "Edited", "--minimum-balance", "0")
    ok(url, "run")
    states = {s["customer_id"]: s["state"] for s in ok_json(url, "services", "list", "--all")}
    kept, edited = (ok_json(url, "customers", "show", n) for n in ("Kept", "Edited"))
    assert states[edited["id"]] == "active"
    assert states[kept["id"]] != "active"
    assert (kept["balance"], edited["balance"]) == ("35.00 USD", "5.00 USD")
    with app.uow() as uow:
        events = uow.session.scalars(
            select(Event).where(Event.kind == "customer.updated", Event.customer_id == edited["id"])
        ).all()
        assert [e.figures["changes"]["minimum_balance"]["new"] for e in events] == ["0.00 USD"]


def test_archive_hides_keeps_history_and_takes_no_new_services(app: App, database_url: str) -> None:
    url = database_url
    setup(url)
    ok(url, "customers", "add", "Nina", "--class", "Home", "--currency", "USD")
    ok(url, "services", "add", "--customer", "Nina", "--plan", "Fiber")
    refused(url, "customer", "customers", "archive", "Nina")  # a service is running
    ok(url, "services", "terminate", "1")
    ok(url, "customers", "archive", "Nina", "--reason", "moved away")
    listed = [c["name"] for c in ok_json(url, "customers", "list")]
    assert "Nina" not in listed
    assert "Acme s.r.o." in listed
    assert [c["name"] for c in ok_json(url, "customers", "list", "--archived")] == ["Nina"]
    assert ok_json(url, "customers", "show", "Nina")["services"]  # history kept
    refused(url, "customer", "services", "add", "--customer", "Nina", "--plan", "Fiber")
    refused(url, "customer", "customers", "archive", "Nina")  # already
    ok(url, "customers", "restore", "Nina")
    assert "Nina" in [c["name"] for c in ok_json(url, "customers", "list")]

    ok(url, "plans", "archive", "Fiber")
    assert ok_json(url, "plans", "list") == []
    assert [p["name"] for p in ok_json(url, "plans", "list", "--archived")] == ["Fiber"]
    refused(url, "plan", "services", "add", "--customer", "Acme s.r.o.", "--plan", "Fiber")
    ok(url, "plans", "restore", "Fiber")
    ok(url, "services", "add", "--customer", "Acme s.r.o.", "--plan", "Fiber")
    with app.uow() as uow:
        kinds = set(uow.session.scalars(select(Event.kind)))
    assert {"customer.archived", "customer.restored", "plan.archived", "plan.restored"} <= kinds


def test_every_catalogue_update_is_validated_and_recorded(app: App, database_url: str) -> None:
    url = database_url
    setup(url)
    ok(url, "resellers", "add", "North")
    ok(url, "nas", "add", "edge-1", "--address", "10.0.0.1", "--secret", "shared-secret")
    ok(url, "customers", "add", "Nina", "--class", "Home", "--currency", "USD")
    ok(url, "services", "add", "--customer", "Nina", "--plan", "Fiber", "--from", "2026-02-01")

    ok(url, "taxes", "update", "VAT 21", "--rate", "20", "--name", "VAT 20")
    ok(url, "resellers", "update", "North", "--name", "North ISP")
    ok(url, "classes", "update", "Home", "--grace-days", "5", "--tax-profile", "VAT 20")
    ok(url, "plans", "update", "Fiber", "--download", "100M", "--fup", "200GB:throttle:5M/1M")
    ok(url, "nas", "update", "edge-1", "--address", "10.0.0.2", "--secret", "new-secret-1")
    ok(url, "services", "update", "1", "--from", "2026-02-15", "--invoicing", "backward")
    assert ok_json(url, "taxes", "list")[0]["rate"] == "20%"
    assert ok_json(url, "resellers", "list")[0]["name"] == "North ISP"
    home = next(c for c in ok_json(url, "classes", "list") if c["name"] == "Home")
    assert (home["grace_days"], home["tax_profile_id"]) == (5, 1)
    [plan] = ok_json(url, "plans", "list")
    assert plan["download_kbps"] == 100_000
    assert len(plan["fup_tiers"]) == 1
    [service] = ok_json(url, "services", "list")
    assert (service["active_from"], service["invoicing_mode"]) == ("2026-02-15", "backward")
    with app.uow() as uow:
        found = {
            e.kind: e.figures["changes"]
            for e in uow.session.scalars(select(Event).where(Event.kind.like("%.updated")))
        }
    assert found["tax_profile.updated"]["rate_bp"] == {"old": 2100, "new": 2000}
    assert found["reseller.updated"]["name"] == {"old": "North", "new": "North ISP"}
    assert found["customer_class.updated"]["grace_days"] == {"old": 0, "new": 5}
    assert found["plan.updated"]["download_kbps"] == {"old": 50_000, "new": 100_000}
    assert found["nas.updated"]["secret"] == {"old": "(hidden)", "new": "(hidden)"}
    assert found["service.updated"]["active_from"] == {"old": "2026-02-01", "new": "2026-02-15"}

    before = snapshot(app)
    for field, args in (
        ("rate", ["taxes", "update", "VAT 20", "--rate", "abc"]),
        ("name", ["resellers", "update", "North ISP", "--name", " "]),
        ("grace_days", ["classes", "update", "Home", "--grace-days", "400"]),
        ("fup_tiers[1].action", ["plans", "update", "Fiber", "--fup", "1GB:slow"]),
        ("download_kbps", ["plans", "update", "Fiber", "--download", "0"]),
        ("address", ["nas", "update", "edge-1", "--address", "not-an-ip"]),
        ("secret", ["nas", "update", "edge-1", "--secret", "short"]),
        ("period_months", ["services", "update", "1", "--period-months", "5"]),
        ("active_from", ["services", "update", "1", "--from", "2025-12-01"]),
    ):
        refused(url, field, *args)
    assert snapshot(app) == before
    # a running service changes its plan or ends; its periods are not edited
    ok(url, "services", "add", "--customer", "Nina", "--plan", "Fiber")
    refused(url, "invoicing_mode", "services", "update", "2", "--invoicing", "forward")


def test_listings_page_and_say_when_more_rows_exist(app: App, database_url: str) -> None:
    url = database_url
    ok(url, "classes", "add", "Home")
    for n in range(5):
        ok(url, "customers", "add", f"C{n}", "--class", "Home", "--currency", "USD")
    first = invoke(url, "customers", "list", "--limit", "2", "--json")
    assert first.exit_code == 0
    assert [c["name"] for c in json.loads(first.stdout)] == ["C0", "C1"]
    assert "--cursor 2" in first.stderr
    second = invoke(url, "customers", "list", "--limit", "2", "--cursor", "2", "--json")
    assert [c["name"] for c in json.loads(second.stdout)] == ["C2", "C3"]
    last = invoke(url, "customers", "list", "--limit", "2", "--cursor", "4", "--json")
    assert [c["name"] for c in json.loads(last.stdout)] == ["C4"]
    assert last.stderr == ""  # nothing more: nothing said
    every = invoke(url, "customers", "list", "--limit", "2", "--all", "--json")
    assert len(json.loads(every.stdout)) == 5
    assert every.stderr == ""
    with app.uow() as uow:
        assert uow.session.scalar(select(func.count()).select_from(Event)) >= 5


def commands_of(group: typer.Typer) -> Iterator[tuple[str, Any]]:
    command = typer.main.get_command(group)
    for name, sub in command.commands.items():  # type: ignore[attr-defined]
        if hasattr(sub, "commands"):
            for sub_name, leaf in sub.commands.items():
                yield f"{name} {sub_name}", leaf
        else:
            yield name, sub


# The listings that are not pages of rows: a fixed set (one page per suspension reason).
NOT_PAGED = {"pages list"}


def test_every_listing_takes_limit_cursor_and_all() -> None:
    """Issue 17: ``customers list --json`` stopped at 200 rows without saying so; every listing
    now pages the same way."""
    listings = [
        (n, c)
        for n, c in commands_of(cli)
        if n.endswith((" list", " unmatched", " attempts")) or n == "wallet show"
    ]
    assert len(listings) >= 15
    missing = [
        n
        for n, c in listings
        if n not in NOT_PAGED
        and not {"--limit", "--cursor", "--all"} <= {o for p in c.params for o in p.opts}
    ]
    assert missing == []


def test_more_payments_notes_and_wallet_pages(app: App, database_url: str) -> None:
    url = database_url
    ok(url, "classes", "add", "Home")
    ok(url, "customers", "add", "Ada", "--class", "Home", "--currency", "USD")
    for n in range(3):
        ok(url, "payments", "add", "Ada", f"{n + 1}.00", "--method", "cash", "--reference", f"r{n}")
    first = invoke(url, "payments", "list", "--limit", "2", "--json")
    assert [p["reference"] for p in json.loads(first.stdout)] == ["r2", "r1"]  # newest first
    assert "--cursor 2" in first.stderr
    rest = invoke(url, "payments", "list", "--limit", "2", "--cursor", "2", "--json")
    assert [p["reference"] for p in json.loads(rest.stdout)] == ["r0"]
    assert rest.stderr == ""
    wallet = ok_json(url, "wallet", "show", "Ada", "--limit", "2")
    assert len(wallet["postings"]) == 2
    assert wallet["next_cursor"] is not None
    older = ok_json(url, "wallet", "show", "Ada", "--cursor", str(wallet["next_cursor"]))
    assert len(older["postings"]) == 1
    assert older["next_cursor"] is None
    table = invoke(url, "wallet", "show", "Ada", "--limit", "1")
    assert "more rows follow: --cursor" in table.stderr
    for n in range(3):
        ok(
            url,
            "nas",
            "add",
            f"edge-{n}",
            "--address",
            f"10.0.0.{n + 1}",
            "--secret",
            "shared-secret",
        )
    nas = invoke(url, "nas", "list", "--limit", "2", "--json")
    assert [n["name"] for n in json.loads(nas.stdout)] == ["edge-0", "edge-1"]
    assert "--cursor 2" in nas.stderr
    assert len(ok_json(url, "nas", "list", "--all", "--limit", "1")) == 3

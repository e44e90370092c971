"""A guided tour of the CLI on a fresh demo database: each step says why, shows the command, and
runs it through the real command-line app (nothing is simulated)."""

from __future__ import annotations

import shlex
from pathlib import Path

import click
import typer

from ispbill.entrypoints.cli.base import console

STEPS: list[tuple[str, str]] = [
    ("Create the embedded database (SQLite) and migrate it to the current schema.", "init"),
    (
        "Check a billing cycle before using it: the PortaBilling anniversary rule for a customer "
        "created on the 30th (first period up to the 28th, then 28th to 27th).",
        "calendar monthly_anniversary --start 2026-01-30 --count 4 --timezone Europe/Prague",
    ),
    ("Splynx-style prepaid period of 7 days.", "calendar 7d --start 2026-11-23 --count 3"),
    ("A 21 % VAT profile, prices exclusive of tax.", "taxes add 'VAT 21' --rate 21"),
    (
        "A customer class: 7 days of grace, VAT, and a mandatory custom field.",
        "classes add Residential --grace-days 7 --tax-profile 'VAT 21' --field 'national_id:required:[0-9]{6,10}'",
    ),
    (
        "A 30 USD monthly plan, 50/10 Mbit/s, throttled after 200 GB, with 3- and 12-month periods.",
        "plans add 'Home 50' --price 30.00 --currency USD --download 50M --upload 10M "
        "--fup 200GB:throttle:5M/1M --period 3 --period 12:10%",
    ),
    (
        "A refused input: a credit limit on a prepaid customer. One line names the field and the "
        "rule; exit status 2; nothing is written.",
        "customers add 'Alice Novak' --class Residential --currency USD --credit-limit 50 "
        "--field national_id=1234567",
    ),
    (
        "A prepaid customer with 90.00 USD of available funds (posted to the ledger as a payment).",
        "customers add 'Alice Novak' --class Residential --currency USD --available-funds 90.00 "
        "--timezone Europe/Prague --field national_id=1234567",
    ),
    (
        "A postpaid business customer with a 100.00 USD credit limit, invoiced in arrears.",
        "customers add 'Acme s.r.o.' --class Residential --currency USD --balance-control postpaid "
        "--credit-limit 100 --invoicing backward --field national_id=7654321",
    ),
    (
        "Give Alice the plan, billed every 3 months.",
        "services add --customer 'Alice Novak' --plan 'Home 50' --period-months 3",
    ),
    ("Customers with their balances.", "customers list"),
    (
        "Alice's wallet: the opening funds are a balanced ledger transaction.",
        "wallet show 'Alice Novak'",
    ),
    ("Prove the books balance.", "ledger check"),
]


def tour(
    ctx: typer.Context,
    database_url: str = typer.Option(
        "sqlite:///ispbill-tour.db", help="Where to build the tour (recreated each run)."
    ),
) -> None:
    """Walk through the main commands on a fresh demo database."""
    ispbill = ctx.find_root().command  # the whole command line, as ``ispbill`` runs it
    fresh_sqlite(database_url)
    for number, (why, command) in enumerate(STEPS, start=1):
        console.rule(f"step {number} of {len(STEPS)}")
        console.print(why)
        console.print(f"[bold]$ ispbill {command}[/bold]")
        argv = ["--database-url", database_url, *shlex.split(command)]
        try:
            ispbill.main(argv, prog_name="ispbill", standalone_mode=False)
        except click.exceptions.Exit as exit_:
            if exit_.exit_code not in (0, 2):
                raise
            if exit_.exit_code == 2:
                console.print("[yellow](refused as expected: exit status 2)[/yellow]")
    console.rule("done")
    console.print(
        f"The tour database is {database_url}; try: ispbill --database-url {database_url} customers show 1"
    )


def fresh_sqlite(url: str) -> None:
    prefix = "sqlite:///"
    if url.startswith(prefix):
        path = Path(url[len(prefix) :])
        for suffix in ("", "-wal", "-shm"):
            Path(f"{path}{suffix}").unlink(missing_ok=True)

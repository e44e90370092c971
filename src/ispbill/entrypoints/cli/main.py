"""The ``ispbill`` command: initialise a database, manage the catalogue and customers, inspect
the ledger and the billing calendar."""

from __future__ import annotations

import typer

from ispbill.adapters.db.migrate import upgrade
from ispbill.domain.calendar import (
    PERIOD_CYCLE_CHOICES,
    BillingCycle,
    first_period,
    load_timezone,
    next_period,
)
from ispbill.domain.errors import IspbillError
from ispbill.entrypoints.cli import bank_statements, demo, payment_corrections, plan_prices, tour
from ispbill.entrypoints.cli import collections as collections_cli
from ispbill.entrypoints.cli import corrections as corrections_cli
from ispbill.entrypoints.cli import discounts as discounts_cli
from ispbill.entrypoints.cli import engine as engine_cli
from ispbill.entrypoints.cli import extra_charges as extra_charges_cli
from ispbill.entrypoints.cli import gateways as gateways_cli
from ispbill.entrypoints.cli import notifications as notifications_cli
from ispbill.entrypoints.cli import radius as radius_cli
from ispbill.entrypoints.cli import scheduled as scheduled_cli
from ispbill.entrypoints.cli.base import (
    Cli,
    app_for_command,
    console,
    emit,
    fail,
    parse_day,
    parse_instant,
    settings,
    state,
    unit_of_work,
)
from ispbill.entrypoints.cli.cards import cards_app
from ispbill.entrypoints.cli.catalog import classes_app, plans_app, resellers_app, taxes_app
from ispbill.entrypoints.cli.customers import customers_app, services_app, wallet_app
from ispbill.entrypoints.cli.invoices import invoices_app
from ispbill.entrypoints.cli.operator_settings import settings_app
from ispbill.entrypoints.cli.payments import payments_app
from ispbill.entrypoints.cli.staff import portal_app, staff_app
from ispbill.entrypoints.cli.tokens import tokens_app
from ispbill.use_cases.admin import retention
from ispbill.use_cases.queries import cli_listings

app = Cli(help="ispbill: prepaid-first billing and service control for ISPs.")
ledger_app = Cli(help="The double-entry ledger.")
app.add_typer(customers_app, name="customers")
app.add_typer(classes_app, name="classes")
plans_app.command("price")(plan_prices.plans_price)
plans_app.command("prices")(plan_prices.plans_prices)
app.add_typer(plans_app, name="plans")
app.add_typer(services_app, name="services")
app.add_typer(wallet_app, name="wallet")
app.add_typer(taxes_app, name="taxes")
app.add_typer(resellers_app, name="resellers")
app.add_typer(ledger_app, name="ledger")
app.add_typer(payments_app, name="payments")
app.add_typer(invoices_app, name="invoices")
app.add_typer(settings_app, name="settings")
app.add_typer(cards_app, name="cards")


@app.callback()
def main_options(
    database_url: str | None = typer.Option(
        None,
        "--database-url",
        envvar="ISPBILL_DATABASE_URL",
        help="Database URL (default: sqlite:///ispbill.db in the working directory).",
    ),
    now: str | None = typer.Option(
        None,
        "--now",
        envvar="ISPBILL_NOW",
        help="Act as if the clock read this instant (for demos, tests and back-dating).",
    ),
) -> None:
    state.database_url = database_url
    try:
        state.now = parse_instant(now, "now") if now else None
    except IspbillError as exc:
        fail(str(exc))


@app.command()
def init() -> None:
    """Create the database, or migrate it to the current schema."""
    url = settings().database_url
    upgrade(url)
    console.print(f"database ready: {url}", markup=False)


@app.command("calendar")
def calendar_cmd(
    cycle: str = typer.Argument(..., help=f"One of: {', '.join(PERIOD_CYCLE_CHOICES)}"),
    start: str = typer.Option(
        ..., help="First day, e.g. 2026-01-30 (the customer's creation day)."
    ),
    anchor_day: int | None = typer.Option(
        None, help="Day of month for anniversary / N-month cycles."
    ),
    count: int = typer.Option(6, min=1, max=500, help="How many periods to print."),
    timezone: str = typer.Option("UTC", help="Billing period timezone."),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Print the next periods of a cycle, so an operator can check a setting."""
    first_day = parse_day(start, "start")
    assert first_day is not None
    zone = load_timezone(timezone)
    parsed = BillingCycle.parse(cycle, anchor_day=anchor_day, origin=first_day)
    period = first_period(parsed, first_day)
    rows = []
    for index in range(1, count + 1):
        rows.append(
            {
                "n": index,
                "start": period.start,
                "last_day": period.last_day,
                "days": period.days,
                "starts_at_utc": period.start_instant(zone),
                "ends_at_utc": period.end_instant(zone),
            }
        )
        period = next_period(parsed, period)
    emit(rows, as_json=as_json, title=f"{parsed.describe()} in {zone.key}")


@ledger_app.command("check")
def ledger_check() -> None:
    """Prove the books: every transaction sums to zero; every balance equals its postings."""
    with unit_of_work() as (uow, _):
        findings = cli_listings.ledger_findings(uow)
    if findings:
        for finding in findings:
            console.print(f"[red]✗[/red] {finding.describe()}")
        raise typer.Exit(1)
    console.print(
        "[green]✓[/green] ledger balanced: every transaction sums to zero and every "
        "account's cached balance equals the sum of its postings"
    )


@app.command("purge")
def purge(as_json: bool = typer.Option(False, "--json")) -> None:
    """Delete what is past its retention age (sign-in attempts, expired sessions, idempotency
    records, delivered outbox rows); never money or events. Prints the rows deleted per table."""
    with app_for_command() as app, app.uow() as uow:
        counts = retention.purge_expired(
            uow, app.clock.now(), retention.RetentionAges.from_settings(app.settings)
        )
    emit(
        [{"table": table, "deleted": count} for table, count in counts.items()],
        as_json=as_json,
        title="Purged past retention",
    )


app.command("tour")(tour.tour)
app.command("run")(engine_cli.run)
app.command("charge")(engine_cli.charge)
app.command("preview")(engine_cli.preview)
services_app.command("reactivate")(engine_cli.services_reactivate)
payments_app.command("show")(payment_corrections.payments_show)
payments_app.command("reverse")(payment_corrections.payments_reverse)
payments_app.command("refund")(payment_corrections.payments_refund)
payments_app.command("import")(bank_statements.payments_import)
payments_app.command("unmatched")(bank_statements.payments_unmatched)
payments_app.command("assign")(bank_statements.payments_assign)
app.command("demo")(demo.demo)
gateways_cli.register(app)  # serve, checkout, topups
app.add_typer(tokens_app, name="tokens")
radius_cli.register(app, services_app)  # nas, radius, outbox, usage, services credentials
extra_charges_cli.register(app, services_app)  # charges, services addon-add|addons|addon-end
discounts_cli.register(app)  # discounts add|list|end
corrections_cli.register(invoices_app, customers_app)  # invoices credit|void, payment-terms
scheduled_cli.register(services_app)  # services schedule-change|schedule-termination|...
app.add_typer(collections_cli.collection_app, name="collection")
app.add_typer(collections_cli.pages_app, name="pages")
services_app.command("suspend")(collections_cli.services_suspend)
services_app.command("lift")(collections_cli.services_lift)
services_app.command("promise")(collections_cli.services_promise)
services_app.command("why")(collections_cli.services_why)
services_app.command("garden-link")(collections_cli.services_garden_link)
app.add_typer(staff_app, name="staff")
app.add_typer(portal_app, name="portal")
app.add_typer(notifications_cli.notifications_app, name="notifications")


def main() -> None:
    app()

"""``ispbill demo``: a small ISP's year on a fresh database, then what it earned and owes.

The simulation lives in ``entrypoints/cli/demo_isp.py``; this command makes the database, shows progress
and prints the summary. It keeps its own timeline (from --start), so the global --now does not
apply to it.
"""

from __future__ import annotations

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from ispbill.adapters.db.engine import make_engine, normalize_url, sqlite_file
from ispbill.adapters.db.migrate import current_revision, upgrade
from ispbill.bootstrap import bootstrap
from ispbill.domain.errors import ValidationError
from ispbill.entrypoints.cli.base import console, fail, parse_day
from ispbill.entrypoints.cli.demo_isp import DemoSummary, run_demo
from ispbill.entrypoints.cli.tour import fresh_sqlite


def demo(
    customers: int = typer.Option(50, min=1, max=5000, help="How many customers sign up."),
    months: int = typer.Option(12, min=1, max=36, help="How many months of daily ticks."),
    start: str = typer.Option("2026-01-01", help="The first simulated day."),
    seed: int = typer.Option(7, help="Random seed: the same seed gives the same year."),
    database_url: str = typer.Option(
        "sqlite:///ispbill-demo.db",
        help="Where to build the demo. A SQLite file is recreated; a PostgreSQL database "
        "must be empty.",
    ),
) -> None:
    """Simulate a small ISP day by day (ticks, sign-ups, payments that arrive or go missing)
    and print revenue, payments, balances, service states, invoices and the ledger check."""
    try:
        first_day = parse_day(start, "start")
        assert first_day is not None
        url = _fresh_database(database_url)
    except ValidationError as exc:
        fail(str(exc))
        return
    app = bootstrap(database_url=url)
    try:
        with Progress(
            TextColumn("[bold]simulating days"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=console,
            transient=True,
        ) as progress:
            task = progress.add_task("days", total=None)

            def advance(done: int, total: int) -> None:
                progress.update(task, completed=done, total=total)

            summary = run_demo(
                app.uow,
                customers=customers,
                months=months,
                start=first_day,
                seed=seed,
                progress=advance,
            )
    finally:
        app.close()
    print_summary(summary, url)
    if not summary.balanced:
        raise typer.Exit(1)


def _fresh_database(url: str) -> str:
    url = normalize_url(url)
    path = sqlite_file(url)
    if path is not None:
        if not path or path == ":memory:":
            raise ValidationError("database_url", "the demo needs a SQLite file, not :memory:")
        fresh_sqlite(f"sqlite:///{path}")
    else:
        engine = make_engine(url)
        try:
            revision = current_revision(engine)
        finally:
            engine.dispose()
        if revision is not None:
            raise ValidationError(
                "database_url",
                "the PostgreSQL database is not empty; the demo only builds on an empty one",
            )
    upgrade(url)
    return url


def print_summary(summary: DemoSummary, url: str) -> None:
    money = summary.money
    console.rule(f"demo ISP: {summary.start} to {summary.end} ({summary.customers} customers)")
    months = Table(title="Per month")
    for column in ("month", "charges", "revenue (net)", "payments", "received"):
        months.add_column(column, justify="right" if column != "month" else "left")
    total_revenue = total_received = 0
    for month, figures in summary.months.items():
        total_revenue += figures.revenue_net_minor
        total_received += figures.payments_minor
        months.add_row(
            month,
            str(figures.charges),
            str(money(figures.revenue_net_minor)),
            str(figures.payments),
            str(money(figures.payments_minor)),
        )
    months.add_row(
        "total",
        str(sum(f.charges for f in summary.months.values())),
        str(money(total_revenue)),
        str(sum(f.payments for f in summary.months.values())),
        str(money(total_received)),
        style="bold",
    )
    console.print(months)

    wallets = Table(title="Wallets at the end", show_header=False)
    wallets.add_column("what", style="bold")
    wallets.add_column("amount", justify="right")
    wallets.add_row("opening funds at sign-up", str(money(summary.opening_funds_minor)))
    wallets.add_row("sum of closing balances", str(money(summary.balance_sum_minor)))
    wallets.add_row("lowest balance", str(money(summary.balance_min_minor)))
    wallets.add_row("highest balance", str(money(summary.balance_max_minor)))
    wallets.add_row("open invoices still due", str(money(summary.open_due_minor)))
    console.print(wallets)

    states = Table(title="Services by state")
    states.add_column("state")
    states.add_column("services", justify="right")
    for state, count in summary.services_by_state.items():
        states.add_row(state, str(count))
    console.print(states)

    moves = Table(title="Service state changes (event log)")
    moves.add_column("to state (by whom)")
    moves.add_column("times", justify="right")
    for state, count in summary.transitions.items():
        moves.add_row(state, str(count))
    console.print(moves)

    invoices = Table(title="Invoices")
    invoices.add_column("status")
    invoices.add_column("count", justify="right")
    invoices.add_column("total", justify="right")
    issued_count = sum(count for count, _ in summary.invoices.values())
    issued_total = sum(total for _, total in summary.invoices.values())
    for status, (count, total) in summary.invoices.items():
        invoices.add_row(status, str(count), str(money(total)))
    invoices.add_row("all issued", str(issued_count), str(money(issued_total)), style="bold")
    console.print(invoices)

    console.print(
        f"{summary.ticks} daily ticks and {summary.payments_recorded} payments in "
        f"{summary.seconds:.1f} s (ticks {summary.seconds_ticking:.1f} s, "
        f"payments {summary.seconds_paying:.1f} s)",
        markup=False,
    )
    if summary.balanced:
        console.print(
            "[green]✓[/green] ledger balanced: every transaction sums to zero and every "
            "account's cached balance equals the sum of its postings"
        )
    else:
        for finding in summary.findings:
            console.print(f"[red]✗[/red] {finding.describe()}", markup=True)
    console.print(
        f"explore it: ispbill --database-url {url} customers list "
        f"(or invoices list, payments list, ledger check)",
        markup=False,
        soft_wrap=True,
    )

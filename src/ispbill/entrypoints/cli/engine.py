"""CLI for the billing engine: run a tick, Charge & Invoice one customer, preview what the
engine would do, and reactivate a paused service. Thin: each command calls one use case."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from ispbill.adapters.db.database_problems import DatabaseProblem, reported
from ispbill.domain.billing import Charge, ChargeKind, Outcome, Transition
from ispbill.domain.errors import IspbillError, ValidationError
from ispbill.domain.money import Money
from ispbill.entrypoints.cli.base import (
    ACTOR,
    app_for_command,
    console,
    emit,
    emit_object,
    err_console,
    fail,
    find,
    parse_day,
    parse_instant,
    unit_of_work,
)
from ispbill.use_cases.billing import reevaluation as engine
from ispbill.use_cases.billing.tick import TickReport, tick
from ispbill.use_cases.catalog import customer_accounts as customer_cases
from ispbill.use_cases.catalog.name_lookups import customer_id_of, service_id_of
from ispbill.use_cases.payments.recording import lock_customer
from ispbill.use_cases.queries import cli_listings
from ispbill.use_cases.service_lifecycle.pauses import reactivate_service

JSON = typer.Option(False, "--json", help="Print JSON instead of a table.")


def run(
    at: str | None = typer.Option(
        None,
        "--at",
        help="Run as of this instant (ISO 8601; a date is its UTC midnight). Default: now "
        "(or the global --now).",
    ),
    chunk_size: int = typer.Option(
        1000, min=1, max=100_000, help="Customers per transaction (one batched write each)."
    ),
    as_json: bool = JSON,
) -> None:
    """Run the billing engine once: everything due up to the instant happens, exactly once.

    A customer whose billing fails is skipped (a tick.customer_failed event) and the others are
    billed; each skipped customer is one "error:" line on stderr and the exit status is 1."""
    with app_for_command() as app:
        now = parse_instant(at, "at") if at else app.clock.now()
        with app.uow() as uow:
            due = cli_listings.customers_due(uow, now)
        report = TickReport(now=now)  # counts each chunk as it commits
        try:
            with reported(), _progress("billing", total=due) as advance:
                tick(
                    app.uow,
                    now=now,
                    chunk_size=chunk_size,
                    progress=advance,
                    gateways=app.gateways,
                    workers=app.settings.tick_workers,
                    report=report,
                )
        except DatabaseProblem as exc:
            fail(f"{exc}; {stopped(report)}")
        except IspbillError as exc:
            fail(f"{exc}; {stopped(report)}")
    emit_object(report_row(report), as_json=as_json, title=f"Tick at {now.isoformat()}")
    for one in report.skipped:
        err_console.print(
            f"error: customer {one.customer_id}: skipped by the tick ({one.stage}): {one.error}",
            markup=False,
            highlight=False,
            soft_wrap=True,
        )
    if report.skipped:
        raise typer.Exit(1)


def stopped(report: TickReport) -> str:
    """What a tick that failed part-way had committed: each chunk is its own transaction."""
    done = (
        f"{_count(report.chunks, 'chunk')} ({_count(report.customers, 'customer')}, "
        f"{_count(report.charges, 'charge')}, {_count(report.invoices, 'invoice')})"
    )
    if report.collections:
        done += ", collections " + ", ".join(
            f"{action} {count}" for action, count in sorted(report.collections.items())
        )
    return (
        f"the tick stopped after committing {done}; those stand, "
        "and the next tick carries on from there"
    )


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def report_row(report: TickReport) -> dict[str, Any]:
    rate = report.services / report.seconds if report.seconds > 0 else 0.0
    return {
        "at": report.now,
        "customers": report.customers,
        "services": report.services,
        "chunks": report.chunks,
        "charges": report.charges,
        "invoices": report.invoices,
        "transitions": dict(sorted(report.transitions.items())),
        "collections": dict(sorted(report.collections.items())),
        "skipped": [
            {"customer": one.customer_id, "stage": one.stage, "error": one.error}
            for one in report.skipped
        ],
        "seconds": round(report.seconds, 3),
        "services_per_second": round(rate, 1),
    }


@contextmanager
def _progress(label: str, *, total: int) -> Iterator[Any]:
    """A Rich progress bar on stderr (stdout stays clean for --json); gone when done."""
    with Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err_console,
        transient=True,
    ) as progress:
        task = progress.add_task(label, total=total or None)

        def advance(customers: int) -> None:
            # the activation pass may look at more customers than were due
            current = progress.tasks[0].total or 0
            progress.update(task, completed=customers, total=max(current, customers))

        yield advance


def charge(customer: str, as_json: bool = JSON) -> None:
    """Splynx "Charge & Invoice": charge what is due now and invoice it at once."""
    with unit_of_work() as (uow, now):
        row = lock_customer(uow, find(customer_id_of, customer))
        result = engine.charge_and_invoice(uow, customer=row, now=now, actor=ACTOR)
        charged = {c.service_id for c in result.outcome.charges}
        numbers = cli_listings.invoice_numbers_of_charges(uow, row.id, charged)
        balance = cli_listings.balance_of(uow, row.id)
    rows = [
        _charge_row(c, result.outcome) | {"invoice": numbers.get(_key(c))}
        for c in result.outcome.charges
    ]
    if as_json:
        emit_object(
            {
                "customer": row.name,
                "charges": rows,
                "transitions": [
                    _transition_row(t, result.outcome) for t in result.outcome.transitions
                ],
                "invoice": result.invoice_number,
                "balance": str(balance),
            },
            as_json=True,
            title="",
        )
        return
    if rows:
        emit(rows, as_json=False, title=f"Charged now for {row.name}")
    else:
        console.print(f"no new charges for {row.name!r} at {now.isoformat()}", markup=False)
    _print_transitions(result.outcome)
    if result.invoice_number:
        console.print(f"invoice {result.invoice_number} issued", markup=False)
    else:
        console.print("no new invoice: every charge is already invoiced", markup=False)
    console.print(f"wallet balance {balance}", markup=False)


def _key(c: Charge) -> tuple[int, str, str]:
    return (c.service_id, c.kind.value, c.period.start.isoformat())


def _charge_row(c: Charge, outcome: Outcome) -> dict[str, Any]:
    sign = 1 if c.kind is ChargeKind.REFUND else -1
    return {
        "at": c.at,
        "service": c.service_id,
        # the plan's name, or an add-on's (issue 17): the charge's own description
        "plan": c.description or outcome.services[c.service_id].terms.description,
        "kind": c.kind.value,
        "period": f"{c.period.start}..{c.period.last_day}",
        "quantity": _quantity(c),
        "net": str(c.split.net),
        "tax": str(c.split.tax),
        "amount": str(c.gross * sign),
    }


def _quantity(c: Charge) -> str:
    q = c.quantity
    return str(q.numerator) if q.denominator == 1 else f"{q.numerator}/{q.denominator}"


def _transition_row(t: Transition, outcome: Outcome) -> dict[str, Any]:
    return {
        "at": t.at,
        "service": t.service_id,
        "plan": outcome.services[t.service_id].terms.description,
        "from": t.from_state.value,
        "to": t.to_state.value,
        "reason": t.reason,
        "figures": t.figures,
    }


def _print_transitions(outcome: Outcome) -> None:
    if outcome.transitions:
        emit(
            [
                _transition_row(t, outcome) | {"figures": _figures(t.figures)}
                for t in outcome.transitions
            ],
            as_json=False,
            title="State transitions",
        )


def _figures(figures: dict[str, str]) -> str:
    return ", ".join(f"{k}={v}" for k, v in figures.items())


def preview(
    customer: str,
    until: str = typer.Option(
        ...,
        "--until",
        help="Look ahead up to this instant (ISO 8601). A bare date means the START of that "
        "date, its UTC midnight: --until 2026-04-01 includes what is due on March 31 but not "
        "what is due on April 1 in zones east of UTC.",
    ),
    as_json: bool = JSON,
) -> None:
    """Dry run: every charge and state transition the engine would make up to --until, period
    by period, in time order. Nothing is written."""
    until_at = parse_instant(until, "until")
    with unit_of_work() as (uow, _):
        row = customer_cases.get_customer(uow, find(customer_id_of, customer))
        outcome = engine.preview(uow, customer_id=row.id, until=until_at)
        balance = cli_listings.balance_of(uow, row.id)
    steps = sorted(
        [(c.at, 0, i, _charge_step(c, outcome)) for i, c in enumerate(outcome.charges)]
        + [(t.at, 1, i, _transition_step(t, outcome)) for i, t in enumerate(outcome.transitions)],
        key=lambda item: item[:3],
    )
    rows = [step for *_, step in steps]
    if as_json:
        emit_object(
            {
                "customer": row.name,
                "until": until_at,
                "balance_now": str(balance),
                "balance_after": str(outcome.balance),
                "steps": rows,
            },
            as_json=True,
            title="",
        )
        return
    emit(
        rows,
        as_json=False,
        title=f"Preview for {row.name} up to {until_at.isoformat()} (nothing written)",
        columns=["at", "service", "plan", "event", "period", "quantity", "amount", "detail"],
    )
    console.print(
        f"wallet balance now {balance}, after these steps {outcome.balance}", markup=False
    )


def _charge_step(c: Charge, outcome: Outcome) -> dict[str, Any]:
    row = _charge_row(c, outcome)
    return {
        "at": c.at,
        "service": c.service_id,
        "plan": row["plan"],
        "event": f"charge ({c.kind.value})",
        "period": row["period"],
        "quantity": row["quantity"],
        "amount": row["amount"],
        "detail": f"net {row['net']}, tax {row['tax']}",
    }


def _transition_step(t: Transition, outcome: Outcome) -> dict[str, Any]:
    return {
        "at": t.at,
        "service": t.service_id,
        "plan": outcome.services[t.service_id].terms.description,
        "event": f"{t.from_state.value} -> {t.to_state.value}",
        "period": None,
        "quantity": None,
        "amount": None,
        "detail": "; ".join(filter(None, [t.reason, _figures(t.figures)])),
    }


def services_reactivate(
    service: str = typer.Argument(..., help="Service id."),
    active_to: str | None = typer.Option(
        None, "--active-to", help="The new last day of service (it pauses again after it)."
    ),
    no_active_to: bool = typer.Option(False, "--no-active-to", help="Reactivate with no end date."),
) -> None:
    """Reactivate a PAUSED service (UISP "active to"): it becomes active and its billing restarts
    today, charged at once. Give exactly one of --active-to or --no-active-to."""
    if (active_to is None) == (not no_active_to):
        raise ValidationError(
            "active_to", "give either --active-to DATE or --no-active-to (exactly one)"
        )
    new_to = parse_day(active_to, "active_to")
    with unit_of_work() as (uow, now):
        result = reactivate_service(
            uow, service_id=find(service_id_of, service), active_to=new_to, now=now, actor=ACTOR
        )
        row = result.service
        charged = [c for c in result.outcome.charges if c.service_id == row.id]
        total = sum((c.gross for c in charged), Money.zero(row.plan.currency))
    reason = f" ({row.state_reason})" if row.state_reason else ""
    console.print(
        f"service {row.id} reactivated: billing from {result.billing_from}, "
        f"active to {row.active_to or 'no end date'}; now {row.state}{reason}; "
        f"charged {total} in {len(charged)} charge(s)",
        markup=False,
    )

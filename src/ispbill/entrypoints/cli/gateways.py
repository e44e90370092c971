"""CLI for payment gateways: run the web server (webhooks, the sandbox checkout), open a
"pay N months" checkout, and manage automatic top-up rules. Thin: each command calls one use
case."""

from __future__ import annotations

import os
import threading
from typing import Any

import typer

from ispbill.adapters.mail import SmtpMailer
from ispbill.adapters.radius.coa import PyradSender
from ispbill.bootstrap import App
from ispbill.domain.errors import ValidationError
from ispbill.domain.money import Money
from ispbill.entrypoints.cli.base import (
    ACTOR,
    Cli,
    app_for_command,
    console,
    emit,
    find,
    state,
    unit_of_work,
)
from ispbill.entrypoints.cli.notifications import portal_url
from ispbill.entrypoints.jobs import coa_sender, mail_sender
from ispbill.use_cases.catalog.name_lookups import customer_id_of
from ispbill.use_cases.network.enforcement import RetryPolicy
from ispbill.use_cases.payments import checkouts as gateway_cases
from ispbill.use_cases.payments import top_ups

topups_app = Cli(help="Automatic top-up: charge a saved payment method when a wallet runs low.")

JSON = typer.Option(False, "--json", help="Print JSON instead of a table.")


def register(app: typer.Typer) -> None:
    """Add this module's commands to the ``ispbill`` command."""
    app.command("serve")(serve)
    app.command("checkout")(checkout)
    app.add_typer(topups_app, name="topups")


def serve(
    host: str | None = typer.Option(None, help="Address to listen on (setting api_host)."),
    port: int | None = typer.Option(
        None, min=1, max=65535, help="Port to listen on (setting api_port)."
    ),
    workers: int | None = typer.Option(
        None, min=1, max=64, help="Worker processes (setting api_workers)."
    ),
    outbox: bool = typer.Option(
        True, "--outbox/--no-outbox", help="Also run the CoA outbox worker in this process."
    ),
    mail: bool = typer.Option(
        True,
        "--mail/--no-mail",
        help="Also send customer e-mail in this process (when ISPBILL_SMTP_HOST is set).",
    ),
) -> None:
    """Run the HTTP server: the REST API (/api/v1), gateway webhooks, the sandbox's hosted
    checkout, the FreeRADIUS endpoints, the console, portal and walled garden, and (unless
    --no-outbox / --no-mail) the CoA outbox worker and the customer e-mail sender. Defaults come from ISPBILL_API_HOST, ISPBILL_API_PORT
    and ISPBILL_API_WORKERS."""
    # Only this command needs the web stack, so every other command starts without it.
    # python -X importtime, best of 5 on the shared 2-core machine: the whole CLI 4.3 s, then
    # uvicorn +0.3 s and the API app with the console +2.0 s (+40-50% on every command).
    import uvicorn  # noqa: PLC0415 - measured above: only `serve` pays for the web stack

    from ispbill.entrypoints.asgi_app import create_app  # noqa: PLC0415 - as above

    with app_for_command() as app:
        host = host or app.settings.api_host
        port = port or app.settings.api_port
        workers = workers or app.settings.api_workers
        configured = (
            ", ".join(sorted(app.gateways)) or "none (set ISPBILL_SANDBOX_SECRET or Stripe keys)"
        )
        console.print(f"payment gateways: {configured}", markup=False)
        console.print(
            f"API on http://{host}:{port}/api/v1 ({workers} worker(s)); "
            f"contract at /api/v1/openapi.json",
            markup=False,
        )
        if workers > 1 and state.now is not None:
            raise ValidationError("workers", "--now works with one worker only")
        stop = threading.Event()
        worker = coa_sender.thread(
            app.uow_factory,
            PyradSender(),
            clock=app.clock.now,
            database_url=app.settings.database_url,
            stop=stop,
            retry=RetryPolicy.from_settings(app.settings),
        )
        if outbox:
            worker.start()
        sender = _mail_sender(app, stop) if mail and app.settings.smtp_host else None
        try:
            if workers == 1:
                uvicorn.run(create_app(app), host=host, port=port)
            else:
                # each worker process builds its own application from the environment
                os.environ["ISPBILL_DATABASE_URL"] = app.settings.database_url
                uvicorn.run(
                    "ispbill.entrypoints.asgi_app:application",
                    factory=True,
                    host=host,
                    port=port,
                    workers=workers,
                )
        finally:
            stop.set()
            if outbox:
                worker.join(timeout=5)
            if sender is not None:
                sender.join(timeout=5)


def _mail_sender(app: App, stop: threading.Event) -> threading.Thread:
    """The mail sender job as a daemon thread, started, stopped with the server."""
    thread = mail_sender.thread(
        app.uow_factory,
        SmtpMailer(app.settings),
        clock=app.clock.now,
        portal_url=portal_url(app.settings),
        database_url=app.settings.database_url,
        stop=stop,
    )
    thread.start()
    console.print("customer e-mail sender running", markup=False)
    return thread


def checkout(
    customer: str = typer.Argument(..., help="Customer id or name."),
    months: int = typer.Option(..., "--months", min=1, help="How many billing periods to pay."),
    gateway: str = typer.Option("sandbox", help="Gateway: sandbox or stripe."),
    as_json: bool = JSON,
) -> None:
    """Quote N periods of the customer's services and open a checkout for it; prints the URL."""
    with app_for_command() as app, app.uow() as uow:
        started = gateway_cases.start_checkout(
            uow,
            gateways=app.gateways,
            gateway=gateway,
            customer_id=find(customer_id_of, customer),
            months=months,
            now=app.clock.now(),
            actor=ACTOR,
            return_url=app.settings.public_base_url.rstrip("/") + "/",
        )
    quote = started.quote
    assert quote is not None
    rows = [{"line": line.label, "amount": str(line.amount)} for line in quote.lines] + [
        {"line": "to pay now", "amount": str(quote.total)}
    ]
    if as_json:
        emit(
            [{"checkout": started.checkout.reference, "url": started.url, "quote": rows}],
            as_json=True,
            title="",
        )
        return
    emit(rows, as_json=False, title=f"Pay {months} period(s)")
    console.print(f"checkout {started.checkout.reference}: {started.url}", markup=False)


@topups_app.command("set")
def topups_set(
    customer: str = typer.Argument(..., help="Customer id or name."),
    threshold: str = typer.Option(..., help="Top up when a charge takes the wallet under this."),
    amount: str = typer.Option(..., help="How much to charge the saved method each time."),
    method: str = typer.Option(..., help="The saved payment method's reference, e.g. pm_1234."),
    gateway: str = typer.Option("sandbox", help="Gateway: sandbox or stripe."),
    gateway_customer: str | None = typer.Option(
        None, help="The gateway's customer the method belongs to (Stripe: cus_...)."
    ),
    disabled: bool = typer.Option(False, "--disabled", help="Store the rule switched off."),
) -> None:
    """Create or replace the customer's top-up rule (one per wallet), armed from now."""
    with app_for_command() as app, app.uow() as uow:
        spec = top_ups.TopUpRuleSpec(
            customer_id=find(customer_id_of, customer),
            threshold=threshold,
            amount=amount,
            method=method,
            gateway=gateway,
            gateway_customer=gateway_customer,
            enabled=not disabled,
        )
        rule = top_ups.set_rule(uow, spec=spec, now=app.clock.now(), actor=ACTOR)
    console.print(
        f"top-up rule {rule.id}: under {Money(rule.threshold_minor, rule.currency)} charge "
        f"{Money(rule.amount_minor, rule.currency)} to {rule.method_reference} via "
        f"{rule.gateway}{'' if rule.enabled else ' (disabled)'}",
        markup=False,
    )


@topups_app.command("disable")
def topups_disable(customer: str = typer.Argument(..., help="Customer id or name.")) -> None:
    """Switch the customer's top-up rule off (its history stays)."""
    with app_for_command() as app, app.uow() as uow:
        rule = top_ups.disable_rule(
            uow, customer_id=find(customer_id_of, customer), now=app.clock.now(), actor=ACTOR
        )
    console.print(f"top-up rule {rule.id} disabled", markup=False)


@topups_app.command("list")
def topups_list(as_json: bool = JSON) -> None:
    """Top-up rules with each wallet's balance."""
    with unit_of_work() as (uow, _):
        rows: list[dict[str, Any]] = [
            {
                "customer": view.customer,
                "balance": str(view.balance),
                "threshold": str(Money(view.rule.threshold_minor, view.rule.currency)),
                "amount": str(Money(view.rule.amount_minor, view.rule.currency)),
                "gateway": view.rule.gateway,
                "method": view.rule.method_reference,
                "enabled": view.rule.enabled,
            }
            for view in top_ups.list_rules(uow)
        ]
    emit(rows, as_json=as_json, title="Top-up rules")


@topups_app.command("attempts")
def topups_attempts(as_json: bool = JSON) -> None:
    """Every top-up requested, with its status, error and next retry."""
    with unit_of_work() as (uow, _):
        rows = [
            {
                "id": a.id,
                "customer": a.customer_id,
                "trigger": a.trigger_key,
                "attempt": a.attempt_no,
                "status": a.status,
                "amount": str(Money(a.amount_minor, a.currency)),
                "charge": a.gateway_charge_id,
                "error": a.error,
                "next_retry_at": a.next_retry_at,
            }
            for a in top_ups.attempts(uow)
        ]
    emit(rows, as_json=as_json, title="Top-up attempts")

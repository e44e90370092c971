"""CLI for customer e-mail (``notifications send|list|retry``): the sender that drains the
notifications outbox through ``ISPBILL_SMTP_*``, what is waiting or went wrong, and a failed
message queued again (the use case of the API's and the console's retry)."""

from __future__ import annotations

import logging

import typer

from ispbill.adapters.mail import SmtpMailer
from ispbill.domain.errors import ValidationError
from ispbill.entrypoints.cli.base import (
    ACTOR,
    ALL,
    CURSOR,
    LIMIT,
    Cli,
    app_for_command,
    console,
    emit_listing,
    listing,
    unit_of_work,
)
from ispbill.entrypoints.jobs import mail_sender
from ispbill.settings import Settings
from ispbill.use_cases.notifications import mail_outbox as notifications
from ispbill.use_cases.queries import cli_listings

notifications_app = Cli(
    help="Customer e-mail (collection reminders and suspension notices) and its delivery."
)
JSON = typer.Option(False, "--json", help="Print JSON instead of a table.")


def portal_url(settings: Settings) -> str:
    """Where collections e-mail tells the subscriber to pay."""
    return f"{settings.public_base_url.rstrip('/')}/portal"


@notifications_app.command("send")
def notifications_send() -> None:
    """Send the e-mail that is due now, once; a message the relay refuses stays for a retry."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    with app_for_command() as app:
        if not app.settings.smtp_host:
            raise ValidationError("smtp_host", "no SMTP server configured (ISPBILL_SMTP_HOST)")
        tried = mail_sender.run_sender(
            app.uow_factory,
            SmtpMailer(app.settings),
            clock=app.clock.now,
            portal_url=portal_url(app.settings),
            once=True,
        )
        with app.uow() as uow:
            waiting = notifications.pending_count(uow)
    console.print(f"{tried} sent or tried; {waiting} waiting", markup=False)


@notifications_app.command("list")
def notifications_list(
    status: str | None = typer.Option(None, help="pending, sent or failed."),
    limit: int = LIMIT,
    cursor: int | None = CURSOR,
    every: bool = ALL,
    as_json: bool = JSON,
) -> None:
    """Customer e-mail with its outcome, newest first."""
    found = listing(
        lambda uow, after, size: cli_listings.notification_rows(
            uow, status=status, limit=size, after=after
        ),
        limit=limit,
        cursor=cursor,
        every=every,
    )
    emit_listing(found, as_json=as_json, title="Notifications")


@notifications_app.command("retry")
def notifications_retry(
    notification: int = typer.Argument(..., help="The notification's id (notifications list)."),
    reason: str = typer.Option(..., help="Why it is sent again (address corrected, relay fixed)."),
) -> None:
    """Queue a failed message again, due now with its attempts started afresh."""
    with unit_of_work() as (uow, now):
        row = notifications.retry_notification(
            uow, notification_ref=notification, reason=reason, now=now, actor=ACTOR
        )
        console.print(f"notification {row.id} queued again", markup=False)

"""Outgoing e-mail over SMTP (standard library ``smtplib``) to the operator's relay."""

from __future__ import annotations

import smtplib
from collections.abc import Sequence
from email.message import EmailMessage

from ispbill.domain.errors import ValidationError
from ispbill.settings import Settings


def send_mail(settings: Settings, *, to: str, subject: str, body: str) -> None:
    """Send one plain-text message; refuses when no SMTP server is configured."""
    if not settings.smtp_host:
        raise ValidationError("smtp_host", "no SMTP server configured (ISPBILL_SMTP_HOST)")
    message = EmailMessage()
    message["From"] = settings.smtp_from
    message["To"] = to
    message["Subject"] = subject
    message.set_content(body)
    with smtplib.SMTP(settings.smtp_host, settings.smtp_port, timeout=10) as smtp:
        if settings.smtp_starttls:
            smtp.starttls()
        if settings.smtp_username and settings.smtp_password:
            smtp.login(settings.smtp_username, settings.smtp_password.get_secret_value())
        smtp.send_message(message)


class MailFailure(Exception):
    """The relay did not take a message; ``permanent`` when retrying cannot help (a 5xx)."""

    def __init__(self, detail: str, *, permanent: bool = False) -> None:
        super().__init__(detail)
        self.permanent = permanent


class SmtpMailer:
    """``send_mail`` for the notification sender: every way SMTP can fail is a
    ``MailFailure`` (connection refused or timed out: temporary; a 5xx answer: permanent)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    def send(self, *, to: Sequence[str], subject: str, body: str) -> None:
        try:
            send_mail(self.settings, to=", ".join(to), subject=subject, body=body)
        except smtplib.SMTPRecipientsRefused as exc:
            raise MailFailure(f"recipients refused: {exc.recipients}", permanent=True) from exc
        except smtplib.SMTPResponseException as exc:
            error = exc.smtp_error
            text = error.decode(errors="replace") if isinstance(error, bytes) else str(error)
            detail = f"{exc.smtp_code} {text}"
            raise MailFailure(detail, permanent=exc.smtp_code >= 500) from exc
        except (smtplib.SMTPException, OSError) as exc:
            raise MailFailure(f"{type(exc).__name__}: {exc}") from exc

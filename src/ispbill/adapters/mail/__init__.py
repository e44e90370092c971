"""Outgoing e-mail over SMTP (standard library ``smtplib``) to the operator's relay."""

from __future__ import annotations

import smtplib
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

"""A real SMTP server for the e-mail tests (aiosmtpd on loopback) and what they read off it."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from contextlib import contextmanager
from email import message_from_bytes, policy
from email.message import Message
from typing import Any

from aiosmtpd.controller import Controller
from sqlalchemy import select

from ispbill.adapters.db.models import Notification
from ispbill.adapters.mail import SmtpMailer
from ispbill.bootstrap import App
from ispbill.settings import Settings
from scenarios.helpers import events


class Mailbox:
    """Keeps every accepted message; refuses any ``nobody@`` recipient as a relay would."""

    def __init__(self) -> None:
        self.messages: list[Message] = []

    async def handle_RCPT(  # noqa: N802
        self, server: Any, session: Any, envelope: Any, address: str, options: Any
    ) -> str:
        if address.startswith("nobody@"):
            return "550 5.1.1 no such mailbox"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        self.messages.append(message_from_bytes(envelope.content, policy=policy.default))
        return "250 OK"


def free_port() -> int:
    with socket.socket() as probe:  # aiosmtpd cannot take port 0: pick a free port first
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextmanager
def smtp_server() -> Iterator[tuple[Mailbox, int]]:
    """A running server and its port, stopped afterwards (tests share one per module)."""
    mailbox, port = Mailbox(), free_port()
    controller = Controller(mailbox, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield mailbox, port
    finally:
        controller.stop()


def mailer(port: int) -> SmtpMailer:
    return SmtpMailer(Settings(smtp_host="127.0.0.1", smtp_port=port, smtp_from="bill@isp.test"))


def body(message: Message) -> str:
    payload = message.get_payload(decode=True)
    assert isinstance(payload, bytes)
    return payload.decode(message.get_content_charset() or "utf-8")


def kinds(app: App, customer: int, prefix: str) -> list[str]:
    return [e.kind for e in events(app, customer, prefix)]


def stored(app: App) -> list[Notification]:
    with app.uow() as uow:
        return list(uow.session.scalars(select(Notification).order_by(Notification.id)))

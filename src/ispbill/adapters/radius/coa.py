"""RFC 5176 Change-of-Authorization and Disconnect requests, sent with pyrad.

pyrad encodes and signs the packets (no hand-written RADIUS codec) from a small dictionary
shipped beside this module (FreeRADIUS's full dictionary does not load in pyrad). Every request
carries a Message-Authenticator (BlastRADIUS, CVE-2024-3596). One send is one try with one
timeout: retries and back-off belong to the outbox worker, which records every answer.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any, Protocol

from pyrad import packet
from pyrad.client import Client, Timeout
from pyrad.dictionary import Dictionary

from ispbill.domain.radius import Command

DICTIONARY_PATH = Path(__file__).with_name("dictionary")
SESSION_NOT_FOUND = 503  # Error-Cause Session-Context-Not-Found


class Answer(StrEnum):
    ACK = "ack"
    NAK = "nak"
    TIMEOUT = "timeout"


@dataclass(frozen=True)
class NasTarget:
    address: str
    secret: str
    coa_port: int


@dataclass(frozen=True)
class SendResult:
    answer: Answer
    error_cause: int | None = None
    detail: str = ""


class CoaSender(Protocol):
    def send(
        self, target: NasTarget, command: Command, attributes: Sequence[tuple[str, str]]
    ) -> SendResult: ...


@functools.cache
def dictionary() -> Dictionary:
    return Dictionary(str(DICTIONARY_PATH))


class PyradSender:
    """Sends one packet and waits ``timeout_s`` for the NAS's answer."""

    def __init__(self, *, timeout_s: float = 1.0) -> None:
        self.timeout_s = timeout_s

    def send(
        self, target: NasTarget, command: Command, attributes: Sequence[tuple[str, str]]
    ) -> SendResult:
        client = Client(
            server=target.address,
            coaport=target.coa_port,
            secret=target.secret.encode(),
            dict=dictionary(),
            retries=1,
            timeout=self.timeout_s,
        )
        code = packet.CoARequest if command is Command.COA else packet.DisconnectRequest
        request = client.CreateCoAPacket(code=code, message_authenticator=True)
        for name, value in attributes:
            request.AddAttribute(name, typed_value(name, value))
        try:
            reply = client.SendPacket(request)
        except Timeout:
            return SendResult(Answer.TIMEOUT, detail=f"no answer in {self.timeout_s:g}s")
        except OSError as exc:  # unreachable network, refused port (ICMP)
            return SendResult(Answer.TIMEOUT, detail=f"{type(exc).__name__}: {exc}")
        finally:
            client._CloseSocket()
        cause = _error_cause(reply)
        if reply.code in (packet.CoAACK, packet.DisconnectACK):
            return SendResult(Answer.ACK, cause)
        return SendResult(Answer.NAK, cause, detail=f"NAK code {reply.code}")


def typed_value(name: str, value: str) -> Any:
    """pyrad wants Python ints for integer attributes."""
    kind = dictionary()[name].type
    return int(value) if kind in ("integer", "date") else value


def _error_cause(reply: packet.Packet) -> int | None:
    values = reply.get(101) or reply.get("Error-Cause")
    if not values:
        return None
    value = values[0]
    if isinstance(value, int):
        return value
    if isinstance(value, bytes):
        return int.from_bytes(value, "big")
    try:
        return int(dictionary().attributes["Error-Cause"].values.GetForward(value))
    except (KeyError, ValueError, TypeError):
        return None

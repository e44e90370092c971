"""RADIUS accounting (RFC 2866) read and applied, purely.

``parse_accounting`` reads the JSON rlm_rest sends (each attribute ``{"type": ..., "value":
[...]}``) into an ``AcctRecord`` or refuses it naming the attribute; ``apply_accounting`` says
what a record does to the stored session. The rules avoid the mistakes listed in
FREERADIUS-NOTES (openwisp-radius): times come from Event-Timestamp less Acct-Delay-Time, never
from the server's clock alone; octet totals include the gigaword counters; counters only grow,
so a duplicated or out-of-order packet adds nothing twice; a stopped session stays stopped (a
late Interim-Update never reopens it).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any

from ispbill.domain.errors import ValidationError
from ispbill.domain.text import refuse_nul

GIGAWORD = 2**32
MAX_COUNTER = 2**63 - 1
MAX_DELAY_S = 7 * 24 * 3600  # a NAS may buffer accounting through an outage, not for months
_STATUS_NUMBERS = {
    "1": "Start",
    "2": "Stop",
    "3": "Interim-Update",
    "7": "Accounting-On",
    "8": "Accounting-Off",
}
_DATE_FORMATS = ("%b %d %Y %H:%M:%S %Z", "%b %d %Y %H:%M:%S")


class AcctStatus(StrEnum):
    START = "Start"
    STOP = "Stop"
    INTERIM = "Interim-Update"
    ACCOUNTING_ON = "Accounting-On"
    ACCOUNTING_OFF = "Accounting-Off"

    @property
    def per_session(self) -> bool:
        return self in (AcctStatus.START, AcctStatus.STOP, AcctStatus.INTERIM)


@dataclass(frozen=True, slots=True)
class AcctRecord:
    status: AcctStatus
    nas_address: str
    event_at: datetime
    session_id: str | None = None
    username: str | None = None
    framed_ip: str | None = None
    calling_station_id: str | None = None
    input_bytes: int = 0
    output_bytes: int = 0
    session_seconds: int = 0
    terminate_cause: str | None = None

    @property
    def session_key(self) -> str:
        """Unique per NAS: Acct-Session-Id is only unique on the NAS that made it."""
        return f"{self.nas_address}/{self.session_id}"


@dataclass(frozen=True, slots=True)
class SessionState:
    started_at: datetime
    updated_at: datetime
    stopped_at: datetime | None
    input_bytes: int
    output_bytes: int
    session_seconds: int = 0
    terminate_cause: str | None = None

    @property
    def open(self) -> bool:
        return self.stopped_at is None


@dataclass(frozen=True, slots=True)
class AcctDecision:
    """``state`` is what to store (``None``: change nothing); ``usage_bytes`` is what the packet
    adds to the service's data usage."""

    state: SessionState | None
    usage_bytes: int
    note: str


def parse_accounting(
    body: Mapping[str, Any], *, received_at: datetime, source_address: str | None = None
) -> AcctRecord:
    """Read rlm_rest's JSON body; refuse it (``ValidationError`` naming the attribute) when a
    session id is missing or a counter is negative or not a number."""
    attrs = _Attributes(body)
    status_text = attrs.text("Acct-Status-Type")
    if status_text is None:
        raise ValidationError("Acct-Status-Type", "is required")
    status_text = _STATUS_NUMBERS.get(status_text, status_text)
    try:
        status = AcctStatus(status_text)
    except ValueError:
        raise ValidationError(
            "Acct-Status-Type", f"{status_text!r} is not one of {', '.join(AcctStatus)}"
        ) from None
    nas = attrs.text("NAS-IP-Address") or attrs.text("NAS-IPv6-Address") or source_address
    if not nas:
        raise ValidationError("NAS-IP-Address", "is required")
    session_id = attrs.text("Acct-Session-Id")
    if status.per_session and not session_id:
        raise ValidationError("Acct-Session-Id", "is required for Start, Interim-Update and Stop")
    return AcctRecord(
        status=status,
        nas_address=nas,
        event_at=_event_time(attrs, received_at),
        session_id=session_id,
        username=attrs.text("User-Name"),
        framed_ip=attrs.text("Framed-IP-Address"),
        calling_station_id=attrs.text("Calling-Station-Id"),
        input_bytes=_octets(attrs, "Acct-Input-Octets", "Acct-Input-Gigawords"),
        output_bytes=_octets(attrs, "Acct-Output-Octets", "Acct-Output-Gigawords"),
        session_seconds=attrs.counter("Acct-Session-Time"),
        terminate_cause=attrs.text("Acct-Terminate-Cause"),
    )


def apply_accounting(current: SessionState | None, record: AcctRecord) -> AcctDecision:
    """What one Start / Interim-Update / Stop does to a session (see the module docstring)."""
    if current is None:
        stopped = record.event_at if record.status is AcctStatus.STOP else None
        state = SessionState(
            started_at=_started(record),
            updated_at=record.event_at,
            stopped_at=stopped,
            input_bytes=record.input_bytes,
            output_bytes=record.output_bytes,
            session_seconds=record.session_seconds,
            terminate_cause=record.terminate_cause if stopped else None,
        )
        return AcctDecision(state, record.input_bytes + record.output_bytes, "new session")
    if record.status is AcctStatus.START:
        return AcctDecision(None, 0, "duplicate Start")
    if not current.open:
        return AcctDecision(None, 0, f"{record.status.value} after Stop ignored")
    grown_in = max(current.input_bytes, record.input_bytes)
    grown_out = max(current.output_bytes, record.output_bytes)
    usage = grown_in - current.input_bytes + grown_out - current.output_bytes
    stopping = record.status is AcctStatus.STOP
    state = SessionState(
        started_at=current.started_at,
        updated_at=max(current.updated_at, record.event_at),
        stopped_at=max(current.updated_at, record.event_at) if stopping else None,
        input_bytes=grown_in,
        output_bytes=grown_out,
        session_seconds=max(current.session_seconds, record.session_seconds),
        terminate_cause=record.terminate_cause if stopping else None,
    )
    if not stopping and usage == 0 and state == current:
        return AcctDecision(None, 0, "nothing new")
    return AcctDecision(state, usage, "stopped" if stopping else "updated")


def _started(record: AcctRecord) -> datetime:
    """A session first heard of at an Interim or Stop began Acct-Session-Time before it."""
    if record.status is AcctStatus.START:
        return record.event_at
    return record.event_at - timedelta(seconds=record.session_seconds)


def _event_time(attrs: _Attributes, received_at: datetime) -> datetime:
    """Event-Timestamp (else the arrival) less Acct-Delay-Time; never after the arrival (a NAS
    clock running ahead must not date usage into the future)."""
    stamp = attrs.text("Event-Timestamp")
    at = received_at if stamp is None else _parse_stamp(stamp)
    delay = attrs.counter("Acct-Delay-Time")
    if delay > MAX_DELAY_S:
        raise ValidationError("Acct-Delay-Time", f"must be at most {MAX_DELAY_S} seconds")
    return min(at - timedelta(seconds=delay), received_at)


def _parse_stamp(text: str) -> datetime:
    """Event-Timestamp as FreeRADIUS prints it ("Nov 23 2026 18:10:44 UTC"), as seconds since
    the epoch (raw_value) or as ISO 8601."""
    if text.isdigit():
        return datetime.fromtimestamp(int(text), tz=UTC)
    for pattern in _DATE_FORMATS:
        try:
            parsed = datetime.strptime(" ".join(text.split()), pattern)  # noqa: DTZ007 - UTC below
        except ValueError:
            continue
        return parsed.replace(tzinfo=UTC)
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        raise ValidationError("Event-Timestamp", f"{text!r} is not a date") from None
    return (parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)).astimezone(UTC)


def _octets(attrs: _Attributes, octets: str, gigawords: str) -> int:
    total = attrs.counter(gigawords) * GIGAWORD + attrs.counter(octets)
    if total > MAX_COUNTER:
        raise ValidationError(octets, "is beyond a 64-bit counter")
    return total


class _Attributes:
    """rlm_rest's JSON: ``{"Name": {"type": "string", "value": ["x"]}}``; plain values and
    lists are accepted too (tests, other senders)."""

    def __init__(self, body: Mapping[str, Any]) -> None:
        self._body = body

    def text(self, name: str) -> str | None:
        raw = self._body.get(name)
        if isinstance(raw, Mapping):
            raw = raw.get("value")
        if isinstance(raw, list):
            raw = raw[0] if raw else None
        if raw is None:
            return None
        value = refuse_nul(str(raw), name).strip()
        return value or None

    def counter(self, name: str) -> int:
        value = self.text(name)
        if value is None:
            return 0
        if not (value.isascii() and value.isdigit()):
            raise ValidationError(name, f"{value!r} must be a whole number of 0 or more")
        number = int(value)
        if number > MAX_COUNTER:
            raise ValidationError(name, "is beyond a 64-bit counter")
        return number

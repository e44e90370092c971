"""Delivering the enforcement outbox: carries its commands to the NAS of every open session.

For each command it works out, from the committed state at send time, the one reply
(``domain/radius.build_reply``) and whether a CoA-Request can change the session in place or a
Disconnect-Request must end it (``command_for``), then sends it to every open session of the
service (identified by Acct-Session-Id, User-Name and NAS, not by User-Name alone). Each answer
is recorded on the command. An ACK finishes a session; a Disconnect-NAK "Session-Context-Not-
Found" finishes it too (the session is gone); a CoA-NAK is retried as a Disconnect (the NAS
cannot change the session in place, so the subscriber logs in again and gets the new answer);
a timeout or another NAK is retried with exponential back-off (doubling from
``base_delay_s``, capped at ``max_delay_s``) until ``max_attempts``; then the command is a dead
letter (status ``dead``, event ``outbox.dead_lettered``) until an operator retries it
(``retry_command``: the API's ``POST /api/v1/outbox/{id}/retry``, the console's outbox page).

No more than ``per_nas_limit`` commands are in flight to one NAS at a time, across every sender
process (``adapters/db/nas_slots.py``): a command whose NAS is busy is not sent, its attempt
is given back and it is due again after ``busy_delay_s``.

Claims are short transactions that take a lease (``adapters/db/leases.py``: ``next_attempt_at``
moved ahead, ``FOR UPDATE SKIP LOCKED`` on PostgreSQL, so several senders share the outbox), and
the packets are sent outside any transaction. A sender that dies mid-send leaves the lease to
expire and the command is sent again: nothing is lost across restarts, and a NAS handles a
repeated CoA idempotently.

This module is one batch (``process_due``) or one command (``deliver_command``, for a job
queue that runs a job per command); the loop that runs the batch until stopped, woken by
PostgreSQL's NOTIFY or polling, is the CoA sender job (``entrypoints/jobs/coa_sender.py``).
The commands are written by the use cases that change access
(``use_cases/network/access_changes.py``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import or_, select

from ispbill.adapters.db import event_log as events
from ispbill.adapters.db import settings_store
from ispbill.adapters.db.leases import lease_due
from ispbill.adapters.db.lookups import MAX_ID
from ispbill.adapters.db.models import NasRow, OutboxCommand, RadiusSession, Service
from ispbill.adapters.db.nas_slots import nas_slots
from ispbill.adapters.db.outbox import notify
from ispbill.adapters.db.unit_of_work import UnitOfWork
from ispbill.adapters.radius.coa import SESSION_NOT_FOUND, Answer, CoaSender, NasTarget
from ispbill.domain.errors import Conflict, NotFound, ValidationError
from ispbill.domain.radius import (
    Command,
    CommandStatus,
    RadiusPolicy,
    Reply,
    Vendor,
    Verdict,
    build_reply,
    command_for,
)
from ispbill.settings import Settings
from ispbill.use_cases.network.radius_requests import access_view, open_sessions

log = logging.getLogger("ispbill.enforcement")
# CoA carries the authorization attributes; these identify or address a session instead
NOT_IN_COA = frozenset({"Framed-IP-Address", "Framed-Pool", "Reply-Message"})
ACTOR = "engine:enforcement"
REASON_MAX = 200
# what deliver_command answers besides a CommandStatus
BUSY = "busy"  # the NAS had no free slot: not sent, due again after busy_delay_s
NOT_DUE = "not_due"  # leased by another sender, or its next attempt is later
MISSING = "missing"


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential back-off with a cap: attempt n waits ``base_delay_s * 2**(n-1)``, at most
    ``max_delay_s``; after ``max_attempts`` the command is a dead letter. ``lease_s``: how long
    a claimed command is another sender's. ``per_nas_limit`` commands in flight per NAS."""

    base_delay_s: float = 1.0
    max_delay_s: float = 300.0
    max_attempts: int = 8
    lease_s: float = 30.0
    per_nas_limit: int = 4
    busy_delay_s: float = 1.0

    @classmethod
    def from_settings(cls, settings: Settings) -> RetryPolicy:
        return cls(
            base_delay_s=settings.coa_retry_base_seconds,
            max_delay_s=settings.coa_retry_max_seconds,
            max_attempts=settings.coa_max_attempts,
            per_nas_limit=settings.coa_per_nas_limit,
        )

    def delay(self, attempts: int) -> timedelta:
        return timedelta(
            seconds=min(self.base_delay_s * 2 ** max(attempts - 1, 0), self.max_delay_s)
        )


@dataclass(frozen=True)
class Delivery:
    """What one delivery did: the command's status afterwards (``pending``, ``done``, ``dead``)
    or ``busy`` / ``not_due`` / ``missing``, and when it is due again while pending."""

    status: str
    next_attempt_at: datetime | None


@dataclass(frozen=True)
class Packet:
    session_key: str
    target: NasTarget
    command: Command
    attributes: tuple[tuple[str, str], ...]


UowFactory = Callable[[], UnitOfWork]


def process_due(
    uow_factory: UowFactory,
    sender: CoaSender,
    *,
    now: datetime,
    retry: RetryPolicy | None = None,
    limit: int = 50,
) -> int:
    """Claim the due commands and deliver each once; returns how many were worked on."""
    retry = retry or RetryPolicy()
    ids = claim(uow_factory, now=now, retry=retry, limit=limit)
    for command_id in ids:
        deliver(uow_factory, sender, command_id, now=now, retry=retry)
    return len(ids)


def claim(uow_factory: UowFactory, *, now: datetime, retry: RetryPolicy, limit: int) -> list[int]:
    """Lease the due commands in a short transaction, so no other sender takes them meanwhile."""
    with uow_factory() as uow:
        uow.begin_write()
        ids = lease_due(uow, OutboxCommand, now=now, lease_s=retry.lease_s, limit=limit)
        uow.commit()
        return ids


def deliver_command(
    uow_factory: UowFactory,
    sender: CoaSender,
    command_id: int,
    now: datetime,
    retry: RetryPolicy | None = None,
) -> Delivery:
    """Deliver ONE command (a job queue's job per command): lease it if it is due and no other
    sender holds it, send, record. Safe to run twice or late: a command that is done, dead,
    leased elsewhere or not yet due is left as it is (``Delivery.status`` says which)."""
    retry = retry or RetryPolicy()
    with uow_factory() as uow:
        uow.begin_write()
        statement = select(OutboxCommand).where(
            OutboxCommand.id == command_id,
            OutboxCommand.status == CommandStatus.PENDING.value,
            or_(OutboxCommand.attempts == 0, OutboxCommand.next_attempt_at <= now),
        )
        if uow.dialect == "postgresql":
            statement = statement.with_for_update(skip_locked=True)
        command = uow.session.scalars(statement).one_or_none()
        if command is None:
            current = uow.session.get(OutboxCommand, command_id)
            if current is None:
                return Delivery(MISSING, None)
            if current.status != CommandStatus.PENDING.value:
                return Delivery(current.status, None)
            return Delivery(NOT_DUE, current.next_attempt_at)
        command.attempts += 1
        command.next_attempt_at = now + timedelta(seconds=retry.lease_s)
        uow.commit()
    status = deliver(uow_factory, sender, command_id, now=now, retry=retry)
    with uow_factory() as uow:
        after = uow.session.get(OutboxCommand, command_id)
        pending = after is not None and after.status == CommandStatus.PENDING.value
        return Delivery(status, after.next_attempt_at if pending and after else None)


def deliver(
    uow_factory: UowFactory,
    sender: CoaSender,
    command_id: int,
    *,
    now: datetime,
    retry: RetryPolicy,
) -> str:
    """Send one leased command to every open session of its service and record the answers;
    ``busy`` (nothing sent, the attempt given back) when a NAS it needs has no free slot."""
    with uow_factory() as uow:
        command = uow.session.get(OutboxCommand, command_id)
        if command is None or command.status != CommandStatus.PENDING.value:
            return command.status if command else MISSING
        policy = settings_store.load(uow).radius_policy()
        packets, settled = _packets(uow, command, policy, now)
    with nas_slots(uow_factory, (p.target.address for p in packets), retry.per_nas_limit) as free:
        if not free:
            return _busy(uow_factory, command_id, now=now, retry=retry)
        answers = [(p, sender.send(p.target, p.command, p.attributes)) for p in packets]
    with uow_factory() as uow:
        uow.begin_write()
        command = uow.session.get(OutboxCommand, command_id)
        assert command is not None
        results = dict(command.results or {}) | settled
        for packet, result in answers:
            entry = dict(results.get(packet.session_key) or {"nas": packet.target.address})
            history = [*entry.get("attempts", [])]
            history.append(
                {
                    "at": now.isoformat(),
                    "packet": packet.command.value,
                    "answer": result.answer.value,
                    "error_cause": result.error_cause,
                    "detail": result.detail,
                    "attributes": [list(a) for a in packet.attributes],
                }
            )
            entry["attempts"] = history
            entry |= _after(packet.command, result.answer, result.error_cause)
            results[packet.session_key] = entry
        command.results = results
        pending = [key for key, entry in results.items() if not entry.get("final")]
        if not pending:
            command.status = CommandStatus.DONE.value
            command.completed_at = now
            command.last_error = None
        elif command.attempts >= retry.max_attempts:
            command.status = CommandStatus.DEAD.value
            command.completed_at = now
            command.last_error = (
                f"no final answer from {len(pending)} session(s) after {command.attempts} attempts"
            )
            _record(uow, command, "outbox.dead_lettered", "attempts exhausted", now, ACTOR)
        else:
            command.next_attempt_at = now + retry.delay(command.attempts)
            command.last_error = "; ".join(
                f"{p.session_key}: {r.answer.value} {r.detail}".strip()
                for p, r in answers
                if r.answer is not Answer.ACK
            )
        uow.commit()
        for packet, result in answers:
            log.info(
                "outbox %d service %d %s to %s: %s",
                command_id,
                command.service_id,
                packet.command.value,
                packet.target.address,
                result.answer.value,
            )
        return command.status


def _busy(uow_factory: UowFactory, command_id: int, *, now: datetime, retry: RetryPolicy) -> str:
    """A NAS had no free slot: give the attempt back (nothing was sent) and come back soon."""
    with uow_factory() as uow:
        uow.begin_write()
        command = uow.session.get(OutboxCommand, command_id)
        if command is not None and command.status == CommandStatus.PENDING.value:
            command.attempts = max(command.attempts - 1, 0)
            command.next_attempt_at = now + timedelta(seconds=retry.busy_delay_s)
        uow.commit()
    log.info("outbox %d: NAS busy, due again in %ss", command_id, retry.busy_delay_s)
    return BUSY


def retry_command(
    uow: UnitOfWork, *, command_id: int, reason: str, now: datetime, actor: str
) -> OutboxCommand:
    """Put a dead letter back in the queue, due now with its attempts started afresh (the NAS
    was fixed), recording who did it and why. A done or pending command is refused."""
    reason = reason.strip()
    if not reason:
        raise ValidationError("reason", "required: say why the command is sent again")
    if len(reason) > REASON_MAX:
        raise ValidationError("reason", f"at most {REASON_MAX} characters")
    if not 0 < command_id <= MAX_ID:
        raise NotFound("outbox command", command_id)
    uow.begin_write()
    statement = select(OutboxCommand).where(OutboxCommand.id == command_id)
    if uow.dialect == "postgresql":
        statement = statement.with_for_update()
    command = uow.session.scalars(statement).one_or_none()
    if command is None:
        raise NotFound("outbox command", command_id)
    if command.status != CommandStatus.DEAD.value:
        raise Conflict(
            "status", f"outbox command {command.id} is {command.status}; only a dead one is retried"
        )
    _record(uow, command, "outbox.retried", reason, now, actor)
    command.status = CommandStatus.PENDING.value
    command.attempts = 0
    command.next_attempt_at = now
    command.completed_at = None
    notify(uow.session)
    uow.commit()
    return command


def _record(
    uow: UnitOfWork, command: OutboxCommand, kind: str, reason: str, now: datetime, actor: str
) -> None:
    service = uow.session.get(Service, command.service_id)
    events.record(
        uow,
        now=now,
        actor=actor,
        kind=kind,
        subject_type="outbox_command",
        subject_id=command.id,
        customer_id=service.customer_id if service else None,
        reason=reason,
        figures={
            "service": command.service_id,
            "event_kind": command.event_kind,
            "attempts": command.attempts,
            "error": command.last_error,
        },
    )


def _packets(
    uow: UnitOfWork, command: OutboxCommand, policy: RadiusPolicy, now: datetime
) -> tuple[list[Packet], dict[str, Any]]:
    """The packets to send now, and the sessions settled without one (unknown NAS, none)."""
    results: dict[str, Any] = command.results or {}
    packets: list[Packet] = []
    settled: dict[str, Any] = {}
    nas_rows = {row.address: row for row in uow.session.scalars(select(NasRow))}
    sessions = open_sessions(uow, command.service_id)
    if not sessions and not results:
        settled["-"] = {"final": True, "answer": "no open session"}
    open_keys = {s.session_key for s in sessions}
    for key, entry in results.items():
        if not entry.get("final") and key not in open_keys:
            settled[key] = {**entry, "final": True, "answer": "session closed"}
    for session in sessions:
        entry = results.get(session.session_key) or {}
        if entry.get("final"):
            continue
        nas = nas_rows.get(session.nas_address)
        if nas is None:
            settled[session.session_key] = {
                "final": True,
                "answer": "unknown NAS",
                "nas": session.nas_address,
            }
            continue
        reply = build_reply(access_view(uow, command.service_id, Vendor(nas.vendor), now), policy)
        kind = (
            Command.DISCONNECT
            if entry.get("escalate")
            else command_for(reply, command.event_kind, policy)
        )
        packets.append(
            Packet(
                session_key=session.session_key,
                target=NasTarget(nas.address, nas.secret, nas.coa_port),
                command=kind,
                attributes=_attributes(session, reply, kind),
            )
        )
    return packets, settled


def identification(session: RadiusSession) -> list[tuple[str, str]]:
    """RFC 5176 section 3: the session is named by Acct-Session-Id with User-Name and the
    NAS's address, plus Framed-IP-Address when known."""
    attributes = [
        ("Acct-Session-Id", session.acct_session_id),
        ("NAS-IP-Address", session.nas_address),
    ]
    if session.username:
        attributes.insert(0, ("User-Name", session.username))
    if session.framed_ip:
        attributes.append(("Framed-IP-Address", session.framed_ip))
    return attributes


def _attributes(
    session: RadiusSession, reply: Reply, command: Command
) -> tuple[tuple[str, str], ...]:
    attributes = identification(session)
    if command is Command.COA and reply.verdict is not Verdict.REJECT:
        attributes += [(k, v) for k, v in reply.attributes if k not in NOT_IN_COA]
    return tuple(attributes)


def _after(command: Command, answer: Answer, error_cause: int | None) -> dict[str, Any]:
    if answer is Answer.ACK:
        return {"final": True, "answer": "ack"}
    if answer is Answer.NAK and command is Command.DISCONNECT and error_cause == SESSION_NOT_FOUND:
        return {"final": True, "answer": "session gone"}
    if answer is Answer.NAK and command is Command.COA:
        return {"final": False, "answer": "nak", "escalate": True}
    return {"final": False, "answer": answer.value}


def commands(
    uow: UnitOfWork, *, status: str | None = None, limit: int = 100
) -> list[OutboxCommand]:
    statement = select(OutboxCommand).order_by(OutboxCommand.id.desc()).limit(limit)
    if status:
        statement = statement.where(OutboxCommand.status == status)
    return list(uow.session.scalars(statement))


def pending_ids(uow: UnitOfWork) -> Sequence[int]:
    return list(
        uow.session.scalars(
            select(OutboxCommand.id).where(OutboxCommand.status == CommandStatus.PENDING.value)
        )
    )

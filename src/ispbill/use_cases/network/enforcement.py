"""Delivering the enforcement outbox: carries its commands to the NAS of every open session.

For each command it works out, from the committed state at send time, the one reply
(``domain/radius.build_reply``) and whether a CoA-Request can change the session in place or a
Disconnect-Request must end it (``command_for``), then sends it to every open session of the
service (identified by Acct-Session-Id, User-Name and NAS, not by User-Name alone). Each answer
is recorded on the command. An ACK finishes a session; a Disconnect-NAK "Session-Context-Not-
Found" finishes it too (the session is gone); a CoA-NAK is retried as a Disconnect (the NAS
cannot change the session in place, so the subscriber logs in again and gets the new answer);
a timeout or another NAK is retried with exponential back-off until ``max_attempts``.

Claims are short transactions that take a lease (``adapters/db/leases.py``: ``next_attempt_at``
moved ahead, ``FOR UPDATE SKIP LOCKED`` on PostgreSQL, so several senders share the outbox), and
the packets are sent outside any transaction. A sender that dies mid-send leaves the lease to
expire and the command is sent again: nothing is lost across restarts, and a NAS handles a
repeated CoA idempotently.

This module is one batch (``process_due``) and one command (``deliver_command``, the
``deliver_coa`` job deferred in the transaction that writes the command); the background work
runs them (``entrypoints/jobs/tasks.py``; docs/architecture.md, "Runtime").
The commands are written by the use cases that change access
(``use_cases/network/access_changes.py``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select

from ispbill.adapters.db import settings_store
from ispbill.adapters.db.leases import lease_due
from ispbill.adapters.db.models import NasRow, OutboxCommand, RadiusSession
from ispbill.adapters.db.unit_of_work import UnitOfWork
from ispbill.adapters.radius.coa import SESSION_NOT_FOUND, Answer, CoaSender, NasTarget
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
from ispbill.use_cases.network.radius_requests import access_view, open_sessions

log = logging.getLogger("ispbill.enforcement")
# CoA carries the authorization attributes; these identify or address a session instead
NOT_IN_COA = frozenset({"Framed-IP-Address", "Framed-Pool", "Reply-Message"})
ACTOR = "engine:enforcement"


@dataclass(frozen=True)
class RetryPolicy:
    base_delay_s: float = 1.0
    max_delay_s: float = 300.0
    max_attempts: int = 8
    lease_s: float = 30.0

    def delay(self, attempts: int) -> timedelta:
        return timedelta(
            seconds=min(self.base_delay_s * 2 ** max(attempts - 1, 0), self.max_delay_s)
        )


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


def deliver(
    uow_factory: UowFactory,
    sender: CoaSender,
    command_id: int,
    *,
    now: datetime,
    retry: RetryPolicy,
) -> str:
    """Send one command to every open session of its service and record the answers."""
    with uow_factory() as uow:
        command = uow.session.get(OutboxCommand, command_id)
        if command is None or command.status != CommandStatus.PENDING.value:
            return command.status if command else "missing"
        policy = settings_store.load(uow).radius_policy()
        packets, settled = _packets(uow, command, policy, now)
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
            command.status = CommandStatus.FAILED.value
            command.completed_at = now
            command.last_error = (
                f"no final answer from {len(pending)} session(s) after {command.attempts} attempts"
            )
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


def deliver_command(
    uow_factory: UowFactory,
    sender: CoaSender,
    command_id: int,
    *,
    now: datetime,
    retry: RetryPolicy | None = None,
) -> str:
    """Lease one command, if it is due, and deliver it (the ``deliver_coa`` job's work):
    "not due" when it is not pending, already leased by another sender or waiting for a
    retry."""
    retry = retry or RetryPolicy()
    with uow_factory() as uow:
        uow.begin_write()
        ids = lease_due(
            uow, OutboxCommand, now=now, lease_s=retry.lease_s, limit=1, only=command_id
        )
        uow.commit()
    if not ids:
        return "not due"
    return deliver(uow_factory, sender, command_id, now=now, retry=retry)


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

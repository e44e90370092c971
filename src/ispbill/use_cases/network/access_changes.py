"""Access changes: the explicit step a use case takes when the network must follow it.

ARCHITECTURE invariant 6: "every state change that alters access reaches the network through
the outbox, retried until acknowledged". A use case that suspends, reactivates, pauses, ends,
throttles or re-plans a service records the event (``adapters/db/event_log.record``, which only
records) and then says so, where it happens:

* ``enqueue(uow, event)`` for one recorded event (``move_service`` moves a service's state and
  does both);
* ``enqueue_transitions(uow, outcomes)`` for the engine's decisions, which the tick and a
  payment's re-evaluation store in bulk (``adapters/db/billing_store.store_outcomes``).

Each writes a CoA command to the outbox (``adapters/db/outbox.py``) in the caller's
transaction, so it commits or rolls back with the event, and marks the service's precomputed
RADIUS answer stale on the unit of work. Other writes that change an answer without a CoA (a
new login, a ``radius_*`` setting) call ``uow.mark_answers_stale`` themselves. Before the transaction
commits, ``uow.commit()`` rebuilds the marked answers
(``use_cases/network/radius_answers.refresh_stale``, the pre-commit step bootstrap gives every
unit of work), after the use case's last write. What a command sends is worked out by the CoA
sender from the committed state when it sends (``use_cases/network/enforcement.py``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from ispbill.adapters.db import event_log as events
from ispbill.adapters.db import outbox
from ispbill.adapters.db.models import Event, Service
from ispbill.adapters.db.unit_of_work import UnitOfWork
from ispbill.domain.billing import Outcome


def enqueue(uow: UnitOfWork, event: Event) -> Event:
    """The network follows ``event``, an access change just recorded: a CoA command in this
    transaction, and the service's RADIUS answer rebuilt before the commit."""
    if not outbox.changes_access(event.kind, event.subject_type):
        raise ValueError(f"{event.kind} of a {event.subject_type} does not change access")
    outbox.enqueue(
        uow.session,
        service_id=event.subject_id,
        kind=event.kind,
        reason=event.reason,
        now=event.occurred_at,
    )
    uow.mark_answers_stale([event.subject_id], event.occurred_at)
    return event


def enqueue_transitions(uow: UnitOfWork, outcomes: Sequence[Outcome]) -> int:
    """The network follows the engine's stored service transitions (the ``service.<state>``
    events ``billing_store.store_outcomes`` wrote); returns how many commands were queued."""
    commands = [
        outbox.NewCommand(
            service_id=t.service_id,
            kind=f"service.{t.to_state.value}",
            reason=t.reason or "",
            at=t.at,
        )
        for o in outcomes
        for t in o.transitions
    ]
    commands = [c for c in commands if outbox.changes_access(c.kind, "service")]
    if commands:
        outbox.enqueue_many(uow.session, commands)
        uow.mark_answers_stale({c.service_id for c in commands}, max(c.at for c in commands))
    return len(commands)


def move_service(
    uow: UnitOfWork,
    service: Service,
    *,
    to: str,
    reason: str | None,
    now: datetime,
    actor: str,
    event_reason: str,
    figures: Mapping[str, Any],
) -> Event:
    """Put a service in state ``to`` (with ``reason``), record the ``service.<to>`` event, whose
    figures say which state it left, and let the network follow: the one shape every
    lifecycle move shares."""
    previous = service.state
    service.state = to
    service.state_reason = reason
    service.state_since = now
    event = events.record(
        uow,
        now=now,
        actor=actor,
        kind=f"service.{to}",
        subject_type="service",
        subject_id=service.id,
        customer_id=service.customer_id,
        reason=event_reason,
        figures={"from": previous, **figures},
    )
    if outbox.changes_access(event.kind, event.subject_type):
        enqueue(uow, event)
    return event

"""Every edit of a record is one event with the old and the new value of each field it changed
(issue 17), so "who changed the credit limit, from what" is answered by the event log."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from ispbill.adapters.db import event_log as events
from ispbill.adapters.db.unit_of_work import UnitOfWork

# Secrets are recorded as changed, never with their values.
HIDDEN = "(hidden)"


def diff(before: Mapping[str, Any], after: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """``{field: {"old": ..., "new": ...}}`` for each field whose value differs."""
    return {
        name: {"old": before.get(name), "new": value}
        for name, value in after.items()
        if before.get(name) != value
    }


def record_edit(
    uow: UnitOfWork,
    *,
    kind: str,
    subject_type: str,
    subject_id: int,
    changed: Mapping[str, Mapping[str, Any]],
    now: datetime,
    actor: str,
    customer_id: int | None = None,
    reason: str = "",
) -> None:
    events.record(
        uow,
        now=now,
        actor=actor,
        kind=kind,
        subject_type=subject_type,
        subject_id=subject_id,
        customer_id=customer_id,
        reason=reason,
        figures={"changes": {name: dict(values) for name, values in changed.items()}},
    )

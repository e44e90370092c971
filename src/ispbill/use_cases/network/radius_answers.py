"""Precomputed RADIUS answers: the fast path of authorize (FreeRADIUS rlm_sql, no HTTP hop).

``radius_answers`` holds, per login and NAS vendor, the check and reply items that
``domain/radius.build_reply`` gives for the committed state, in the radcheck/radreply shape
rlm_sql reads. They are rebuilt in the same transaction as whatever changed them: the outbox
marks the services of every access-changing event (``events.record`` and the tick's bulk
writer), a new network identity marks its service, a ``radius_*`` setting marks all; a
before-commit hook on every Session rebuilds the marked services once, after the last write of
the transaction, so the answers can never disagree with the committed state. rlm_rest stays for
accounting and for logins the table cannot answer (circuit ids, MAC addresses in other
spellings): the generated site asks rlm_sql first and rlm_rest when it finds nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Row, delete, event
from sqlalchemy.orm import Session

from ispbill.adapters.db import bulk, outbox, settings_store
from ispbill.adapters.db.models import RadiusAnswer, table_of
from ispbill.domain.radius import RadiusPolicy, Vendor, Verdict, build_reply
from ispbill.use_cases.network import radius_requests as radius

Line = tuple[str, str, str, str, str]  # username, kind, attribute, op, value
BATCH = 500


@dataclass
class _SessionOnly:
    """What ``settings.load`` reads from a unit of work."""

    session: Session


@event.listens_for(Session, "before_commit")
def _rebuild_before_commit(session: Session) -> None:
    dirty = session.info.pop(outbox.DIRTY_KEY, None)
    if not dirty:
        return
    session.flush()
    ids = dirty["services"]
    rebuild(session, None if ids is None else sorted(ids), now=dirty["now"])


def rebuild(session: Session, service_ids: Sequence[int] | None, *, now: datetime) -> int:
    """Replace the answers of these services (``None``: all); returns the lines written."""
    policy = settings_store.load(_SessionOnly(session)).radius_policy()  # type: ignore[arg-type]
    if service_ids is None:
        return _rebuild(session, None, policy, now)
    # slices keep each statement's parameter list small (SQLite caps bound variables)
    return sum(
        _rebuild(session, service_ids[i : i + BATCH], policy, now)
        for i in range(0, len(service_ids), BATCH)
    )


def _rebuild(
    session: Session, service_ids: Sequence[int] | None, policy: RadiusPolicy, now: datetime
) -> int:
    rows = radius.identity_views(session, service_ids, now)
    statement = delete(RadiusAnswer)
    if service_ids is not None:
        statement = statement.where(RadiusAnswer.service_id.in_(list(service_ids)))
    session.execute(statement.execution_options(synchronize_session=False))
    lines = [
        {
            "service_id": row.service_id,
            "vendor": vendor.value,
            "username": username,
            "kind": kind,
            "attribute": attribute,
            "op": op,
            "value": value,
        }
        for row in rows
        for vendor in Vendor
        for username, kind, attribute, op, value in answer_lines(row, vendor, policy)
    ]
    bulk.insert_rows(session.connection(), table_of(RadiusAnswer), lines)
    return len(lines)


def answer_lines(row: Row[Any], vendor: Vendor, policy: RadiusPolicy) -> list[Line]:
    """The check and reply items of one identity for one vendor, as authorize would answer."""
    reply = build_reply(radius.view_of(row, vendor), policy)
    logins: list[tuple[str, list[tuple[str, str]]]] = []
    if row.username:
        header = (
            "Password-With-Header" if row.password_scheme == "ssha512" else "Cleartext-Password"
        )
        logins.append((row.username, [(header, row.password)]))
    if row.mac_address:
        logins.append((row.mac_address, [("Auth-Type", "Accept")]))
    lines: list[Line] = []
    for login, credentials in logins:
        if reply.verdict is Verdict.REJECT:
            lines.append((login, "check", "Auth-Type", ":=", "Reject"))
            lines.append((login, "reply", "Reply-Message", ":=", reply.message))
            continue
        lines += [(login, "check", name, ":=", value) for name, value in credentials]
        lines += [(login, "reply", name, ":=", value) for name, value in reply.attributes]
    return lines

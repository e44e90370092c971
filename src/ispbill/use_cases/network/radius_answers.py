"""Precomputed RADIUS answers: the fast path of authorize (FreeRADIUS rlm_sql, no HTTP hop).

``radius_answers`` holds, per login and NAS vendor, the check and reply items that
``domain/radius.build_reply`` gives for the committed state, in the radcheck/radreply shape
rlm_sql reads. They are rebuilt in the same transaction as whatever changed them: a use case
that changes access marks its services stale on the unit of work
(``use_cases/network/access_changes.py``, the tick's bulk writer included), a new network
identity marks its service, a ``radius_*`` setting marks all; ``refresh_stale`` is the
pre-commit step ``uow.commit()`` runs (bootstrap builds every unit of work with it), so the
marked services are rebuilt once, after the last write of the transaction, and the answers can
never disagree with the committed state. rlm_rest stays for
accounting and for logins the table cannot answer (circuit ids, MAC addresses in other
spellings): the generated site asks rlm_sql first and rlm_rest when it finds nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Row, delete
from sqlalchemy.orm import Session

from ispbill.adapters.db import bulk, settings_store
from ispbill.adapters.db.models import RadiusAnswer, table_of
from ispbill.adapters.db.unit_of_work import UnitOfWork
from ispbill.domain.radius import RadiusPolicy, Vendor, Verdict, build_reply
from ispbill.use_cases.network import radius_requests as radius

Line = tuple[str, str, str, str, str]  # username, kind, attribute, op, value
BATCH = 500


def refresh_stale(uow: UnitOfWork) -> None:
    """Rebuild the answers this transaction marked stale, after its last write (the unit of
    work's pre-commit step)."""
    stale, uow.stale_answers = uow.stale_answers, None
    if stale is None:
        return
    uow.session.flush()
    ids = stale.service_ids
    rebuild(uow, None if ids is None else sorted(ids), now=stale.now)


def rebuild(uow: UnitOfWork, service_ids: Sequence[int] | None, *, now: datetime) -> int:
    """Replace the answers of these services (``None``: all); returns the lines written."""
    policy = settings_store.load(uow).radius_policy()
    if service_ids is None:
        return _rebuild(uow.session, None, policy, now)
    # slices keep each statement's parameter list small (SQLite caps bound variables)
    return sum(
        _rebuild(uow.session, service_ids[i : i + BATCH], policy, now)
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

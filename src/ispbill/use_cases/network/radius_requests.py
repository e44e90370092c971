"""What FreeRADIUS asks ispbill (rlm_rest): authorize a login, record accounting.

Authorize answers from the committed service state in one query (identity, service, plan,
the current period's FUP throttle, the asking NAS), through ``domain/radius.build_reply``, the
same function the CoA worker uses. Accounting applies the pure rules of
``domain/accounting.apply_accounting`` to the session row under a row lock, feeds the period's
usage (``services/usage.add_usage``) and keeps the address-to-service map that the walled garden
uses (``service_for_address``).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Row, and_, bindparam, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from ispbill.adapters.db.models import (
    NasRow,
    NetworkIdentity,
    Plan,
    RadiusSession,
    Service,
    UsageRecord,
    table_of,
)
from ispbill.adapters.db.types import UTCDateTime
from ispbill.adapters.db.unit_of_work import UnitOfWork
from ispbill.domain.accounting import (
    AcctRecord,
    AcctStatus,
    SessionState,
    apply_accounting,
)
from ispbill.domain.errors import ValidationError
from ispbill.domain.lifecycle import ServiceState
from ispbill.domain.plans import Speed
from ispbill.domain.radius import (
    AccessView,
    RadiusPolicy,
    Reply,
    Vendor,
    Verdict,
    build_reply,
    slowest,
)
from ispbill.domain.text import refuse_nul
from ispbill.use_cases.network import usage
from ispbill.use_cases.network.identities import normalize_mac

log = logging.getLogger("ispbill.radius")
ACCOUNTING_ACTOR = "radius:accounting"


@dataclass(frozen=True)
class Authorization:
    """The reply, plus what FreeRADIUS needs to check the password itself (control list)."""

    reply: Reply
    control: tuple[tuple[str, str], ...] = ()


def authorize(
    uow: UnitOfWork, *, attributes: Mapping[str, Any], policy: RadiusPolicy, now: datetime
) -> Authorization:
    """Answer an Access-Request from the committed state (one query)."""
    username = _text(attributes, "User-Name")
    nas_address = _text(attributes, "NAS-IP-Address") or _text(attributes, "NAS-IPv6-Address")
    row = _lookup(uow, attributes, username, nas_address, now)
    if row is None:
        return Authorization(build_reply(None, policy))
    if row.bound_nas_id is not None and row.bound_nas_id != row.nas_id:
        return Authorization(Reply(Verdict.REJECT, (), "not allowed on this NAS"))
    view = AccessView(
        service_id=row.service_id,
        state=ServiceState(row.state),
        reason=row.state_reason,
        speed=Speed(row.download_kbps, row.upload_kbps),
        vendor=Vendor(row.vendor) if row.vendor else Vendor.GENERIC,
        throttle=_throttle(row),
        static_ip=row.static_ip,
    )
    reply = build_reply(view, policy)
    if reply.verdict is Verdict.REJECT:
        return Authorization(reply)
    return Authorization(reply, _credentials(row, username))


def access_view(
    uow: UnitOfWork, service_id: int, vendor: Vendor, now: datetime
) -> AccessView | None:
    """The same view authorize builds, for the CoA worker (by service, for a given NAS type)."""
    row = (
        uow.session.connection()
        .execute(_BY_SERVICE, {"service_id": service_id, "now": now})
        .first()
    )
    if row is None:
        return None
    return AccessView(
        service_id=row.service_id,
        state=ServiceState(row.state),
        reason=row.state_reason,
        speed=Speed(row.download_kbps, row.upload_kbps),
        vendor=vendor,
        throttle=_throttle(row),
        static_ip=row.static_ip,
    )


@dataclass(frozen=True)
class AccountingResult:
    status: AcctStatus
    note: str
    service_id: int | None = None
    usage_bytes: int = 0
    closed_sessions: int = 0


def record_accounting(uow: UnitOfWork, *, record: AcctRecord, now: datetime) -> AccountingResult:
    """Apply one accounting packet; idempotent (a repeat changes nothing twice)."""
    uow.begin_write()
    if not record.status.per_session:
        closed = close_nas_sessions(uow, nas_address=record.nas_address, at=record.event_at)
        uow.commit()
        log.info(
            "accounting %s from %s closed %d sessions", record.status, record.nas_address, closed
        )
        return AccountingResult(
            record.status, f"closed {closed} open sessions", closed_sessions=closed
        )
    service_id = _service_for_login(uow, record)
    current = _locked_session(uow, record)
    decision = apply_accounting(_state(current) if current else None, record)
    inserted = (
        decision.state is not None
        and current is None
        and _insert_session(uow, record, decision.state, service_id)
    )
    if decision.state is not None and current is None and not inserted:
        # PostgreSQL: a concurrent first packet of this session inserted it (the insert
        # waited for that commit); apply this packet to the winner's row instead
        current = _locked_session(uow, record)
        assert current is not None
        decision = apply_accounting(_state(current), record)
    if decision.state is not None and current is not None:
        _update_session(current, record, decision.state)
    if current is not None and current.service_id is not None:
        service_id = current.service_id
    if service_id is not None and decision.usage_bytes > 0:
        usage.add_usage(
            uow,
            service_id=service_id,
            used_bytes=decision.usage_bytes,
            at=record.event_at,
            now=now,
            actor=ACCOUNTING_ACTOR,
        )
    uow.commit()
    return AccountingResult(record.status, decision.note, service_id, decision.usage_bytes)


def close_nas_sessions(uow: UnitOfWork, *, nas_address: str, at: datetime) -> int:
    """Accounting-On/Off: the NAS (re)started, so none of its sessions is still up."""
    result = uow.session.execute(
        update(RadiusSession)
        .where(RadiusSession.nas_address == nas_address, RadiusSession.stopped_at.is_(None))
        .values(stopped_at=at, updated_at=at, terminate_cause="NAS-Reboot")
        .execution_options(synchronize_session=False)
    )
    return int(getattr(result, "rowcount", 0) or 0)


def service_for_address(uow: UnitOfWork, ip: str, now: datetime) -> int | None:
    """The service behind an address now: the latest open session holding it, else a static
    address. The walled-garden page uses it to recognise a suspended subscriber."""
    session_owner = uow.session.scalar(
        select(RadiusSession.service_id)
        .where(
            RadiusSession.framed_ip == ip,
            RadiusSession.stopped_at.is_(None),
            RadiusSession.started_at <= now,
            RadiusSession.service_id.is_not(None),
        )
        .order_by(RadiusSession.started_at.desc(), RadiusSession.id.desc())
        .limit(1)
    )
    if session_owner is not None:
        return session_owner
    return uow.session.scalar(
        select(NetworkIdentity.service_id).where(NetworkIdentity.static_ip == ip)
    )


def open_sessions(uow: UnitOfWork, service_id: int) -> list[RadiusSession]:
    return list(
        uow.session.scalars(
            select(RadiusSession)
            .where(RadiusSession.service_id == service_id, RadiusSession.stopped_at.is_(None))
            .order_by(RadiusSession.id)
        )
    )


def _view_columns() -> Any:
    return select(
        Service.id.label("service_id"),
        Service.state,
        Service.state_reason,
        Plan.download_kbps,
        Plan.upload_kbps,
        UsageRecord.throttle_down_kbps,
        UsageRecord.throttle_up_kbps,
        Service.throttle_down_kbps.label("collection_down_kbps"),
        Service.throttle_up_kbps.label("collection_up_kbps"),
        NetworkIdentity.static_ip,
    )


def _view_joins(statement: Any) -> Any:
    now = bindparam("now", type_=UTCDateTime())
    return statement.join(Plan, Plan.id == Service.plan_id).outerjoin(
        UsageRecord,
        and_(
            UsageRecord.service_id == Service.id,
            UsageRecord.period_starts_at <= now,
            UsageRecord.period_ends_at > now,
        ),
    )


# Built once: authorize is the hot path (thousands a second), so the statement is neither
# rebuilt nor recompiled per request; it runs on the unit of work's connection without the ORM.
_BY_SERVICE = _view_joins(
    _view_columns()
    .select_from(Service)
    .outerjoin(NetworkIdentity, NetworkIdentity.service_id == Service.id)
).where(Service.id == bindparam("service_id"))
_BY_LOGIN = (
    _view_joins(
        _view_columns()
        .add_columns(
            NetworkIdentity.username,
            NetworkIdentity.password,
            NetworkIdentity.password_scheme,
            NetworkIdentity.nas_id.label("bound_nas_id"),
            NasRow.id.label("nas_id"),
            NasRow.vendor,
        )
        .select_from(NetworkIdentity)
        .join(Service, Service.id == NetworkIdentity.service_id)
    )
    .outerjoin(NasRow, NasRow.address == bindparam("nas"))
    .where(
        or_(
            NetworkIdentity.username == bindparam("username"),
            NetworkIdentity.mac_address == bindparam("mac"),
            NetworkIdentity.circuit_id == bindparam("circuit"),
        )
    )
    .order_by(NetworkIdentity.username.is_(None))  # a username match wins over a MAC
    .limit(1)
)


def identity_views(
    session: Session, service_ids: Sequence[int] | None, now: datetime
) -> list[Row[Any]]:
    """Every identity (of these services, or all) with the view authorize builds: what the
    precomputed answers are made of."""
    statement = _view_joins(
        _view_columns()
        .add_columns(
            NetworkIdentity.username,
            NetworkIdentity.password,
            NetworkIdentity.password_scheme,
            NetworkIdentity.mac_address,
        )
        .select_from(NetworkIdentity)
        .join(Service, Service.id == NetworkIdentity.service_id)
    )
    if service_ids is not None:
        statement = statement.where(NetworkIdentity.service_id.in_(list(service_ids)))
    return list(session.connection().execute(statement, {"now": now}))


def view_of(row: Row[Any], vendor: Vendor) -> AccessView:
    return AccessView(
        service_id=row.service_id,
        state=ServiceState(row.state),
        reason=row.state_reason,
        speed=Speed(row.download_kbps, row.upload_kbps),
        vendor=vendor,
        throttle=_throttle(row),
        static_ip=row.static_ip,
    )


def _lookup(
    uow: UnitOfWork,
    attributes: Mapping[str, Any],
    username: str | None,
    nas_address: str | None,
    now: datetime,
) -> Row[Any] | None:
    mac = _mac(username) or _mac(_text(attributes, "Calling-Station-Id"))
    circuit = _text(attributes, "ADSL-Agent-Circuit-Id")
    if not (username or mac or circuit):
        return None
    params = {
        "username": username,
        "mac": mac,
        "circuit": circuit,
        "nas": nas_address or "",
        "now": now,
    }
    return uow.session.connection().execute(_BY_LOGIN, params).first()


def _credentials(row: Row[Any], username: str | None) -> tuple[tuple[str, str], ...]:
    """Let FreeRADIUS check the password (PAP, CHAP, MS-CHAP); an IPoE identity recognised by
    its MAC or circuit id is accepted as the NAS vouches for it."""
    if row.username is not None and row.username == username:
        if row.password_scheme == "ssha512":
            return (("Password-With-Header", row.password),)
        return (("Cleartext-Password", row.password),)
    return (("Auth-Type", "Accept"),)


def _service_for_login(uow: UnitOfWork, record: AcctRecord) -> int | None:
    matches = []
    if record.username:
        matches.append(NetworkIdentity.username == record.username)
    for candidate in (record.username, record.calling_station_id):
        mac = _mac(candidate)
        if mac:
            matches.append(NetworkIdentity.mac_address == mac)
    if not matches:
        return None
    return uow.session.scalar(
        select(NetworkIdentity.service_id)
        .where(or_(*matches))
        .order_by(NetworkIdentity.username.is_(None))
        .limit(1)
    )


def _locked_session(uow: UnitOfWork, record: AcctRecord) -> RadiusSession | None:
    statement = select(RadiusSession).where(RadiusSession.session_key == record.session_key)
    if uow.dialect == "postgresql":
        statement = statement.with_for_update()
    return uow.session.scalar(statement.execution_options(populate_existing=True))


def _session_values(state: SessionState) -> dict[str, Any]:
    return {
        "started_at": state.started_at,
        "updated_at": state.updated_at,
        "stopped_at": state.stopped_at,
        "input_bytes": state.input_bytes,
        "output_bytes": state.output_bytes,
        "session_seconds": state.session_seconds,
        "terminate_cause": state.terminate_cause,
    }


def _update_session(current: RadiusSession, record: AcctRecord, state: SessionState) -> None:
    for key, value in _session_values(state).items():
        setattr(current, key, value)
    if record.framed_ip:
        current.framed_ip = record.framed_ip


def _insert_session(
    uow: UnitOfWork, record: AcctRecord, state: SessionState, service_id: int | None
) -> bool:
    """Insert-or-nothing on the session key; ``False`` when another packet got there first."""
    nas_id = uow.session.scalar(select(NasRow.id).where(NasRow.address == record.nas_address))
    row = {
        "session_key": record.session_key,
        "acct_session_id": record.session_id,
        "nas_address": record.nas_address,
        "nas_id": nas_id,
        "service_id": service_id,
        "username": record.username,
        "framed_ip": record.framed_ip,
        "calling_station_id": record.calling_station_id,
        **_session_values(state),
    }
    dialect = postgresql if uow.dialect == "postgresql" else sqlite
    inserted = uow.session.execute(
        dialect.insert(table_of(RadiusSession))
        .values(row)
        .on_conflict_do_nothing(index_elements=["session_key"])
    )
    return bool(getattr(inserted, "rowcount", 0))


def _state(row: RadiusSession) -> SessionState:
    return SessionState(
        started_at=row.started_at,
        updated_at=row.updated_at,
        stopped_at=row.stopped_at,
        input_bytes=row.input_bytes,
        output_bytes=row.output_bytes,
        session_seconds=row.session_seconds,
        terminate_cause=row.terminate_cause,
    )


def _throttle(row: Row[Any]) -> Speed | None:
    """A FUP tier's throttle (this period's usage row) and the collection throttle stage
    (on the service): the slower of the two applies."""
    return slowest(
        _speed(row.throttle_down_kbps, row.throttle_up_kbps),
        _speed(row.collection_down_kbps, row.collection_up_kbps),
    )


def _speed(down: int | None, up: int | None) -> Speed | None:
    return Speed(down, up) if down and up else None


def _mac(value: str | None) -> str | None:
    if not value:
        return None
    try:
        return normalize_mac(value)
    except ValidationError:
        return None


def _text(attributes: Mapping[str, Any], name: str) -> str | None:
    raw = attributes.get(name)
    if isinstance(raw, Mapping):
        raw = raw.get("value")
    if isinstance(raw, list):
        raw = raw[0] if raw else None
    if raw is None:
        return None
    return refuse_nul(str(raw), name).strip() or None

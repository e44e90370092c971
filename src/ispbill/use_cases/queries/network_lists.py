"""Read models of the network records for the API: NAS records and a service's network
identity. Neither secret is in a view: a NAS has no shared secret here, an identity only the
storage scheme of its password (when it has one)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select

from ispbill.adapters.db.keyset import Slice, keyset_slice, mapped
from ispbill.adapters.db.models import NasRow, NetworkIdentity
from ispbill.adapters.db.unit_of_work import UnitOfWork


@dataclass(frozen=True)
class NasView:
    id: int
    name: str
    address: str
    coa_port: int
    vendor: str
    require_message_authenticator: bool
    created_at: datetime


@dataclass(frozen=True)
class IdentityView:
    service_id: int
    username: str | None
    password_scheme: str | None  # None when there is no password
    mac_address: str | None
    circuit_id: str | None
    static_ip: str | None
    nas_id: int | None
    updated_at: datetime


def nas_view(row: NasRow) -> NasView:
    """Built field by field so the shared secret cannot slip into a view."""
    return NasView(
        id=row.id,
        name=row.name,
        address=row.address,
        coa_port=row.coa_port,
        vendor=row.vendor,
        require_message_authenticator=row.require_message_authenticator,
        created_at=row.created_at,
    )


def identity_view(row: NetworkIdentity) -> IdentityView:
    """Without the password; its scheme only when there is one (as the CLI shows it)."""
    return IdentityView(
        service_id=row.service_id,
        username=row.username,
        password_scheme=row.password_scheme if row.password is not None else None,
        mac_address=row.mac_address,
        circuit_id=row.circuit_id,
        static_ip=row.static_ip,
        nas_id=row.nas_id,
        updated_at=row.updated_at,
    )


def list_nas(uow: UnitOfWork, *, after: int | None, limit: int) -> Slice[NasView]:
    found = keyset_slice(uow.session, select(NasRow), NasRow.id, after=after, limit=limit)
    return mapped(found, lambda rows: [nas_view(r) for r in rows])


def find_nas(uow: UnitOfWork, nas_id: int) -> NasView | None:
    row = uow.session.get(NasRow, nas_id)
    return nas_view(row) if row is not None else None

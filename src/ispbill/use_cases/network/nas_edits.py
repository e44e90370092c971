"""Editing a NAS record (issue 17): name, address, shared secret, CoA port, vendor, whether a
Message-Authenticator is required. Validated as ``identities.add_nas`` validates; one
``nas.updated`` event with the old and new values (the secret only as "changed"). In force at
once: the next CoA goes to the new address and port; the precomputed RADIUS answers are rebuilt
when the vendor changes; regenerate clients.conf (``ispbill radius config``) for FreeRADIUS."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select

from ispbill.adapters.db.lookups import by_id
from ispbill.adapters.db.models import NasRow
from ispbill.adapters.db.unit_of_work import UnitOfWork
from ispbill.domain.errors import Conflict, ValidationError
from ispbill.domain.radius import Vendor
from ispbill.use_cases.catalog.edit_log import HIDDEN, diff, record_edit
from ispbill.use_cases.network.identities import UNSAFE_SECRET_CHARS, parse_ip


@dataclass(frozen=True)
class NasChanges:
    name: str | None = None
    address: str | None = None
    secret: str | None = None
    coa_port: int | None = None
    vendor: str | None = None
    require_message_authenticator: bool | None = None


def _values(row: NasRow) -> dict[str, Any]:
    return {
        "name": row.name,
        "address": row.address,
        "coa_port": row.coa_port,
        "vendor": row.vendor,
        "require_message_authenticator": row.require_message_authenticator,
    }


def update_nas(
    uow: UnitOfWork, *, nas_id: int, changes: NasChanges, now: datetime, actor: str
) -> NasRow:
    uow.begin_write()
    session = uow.session
    row = by_id(session, NasRow, nas_id, field="nas", entity="NAS")
    before = _values(row)
    updates: dict[str, Any] = {}
    if changes.name is not None:
        name = changes.name.strip()
        if not 1 <= len(name) <= 100:
            raise ValidationError("name", "must be 1 to 100 characters")
        taken = session.scalar(select(NasRow.id).where(NasRow.name == name, NasRow.id != row.id))
        if taken is not None:
            raise Conflict("name", f"a NAS named {name!r} exists")
        updates["name"] = name
    if changes.address is not None:
        address = parse_ip(changes.address, "address")
        taken = session.scalar(
            select(NasRow.id).where(NasRow.address == address, NasRow.id != row.id)
        )
        if taken is not None:
            raise Conflict("address", f"a NAS with address {address} exists")
        updates["address"] = address
    if changes.secret is not None:
        secret = changes.secret
        if not 8 <= len(secret) <= 128 or any(c in UNSAFE_SECRET_CHARS for c in secret):
            raise ValidationError(
                "secret",
                "must be 8 to 128 printable characters without spaces, quotes, \\ or braces",
            )
        updates["secret"] = secret
    if changes.coa_port is not None:
        if not 1 <= changes.coa_port <= 65535:
            raise ValidationError("coa_port", "must be between 1 and 65535")
        updates["coa_port"] = changes.coa_port
    if changes.vendor is not None:
        try:
            updates["vendor"] = Vendor(changes.vendor.strip().lower()).value
        except ValueError:
            raise ValidationError("vendor", f"must be one of {', '.join(Vendor)}") from None
    if changes.require_message_authenticator is not None:
        updates["require_message_authenticator"] = changes.require_message_authenticator
    secret_changed = "secret" in updates and updates["secret"] != row.secret
    for column, value in updates.items():
        setattr(row, column, value)
    if updates.get("vendor", before["vendor"]) != before["vendor"]:
        uow.mark_answers_stale(None, now)  # the answers carry the vendor's rate attributes
    session.flush()
    changed = diff(before, _values(row))
    if secret_changed:
        changed["secret"] = {"old": HIDDEN, "new": HIDDEN}
    if changed:
        record_edit(
            uow,
            kind="nas.updated",
            subject_type="nas",
            subject_id=row.id,
            changed=changed,
            now=now,
            actor=actor,
            reason=row.name,
        )
    uow.commit()
    return row

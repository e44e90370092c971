"""NAS records and the network identity of a service (what FreeRADIUS asks about).

A service logs in either with a username and password (PPPoE, hotspot) or is recognised by its
MAC address or DHCP circuit id (IPoE); it may have a static address and may be bound to one
NAS. Passwords are kept readable by default because CHAP and MS-CHAP need the cleartext to
verify a login (FreeRADIUS gets it as ``control:Cleartext-Password`` and answers PAP, CHAP and
MS-CHAPv2 itself). An operator who only needs PAP can store a salted SHA-512 instead
(``pap_only``), and then a stolen database reveals no password; CHAP logins fail for those
subscribers. NAS shared secrets are always readable: clients.conf and every CoA need them.
"""

from __future__ import annotations

import base64
import hashlib
import ipaddress
import secrets
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from ispbill.adapters.db import event_log as events
from ispbill.adapters.db.lookups import MAX_ID, by_id
from ispbill.adapters.db.models import NasRow, NetworkIdentity, Service
from ispbill.adapters.db.unit_of_work import UnitOfWork
from ispbill.domain.errors import Conflict, NotFound, ValidationError
from ispbill.domain.lifecycle import ServiceEvent
from ispbill.domain.radius import Vendor

UNSAFE_SECRET_CHARS = set("\"\\'{}") | {chr(c) for c in range(33)} | {"\x7f"}


@dataclass(frozen=True)
class NewNas:
    name: str
    address: str
    secret: str
    coa_port: int = 3799
    vendor: str = "mikrotik"
    require_message_authenticator: bool = True


@dataclass(frozen=True)
class NewIdentity:
    service_id: int
    username: str | None = None
    password: str | None = None
    mac_address: str | None = None
    circuit_id: str | None = None
    static_ip: str | None = None
    nas: str | None = None
    pap_only: bool = False
    # no password given: keep the stored one (same username), so an operator can move a
    # subscriber to a static address without retyping or knowing the password
    keep_password: bool = False


def add_nas(uow: UnitOfWork, *, spec: NewNas, now: datetime, actor: str) -> NasRow:
    name = spec.name.strip()
    if not 1 <= len(name) <= 100:
        raise ValidationError("name", "must be 1 to 100 characters")
    address = parse_ip(spec.address, "address")
    secret = spec.secret
    if not 8 <= len(secret) <= 128 or any(c in UNSAFE_SECRET_CHARS for c in secret):
        raise ValidationError(
            "secret", "must be 8 to 128 printable characters without spaces, quotes, \\ or braces"
        )
    if not 1 <= spec.coa_port <= 65535:
        raise ValidationError("coa_port", "must be between 1 and 65535")
    try:
        vendor = Vendor(spec.vendor)
    except ValueError:
        raise ValidationError("vendor", f"must be one of {', '.join(Vendor)}") from None
    session = uow.session
    if session.scalar(select(NasRow.id).where(NasRow.name == name)) is not None:
        raise Conflict("name", f"a NAS named {name!r} exists")
    if session.scalar(select(NasRow.id).where(NasRow.address == address)) is not None:
        raise Conflict("address", f"a NAS with address {address} exists")
    row = NasRow(
        name=name,
        address=address,
        secret=secret,
        coa_port=spec.coa_port,
        vendor=vendor.value,
        require_message_authenticator=spec.require_message_authenticator,
        created_at=now,
    )
    session.add(row)
    session.flush()
    events.record(
        uow,
        now=now,
        actor=actor,
        kind="nas.added",
        subject_type="nas",
        subject_id=row.id,
        reason=name,
        figures={"address": address, "vendor": vendor.value, "coa_port": spec.coa_port},
    )
    uow.commit()
    return row


def list_nas(uow: UnitOfWork) -> list[NasRow]:
    return list(uow.session.scalars(select(NasRow).order_by(NasRow.id)))


def find_nas(uow: UnitOfWork, ref: str) -> NasRow:
    text = ref.strip()
    row = uow.session.scalar(select(NasRow).where(NasRow.name == text))
    if row is None and text.isascii() and text.isdigit() and 0 < int(text) <= MAX_ID:
        row = uow.session.get(NasRow, int(text))
    if row is None:
        row = uow.session.scalar(select(NasRow).where(NasRow.address == text))
    if row is None:
        raise NotFound("NAS", ref, field="nas")
    return row


def set_identity(
    uow: UnitOfWork, *, spec: NewIdentity, now: datetime, actor: str
) -> NetworkIdentity:
    """Create or replace a service's network identity; refuses duplicates naming the field."""
    uow.begin_write()
    service = _service(uow, spec.service_id)
    username = _optional_text(spec.username, "username", 253)
    password = _optional_text(spec.password, "password", 128)
    current = uow.session.get(NetworkIdentity, service.id)
    kept = _kept_password(current, username) if spec.keep_password and password is None else None
    if (username is None) != (password is None) and kept is None:
        raise ValidationError("password", "a username needs a password, and a password a username")
    mac = normalize_mac(spec.mac_address) if spec.mac_address else None
    circuit = _optional_text(spec.circuit_id, "circuit_id", 253)
    if username is None and mac is None and circuit is None:
        raise ValidationError(
            "username", "give a username and password, a MAC address or a circuit id"
        )
    static_ip = parse_ip(spec.static_ip, "static_ip") if spec.static_ip else None
    nas = find_nas(uow, spec.nas) if spec.nas else None
    claims = (
        (NetworkIdentity.username, username),
        (NetworkIdentity.mac_address, mac),
        (NetworkIdentity.circuit_id, circuit),
        (NetworkIdentity.static_ip, static_ip),
    )
    _require_all_free(uow, claims, service.id)
    stored, scheme = kept or (password, "cleartext")
    if password is not None and spec.pap_only:
        stored, scheme = ssha512(password), "ssha512"
    row = current
    if row is None:
        row = NetworkIdentity(service_id=service.id)
        uow.session.add(row)
    row.username = username
    row.password = stored
    row.password_scheme = scheme
    row.mac_address = mac
    row.circuit_id = circuit
    row.static_ip = static_ip
    row.nas_id = nas.id if nas else None
    row.updated_at = now
    try:
        uow.session.flush()
    except IntegrityError:  # claimed by a concurrent writer after our check: name the field
        uow.session.rollback()
        _require_all_free(uow, claims, service.id)
        raise
    uow.mark_answers_stale([service.id], now)  # its precomputed RADIUS answer, at commit
    events.record(
        uow,
        now=now,
        actor=actor,
        kind=ServiceEvent.IDENTITY_SET.value,
        subject_type="service",
        subject_id=service.id,
        customer_id=service.customer_id,
        figures={
            "username": username,
            "mac_address": mac,
            "circuit_id": circuit,
            "static_ip": static_ip,
            "nas": nas.name if nas else None,
            "password_scheme": scheme,
        },
    )
    uow.commit()
    return row


def _kept_password(row: NetworkIdentity | None, username: str | None) -> tuple[str, str] | None:
    """The stored password and scheme, when the username stays the same (a new username
    without a new password would log in with the previous subscriber's secret)."""
    if row is None or username is None or row.username != username or row.password is None:
        return None
    return row.password, row.password_scheme


def identity_of(uow: UnitOfWork, service_id: int) -> NetworkIdentity:
    service = _service(uow, service_id)
    row = uow.session.get(NetworkIdentity, service.id)
    if row is None:
        raise NotFound("network identity", service.id, field="service")
    return row


def ssha512(password: str, salt: bytes | None = None) -> str:
    """FreeRADIUS's ``{ssha512}`` header form: base64(SHA-512(password + salt) + salt)."""
    salt = salt if salt is not None else secrets.token_bytes(16)
    digest = hashlib.sha512(password.encode() + salt).digest()
    return "{ssha512}" + base64.b64encode(digest + salt).decode()


def normalize_mac(text: str) -> str:
    """``AA-BB-CC-DD-EE-FF``, ``aabb.ccdd.eeff`` and friends -> ``aa:bb:cc:dd:ee:ff``."""
    digits = "".join(c for c in text.lower() if c in "0123456789abcdef")
    stripped = "".join(c for c in text.lower() if c not in ":-. ")
    if len(digits) != 12 or digits != stripped:
        raise ValidationError("mac_address", "must be six hex bytes such as aa:bb:cc:dd:ee:ff")
    return ":".join(digits[i : i + 2] for i in range(0, 12, 2))


def parse_ip(text: str, field_name: str) -> str:
    """A plain address: a zone (``fe80::1%eth0``) is refused, since RADIUS carries none and
    Python accepts any text after the ``%``, which would reach clients.conf verbatim."""
    if "%" in text:
        raise ValidationError(field_name, f"{text!r}: give the address without a zone (%...)")
    try:
        return str(ipaddress.ip_address(text.strip()))
    except ValueError:
        raise ValidationError(field_name, f"{text!r} is not an IPv4 or IPv6 address") from None


def _optional_text(value: str | None, field_name: str, limit: int) -> str | None:
    if value is None:
        return None
    if not 1 <= len(value) <= limit or any(ord(c) < 32 or ord(c) == 127 for c in value):
        raise ValidationError(
            field_name, f"must be 1 to {limit} characters without control characters"
        )
    return value


def _require_all_free(
    uow: UnitOfWork, claims: tuple[tuple[object, str | None], ...], service_id: int
) -> None:
    for column, value in claims:
        if value is not None:
            _require_free(uow, column, value, service_id)


def _require_free(uow: UnitOfWork, column: object, value: str, service_id: int) -> None:
    owner = uow.session.scalar(
        select(NetworkIdentity.service_id).where(column == value)  # type: ignore[arg-type]
    )
    if owner is not None and owner != service_id:
        name = getattr(column, "key", "identity")
        raise Conflict(name, f"{value!r} is already used by service {owner}")


def _service(uow: UnitOfWork, service_id: int) -> Service:
    return by_id(uow.session, Service, service_id, field="service")
